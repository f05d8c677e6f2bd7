"""Tables for flags, the audit trail and workflow state, in three real dialects.

The original layout is the contract: other agents of the system read and write these
column names, CHECK value sets and indexes. Columns this project added (rule, title,
amount, the hash chain, ...) are extra columns, never renames. Schema version 2 is this
layout; `ensure_schema` / `create_all_tables` migrate a version-1 database in place
(``audit_core.db._migration``).

Documented widenings of the original types (data the original could not hold):

========================================  ===================  ========================
column                                    original             here, and why
========================================  ===================  ========================
``audit_run_id`` (every table)            VARCHAR(36)          VARCHAR(200): run ids up
                                                               to 200 characters
``flags.flag_id``                         VARCHAR(36)          VARCHAR(64): version-1 ids
``audit_trail.tool_called``, ``llm_model``  VARCHAR(100)       VARCHAR(200): model ids
``audit_trail.llm_cost_dollars``          DECIMAL(10,4)        DECIMAL(12,6): per-call
                                                               costs below $0.0001
``TIMESTAMP`` columns                     TIMESTAMP            TIMESTAMPTZ (Databricks
                                                               TIMESTAMP): an instant
========================================  ===================  ========================

``FLOAT`` is Postgres double precision, so DuckDB and Databricks get ``DOUBLE``.
Severity is ``CRITICAL/WARNING/INFO`` (``severity_level``); the finer five-level scale
the rules use is kept in the extra ``risk_level`` column (`SEVERITY_FOR_RISK` maps it).

``ddl(dialect)`` returns one statement per item, so drivers that reject multi-statement
strings run them; every statement is idempotent. Dialect rules: ``audit_core.db._tables``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from audit_core.db._tables import DIALECTS, Column, Dialect, Index, Table, translate
from audit_core.errors import ConfigError, QueryError

if TYPE_CHECKING:
    from audit_core.warehouse import DatabricksClient

__all__ = [
    "AUDIT_TRAIL_HEADS_TABLE_SCHEMA",
    "AUDIT_TRAIL_TABLE_SCHEMA",
    "DIALECTS",
    "FLAGS_TABLE_SCHEMA",
    "HASH_ALGORITHMS",
    "HUMAN_DECISIONS",
    "RISK_LEVELS",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "SEVERITY_FOR_RISK",
    "TABLES",
    "WORKFLOW_STATUSES",
    "WORKFLOW_STATE_TABLE_SCHEMA",
    "create_all_tables",
    "ddl",
    "ensure_schema",
    "schema_version",
]

SCHEMA_VERSION = 2
SEVERITIES = ("CRITICAL", "WARNING", "INFO")
RISK_LEVELS = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")
SEVERITY_FOR_RISK = {
    "CRITICAL": "CRITICAL",
    "HIGH": "CRITICAL",
    "MEDIUM": "WARNING",
    "LOW": "WARNING",
    "INFO": "INFO",
}
HUMAN_DECISIONS = ("confirmed", "dismissed", "escalated")
WORKFLOW_STATUSES = ("pending", "in_progress", "completed", "failed", "paused")
# sha256-v1: rows migrated from schema version 1, hashed under their version-1 names.
HASH_ALGORITHMS = ("sha256-v1", "sha256", "hmac-sha256")
VERSION_DESCRIPTION = {
    1: "flags, audit_trail, workflow_state",
    2: "original column names restored; audit_trail_heads; append-only trail",
}


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


FLAGS = Table(
    name="flags",
    columns=(
        Column("flag_id", "VARCHAR(64)", "NOT NULL"),
        Column("transaction_id", "VARCHAR(255)", "NOT NULL"),
        Column("audit_run_id", "VARCHAR(200)", "NOT NULL"),
        Column("severity_level", "VARCHAR(20)"),
        Column("confidence_score", "FLOAT"),
        Column("explanation", "TEXT", "NOT NULL"),
        Column("supporting_evidence_links", "TEXT"),
        Column("reviewed", "BOOLEAN", "DEFAULT FALSE"),
        Column("human_decision", "VARCHAR(30)"),
        Column("reviewer_id", "VARCHAR(255)"),
        Column("review_timestamp", "TIMESTAMPTZ"),
        Column("reviewer_notes", "TEXT"),
        Column("created_at", "TIMESTAMPTZ", "DEFAULT {now}"),
        Column("updated_at", "TIMESTAMPTZ", "DEFAULT {now}"),
        # added by this project
        Column("rule", "VARCHAR(64)"),
        Column("title", "TEXT"),
        Column("amount", "NUMERIC(18,2)"),
        Column("risk_level", "VARCHAR(16)"),
        Column("detected_by", "VARCHAR(100)"),
    ),
    primary_key=("flag_id",),
    checks=(
        ("flags_severity_level_check", f"severity_level IN {_in(SEVERITIES)}"),
        ("flags_confidence_score_check", "confidence_score BETWEEN 0 AND 1"),
        ("flags_risk_level_check", f"risk_level IN {_in(RISK_LEVELS)}"),
    ),
    indexes=(
        Index("idx_flags_transaction", "transaction_id"),
        Index("idx_flags_audit_run", "audit_run_id"),
        Index("idx_flags_reviewed", "reviewed, created_at DESC"),
        Index("idx_flags_severity", "severity_level, created_at DESC"),
    ),
    clustering=("audit_run_id", "transaction_id", "severity_level", "created_at"),
)

AUDIT_TRAIL = Table(
    name="audit_trail",
    columns=(
        Column("audit_run_id", "VARCHAR(200)", "NOT NULL"),
        Column("log_sequence_number", "BIGINT", "NOT NULL"),
        Column("agent_name", "VARCHAR(100)", "NOT NULL"),
        Column("tool_called", "VARCHAR(200)", "NOT NULL"),
        Column("timestamp", "TIMESTAMPTZ", "DEFAULT {now}"),
        Column("execution_time_ms", "BIGINT"),
        Column("input_data", "TEXT"),
        Column("output_summary", "TEXT"),
        Column("llm_model", "VARCHAR(200)"),
        Column("llm_tokens_used", "BIGINT"),
        Column("llm_cost_dollars", "NUMERIC(12,6)"),
        Column("error_message", "TEXT"),
        Column("error_stack_trace", "TEXT"),
        Column("decision_chain", "TEXT"),
        # added by this project: the hash chain
        Column("hash_algorithm", "VARCHAR(16)", "NOT NULL"),
        Column("prev_hash", "CHAR(64)", "NOT NULL"),
        Column("entry_hash", "CHAR(64)", "NOT NULL"),
    ),
    primary_key=("audit_run_id", "log_sequence_number"),
    checks=(
        ("audit_trail_sequence_check", "log_sequence_number >= 1"),
        ("audit_trail_tokens_check", "llm_tokens_used IS NULL OR llm_tokens_used >= 0"),
        ("audit_trail_cost_check", "llm_cost_dollars IS NULL OR llm_cost_dollars >= 0"),
        ("audit_trail_time_check", "execution_time_ms IS NULL OR execution_time_ms >= 0"),
        ("audit_trail_hash_algorithm_check", f"hash_algorithm IN {_in(HASH_ALGORITHMS)}"),
    ),
    indexes=(
        Index("idx_audit_trail_agent", "agent_name, timestamp DESC"),
        Index("idx_audit_trail_timestamp", "timestamp DESC"),
    ),
    clustering=("audit_run_id", "agent_name", "timestamp"),
    append_only=True,
)

# One row per flush of a run: (rows so far, hash of the newest). Append-only like the
# trail, so a cut-off tail, or a recomputed chain, disagrees with an earlier head.
AUDIT_TRAIL_HEADS = Table(
    name="audit_trail_heads",
    columns=(
        Column("audit_run_id", "VARCHAR(200)", "NOT NULL"),
        Column("row_count", "BIGINT", "NOT NULL"),
        Column("last_hash", "CHAR(64)", "NOT NULL"),
        Column("hash_algorithm", "VARCHAR(16)", "NOT NULL"),
        Column("completed", "BOOLEAN", "NOT NULL"),
        Column("recorded_at", "TIMESTAMPTZ", "NOT NULL"),
    ),
    primary_key=("audit_run_id", "row_count", "completed"),
    checks=(("audit_trail_heads_rows_check", "row_count >= 0"),),
    clustering=("audit_run_id",),
    append_only=True,
)

WORKFLOW_STATE = Table(
    name="workflow_state",
    columns=(
        Column("audit_run_id", "VARCHAR(200)", "NOT NULL"),
        Column("workflow_status", "VARCHAR(20)"),
        Column("current_agent", "VARCHAR(100)"),
        Column("completed_agents", "TEXT"),
        Column("pending_agents", "TEXT"),
        Column("intermediate_results", "TEXT"),
        Column("created_at", "TIMESTAMPTZ", "DEFAULT {now}"),
        Column("updated_at", "TIMESTAMPTZ", "DEFAULT {now}"),
        # added by this project
        Column("completed_at", "TIMESTAMPTZ"),
        Column("error_message", "TEXT"),
    ),
    primary_key=("audit_run_id",),
    checks=(
        ("workflow_state_workflow_status_check", f"workflow_status IN {_in(WORKFLOW_STATUSES)}"),
    ),
    indexes=(Index("idx_workflow_state_status", "workflow_status, created_at DESC"),),
    clustering=("workflow_status", "created_at"),
)

TABLES: tuple[Table, ...] = (FLAGS, AUDIT_TRAIL, AUDIT_TRAIL_HEADS, WORKFLOW_STATE)


def check_dialect(dialect: str) -> Dialect:
    for known in DIALECTS:
        if dialect == known:
            return known
    raise ConfigError(f"unknown dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")


def version_statements(dialect: Dialect, version: int = SCHEMA_VERSION) -> list[str]:
    """The version table, and the row recording ``version``."""
    create = (
        "CREATE TABLE IF NOT EXISTS audit_schema_version (\n"
        "    version INT NOT NULL,\n"
        f"    applied_at {translate('TIMESTAMPTZ', dialect)} NOT NULL,\n"
        f"    description {translate('TEXT', dialect)} NOT NULL,\n"
        "    CONSTRAINT audit_schema_version_pk PRIMARY KEY (version)\n)"
    )
    description = VERSION_DESCRIPTION[version]
    if dialect == "databricks":
        create += "\nUSING DELTA"
        insert = (
            "MERGE INTO audit_schema_version AS t USING (SELECT "
            f"{version} AS version, '{description}' AS description) AS s "
            "ON t.version = s.version WHEN NOT MATCHED THEN INSERT (version, applied_at, "
            "description) VALUES (s.version, current_timestamp(), s.description)"
        )
    else:
        now = "now()" if dialect == "postgres" else "current_timestamp"
        insert = (
            "INSERT INTO audit_schema_version (version, applied_at, description) VALUES "
            f"({version}, {now}, '{description}') ON CONFLICT (version) DO NOTHING"
        )
    return [create, insert]


def ddl(dialect: str) -> list[str]:
    """Every statement that creates schema version 2 in ``dialect``, one per item, in order."""
    checked = check_dialect(dialect)
    out: list[str] = []
    for table in TABLES:
        out.extend(table.statements(checked))
    out.extend(version_statements(checked))
    return out


def _postgres_text(table: Table) -> str:
    return ";\n\n".join(table.statements("postgres")) + ";\n"


FLAGS_TABLE_SCHEMA = _postgres_text(FLAGS)
AUDIT_TRAIL_TABLE_SCHEMA = _postgres_text(AUDIT_TRAIL)
AUDIT_TRAIL_HEADS_TABLE_SCHEMA = _postgres_text(AUDIT_TRAIL_HEADS)
WORKFLOW_STATE_TABLE_SCHEMA = _postgres_text(WORKFLOW_STATE)


def create_all_tables(cursor: Any, dialect: str = "postgres") -> int:
    """Bring a database to schema version 2 through a DB-API cursor; returns statements run.

    A version-1 database is migrated in place first (in one transaction), then every
    statement of ``ddl(dialect)`` runs, one ``execute`` each. Idempotent. For Databricks
    (no transactions across DDL) use `ensure_schema` or ``migration_statements``.
    """
    from audit_core.db._migration import migrate_cursor

    checked = check_dialect(dialect)
    count = migrate_cursor(cursor, checked)
    statements = ddl(checked)
    for statement in statements:
        cursor.execute(statement)
    return count + len(statements)


async def ensure_schema(warehouse: DatabricksClient, *, migrate: bool = True) -> int:
    """Schema version 2 through a `DatabricksClient` (its own dialect); returns statements run.

    A version-1 database is migrated in place first. On Databricks the migration renames
    columns (column mapping mode); with ``migrate=False`` a version-1 Databricks database
    raises `ConfigError` naming ``audit-core init-db`` so an operator can review and run
    the statements (``migration_statements("databricks")``) instead.
    """
    from audit_core.db._migration import migrate_warehouse

    dialect: Dialect = "databricks" if warehouse.backend == "databricks" else "duckdb"
    count = await migrate_warehouse(warehouse, dialect, apply=migrate)
    statements = ddl(dialect)
    for statement in statements:
        await warehouse.execute(statement, native=True)
    return count + len(statements)


_VERSION_TABLE_EXISTS = (
    "SELECT count(*) AS n FROM information_schema.tables "
    "WHERE table_name = :table AND table_schema = current_schema()"
)


async def schema_version(warehouse: DatabricksClient) -> int | None:
    """The highest schema version recorded in the warehouse; None before `ensure_schema`."""
    try:  # ask the catalog first: no failed query (and warning) on a new database
        found = await warehouse.query_arrow(
            _VERSION_TABLE_EXISTS, {"table": "audit_schema_version"}
        )
        if not found.column(0)[0].as_py():
            return None
    except QueryError:
        pass  # no information_schema (Hive metastore): read a missing table as "no version"
    try:
        table = await warehouse.query_arrow("SELECT max(version) AS v FROM audit_schema_version")
    except QueryError:
        return None
    value = table.column(0)[0].as_py()
    return None if value is None else int(value)
