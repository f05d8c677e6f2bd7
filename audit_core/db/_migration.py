"""Schema version 1 -> 2: the original column names back, in place, without losing a row.

Version 1 (the layout shipped before) renamed most original columns. The move back:

- **renames** (``severity`` -> ``risk_level``, ``sequence_number`` -> ``log_sequence_number``,
  ``run_id`` -> ``audit_run_id``, ...: `PLANS`);
- **value mapping**: ``severity_level`` from the five-level ``risk_level``
  (`SEVERITY_FOR_RISK`); a flag's ``status`` becomes ``reviewed`` + ``human_decision``
  (pending -> not reviewed, no decision); a run's ``running`` becomes ``in_progress``;
  ``explanation`` (NOT NULL) falls back to the title, a missing ``transaction_id`` to '';
- **new columns** (``updated_at``, ``error_stack_trace``, ``completed_agents``, ...), and
  trail rows marked ``hash_algorithm = 'sha256-v1'`` so their chain still verifies under
  the names it was hashed with;
- a head per run in ``audit_trail_heads`` (rows and last hash as found at migration,
  completed when the run's workflow state says so).

Postgres: ALTER TABLE in place, in one transaction (Postgres DDL is transactional).
DuckDB: each table rebuilt (its ALTER TABLE cannot add CHECK constraints or change a
column that an index depends on), in one transaction. Databricks: ALTER TABLE ... RENAME
COLUMN under column mapping mode, for an operator to review (`migration_statements`) or
for `ensure_schema` to run; a Delta column cannot change DECIMAL -> DOUBLE, so
``confidence_score`` is copied instead of renamed there.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audit_core.db._layout import (
    AUDIT_TRAIL,
    AUDIT_TRAIL_HEADS,
    FLAGS,
    SCHEMA_VERSION,
    SEVERITY_FOR_RISK,
    WORKFLOW_STATE,
    check_dialect,
    version_statements,
)
from audit_core.db._tables import NOW, Column, Dialect, Index, Table, translate
from audit_core.errors import ConfigError, QueryError

if TYPE_CHECKING:
    from audit_core.db._reader import Reader
    from audit_core.warehouse import DatabricksClient

__all__ = ["V1_TABLES", "ddl_v1", "migration_statements", "schema_version"]

_SEVERITIES_V1 = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")
_FLAG_STATUSES_V1 = ("pending", "confirmed", "dismissed", "escalated")
_RUN_STATUSES_V1 = ("pending", "running", "paused", "completed", "failed")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


FLAGS_V1 = Table(
    name="flags",
    columns=(
        Column("flag_id", "VARCHAR(64)", "NOT NULL"),
        Column("audit_run_id", "VARCHAR(200)", "NOT NULL"),
        Column("transaction_id", "VARCHAR(64)"),
        Column("rule", "VARCHAR(64)", "NOT NULL"),
        Column("severity", "VARCHAR(16)", "NOT NULL"),
        Column("confidence", "NUMERIC(4,3)", "NOT NULL"),
        Column("title", "TEXT", "NOT NULL"),
        Column("description", "TEXT"),
        Column("amount", "NUMERIC(18,2)"),
        Column("evidence", "TEXT"),
        Column("detected_by", "VARCHAR(100)", "NOT NULL"),
        Column("status", "VARCHAR(16)", "NOT NULL DEFAULT 'pending'"),
        Column("reviewer_id", "VARCHAR(100)"),
        Column("review_notes", "TEXT"),
        Column("reviewed_at", "TIMESTAMPTZ"),
        Column("created_at", "TIMESTAMPTZ", "NOT NULL DEFAULT {now}"),
    ),
    primary_key=("flag_id",),
    checks=(
        ("flags_severity_check", f"severity IN {_in(_SEVERITIES_V1)}"),
        ("flags_confidence_check", "confidence >= 0 AND confidence <= 1"),
        ("flags_status_check", f"status IN {_in(_FLAG_STATUSES_V1)}"),
    ),
    indexes=(
        Index("idx_flags_audit_run", "audit_run_id"),
        Index("idx_flags_status", "status"),
        Index("idx_flags_severity", "severity"),
        Index("idx_flags_transaction", "transaction_id"),
    ),
    clustering=("audit_run_id", "status", "severity", "transaction_id"),
)
AUDIT_TRAIL_V1 = Table(
    name="audit_trail",
    columns=(
        Column("audit_run_id", "VARCHAR(200)", "NOT NULL"),
        Column("sequence_number", "BIGINT", "NOT NULL"),
        Column("recorded_at", "TIMESTAMPTZ", "NOT NULL"),
        Column("agent_name", "VARCHAR(100)", "NOT NULL"),
        Column("tool_called", "VARCHAR(200)", "NOT NULL"),
        Column("input_data", "TEXT"),
        Column("output_summary", "TEXT"),
        Column("execution_time_ms", "INTEGER"),
        Column("llm_model", "VARCHAR(200)"),
        Column("llm_tokens_used", "INTEGER"),
        Column("llm_cost_dollars", "NUMERIC(12,6)"),
        Column("error", "TEXT"),
        Column("decision_chain", "TEXT"),
        Column("prev_hash", "CHAR(64)", "NOT NULL"),
        Column("entry_hash", "CHAR(64)", "NOT NULL"),
    ),
    primary_key=("audit_run_id", "sequence_number"),
    checks=(
        ("audit_trail_sequence_check", "sequence_number >= 1"),
        ("audit_trail_tokens_check", "llm_tokens_used IS NULL OR llm_tokens_used >= 0"),
        ("audit_trail_cost_check", "llm_cost_dollars IS NULL OR llm_cost_dollars >= 0"),
        ("audit_trail_time_check", "execution_time_ms IS NULL OR execution_time_ms >= 0"),
    ),
    indexes=(
        Index("idx_audit_trail_agent", "agent_name"),
        Index("idx_audit_trail_recorded_at", "recorded_at"),
    ),
    clustering=("agent_name", "recorded_at"),
)
WORKFLOW_STATE_V1 = Table(
    name="workflow_state",
    columns=(
        Column("run_id", "VARCHAR(200)", "NOT NULL"),
        Column("status", "VARCHAR(16)", "NOT NULL"),
        Column("current_step", "VARCHAR(100)"),
        Column("state_data", "TEXT"),
        Column("started_at", "TIMESTAMPTZ", "NOT NULL DEFAULT {now}"),
        Column("updated_at", "TIMESTAMPTZ", "NOT NULL DEFAULT {now}"),
        Column("completed_at", "TIMESTAMPTZ"),
        Column("error_message", "TEXT"),
    ),
    primary_key=("run_id",),
    checks=(("workflow_state_status_check", f"status IN {_in(_RUN_STATUSES_V1)}"),),
    indexes=(
        Index("idx_workflow_state_status", "status"),
        Index("idx_workflow_state_completed_at", "completed_at"),
    ),
    clustering=("status", "completed_at"),
)
V1_TABLES = (FLAGS_V1, AUDIT_TRAIL_V1, WORKFLOW_STATE_V1)


def ddl_v1(dialect: str) -> list[str]:
    """The version-1 layout (for tests and for reading old databases), one statement each."""
    checked = check_dialect(dialect)
    out: list[str] = []
    for table in V1_TABLES:
        out.extend(table.statements(checked))
    return out + version_statements(checked, 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class TablePlan:
    """How one table moves from version 1 to 2.

    ``fill`` sets a version-2 column from SQL over the renamed columns (and the version-1
    columns that are about to go); ``copy`` (Databricks only) replaces a rename whose type
    change Delta cannot make in place.
    """

    old: Table
    new: Table
    renames: tuple[tuple[str, str], ...]
    fill: tuple[tuple[str, str], ...] = ()
    copy: tuple[tuple[str, str, str], ...] = ()

    def renamed(self, dialect: Dialect) -> dict[str, Column]:
        """Version-1 columns under their version-2 names, as they stand after renaming."""
        renames = dict(self.renames)
        if dialect == "databricks":
            for old, _new, _sql in self.copy:
                renames.pop(old)
        return {renames.get(c.name, c.name): c for c in self.old.columns}

    def fills(self, dialect: Dialect) -> list[tuple[str, str]]:
        extra = [(new, sql) for _old, new, sql in self.copy] if dialect == "databricks" else []
        return extra + list(self.fill)


_RISK_CASE = (
    "CASE risk_level "
    + " ".join(f"WHEN '{risk}' THEN '{sev}'" for risk, sev in SEVERITY_FOR_RISK.items())
    + " END"
)
PLANS: tuple[TablePlan, ...] = (
    TablePlan(
        old=FLAGS_V1,
        new=FLAGS,
        renames=(
            ("severity", "risk_level"),
            ("confidence", "confidence_score"),
            ("description", "explanation"),
            ("evidence", "supporting_evidence_links"),
            ("review_notes", "reviewer_notes"),
            ("reviewed_at", "review_timestamp"),
        ),
        fill=(
            ("severity_level", _RISK_CASE),
            ("reviewed", "status <> 'pending'"),
            ("human_decision", "CASE WHEN status = 'pending' THEN NULL ELSE status END"),
            ("explanation", "coalesce(explanation, title)"),
            ("transaction_id", "coalesce(transaction_id, '')"),
            ("updated_at", "coalesce(review_timestamp, created_at)"),
        ),
        copy=(("confidence", "confidence_score", "CAST(confidence AS DOUBLE)"),),
    ),
    TablePlan(
        old=WORKFLOW_STATE_V1,
        new=WORKFLOW_STATE,
        renames=(
            ("run_id", "audit_run_id"),
            ("status", "workflow_status"),
            ("current_step", "current_agent"),
            ("state_data", "intermediate_results"),
            ("started_at", "created_at"),
        ),
        fill=(
            (
                "workflow_status",
                "CASE WHEN workflow_status = 'running' THEN 'in_progress' ELSE workflow_status END",
            ),
        ),
    ),
    TablePlan(
        old=AUDIT_TRAIL_V1,
        new=AUDIT_TRAIL,
        renames=(
            ("sequence_number", "log_sequence_number"),
            ("recorded_at", "timestamp"),
            ("error", "error_message"),
        ),
        fill=(("hash_algorithm", "'sha256-v1'"),),
    ),
)


def _heads_insert(dialect: Dialect) -> str:
    """One head per run with rows: the trail as found at migration."""
    return (
        "INSERT INTO audit_trail_heads (audit_run_id, row_count, last_hash, hash_algorithm, "
        "completed, recorded_at) "
        "SELECT t.audit_run_id, t.log_sequence_number, t.entry_hash, t.hash_algorithm, "
        f"coalesce(w.workflow_status = 'completed', FALSE), {NOW[dialect]} "
        "FROM audit_trail t JOIN (SELECT audit_run_id, max(log_sequence_number) AS n "
        "FROM audit_trail GROUP BY audit_run_id) m "
        "ON t.audit_run_id = m.audit_run_id AND t.log_sequence_number = m.n "
        "LEFT JOIN workflow_state w ON w.audit_run_id = t.audit_run_id"
    )


def _not_null(column: Column) -> bool:
    return "NOT NULL" in column.modifiers


def _default(column: Column, dialect: Dialect) -> str | None:
    _, found, value = column.modifiers.partition("DEFAULT ")
    return value.format(now=NOW[dialect]).strip() if found else None


def _alter_plan(plan: TablePlan, dialect: Dialect) -> list[str]:
    """Postgres and Databricks: rename, add, fill, drop, then conform each column."""
    name = plan.new.name
    out = [f"ALTER TABLE {name} DROP CONSTRAINT IF EXISTS {c}" for c, _ in plan.old.checks]
    if dialect == "postgres":
        out.extend(f"DROP INDEX IF EXISTS {index.name}" for index in plan.old.indexes)
    current = plan.renamed(dialect)
    copied = {old for old, _new, _sql in plan.copy} if dialect == "databricks" else set()
    for old, new in plan.renames:
        if old not in copied:
            out.append(f"ALTER TABLE {name} RENAME COLUMN {old} TO {new}")
    added = [c for c in plan.new.columns if c.name not in current]
    if added and dialect == "databricks":
        columns = ", ".join(f"{c.name} {translate(c.pg_type, dialect)}" for c in added)
        out.append(f"ALTER TABLE {name} ADD COLUMNS ({columns})")
    else:
        out.extend(
            f"ALTER TABLE {name} ADD COLUMN {c.name} {translate(c.pg_type, dialect)}" for c in added
        )
    fills = plan.fills(dialect)
    if fills:
        out.append(f"UPDATE {name} SET " + ", ".join(f"{col} = {sql}" for col, sql in fills))
    dropped = [n for n in current if n not in plan.new.column_names]
    if dropped and dialect == "databricks":
        out.append(f"ALTER TABLE {name} DROP COLUMNS ({', '.join(dropped)})")
    else:
        out.extend(f"ALTER TABLE {name} DROP COLUMN {n}" for n in dropped)
    for column in plan.new.columns:
        out.extend(_conform(name, current.get(column.name), column, dialect))
    if dialect == "postgres":
        out.extend(
            f"ALTER TABLE {name} ADD CONSTRAINT {c} CHECK ({cond})" for c, cond in plan.new.checks
        )
    return out


def _conform(table: str, old: Column | None, new: Column, dialect: Dialect) -> list[str]:
    alter = f"ALTER TABLE {table} ALTER COLUMN {new.name}"
    out: list[str] = []
    new_type = translate(new.pg_type, dialect)
    if old is not None and translate(old.pg_type, dialect) != new_type:
        out.append(f"{alter} TYPE {new_type}")
    was_not_null = old is not None and _not_null(old)
    if _not_null(new) != was_not_null:
        out.append(f"{alter} {'SET' if _not_null(new) else 'DROP'} NOT NULL")
    old_default = None if old is None else _default(old, dialect)
    new_default = _default(new, dialect)
    if new_default != old_default:
        out.append(f"{alter} SET DEFAULT {new_default}" if new_default else f"{alter} DROP DEFAULT")
    return out


def _rebuild_plan(plan: TablePlan) -> list[str]:
    """DuckDB: a new table filled from the old one, which is then dropped."""
    name, old_name = plan.new.name, f"{plan.new.name}_v1"
    out = [f"DROP INDEX IF EXISTS {index.name}" for index in plan.old.indexes]
    out.append(f"ALTER TABLE {name} RENAME TO {old_name}")
    out.append(plan.new.create("duckdb"))
    current = plan.renamed("duckdb")
    aliases = ", ".join(f"{old} AS {new}" for old, new in plan.renames)
    fills = dict(plan.fill)
    select = ", ".join(
        f"{fills[c]} AS {c}" if c in fills else (c if c in current else f"NULL AS {c}")
        for c in plan.new.column_names
    )
    out.append(
        f"INSERT INTO {name} ({', '.join(plan.new.column_names)}) SELECT {select} "
        f"FROM (SELECT *, {aliases} FROM {old_name}) AS v1"
    )
    out.append(f"DROP TABLE {old_name}")
    return out


_DATABRICKS_MAPPING = (
    "'delta.columnMapping.mode' = 'name', "
    "'delta.minReaderVersion' = '2', 'delta.minWriterVersion' = '5'"
)


def migration_statements(dialect: str) -> list[str]:
    """Every statement that moves a version-1 database to version 2, in order.

    Run them once, on a database at version 1, before ``ddl(dialect)`` (which then creates
    the indexes and records version 2). `create_all_tables` and `ensure_schema` do both.
    """
    checked = check_dialect(dialect)
    out: list[str] = []
    for plan in PLANS:
        if checked == "duckdb":
            out.extend(_rebuild_plan(plan))
            continue
        if checked == "databricks":
            props = _DATABRICKS_MAPPING
            if plan.new.name == "audit_trail":
                props += ", 'delta.enableTypeWidening' = 'true'"
            out.append(f"ALTER TABLE {plan.new.name} SET TBLPROPERTIES ({props})")
        out.extend(_alter_plan(plan, checked))
        if checked == "databricks":
            out.append(f"ALTER TABLE {plan.new.name} CLUSTER BY ({', '.join(plan.new.clustering)})")
    out.extend(AUDIT_TRAIL_HEADS.statements(checked))
    out.append(_heads_insert(checked))
    if checked == "databricks":
        out.append("ALTER TABLE audit_trail SET TBLPROPERTIES ('delta.appendOnly' = 'true')")
    return out


_VERSION_TABLE_EXISTS = (
    "SELECT count(*) FROM information_schema.tables "
    "WHERE table_name = 'audit_schema_version' AND table_schema = current_schema()"
)


def _check_version(version: int | None) -> bool:
    """Whether a migration is due; refuses a database newer than this package."""
    if version is not None and version > SCHEMA_VERSION:
        raise ConfigError(
            f"the database is at schema version {version}, newer than this audit-core "
            f"({SCHEMA_VERSION}); upgrade audit-core"
        )
    return version == 1


def cursor_version(cursor: Any) -> int | None:
    """The schema version through a DB-API cursor (Postgres, DuckDB); None when absent."""
    cursor.execute(_VERSION_TABLE_EXISTS)
    row = cursor.fetchone()
    if not row or not row[0]:
        return None
    cursor.execute("SELECT max(version) FROM audit_schema_version")
    row = cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def migrate_cursor(cursor: Any, dialect: Dialect) -> int:
    """Migrate a version-1 database through a DB-API cursor, in one transaction.

    Returns the statements run (0 when nothing was due).
    """
    if dialect == "databricks" or not _check_version(cursor_version(cursor)):
        return 0
    statements = migration_statements(dialect)
    cursor.execute("BEGIN" if dialect == "postgres" else "BEGIN TRANSACTION")
    try:
        for statement in statements:
            cursor.execute(statement)
        cursor.execute(version_statements(dialect)[1])
        cursor.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            cursor.execute("ROLLBACK")
        raise
    return len(statements)


async def migrate_warehouse(warehouse: DatabricksClient, dialect: Dialect, *, apply: bool) -> int:
    """Migrate a version-1 warehouse database; returns the statements run."""
    if not _check_version(await schema_version(warehouse)):
        return 0
    if not apply:
        raise ConfigError(
            "the database is at schema version 1; review `audit-core init-db --dialect "
            f"{dialect} --migrate` and apply it, or call ensure_schema(..., migrate=True)"
        )
    statements = migration_statements(dialect)
    if dialect == "duckdb":  # one native call: one transaction on one connection
        script = ";\n".join(["BEGIN TRANSACTION", *statements, "COMMIT"])
        try:
            await warehouse.execute(script, native=True)
        except BaseException:
            with contextlib.suppress(Exception):
                await warehouse.execute("ROLLBACK", native=True)
            raise
    else:
        for statement in statements:
            await warehouse.execute(statement, native=True)
    return len(statements)


_VERSION_TABLE_FOUND = (
    "SELECT count(*) AS n FROM information_schema.tables "
    "WHERE table_name = :table AND table_schema = current_schema()"
)


async def schema_version(warehouse: Reader) -> int | None:
    """The highest schema version recorded in the warehouse; None before `ensure_schema`."""
    try:  # ask the catalog first: no failed query (and warning) on a new database
        found = await warehouse.query_arrow(_VERSION_TABLE_FOUND, {"table": "audit_schema_version"})
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
