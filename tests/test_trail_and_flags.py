"""The hash-chained audit trail and the flag store, on the local (DuckDB) warehouse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient
from audit_core.db import AuditTrail, FlagStore, ensure_schema
from audit_core.errors import AuditTrailError, InvalidFlagError, QueryError


@pytest.fixture
async def wh() -> AsyncIterator[DatabricksClient]:
    async with DatabricksClient.local(load_fixtures=False, registry=CollectorRegistry()) as client:
        await ensure_schema(client)
        yield client


async def count(wh: DatabricksClient, sql: str, params: dict[str, object] | None = None) -> int:
    return int((await wh.query_arrow(sql, params)).column(0)[0].as_py())


async def test_thousand_concurrent_records_are_gap_free(wh: DatabricksClient) -> None:
    trail = AuditTrail(wh, "run-1", batch_size=64)
    seqs = await asyncio.gather(
        *(trail.record("agent", f"tool-{i}", input_data={"i": i}) for i in range(1000))
    )
    await trail.flush()
    assert sorted(seqs) == list(range(1, 1001))
    table = await wh.query_arrow(
        "SELECT log_sequence_number FROM audit_trail WHERE audit_run_id = 'run-1' ORDER BY 1"
    )
    assert table.column(0).to_pylist() == list(range(1, 1001))
    result = await trail.verify()
    assert result.intact, result.problem
    assert result.status == "incomplete"  # not completed yet: intact so far
    await trail.complete()
    assert await trail.verify()


async def test_resumed_trail_continues_the_chain(wh: DatabricksClient) -> None:
    async with AuditTrail(wh, "run-r") as first:
        for _ in range(3):
            await first.record("a", "t", llm_cost_dollars=Decimal("0.00015"), llm_tokens_used=12)
    second = AuditTrail(wh, "run-r")
    assert await second.record("a", "t2") == 4
    await second.complete()
    result = await second.verify()
    assert result.ok, result.problem
    assert result.rows == 4
    with pytest.raises(AuditTrailError, match="completed"):
        await AuditTrail(wh, "run-r").record("a", "t3")


async def test_trace_times_and_records_errors(wh: DatabricksClient) -> None:
    trail = AuditTrail(wh, "run-trace")

    @trail.trace("checker", "divide")
    async def divide(a: int, b: int) -> float:
        return a / b

    assert await divide(4, 2) == 2
    with pytest.raises(ZeroDivisionError):
        await divide(1, 0)
    async with trail.trace("checker", "sql", input_data={"rule": "dup"}) as t:
        t.output_summary = "3 rows"
    await trail.flush()
    result = await wh.query_arrow(
        "SELECT tool_called, error_message, error_stack_trace, output_summary, "
        "execution_time_ms, input_data FROM audit_trail "
        "WHERE audit_run_id = 'run-trace' ORDER BY log_sequence_number"
    )
    rows = result.to_pylist()
    assert [r["tool_called"] for r in rows] == ["divide", "divide", "sql"]
    assert rows[0]["error_message"] is None
    assert rows[1]["error_message"] == "ZeroDivisionError: division by zero"
    assert "Traceback" in rows[1]["error_stack_trace"]
    assert rows[2]["output_summary"] == "3 rows"
    assert rows[2]["input_data"] == '{"rule":"dup"}'
    assert all(r["execution_time_ms"] >= 0 for r in rows)
    assert (await trail.verify()).intact


async def test_bad_trail_input_is_rejected_and_nothing_lost(wh: DatabricksClient) -> None:
    trail = AuditTrail(wh, "run-bad")
    await trail.record("a", "t")
    with pytest.raises(AuditTrailError, match="Decimal"):
        await trail.record("a", "t", llm_cost_dollars=0.1)  # type: ignore[arg-type]
    with pytest.raises(AuditTrailError, match="llm_tokens_used"):
        await trail.record("a", "t", llm_tokens_used=-1)
    with pytest.raises(AuditTrailError, match="JSON"):
        await trail.record("a", "t", input_data={"x": object()})
    assert await trail.record("a", "t") == 2  # no sequence number was burnt
    assert (await trail.verify()).rows == 2


async def test_failed_flush_keeps_rows_and_the_next_flush_writes_them(
    wh: DatabricksClient,
) -> None:
    """A write that fails loses nothing: the rows stay pending, in order, and land later."""
    trail = AuditTrail(wh, "run-f")
    await trail.record("a", "t1")
    await trail.record("a", "t2")
    squatter = (
        "INSERT INTO audit_trail (audit_run_id, log_sequence_number, agent_name, tool_called, "
        "hash_algorithm, prev_hash, entry_hash) VALUES ('run-f', 2, 'x', 'x', 'sha256', '', '')"
    )
    await wh.execute(squatter)  # row 2 taken: the batch's insert fails as a whole
    with pytest.raises(QueryError):
        await trail.flush()
    assert trail.pending == 2
    await wh.execute("DELETE FROM audit_trail WHERE agent_name = 'x'")
    assert await trail.flush() == 2
    await trail.complete()
    assert await trail.verify()


async def test_closed_trail_refuses_records_and_flushes_on_close(wh: DatabricksClient) -> None:
    """`aclose` writes what is pending (twice is fine); a closed trail takes no more."""
    from audit_core.errors import ClientClosedError

    trail = AuditTrail(wh, "run-c", batch_size=100)
    async with trail:
        await trail.record("a", "t")
        assert trail.pending == 1
    await trail.aclose()
    assert await count(wh, "SELECT count(*) FROM audit_trail WHERE audit_run_id = 'run-c'") == 1
    with pytest.raises(ClientClosedError):
        await trail.record("a", "t")


async def test_flags_validate_before_writing(wh: DatabricksClient) -> None:
    """Bad severity, risk level or confidence write nothing; review fills the original columns."""
    flags = FlagStore(wh)
    with pytest.raises(InvalidFlagError, match="severity_level"):
        await flags.add("run-1", "TXN1", "0.9", "Duplicate", severity_level="HIGH")
    with pytest.raises(InvalidFlagError, match="risk_level"):
        await flags.add("run-1", "TXN1", "0.9", "Duplicate", risk_level="SEVERE")
    with pytest.raises(InvalidFlagError, match="between 0 and 1"):
        await flags.add("run-1", "TXN1", "1.5", "Duplicate", severity_level="WARNING")
    with pytest.raises(InvalidFlagError, match="confidence_score must be a number"):
        await flags.add("run-1", "TXN1", "very", "Duplicate", severity_level="WARNING")
    with pytest.raises(InvalidFlagError, match="transaction_id"):
        await flags.add("run-1", "", "0.9", "Duplicate", severity_level="WARNING")
    assert await count(wh, "SELECT count(*) FROM flags") == 0
    first = await flags.add(
        "run-1",
        "TXN014",
        Decimal("0.95"),
        "Same card, vendor and amount as TXN013",
        risk_level="HIGH",
        rule="duplicate_charge",
        title="Duplicate charge",
        amount=Decimal("1899.00"),
        supporting_evidence_links={"twin": "TXN013"},
    )
    assert first.severity_level == "CRITICAL"  # from the finer risk level
    await flags.add("run-1", "TXN020", "0.6", "Weekend spend", risk_level="LOW", rule="weekend")
    await flags.add("run-1", "TXN021", "0.6", "Weekend spend", severity_level="WARNING")
    pending = await flags.pending(10)
    assert [f.rule for f in pending] == ["duplicate_charge", "weekend", None]  # most severe first
    assert [f.severity_level for f in pending] == ["CRITICAL", "WARNING", "WARNING"]
    assert pending[0].amount == Decimal("1899.00")
    assert pending[0].confidence_score == 0.95
    assert pending[0].supporting_evidence_links == {"twin": "TXN013"}
    reviewed = await flags.review(first.flag_id, "confirmed", "rev-7", "refund requested")
    assert (reviewed.reviewed, reviewed.human_decision) == (True, "confirmed")
    assert (reviewed.reviewer_id, reviewed.reviewer_notes) == ("rev-7", "refund requested")
    assert reviewed.review_timestamp is not None
    assert [f.rule for f in await flags.pending(10)] == ["weekend", None]
    with pytest.raises(InvalidFlagError, match="decision"):
        await flags.review(first.flag_id, "maybe", "rev-7")
    with pytest.raises(InvalidFlagError, match="no flag"):
        await flags.review("flg_nope", "dismissed", "rev-7")


async def test_flags_written_by_another_agent_with_only_the_original_columns(
    wh: DatabricksClient,
) -> None:
    """A row using only the original columns is accepted by the table and read back."""
    await wh.execute(
        "INSERT INTO flags (flag_id, transaction_id, audit_run_id, severity_level, "
        "confidence_score, explanation, supporting_evidence_links) VALUES "
        "('other-1', 'TXN9', 'run-9', 'INFO', 0.4, 'seen by the email agent', 'not json')"
    )
    [flag] = await FlagStore(wh).pending(audit_run_id="run-9")
    assert (flag.severity_level, flag.rule, flag.reviewed) == ("INFO", None, False)
    assert flag.supporting_evidence_links == "not json"


async def test_add_many_is_all_or_nothing_and_skips_existing(wh: DatabricksClient) -> None:
    """One invalid flag stops the batch; a re-run writes nothing twice."""
    from audit_core.db import Flag

    flags = FlagStore(wh)
    good = Flag(
        audit_run_id="run-2",
        transaction_id="TXN015",
        risk_level="MEDIUM",
        confidence_score=0.7,
        explanation="Round amount",
        rule="round_amount",
    )
    bad = Flag(
        audit_run_id="run-2",
        transaction_id="TXN016",
        risk_level="MEDIUM",
        confidence_score=7,
        explanation="Round amount",
        rule="round_amount",
    )
    with pytest.raises(InvalidFlagError):
        await flags.add_many([good, bad])
    assert await count(wh, "SELECT count(*) FROM flags") == 0
    assert len(await flags.add_many([good])) == 1
    assert await flags.add_many([good], skip_existing=True) == []
    assert await count(wh, "SELECT count(*) FROM flags") == 1


async def test_a_resumed_run_completes_without_new_entries(wh: DatabricksClient) -> None:
    """Completing a run another process wrote appends only the final head."""
    async with AuditTrail(wh, "run-k") as first:
        await first.record("a", "t")
    head = await AuditTrail(wh, "run-k").complete()
    assert (head.rows, head.completed) == (1, True)
    assert await AuditTrail(wh, "run-k").verify()
    heads = await wh.query_arrow(
        "SELECT row_count, completed FROM audit_trail_heads WHERE audit_run_id = 'run-k' "
        "ORDER BY row_count, completed"
    )
    assert heads.to_pylist() == [  # verifying wrote nothing
        {"row_count": 1, "completed": False},
        {"row_count": 1, "completed": True},
    ]


async def test_a_run_resumes_only_with_the_key_it_was_written_with(wh: DatabricksClient) -> None:
    """No key, another key, or a key for an unkeyed run: refused before anything is added."""
    async with AuditTrail(wh, "run-key", key="k1") as first:
        await first.record("a", "t")
    for key, message in ((None, "needs the key"), ("k2", "another key")):
        with pytest.raises(AuditTrailError, match=message):
            await AuditTrail(wh, "run-key", key=key).record("a", "t")
    assert await AuditTrail(wh, "run-key", key="k1").record("a", "t") == 2
    async with AuditTrail(wh, "run-plain") as plain:
        await plain.record("a", "t")
    with pytest.raises(AuditTrailError, match="is not keyed"):
        await AuditTrail(wh, "run-plain", key="k1").record("a", "t")


async def test_raise_for_tampering_names_the_run_and_row(wh: DatabricksClient) -> None:
    """For callers who want an exception: TrailVerificationError with run id and sequence."""
    from audit_core.errors import TrailVerificationError

    async with AuditTrail(wh, "run-x") as trail:
        for i in range(3):
            await trail.record("a", "t", output_summary=str(i))
        await trail.complete()
    (await trail.verify()).raise_for_tampering()  # intact: nothing raised
    await wh.execute("UPDATE audit_trail SET output_summary = 'x' WHERE log_sequence_number = 2")
    with pytest.raises(TrailVerificationError, match="row 2 was altered") as caught:
        (await trail.verify()).raise_for_tampering()
    assert (caught.value.run_id, caught.value.sequence) == ("run-x", 2)


async def test_nothing_lands_after_the_final_head(wh: DatabricksClient) -> None:
    """A record() racing complete() is refused, so the completed run verifies."""
    trail = AuditTrail(wh, "run-race", batch_size=100)
    await trail.record("a", "t")
    completing = asyncio.create_task(trail.complete())
    await asyncio.sleep(0)  # complete() is now writing the last batch
    with pytest.raises(AuditTrailError, match="completed"):
        await trail.record("a", "late")
    await completing
    with pytest.raises(AuditTrailError, match="completed"):
        await trail.record("a", "later")
    result = await trail.verify()
    assert result.ok, result.problem
    assert result.rows == 1
