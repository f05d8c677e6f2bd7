"""The hash-chained audit trail and the flag store, on the local (DuckDB) warehouse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient
from audit_core.db import AuditTrail, FlagStore, ensure_schema
from audit_core.errors import AuditTrailError, InvalidFlagError


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
        "SELECT sequence_number FROM audit_trail WHERE audit_run_id = 'run-1' ORDER BY 1"
    )
    assert table.column(0).to_pylist() == list(range(1, 1001))
    assert await trail.verify()


async def test_resumed_trail_continues_the_chain(wh: DatabricksClient) -> None:
    async with AuditTrail(wh, "run-r") as first:
        for _ in range(3):
            await first.record("a", "t", llm_cost_dollars=Decimal("0.00015"), llm_tokens_used=12)
    second = AuditTrail(wh, "run-r")
    assert await second.record("a", "t2") == 4
    result = await second.verify()
    assert result.ok, result.problem
    assert result.rows == 4


@pytest.mark.parametrize(
    ("tamper", "bad", "problem"),
    [
        (
            "UPDATE audit_trail SET output_summary = 'nothing to see' WHERE sequence_number = 3",
            3,
            "altered",
        ),
        ("UPDATE audit_trail SET llm_cost_dollars = 0 WHERE sequence_number = 2", 2, "altered"),
        ("DELETE FROM audit_trail WHERE sequence_number = 3", 3, "missing"),
        ("DELETE FROM audit_trail WHERE sequence_number = 5", 5, "ends at row 4"),
        (
            "UPDATE audit_trail SET sequence_number = "
            "CASE sequence_number WHEN 2 THEN 3 ELSE 2 END WHERE sequence_number IN (2, 3)",
            2,
            "removed or reordered",
        ),
    ],
    ids=["update-text", "update-cost", "delete-middle", "delete-last", "swap"],
)
async def test_verify_names_the_tampered_row(
    wh: DatabricksClient, tamper: str, bad: int, problem: str
) -> None:
    trail = AuditTrail(wh, "run-t", batch_size=2)
    for i in range(5):
        await trail.record(
            "agent", "tool", output_summary=f"step {i}", llm_cost_dollars=Decimal("0.001")
        )
    assert (await trail.verify()).ok
    await wh.execute(tamper)
    result = await trail.verify()
    assert not result.ok
    assert result.first_bad_sequence == bad
    assert problem in (result.problem or "")


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
    rows = (await wh.query_arrow(
        "SELECT tool_called, error, output_summary, execution_time_ms, input_data FROM audit_trail "
        "WHERE audit_run_id = 'run-trace' ORDER BY sequence_number"
    )).to_pylist()  # fmt: skip
    assert [r["tool_called"] for r in rows] == ["divide", "divide", "sql"]
    assert rows[0]["error"] is None
    assert "ZeroDivisionError" in rows[1]["error"]
    assert "Traceback" in rows[1]["error"]
    assert rows[2]["output_summary"] == "3 rows"
    assert rows[2]["input_data"] == '{"rule":"dup"}'
    assert all(r["execution_time_ms"] >= 0 for r in rows)
    assert await trail.verify()


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


async def test_failed_flush_keeps_rows(wh: DatabricksClient) -> None:
    trail = AuditTrail(wh, "run-f", table="no_such_table")
    trail._next = 1  # skip reading the head from the missing table
    await trail.record("a", "t")
    with pytest.raises(Exception, match="no_such_table"):
        await trail.flush()
    assert trail.pending == 1


async def test_flags_validate_before_writing(wh: DatabricksClient) -> None:
    flags = FlagStore(wh)
    with pytest.raises(InvalidFlagError, match="severity"):
        await flags.add("run-1", "dup", "SEVERE", "0.9", "Duplicate")
    with pytest.raises(InvalidFlagError, match="between 0 and 1"):
        await flags.add("run-1", "dup", "HIGH", "1.5", "Duplicate")
    with pytest.raises(InvalidFlagError, match="confidence must be a number"):
        await flags.add("run-1", "dup", "HIGH", "very", "Duplicate")
    assert await count(wh, "SELECT count(*) FROM flags") == 0
    first = await flags.add(
        "run-1", "duplicate_charge", "HIGH", Decimal("0.95"), "Duplicate charge",
        transaction_id="TXN014", amount=Decimal("1899.00"), evidence={"twin": "TXN013"},
    )  # fmt: skip
    await flags.add("run-1", "weekend", "LOW", "0.6", "Weekend spend", transaction_id="TXN020")
    pending = await flags.pending(10)
    assert [f.rule for f in pending] == ["duplicate_charge", "weekend"]  # most severe first
    assert pending[0].amount == Decimal("1899.00")
    assert pending[0].evidence == {"twin": "TXN013"}
    reviewed = await flags.review(first.flag_id, "confirmed", "rev-7", "refund requested")
    assert reviewed.status == "confirmed"
    assert reviewed.reviewer_id == "rev-7"
    assert [f.rule for f in await flags.pending(10)] == ["weekend"]
    with pytest.raises(InvalidFlagError, match="decision"):
        await flags.review(first.flag_id, "maybe", "rev-7")
    with pytest.raises(InvalidFlagError, match="no flag"):
        await flags.review("flg_nope", "dismissed", "rev-7")


async def test_add_many_is_all_or_nothing_and_skips_existing(wh: DatabricksClient) -> None:
    from audit_core.db import Flag

    flags = FlagStore(wh)
    good = Flag("run-2", "round_amount", "MEDIUM", Decimal("0.7"), "Round amount", "TXN015")
    bad = Flag("run-2", "round_amount", "MEDIUM", Decimal("7"), "Round amount", "TXN016")
    with pytest.raises(InvalidFlagError):
        await flags.add_many([good, bad])
    assert await count(wh, "SELECT count(*) FROM flags") == 0
    assert len(await flags.add_many([good])) == 1
    assert await flags.add_many([good], skip_existing=True) == []
    assert await count(wh, "SELECT count(*) FROM flags") == 1
