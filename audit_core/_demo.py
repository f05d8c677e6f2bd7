"""The main job: one end-to-end audit pass on the local gold tables (``audit-core demo``).

Steps, each checkpointed in the ``workflow_state`` table of the results database (and
in the state store when ``REDIS_URL`` names one, which also holds the run lock; without
one, the results file's own lock keeps a second process out, and the embedded
in-process store is not used: it would hold nothing the file does not, and outlive
nothing):

1. ``lock``: take the run lock, restore state (resume) or start fresh; a run records its
   data source (fixtures, generated rows, warehouse, rules and their hashes), and a
   resume against another source is refused, naming the difference;
2. ``load``: transactions since the last completed audit;
3. ``checks``: the SQL rules (`audit_core.rules`: built-in files plus ``--rules DIR``),
   one checkpoint per rule; flags are written per rule with stable ids, so a rule re-run
   after an interruption writes nothing twice, and a (transaction, rule) already flagged
   by an earlier completed run is not flagged again unless ``force``;
4. ``llm``: the ambiguous remainder (the ``llm`` rule: unknown vendors) is classified in
   one concurrent batch when an LLM is configured; without a key, or when the endpoint
   fails, the items become INFO flags for human review and the report says why;
5. ``finish``: flush the hash-chained trail, mark the run complete, verify the trail.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from audit_core._logging import get_logger
from audit_core._settings import Settings
from audit_core.db import AuditTrail, Flag, FlagStore, TrailVerification, ensure_schema
from audit_core.db._flags import FlagsWritten, flag_id_for
from audit_core.db.schemas import RISK_LEVELS, SEVERITIES
from audit_core.errors import ConfigError, StateStoreUnavailableError
from audit_core.rules import Rule, load_rules
from audit_core.warehouse import DatabricksClient

if TYPE_CHECKING:
    from audit_core.state import AsyncStateStore

_log = get_logger("audit_core.demo")
AGENT = "demo-auditor"
STEPS = ("lock", "load", "checks", "llm", "finish")
_SINCE = "transaction_date > :since"
# Settings that change what a run finds: a resume must see the same ones.
_SOURCE_SETTINGS = ("warehouse_backend", "default_model", "escalation_model")


class _StopAfter(Exception):
    """``--stop-after STEP``: a simulated Ctrl-C at a step boundary (never leaves the CLI)."""


Interrupted = _StopAfter  # the name the CLI catches


def new_run_id() -> str:
    """A fresh run id: sortable by start time, unique across processes."""
    return f"audit-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass(kw_only=True)
class Report:
    run_id: str
    resumed: bool = False
    rows_scanned: int = 0
    since: datetime | None = None
    flags_by_rule: Counter[str] = field(default_factory=Counter)
    flags_by_severity: Counter[str] = field(default_factory=Counter)
    flags_by_risk: Counter[str] = field(default_factory=Counter)
    flags_written: int = 0
    duplicates_skipped: dict[str, int] = field(default_factory=dict)
    deterministic_ops: int = 0
    llm_items: int = 0
    llm_note: str = ""
    llm_costs: dict[str, Any] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)
    skipped_steps: list[str] = field(default_factory=list)
    trail_ok: bool | None = None
    trail_rows: int = 0
    results_path: str = ""
    report_path: str = ""
    state_url: str = ""
    source: dict[str, Any] = field(default_factory=dict)


class Progress:
    """Progress on long steps: a live line on a terminal, else a structured log event
    (``audit_core.demo.progress``) at most every ``interval_s`` seconds."""

    def __init__(self, stream: TextIO, *, interval_s: float = 5.0) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.interval_s = interval_s
        self._last = -interval_s

    def show(self, text: str) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K" + text)
            self.stream.flush()
            return
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            _log.info("audit_core.demo.progress", step=text)

    def done(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    """What the command line decides about one run."""

    out_dir: Path
    rows: int | None = None
    resume: str | None = None
    run_id: str | None = None
    rules_dirs: tuple[Path, ...] = ()
    force: bool = False
    stop_after: str | None = None
    llm: str = "auto"  # auto: a real endpoint when a key is set; simulated; off


def _source(
    settings: Settings, options: DemoOptions, fixtures: Path | None, rules: list[Rule]
) -> dict[str, Any]:
    return {
        "fixtures": str(fixtures) if fixtures is not None else "<shipped fixtures>",
        "rows": options.rows,
        "llm": options.llm,
        "rules": {r.name: r.hash for r in rules},
        "settings": {k: getattr(settings, k) for k in _SOURCE_SETTINGS},
    }


def _differences(recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    out = []
    for key in ("fixtures", "rows", "llm"):
        if recorded.get(key) != now.get(key):
            out.append(f"{key}: run used {recorded.get(key)!r}, now {now.get(key)!r}")
    before, after = recorded.get("rules", {}), now.get("rules", {})
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            what = "added" if name not in before else "removed" if name not in after else "changed"
            out.append(f"rule {name!r} {what}")
    for key, value in now.get("settings", {}).items():
        if recorded.get("settings", {}).get(key) != value:
            out.append(f"setting {key}: run used {recorded['settings'].get(key)!r}, now {value!r}")
    return out


class _Run:
    """One audit pass: the clients, the state, and one method per step."""

    def __init__(
        self,
        settings: Settings,
        options: DemoOptions,
        *,
        rules: list[Rule],
        warehouse: DatabricksClient,
        results: DatabricksClient,
        store: AsyncStateStore | None,
        trail: AuditTrail,
        report: Report,
        progress: Progress,
    ) -> None:
        self.settings = settings
        self.options = options
        self.sql_rules = [r for r in rules if r.kind == "sql"]
        llm_rules = [r for r in rules if r.kind == "llm"]
        self.llm_rule = llm_rules[-1] if llm_rules else None
        self.warehouse = warehouse
        self.results = results
        self.store = store
        self.trail = trail
        self.flags = FlagStore(results)
        self.report = report
        self.progress = progress
        self.run_id = report.run_id
        self.state: dict[str, Any] = {}
        self.done: list[str] = []
        self.verification: TrailVerification | None = None

    async def checkpoint(self, step: str, **changes: Any) -> None:
        if step not in self.done:
            self.done.append(step)
        await self.trail.flush()  # the head is in audit_trail_heads; keep it here too
        self.state.update(
            changes,
            steps_done=self.done,
            current_step=step,
            status="in_progress",
            trail_head=self.trail.head.as_state(),
        )
        if self.store is not None:
            await self.store.save(self.run_id, self.state)
        await _save_row(self.results, self.run_id, self.state)
        if self.options.stop_after == step:
            raise Interrupted(step)

    async def timed(self, step: str, work: Any) -> None:
        t0 = time.perf_counter()
        await work
        self.report.step_seconds[step] = time.perf_counter() - t0

    async def lock(self) -> None:
        state = await _restore(self.store, self.results, self.run_id)
        if self.options.resume is not None and not state:
            raise ConfigError(f"nothing to resume: no saved state for run {self.run_id!r}")
        if state.get("status") == "completed":
            raise ConfigError(f"run {self.run_id!r} is already completed")
        recorded = state.get("source")
        if recorded is not None:
            differences = _differences(recorded, self.report.source)
            if differences:
                raise ConfigError(
                    f"run {self.run_id!r} was started on another source; resume it on the "
                    f"same one ({'; '.join(differences)})"
                )
        self.state = state
        self.state.setdefault("started_at", datetime.now(UTC).isoformat())
        self.state["source"] = self.report.source
        self.done = list(state.get("steps_done", []))
        await self.trail.record(
            AGENT, "state.restore", output_summary=f"resumed={self.report.resumed}"
        )
        await self.checkpoint("lock")

    async def load(self) -> None:
        if "load" in self.done:
            since = datetime.fromisoformat(self.state["since"])
            self.report.rows_scanned = int(self.state["rows_scanned"])
            self.report.skipped_steps.append("load")
        else:
            self.progress.show("load: reading transactions since the last completed audit...")
            async with self.trail.trace(AGENT, "warehouse.get_last_audit_timestamp") as t:
                since = await self.warehouse.get_last_audit_timestamp()
                count = await self.warehouse.query_arrow(
                    f"SELECT count(*) AS n FROM gold.recent_transactions WHERE {_SINCE}",
                    {"since": since},
                )
                self.report.rows_scanned = int(count.column(0)[0].as_py())
                t.output_summary = f"{self.report.rows_scanned} rows since {since.isoformat()}"
        self.report.since = since
        await self.checkpoint(
            "load", since=since.isoformat(), rows_scanned=self.report.rows_scanned
        )

    async def _already_flagged(self, rule: str) -> set[str]:
        """Transactions an earlier completed run already flagged under ``rule``."""
        if self.options.force:
            return set()
        return await self.flags.flagged_before(self.run_id, rule)

    async def _flag(
        self, rule: Rule, *, risk_level: str, confidence: float, title: str
    ) -> FlagsWritten:
        """Set-based: the rule's findings go into the flags table inside the engine that
        holds the data (one ``INSERT ... SELECT``), none that an earlier completed run
        already flagged (unless ``force``)."""
        assert self.report.since is not None
        written = await self.flags.add_from_query(
            self.warehouse,
            rule.sql,
            rule.bind(since=self.report.since),
            audit_run_id=self.run_id,
            rule=rule.name,
            risk_level=risk_level,
            confidence_score=confidence,
            title=title,
            skip_flagged_before=not self.options.force,
        )
        if written.repeated:
            self.report.duplicates_skipped[rule.name] = written.repeated
        return written

    async def _write(self, rule: str, flags: list[Flag]) -> int:
        seen = await self._already_flagged(rule)
        fresh = [f for f in flags if f.transaction_id not in seen]
        if len(fresh) < len(flags):
            self.report.duplicates_skipped[rule] = len(flags) - len(fresh)
        await self.flags.add_many(fresh, skip_existing=True)
        return len(fresh)

    async def checks(self) -> None:
        """The SQL rules one after another, each checkpointed while the next one runs.

        The engine is busy with one rule's statement at a time (two at once would raise
        peak memory for little time); the checkpoint of the rule just done (trail, state
        row, store) overlaps the next one's statement. A rule is one statement: stopped
        part-way (Ctrl-C, a stop at the previous rule's checkpoint) it is rolled back
        whole and runs again on resume, so a resumed run's flags are an uninterrupted
        run's.
        """
        rules_done: dict[str, int] = dict(self.state.get("rules_done", {}))
        skipped = dict(self.state.get("duplicates_skipped", {}))
        total = len(self.sql_rules)

        async def run(rule: Rule) -> FlagsWritten:
            self.progress.show(f"checks: {rule.name} ({len(rules_done) + 1}/{total})")
            async with self.trail.trace(AGENT, f"rule.{rule.name}") as t:
                written = await self._flag(
                    rule,
                    risk_level=rule.severity,
                    confidence=float(rule.confidence),
                    title=rule.title,
                )
                t.output_summary = f"{written.written} flags"
            return written

        running: asyncio.Task[FlagsWritten] | None = None
        saving: asyncio.Task[None] | None = None
        try:
            for rule in (r for r in self.sql_rules if r.name not in rules_done):
                running = asyncio.create_task(run(rule))
                if saving is not None:
                    await saving  # the previous rule's checkpoint (a stop raises here)
                written = await running
                running = None
                rules_done[rule.name] = written.written
                skipped.update(self.report.duplicates_skipped)
                step = "checks" if len(rules_done) == total else f"checks.{rule.name}"
                saving = asyncio.create_task(
                    self.checkpoint(
                        step, rules_done=dict(rules_done), duplicates_skipped=dict(skipped)
                    )
                )
            if saving is not None:
                await saving
                saving = None
        finally:  # a stop, a failure or Ctrl-C: nothing is left running
            left = [task for task in (running, saving) if task is not None]
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
        if "checks" not in self.done:
            await self.checkpoint("checks", rules_done=rules_done, duplicates_skipped=skipped)
        elif self.report.resumed:
            self.report.skipped_steps.append("checks")
        self.report.duplicates_skipped = skipped

    async def llm(self) -> None:
        rule = self.llm_rule
        if rule is None:
            self.report.llm_note = "no llm rule is configured"
            await self.checkpoint("llm", llm_note=self.report.llm_note, llm_costs={}, llm_items=0)
            return
        if "llm" in self.done:
            self.report.skipped_steps.append("llm")
            self.report.llm_items = int(self.state.get("llm_items", 0))
            self.report.llm_note = self.state.get("llm_note", "")
            self.report.llm_costs = self.state.get("llm_costs", {})
            return
        self.progress.show("llm: selecting ambiguous transactions...")
        note, costs = await self._classify(rule)
        self.report.llm_note, self.report.llm_costs = note, costs
        await self.checkpoint(
            "llm", llm_note=note, llm_costs=costs, llm_items=self.report.llm_items
        )

    async def _classify(self, rule: Rule) -> tuple[str, dict[str, Any]]:
        """Classify the ambiguous items; without a key they become INFO flags for review,
        written in the engine like any rule's."""
        mode = self.options.llm
        if mode == "off" or (mode == "auto" and not self.settings.openrouter_api_key):
            written = await self._flag(
                rule,
                risk_level="INFO",
                confidence=0.5,
                title=f"{rule.title}: needs human review (LLM stage skipped)",
            )
            items = written.stored + written.repeated
            self.report.llm_items = items
            if items == 0:
                return "nothing ambiguous to classify", {}
            why = "--llm off" if mode == "off" else "no OPENROUTER_API_KEY"
            note = (
                f"skipped: {why} (or AUDIT_LLM_BASE_URL endpoint key); "
                f"{items} unknown-vendor transactions became INFO flags for human review"
            )
            await self.trail.record(AGENT, "llm.skipped", output_summary=note)
            return note, {}
        assert self.report.since is not None
        table = await self.warehouse.query_arrow(rule.sql, rule.bind(since=self.report.since))
        self.report.llm_items = table.num_rows
        if table.num_rows == 0:
            return "nothing ambiguous to classify", {}
        self.progress.show(f"llm: {table.num_rows} ambiguous transactions")
        if mode == "simulated":
            from audit_core._simulated import SIMULATED_KEY, simulated_answer
            from audit_core.testing import FakeOpenRouter

            async with FakeOpenRouter(responder=simulated_answer) as server:
                settings = replace(
                    self.settings, openrouter_api_key=SIMULATED_KEY, llm_base_url=server.url
                )
                note, costs = await self._ask(
                    rule, table.to_pylist(), settings, source="llm-simulated"
                )
            return f"simulated (loopback fake model, no real LLM): {note}", costs
        return await self._ask(rule, table.to_pylist(), self.settings)

    async def _ask(
        self,
        rule: Rule,
        ambiguous: list[dict[str, Any]],
        settings: Settings,
        *,
        source: str = "llm",
    ) -> tuple[str, dict[str, Any]]:
        from audit_core.llm import AsyncLLMClient

        items = [
            {
                "vendor": r["vendor_name"],
                "description": r["description"],
                "amount": str(r["amount"]),
                "department": r["department"],
            }
            for r in ambiguous
        ]
        async with AsyncLLMClient.from_settings(settings, trail=self.trail) as client:
            answers = await client.classify(
                items,
                list(rule.labels),
                agent_name="vendor-classifier",
                batch_size=10,
                instructions=rule.instructions,
            )
            costs = client.costs.snapshot()
        found = []
        failures: Counter[str] = Counter()
        for row, answer in zip(ambiguous, answers, strict=True):
            if answer.label is None:
                reason = type(answer.error).__name__ if answer.error else "no valid answer"
                failures[reason] += 1
                found.append(_review_flag(self.run_id, rule, row, f"LLM gave no answer ({reason})"))
                continue
            found.append(
                _rule_flag(
                    self.run_id,
                    rule,
                    {**row, "detail": answer.rationale or row["detail"]},
                    risk_level=rule.severity_by_label[answer.label],
                    confidence=round(float(answer.confidence or 0.0), 3),
                    title=f"{rule.title}: classified {answer.label}",
                    detected_by=f"{source}:{answer.model}",
                    evidence={
                        "model": answer.model,
                        "escalated": answer.escalated,
                        "label": answer.label,
                    },
                )
            )
        await self._write(rule.name, found)
        escalated = sum(1 for a in answers if a.escalated)
        note = f"classified {len(answers) - sum(failures.values())} items ({escalated} escalated)"
        if failures:
            why = ", ".join(f"{n} x {reason}" for reason, n in failures.most_common())
            note += (
                f"; {sum(failures.values())} items fell back to INFO flags for human review "
                f"because the LLM endpoint failed ({why})"
            )
        return note, costs

    async def finish(self) -> None:
        report = self.report
        all_flags = await self.results.query_arrow(
            "SELECT rule, severity_level, risk_level, count(*) AS n FROM flags "
            "WHERE audit_run_id = :run GROUP BY rule, severity_level, risk_level",
            {"run": self.run_id},
        )
        for row in all_flags.to_pylist():
            report.flags_by_rule[row["rule"]] += row["n"]
            report.flags_by_severity[row["severity_level"]] += row["n"]
            report.flags_by_risk[row["risk_level"]] += row["n"]
        report.flags_written = sum(report.flags_by_rule.values())
        report.deterministic_ops = report.rows_scanned * (len(self.sql_rules) + 1)
        await self.trail.record(
            AGENT, "run.complete", output_summary=f"{report.flags_written} flags"
        )
        head = await self.trail.complete()
        verification = self.verification = await self.trail.verify()
        report.trail_ok, report.trail_rows = verification.ok, verification.rows
        summary = {
            "rows_scanned": report.rows_scanned,
            "flags": report.flags_written,
            "flags_by_severity": dict(report.flags_by_severity),
            "trail_rows": head.rows,
            "trail_head": head.last_hash,
            "trail_hash_algorithm": head.hash_algorithm,
        }
        self.state.update(
            status="completed",
            current_step="finish",
            steps_done=[*self.done, "finish"],
            trail_head=head.as_state(),
        )
        if self.store is not None:
            await self.store.mark_complete(self.run_id, summary)
        self.state["summary"] = summary
        self.state["completed_at"] = datetime.now(UTC).isoformat()
        await _save_row(self.results, self.run_id, self.state, completed=True)


async def run_demo(
    settings: Settings, options: DemoOptions, *, progress: Progress | None = None
) -> Report:
    """Run one audit pass; returns the report (see `render`)."""
    progress = progress or Progress(sys.stderr)
    _import_in_background("duckdb", "pyarrow")
    out_dir = options.out_dir
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    # The rules load (and are checked) while the engine opens; a broken rule file still
    # stops the run before any data is generated or the state is touched.
    loading = asyncio.ensure_future(asyncio.to_thread(load_rules, options.rules_dirs))
    loading.add_done_callback(lambda task: task.cancelled() or task.exception())  # seen
    fixtures = settings.fixtures_dir
    if options.rows is not None:
        from audit_core.fixtures import generate

        fixtures = out_dir / f"generated-{options.rows}"
        if not (fixtures / "manifest.json").is_file():
            await _settled(loading)
            progress.show(f"generating {options.rows:,} transactions...")
            await asyncio.to_thread(generate, options.rows, 7, fixtures)
    run_id = options.resume or options.run_id or new_run_id()
    report = Report(run_id=run_id, resumed=options.resume is not None)
    results_db = out_dir / "audit.duckdb"
    report.results_path = str(results_db)

    store = None
    report.state_url = (
        "none: checkpoints in the results database (set REDIS_URL for a shared store "
        "with run locks)"
    )
    if not settings.redis_url.startswith("memory:"):
        from audit_core.state import AsyncStateStore

        store = AsyncStateStore.from_settings(settings)
        report.state_url = store.url
    async with contextlib.AsyncExitStack() as stack:
        warehouse = await stack.enter_async_context(
            DatabricksClient.from_settings(settings)
            if options.rows is None
            else DatabricksClient.local(fixtures)
        )
        # Locally the results file joins the warehouse's engine, as the flags table sits
        # in the gold tables' catalog on Databricks: each rule is one INSERT ... SELECT.
        results = await stack.enter_async_context(
            warehouse.attach(results_db)
            if warehouse.backend == "local"
            else DatabricksClient.local(database=str(results_db), load_fixtures=False)
        )
        if store is not None:
            await stack.enter_async_context(store)
            if not await store.health():
                raise StateStoreUnavailableError(f"state store {store.url} is unreachable")
        rules, _ = await _settled(loading, ensure_schema(results))
        report.source = _source(settings, options, fixtures, rules)
        trail = AuditTrail.from_env(results, run_id)
        await stack.enter_async_context(trail)
        lock = (
            store.lock(run_id, ttl_s=60, wait_s=5)
            if store is not None
            else contextlib.nullcontext()
        )
        async with lock:
            run = _Run(
                settings,
                options,
                rules=rules,
                warehouse=warehouse,
                results=results,
                store=store,
                trail=trail,
                report=report,
                progress=progress,
            )
            for step in STEPS:
                await run.timed(step, getattr(run, step)())
        # The page is read from the engine that wrote the run (no second open of the file).
        from audit_core.db._verify_cmd import trail_key_from_env
        from audit_core.report import write_report

        page = out_dir / f"report-{run_id}.html"
        await write_report(
            results, run_id, page, key=trail_key_from_env(), verification=run.verification
        )
        report.report_path = str(page)
    progress.done()
    return report


async def _settled(*work: Awaitable[Any]) -> list[Any]:
    """The results of ``work``, run at once; the first failure is raised as it is (not
    in a group) once the rest are cancelled and have stopped."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            error = task.exception() if task in done else None
            if error is not None:
                raise error
        return [await task for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _import_in_background(*modules: str) -> None:
    """Start importing the engine's modules now, on a thread of their own: the first
    statement needs them (about 0.1 s), and until then this thread is reading rule files
    and the engine is opening with the GIL released. Python's import lock makes a second
    importer wait for the first, so nothing is imported twice."""

    def run() -> None:
        for name in modules:
            if name not in sys.modules:
                with contextlib.suppress(ImportError):
                    importlib.import_module(name)

    threading.Thread(target=run, name="audit-core-imports", daemon=True).start()


async def _restore(
    store: AsyncStateStore | None, results: DatabricksClient, run_id: str
) -> dict[str, Any]:
    if store is not None:
        state = await store.restore(run_id)
        if state:
            return state
    row = await results.query_arrow(
        "SELECT intermediate_results FROM workflow_state WHERE audit_run_id = :run",
        {"run": run_id},
    )
    if row.num_rows:
        data: dict[str, Any] = json.loads(row.column(0)[0].as_py() or "{}")
        return data
    return {}


async def _save_row(
    results: DatabricksClient, run_id: str, state: dict[str, Any], *, completed: bool = False
) -> None:
    """The durable checkpoint: one workflow_state row per run in the results database.

    The demo's steps are its agents: ``current_agent`` is the step that just finished,
    ``completed_agents`` / ``pending_agents`` the steps done and still to do.
    """
    now = datetime.now(UTC)
    done = list(state.get("steps_done", []))
    values = {
        "run": run_id,
        "status": "completed" if completed else "in_progress",
        "agent": state.get("current_step"),
        "done": json.dumps(done),
        "todo": json.dumps([s for s in STEPS if s not in done]),
        "data": json.dumps(state, default=str, sort_keys=True),
        "now": now,
        "completed": now if completed else None,
    }
    updated = await results.execute(
        "UPDATE workflow_state SET workflow_status = :status, current_agent = :agent, "
        "completed_agents = :done, pending_agents = :todo, intermediate_results = :data, "
        "updated_at = :now, completed_at = :completed WHERE audit_run_id = :run",
        values,
    )
    if updated == 1:
        return
    if updated is None:  # an engine that does not say: start from no row
        await results.execute(
            "DELETE FROM workflow_state WHERE audit_run_id = :run", {"run": run_id}
        )
    await results.execute(
        "INSERT INTO workflow_state (audit_run_id, workflow_status, current_agent, "
        "completed_agents, pending_agents, intermediate_results, created_at, updated_at, "
        "completed_at, error_message) VALUES (:run, :status, :agent, :done, :todo, :data, "
        ":started, :now, :completed, NULL)",
        {**values, "started": datetime.fromisoformat(state["started_at"])},
    )


def _rule_flag(
    run_id: str,
    rule: Rule,
    hit: dict[str, Any],
    *,
    risk_level: str | None = None,
    confidence: float | None = None,
    title: str | None = None,
    detected_by: str = "sql-rules",
    evidence: Any = None,
) -> Flag:
    return Flag(
        audit_run_id=run_id,
        transaction_id=hit["transaction_id"],
        risk_level=risk_level or rule.severity,
        confidence_score=float(rule.confidence) if confidence is None else confidence,
        explanation=hit["detail"],
        supporting_evidence_links=evidence,
        rule=rule.name,
        title=title or rule.title,
        amount=hit["amount"],
        detected_by=detected_by,
        vendor_name=hit.get("vendor_name"),
        department=hit.get("department"),
        transaction_date=hit.get("transaction_date"),
        flag_id=flag_id_for(run_id, rule.name, hit["transaction_id"]),
    )


def _review_flag(run_id: str, rule: Rule, row: dict[str, Any], why: str) -> Flag:
    """An ambiguous item no model decided: INFO, for a person to look at."""
    return _rule_flag(
        run_id, rule, row, risk_level="INFO", confidence=0.5, title=f"{rule.title}: {why}"
    )


def render(report: Report) -> str:
    """The human-readable report."""
    lines = [f"audit-core demo: run {report.run_id}" + (" (resumed)" if report.resumed else "")]
    since = report.since.isoformat() if report.since else "?"
    lines.append(f"  rows scanned          {report.rows_scanned:,} transactions since {since}")
    lines.append(f"  flags written         {report.flags_written:,}")
    for severity in SEVERITIES:
        if report.flags_by_severity.get(severity):
            lines.append(f"    {severity:<10}          {report.flags_by_severity[severity]:,}")
    risks = [
        f"{r} {report.flags_by_risk[r]:,}"
        for r in reversed(RISK_LEVELS)
        if report.flags_by_risk.get(r)
    ]
    if risks:
        lines.append(f"    risk levels         {', '.join(risks)}")
    lines.append("  flags by rule")
    for rule, n in sorted(report.flags_by_rule.items()):
        lines.append(f"    {rule:<20} {n:,}")
    total = report.rows_scanned
    if total:
        llm_share = report.llm_items / total * 100
        lines.append(
            f"  deterministic vs LLM  {100 - llm_share:.1f}% of transactions decided by SQL rules "
            f"alone, {llm_share:.1f}% ambiguous ({report.llm_items:,}) sent to the LLM stage"
        )
    lines.append(f"  LLM stage             {report.llm_note}")
    costs = report.llm_costs
    if costs:
        lines.append(
            f"  LLM calls             {costs.get('calls', 0)} calls, "
            f"{costs.get('prompt_tokens', 0) + costs.get('completion_tokens', 0):,} tokens, "
            f"${costs.get('total_usd', '0')}"
        )
        for model, usd in costs.get("by_model", {}).items():
            calls = costs.get("calls_by_model", {}).get(model, 0)
            tokens = costs.get("tokens_by_model", {}).get(model, 0)
            lines.append(f"    {model:<32} {calls} calls  {tokens:,} tokens  ${usd}")
        saved = costs.get("saved", {})
        if saved.get("calls"):
            lines.append(f"    cache saved {saved['calls']} calls, ${saved['usd']}")
    else:
        lines.append("  LLM calls             0 calls, 0 tokens, $0")
    times = "  ".join(f"{k} {v:.2f}s" for k, v in report.step_seconds.items())
    lines.append(f"  time per step         {times}")
    if report.skipped_steps:
        lines.append(f"  resumed, not redone   {', '.join(report.skipped_steps)}")
    if report.duplicates_skipped:
        total = sum(report.duplicates_skipped.values())
        lines.append(
            f"  not flagged again     {total:,} findings already flagged by an earlier "
            "completed run (use --force to flag them again)"
        )
    verdict = "verified" if report.trail_ok else "FAILED verification"
    lines.append(f"  audit trail           {report.trail_rows} entries, hash chain {verdict}")
    lines.append(
        f"  results               {report.results_path} (flags, audit_trail, workflow_state)"
    )
    lines.append(f"  state store           {report.state_url}")
    if report.report_path:
        lines.append(f"  report                {report.report_path}")
    lines.append(
        f"next: audit-core flags --run {report.run_id} --pending   "
        f"(then: audit-core flags review FLAG_ID --decision ... --reviewer ...)"
    )
    return "\n".join(lines)


def report_json(report: Report) -> str:
    data = {
        "run_id": report.run_id,
        "resumed": report.resumed,
        "rows_scanned": report.rows_scanned,
        "since": report.since.isoformat() if report.since else None,
        "flags_by_rule": dict(report.flags_by_rule),
        "flags_by_severity": dict(report.flags_by_severity),
        "flags_by_risk": dict(report.flags_by_risk),
        "flags_written": report.flags_written,
        "duplicates_skipped": report.duplicates_skipped,
        "source": report.source,
        "llm_items": report.llm_items,
        "llm_note": report.llm_note,
        "llm_costs": report.llm_costs,
        "step_seconds": report.step_seconds,
        "trail_ok": report.trail_ok,
        "trail_rows": report.trail_rows,
        "results": report.results_path,
        "report": report.report_path,
    }
    return json.dumps(data, indent=2, default=str)
