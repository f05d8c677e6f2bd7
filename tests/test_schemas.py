"""Schemas on a real PostgreSQL server, on DuckDB, and pinned for Databricks."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest
import sqlglot
from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient
from audit_core.db import create_all_tables, ddl, ensure_schema
from audit_core.db.schemas import (
    AUDIT_TRAIL_TABLE_SCHEMA,
    FLAGS_TABLE_SCHEMA,
    WORKFLOW_STATE_TABLE_SCHEMA,
    schema_version,
)
from audit_core.errors import ConfigError
from tests.services import PostgresServer

FLAG = (
    "INSERT INTO flags (flag_id, audit_run_id, rule, severity, confidence, title, detected_by)"
    " VALUES ({id}, 'run-1', 'unknown_vendor', {severity}, {confidence}, 'Unknown vendor', 'rules')"
)


def flag(id: str = "'f1'", severity: str = "'HIGH'", confidence: str = "0.9") -> str:
    return FLAG.format(id=id, severity=severity, confidence=confidence)


@pytest.fixture
def pg(postgres_server: PostgresServer) -> Iterator[object]:
    import psycopg

    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.execute("DROP SCHEMA IF EXISTS public CASCADE")
            cur.execute("CREATE SCHEMA public")
        yield conn


def test_postgres_ddl_runs_twice_and_enforces_constraints(pg: object) -> None:
    import psycopg

    conn: psycopg.Connection[tuple[object, ...]] = pg  # type: ignore[assignment]
    with conn.cursor() as cur:
        assert create_all_tables(cur, "postgres") == len(ddl("postgres"))
        create_all_tables(cur, "postgres")  # idempotent
        cur.execute(flag())
        with pytest.raises(psycopg.errors.CheckViolation, match="flags_severity_check"):
            cur.execute(flag(id="'f2'", severity="'SEVERE'"))
        with pytest.raises(psycopg.errors.CheckViolation, match="flags_confidence_check"):
            cur.execute(flag(id="'f3'", confidence="1.5"))
        with pytest.raises(psycopg.errors.UniqueViolation, match="flags_pk"):
            cur.execute(flag())
        with pytest.raises(psycopg.errors.CheckViolation, match="workflow_state_status_check"):
            cur.execute("INSERT INTO workflow_state (run_id, status) VALUES ('r', 'exploded')")
        cur.execute("SELECT count(*) FROM flags")
        assert cur.fetchone() == (1,)  # only the valid row
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'flags' ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == [
            "flags_pk", "idx_flags_audit_run", "idx_flags_severity",
            "idx_flags_status", "idx_flags_transaction",
        ]  # fmt: skip
        cur.execute("SELECT version FROM audit_schema_version")
        assert cur.fetchall() == [(1,)]


def test_postgres_constants_are_the_postgres_ddl(pg: object) -> None:
    """The seed-style constants hold exactly the postgres statements, and run as scripts."""
    statements = ddl("postgres")
    for text in (FLAGS_TABLE_SCHEMA, AUDIT_TRAIL_TABLE_SCHEMA, WORKFLOW_STATE_TABLE_SCHEMA):
        for part in text.strip().rstrip(";").split(";\n\n"):
            assert part in statements
    with pg.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(FLAGS_TABLE_SCHEMA)
        cur.execute("SELECT count(*) FROM flags")
        assert cur.fetchone() == (0,)


def test_duckdb_ddl_runs_twice_and_enforces_constraints() -> None:
    con = duckdb.connect()
    cur = con.cursor()
    create_all_tables(cur, "duckdb")
    create_all_tables(cur, "duckdb")
    cur.execute(flag())
    with pytest.raises(duckdb.ConstraintException, match="CHECK"):
        cur.execute(flag(id="'f2'", severity="'SEVERE'"))
    with pytest.raises(duckdb.ConstraintException, match="CHECK"):
        cur.execute(flag(id="'f3'", confidence="1.5"))
    with pytest.raises(duckdb.ConstraintException, match=r"(?i)primary key|duplicate key"):
        cur.execute(flag())
    assert cur.execute("SELECT count(*) FROM flags").fetchone() == (1,)
    assert cur.execute("SELECT version FROM audit_schema_version").fetchall() == [(1,)]


def test_databricks_ddl_parses_and_avoids_rejected_constructs() -> None:
    statements = ddl("databricks")
    for statement in statements:
        sqlglot.parse_one(statement, read="databricks")  # raises on a parse error
        upper = statement.upper()
        assert "CREATE INDEX" not in upper
        if upper.startswith("CREATE TABLE"):
            assert " CHECK " not in upper
            assert "CHECK (" not in upper
            assert "USING DELTA" in upper
            if "DEFAULT" in upper:
                assert "'DELTA.FEATURE.ALLOWCOLUMNDEFAULTS' = 'SUPPORTED'" in upper
            for banned in ("TIMESTAMPTZ", "VARCHAR", "TEXT", "NUMERIC", "JSONB", "SERIAL"):
                assert banned not in upper.replace("CONTEXT", "")
    # every ADD CONSTRAINT is preceded by its DROP ... IF EXISTS, so reruns are fine
    for i, statement in enumerate(statements):
        if " ADD CONSTRAINT " in statement:
            name = statement.split(" ADD CONSTRAINT ")[1].split()[0]
            assert statements[i - 1].endswith(f"DROP CONSTRAINT IF EXISTS {name}")


def test_databricks_ddl_is_pinned() -> None:
    statements = ddl("databricks")
    assert statements[0] == (
        "CREATE TABLE IF NOT EXISTS flags (\n"
        "    flag_id STRING NOT NULL,\n"
        "    audit_run_id STRING NOT NULL,\n"
        "    transaction_id STRING,\n"
        "    rule STRING NOT NULL,\n"
        "    severity STRING NOT NULL,\n"
        "    confidence DECIMAL(4,3) NOT NULL,\n"
        "    title STRING NOT NULL,\n"
        "    description STRING,\n"
        "    amount DECIMAL(18,2),\n"
        "    evidence STRING,\n"
        "    detected_by STRING NOT NULL,\n"
        "    status STRING NOT NULL DEFAULT 'pending',\n"
        "    reviewer_id STRING,\n"
        "    review_notes STRING,\n"
        "    reviewed_at TIMESTAMP,\n"
        "    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp(),\n"
        "    CONSTRAINT flags_pk PRIMARY KEY (flag_id)\n"
        ")\n"
        "USING DELTA\n"
        "CLUSTER BY (audit_run_id, status, severity, transaction_id)\n"
        "TBLPROPERTIES ('delta.feature.allowColumnDefaults' = 'supported')"
    )
    assert statements[1:7] == [
        "ALTER TABLE flags DROP CONSTRAINT IF EXISTS flags_severity_check",
        "ALTER TABLE flags ADD CONSTRAINT flags_severity_check CHECK "
        "(severity IN ('INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'))",
        "ALTER TABLE flags DROP CONSTRAINT IF EXISTS flags_confidence_check",
        "ALTER TABLE flags ADD CONSTRAINT flags_confidence_check CHECK "
        "(confidence >= 0 AND confidence <= 1)",
        "ALTER TABLE flags DROP CONSTRAINT IF EXISTS flags_status_check",
        "ALTER TABLE flags ADD CONSTRAINT flags_status_check CHECK "
        "(status IN ('pending', 'confirmed', 'dismissed', 'escalated'))",
    ]
    assert statements[-1].startswith(
        "MERGE INTO audit_schema_version AS t USING (SELECT 1 AS version"
    )
    assert len(statements) == 21  # 3 CREATE + 2x(3+4+1) constraint pairs + version table and row


def test_unknown_dialect_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="sqlite"):
        ddl("sqlite")


async def test_ensure_schema_through_the_local_warehouse() -> None:
    async with DatabricksClient.local(load_fixtures=False, registry=CollectorRegistry()) as wh:
        assert await schema_version(wh) is None
        n = await ensure_schema(wh)
        assert n == len(ddl("duckdb"))
        await ensure_schema(wh)
        assert await schema_version(wh) == 1
        tables = await wh.known_tables()
        assert {"flags", "audit_trail", "workflow_state", "audit_schema_version"} <= set(tables)
