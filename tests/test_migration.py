"""Schema version 1 -> 2 on a real PostgreSQL server and on DuckDB, with version-1 data.

The version-1 rows, including a hash-chained trail, are written here with an independent
copy of the version-1 hashing code, so the migrated trail verifying is a real check.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient
from audit_core.db import (
    AuditTrail,
    FlagStore,
    create_all_tables,
    ensure_schema,
    migration_statements,
    schema_version,
    verify_run,
)
from audit_core.db._chain import verify_chain
from audit_core.db._migration import ddl_v1
from audit_core.db._trail import read_run
from audit_core.errors import ConfigError
from tests.services import PostgresServer

V1_TRAIL_COLUMNS = (
    "audit_run_id",
    "sequence_number",
    "recorded_at",
    "agent_name",
    "tool_called",
    "input_data",
    "output_summary",
    "execution_time_ms",
    "llm_model",
    "llm_tokens_used",
    "llm_cost_dollars",
    "error",
    "decision_chain",
    "prev_hash",
    "entry_hash",
)


def v1_entry_hash(row: dict[str, Any], prev: str) -> str:
    """The version-1 hash, as version 1 computed it (an independent copy)."""
    out: dict[str, Any] = {}
    for column in V1_TRAIL_COLUMNS[:-2]:
        value = row.get(column)
        if value is None:
            out[column] = None
        elif column == "recorded_at":
            out[column] = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        elif column == "llm_cost_dollars":
            out[column] = format(Decimal(str(value)).quantize(Decimal("0.000001")), "f")
        elif column in ("sequence_number", "execution_time_ms", "llm_tokens_used"):
            out[column] = int(value)
        else:
            out[column] = str(value)
    text = json.dumps(out, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((text + prev).encode()).hexdigest()


def v1_trail(run_id: str, n: int) -> list[dict[str, Any]]:
    rows, prev = [], "0" * 64
    for i in range(1, n + 1):
        row: dict[str, Any] = {
            "audit_run_id": run_id,
            "sequence_number": i,
            "recorded_at": datetime(2025, 3, 1, 12, 0, i, 123456, tzinfo=UTC),
            "agent_name": "auditor",
            "tool_called": f"rule.{i}",
            "input_data": json.dumps({"i": i}),
            "output_summary": f"{i} flags",
            "execution_time_ms": 10 * i,
            "llm_model": "openai/gpt-4o-mini" if i == 2 else None,
            "llm_tokens_used": 120 if i == 2 else None,
            "llm_cost_dollars": Decimal("0.000150") if i == 2 else None,
            "error": "Traceback (most recent call last):\nValueError: bad" if i == 3 else None,
            "decision_chain": None,
            "prev_hash": prev,
        }
        row["entry_hash"] = prev = v1_entry_hash(row, prev)
        rows.append(row)
    return rows


V1_FLAGS = [
    # flag_id, run, txn, rule, severity, confidence, title, description, status
    ("f-crit", "run-a", "TXN1", "dup", "CRITICAL", "0.990", "Dup", "twice", "pending"),
    ("f-high", "run-a", "TXN2", "split", "HIGH", "0.850", "Split", None, "confirmed"),
    ("f-med", "run-a", "TXN3", "round", "MEDIUM", "0.600", "Round", "round", "dismissed"),
    ("f-low", "run-a", None, "weekend", "LOW", "0.500", "Weekend", None, "escalated"),
    ("f-info", "run-b", "TXN5", "vendor", "INFO", "0.500", "Vendor", "unknown", "pending"),
]
V1_RUNS = [("run-a", "completed"), ("run-b", "running"), ("run-c", "failed")]


def seed_v1(cur: Any, dialect: str, mark: str) -> None:
    """A version-1 database with flags, runs and two hash-chained trails."""
    for statement in ddl_v1(dialect):
        cur.execute(statement)
    for flag in V1_FLAGS:
        cur.execute(
            "INSERT INTO flags (flag_id, audit_run_id, transaction_id, rule, severity, "
            "confidence, title, description, status, detected_by, reviewer_id, reviewed_at) "
            f"VALUES ({', '.join([mark] * 9)}, 'rules', {mark}, {mark})",
            (
                *flag,
                None if flag[-1] == "pending" else "rev-1",
                None if flag[-1] == "pending" else datetime(2025, 3, 2, tzinfo=UTC),
            ),
        )
    for run_id, status in V1_RUNS:
        cur.execute(
            "INSERT INTO workflow_state (run_id, status, current_step, state_data) "
            f"VALUES ({mark}, {mark}, 'checks', '{{}}')",
            (run_id, status),
        )
    for row in v1_trail("run-a", 4) + v1_trail("run-b", 3):
        cur.execute(
            f"INSERT INTO audit_trail ({', '.join(V1_TRAIL_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(V1_TRAIL_COLUMNS))})",
            tuple(row[c] for c in V1_TRAIL_COLUMNS),
        )


def check_migrated_rows(cur: Any) -> None:
    """Every version-1 row is there, under the original names, with mapped values."""
    cur.execute(
        "SELECT flag_id, transaction_id, severity_level, risk_level, confidence_score, "
        "explanation, title, reviewed, human_decision, reviewer_id, "
        "review_timestamp IS NOT NULL, updated_at IS NOT NULL FROM flags ORDER BY flag_id"
    )
    assert cur.fetchall() == [
        (
            "f-crit",
            "TXN1",
            "CRITICAL",
            "CRITICAL",
            0.99,
            "twice",
            "Dup",
            False,
            None,
            None,
            False,
            True,
        ),
        (
            "f-high",
            "TXN2",
            "CRITICAL",
            "HIGH",
            0.85,
            "Split",
            "Split",
            True,
            "confirmed",
            "rev-1",
            True,
            True,
        ),
        (
            "f-info",
            "TXN5",
            "INFO",
            "INFO",
            0.5,
            "unknown",
            "Vendor",
            False,
            None,
            None,
            False,
            True,
        ),
        (
            "f-low",
            "",
            "WARNING",
            "LOW",
            0.5,
            "Weekend",
            "Weekend",
            True,
            "escalated",
            "rev-1",
            True,
            True,
        ),
        (
            "f-med",
            "TXN3",
            "WARNING",
            "MEDIUM",
            0.6,
            "round",
            "Round",
            True,
            "dismissed",
            "rev-1",
            True,
            True,
        ),
    ]
    cur.execute(
        "SELECT audit_run_id, workflow_status, current_agent, intermediate_results "
        "FROM workflow_state ORDER BY 1"
    )
    assert cur.fetchall() == [
        ("run-a", "completed", "checks", "{}"),
        ("run-b", "in_progress", "checks", "{}"),
        ("run-c", "failed", "checks", "{}"),
    ]
    cur.execute(
        "SELECT audit_run_id, log_sequence_number, error_message, hash_algorithm "
        "FROM audit_trail ORDER BY 1, 2"
    )
    trail = cur.fetchall()
    assert len(trail) == 7
    assert trail[2] == (
        "run-a",
        3,
        "Traceback (most recent call last):\nValueError: bad",
        "sha256-v1",
    )
    assert {r[3] for r in trail} == {"sha256-v1"}
    cur.execute("SELECT audit_run_id, row_count, completed FROM audit_trail_heads ORDER BY 1")
    assert cur.fetchall() == [("run-a", 4, True), ("run-b", 3, False)]
    cur.execute("SELECT version FROM audit_schema_version ORDER BY 1")
    assert cur.fetchall() == [(1,), (2,)]


def migrated_trail_verdicts(cur: Any, mark: str) -> dict[str, str]:
    """Each run's verdict, read straight from the tables."""
    verdicts = {}
    for run_id in ("run-a", "run-b"):
        cur.execute(
            f"SELECT * FROM audit_trail WHERE audit_run_id = {mark} ORDER BY log_sequence_number",
            (run_id,),
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        from audit_core.db import TrailHead

        cur.execute(
            "SELECT row_count, last_hash, hash_algorithm, completed FROM audit_trail_heads "
            f"WHERE audit_run_id = {mark}",
            (run_id,),
        )
        heads = [
            TrailHead(audit_run_id=run_id, rows=n, last_hash=h, hash_algorithm=a, completed=c)
            for n, h, a, c in cur.fetchall()
        ]
        verdicts[run_id] = verify_chain(rows, heads).status
    return verdicts


# --- DuckDB ---------------------------------------------------------------------------


def duckdb_schema(cur: Any) -> dict[str, list[Any]]:
    return {
        "columns": cur.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'main' ORDER BY ALL"
        ).fetchall(),
        "constraints": cur.execute(
            "SELECT table_name, constraint_type, constraint_text FROM duckdb_constraints() "
            "ORDER BY ALL"
        ).fetchall(),
        "indexes": cur.execute(
            "SELECT index_name, sql FROM duckdb_indexes() ORDER BY ALL"
        ).fetchall(),
    }


def test_duckdb_v1_database_migrates_in_place_without_losing_a_row() -> None:
    """create_all_tables on version 1: every row kept and mapped; schema equals a fresh v2."""
    cur = duckdb.connect().cursor()
    cur.execute("SET TimeZone = 'UTC'")
    seed_v1(cur, "duckdb", "?")
    create_all_tables(cur, "duckdb")
    check_migrated_rows(cur)
    assert migrated_trail_verdicts(cur, "?") == {"run-a": "ok", "run-b": "incomplete"}
    fresh = duckdb.connect().cursor()
    create_all_tables(fresh, "duckdb")
    assert duckdb_schema(cur) == duckdb_schema(fresh)
    create_all_tables(cur, "duckdb")  # at version 2: nothing more to do
    check_migrated_rows(cur)


def test_duckdb_migration_is_one_transaction() -> None:
    """A migration that fails half-way leaves the version-1 database as it was."""
    cur = duckdb.connect().cursor()
    seed_v1(cur, "duckdb", "?")
    cur.execute("CREATE TABLE audit_trail_v1 (x INT)")  # the rebuild's scratch name, taken
    with pytest.raises(duckdb.Error):
        create_all_tables(cur, "duckdb")
    assert cur.execute("SELECT max(version) FROM audit_schema_version").fetchone() == (1,)
    assert cur.execute("SELECT count(*) FROM flags WHERE severity = 'HIGH'").fetchone() == (1,)
    assert cur.execute("SELECT count(*) FROM audit_trail").fetchone() == (7,)


async def test_ensure_schema_migrates_a_v1_results_file(tmp_path: Path) -> None:
    """The local warehouse path: a v1 results file opens as v2, and a run resumes on it."""
    path = tmp_path / "audit.duckdb"
    con = duckdb.connect(str(path))
    seed_v1(con.cursor(), "duckdb", "?")
    con.close()
    async with DatabricksClient.local(
        database=str(path), load_fixtures=False, registry=CollectorRegistry()
    ) as wh:
        assert await schema_version(wh) == 1
        await ensure_schema(wh)
        assert await schema_version(wh) == 2
        flags = await FlagStore(wh).find(audit_run_id="run-a")
        assert [f.flag_id for f in flags][:2] == ["f-crit", "f-high"]
        assert (await verify_run(wh, "run-a")).ok
        async with AuditTrail(wh, "run-b") as trail:  # resumed after the migration
            assert await trail.record("auditor", "resume") == 4
            await trail.complete()
        rows, _ = await read_run(wh, "run-b")
        assert [r["hash_algorithm"] for r in rows] == ["sha256-v1"] * 3 + ["sha256"]
        result = await verify_run(wh, "run-b")
        assert result.ok, result.problem


async def test_a_migrated_run_completes_without_new_entries(tmp_path: Path) -> None:
    """The final head of a resumed version-1 run names the algorithm its last row has."""
    path = tmp_path / "audit.duckdb"
    con = duckdb.connect(str(path))
    seed_v1(con.cursor(), "duckdb", "?")
    con.close()
    async with DatabricksClient.local(
        database=str(path), load_fixtures=False, registry=CollectorRegistry()
    ) as wh:
        await ensure_schema(wh)
        head = await AuditTrail(wh, "run-b").complete()
        assert (head.rows, head.hash_algorithm, head.completed) == (3, "sha256-v1", True)
        result = await verify_run(wh, "run-b")
        assert result.ok, result.problem


# --- PostgreSQL -----------------------------------------------------------------------


@pytest.fixture
def pg(postgres_server: PostgresServer) -> Iterator[Any]:
    """An autocommit connection to empty ``public`` and ``fresh`` schemas, emptied again
    afterwards: other tests share this server."""
    import psycopg

    def reset(conn: Any) -> None:
        with conn.cursor() as cur:
            for schema in ("public", "fresh"):
                cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                cur.execute(f"CREATE SCHEMA {schema}")
            cur.execute("SET TimeZone = 'UTC'")

    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        reset(conn)
        try:
            yield conn
        finally:
            reset(conn)


def postgres_schema(cur: Any, schema: str) -> dict[str, set[Any]]:
    queries = {
        "columns": "SELECT table_name, column_name, data_type, character_maximum_length, "
        "numeric_precision, numeric_scale, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = %s",
        "constraints": "SELECT cl.relname, c.conname, pg_get_constraintdef(c.oid) "
        "FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid "
        "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = %s",
        "indexes": "SELECT tablename, indexname, replace(indexdef, schemaname || '.', '') "
        "FROM pg_indexes WHERE schemaname = %s",
        "triggers": "SELECT event_object_table, trigger_name, event_manipulation, "
        "action_timing FROM information_schema.triggers WHERE trigger_schema = %s",
    }
    out = {}
    for name, sql in queries.items():
        cur.execute(sql, (schema,))
        out[name] = set(cur.fetchall())
    return out


@pytest.mark.postgres
def test_postgres_v1_database_migrates_in_place_without_losing_a_row(pg: Any) -> None:
    """ALTER TABLE in place: every row kept and mapped; the schema equals a fresh v2."""
    with pg.cursor() as cur:
        cur.execute("SET search_path TO public")
        seed_v1(cur, "postgres", "%s")
        create_all_tables(cur, "postgres")
        check_migrated_rows(cur)
        assert migrated_trail_verdicts(cur, "%s") == {"run-a": "ok", "run-b": "incomplete"}
        cur.execute("SET search_path TO fresh")
        create_all_tables(cur, "postgres")
        assert postgres_schema(cur, "public") == postgres_schema(cur, "fresh")
        cur.execute("SET search_path TO public")
        create_all_tables(cur, "postgres")  # at version 2: nothing more to do
        check_migrated_rows(cur)


@pytest.mark.postgres
def test_postgres_migration_is_one_transaction(pg: Any) -> None:
    """A migration that fails at its last step leaves the version-1 database untouched."""
    import psycopg

    with pg.cursor() as cur:
        seed_v1(cur, "postgres", "%s")
        cur.execute("ALTER TABLE flags ADD CONSTRAINT flags_risk_level_check CHECK (TRUE)")
        with pytest.raises(psycopg.errors.DuplicateObject):
            create_all_tables(cur, "postgres")
        cur.execute("SELECT max(version) FROM audit_schema_version")
        assert cur.fetchone() == (1,)
        cur.execute("SELECT count(*) FROM flags WHERE severity = 'HIGH'")
        assert cur.fetchone() == (1,)
        cur.execute("SELECT count(*) FROM audit_trail")
        assert cur.fetchone() == (7,)


@pytest.mark.postgres
def test_a_database_newer_than_the_package_is_refused(pg: Any) -> None:
    with pg.cursor() as cur:
        create_all_tables(cur, "postgres")
        cur.execute("INSERT INTO audit_schema_version VALUES (3, now(), 'from the future')")
        with pytest.raises(ConfigError, match="version 3"):
            create_all_tables(cur, "postgres")


# --- Databricks -----------------------------------------------------------------------


def test_databricks_migration_renames_under_column_mapping() -> None:
    """The statements an operator reviews: they parse, rename in place, end append-only."""
    statements = migration_statements("databricks")
    for statement in statements:
        sqlglot.parse_one(statement, read="databricks")
    renames = [s for s in statements if " RENAME COLUMN " in s]
    assert "ALTER TABLE flags RENAME COLUMN severity TO risk_level" in renames
    assert "ALTER TABLE audit_trail RENAME COLUMN sequence_number TO log_sequence_number" in renames
    assert "ALTER TABLE workflow_state RENAME COLUMN run_id TO audit_run_id" in renames
    assert not any("confidence TO" in s for s in renames)  # DECIMAL -> DOUBLE: copied
    assert (
        "UPDATE flags SET confidence_score = CAST(confidence AS DOUBLE), severity_level = "
        "CASE risk_level WHEN 'CRITICAL' THEN 'CRITICAL' WHEN 'HIGH' THEN 'CRITICAL' "
        "WHEN 'MEDIUM' THEN 'WARNING' WHEN 'LOW' THEN 'WARNING' WHEN 'INFO' THEN 'INFO' END, "
        "reviewed = status <> 'pending', human_decision = CASE WHEN status = 'pending' "
        "THEN NULL ELSE status END, explanation = coalesce(explanation, title), "
        "transaction_id = coalesce(transaction_id, ''), "
        "updated_at = coalesce(review_timestamp, created_at)"
    ) in statements
    for table in ("flags", "workflow_state", "audit_trail"):
        mapping = statements.index(
            next(s for s in statements if s.startswith(f"ALTER TABLE {table} SET TBLPROPERTIES"))
        )
        first_rename = statements.index(
            next(s for s in renames if s.startswith(f"ALTER TABLE {table} "))
        )
        assert mapping < first_rename
        assert "'delta.columnMapping.mode' = 'name'" in statements[mapping]
    assert "ALTER TABLE flags DROP COLUMNS (confidence, status)" in statements
    assert (
        "ALTER TABLE audit_trail ALTER COLUMN execution_time_ms TYPE BIGINT" in statements
    )  # type widening, enabled with column mapping
    assert statements[-1] == (
        "ALTER TABLE audit_trail SET TBLPROPERTIES ('delta.appendOnly' = 'true')"
    )


class RecordingDatabricks:
    """A DB-API stand-in for Databricks SQL at schema version 1: records every statement."""

    def __init__(self) -> None:
        self.executed: list[str] = []

    def connect(self) -> RecordingDatabricks:
        return self

    def cursor(self) -> RecordingDatabricks:
        return self

    def execute(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        self.executed.append(sql)

    def fetchall_arrow(self) -> Any:
        import pyarrow as pa

        return pa.table({"n": [1]})  # the version table exists, and holds version 1

    def close(self) -> None:
        pass


async def test_ensure_schema_on_databricks_runs_the_migration_then_the_ddl() -> None:
    """At version 1 a Databricks warehouse gets the renames, then the version-2 DDL."""
    from audit_core.db import ddl

    fake = RecordingDatabricks()
    async with DatabricksClient.databricks(
        fake.connect, host="adb-1.example.net", registry=CollectorRegistry()
    ) as wh:
        with pytest.raises(ConfigError, match="init-db --dialect databricks --migrate"):
            await ensure_schema(wh, migrate=False)
        fake.executed.clear()
        await ensure_schema(wh)
    writes = [s for s in fake.executed if not s.startswith("SELECT")]
    assert writes == migration_statements("databricks") + ddl("databricks")


async def test_read_only_commands_name_a_v1_results_file_instead_of_failing_on_it(
    tmp_path: Path,
) -> None:
    """`trail verify` / `flags` cannot migrate a read-only file: they say how to."""
    from audit_core.db._verify_cmd import flags_command, trail_verify_command

    con = duckdb.connect(str(tmp_path / "audit.duckdb"))
    seed_v1(con.cursor(), "duckdb", "?")
    con.close()
    with pytest.raises(ConfigError, match=r"schema version 1, not 2.*init-db --dialect duckdb"):
        await trail_verify_command(tmp_path, "run-a")
    with pytest.raises(ConfigError, match="schema version 1"):
        await flags_command(tmp_path)
