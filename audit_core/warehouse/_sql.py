"""Databricks-dialect SQL: transpiling to DuckDB (cached, bounded) and parameter checks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from audit_core.errors import QueryError

TRANSPILE_CACHE_SIZE = 1024
_READ_ONLY = re.compile(r"^\s*(\(\s*)*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|VALUES)\b", re.I)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement ready for DuckDB: its text and the ``:name`` parameters it uses."""

    sql: str
    params: frozenset[str]


def is_read_only(sql: str) -> bool:
    """Whether re-running the statement after a transport failure is safe."""
    return _READ_ONLY.match(sql) is not None


@lru_cache(maxsize=TRANSPILE_CACHE_SIZE)
def to_duckdb(sql: str) -> Prepared:
    """Transpile one Databricks statement to DuckDB; ``:name`` markers become ``$name``."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, SqlglotError

    try:
        trees = sqlglot.parse(sql, read="databricks")
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first else ""
        raise QueryError(
            f"SQL does not parse{where}: {first.get('description', exc)}", sql=sql
        ) from None
    statements = [t for t in trees if t is not None]
    if len(statements) != 1:
        raise QueryError(f"expected one SQL statement, got {len(statements)}", sql=sql)
    tree = statements[0].transform(_databricks_semantics)
    names = []
    for node in tree.find_all(exp.Placeholder):
        if not node.name or node.name == "?":
            raise QueryError("use named parameters (:name), not '?'", sql=sql)
        names.append(node.name)
    try:
        text = tree.sql(dialect="duckdb")
    except SqlglotError as exc:
        raise QueryError(f"SQL cannot run locally: {exc}", sql=sql) from None
    return Prepared(text, frozenset(names))


def check_params(sql: str, wanted: frozenset[str], given: dict[str, object] | None) -> None:
    """Raise `QueryError` naming missing or unexpected parameters (values never shown)."""
    have = set(given or ())
    missing = sorted(wanted - have)
    extra = sorted(have - wanted)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing parameter(s) {', '.join(':' + m for m in missing)}")
        if extra:
            parts.append(f"unexpected parameter(s) {', '.join(':' + e for e in extra)}")
        raise QueryError("; ".join(parts), sql=sql)


def _databricks_semantics(node: Any) -> Any:
    """Keep Databricks semantics where sqlglot's DuckDB output would change the answer.

    - ``dayofweek``: Databricks counts 1 = Sunday .. 7 = Saturday, DuckDB 0 .. 6.
    - ``weekday``: Databricks 0 = Monday .. 6 = Sunday; DuckDB has ``isodow`` (1 .. 7).
    - ``date_add`` / ``date_sub`` return a DATE on Databricks, not a timestamp.
    - ``unix_timestamp(ts)`` without a format accepts a TIMESTAMP on Databricks; sqlglot
      would emit ``STRPTIME(ts, ...)``, which DuckDB rejects for timestamps.
    """
    from sqlglot import exp

    if isinstance(node, exp.DayOfWeek) and not node.meta.get("audit_fixed"):
        node.meta["audit_fixed"] = True
        return exp.paren(exp.Add(this=node, expression=exp.Literal.number(1)), copy=False)
    if (
        isinstance(node, exp.Anonymous)
        and node.name.lower() == "weekday"
        and len(node.expressions) == 1
    ):
        iso = exp.Anonymous(this="isodow", expressions=[exp.cast(node.expressions[0], "DATE")])
        return exp.paren(exp.Sub(this=iso, expression=exp.Literal.number(1)), copy=False)
    if isinstance(node, exp.TsOrDsAdd) and not node.meta.get("audit_fixed"):
        node.meta["audit_fixed"] = True
        return exp.cast(node, "DATE")
    if isinstance(node, exp.StrToUnix) and node.args.get("format") == _default_unix_format():
        value = node.this if node.this is not None else exp.CurrentTimestamp()
        return exp.TimeToUnix(this=exp.cast(value, exp.DataType.build("TIMESTAMPTZ")))
    return node


@lru_cache(maxsize=1)
def _default_unix_format() -> Any:
    import sqlglot

    return sqlglot.parse_one("unix_timestamp(x)", read="databricks").args.get("format")


@dataclass(frozen=True, slots=True)
class BulkInsert:
    """``INSERT INTO t (cols) VALUES (:a, :b, ...)`` rewritten to read rows from a view."""

    sql: str  # DuckDB text with ``{view}`` where the rows' relation goes
    params: tuple[str, ...]


@lru_cache(maxsize=256)
def bulk_insert_plan(sql: str) -> BulkInsert | None:
    """A set-based plan for a one-row, all-parameter INSERT; None for anything else."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(sql, read="databricks")
    except SqlglotError:
        return None
    if not isinstance(tree, exp.Insert) or not isinstance(tree.expression, exp.Values):
        return None
    rows = tree.expression.expressions
    if len(rows) != 1 or not isinstance(rows[0], exp.Tuple):
        return None
    values = rows[0].expressions
    if not values or not all(
        isinstance(v, exp.Placeholder) and v.name not in ("", "?") for v in values
    ):
        return None
    target = tree.this
    names = tuple(v.name for v in values)
    select = ", ".join(exp.to_identifier(n, quoted=True).sql("duckdb") for n in names)
    return BulkInsert(f"INSERT INTO {target.sql('duckdb')} SELECT {select} FROM {{view}}", names)
