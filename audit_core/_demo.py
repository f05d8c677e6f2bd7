"""The main job: one end-to-end audit pass on the local gold tables (``audit-core demo``).

Steps, each checkpointed (state store, and the ``workflow_state`` table of the results
database so a ``--resume`` works even on the embedded, non-durable store):

1. ``lock``: take the run lock, restore state (resume) or start fresh;
2. ``load``: transactions since the last completed audit;
3. ``checks``: deterministic SQL rules, one checkpoint per rule; flags are written per
   rule with stable ids, so a rule re-run after an interruption writes nothing twice;
4. ``llm``: the ambiguous remainder (unknown vendors: what was bought is not in the
   vendor master) is classified in one concurrent batch when an LLM is configured;
   otherwise the step says why it was skipped and the items become INFO flags;
5. ``finish``: flush the hash-chained trail, mark the run complete, verify the trail.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from audit_core._settings import Settings
from audit_core.db import AuditTrail, Flag, FlagStore, ensure_schema
from audit_core.db._flags import flag_id_for
from audit_core.db.schemas import RISK_LEVELS, SEVERITIES
from audit_core.errors import ConfigError, StateStoreUnavailableError
from audit_core.state import AsyncStateStore
from audit_core.warehouse import DatabricksClient

AGENT = "demo-auditor"
ROUND_THRESHOLD = Decimal(1000)
LABELS = ["business", "personal", "suspicious"]
LLM_RISK = {"suspicious": "HIGH", "personal": "MEDIUM", "business": "LOW"}
STEPS = ("lock", "load", "checks", "llm", "finish")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    name: str
    risk_level: str
    confidence: float
    title: str
    sql: str


_SINCE = "transaction_date > :since"
RULES: tuple[Rule, ...] = (
    Rule(
        name="duplicate_charge",
        risk_level="HIGH",
        confidence=0.95,
        title="Duplicate charge within 24 hours",
        sql="WITH t AS (SELECT transaction_id, amount, transaction_date, "
        "lag(transaction_id) OVER (PARTITION BY card_id, vendor_name, amount ORDER BY transaction_date) AS prev_id, "
        "lag(transaction_date) OVER (PARTITION BY card_id, vendor_name, amount ORDER BY transaction_date) AS prev_at "
        f"FROM gold.recent_transactions WHERE {_SINCE} AND amount > 0) "
        "SELECT transaction_id, amount, concat('same card, vendor and amount as ', prev_id, ', ', "
        "CAST(round((unix_timestamp(transaction_date) - unix_timestamp(prev_at)) / 60) AS INT), ' min earlier') AS detail "
        "FROM t WHERE prev_at IS NOT NULL AND unix_timestamp(transaction_date) - unix_timestamp(prev_at) < 86400",
    ),
    Rule(
        name="round_amount",
        risk_level="MEDIUM",
        confidence=0.6,
        title="Round amount over the threshold",
        sql="SELECT transaction_id, amount, concat('round amount ', CAST(amount AS STRING)) AS detail "
        f"FROM gold.recent_transactions WHERE {_SINCE} AND amount >= :round_threshold AND amount % 100 = 0",
    ),
    Rule(
        name="split_purchase",
        risk_level="HIGH",
        confidence=0.85,
        title="Split purchase under the approval limit",
        sql="WITH near AS (SELECT t.transaction_id, t.card_id, t.vendor_name, t.amount, "
        "to_date(t.transaction_date) AS day, c.approval_limit FROM gold.recent_transactions t "
        "JOIN gold.credit_cards c ON t.card_id = c.card_id WHERE t.transaction_date > :since "
        "AND t.amount < c.approval_limit AND t.amount >= c.approval_limit * 0.9), "
        "grp AS (SELECT card_id, vendor_name, day, count(*) AS n, sum(amount) AS total, "
        "max(approval_limit) AS lim FROM near GROUP BY card_id, vendor_name, day "
        "HAVING count(*) >= 2 AND sum(amount) > max(approval_limit)) "
        "SELECT n.transaction_id, n.amount, concat(CAST(g.n AS STRING), ' charges on one day totalling ', "
        "CAST(g.total AS STRING), ', each under the ', CAST(g.lim AS STRING), ' approval limit') AS detail "
        "FROM near n JOIN grp g ON n.card_id = g.card_id AND n.vendor_name = g.vendor_name AND n.day = g.day",
    ),
    Rule(
        name="weekend_spend",
        risk_level="LOW",
        confidence=0.5,
        title="Weekend spend",
        sql="SELECT transaction_id, amount, concat('charged on a ', date_format(transaction_date, 'EEEE')) AS detail "
        f"FROM gold.recent_transactions WHERE {_SINCE} AND dayofweek(transaction_date) IN (1, 7)",
    ),
    Rule(
        name="card_bank_mismatch",
        risk_level="HIGH",
        confidence=0.9,
        title="Charge settled to another bank account",
        sql="SELECT t.transaction_id, t.amount, concat('charged to ', t.account_id, ', card ', t.card_id, "
        "' settles to ', c.account_id) AS detail FROM gold.recent_transactions t "
        "JOIN gold.credit_cards c ON t.card_id = c.card_id "
        "WHERE t.transaction_date > :since AND t.account_id <> c.account_id",
    ),
)
UNKNOWN_VENDOR_SQL = (
    "SELECT transaction_id, amount, vendor_name, description, department, merchant_category_code "
    f"FROM gold.recent_transactions WHERE {_SINCE} AND vendor_id IS NULL ORDER BY transaction_id"
)


CLASSIFY_INSTRUCTIONS = (
    "You review corporate card transactions whose vendor is not in the vendor "
    "master. Decide whether each looks like a business expense, a personal "
    "expense on a company card, or suspicious (possible fraud)."
)


class _StopAfter(Exception):
    """``--stop-after STEP``: a simulated Ctrl-C at a step boundary (never leaves the CLI)."""


Interrupted = _StopAfter  # the name the CLI catches


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
    deterministic_ops: int = 0
    llm_items: int = 0
    llm_note: str = ""
    llm_costs: dict[str, Any] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)
    skipped_steps: list[str] = field(default_factory=list)
    trail_ok: bool | None = None
    trail_rows: int = 0
    results_path: str = ""
    state_url: str = ""


class Progress:
    """A one-line progress display on stderr, only when stderr is a terminal."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.enabled = stream.isatty()

    def show(self, text: str) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K" + text)
            self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


async def run_demo(
    settings: Settings,
    *,
    out_dir: Path,
    rows: int | None = None,
    resume: str | None = None,
    stop_after: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """Run one audit pass; returns the report (see `render`)."""
    progress = progress or Progress()
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    fixtures = settings.fixtures_dir
    if rows is not None:
        from audit_core.fixtures import generate

        fixtures = out_dir / f"generated-{rows}"
        if not (fixtures / "manifest.json").is_file():
            progress.show(f"generating {rows:,} transactions...")
            await asyncio.to_thread(generate, rows, 7, fixtures)
    run_id = resume or f"audit-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    report = Report(run_id=run_id, resumed=resume is not None)
    results_db = out_dir / "audit.duckdb"
    report.results_path = str(results_db)

    store = AsyncStateStore.from_settings(settings)
    report.state_url = store.url + ("" if store.durable else " (embedded, not durable)")
    warehouse = (
        DatabricksClient.from_settings(settings)
        if rows is None
        else DatabricksClient.local(fixtures)
    )
    results = DatabricksClient.local(database=str(results_db), load_fixtures=False)
    async with store, warehouse, results:
        if store.durable and not await store.health():
            raise StateStoreUnavailableError(f"state store {store.url} is unreachable")
        await ensure_schema(results)
        flags = FlagStore(results)
        trail = AuditTrail.from_env(results, run_id)
        async with trail, store.lock(run_id, ttl_s=60, wait_s=5):
            state = await _restore(store, results, run_id)
            if resume is not None and not state:
                raise ConfigError(f"nothing to resume: no saved state for run {run_id!r}")
            if state.get("status") == "completed":
                raise ConfigError(f"run {run_id!r} is already completed")
            done: list[str] = list(state.get("steps_done", []))
            state.setdefault("started_at", datetime.now(UTC).isoformat())

            async def checkpoint(step: str, **changes: Any) -> None:
                if step not in done:
                    done.append(step)
                await trail.flush()  # the head is in audit_trail_heads; keep it here too
                state.update(
                    changes,
                    steps_done=done,
                    current_step=step,
                    status="in_progress",
                    trail_head=trail.head.as_state(),
                )
                await store.save(run_id, state)
                await _save_row(results, run_id, state)
                if stop_after == step:
                    raise Interrupted(step)

            # 1. lock + restore -------------------------------------------------------
            t0 = time.perf_counter()
            await trail.record(AGENT, "state.restore", output_summary=f"resumed={report.resumed}")
            report.step_seconds["lock"] = time.perf_counter() - t0
            await checkpoint("lock")

            # 2. load ------------------------------------------------------------------
            t0 = time.perf_counter()
            if "load" in done:
                since = datetime.fromisoformat(state["since"])
                report.rows_scanned = int(state["rows_scanned"])
                report.skipped_steps.append("load")
            else:
                progress.show("load: reading transactions since the last completed audit...")
                async with trail.trace(AGENT, "warehouse.get_last_audit_timestamp") as t:
                    since = await warehouse.get_last_audit_timestamp()
                    count = await warehouse.query_arrow(
                        f"SELECT count(*) AS n FROM gold.recent_transactions WHERE {_SINCE}",
                        {"since": since},
                    )
                    report.rows_scanned = int(count.column(0)[0].as_py())
                    t.output_summary = f"{report.rows_scanned} rows since {since.isoformat()}"
            report.since = since
            report.step_seconds["load"] = time.perf_counter() - t0
            await checkpoint("load", since=since.isoformat(), rows_scanned=report.rows_scanned)

            # 3. deterministic checks ----------------------------------------------------
            t0 = time.perf_counter()
            rules_done: dict[str, int] = dict(state.get("rules_done", {}))
            params = {"since": since, "round_threshold": ROUND_THRESHOLD}
            for i, rule in enumerate(RULES, 1):
                if rule.name in rules_done:
                    continue
                progress.show(f"checks: {rule.name} ({i}/{len(RULES)})")
                async with trail.trace(AGENT, f"rule.{rule.name}") as t:
                    hits = await warehouse.query_arrow(
                        rule.sql, {k: v for k, v in params.items() if f":{k}" in rule.sql}
                    )
                    found = [_rule_flag(run_id, rule, r) for r in hits.to_pylist()]
                    await flags.add_many(found, skip_existing=True)
                    t.output_summary = f"{len(found)} flags"
                rules_done[rule.name] = len(found)
                await checkpoint(
                    "checks" if i == len(RULES) else f"checks.{rule.name}", rules_done=rules_done
                )
            if "checks" not in done:
                await checkpoint("checks", rules_done=rules_done)
            elif report.resumed:
                report.skipped_steps.append("checks")
            report.step_seconds["checks"] = time.perf_counter() - t0

            # 4. the ambiguous remainder -------------------------------------------------
            t0 = time.perf_counter()
            ambiguous = (
                await warehouse.query_arrow(UNKNOWN_VENDOR_SQL, {"since": since})
            ).to_pylist()
            report.llm_items = len(ambiguous)
            if "llm" in done:
                report.skipped_steps.append("llm")
                report.llm_note = state.get("llm_note", "")
                report.llm_costs = state.get("llm_costs", {})
            else:
                progress.show(f"llm: {len(ambiguous)} ambiguous transactions")
                note, costs = await _llm_stage(settings, run_id, ambiguous, flags, trail)
                report.llm_note, report.llm_costs = note, costs
                await checkpoint("llm", llm_note=note, llm_costs=costs)
            report.step_seconds["llm"] = time.perf_counter() - t0

            # 5. finish ------------------------------------------------------------------
            t0 = time.perf_counter()
            all_flags = await results.query_arrow(
                "SELECT rule, severity_level, risk_level, count(*) AS n FROM flags "
                "WHERE audit_run_id = :run GROUP BY rule, severity_level, risk_level",
                {"run": run_id},
            )
            for row in all_flags.to_pylist():
                report.flags_by_rule[row["rule"]] += row["n"]
                report.flags_by_severity[row["severity_level"]] += row["n"]
                report.flags_by_risk[row["risk_level"]] += row["n"]
            report.flags_written = sum(report.flags_by_rule.values())
            report.deterministic_ops = report.rows_scanned * (len(RULES) + 1)
            await trail.record(
                AGENT, "run.complete", output_summary=f"{report.flags_written} flags"
            )
            head = await trail.complete()
            verification = await trail.verify()
            report.trail_ok, report.trail_rows = verification.ok, verification.rows
            summary = {
                "rows_scanned": report.rows_scanned,
                "flags": report.flags_written,
                "flags_by_severity": dict(report.flags_by_severity),
                "trail_rows": head.rows,
                "trail_head": head.last_hash,
                "trail_hash_algorithm": head.hash_algorithm,
            }
            state.update(
                status="completed",
                current_step="finish",
                steps_done=[*done, "finish"],
                trail_head=head.as_state(),
            )
            await store.mark_complete(run_id, summary)
            state["summary"] = summary
            state["completed_at"] = datetime.now(UTC).isoformat()
            await _save_row(results, run_id, state, completed=True)
            report.step_seconds["finish"] = time.perf_counter() - t0
    progress.done()
    return report


async def _restore(
    store: AsyncStateStore, results: DatabricksClient, run_id: str
) -> dict[str, Any]:
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
    await results.execute("DELETE FROM workflow_state WHERE audit_run_id = :run", {"run": run_id})
    await results.execute(
        "INSERT INTO workflow_state (audit_run_id, workflow_status, current_agent, "
        "completed_agents, pending_agents, intermediate_results, created_at, updated_at, "
        "completed_at, error_message) VALUES (:run, :status, :agent, :done, :todo, :data, "
        ":started, :now, :completed, NULL)",
        {
            "run": run_id,
            "status": "completed" if completed else "in_progress",
            "agent": state.get("current_step"),
            "done": json.dumps(done),
            "todo": json.dumps([s for s in STEPS if s not in done]),
            "data": json.dumps(state, default=str, sort_keys=True),
            "started": datetime.fromisoformat(state["started_at"]),
            "now": now,
            "completed": now if completed else None,
        },
    )


def _rule_flag(run_id: str, rule: Rule, hit: dict[str, Any]) -> Flag:
    return Flag(
        audit_run_id=run_id,
        transaction_id=hit["transaction_id"],
        risk_level=rule.risk_level,
        confidence_score=rule.confidence,
        explanation=hit["detail"],
        rule=rule.name,
        title=rule.title,
        amount=hit["amount"],
        detected_by="sql-rules",
        flag_id=flag_id_for(run_id, rule.name, hit["transaction_id"]),
    )


def _unknown_vendor_flag(
    run_id: str,
    row: dict[str, Any],
    *,
    risk_level: str,
    confidence: float,
    title: str,
    explanation: str,
    detected_by: str,
    evidence: Any = None,
) -> Flag:
    return Flag(
        audit_run_id=run_id,
        transaction_id=row["transaction_id"],
        risk_level=risk_level,
        confidence_score=confidence,
        explanation=explanation,
        supporting_evidence_links=evidence,
        rule="unknown_vendor",
        title=title,
        amount=row["amount"],
        detected_by=detected_by,
        flag_id=flag_id_for(run_id, "unknown_vendor", row["transaction_id"]),
    )


async def _llm_stage(
    settings: Settings,
    run_id: str,
    ambiguous: list[dict[str, Any]],
    flags: FlagStore,
    trail: AuditTrail,
) -> tuple[str, dict[str, Any]]:
    """Classify the ambiguous items, or turn them into INFO flags when no LLM is configured."""
    if not ambiguous:
        return "nothing ambiguous to classify", {}
    if not settings.openrouter_api_key:
        note = (
            f"skipped: no OPENROUTER_API_KEY (or AUDIT_LLM_BASE_URL endpoint key) is set; "
            f"{len(ambiguous)} unknown-vendor transactions became INFO flags for human review"
        )
        skipped = [
            _unknown_vendor_flag(
                run_id,
                r,
                risk_level="INFO",
                confidence=0.5,
                title="Unknown vendor: needs human review (LLM stage skipped)",
                explanation=f"{r['vendor_name']}: {r['description']}",
                detected_by="sql-rules",
            )
            for r in ambiguous
        ]
        await flags.add_many(skipped, skip_existing=True)
        await trail.record(AGENT, "llm.skipped", output_summary=note)
        return note, {}
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
    async with AsyncLLMClient.from_settings(settings, trail=trail) as llm:
        answers = await llm.classify(
            items,
            LABELS,
            agent_name="vendor-classifier",
            batch_size=10,
            instructions=CLASSIFY_INSTRUCTIONS,
        )
        costs = llm.costs.snapshot()
    found = []
    for row, answer in zip(ambiguous, answers, strict=True):
        if answer.label is None:
            risk, confidence, title = "INFO", 0.5, "Unknown vendor: LLM gave no valid answer"
        else:
            risk = LLM_RISK[answer.label]
            confidence = round(float(answer.confidence or 0.0), 3)
            title = f"Unknown vendor classified {answer.label}"
        evidence = {"model": answer.model, "escalated": answer.escalated, "label": answer.label}
        found.append(
            _unknown_vendor_flag(
                run_id,
                row,
                risk_level=risk,
                confidence=confidence,
                title=title,
                explanation=answer.rationale or f"{row['vendor_name']}: {row['description']}",
                detected_by="llm:" + answer.model,
                evidence=evidence,
            )
        )
    await flags.add_many(found, skip_existing=True)
    escalated = sum(1 for a in answers if a.escalated)
    note = f"classified {len(answers)} items ({escalated} escalated)"
    return note, costs


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
    verdict = "verified" if report.trail_ok else "FAILED verification"
    lines.append(f"  audit trail           {report.trail_rows} entries, hash chain {verdict}")
    lines.append(
        f"  results               {report.results_path} (flags, audit_trail, workflow_state)"
    )
    lines.append(f"  state store           {report.state_url}")
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
        "llm_items": report.llm_items,
        "llm_note": report.llm_note,
        "llm_costs": report.llm_costs,
        "step_seconds": report.step_seconds,
        "trail_ok": report.trail_ok,
        "trail_rows": report.trail_rows,
        "results": report.results_path,
    }
    return json.dumps(data, indent=2, default=str)
