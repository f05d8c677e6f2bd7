"""The logic behind ``audit-core trail verify``, ``trail head`` and ``flags``.

Each function takes plain values and returns ``(exit_code, text for stdout)``; missing
databases or runs raise `ConfigError` (the CLI's exit 2). The results database is
opened read-only (`ReadOnlyResults`), so these work on read-only media and never change
the evidence they read.

Exit codes of ``trail verify``: `EXIT_OK` intact and completed, `EXIT_TAMPERED` edited,
removed, reordered, forged or cut off, `EXIT_INCOMPLETE` intact so far but the run
never completed (crashed, or still running).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from audit_core._arrow import rows as arrow_rows
from audit_core.db._chain import TrailVerification, head_statement, parse_head_statement
from audit_core.db._flags import Flag, FlagFilter, count_flags, find_flags
from audit_core.db._layout import SCHEMA_VERSION
from audit_core.db._migration import schema_version
from audit_core.db._reader import ReadOnlyResults
from audit_core.db._trail import TRAIL_KEY_ENV, column_drift, read_head, verify_run
from audit_core.errors import ConfigError, TrailVerificationError

__all__ = [
    "EXIT_INCOMPLETE",
    "EXIT_OK",
    "EXIT_TAMPERED",
    "RESULTS_FILE",
    "flags_as_records",
    "flags_command",
    "runs_command",
    "trail_head_command",
    "trail_key_from_env",
    "trail_verify_command",
]

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_INCOMPLETE = 3
RESULTS_FILE = "audit.duckdb"


def trail_key_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``AUDIT_TRAIL_KEY``, or None when unset or empty."""
    env = os.environ if environ is None else environ
    return env.get(TRAIL_KEY_ENV) or None


async def _open(out: Path) -> ReadOnlyResults:
    """The results database, read-only; `ConfigError` unless it is at schema version 2."""
    results = ReadOnlyResults.open(out / RESULTS_FILE)
    try:
        version = await schema_version(results)
    except BaseException:
        await results.aclose()
        raise
    if version != SCHEMA_VERSION:
        await results.aclose()
        raise ConfigError(
            f"{results.path} is at schema version {version}, not {SCHEMA_VERSION}; open it "
            f"once read-write to migrate it (`audit-core init-db --dialect duckdb --apply "
            f"{results.path}`)"
        )
    return results


async def _missing_tables(results: ReadOnlyResults, names: tuple[str, ...]) -> list[str]:
    found = await results.query_arrow(
        "SELECT table_name FROM information_schema.tables WHERE table_name IN "
        f"({', '.join(':t' + str(i) for i in range(len(names)))})",
        {f"t{i}": name for i, name in enumerate(names)},
    )
    present = set(found.column(0).to_pylist())
    return [name for name in names if name not in present]


async def _catalog(results: ReadOnlyResults) -> tuple[str | None, list[str]]:
    """(why the trail cannot be checked at all, or None; its retyped columns).

    A schema-v2 file always has both tables with every column: one was dropped, and
    nothing from the first entry on can be vouched for."""
    gone = await _missing_tables(results, ("audit_trail", "audit_trail_heads"))
    retyped: list[str] = []
    if not gone:
        gone, retyped = await column_drift(results)
    if not gone:
        return None, retyped
    unreadable = (
        f"FAILED at entry 1: {', '.join(gone)} is missing from {results.path}; "
        "the trail cannot be checked against its heads"
    )
    return unreadable, retyped


async def _has_trail(results: ReadOnlyResults, run_id: str) -> bool:
    found = await results.query_arrow(
        "SELECT count(*) AS n FROM audit_trail WHERE audit_run_id = :run", {"run": run_id}
    )
    heads = await results.query_arrow(
        "SELECT count(*) AS n FROM audit_trail_heads WHERE audit_run_id = :run", {"run": run_id}
    )
    return bool(found.column(0)[0].as_py() or heads.column(0)[0].as_py())


def _describe(result: TrailVerification) -> tuple[int, str]:
    if result.status == "tampered":
        where = result.first_bad_sequence
        return EXIT_TAMPERED, f"FAILED at entry {where}: {result.problem}"
    if result.keyed:
        check = "keyed: every HMAC checked"
    elif result.unkeyed_only:
        check = f"unkeyed check only: the entries are HMACs; set {TRAIL_KEY_ENV} to check them"
    else:
        check = "unkeyed chain"
    if result.status == "incomplete":
        text = f"INCOMPLETE: {result.rows} entries, hash chain intact so far; {result.problem}"
        return EXIT_INCOMPLETE, f"{text} ({check})"
    return EXIT_OK, f"ok: {result.rows} entries, hash chain intact, run completed ({check})"


async def trail_verify_command(
    out: Path, run_id: str, *, head_file: Path | None = None, key: str | None = None
) -> tuple[int, str]:
    """``audit-core trail verify RUN_ID [--head FILE]`` on ``out/audit.duckdb``."""
    statement = None
    if head_file is not None:
        try:
            text = await asyncio.to_thread(head_file.read_text)
        except OSError as exc:
            raise ConfigError(f"cannot read head statement {head_file}: {exc.strerror}") from None
        try:
            statement = parse_head_statement(text, key)
        except TrailVerificationError as exc:
            return EXIT_TAMPERED, f"FAILED: {exc}"
        if statement.audit_run_id != run_id:
            raise ConfigError(
                f"{head_file} is the head of run {statement.audit_run_id!r}, not {run_id!r}"
            )
    async with await _open(out) as results:
        unreadable, retyped = await _catalog(results)
        if unreadable is not None:
            return EXIT_TAMPERED, unreadable
        if not await _has_trail(results, run_id):
            raise ConfigError(f"no audit trail for run {run_id!r}")
        result = await verify_run(results, run_id, key=key, statement=statement, retyped=retyped)
    code, text = _describe(result)
    if statement is not None and code != EXIT_TAMPERED:
        text += f"; matches the published head at row {statement.rows}"
    return code, text


async def trail_head_command(out: Path, run_id: str, *, key: str | None = None) -> tuple[int, str]:
    """``audit-core trail head RUN_ID``: the verified head as a (signed) JSON statement.

    A trail that does not verify gets no statement (exit 1): publishing a head vouches
    for everything up to it.
    """
    async with await _open(out) as results:
        unreadable, retyped = await _catalog(results)
        if unreadable is not None:
            return EXIT_TAMPERED, unreadable
        if not await _has_trail(results, run_id):
            raise ConfigError(f"no audit trail for run {run_id!r}")
        result = await verify_run(results, run_id, key=key, retyped=retyped)
        head = await read_head(results, run_id)
    if result.status == "tampered":
        return _describe(result)
    if head is None:
        return EXIT_INCOMPLETE, f"no head recorded for run {run_id!r}: nothing to publish"
    return EXIT_OK, head_statement(head, key).rstrip("\n")


def _flag_lines(flag: Flag) -> str:
    amount = f"{flag.amount:>12,}" if flag.amount is not None else " " * 12
    review = flag.human_decision or ("reviewed" if flag.reviewed else "pending")
    day = f"{flag.transaction_date:%Y-%m-%d}" if flag.transaction_date else "-"
    vendor = (flag.vendor_name or "-")[:28]
    head = (
        f"{flag.severity_level:<8} {flag.risk_level or '-':<8} {flag.rule or '-':<20} "
        f"{flag.transaction_id or '-':<14} {amount}  {day:<10}  {vendor:<28} "
        f"{review:<9} {flag.flag_id}"
    )
    return f"{head}\n    {flag.title or ''}: {flag.explanation}  (run {flag.audit_run_id})"


_CSV_FIELDS = (
    "flag_id",
    "audit_run_id",
    "transaction_id",
    "severity_level",
    "risk_level",
    "confidence_score",
    "rule",
    "title",
    "explanation",
    "amount",
    "vendor_name",
    "department",
    "transaction_date",
    "reviewed",
    "human_decision",
    "reviewer_id",
    "review_timestamp",
    "reviewer_notes",
    "detected_by",
    "created_at",
)


def flags_as_records(found: list[Flag]) -> list[dict[str, Any]]:
    """Flags as plain JSON-ready records (amounts as decimal strings, times ISO 8601)."""
    records = []
    for flag in found:
        record: dict[str, Any] = {}
        for name in _CSV_FIELDS:
            value = getattr(flag, name)
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            record[name] = value
        record["supporting_evidence_links"] = flag.supporting_evidence_links
        records.append(record)
    return records


async def flags_command(
    out: Path,
    *,
    pending: bool = False,
    run: str | None = None,
    limit: int = 50,
    where: FlagFilter | None = None,
    format: str = "table",
) -> tuple[int, str]:
    """``audit-core flags``: most severe first, with evidence, vendor, amount and run;
    "N of M" says when the list stops short. ``format`` is table, csv or json."""
    chosen = where or FlagFilter(reviewed=False if pending else None, audit_run_id=run)
    if pending:
        chosen = replace(chosen, reviewed=False)
    async with await _open(out) as results:
        found = await find_flags(results, limit=limit, where=chosen)
        total = await count_flags(results, chosen)
    if format == "json":
        return EXIT_OK, json.dumps(flags_as_records(found), indent=2, default=str)
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=_CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(flags_as_records(found))
        return EXIT_OK, buffer.getvalue().rstrip("\n")
    if not found:
        return EXIT_OK, "(no flags)"
    more = f"; --limit {total} to see all" if total > len(found) else ""
    lines = [_flag_lines(f) for f in found]
    lines.append(f"{len(found)} of {total} flags{more}")
    return EXIT_OK, "\n".join(lines)


async def runs_command(out: Path, *, format: str = "table", limit: int = 50) -> tuple[int, str]:
    """``audit-core runs``: every run in the results database, newest first, with its
    status, window, rows, flags by severity, LLM cost and duration."""
    async with await _open(out) as results:
        runs = await results.query_arrow(
            "SELECT audit_run_id, workflow_status, current_agent, intermediate_results, "
            "created_at, updated_at, completed_at FROM workflow_state "
            f"ORDER BY created_at DESC, audit_run_id LIMIT {int(limit)}"
        )
        counts = await results.query_arrow(
            "SELECT audit_run_id, severity_level, count(*) AS n FROM flags "
            "GROUP BY audit_run_id, severity_level"
        )
    by_run: dict[str, dict[str, int]] = {}
    for row in arrow_rows(counts):
        by_run.setdefault(row["audit_run_id"], {})[row["severity_level"]] = row["n"]
    records = []
    for row in arrow_rows(runs):
        state = json.loads(row["intermediate_results"] or "{}")
        end = row["completed_at"] or row["updated_at"]
        seconds = (end - row["created_at"]).total_seconds() if end and row["created_at"] else None
        flags = by_run.get(row["audit_run_id"], {})
        records.append(
            {
                "run_id": row["audit_run_id"],
                "status": row["workflow_status"],
                "step": row["current_agent"],
                "since": state.get("since"),
                "rows": state.get("rows_scanned"),
                "flags": sum(flags.values()),
                "flags_by_severity": flags,
                "llm_cost_usd": (state.get("llm_costs") or {}).get("total_usd", "0"),
                "started_at": row["created_at"].isoformat() if row["created_at"] else None,
                "seconds": None if seconds is None else round(seconds, 1),
                "source": state.get("source"),
            }
        )
    if format == "json":
        return EXIT_OK, json.dumps(records, indent=2, default=str)
    if not records:
        return EXIT_OK, "(no runs)"
    lines = [
        f"{'run':<32} {'status':<11} {'since':<20} {'rows':>9} {'flags':>6} "
        f"{'CRIT':>5} {'WARN':>5} {'INFO':>5} {'LLM $':>9} {'secs':>7}"
    ]
    for r in records:
        sev = r["flags_by_severity"]
        since = (r["since"] or "-")[:19]
        rows = f"{r['rows']:,}" if r["rows"] is not None else "-"
        secs = f"{r['seconds']:.1f}" if r["seconds"] is not None else "-"
        lines.append(
            f"{r['run_id']:<32} {r['status']:<11} {since:<20} {rows:>9} {r['flags']:>6} "
            f"{sev.get('CRITICAL', 0):>5} {sev.get('WARNING', 0):>5} {sev.get('INFO', 0):>5} "
            f"{r['llm_cost_usd']:>9} {secs:>7}"
        )
    resumable = [r["run_id"] for r in records if r["status"] != "completed"]
    if resumable:
        lines.append(f"resume with: audit-core demo --resume {resumable[0]}")
    return EXIT_OK, "\n".join(lines)
