"""Schema version 2 on a real PostgreSQL server, on DuckDB, and pinned for Databricks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
import sqlglot
from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient
from audit_core.db import create_all_tables, ddl, ensure_schema, schema_version
from audit_core.db.schemas import (
    AUDIT_TRAIL_HEADS_TABLE_SCHEMA,
    AUDIT_TRAIL_TABLE_SCHEMA,
    FLAGS_TABLE_SCHEMA,
    WORKFLOW_STATE_TABLE_SCHEMA,
)
from audit_core.errors import ConfigError
from tests.services import PostgresServer

# The original layout (issue 15): column -> (Postgres data_type, the original length /
# precision it must hold at least). Widenings are allowed, renames are not.
ORIGINAL: dict[str, dict[str, tuple[str, int | None]]] = {
    "flags": {
        "flag_id": ("character varying", 36),
        "transaction_id": ("character varying", 255),
        "audit_run_id": ("character varying", 36),
        "severity_level": ("character varying", 20),
        "confidence_score": ("double precision", None),
        "explanation": ("text", None),
        "supporting_evidence_links": ("text", None),
        "reviewed": ("boolean", None),
        "human_decision": ("character varying", 30),
        "reviewer_id": ("character varying", 255),
        "review_timestamp": ("timestamp with time zone", None),
        "reviewer_notes": ("text", None),
        "created_at": ("timestamp with time zone", None),
        "updated_at": ("timestamp with time zone", None),
    },
    "audit_trail": {
        "audit_run_id": ("character varying", 36),
        "log_sequence_number": ("bigint", None),
        "agent_name": ("character varying", 100),
        "tool_called": ("character varying", 100),
        "timestamp": ("timestamp with time zone", None),
        "execution_time_ms": ("bigint", None),
        "input_data": ("text", None),
        "output_summary": ("text", None),
        "llm_model": ("character varying", 100),
        "llm_tokens_used": ("bigint", None),
        "llm_cost_dollars": ("numeric", 10),
        "error_message": ("text", None),
        "error_stack_trace": ("text", None),
        "decision_chain": ("text", None),
    },
    "workflow_state": {
        "audit_run_id": ("character varying", 36),
        "workflow_status": ("character varying", 20),
        "current_agent": ("character varying", 100),
        "completed_agents": ("text", None),
        "pending_agents": ("text", None),
        "intermediate_results": ("text", None),
        "created_at": ("timestamp with time zone", None),
        "updated_at": ("timestamp with time zone", None),
    },
}
ORIGINAL_INDEXES = {
    "flags": [
        "(transaction_id)",
        "(audit_run_id)",
        "(reviewed, created_at DESC)",
        "(severity_level, created_at DESC)",
    ],
    "audit_trail": ['(agent_name, "timestamp" DESC)', '("timestamp" DESC)'],
    "workflow_state": ["(workflow_status, created_at DESC)"],
}


def flag_sql(id: str = "f1", severity: str = "CRITICAL", confidence: str = "0.9") -> str:
    return (
        "INSERT INTO flags (flag_id, transaction_id, audit_run_id, severity_level, "
        f"confidence_score, explanation) VALUES ('{id}', 'TXN1', 'run-1', '{severity}', "
        f"{confidence}, 'Duplicate charge')"
    )


@pytest.fixture
def pg(postgres_server: PostgresServer) -> Iterator[Any]:
    """An autocommit connection to an empty public schema."""
    import psycopg

    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.execute("DROP SCHEMA IF EXISTS public CASCADE")
            cur.execute("CREATE SCHEMA public")
        yield conn


@pytest.mark.postgres
def test_postgres_has_every_original_column_type_and_index(pg: Any) -> None:
    """Every original name exists with its type (or a documented widening) and index."""
    with pg.cursor() as cur:
        create_all_tables(cur, "postgres")
        for table, columns in ORIGINAL.items():
            cur.execute(
                "SELECT column_name, data_type, coalesce(character_maximum_length, "
                "numeric_precision), numeric_scale FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = %s",
                (table,),
            )
            found = {name: (kind, size, scale) for name, kind, size, scale in cur.fetchall()}
            for column, (kind, size) in columns.items():
                assert column in found, f"{table}.{column} is missing"
                assert found[column][0] == kind, (table, column, found[column])
                if size is not None:
                    assert found[column][1] >= size, (table, column, found[column])
            cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", (table,))
            defs = [row[0] for row in cur.fetchall()]
            for columns_text in ORIGINAL_INDEXES[table]:
                assert any(d.endswith(columns_text) for d in defs), (table, columns_text, defs)
        cur.execute(
            "SELECT numeric_precision, numeric_scale FROM information_schema.columns "
            "WHERE table_name = 'audit_trail' AND column_name = 'llm_cost_dollars'"
        )
        precision, scale = cur.fetchone()
        assert scale >= 4
        assert precision - scale >= 6  # the original DECIMAL(10,4) holds up to $999,999


@pytest.mark.postgres
def test_postgres_ddl_runs_twice_and_enforces_the_original_checks(pg: Any) -> None:
    """Bad severity, confidence 1.5, bad status, duplicate keys: each rejected by name."""
    import psycopg

    with pg.cursor() as cur:
        assert create_all_tables(cur, "postgres") == len(ddl("postgres"))
        create_all_tables(cur, "postgres")  # idempotent
        for i, severity in enumerate(("CRITICAL", "WARNING", "INFO")):
            cur.execute(flag_sql(id=f"ok{i}", severity=severity))
        with pytest.raises(psycopg.errors.CheckViolation, match="flags_severity_level_check"):
            cur.execute(flag_sql(id="f2", severity="HIGH"))
        with pytest.raises(psycopg.errors.CheckViolation, match="flags_confidence_score_check"):
            cur.execute(flag_sql(id="f3", confidence="1.5"))
        with pytest.raises(psycopg.errors.UniqueViolation, match="flags_pk"):
            cur.execute(flag_sql(id="ok0"))
        with pytest.raises(psycopg.errors.NotNullViolation, match="explanation"):
            cur.execute(
                "INSERT INTO flags (flag_id, transaction_id, audit_run_id) VALUES ('f4', 'T', 'r')"
            )
        for status in ("pending", "in_progress", "completed", "failed", "paused"):
            cur.execute(
                "INSERT INTO workflow_state (audit_run_id, workflow_status) VALUES (%s, %s)",
                (f"r-{status}", status),
            )
        with pytest.raises(
            psycopg.errors.CheckViolation, match="workflow_state_workflow_status_check"
        ):
            cur.execute(
                "INSERT INTO workflow_state (audit_run_id, workflow_status) VALUES ('r', 'running')"
            )
        with pytest.raises(psycopg.errors.UniqueViolation, match="workflow_state_pk"):
            cur.execute(
                "INSERT INTO workflow_state (audit_run_id, workflow_status) "
                "VALUES ('r-pending', 'pending')"
            )
        cur.execute("SELECT count(*) FROM flags")
        assert cur.fetchone() == (3,)  # only the valid rows
        cur.execute("SELECT reviewed, created_at IS NOT NULL FROM flags WHERE flag_id = 'ok0'")
        assert cur.fetchone() == (False, True)  # the original defaults
        cur.execute("SELECT version FROM audit_schema_version")
        assert cur.fetchall() == [(2,)]


@pytest.mark.postgres
def test_postgres_trail_tables_are_append_only(pg: Any) -> None:
    """UPDATE, DELETE and TRUNCATE on the trail and its heads are refused by the server."""
    import psycopg

    with pg.cursor() as cur:
        create_all_tables(cur, "postgres")
        cur.execute(
            "INSERT INTO audit_trail (audit_run_id, log_sequence_number, agent_name, "
            "tool_called, hash_algorithm, prev_hash, entry_hash) "
            "VALUES ('r', 1, 'a', 't', 'sha256', repeat('0', 64), repeat('1', 64))"
        )
        cur.execute(
            "INSERT INTO audit_trail_heads VALUES ('r', 1, repeat('1', 64), 'sha256', TRUE, now())"
        )
        for statement in (
            "UPDATE audit_trail SET output_summary = 'edited'",
            "DELETE FROM audit_trail WHERE log_sequence_number = 1",
            "TRUNCATE audit_trail",
            "UPDATE audit_trail_heads SET row_count = 0",
            "DELETE FROM audit_trail_heads",
            "TRUNCATE audit_trail_heads",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                cur.execute(statement)
        cur.execute("SELECT count(*) FROM audit_trail")
        assert cur.fetchone() == (1,)


@pytest.mark.postgres
def test_postgres_constants_are_the_postgres_ddl(pg: Any) -> None:
    """The seed-style constants hold exactly the postgres statements, and run as scripts."""
    statements = ddl("postgres")
    for text in (
        FLAGS_TABLE_SCHEMA,
        AUDIT_TRAIL_TABLE_SCHEMA,
        AUDIT_TRAIL_HEADS_TABLE_SCHEMA,
        WORKFLOW_STATE_TABLE_SCHEMA,
    ):
        for part in text.strip().removesuffix(";").split(";\n\n"):
            assert part in statements
    assert "severity_level VARCHAR(20)" in FLAGS_TABLE_SCHEMA
    assert "log_sequence_number BIGINT NOT NULL" in AUDIT_TRAIL_TABLE_SCHEMA
    assert "workflow_status VARCHAR(20)" in WORKFLOW_STATE_TABLE_SCHEMA
    with pg.cursor() as cur:
        cur.execute(FLAGS_TABLE_SCHEMA)
        cur.execute(AUDIT_TRAIL_TABLE_SCHEMA)
        cur.execute("SELECT count(*) FROM flags")
        assert cur.fetchone() == (0,)


def test_duckdb_ddl_runs_twice_and_enforces_the_original_checks() -> None:
    """The same rules on DuckDB: CHECK value sets, the confidence range, primary keys."""
    cur = duckdb.connect().cursor()
    create_all_tables(cur, "duckdb")
    create_all_tables(cur, "duckdb")
    cur.execute(flag_sql())
    with pytest.raises(duckdb.ConstraintException, match="CHECK"):
        cur.execute(flag_sql(id="f2", severity="HIGH"))
    with pytest.raises(duckdb.ConstraintException, match="CHECK"):
        cur.execute(flag_sql(id="f3", confidence="1.5"))
    with pytest.raises(duckdb.ConstraintException, match=r"(?i)primary key|duplicate key"):
        cur.execute(flag_sql())
    with pytest.raises(duckdb.ConstraintException, match="CHECK"):
        cur.execute("INSERT INTO workflow_state (audit_run_id, workflow_status) VALUES ('r', 'x')")
    assert cur.execute("SELECT count(*) FROM flags").fetchone() == (1,)
    columns = cur.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
    ).fetchall()
    for table, names in ORIGINAL.items():
        assert set(names) <= {c for t, c in columns if t == table}
    assert cur.execute("SELECT version FROM audit_schema_version").fetchall() == [(2,)]


def test_databricks_ddl_parses_and_avoids_rejected_constructs() -> None:
    """Every statement parses as Databricks SQL; no index, inline CHECK or Postgres type."""
    statements = ddl("databricks")
    for statement in statements:
        sqlglot.parse_one(statement, read="databricks")  # raises on a parse error
        upper = statement.upper()
        assert "CREATE INDEX" not in upper
        if upper.startswith("CREATE TABLE"):
            assert "CHECK (" not in upper
            assert "USING DELTA" in upper
            if "DEFAULT" in upper:
                assert "'DELTA.FEATURE.ALLOWCOLUMNDEFAULTS' = 'SUPPORTED'" in upper
            for banned in ("TIMESTAMPTZ", "VARCHAR", " TEXT", "NUMERIC", "JSONB", "FLOAT"):
                assert banned not in upper
    for i, statement in enumerate(statements):
        if " ADD CONSTRAINT " in statement:
            name = statement.split(" ADD CONSTRAINT ")[1].split()[0]
            assert statements[i - 1].endswith(f"DROP CONSTRAINT IF EXISTS {name}")


def test_databricks_ddl_is_pinned() -> None:
    """The Databricks text an operator reviews, pinned: names, clustering, append-only."""
    statements = ddl("databricks")
    assert statements[0] == (
        "CREATE TABLE IF NOT EXISTS flags (\n"
        "    flag_id STRING NOT NULL,\n"
        "    transaction_id STRING NOT NULL,\n"
        "    audit_run_id STRING NOT NULL,\n"
        "    severity_level STRING,\n"
        "    confidence_score DOUBLE,\n"
        "    explanation STRING NOT NULL,\n"
        "    supporting_evidence_links STRING,\n"
        "    reviewed BOOLEAN DEFAULT FALSE,\n"
        "    human_decision STRING,\n"
        "    reviewer_id STRING,\n"
        "    review_timestamp TIMESTAMP,\n"
        "    reviewer_notes STRING,\n"
        "    created_at TIMESTAMP DEFAULT current_timestamp(),\n"
        "    updated_at TIMESTAMP DEFAULT current_timestamp(),\n"
        "    rule STRING,\n"
        "    title STRING,\n"
        "    amount DECIMAL(18,2),\n"
        "    risk_level STRING,\n"
        "    detected_by STRING,\n"
        "    vendor_name STRING,\n"
        "    department STRING,\n"
        "    transaction_date TIMESTAMP,\n"
        "    CONSTRAINT flags_pk PRIMARY KEY (flag_id)\n"
        ")\n"
        "USING DELTA\n"
        "CLUSTER BY (audit_run_id, transaction_id, severity_level, created_at)\n"
        "TBLPROPERTIES ('delta.feature.allowColumnDefaults' = 'supported')"
    )
    assert statements[1:7] == [
        "ALTER TABLE flags DROP CONSTRAINT IF EXISTS flags_severity_level_check",
        "ALTER TABLE flags ADD CONSTRAINT flags_severity_level_check CHECK "
        "(severity_level IN ('CRITICAL', 'WARNING', 'INFO'))",
        "ALTER TABLE flags DROP CONSTRAINT IF EXISTS flags_confidence_score_check",
        "ALTER TABLE flags ADD CONSTRAINT flags_confidence_score_check CHECK "
        "(confidence_score BETWEEN 0 AND 1)",
        "ALTER TABLE flags DROP CONSTRAINT IF EXISTS flags_risk_level_check",
        "ALTER TABLE flags ADD CONSTRAINT flags_risk_level_check CHECK "
        "(risk_level IN ('INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'))",
    ]
    trail = next(s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS audit_trail ("))
    assert trail.endswith(
        "CLUSTER BY (audit_run_id, agent_name, timestamp)\n"
        "TBLPROPERTIES ('delta.feature.allowColumnDefaults' = 'supported', "
        "'delta.appendOnly' = 'true')"
    )
    assert "log_sequence_number BIGINT NOT NULL" in trail
    assert "llm_cost_dollars DECIMAL(12,6)" in trail
    heads = next(s for s in statements if "audit_trail_heads (" in s)
    assert "'delta.appendOnly' = 'true'" in heads
    assert statements[-1].startswith(
        "MERGE INTO audit_schema_version AS t USING (SELECT 2 AS version"
    )
    assert len(statements) == 26  # 4 CREATE + 2 x (3 + 5 + 1 + 1) checks + version table and row


def test_unknown_dialect_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="sqlite"):
        ddl("sqlite")


async def test_ensure_schema_through_the_local_warehouse() -> None:
    """`ensure_schema` creates version 2 through the warehouse, twice without harm."""
    async with DatabricksClient.local(load_fixtures=False, registry=CollectorRegistry()) as wh:
        assert await schema_version(wh) is None
        n = await ensure_schema(wh)
        assert n == len(ddl("duckdb"))
        await ensure_schema(wh)
        assert await schema_version(wh) == 2
        tables = await wh.known_tables()
        assert {
            "flags",
            "audit_trail",
            "audit_trail_heads",
            "workflow_state",
            "audit_schema_version",
        } <= set(tables)
