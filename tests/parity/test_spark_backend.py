"""`DatabricksClient.spark()`: the parity reference is also a backend with the same facade."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from audit_core import ConfigError, DatabricksClient, QueryError, QueryTimeoutError

SQL = (
    "SELECT card_id, sum(amount) AS total, avg(amount) AS mean FROM gold.recent_transactions "
    "WHERE amount > :min GROUP BY card_id ORDER BY card_id"
)


def _client() -> DatabricksClient:
    # The session fixture already started Spark and loaded the tables: reuse both.
    return DatabricksClient.spark(load_fixtures=False, registry=CollectorRegistry())


async def test_spark_client_answers_with_spark_types(spark: Any) -> None:
    """Parameters bind, DECIMAL stays exact, and the answer is Spark's own."""
    async with _client() as wh:
        table = await wh.query_arrow(SQL, {"min": 100})
        frame = await wh.query(SQL, {"min": 100})
        assert wh.backend == "spark"
    expected = spark.sql(SQL, args={"min": 100}).toArrow()
    assert table.to_pylist() == expected.to_pylist()
    assert str(table.schema.field("mean").type) == "decimal128(22, 6)"
    assert isinstance(frame["total"][0], Decimal)


async def test_spark_client_same_answer_as_local(spark: Any, local_wh: DatabricksClient) -> None:
    """The local DuckDB backend and the Spark backend agree on an audit-style query."""
    async with _client() as wh:
        on_spark = await wh.query_arrow(SQL, {"min": 100})
    local = await local_wh.query_arrow(SQL, {"min": 100})
    assert local.to_pylist() == on_spark.to_pylist()


async def test_spark_errors_are_query_errors(spark: Any) -> None:
    """An ANSI error and an unknown table surface as `QueryError` naming Spark's error class."""
    async with _client() as wh:
        with pytest.raises(QueryError, match="DIVIDE_BY_ZERO") as info:
            await wh.query("SELECT 1 / 0 AS x")
        assert info.value.sql == "SELECT 1 / 0 AS x"
        with pytest.raises(QueryError, match="TABLE_OR_VIEW_NOT_FOUND"):
            await wh.query("SELECT * FROM gold.nope")


async def test_timeout_cancels_the_spark_job(spark: Any) -> None:
    """A query past its timeout is cancelled on Spark; the client keeps working."""
    async with _client() as wh:
        with pytest.raises(QueryTimeoutError):
            await wh.query("SELECT count(*) FROM range(0, 100000000000) a", timeout_s=1.0)
        table = await wh.query_arrow("SELECT 1 AS ok")
    assert table.to_pylist() == [{"ok": 1}]


async def test_spark_connect_needs_an_sc_url(spark: Any) -> None:
    """A remote that is not ``sc://host:port`` is a `ConfigError`, not a hang."""
    async with DatabricksClient.spark("http://localhost:15002") as wh:
        with pytest.raises(ConfigError, match="sc://"):
            await wh.query("SELECT 1")


def test_spark_connect_answers_like_local_spark(spark: Any, spark_connect_url: str) -> None:
    """Over Spark Connect (fixtures loaded through the client) the answer is the same."""
    probe = subprocess.run(
        [sys.executable, "-m", "tests.parity._connect_probe", spark_connect_url],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[2],
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    remote = json.loads(probe.stdout.strip().splitlines()[-1])
    expected = spark.sql(SQL, args={"min": 100}).toArrow()
    assert remote["rows"] == json.loads(json.dumps(expected.to_pylist(), default=str))
    assert remote["schema"] == str(expected.schema)
    assert "DIVIDE_BY_ZERO" in remote["error"]


async def test_execute_reports_rows_changed_only_when_the_engine_says(
    spark: Any, local_wh: DatabricksClient
) -> None:
    """Spark's INSERT into a plain table answers no row count: execute() says None, never
    a number it did not get. DuckDB answers one: the true count, and None for DDL."""
    async with _client() as wh:
        await wh.execute("CREATE TABLE IF NOT EXISTS affected_t (a INT) USING parquet")
        got = await wh.execute("INSERT INTO affected_t VALUES (1), (2), (3)")
        assert got in (None, 3)
        await wh.execute("DROP TABLE affected_t")
    # a plain table: a TEMP one lives on one worker connection, the next statement may
    # run on another
    assert await local_wh.execute("CREATE TABLE affected_t (a INT)") is None
    try:
        assert await local_wh.execute("INSERT INTO affected_t VALUES (1), (2), (3)") == 3
        assert await local_wh.execute("UPDATE affected_t SET a = 0 WHERE a > 1") == 2
        assert await local_wh.execute("DELETE FROM affected_t WHERE a = 7") == 0
        assert await local_wh.execute("SELECT 5 AS n") is None
    finally:
        await local_wh.execute("DROP TABLE IF EXISTS affected_t")
