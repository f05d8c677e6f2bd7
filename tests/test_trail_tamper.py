"""Tampering with a stored trail, checked the way ``audit-core trail verify`` checks it.

Each run is written through the warehouse to a results file, altered with plain DuckDB
(as anyone with write access could), then verified from the file opened read-only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient
from audit_core.db import AuditTrail, ReadOnlyResults, ensure_schema, read_head
from audit_core.db._chain import entry_hash
from audit_core.db._verify_cmd import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_TAMPERED,
    flags_command,
    trail_head_command,
    trail_verify_command,
)
from audit_core.errors import ConfigError, QueryError

RUN = "run-t"
KEY = "correct horse battery staple"


async def write_run(
    out: Path, *, rows: int = 5, key: str | None = None, complete: bool = True
) -> None:
    """A run of ``rows`` entries in ``out/audit.duckdb``, flushed two at a time."""
    async with DatabricksClient.local(
        database=str(out / "audit.duckdb"), load_fixtures=False, registry=CollectorRegistry()
    ) as wh:
        await ensure_schema(wh)
        async with AuditTrail(wh, RUN, key=key, batch_size=2) as trail:
            for i in range(1, rows + 1):
                await trail.record(
                    "agent", "tool", output_summary=f"step {i}", llm_cost_dollars=Decimal("0.001")
                )
            if complete:
                await trail.complete()


def tamper(out: Path, *statements: str) -> None:
    con = duckdb.connect(str(out / "audit.duckdb"))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def rechain(out: Path, *, key: str | None = None, algorithm: str | None = None) -> None:
    """A forger's rewrite: row 2 edited and every hash from row 1 recomputed (own key)."""
    con = duckdb.connect(str(out / "audit.duckdb"))
    try:
        cursor = con.execute("SELECT * FROM audit_trail ORDER BY log_sequence_number")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        prev = "0" * 64
        for row in rows:
            if row["log_sequence_number"] == 2:
                row["output_summary"] = "nothing to see"
            row["hash_algorithm"] = algorithm or row["hash_algorithm"]
            row["prev_hash"] = prev
            row["entry_hash"] = prev = entry_hash(row, prev, key.encode() if key else None)
            columns = ("output_summary", "hash_algorithm", "prev_hash", "entry_hash")
            con.execute(
                "UPDATE audit_trail SET output_summary = ?, hash_algorithm = ?, prev_hash = ?, "
                "entry_hash = ? WHERE log_sequence_number = ?",
                [*(row[c] for c in columns), row["log_sequence_number"]],
            )
    finally:
        con.close()


def rewrite_heads(out: Path) -> None:
    """The same forger also replaces every head with one matching the new chain."""
    tamper(
        out,
        "DELETE FROM audit_trail_heads",
        "INSERT INTO audit_trail_heads SELECT audit_run_id, log_sequence_number, entry_hash, "
        "hash_algorithm, TRUE, now() FROM audit_trail "
        "WHERE log_sequence_number = (SELECT max(log_sequence_number) FROM audit_trail)",
    )


TAMPERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "edit-text": (
        lambda out: tamper(
            out, "UPDATE audit_trail SET output_summary = 'x' WHERE log_sequence_number = 3"
        ),
        "FAILED at entry 3: row 3 was altered",
    ),
    "edit-cost": (
        lambda out: tamper(
            out, "UPDATE audit_trail SET llm_cost_dollars = 0 WHERE log_sequence_number = 2"
        ),
        "FAILED at entry 2: row 2 was altered",
    ),
    "delete-middle": (
        lambda out: tamper(out, "DELETE FROM audit_trail WHERE log_sequence_number = 3"),
        "FAILED at entry 3: row 3 is missing",
    ),
    "delete-first": (
        lambda out: tamper(out, "DELETE FROM audit_trail WHERE log_sequence_number = 1"),
        "FAILED at entry 1: row 1 is missing",
    ),
    "delete-last": (
        lambda out: tamper(out, "DELETE FROM audit_trail WHERE log_sequence_number = 5"),
        "FAILED at entry 5: truncated: the trail ends at row 4",
    ),
    "delete-last-three": (
        lambda out: tamper(out, "DELETE FROM audit_trail WHERE log_sequence_number >= 3"),
        "FAILED at entry 3: truncated: the trail ends at row 2",
    ),
    "delete-all": (
        lambda out: tamper(out, "DELETE FROM audit_trail"),
        "FAILED at entry 1: truncated: the trail ends at row 0",
    ),
    "swap": (
        lambda out: tamper(
            out,
            "UPDATE audit_trail SET log_sequence_number = CASE log_sequence_number "
            "WHEN 2 THEN 3 ELSE 2 END WHERE log_sequence_number IN (2, 3)",
        ),
        "FAILED at entry 2: row 2 does not follow row 1",
    ),
    "re-number": (
        lambda out: tamper(
            out,
            "DELETE FROM audit_trail WHERE log_sequence_number = 3",
            "UPDATE audit_trail SET log_sequence_number = log_sequence_number - 1 "
            "WHERE log_sequence_number > 3",
        ),
        "FAILED at entry 3: row 3 does not follow row 2",
    ),
    "recomputed-chain": (
        rechain,
        "FAILED at entry 2: row 2 does not match the head stored with the trail",
    ),
    "appended-after-completion": (
        lambda out: tamper(
            out,
            "INSERT INTO audit_trail SELECT audit_run_id, 6, agent_name, tool_called, timestamp, "
            "execution_time_ms, input_data, output_summary, llm_model, llm_tokens_used, "
            "llm_cost_dollars, error_message, error_stack_trace, decision_chain, hash_algorithm, "
            "entry_hash, entry_hash FROM audit_trail WHERE log_sequence_number = 5",
        ),
        "FAILED at entry 6: row 6",
    ),
}


@pytest.mark.parametrize("name", list(TAMPERS))
async def test_each_tampering_exits_non_zero_naming_the_row(tmp_path: Path, name: str) -> None:
    """Edit, delete (middle, first, last, last three, all), swap, re-number, recompute."""
    await write_run(tmp_path)
    assert (await trail_verify_command(tmp_path, RUN))[0] == EXIT_OK
    change, expected = TAMPERS[name]
    change(tmp_path)
    code, text = await trail_verify_command(tmp_path, RUN)
    assert code == EXIT_TAMPERED
    assert text.startswith(expected), text


async def test_a_recomputed_chain_and_heads_fail_against_the_published_head(
    tmp_path: Path,
) -> None:
    """A forger who rewrites trail and heads alike is caught by the head published earlier."""
    await write_run(tmp_path)
    code, statement = await trail_head_command(tmp_path, RUN)
    assert code == EXIT_OK
    published = tmp_path / "head.json"
    published.write_text(statement)
    rechain(tmp_path)
    rewrite_heads(tmp_path)
    assert (await trail_verify_command(tmp_path, RUN))[0] == EXIT_OK  # the database alone agrees
    code, text = await trail_verify_command(tmp_path, RUN, head_file=published)
    assert code == EXIT_TAMPERED
    assert text.startswith("FAILED at entry 5: row 5 does not match the published head")


async def test_keyed_trail_verifies_with_the_key_and_says_unkeyed_without(tmp_path: Path) -> None:
    """With the key every HMAC is checked; without it the check says what it could not do."""
    await write_run(tmp_path, key=KEY)
    code, text = await trail_verify_command(tmp_path, RUN, key=KEY)
    assert (code, text) == (
        EXIT_OK,
        "ok: 5 entries, hash chain intact, run completed (keyed: every HMAC checked)",
    )
    code, text = await trail_verify_command(tmp_path, RUN)
    assert code == EXIT_OK
    assert "unkeyed check only" in text
    code, text = await trail_verify_command(tmp_path, RUN, key="a wrong key")
    assert (code, text) == (EXIT_TAMPERED, "FAILED at entry 1: row 1 was altered")


async def test_a_chain_recomputed_without_the_key_fails(tmp_path: Path) -> None:
    """A forger's own key, or plain SHA-256, never verifies; without the key the heads and
    the published head still catch the rewrite."""
    await write_run(tmp_path, key=KEY)
    published = tmp_path / "head.json"
    published.write_text((await trail_head_command(tmp_path, RUN, key=KEY))[1])
    rechain(tmp_path, key="the forger's key")
    code, text = await trail_verify_command(tmp_path, RUN, key=KEY)
    assert (code, text) == (EXIT_TAMPERED, "FAILED at entry 1: row 1 was altered")
    code, text = await trail_verify_command(tmp_path, RUN)
    assert code == EXIT_TAMPERED
    assert "row 2 does not match the head stored with the trail" in text
    rewrite_heads(tmp_path)
    code, text = await trail_verify_command(tmp_path, RUN, head_file=published)
    assert code == EXIT_TAMPERED
    assert "row 5 does not match the published head" in text
    rechain(tmp_path, algorithm="sha256")  # downgraded to an unkeyed chain
    rewrite_heads(tmp_path)
    code, text = await trail_verify_command(tmp_path, RUN, key=KEY)
    assert code == EXIT_TAMPERED
    assert text.startswith("FAILED at entry 1: row 1 is not keyed (sha256)")


async def test_head_statement_is_signed_and_a_forged_one_is_refused(tmp_path: Path) -> None:
    """The published head is JSON with an HMAC; an edited statement fails with the key."""
    await write_run(tmp_path, key=KEY)
    code, text = await trail_head_command(tmp_path, RUN, key=KEY)
    assert code == EXIT_OK
    statement = json.loads(text)
    assert statement["rows"] == 5
    assert statement["completed"] is True
    assert statement["mac"].startswith("hmac-sha256:")
    good = tmp_path / "good.json"
    good.write_text(text)
    code, text = await trail_verify_command(tmp_path, RUN, head_file=good, key=KEY)
    assert code == EXIT_OK
    assert text.endswith("matches the published head at row 5")
    statement["rows"] = 3
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(statement))
    code, text = await trail_verify_command(tmp_path, RUN, head_file=forged, key=KEY)
    assert (code, text) == (
        EXIT_TAMPERED,
        "FAILED: the head statement's signature does not verify with this key",
    )
    with pytest.raises(ConfigError, match="not 'other'"):
        await trail_verify_command(tmp_path, "other", head_file=good, key=KEY)


async def test_trail_head_refuses_to_vouch_for_a_tampered_trail(tmp_path: Path) -> None:
    await write_run(tmp_path)
    tamper(tmp_path, "DELETE FROM audit_trail WHERE log_sequence_number = 5")
    code, text = await trail_head_command(tmp_path, RUN)
    assert code == EXIT_TAMPERED
    assert "{" not in text


async def test_a_run_that_never_completed_is_reported_apart_from_tampering(
    tmp_path: Path,
) -> None:
    """A crashed run exits 3 (not 0, not 1), and says so; rows past its head too."""
    await write_run(tmp_path, complete=False)
    code, text = await trail_verify_command(tmp_path, RUN)
    assert code == EXIT_INCOMPLETE
    assert text.startswith("INCOMPLETE: 5 entries, hash chain intact so far")
    assert "never completed (last head at row 5 of 5)" in text
    # a crash between writing rows and their head: rows no head covers yet
    tamper(tmp_path, "DELETE FROM audit_trail_heads WHERE row_count = 5")
    code, text = await trail_verify_command(tmp_path, RUN)
    assert code == EXIT_INCOMPLETE
    assert "last head at row 4 of 5" in text


async def test_verify_reads_the_results_file_without_changing_it(tmp_path: Path) -> None:
    """Verification and listing open the file read-only: its bytes stay the same, and the
    connection refuses writes."""
    await write_run(tmp_path)
    path = tmp_path / "audit.duckdb"
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    files = sorted(p.name for p in tmp_path.iterdir())
    path.chmod(0o444)
    try:
        assert (await trail_verify_command(tmp_path, RUN))[0] == EXIT_OK
        assert await flags_command(tmp_path, pending=True) == (EXIT_OK, "(no flags)")
        async with ReadOnlyResults.open(path) as results:
            with pytest.raises(QueryError, match="read-only"):
                await results.query_arrow("INSERT INTO audit_schema_version VALUES (9, now(), 'x')")
    finally:
        path.chmod(0o644)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # no WAL, no lock file


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda out: trail_verify_command(out / "nowhere", RUN), "no results database"),
        (lambda out: trail_verify_command(out, "no-such-run"), "no audit trail for run"),
        (lambda out: trail_head_command(out, "no-such-run"), "no audit trail for run"),
        (lambda out: flags_command(out / "nowhere"), "run `audit-core demo` first"),
    ],
    ids=["no-database", "no-run", "head-no-run", "flags-no-database"],
)
async def test_missing_database_or_run_is_a_config_error(
    tmp_path: Path, call: Callable[[Path], Awaitable[Any]], message: str
) -> None:
    await write_run(tmp_path, rows=1)
    with pytest.raises(ConfigError, match=message):
        await call(tmp_path)


async def keep_head_in_workflow_state(out: Path) -> None:
    """What the demo does at its last step: the final head goes into the run's state."""
    async with DatabricksClient.local(
        database=str(out / "audit.duckdb"), load_fixtures=False, registry=CollectorRegistry()
    ) as wh:
        head = await AuditTrail(wh, RUN).verify()
        assert head.ok
        final = await read_head(wh, RUN)
        assert final is not None
        await wh.execute(
            "INSERT INTO workflow_state (audit_run_id, workflow_status, intermediate_results) "
            "VALUES (:run, 'completed', :state)",
            {"run": RUN, "state": json.dumps({"trail_head": final.as_state()})},
        )


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        (
            (
                "DELETE FROM audit_trail WHERE log_sequence_number >= 4",
                "DELETE FROM audit_trail_heads WHERE row_count > 2",
            ),
            "FAILED at entry 4: truncated: the trail ends at row 3 but the head in the run's "
            "workflow state records 5",
        ),
        (
            ("DELETE FROM audit_trail_heads WHERE completed",),
            "FAILED at entry 5: the head in the run's workflow state says the run completed "
            "at row 5, but no completed head is stored with the trail",
        ),
    ],
    ids=["tail-and-heads-cut", "completed-head-removed"],
)
async def test_cutting_heads_too_is_caught_by_the_head_in_the_workflow_state(
    tmp_path: Path, statements: tuple[str, ...], expected: str
) -> None:
    """A forger who trims the heads with the tail still disagrees with the run's state."""
    await write_run(tmp_path)
    await keep_head_in_workflow_state(tmp_path)
    tamper(tmp_path, *statements)
    code, text = await trail_verify_command(tmp_path, RUN)
    assert (code, text) == (EXIT_TAMPERED, expected)
