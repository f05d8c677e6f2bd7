"""Tables for flags, the audit trail and workflow state, in three real dialects.

``ddl(dialect)`` returns one statement per item, so drivers that reject
multi-statement strings (Databricks, sqlite3, many others) run them; every statement is
idempotent, so `create_all_tables` can run on every start.

Dialect notes (Databricks rules from the Databricks SQL reference):

- **postgres**: the seed's layout: inline CHECKs, primary keys, ``CREATE INDEX IF NOT EXISTS``.
- **duckdb**: the same constraints (DuckDB enforces CHECK and PRIMARY KEY), JSON kept as
  TEXT, ``TIMESTAMPTZ``.
- **databricks**: Delta tables with ``STRING`` / ``TIMESTAMP`` / ``DECIMAL``; no
  ``CREATE INDEX`` (liquid clustering, ``CLUSTER BY``, on the columns the seed indexed,
  at most four); CHECK constraints added after creation with ``ALTER TABLE ... ADD
  CONSTRAINT`` (there is no ``IF NOT EXISTS`` for them, so each is preceded by ``DROP
  CONSTRAINT IF EXISTS``, which keeps reruns idempotent); column defaults only with the
  ``delta.feature.allowColumnDefaults`` table feature; primary keys are informational
  (Unity Catalog), not enforced.

The schema version lives in ``audit_schema_version``; version 1 is this layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from audit_core.errors import ConfigError

if TYPE_CHECKING:
    from audit_core.warehouse import DatabricksClient

__all__ = [
    "AUDIT_TRAIL_TABLE_SCHEMA",
    "DIALECTS",
    "FLAGS_TABLE_SCHEMA",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "WORKFLOW_STATE_TABLE_SCHEMA",
    "create_all_tables",
    "ddl",
    "ensure_schema",
]

Dialect = Literal["postgres", "databricks", "duckdb"]
DIALECTS: tuple[Dialect, ...] = ("postgres", "databricks", "duckdb")
SCHEMA_VERSION = 1
SEVERITIES = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")
FLAG_STATUSES = ("pending", "confirmed", "dismissed", "escalated")
RUN_STATUSES = ("pending", "running", "paused", "completed", "failed")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# name -> condition; shared by every dialect so the rules cannot drift apart.
_CHECKS: dict[str, dict[str, str]] = {
    "flags": {
        "flags_severity_check": f"severity IN {_in(SEVERITIES)}",
        "flags_confidence_check": "confidence >= 0 AND confidence <= 1",
        "flags_status_check": f"status IN {_in(FLAG_STATUSES)}",
    },
    "audit_trail": {
        "audit_trail_sequence_check": "sequence_number >= 1",
        "audit_trail_tokens_check": "llm_tokens_used IS NULL OR llm_tokens_used >= 0",
        "audit_trail_cost_check": "llm_cost_dollars IS NULL OR llm_cost_dollars >= 0",
        "audit_trail_time_check": "execution_time_ms IS NULL OR execution_time_ms >= 0",
    },
    "workflow_state": {
        "workflow_state_status_check": f"status IN {_in(RUN_STATUSES)}",
    },
}

# (column, postgres type, duckdb type, databricks type, constraint-free modifiers)
_COLUMNS: dict[str, list[tuple[str, str, str, str, str]]] = {
    "flags": [
        ("flag_id", "VARCHAR(64)", "VARCHAR", "STRING", "NOT NULL"),
        ("audit_run_id", "VARCHAR(200)", "VARCHAR", "STRING", "NOT NULL"),
        ("transaction_id", "VARCHAR(64)", "VARCHAR", "STRING", ""),
        ("rule", "VARCHAR(64)", "VARCHAR", "STRING", "NOT NULL"),
        ("severity", "VARCHAR(16)", "VARCHAR", "STRING", "NOT NULL"),
        ("confidence", "NUMERIC(4,3)", "DECIMAL(4,3)", "DECIMAL(4,3)", "NOT NULL"),
        ("title", "TEXT", "VARCHAR", "STRING", "NOT NULL"),
        ("description", "TEXT", "VARCHAR", "STRING", ""),
        ("amount", "NUMERIC(18,2)", "DECIMAL(18,2)", "DECIMAL(18,2)", ""),
        ("evidence", "TEXT", "VARCHAR", "STRING", ""),
        ("detected_by", "VARCHAR(100)", "VARCHAR", "STRING", "NOT NULL"),
        ("status", "VARCHAR(16)", "VARCHAR", "STRING", "NOT NULL DEFAULT 'pending'"),
        ("reviewer_id", "VARCHAR(100)", "VARCHAR", "STRING", ""),
        ("review_notes", "TEXT", "VARCHAR", "STRING", ""),
        ("reviewed_at", "TIMESTAMPTZ", "TIMESTAMPTZ", "TIMESTAMP", ""),
        ("created_at", "TIMESTAMPTZ", "TIMESTAMPTZ", "TIMESTAMP", "NOT NULL DEFAULT {now}"),
    ],
    "audit_trail": [
        ("audit_run_id", "VARCHAR(200)", "VARCHAR", "STRING", "NOT NULL"),
        ("sequence_number", "BIGINT", "BIGINT", "BIGINT", "NOT NULL"),
        ("recorded_at", "TIMESTAMPTZ", "TIMESTAMPTZ", "TIMESTAMP", "NOT NULL"),
        ("agent_name", "VARCHAR(100)", "VARCHAR", "STRING", "NOT NULL"),
        ("tool_called", "VARCHAR(200)", "VARCHAR", "STRING", "NOT NULL"),
        ("input_data", "TEXT", "VARCHAR", "STRING", ""),
        ("output_summary", "TEXT", "VARCHAR", "STRING", ""),
        ("execution_time_ms", "INTEGER", "INTEGER", "INT", ""),
        ("llm_model", "VARCHAR(200)", "VARCHAR", "STRING", ""),
        ("llm_tokens_used", "INTEGER", "INTEGER", "INT", ""),
        ("llm_cost_dollars", "NUMERIC(12,6)", "DECIMAL(12,6)", "DECIMAL(12,6)", ""),
        ("error", "TEXT", "VARCHAR", "STRING", ""),
        ("decision_chain", "TEXT", "VARCHAR", "STRING", ""),
        ("prev_hash", "CHAR(64)", "VARCHAR", "STRING", "NOT NULL"),
        ("entry_hash", "CHAR(64)", "VARCHAR", "STRING", "NOT NULL"),
    ],
    "workflow_state": [
        ("run_id", "VARCHAR(200)", "VARCHAR", "STRING", "NOT NULL"),
        ("status", "VARCHAR(16)", "VARCHAR", "STRING", "NOT NULL"),
        ("current_step", "VARCHAR(100)", "VARCHAR", "STRING", ""),
        ("state_data", "TEXT", "VARCHAR", "STRING", ""),
        ("started_at", "TIMESTAMPTZ", "TIMESTAMPTZ", "TIMESTAMP", "NOT NULL DEFAULT {now}"),
        ("updated_at", "TIMESTAMPTZ", "TIMESTAMPTZ", "TIMESTAMP", "NOT NULL DEFAULT {now}"),
        ("completed_at", "TIMESTAMPTZ", "TIMESTAMPTZ", "TIMESTAMP", ""),
        ("error_message", "TEXT", "VARCHAR", "STRING", ""),
    ],
}
_PRIMARY_KEYS = {
    "flags": ("flag_id",),
    "audit_trail": ("audit_run_id", "sequence_number"),
    "workflow_state": ("run_id",),
}
# The seed's indexes; on Databricks the same columns become clustering keys.
_INDEXES = {
    "flags": [("idx_flags_audit_run", "audit_run_id"), ("idx_flags_status", "status"),
              ("idx_flags_severity", "severity"), ("idx_flags_transaction", "transaction_id")],
    "audit_trail": [("idx_audit_trail_agent", "agent_name"),
                    ("idx_audit_trail_recorded_at", "recorded_at")],
    "workflow_state": [("idx_workflow_state_status", "status"),
                       ("idx_workflow_state_completed_at", "completed_at")],
}  # fmt: skip
_NOW = {"postgres": "now()", "duckdb": "current_timestamp", "databricks": "current_timestamp()"}
_TYPE_INDEX = {"postgres": 1, "duckdb": 2, "databricks": 3}


def _create(table: str, dialect: Dialect) -> str:
    lines = []
    for column in _COLUMNS[table]:
        kind = column[_TYPE_INDEX[dialect]]
        extra = column[4].format(now=_NOW[dialect])
        lines.append(f"    {column[0]} {kind}{' ' + extra if extra else ''}")
    if dialect != "databricks":
        for name, condition in _CHECKS[table].items():
            lines.append(f"    CONSTRAINT {name} CHECK ({condition})")
    keys = ", ".join(_PRIMARY_KEYS[table])
    lines.append(f"    CONSTRAINT {table}_pk PRIMARY KEY ({keys})")
    body = ",\n".join(lines)
    text = f"CREATE TABLE IF NOT EXISTS {table} (\n{body}\n)"
    if dialect == "databricks":
        clustering = ", ".join(col for _, col in _INDEXES[table])
        text += (
            f"\nUSING DELTA\nCLUSTER BY ({clustering})\n"
            "TBLPROPERTIES ('delta.feature.allowColumnDefaults' = 'supported')"
        )
    return text


def _table_statements(table: str, dialect: Dialect) -> list[str]:
    statements = [_create(table, dialect)]
    if dialect == "databricks":
        for name, condition in _CHECKS[table].items():
            statements.append(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
            statements.append(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition})")
    else:
        for name, column in _INDEXES[table]:
            statements.append(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})")
    return statements


def _version_statements(dialect: Dialect) -> list[str]:
    kind = {"postgres": "TIMESTAMPTZ", "duckdb": "TIMESTAMPTZ", "databricks": "TIMESTAMP"}[dialect]
    text = {"postgres": "TEXT", "duckdb": "VARCHAR", "databricks": "STRING"}[dialect]
    create = (
        "CREATE TABLE IF NOT EXISTS audit_schema_version (\n"
        "    version INT NOT NULL,\n"
        f"    applied_at {kind} NOT NULL,\n"
        f"    description {text} NOT NULL,\n"
        "    CONSTRAINT audit_schema_version_pk PRIMARY KEY (version)\n)"
    )
    description = "flags, audit_trail, workflow_state"
    if dialect == "databricks":
        create += "\nUSING DELTA"
        insert = (
            "MERGE INTO audit_schema_version AS t USING (SELECT "
            f"{SCHEMA_VERSION} AS version, '{description}' AS description) AS s "
            "ON t.version = s.version WHEN NOT MATCHED THEN INSERT (version, applied_at, "
            "description) VALUES (s.version, current_timestamp(), s.description)"
        )
    else:
        insert = (
            "INSERT INTO audit_schema_version (version, applied_at, description) VALUES "
            f"({SCHEMA_VERSION}, {_NOW[dialect]}, '{description}') "
            "ON CONFLICT (version) DO NOTHING"
        )
    return [create, insert]


def ddl(dialect: str) -> list[str]:
    """Every statement that creates the schema in ``dialect``, one per item, in order."""
    if dialect not in DIALECTS:
        raise ConfigError(f"unknown dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")
    checked: Dialect = dialect
    out: list[str] = []
    for table in _COLUMNS:
        out.extend(_table_statements(table, checked))
    out.extend(_version_statements(checked))
    return out


def _postgres_text(table: str) -> str:
    return ";\n\n".join(_table_statements(table, "postgres")) + ";\n"


FLAGS_TABLE_SCHEMA = _postgres_text("flags")
AUDIT_TRAIL_TABLE_SCHEMA = _postgres_text("audit_trail")
WORKFLOW_STATE_TABLE_SCHEMA = _postgres_text("workflow_state")


def create_all_tables(cursor: Any, dialect: str = "postgres") -> int:
    """Run every statement of ``ddl(dialect)`` on a DB-API cursor, one ``execute`` each.

    Idempotent. Returns the number of statements run. The caller commits (or uses an
    autocommit connection).
    """
    statements = ddl(dialect)
    for statement in statements:
        cursor.execute(statement)
    return len(statements)


async def ensure_schema(warehouse: DatabricksClient) -> int:
    """`create_all_tables` through a `DatabricksClient` (its own dialect); statements run."""
    dialect = "databricks" if warehouse.backend == "databricks" else "duckdb"
    statements = ddl(dialect)
    for statement in statements:
        await warehouse.execute(statement, native=True)
    return len(statements)


async def schema_version(warehouse: DatabricksClient) -> int | None:
    """The highest schema version recorded in the warehouse; None before `ensure_schema`."""
    from audit_core.errors import QueryError

    try:
        table = await warehouse.query_arrow("SELECT max(version) AS v FROM audit_schema_version")
    except QueryError:
        return None
    value = table.column(0)[0].as_py()
    return None if value is None else int(value)
