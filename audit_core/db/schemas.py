"""Tables for flags, the audit trail and workflow state, in three real dialects.

The original layout is the contract: other agents of the system read and write these
column names, CHECK value sets and indexes. Columns this project added (rule, title,
amount, the hash chain, ...) are extra columns, never renames. Schema version 2 is this
layout; `ensure_schema` / `create_all_tables` migrate a version-1 database in place
(``audit_core.db._migration``).

Documented widenings of the original types (real data the original could not hold):

- ``audit_run_id`` (every table): VARCHAR(36) -> VARCHAR(200), the run ids the state
  store accepts (1-200 characters);
- ``flags.flag_id``: VARCHAR(36) -> VARCHAR(64), the ids version 1 issued;
- ``audit_trail.tool_called`` and ``llm_model``: VARCHAR(100) -> VARCHAR(200), model ids;
- ``audit_trail.llm_cost_dollars``: DECIMAL(10,4) -> DECIMAL(12,6), per-call costs below
  $0.0001 (same six integer digits);
- ``TIMESTAMP`` columns: TIMESTAMPTZ (Databricks TIMESTAMP), an instant rather than a
  wall-clock reading.

``FLOAT`` is Postgres double precision, so DuckDB and Databricks get ``DOUBLE``.
Severity is ``CRITICAL/WARNING/INFO`` (``severity_level``); the finer five-level scale
the rules use is kept in the extra ``risk_level`` column (`SEVERITY_FOR_RISK` maps it).

The trail's rows must come through `AuditTrail`: its hash columns are NOT NULL, so a row
written around the chain is refused at the door instead of found later as tampering.
DuckDB keeps the indexes but ignores ``DESC`` in them.

``ddl(dialect)`` returns one statement per item, so drivers that reject multi-statement
strings run them; every statement is idempotent. Dialect rules: ``audit_core.db._tables``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from audit_core.db._layout import (
    AUDIT_TRAIL,
    AUDIT_TRAIL_HEADS,
    FLAGS,
    HASH_ALGORITHMS,
    HUMAN_DECISIONS,
    RISK_LEVELS,
    SCHEMA_VERSION,
    SEVERITIES,
    SEVERITY_FOR_RISK,
    TABLES,
    WORKFLOW_STATE,
    WORKFLOW_STATUSES,
    check_dialect,
    version_statements,
)
from audit_core.db._migration import migrate_cursor, migrate_warehouse, schema_version
from audit_core.db._tables import DIALECTS, Dialect, Table

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
    dialect: Dialect = "databricks" if warehouse.backend == "databricks" else "duckdb"
    count = await migrate_warehouse(warehouse, dialect, apply=migrate)
    statements = ddl(dialect)
    if dialect == "duckdb":  # one script, one round trip: DuckDB runs each in turn
        await warehouse.execute(";\n".join(statements), native=True)
        return count + len(statements)
    for statement in statements:
        await warehouse.execute(statement, native=True)
    return count + len(statements)
