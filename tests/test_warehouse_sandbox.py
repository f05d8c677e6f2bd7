"""query() runs one read statement; the local engine can reach no file, network or setting."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient, QueryError
from audit_core.errors import ReadOnlyViolationError
from audit_core.warehouse._client import statement_kind

ESCAPES = [
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM read_parquet('/etc/*.parquet')",
    "COPY gold.emails TO '{tmp}/out.csv'",
    "ATTACH '{tmp}/other.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "PRAGMA enable_external_access = true",
    "DROP TABLE gold.emails",
    "DELETE FROM gold.emails",
    "INSERT INTO gold.emails (email_id) VALUES ('x')",
    "UPDATE gold.emails SET subject = 'x'",
    "CREATE TABLE gold.copy AS SELECT * FROM gold.emails",
    "WITH e AS (SELECT * FROM gold.emails) INSERT INTO gold.emails SELECT * FROM e",
    "SELECT 1; DROP TABLE gold.emails",
    "MERGE INTO gold.emails t USING gold.emails s ON t.email_id = s.email_id "
    "WHEN MATCHED THEN DELETE",
]
READS = [
    "SELECT count(*) AS n FROM gold.emails",
    "(SELECT 1 AS n)",
    "WITH e AS (SELECT email_id FROM gold.emails) SELECT count(*) AS n FROM e",
    "SELECT 1 AS n UNION ALL SELECT 2",
    "VALUES (1), (2)",
    "DESCRIBE gold.emails",
    "SHOW TABLES",
    "FROM gold.emails SELECT email_id",
]


@pytest.fixture
async def wh() -> AsyncIterator[DatabricksClient]:
    async with DatabricksClient.local(registry=CollectorRegistry()) as client:
        yield client


@pytest.mark.parametrize("sql", ESCAPES)
async def test_query_refuses_every_escape(wh: DatabricksClient, sql: str, tmp_path: Path) -> None:
    """Each is a ReadOnlyViolationError (a QueryError carrying the SQL); nothing changes."""
    before = (await wh.query_arrow("SELECT count(*) AS n FROM gold.emails")).to_pylist()
    text = sql.format(tmp=tmp_path)
    with pytest.raises(ReadOnlyViolationError) as info:
        await wh.query(text)
    assert info.value.sql == text
    with pytest.raises(ReadOnlyViolationError):
        await wh.query_arrow(text)
    assert (await wh.query_arrow("SELECT count(*) AS n FROM gold.emails")).to_pylist() == before
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sql", READS)
async def test_query_still_runs_reads(wh: DatabricksClient, sql: str) -> None:
    assert (await wh.query_arrow(sql)).num_rows > 0


@pytest.mark.parametrize(
    "sql",
    [
        "COPY gold.emails TO '{tmp}/out.csv'",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "CREATE TABLE stolen AS SELECT * FROM read_text('/etc/passwd')",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
    ],
)
async def test_execute_writes_tables_but_reaches_no_file_or_setting(
    wh: DatabricksClient, sql: str, tmp_path: Path
) -> None:
    with pytest.raises(QueryError):
        await wh.execute(sql.format(tmp=tmp_path))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ReadOnlyViolationError, match="disabled"):
        await wh.query("SELECT * FROM read_text('/etc/passwd')")


@pytest.mark.parametrize(
    "sql",
    [
        "RESET enable_external_access",
        "SET GLOBAL lock_configuration = false",
        "SET allowed_directories = ['/etc']",
        "INSTALL httpfs",
        "COPY (SELECT 1) TO '{tmp}/out.csv'",
    ],
)
async def test_native_duckdb_through_execute_cannot_unlock_either(
    wh: DatabricksClient, sql: str, tmp_path: Path
) -> None:
    """execute(native=True) skips the transpiler, not the engine's lock."""
    with pytest.raises(QueryError):
        await wh.execute(sql.format(tmp=tmp_path), native=True)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ReadOnlyViolationError, match="disabled"):
        await wh.query("SELECT * FROM read_text('/etc/passwd')")


async def test_a_results_database_file_still_persists_writes(tmp_path: Path) -> None:
    """The sandbox blocks other files, not the database's own file (flags, the trail)."""
    path = tmp_path / "results" / "audit.duckdb"
    async with DatabricksClient.local(
        database=path, load_fixtures=False, registry=CollectorRegistry()
    ) as wh:
        await wh.execute("CREATE TABLE notes (id INT, body STRING)")
        await wh.executemany(
            "INSERT INTO notes VALUES (:id, :body)", [{"id": i, "body": f"n{i}"} for i in range(3)]
        )
    async with DatabricksClient.local(
        database=path, load_fixtures=False, registry=CollectorRegistry()
    ) as again:
        table = await again.query_arrow("SELECT count(*) AS n FROM notes")
    assert table.to_pylist() == [{"n": 3}]


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT * FROM gold.t", "read"),
        ("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", "write"),
        ("EXPLAIN SELECT 1", "read"),
        ("EXPLAIN DELETE FROM t", "write"),
        ("SELECT 1 INTO t", "write"),
        ("ATTACH 'x.db' AS y", "write"),  # DuckDB-only syntax is still recognised
        ("SELECT 1; SELECT 2", "several"),
        ("SELEC 1", "unparsed"),
    ],
)
def test_statement_kind_reads_the_syntax_tree(sql: str, kind: str) -> None:
    assert statement_kind(sql) == kind


async def test_a_malformed_read_is_a_parse_error_not_a_violation(wh: DatabricksClient) -> None:
    with pytest.raises(QueryError, match="does not parse") as info:
        await wh.query("SELEC * FROM gold.emails")
    assert not isinstance(info.value, ReadOnlyViolationError)
