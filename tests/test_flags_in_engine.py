"""Rules written set-based inside the engine that holds the data.

``DatabricksClient.attach`` puts the results file in the local warehouse's engine (as a
Databricks catalog holds the flags table beside the gold tables), and
``FlagStore.add_from_query`` then writes each rule's flags with one ``INSERT ... SELECT``.
The differential tests hold it to the Arrow path (findings fetched, then inserted) that
two engines still use: the same flags, column for column.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient
from audit_core.db import FlagStore, ensure_schema
from audit_core.db._flags import FlagsWritten
from audit_core.errors import ConfigError, InvalidFlagError, ReadOnlyViolationError
from audit_core.rules import Rule, load_rules, parse_rule

RULES = load_rules()
# Columns a flag gets from its rule and run; created_at/updated_at are the write time.
COLUMNS = (
    "flag_id, transaction_id, audit_run_id, severity_level, risk_level, confidence_score, "
    "explanation, rule, title, amount, vendor_name, department, transaction_date, "
    "detected_by, reviewed, human_decision, supporting_evidence_links"
)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[DatabricksClient, DatabricksClient]]:
    """The shipped fixtures, with a results file attached to the same engine."""
    warehouse = DatabricksClient.local(registry=CollectorRegistry())
    results = warehouse.attach(tmp_path / "results.duckdb", registry=CollectorRegistry())
    async with warehouse, results:
        await ensure_schema(results)
        yield warehouse, results


@pytest.fixture
async def apart(tmp_path: Path) -> AsyncIterator[tuple[DatabricksClient, DatabricksClient]]:
    """The same, with the results file in an engine of its own (the Arrow path)."""
    warehouse = DatabricksClient.local(registry=CollectorRegistry())
    results = DatabricksClient.local(
        database=tmp_path / "apart.duckdb", load_fixtures=False, registry=CollectorRegistry()
    )
    async with warehouse, results:
        await ensure_schema(results)
        yield warehouse, results


async def flag_rule(
    warehouse: DatabricksClient,
    results: DatabricksClient,
    rule: Rule,
    run: str,
    since: datetime,
    **options: Any,
) -> FlagsWritten:
    return await FlagStore(results).add_from_query(
        warehouse,
        rule.sql,
        rule.bind(since=since),
        audit_run_id=run,
        rule=rule.name,
        risk_level=rule.severity,
        confidence_score=float(rule.confidence),
        title=rule.title,
        **options,
    )


async def rows(results: DatabricksClient) -> list[dict[str, Any]]:
    table = await results.query_arrow(f"SELECT {COLUMNS} FROM flags ORDER BY flag_id")
    return table.to_pylist()


async def complete(results: DatabricksClient, run: str) -> None:
    await results.execute(
        "INSERT INTO workflow_state (audit_run_id, workflow_status, created_at, updated_at, "
        "completed_at) VALUES (:run, 'completed', current_timestamp(), current_timestamp(), "
        "current_timestamp())",
        {"run": run},
    )


# --- attach ----------------------------------------------------------------------------


async def test_one_statement_reads_the_fixtures_and_writes_the_attached_file(
    pair: tuple[DatabricksClient, DatabricksClient], tmp_path: Path
) -> None:
    warehouse, results = pair
    assert warehouse.table_name_in(results, "flags") == "results.main.flags"
    assert warehouse.table_name_in(warehouse, "flags") == "flags"
    assert results.table_name_in(warehouse, "flags") is None  # not the other way round
    await results.execute("CREATE TABLE copied (transaction_id STRING)")
    await warehouse.execute(
        "INSERT INTO results.main.copied SELECT transaction_id FROM gold.recent_transactions"
    )
    n = (await warehouse.query_arrow("SELECT count(*) FROM gold.recent_transactions")).column(0)
    copied = await results.query_arrow("SELECT count(*) FROM copied")
    assert copied.column(0)[0].as_py() == n[0].as_py() > 0
    # Each client sees its own tables by their bare names: the fixtures' workflow_state
    # on one, the results' on the other.
    theirs = await warehouse.query_arrow("SELECT count(*) FROM workflow_state")
    ours = await results.query_arrow("SELECT count(*) FROM workflow_state")
    assert theirs.column(0)[0].as_py() > 0
    assert ours.column(0)[0].as_py() == 0


async def test_the_attached_file_survives_and_the_engine_closes_with_the_last_client(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.duckdb"
    warehouse = DatabricksClient.local(registry=CollectorRegistry())
    results = warehouse.attach(path, registry=CollectorRegistry())
    async with warehouse:
        async with results:
            await results.execute("CREATE TABLE t (x INT)")
            await warehouse.execute("INSERT INTO results.main.t VALUES (1), (2)")
        # the results client is closed; the engine still runs for the warehouse
        assert (await warehouse.query_arrow("SELECT count(*) FROM results.main.t")).num_rows
    con = duckdb.connect(str(path), read_only=True)  # released: another engine may open it
    try:
        assert con.execute("SELECT sum(x) FROM t").fetchone() == (3,)
    finally:
        con.close()


async def test_attach_is_refused_once_the_engine_runs_and_off_the_local_backend(
    tmp_path: Path,
) -> None:
    async with DatabricksClient.local(registry=CollectorRegistry()) as warehouse:
        await warehouse.query_arrow("SELECT 1")
        with pytest.raises(ConfigError, match="before the local warehouse runs"):
            warehouse.attach(tmp_path / "late.duckdb")
    fresh = DatabricksClient.local(registry=CollectorRegistry())
    with pytest.raises(ConfigError, match="free identifier"):
        fresh.attach(tmp_path / "x.duckdb", alias="memory")
    with pytest.raises(ConfigError, match="free identifier"):
        fresh.attach(tmp_path / "x.duckdb", alias="a-b")
    fresh.attach(tmp_path / "x.duckdb")
    with pytest.raises(ConfigError, match="already attached"):
        fresh.attach(tmp_path / "y.duckdb")
    async with fresh:
        pass


async def test_the_sandbox_holds_on_the_attached_client(
    pair: tuple[DatabricksClient, DatabricksClient],
) -> None:
    _, results = pair
    with pytest.raises(ReadOnlyViolationError):
        await results.query_arrow("SELECT * FROM read_text('/etc/passwd')")
    with pytest.raises(ReadOnlyViolationError):
        await results.query_arrow("ATTACH '/tmp/other.duckdb' AS other")


# --- add_from_query: the same flags as the Arrow path ----------------------------------


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
async def test_in_engine_flags_equal_the_arrow_path(
    rule: Rule,
    pair: tuple[DatabricksClient, DatabricksClient],
    apart: tuple[DatabricksClient, DatabricksClient],
) -> None:
    since = await pair[0].get_last_audit_timestamp()
    inside = await flag_rule(*pair, rule, "run-1", since)
    across = await flag_rule(*apart, rule, "run-1", since)
    assert inside == across
    assert inside.written == inside.stored > 0
    assert await rows(pair[1]) == await rows(apart[1])


async def test_no_finding_crosses_into_python_on_one_engine(tmp_path: Path) -> None:
    """The in-engine path returns count rows only; the Arrow path returns every finding."""
    registry = CollectorRegistry()
    warehouse = DatabricksClient.local(registry=registry)
    results = warehouse.attach(tmp_path / "r.duckdb", registry=CollectorRegistry())
    async with warehouse, results:
        await ensure_schema(results)
        since = await warehouse.get_last_audit_timestamp()
        before = registry.get_sample_value("audit_warehouse_rows_total", {"backend": "local"})
        written = 0
        for rule in RULES:
            written += (await flag_rule(warehouse, results, rule, "run-1", since)).written
        after = registry.get_sample_value("audit_warehouse_rows_total", {"backend": "local"})
    assert written > 10
    assert (after or 0) - (before or 0) == 0  # no query result came back on the warehouse


async def test_a_rerun_writes_nothing_twice_and_an_earlier_run_is_not_flagged_again(
    pair: tuple[DatabricksClient, DatabricksClient],
    apart: tuple[DatabricksClient, DatabricksClient],
) -> None:
    for warehouse, results in (pair, apart):
        since = await warehouse.get_last_audit_timestamp()
        rule = next(r for r in RULES if r.name == "round_amount")
        first = await flag_rule(warehouse, results, rule, "run-1", since)
        again = await flag_rule(warehouse, results, rule, "run-1", since)
        assert again == FlagsWritten(written=0, repeated=0, stored=first.stored)
        # run-1 is not completed: run-2 may flag the same transactions
        second = await flag_rule(warehouse, results, rule, "run-2", since, skip_flagged_before=True)
        assert second.written == first.written
        assert second.repeated == 0
        await complete(results, "run-1")
        third = await flag_rule(warehouse, results, rule, "run-3", since, skip_flagged_before=True)
        assert third == FlagsWritten(written=0, repeated=first.written, stored=0)
        forced = await flag_rule(warehouse, results, rule, "run-4", since)
        assert forced.written == first.written
    assert await rows(pair[1]) == await rows(apart[1])


@pytest.mark.parametrize("column", ["transaction_id", "detail"])
async def test_a_rule_returning_nulls_is_refused_whole_on_both_paths(
    column: str,
    pair: tuple[DatabricksClient, DatabricksClient],
    apart: tuple[DatabricksClient, DatabricksClient],
) -> None:
    other = "detail" if column == "transaction_id" else "transaction_id"
    value = "transaction_id" if other == "transaction_id" else "'why'"
    rule = parse_rule(
        "-- name: nully\n-- severity: LOW\n-- confidence: 0.5\n-- title: t\n"
        f"SELECT {value} AS {other}, amount, CASE WHEN amount > 100 THEN NULL ELSE 'x' END "
        f"AS {column} FROM gold.recent_transactions WHERE transaction_date > :since"
    )
    for warehouse, results in (pair, apart):
        since = await warehouse.get_last_audit_timestamp()
        with pytest.raises(InvalidFlagError, match="nully"):
            await flag_rule(warehouse, results, rule, "run-1", since)
        assert await rows(results) == []  # nothing half-written


async def test_a_rule_without_the_needed_columns_is_refused_before_it_runs(
    pair: tuple[DatabricksClient, DatabricksClient],
) -> None:
    rule = parse_rule(
        "-- name: thin\n-- severity: LOW\n-- confidence: 0.5\n-- title: t\n"
        "SELECT transaction_id, amount FROM gold.recent_transactions "
        "WHERE transaction_date > :since"
    )
    since = await pair[0].get_last_audit_timestamp()
    with pytest.raises(InvalidFlagError, match=r"thin.*detail"):
        await flag_rule(*pair, rule, "run-1", since)


async def test_a_results_path_with_quotes_and_spaces_is_attached_as_written(
    tmp_path: Path,
) -> None:
    """The path goes into ATTACH as a quoted literal: a quote in a folder name is data,
    not SQL (and the file is created where the name says)."""
    folder = tmp_path / "it's a 'folder'; DROP TABLE x; --"
    warehouse = DatabricksClient.local(registry=CollectorRegistry())
    results = warehouse.attach(folder / "r.duckdb", registry=CollectorRegistry())
    async with warehouse, results:
        await results.execute("CREATE TABLE t (a INT)")
        await warehouse.execute("INSERT INTO results.main.t VALUES (1)")
    assert (folder / "r.duckdb").is_file()
    con = duckdb.connect(str(folder / "r.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT a FROM t").fetchall() == [(1,)]
    finally:
        con.close()
