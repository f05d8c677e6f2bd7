"""Table specs as data, rendered to DDL for Postgres, DuckDB and Databricks.

A `Table` holds columns with their Postgres type; the other dialects' types follow from
it (``_translate``), so one spec cannot drift between dialects. Rendering rules (from
each engine's SQL reference):

- **postgres**: named CHECK and PRIMARY KEY constraints inline, ``CREATE INDEX IF NOT
  EXISTS``; append-only tables get a trigger that rejects UPDATE, DELETE and TRUNCATE.
- **duckdb**: the same constraints (DuckDB enforces CHECK and PRIMARY KEY), JSON as
  VARCHAR, ``TIMESTAMPTZ``; no triggers exist, so append-only is not enforced there.
- **databricks**: Delta tables with ``STRING`` / ``TIMESTAMP`` / ``DECIMAL`` / ``DOUBLE``;
  no ``CREATE INDEX`` (liquid clustering, ``CLUSTER BY``, at most four columns); CHECK
  constraints added after creation (``DROP CONSTRAINT IF EXISTS`` first, so reruns are
  idempotent); defaults need ``delta.feature.allowColumnDefaults``; append-only tables
  get ``delta.appendOnly = true``; primary keys are informational.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Dialect = Literal["postgres", "databricks", "duckdb"]
DIALECTS: tuple[Dialect, ...] = ("postgres", "databricks", "duckdb")
NOW = {"postgres": "now()", "duckdb": "current_timestamp", "databricks": "current_timestamp()"}
REJECT_FUNCTION = "audit_reject_change"

_TEXT = {"duckdb": "VARCHAR", "databricks": "STRING"}


def translate(pg_type: str, dialect: Dialect) -> str:
    """The ``dialect`` type for a Postgres column type used in these specs."""
    if dialect == "postgres":
        return pg_type
    base = pg_type.split("(")[0]
    if base in ("VARCHAR", "CHAR", "TEXT"):
        return _TEXT[dialect]
    if base == "FLOAT":  # Postgres FLOAT is double precision; DuckDB/Spark FLOAT is 4 bytes
        return "DOUBLE"
    if base == "TIMESTAMPTZ":
        return "TIMESTAMPTZ" if dialect == "duckdb" else "TIMESTAMP"
    if base == "NUMERIC":
        return "DECIMAL" + pg_type[len(base) :]
    if base == "INTEGER":
        return "INTEGER" if dialect == "duckdb" else "INT"
    return pg_type


@dataclass(frozen=True, slots=True)
class Column:
    """One column: name, Postgres type, and modifiers (``{now}`` is the dialect's clock)."""

    name: str
    pg_type: str
    modifiers: str = ""

    def render(self, dialect: Dialect) -> str:
        extra = self.modifiers.format(now=NOW[dialect])
        return f"{self.name} {translate(self.pg_type, dialect)}{' ' + extra if extra else ''}"


@dataclass(frozen=True, slots=True)
class Index:
    """A Postgres/DuckDB index; ``columns`` as written in the index (``a, b DESC``)."""

    name: str
    columns: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    """A table spec; `statements` renders it for one dialect."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    checks: tuple[tuple[str, str], ...] = ()
    indexes: tuple[Index, ...] = ()
    clustering: tuple[str, ...] = ()
    append_only: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def create(self, dialect: Dialect) -> str:
        lines = [f"    {column.render(dialect)}" for column in self.columns]
        if dialect != "databricks":
            lines.extend(f"    CONSTRAINT {name} CHECK ({cond})" for name, cond in self.checks)
        lines.append(f"    CONSTRAINT {self.name}_pk PRIMARY KEY ({', '.join(self.primary_key)})")
        text = f"CREATE TABLE IF NOT EXISTS {self.name} (\n" + ",\n".join(lines) + "\n)"
        if dialect == "databricks":
            text += "\nUSING DELTA"
            if self.clustering:
                text += f"\nCLUSTER BY ({', '.join(self.clustering)})"
            text += f"\nTBLPROPERTIES ({', '.join(self.properties())})"
        return text

    def properties(self) -> list[str]:
        """Databricks table properties."""
        props = ["'delta.feature.allowColumnDefaults' = 'supported'"]
        if self.append_only:
            props.append("'delta.appendOnly' = 'true'")
        return props

    def statements(self, dialect: Dialect) -> list[str]:
        """Every idempotent statement that creates the table in ``dialect``, in order."""
        out = [self.create(dialect)]
        if dialect == "databricks":
            out.extend(self.databricks_checks())
            return out
        out.extend(
            f"CREATE INDEX IF NOT EXISTS {index.name} ON {self.name} ({index.columns})"
            for index in self.indexes
        )
        if dialect == "postgres" and self.append_only:
            out.extend(append_only_triggers(self.name))
        return out

    def databricks_checks(self) -> list[str]:
        out: list[str] = []
        for name, condition in self.checks:
            out.append(f"ALTER TABLE {self.name} DROP CONSTRAINT IF EXISTS {name}")
            out.append(f"ALTER TABLE {self.name} ADD CONSTRAINT {name} CHECK ({condition})")
        return out


def reject_function() -> str:
    """The Postgres trigger function that refuses changes to an append-only table."""
    return (
        f"CREATE OR REPLACE FUNCTION {REJECT_FUNCTION}() RETURNS trigger\n"
        "LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "    RAISE EXCEPTION '% on % refused: the table is append-only', TG_OP, TG_TABLE_NAME\n"
        "        USING ERRCODE = 'insufficient_privilege';\n"
        "END\n"
        "$$"
    )


def append_only_triggers(table: str) -> list[str]:
    """Triggers (Postgres 14+) rejecting UPDATE and DELETE per row, TRUNCATE per statement."""
    return [
        reject_function(),
        f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {REJECT_FUNCTION}()",
        f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {REJECT_FUNCTION}()",
    ]
