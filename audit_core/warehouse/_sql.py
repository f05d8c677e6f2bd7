"""Databricks-dialect SQL: transpiling to DuckDB (cached, bounded) and parameter checks.

sqlglot turns the Databricks syntax tree into DuckDB text; on the way, the tree is
rewritten so that DuckDB answers as Apache Spark does (ANSI mode, session time zone UTC):
the same values *and* the same types. Each rewrite works from the Spark type of its
arguments, inferred bottom-up from literals, casts, the table columns (``schema``) and
the parameters' Python values. Where the Spark type cannot be known, the rewrite that
needs it is skipped; where DuckDB cannot answer as Spark does, the statement is refused
with `UnsupportedQueryError` naming the construct, never answered differently.

Proved against Spark by the differential suite in ``tests/parity``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, NoReturn

from audit_core._sqlcache import lookup
from audit_core.errors import QueryError, UnsupportedQueryError

TRANSPILE_CACHE_SIZE = 1024
_SHOW_TABLES = re.compile(
    r"^\s*SHOW\s+TABLES(?:\s+(?:IN|FROM)\s+`?(\w+)`?)?(?:\s+(?:LIKE\s+)?'([^']*)')?\s*;?\s*$",
    re.I,
)

# A table's columns with their Spark types: ((table, ((column, type), ...)), ...).
Schema = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
# A parameter's Spark type and, for integers, its digits (Spark types literals tightly).
ParamTypes = tuple[tuple[str, str, int], ...]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement ready for DuckDB: its text, the ``:name`` parameters it uses, and
    whether DuckDB answers it with the count of rows it changed (an INSERT, UPDATE,
    DELETE or MERGE without RETURNING)."""

    sql: str
    params: frozenset[str]
    counts: bool = False


def prepare(sql: str, conn: Any = None, params: Mapping[str, Any] | None = None) -> Prepared:
    """`to_duckdb` with the column types of the tables the statement reads (looked up on
    ``conn``, a DuckDB connection) and the parameters' types.

    This is what lets a local answer carry Spark's types: ``sum(amount)`` over a
    DECIMAL(18,2) column is DECIMAL(28,2) and ``avg`` of it an exact DECIMAL(22,6).
    """
    tables = tables_in(sql)
    schema = schema_of(conn, tables) if conn is not None and tables else None
    return to_duckdb(sql, schema, param_types(params))


@lru_cache(maxsize=TRANSPILE_CACHE_SIZE)
def tables_in(sql: str) -> frozenset[str]:
    """Lower-cased table names (``gold.emails``, ``workflow_state``) the statement names."""
    return lookup("tables", (sql,), lambda: _tables_in(sql), sorted, frozenset)


def _tables_in(sql: str) -> frozenset[str]:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(sql, read=_dialect())
    except SqlglotError:
        return frozenset()
    return frozenset(
        ".".join(p for p in (t.db, t.name) if p).lower() for t in tree.find_all(exp.Table)
    )


@lru_cache(maxsize=TRANSPILE_CACHE_SIZE)
def output_columns(sql: str) -> tuple[str, ...]:
    """The names of the columns a query returns, as written (``SELECT a, b AS c``: a, c);
    empty when it does not parse or is not a query."""
    return lookup("columns", (sql,), lambda: _output_columns(sql), list, tuple)


def _output_columns(sql: str) -> tuple[str, ...]:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(sql, read=_dialect())
    except SqlglotError:
        return ()
    if not isinstance(tree, exp.Query):
        return ()
    return tuple(tree.named_selects)


@lru_cache(maxsize=TRANSPILE_CACHE_SIZE)
def foreign_parameters(sql: str) -> tuple[str, ...]:
    """Parameters written in another style than ``:name`` (``@x``, ``${x}``), as written."""
    return lookup("foreign", (sql,), lambda: _foreign_parameters(sql), list, tuple)


def _foreign_parameters(sql: str) -> tuple[str, ...]:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(sql, read="databricks")
    except SqlglotError:
        return ()
    return tuple(sorted({p.sql() for p in tree.find_all(exp.Parameter)}))


@lru_cache(maxsize=TRANSPILE_CACHE_SIZE)
def to_duckdb(sql: str, schema: Schema | None = None, params: ParamTypes = ()) -> Prepared:
    """Transpile one Databricks statement to DuckDB; ``:name`` markers become ``$name``."""
    return lookup(
        "duckdb",
        (sql, schema, params),
        lambda: _to_duckdb(sql, schema, params),
        lambda p: [p.sql, sorted(p.params), p.counts],
        lambda v: Prepared(str(v[0]), frozenset(str(n) for n in v[1]), v[2] is True),
    )


def _to_duckdb(sql: str, schema: Schema | None, params: ParamTypes) -> Prepared:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel, ParseError, SqlglotError, UnsupportedError

    show = _SHOW_TABLES.match(sql)
    if show is not None:
        return Prepared(_show_tables(show.group(1), show.group(2)), frozenset())
    try:
        trees = sqlglot.parse(sql, read=_dialect())
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first else ""
        raise QueryError(
            f"SQL does not parse{where}: {first.get('description', exc)}", sql=sql
        ) from None
    except SqlglotError as exc:  # a token error: an unterminated string, say
        raise QueryError(f"SQL does not parse: {exc}", sql=sql) from None
    statements = [t for t in trees if t is not None]
    if len(statements) != 1:
        raise QueryError(f"expected one SQL statement, got {len(statements)}", sql=sql)
    names = []
    for node in statements[0].find_all(exp.Placeholder):
        if not node.name or node.name == "?":
            raise QueryError("use named parameters (:name), not '?'", sql=sql)
        names.append(node.name)
    try:
        tree = _Rewriter(schema, params).rewrite(statements[0])
        text = tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedQueryError as exc:
        raise _unsupported(exc.construct, sql) from None
    except UnsupportedError as exc:  # sqlglot knows DuckDB has no equivalent
        raise _unsupported(str(exc).split("\n", 1)[0].rstrip("."), sql) from None
    except SqlglotError as exc:
        raise QueryError(f"SQL cannot run locally: {exc}", sql=sql) from None
    statement = statements[0]
    counts = isinstance(statement, (exp.Insert, exp.Update, exp.Delete, exp.Merge)) and (
        statement.args.get("returning") is None
    )
    return Prepared(text, frozenset(names), counts)


def check_params(sql: str, wanted: frozenset[str], given: Mapping[str, object] | None) -> None:
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


# schema and parameter types ---------------------------------------------------------


def schema_of(conn: Any, tables: frozenset[str] | None = None) -> Schema:
    """The Spark types of the columns of ``tables`` (default: all) in DuckDB's catalog."""
    names = sorted({t.rsplit(".", 1)[-1] for t in tables}) if tables is not None else None
    rows = conn.execute(
        "SELECT CASE WHEN schema_name = 'main' THEN table_name "
        "ELSE schema_name || '.' || table_name END, column_name, data_type "
        "FROM duckdb_columns() WHERE database_name = current_database() "
        + ("" if names is None else "AND list_contains($names, table_name) ")
        + "ORDER BY 1, column_index",
        None if names is None else {"names": names},
    ).fetchall()
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, duck in rows:
        columns.setdefault(str(table).lower(), []).append(
            (str(column).lower(), _spark_of_duckdb(str(duck)))
        )
    return tuple((t, tuple(cols)) for t, cols in columns.items())


@lru_cache(maxsize=256)
def _spark_of_duckdb(duck: str) -> str:
    return lookup("spark_type", (duck,), lambda: _compute_spark_type(duck), str, str)


def _compute_spark_type(duck: str) -> str:
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        return _simple(exp.DataType.build(duck, dialect="duckdb"))
    except SqlglotError:
        return "?"


def param_types(params: Mapping[str, Any] | None) -> ParamTypes:
    """Each parameter's Spark literal type, from its Python value (as Spark binds it)."""
    if not params:
        return ()
    return tuple(sorted((name, *_literal_type(value)) for name, value in params.items()))


def _literal_type(value: Any) -> tuple[str, int]:
    if value is None:
        return "void", 0
    if isinstance(value, bool):
        return "boolean", 0
    if isinstance(value, int):
        digits = len(str(abs(value)))
        return ("int" if -(2**31) <= value < 2**31 else "bigint"), digits
    if isinstance(value, float):
        return "double", 0
    if isinstance(value, Decimal):
        _, figures, exponent = value.as_tuple()
        scale = max(0, -int(exponent))
        precision = len(figures) + max(0, int(exponent))
        return f"decimal({max(precision, scale, 1)},{scale})", 0
    if isinstance(value, str):
        return "string", 0
    if isinstance(value, datetime):
        return ("timestamp" if value.tzinfo else "timestamp_ntz"), 0
    if isinstance(value, date):
        return "date", 0
    return "?", 0


def _show_tables(namespace: str | None, pattern: str | None) -> str:
    """``SHOW TABLES [IN ns] [LIKE 'p']`` as Spark answers it, from DuckDB's catalog."""
    duck_schema = (namespace or "main").replace("'", "''")
    shown = (namespace or "default").replace("'", "''")
    where = f"table_schema = '{duck_schema}'"
    if pattern:
        like = pattern.replace("'", "''").replace("*", "%").replace("|", "' OR table_name LIKE '")
        where += f" AND (table_name LIKE '{like}')"
    return (
        f'SELECT \'{shown}\' AS namespace, table_name AS "tableName", false AS "isTemporary" '
        f"FROM information_schema.tables WHERE {where} ORDER BY table_name"
    )


# Spark types -------------------------------------------------------------------------

_INTEGRAL = {"tinyint": 3, "smallint": 5, "int": 10, "bigint": 20}
_FRACTIONAL = ("double", "float")
_DEC = re.compile(r"^decimal\((\d+),(\d+)\)$")
_MAX = 38


def _simple(datatype: Any) -> str:
    """A sqlglot DataType as Spark's ``simpleString`` (``decimal(18,2)``, ``array<int>``)."""
    from sqlglot import exp

    kind = datatype.this
    names = {
        exp.DataType.Type.INT: "int",
        exp.DataType.Type.BIGINT: "bigint",
        exp.DataType.Type.SMALLINT: "smallint",
        exp.DataType.Type.TINYINT: "tinyint",
        exp.DataType.Type.DOUBLE: "double",
        exp.DataType.Type.FLOAT: "float",
        exp.DataType.Type.TEXT: "string",
        exp.DataType.Type.VARCHAR: "string",
        exp.DataType.Type.BOOLEAN: "boolean",
        exp.DataType.Type.DATE: "date",
        exp.DataType.Type.TIMESTAMPTZ: "timestamp",
        exp.DataType.Type.TIMESTAMPLTZ: "timestamp",
        exp.DataType.Type.TIMESTAMP: "timestamp_ntz",
        exp.DataType.Type.TIMESTAMPNTZ: "timestamp_ntz",
        exp.DataType.Type.BINARY: "binary",
        exp.DataType.Type.VARBINARY: "binary",
        exp.DataType.Type.NULL: "void",
    }
    if kind in names:
        return names[kind]
    if kind == exp.DataType.Type.DECIMAL:
        params = [int(p.this.this) for p in datatype.expressions]
        precision, scale = (params + [10, 0][len(params) :])[:2] if params else (10, 0)
        return f"decimal({precision},{scale})"
    if kind == exp.DataType.Type.ARRAY and datatype.expressions:
        return f"array<{_simple(datatype.expressions[0])}>"
    if kind == exp.DataType.Type.MAP and len(datatype.expressions) == 2:
        key, value = datatype.expressions
        return f"map<{_simple(key)},{_simple(value)}>"
    if kind == exp.DataType.Type.STRUCT:
        fields = ",".join(f"{f.name}:{_simple(f.args['kind'])}" for f in datatype.expressions)
        return f"struct<{fields}>"
    return "?"


def _dec(spark: str | None) -> tuple[int, int] | None:
    """(precision, scale) of a decimal or integral type, as Spark widens it."""
    if spark is None:
        return None
    if spark in _INTEGRAL:
        return _INTEGRAL[spark], 0
    found = _DEC.match(spark)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _is_decimal(spark: str | None) -> bool:
    return spark is not None and spark.startswith("decimal(")


def _is_numeric(spark: str | None) -> bool:
    return spark in _INTEGRAL or spark in _FRACTIONAL or _is_decimal(spark)


def _bounded(precision: int, scale: int) -> str:
    return f"decimal({min(precision, _MAX)},{min(scale, _MAX)})"


def _adjusted(precision: int, scale: int) -> str:
    """Spark's result type when a decimal operation needs more than 38 digits."""
    if precision <= _MAX:
        return f"decimal({precision},{scale})"
    int_digits = precision - scale
    return f"decimal({_MAX},{max(_MAX - int_digits, min(scale, 6))})"


def _wider(a: str | None, b: str | None) -> str | None:
    """The common type Spark coerces two branches (CASE, COALESCE, UNION) to."""
    if a in (None, "void"):
        return b
    if b in (None, "void") or a == b:
        return a
    if a in _FRACTIONAL or b in _FRACTIONAL:
        if not (_is_numeric(a) and _is_numeric(b)):
            return None
        return "float" if a == b == "float" else "double"
    if a in _INTEGRAL and b in _INTEGRAL:
        return max(a, b, key=lambda t: _INTEGRAL[t])
    da, db = _dec(a), _dec(b)
    if da and db:
        scale = max(da[1], db[1])
        return _bounded(max(da[0] - da[1], db[0] - db[1]) + scale, scale)
    return None


def _duck(spark: str) -> Any:
    from sqlglot import exp

    return exp.DataType.build(spark, dialect="databricks")


# the rewriter ------------------------------------------------------------------------


def _refuse(construct: str) -> NoReturn:
    """Stop the rewrite: DuckDB cannot answer ``construct`` as Spark does."""
    raise UnsupportedQueryError(construct, construct=construct)


def _unsupported(construct: str, sql: str) -> UnsupportedQueryError:
    return UnsupportedQueryError(
        f"{construct} is not supported locally (DuckDB would not answer as Databricks "
        "does); run it on Databricks or with DatabricksClient.spark()",
        sql=sql,
        construct=construct,
    )


@lru_cache(maxsize=1)
def _dialect() -> Any:
    """Databricks, parsed so that what sqlglot would conflate stays distinguishable."""
    from sqlglot import exp
    from sqlglot.dialects.databricks import Databricks

    functions = Databricks.Parser.FUNCTIONS
    datediff = functions["DATEDIFF"]

    def _datediff(args: list[Any]) -> Any:
        node = datediff(args)
        node.meta["days_between"] = len(args) == 2  # datediff(end, start): whole dates
        return node

    def _anonymous(name: str) -> Callable[[list[Any]], Any]:
        return lambda args: exp.Anonymous(this=name, expressions=args)

    def _percentile_builder(original: Any) -> Callable[[list[Any]], Any]:
        def build(args: list[Any]) -> Any:
            if len(args) > 2:
                return exp.Anonymous(this="percentile_with_frequency", expressions=args)
            return original(args)

        return build

    parser = type(
        "Parser",
        (Databricks.Parser,),
        {
            "FUNCTIONS": {
                **functions,
                "DATEDIFF": _datediff,
                "DATE_DIFF": _datediff,
                "FORMAT_STRING": _anonymous("format_string"),
                "DATE_FORMAT": _anonymous("date_format"),
                "TRUNC": _anonymous("trunc"),
                "DATE_TRUNC": _anonymous("date_trunc"),
                "PERCENTILE": _percentile_builder(exp.Quantile.from_arg_list),
                "PRINTF": _anonymous("format_string"),
                # Same answer as sum / avg; an overflow is an error locally, not NULL.
                "TRY_SUM": lambda args: exp.Sum(this=args[0]),
                "TRY_AVG": lambda args: exp.Avg(this=args[0]),
            },
        },
    )
    return type("AuditDatabricks", (Databricks,), {"Parser": parser})


@lru_cache(maxsize=256)
def _template(text: str) -> Any:
    import sqlglot

    return sqlglot.parse_one(text, read="duckdb")


def _fill(text: str, **parts: Any) -> Any:
    """A DuckDB template with ``_a``, ``_b``... columns replaced by the given nodes."""
    from sqlglot import exp

    tree = _template(text).copy()
    for column in list(tree.find_all(exp.Column)):
        if column.name in parts and not column.table:
            column.replace(parts[column.name].copy())
    return tree


def _error(message: str) -> Any:
    from sqlglot import exp

    return exp.Anonymous(this="error", expressions=[exp.Literal.string(message)])


def _cast(node: Any, spark: str) -> Any:
    from sqlglot import exp

    return exp.Cast(this=node, to=_duck(spark))


def _fn(name: str, *args: Any) -> Any:
    from sqlglot import exp

    return exp.Anonymous(this=name, expressions=list(args))


def _lit(value: int | str) -> Any:
    from sqlglot import exp

    return exp.Literal.number(value) if isinstance(value, int) else exp.Literal.string(value)


class _Rewriter:
    """Types every node the Spark way, then rewrites the ones DuckDB would answer differently."""

    def __init__(self, schema: Schema | None, params: ParamTypes) -> None:
        self.tables = {t: dict(cols) for t, cols in (schema or ())}
        self.params = {name: (kind, digits) for name, kind, digits in params}
        self.derived: dict[str, set[str | None]] = {}
        self.in_scope: set[str] = set()
        self.aliases: dict[str, str] = {}
        self.parent: Any = None
        self.scopes: dict[int, Any] = {}

    def rewrite(self, tree: Any) -> Any:
        from sqlglot import exp

        for table in tree.find_all(exp.Table):
            full = ".".join(p for p in (table.db, table.name) if p).lower()
            if full in self.tables:
                self.in_scope.add(full)
                if table.alias:
                    self.aliases[table.alias.lower()] = full
                self.aliases[table.name.lower()] = full
        self._index_scopes(tree)
        nodes = list(tree.walk(bfs=False))[::-1]
        for _ in range(2):  # twice: an alias may be typed after its first use
            for node in nodes:
                node.meta["spark"] = _infer(node, self)
        for node in nodes:
            rule = _rule_for(node)
            if rule is None:
                continue
            spark = node.meta.get("spark")
            hole = exp.Null()
            parent = self.parent = node.parent
            if parent is not None:
                _swap(node, hole)
            new = rule(node, self)
            if new is None:
                new = node
            new.meta.setdefault("spark", spark)
            if parent is not None:
                _swap(hole, new)
            else:
                tree = new
        for select in list(tree.find_all(exp.Select)):
            _expand_generators(select)
            _outer_laterals(select)
        return tree

    def _index_scopes(self, tree: Any) -> None:
        """Which SELECT scope each column belongs to (sqlglot's scope analysis)."""
        from sqlglot.errors import SqlglotError
        from sqlglot.optimizer.scope import traverse_scope

        try:
            for scope in traverse_scope(tree):
                for column in scope.columns:
                    self.scopes[id(column)] = scope
        except (SqlglotError, KeyError, AttributeError, TypeError, ValueError):
            self.scopes.clear()  # the name-based lookup below still applies

    def column_type(self, column: Any) -> str | None:
        scope = self.scopes.get(id(column))
        if scope is not None:
            found = self._scoped(scope, column.table, column.name.lower())
            if found is not _UNRESOLVED:
                return None if found is None else str(found)
        return self._by_name(column)

    def _scoped(self, scope: Any, table: str, name: str, depth: int = 0) -> Any:
        """The column's type through its scope's sources; _UNRESOLVED when not found."""
        if depth > 8:
            return _UNRESOLVED
        if table:
            while scope is not None and table not in scope.sources:
                scope = scope.parent
            if scope is None:
                return _UNRESOLVED
            return self._source_column(scope.sources[table], name, depth)
        found = [
            kind
            for source in scope.sources.values()
            if (kind := self._source_column(source, name, depth)) is not _UNRESOLVED
        ]
        if len(found) == 1:
            return found[0]
        return None if found else _UNRESOLVED

    def _source_column(self, source: Any, name: str, depth: int) -> Any:
        from sqlglot import exp

        if isinstance(source, exp.Table):
            full = ".".join(p for p in (source.db, source.name) if p).lower()
            return self.tables.get(full, {}).get(name, _UNRESOLVED)
        select = getattr(source, "expression", None)
        if isinstance(select, exp.SetOperation):
            return _set_operation_column(select, name)
        if not isinstance(select, exp.Select):
            return _UNRESOLVED
        for projection in select.expressions:
            if isinstance(projection, exp.Star):
                found = self._scoped(source, "", name, depth + 1)
                if found is not _UNRESOLVED:
                    return found
            elif projection.alias_or_name.lower() == name:
                return _t(projection)
        return _UNRESOLVED

    def _by_name(self, column: Any) -> str | None:
        name = column.name.lower()
        if column.table:
            table = self.aliases.get(column.table.lower())
            if table is not None:
                return self.tables[table].get(name)
        found: set[str | None] = {
            self.tables[t][name] for t in self.in_scope if name in self.tables[t]
        }
        found |= self.derived.get(name, set())
        return found.pop() if len(found) == 1 else None

    def param_type(self, name: str) -> str | None:
        kind = self.params.get(name)
        return kind[0] if kind else None

    def literal_digits(self, node: Any) -> int | None:
        """An integer literal's (or parameter's) own digits: Spark types it that tightly."""
        from sqlglot import exp

        if isinstance(node, exp.Neg):
            node = node.this
        if isinstance(node, exp.Literal) and not node.is_string and node.is_int:
            return len(node.this.lstrip("-").lstrip("0") or "0")
        if isinstance(node, exp.Placeholder) and node.name in self.params:
            kind, digits = self.params[node.name]
            return digits if kind in _INTEGRAL else None
        return None


_UNRESOLVED = object()


def _swap(old: Any, new: Any) -> None:
    """``old.replace(new)`` in constant time: sqlglot's own re-parents every item of a
    list argument on each replace, so rewriting each item of an ``IN`` list of n values
    took n^2 steps (a 10,000-item rule took 8 s to check)."""
    parent, key, index = old.parent, old.arg_key, old.index
    items = parent.args.get(key) if parent is not None else None
    if isinstance(items, list) and index is not None and index < len(items) and items[index] is old:
        items[index] = new
        new.parent, new.arg_key, new.index = parent, key, index
        old.parent = old.arg_key = old.index = None
        return
    old.replace(new)


def _branches(node: Any) -> list[Any]:
    from sqlglot import exp

    if isinstance(node, exp.SetOperation):
        return _branches(node.this) + _branches(node.expression)
    if isinstance(node, exp.Subquery):
        return _branches(node.this)
    return [node] if isinstance(node, exp.Select) else []


def _set_operation_column(union: Any, name: str) -> Any:
    """A UNION's column: named by its first SELECT, typed as Spark widens all branches."""
    from sqlglot import exp

    selects = _branches(union)
    first = selects[0] if selects else None
    if first is None or any(isinstance(p, exp.Star) for s in selects for p in s.expressions):
        return _UNRESOLVED
    names = [p.alias_or_name.lower() for p in first.expressions]
    if name not in names:
        return _UNRESOLVED
    index = names.index(name)
    spark: str | None = "void"
    for select in selects:
        if index >= len(select.expressions):
            return None
        spark = _wider(spark, _t(select.expressions[index]))
    return spark


def _t(node: Any) -> str | None:
    return None if node is None else node.meta.get("spark")


# type inference ----------------------------------------------------------------------


def _infer(node: Any, ctx: _Rewriter) -> str | None:
    from sqlglot import exp

    inferrers, fixed_types, anon_types = _build_tables()
    infer = inferrers.get(type(node))
    if infer is not None:
        spark: str | None = infer(node, ctx)
        return spark
    if isinstance(node, exp.Anonymous):
        return anon_types.get(node.name.lower())
    for klass, spark in fixed_types.items():
        if isinstance(node, klass):
            return spark
    if isinstance(node, (exp.Predicate, exp.Connector, exp.Not)):
        return "boolean"
    return None


def _infer_literal(node: Any, ctx: _Rewriter) -> str | None:
    if node.is_string:
        return "string"
    text = node.this.lstrip("-")
    if "e" in text.lower():
        return "double"
    if "." in text:
        whole, frac = text.split(".", 1)
        scale = len(frac)
        return f"decimal({max(len(whole.lstrip('0')) + scale, scale, 1)},{scale})"
    value = int(text)
    if value < 2**31:
        return "int"
    return "bigint" if value < 2**63 else f"decimal({len(text)},0)"


def _infer_alias(node: Any, ctx: _Rewriter) -> str | None:
    spark = _t(node.this)
    if node.alias:
        ctx.derived.setdefault(node.alias.lower(), set()).add(spark)
    return spark


def _infer_values(node: Any, ctx: _Rewriter) -> str | None:
    alias = node.args.get("alias")
    if alias is None or not alias.columns:
        return None
    for i, column in enumerate(alias.columns):
        spark: str | None = "void"
        for row in node.expressions:
            items = row.expressions if hasattr(row, "expressions") else [row]
            spark = _wider(spark, _t(items[i]) if i < len(items) else None)
        ctx.derived.setdefault(column.name.lower(), set()).add(spark)
    return None


def _infer_arith(node: Any, ctx: _Rewriter) -> str | None:
    from sqlglot import exp

    a, b = _coerced(node, ctx)
    if a is None or b is None:
        return None
    if isinstance(node, exp.Div):
        if a in _FRACTIONAL or b in _FRACTIONAL or (a in _INTEGRAL and b in _INTEGRAL):
            return "double" if _is_numeric(a) and _is_numeric(b) else None
        da, db = _dec(a), _dec(b)
        if da is None or db is None:
            return None
        scale = max(6, da[1] + db[0] + 1)
        return _adjusted(da[0] - da[1] + db[1] + scale, scale)
    if isinstance(node, exp.IntDiv):
        return "bigint" if _is_numeric(a) and _is_numeric(b) else None
    if a in ("date", "timestamp", "timestamp_ntz") or b in ("date", "timestamp"):
        return _date_arith(node, a, b)
    if a in _FRACTIONAL or b in _FRACTIONAL:
        if not (_is_numeric(a) and _is_numeric(b)):
            return None
        return "float" if a == b == "float" else "double"
    if a in _INTEGRAL and b in _INTEGRAL:
        return _wider(a, b)
    da, db = _dec(a), _dec(b)
    if da is None or db is None:
        return None
    (p1, s1), (p2, s2) = da, db
    if isinstance(node, exp.Mul):
        return _adjusted(p1 + p2 + 1, s1 + s2)
    scale = max(s1, s2)
    if isinstance(node, exp.Mod):
        return _adjusted(min(p1 - s1, p2 - s2) + scale, scale)
    return _adjusted(max(p1 - s1, p2 - s2) + scale + 1, scale)


def _coerced(node: Any, ctx: _Rewriter) -> tuple[str | None, str | None]:
    """Operand types as Spark coerces them: a string next to a number becomes BIGINT (or
    DOUBLE), and an integer literal next to a decimal is DECIMAL(its digits, 0)."""
    a, b = _t(node.this), _t(node.expression)
    if a == "string" and _is_numeric(b):
        a = "bigint" if b in _INTEGRAL else "double"
    if b == "string" and _is_numeric(a):
        b = "bigint" if a in _INTEGRAL else "double"
    if _is_decimal(a) and b in _INTEGRAL:
        digits = ctx.literal_digits(node.expression)
        b = f"decimal({digits},0)" if digits else b
    if _is_decimal(b) and a in _INTEGRAL:
        digits = ctx.literal_digits(node.this)
        a = f"decimal({digits},0)" if digits else a
    return a, b


def _date_arith(node: Any, a: str | None, b: str | None) -> str | None:
    from sqlglot import exp

    interval = node.expression if isinstance(node.expression, exp.Interval) else None
    if a == "date" and interval is not None:
        unit = interval.text("unit").upper().rstrip("S")
        return "date" if unit in ("DAY", "WEEK", "MONTH", "YEAR") else "timestamp"
    if a == "date" and b in _INTEGRAL:
        return "date"
    if a in ("timestamp", "timestamp_ntz") and interval is not None:
        return a
    return None


def _infer_cast(node: Any, ctx: _Rewriter) -> str | None:
    return _simple(node.to)


def _infer_column(node: Any, ctx: _Rewriter) -> str | None:
    return ctx.column_type(node)


def _infer_sum(node: Any, ctx: _Rewriter) -> str | None:
    from sqlglot import exp

    spark = _t(node.this.expressions[0] if isinstance(node.this, exp.Distinct) else node.this)
    if spark in _INTEGRAL:
        return "bigint"
    if spark in _FRACTIONAL or spark == "string":  # Spark sums a string column as DOUBLE
        return "double"
    found = _dec(spark)
    return _bounded(found[0] + 10, found[1]) if found else None


def _infer_avg(node: Any, ctx: _Rewriter) -> str | None:
    spark = _t(node.this)
    if spark in _INTEGRAL or spark in _FRACTIONAL or spark == "string":
        return "double"
    found = _dec(spark)
    return _bounded(found[0] + 4, found[1] + 4) if found else None


def _infer_same(node: Any, ctx: _Rewriter) -> str | None:
    return _t(node.this)


def _infer_branches(node: Any, ctx: _Rewriter) -> str | None:
    from sqlglot import exp

    if isinstance(node, exp.Case):
        branches = [i.args.get("true") for i in node.args.get("ifs", [])]
        branches.append(node.args.get("default"))
    elif isinstance(node, exp.If):
        branches = [node.args.get("true"), node.args.get("false")]
    else:
        branches = [node.this, *node.expressions]
    spark: str | None = "void"
    for branch in branches:
        if branch is not None:
            spark = _wider(spark, _t(branch))
            if spark is None:
                return None
    return spark


def _infer_round(node: Any, ctx: _Rewriter) -> str | None:
    from sqlglot import exp

    spark = _t(node.this)
    digits = node.args.get("decimals") or node.args.get("expression")
    if isinstance(node, (exp.Floor, exp.Ceil)) and digits is None:
        if spark in _FRACTIONAL or spark in _INTEGRAL:
            return "bigint"
        found = _dec(spark)
        return f"decimal({min(found[0] - found[1] + 1, _MAX)},0)" if found else None
    if not _is_decimal(spark):
        return spark if spark in _INTEGRAL or spark in _FRACTIONAL else None
    scale = 0 if digits is None else _int_literal(digits)
    if scale is None:
        return None
    p, s = _dec(spark) or (0, 0)
    if scale < 0:
        return f"decimal({min(max(p - s + 1, -scale + 1), _MAX)},0)"
    return _bounded(p - s + 1 + min(s, scale), min(s, scale))


def _int_literal(node: Any) -> int | None:
    from sqlglot import exp

    if isinstance(node, exp.Neg):
        inner = _int_literal(node.this)
        return None if inner is None else -inner
    if isinstance(node, exp.Literal) and not node.is_string and node.is_int:
        return int(node.this)
    return None


def _infer_array(node: Any, ctx: _Rewriter) -> str | None:
    spark: str | None = "void"
    for item in node.expressions:
        spark = _wider(spark, _t(item))
    return None if spark is None else f"array<{'int' if spark == 'void' else spark}>"


def _infer_struct(node: Any, ctx: _Rewriter) -> str | None:
    from sqlglot import exp

    fields = []
    for i, item in enumerate(node.expressions):
        if isinstance(item, (exp.PropertyEQ, exp.Alias)):
            name, spark = item.name or item.alias, _t(item.args.get("expression") or item.this)
        elif isinstance(item, exp.Column):
            name, spark = item.name, _t(item)
        else:
            name, spark = f"col{i + 1}", _t(item)
        if spark is None:
            return None
        fields.append(f"{name}:{spark}")
    return f"struct<{','.join(fields)}>"


def _infer_map(node: Any, ctx: _Rewriter) -> str | None:
    keys, values = node.args.get("keys"), node.args.get("values")
    key, value = _t(keys), _t(values)
    if key and value and key.startswith("array<") and value.startswith("array<"):
        return f"map<{key[6:-1]},{value[6:-1]}>"
    return None


def _infer_bracket(node: Any, ctx: _Rewriter) -> str | None:
    container = _t(node.this) or ""
    if container.startswith("array<"):
        return container[6:-1]
    if container.startswith("map<"):
        return _split_map(container)[1]
    return None


def _split_map(spark: str) -> tuple[str, str]:
    inner, depth = spark[4:-1], 0
    for i, char in enumerate(inner):
        depth += char in "<("
        depth -= char in ">)"
        if char == "," and depth == 0:
            return inner[:i], inner[i + 1 :]
    return "?", "?"


def _infer_extract(node: Any, ctx: _Rewriter) -> str | None:
    unit = node.this.name.upper() if node.this is not None else ""
    return "decimal(8,6)" if unit in ("SECOND", "SECONDS", "S", "SEC") else "int"


def _infer_placeholder(node: Any, ctx: _Rewriter) -> str | None:
    return ctx.param_type(node.name)


def _infer_subquery(node: Any, ctx: _Rewriter) -> str | None:
    select = node.this
    projections = getattr(select, "expressions", [])
    return _t(projections[0]) if len(projections) == 1 else None


def _infer_percentile(node: Any, ctx: _Rewriter) -> str | None:
    quantile = node.args.get("quantile")
    spark = _t(quantile) or ""
    return "array<double>" if spark.startswith("array<") else "double"


def _infer_concat(node: Any, ctx: _Rewriter) -> str | None:
    parts = [node.this, node.expression] if node.args.get("expression") else node.expressions
    kinds = {_t(p) for p in parts if p is not None}
    arrays = {k for k in kinds if k and k.startswith("array<")}
    if arrays:
        return arrays.pop() if len(arrays) == 1 and kinds == arrays else None
    return "string" if None not in kinds else None


def _infer_interval(node: Any, ctx: _Rewriter) -> str | None:
    unit = _unit(node.args.get("unit")).rstrip("S")
    return f"interval {unit.lower()}" if unit in ("DAY", "HOUR", "MINUTE", "SECOND") else None


@lru_cache(maxsize=1)  # built on first use: importing this module never imports sqlglot
def _build_tables() -> tuple[dict[Any, Any], dict[Any, str], dict[str, str]]:
    from sqlglot import exp

    infer: dict[Any, Any] = {
        exp.Literal: _infer_literal,
        exp.Boolean: lambda n, c: "boolean",
        exp.Null: lambda n, c: "void",
        exp.Alias: _infer_alias,
        exp.Values: _infer_values,
        exp.Column: _infer_column,
        exp.Cast: _infer_cast,
        exp.TryCast: _infer_cast,
        exp.Add: _infer_arith,
        exp.Sub: _infer_arith,
        exp.Mul: _infer_arith,
        exp.Div: _infer_arith,
        exp.Mod: _infer_arith,
        exp.IntDiv: _infer_arith,
        exp.Sum: _infer_sum,
        exp.Avg: _infer_avg,
        exp.Min: _infer_same,
        exp.Max: _infer_same,
        exp.Paren: _infer_same,
        exp.Nullif: _infer_same,
        exp.RegexpSplit: lambda n, c: "array<string>",
        exp.Split: lambda n, c: "array<string>",
        exp.BitwiseCount: lambda n, c: "int",
        exp.Neg: _infer_same,
        exp.Abs: _infer_same,
        exp.Window: _infer_same,
        exp.Filter: _infer_same,
        exp.First: _infer_same,
        exp.Last: _infer_same,
        exp.AnyValue: _infer_same,
        exp.Case: _infer_branches,
        exp.If: _infer_branches,
        exp.Coalesce: _infer_branches,
        exp.Greatest: _infer_branches,
        exp.Least: _infer_branches,
        exp.Round: _infer_round,
        exp.Floor: _infer_round,
        exp.Ceil: _infer_round,
        exp.Array: _infer_array,
        exp.Struct: _infer_struct,
        exp.Map: _infer_map,
        exp.VarMap: _infer_map,
        exp.Bracket: _infer_bracket,
        exp.Extract: _infer_extract,
        exp.Placeholder: _infer_placeholder,
        exp.Subquery: _infer_subquery,
        exp.Quantile: _infer_percentile,
        exp.PercentileCont: lambda n, c: "double",
        exp.PercentileDisc: lambda n, c: "double",
        exp.WithinGroup: lambda n, c: _t(n.this),
        exp.Median: lambda n, c: "double",
        exp.Concat: _infer_concat,
        exp.DPipe: _infer_concat,
        exp.Interval: _infer_interval,
    }
    fixed: dict[Any, str] = {
        exp.Count: "bigint",
        exp.CountIf: "bigint",
        exp.ApproxDistinct: "bigint",
        exp.RowNumber: "int",
        exp.Rank: "int",
        exp.DenseRank: "int",
        exp.Ntile: "int",
        exp.PercentRank: "double",
        exp.CumeDist: "double",
        exp.Year: "int",
        exp.Month: "int",
        exp.Day: "int",
        exp.DayOfMonth: "int",
        exp.DayOfWeek: "int",
        exp.DayOfYear: "int",
        exp.Quarter: "int",
        exp.WeekOfYear: "int",
        exp.Hour: "int",
        exp.Minute: "int",
        exp.Second: "int",
        exp.Length: "int",
        exp.StrPosition: "int",
        exp.Levenshtein: "int",
        exp.ArraySize: "int",
        exp.ArrayPosition: "bigint",
        exp.Grouping: "tinyint",
        exp.GroupingId: "bigint",
        exp.AddMonths: "date",
        exp.LastDay: "date",
        exp.NextDay: "date",
        exp.TsOrDsToDate: "date",
        exp.TsOrDsAdd: "date",
        exp.DateTrunc: "date",
        exp.TimestampTrunc: "timestamp",
        exp.StrToTime: "timestamp",
        exp.TimestampAdd: "timestamp",
        exp.TimestampFromParts: "timestamp",
        exp.AtTimeZone: "timestamp",
        exp.FromTimeZone: "timestamp",
        exp.CurrentTimestamp: "timestamp",
        exp.CurrentDate: "date",
        exp.DateDiff: "bigint",
        exp.TimestampDiff: "bigint",
        exp.MonthsBetween: "double",
        exp.StrToUnix: "bigint",
        exp.UnixSeconds: "bigint",
        exp.TimeToStr: "string",
        exp.Upper: "string",
        exp.Lower: "string",
        exp.Substring: "string",
        exp.SubstringIndex: "string",
        exp.Trim: "string",
        exp.JSONExtractScalar: "string",
        exp.Stddev: "double",
        exp.StddevPop: "double",
        exp.StddevSamp: "double",
        exp.Variance: "double",
        exp.VariancePop: "double",
        exp.Sqrt: "double",
        exp.Exp: "double",
        exp.Ln: "double",
        exp.Log: "double",
        exp.Pow: "double",
        exp.Sign: "double",
        exp.Typeof: "string",
        exp.MD5: "string",
        exp.Hex: "string",
    }
    anon: dict[str, str] = {
        "pmod": "",
        "crc32": "bigint",
        "format_number": "string",
        "weekday": "int",
        "trunc": "date",
        "date_trunc": "timestamp",
        "cardinality": "int",
        "bit_count": "int",
        "unix_timestamp": "bigint",
        "timestamp_seconds": "timestamp",
        "make_timestamp": "timestamp",
        "date_part": "int",
        "format_string": "string",
        "isnull": "boolean",
        "json_array_length": "int",
        "isnotnull": "boolean",
        "instr": "int",
        "locate": "int",
        "position": "int",
    }
    return infer, fixed, anon


# rewrites ----------------------------------------------------------------------------

Rule = Callable[[Any, _Rewriter], Any]
_DIV0 = "[DIVIDE_BY_ZERO] Division by zero"


def _rule_for(node: Any) -> Rule | None:
    from sqlglot import exp

    rules, anon_rules = _build_rules()
    if isinstance(node, exp.Anonymous):
        return anon_rules.get(node.name.lower())
    rule = rules.get(type(node))
    if rule is not None:
        return rule
    if isinstance(node, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ)):
        return _compare
    return None


def _wrapped(ctx: _Rewriter) -> bool:
    """Whether the node being rewritten sits inside OVER / FILTER / WITHIN GROUP."""
    from sqlglot import exp

    return isinstance(ctx.parent, (exp.Window, exp.Filter, exp.WithinGroup))


def _retype(node: Any, spark: str | None) -> Any:
    """Cast to the Spark type; unknown types keep DuckDB's."""
    if spark is None or spark in ("?", "void"):
        return None
    new = _cast(node, spark)
    new.meta["spark"] = spark
    return new


def _retype_value(node: Any, ctx: _Rewriter) -> Any:
    """Values DuckDB gets right in another integer or decimal type."""
    if _wrapped(ctx):
        return None  # the OVER / FILTER wrapper is cast instead
    return _retype(node, node.meta.get("spark"))


def _if(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    if isinstance(ctx.parent, exp.Case):
        return None  # a WHEN branch, not an IF() call
    return _retype_value(node, ctx)


def _window(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    inner = node.this.this if isinstance(node.this, exp.Filter) else node.this
    if isinstance(inner, exp.Avg) and _is_decimal(_t(inner.this)):
        if isinstance(node.this, exp.Filter):
            return _refuse("avg(DECIMAL) FILTER (...) OVER (...)")
        return _decimal_avg(inner, node)
    if isinstance(inner, (exp.Quantile, exp.Median, exp.ApproxDistinct)):
        return _refuse(f"{inner.sql_name().lower()}(...) OVER (...)")
    return _retype(node, node.meta.get("spark"))


def _filter(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    if _wrapped(ctx):
        return None
    if isinstance(node.this, exp.Avg) and _is_decimal(_t(node.this.this)):
        return _refuse("avg(DECIMAL) FILTER (...)")
    return _retype(node, node.meta.get("spark"))


def _sum(node: Any, ctx: _Rewriter) -> Any:
    _numeric_argument(node)
    return _retype_value(node, ctx)


def _numeric_argument(node: Any) -> None:
    """sum / avg of a STRING column: Spark casts each value to DOUBLE (ANSI: or fails)."""
    from sqlglot import exp

    if _t(node.this) == "string" and not isinstance(node.this, exp.Distinct):
        node.set("this", _strict_number(node.this, "double"))


def _avg(node: Any, ctx: _Rewriter) -> Any:
    _numeric_argument(node)
    if not _is_decimal(_t(node.this)) or _wrapped(ctx):
        return None
    return _decimal_avg(node, None)


def _decimal_avg(avg: Any, window: Any) -> Any:
    """avg(DECIMAL) as Spark computes it: sum / count in decimal arithmetic, then rounded."""
    from sqlglot import exp

    p, s = _dec(_t(avg.this)) or (0, 0)
    total: Any = exp.Sum(this=avg.this.copy())
    count: Any = exp.Count(this=avg.this.copy())
    if window is not None:
        total, count = window.copy(), window.copy()
        total.set("this", exp.Sum(this=avg.this.copy()))
        count.set("this", exp.Count(this=avg.this.copy()))
    sum_type = _bounded(p + 10, s)
    quotient = _exact_divide(_cast(total, sum_type), sum_type, count, "decimal(20,0)")
    return _cast(quotient, _bounded(p + 4, s + 4))


def _exact_divide(a: Any, a_type: str, b: Any, b_type: str) -> Any:
    """a / b in Spark decimal arithmetic: the exact quotient rounded half up at Spark's scale."""
    (p1, s1), (p2, s2) = _dec(a_type) or (0, 0), _dec(b_type) or (0, 0)
    scale = max(6, s1 + p2 + 1)
    rp, rs = _dec(_adjusted(p1 - s1 + s2 + scale, scale)) or (0, 0)
    shift = rs - s1 + s2
    if shift < 0 or p1 + shift > _MAX:
        _refuse("decimal division beyond 38 digits")
    numerator = _fill(
        f"CAST(CAST(_a AS DECIMAL(38, {s1})) * {10**s1} AS HUGEINT) "
        f"* CAST('{10**shift}' AS HUGEINT)",
        _a=a,
    )
    denominator = _fill(
        f"CASE WHEN _b = 0 THEN error('{_DIV0}') "
        f"ELSE CAST(CAST(_b AS DECIMAL(38, {s2})) * {10**s2} AS HUGEINT) END",
        _b=b,
    )
    unit = "1" if rs == 0 else "0." + "0" * (rs - 1) + "1"
    return _fill(
        "CAST(CAST((CASE WHEN (_n < 0) <> (_d < 0) THEN -1 ELSE 1 END) "
        "* ((2 * abs(_n) + abs(_d)) // (2 * abs(_d))) AS DECIMAL(38, 0)) "
        f"* CAST('{unit}' AS DECIMAL(38, {rs})) AS DECIMAL({rp}, {rs}))",
        _n=numerator,
        _d=denominator,
    )


def _guard_zero(divisor: Any) -> Any:
    return _fill(f"CASE WHEN _b = 0 THEN error('{_DIV0}') ELSE _b END", _b=divisor)


def _strict_number(node: Any, spark: str) -> Any:
    """A string cast to a number the ANSI way: malformed text is an error, not NULL."""
    pattern = (
        "[+-]?[0-9]+"
        if spark in _INTEGRAL
        else r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
    )
    target = _duck(spark).sql("duckdb")
    return _fill(
        f"CASE WHEN _v IS NULL THEN NULL WHEN regexp_full_match(trim(_v), '{pattern}') "
        f"THEN CAST(trim(_v) AS {target}) "
        f"ELSE error('[CAST_INVALID_INPUT] a string cannot be cast to {spark.upper()}') END",
        _v=node,
    )


def _operands(node: Any, ctx: _Rewriter) -> tuple[str | None, str | None]:
    """The operand types as Spark coerces them; string operands get the ANSI cast."""
    a, b = _coerced(node, ctx)
    if _t(node.this) == "string" and a != "string":
        node.set("this", _strict_number(node.this, a or "bigint"))
    if _t(node.expression) == "string" and b != "string":
        node.set("expression", _strict_number(node.expression, b or "bigint"))
    return a, b


def _arith(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    a, b = _operands(node, ctx)
    spark = node.meta.get("spark")
    if isinstance(node, exp.Mod):
        node.set("expression", _guard_zero(node.expression))
    if spark == "date":
        return _cast(node, "date")
    if spark in ("timestamp", "timestamp_ntz"):
        return _cast(node, spark)
    if spark is None and {a, b} & {"date", "timestamp", "timestamp_ntz"}:
        return _refuse("date or time arithmetic giving an INTERVAL, or with a computed INTERVAL")
    if isinstance(node, exp.Mul) and _is_decimal(spark):
        (_, s1), (_, s2) = _dec(a) or (0, 0), _dec(b) or (0, 0)
        if s1 + s2 > _MAX:
            return _refuse("decimal multiplication beyond 38 digits of scale")
    if _is_decimal(spark) and (a is None or b is None or "?" in (a, b)):
        return None
    return _retype(node, spark)


def _div(node: Any, ctx: _Rewriter) -> Any:
    a, b = _operands(node, ctx)
    spark = node.meta.get("spark")
    if _is_decimal(spark) and a and b:
        return _exact_divide(node.this, _dec_type(a), node.expression, _dec_type(b))
    if spark == "double":
        return _fill(
            f"CAST(_a AS DOUBLE) / CASE WHEN _b = 0 THEN error('{_DIV0}') "
            "ELSE CAST(_b AS DOUBLE) END",
            _a=node.this,
            _b=node.expression,
        )
    node.set("expression", _guard_zero(node.expression))
    return None


def _dec_type(spark: str) -> str:
    p, s = _dec(spark) or (0, 0)
    return f"decimal({p},{s})"


def _int_div(node: Any, ctx: _Rewriter) -> Any:
    _operands(node, ctx)
    node.set("expression", _guard_zero(node.expression))
    return _retype(node, node.meta.get("spark"))


def _compare(node: Any, ctx: _Rewriter) -> Any:
    _operands(node, ctx)
    return None


def _pmod(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    a, n = node.expressions
    mod = exp.Mod(this=a, expression=n)
    mod.meta["spark"] = _infer_arith(mod, ctx)
    ctx.parent = None
    inner = _arith(mod, ctx) or mod
    spark = mod.meta["spark"]
    out = _fill("CASE WHEN _r < 0 THEN (_r + _n) % _n ELSE _r END", _r=inner, _n=mod.expression)
    return _retype(out, spark) or out


# casts --------------------------------------------------------------------------------


def _cast_rule(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    source, target = _t(node.this), node.meta.get("spark")
    safe = isinstance(node, exp.TryCast)
    if node.to.this == exp.DataType.Type.TIMESTAMP:  # to_timestamp(x): a Spark TIMESTAMP
        node.set("to", _duck("timestamp"))
        return None
    if target in _INTEGRAL:
        if source == "string":
            return _safe_number(node.this, target) if safe else _strict_number(node.this, target)
        if source in _FRACTIONAL or _is_decimal(source):
            node.set("this", _fn("trunc", node.this))
    elif target == "boolean" and source == "string":
        return _string_to_boolean(node.this, safe)
    elif target == "string":
        return _to_string(node, source)
    return None


def _safe_number(node: Any, spark: str) -> Any:
    target = _duck(spark).sql("duckdb")
    return _fill(
        "CASE WHEN regexp_full_match(trim(_v), '[+-]?[0-9]+') "
        f"THEN TRY_CAST(trim(_v) AS {target}) END",
        _v=node,
    )


def _string_to_boolean(node: Any, safe: bool) -> Any:
    fallback = (
        "NULL" if safe else "error('[CAST_INVALID_INPUT] a string cannot be cast to BOOLEAN')"
    )
    return _fill(
        "CASE WHEN _v IS NULL THEN NULL "
        "WHEN lower(trim(_v)) IN ('t', 'true', 'y', 'yes', '1') THEN true "
        "WHEN lower(trim(_v)) IN ('f', 'false', 'n', 'no', '0') THEN false "
        f"ELSE {fallback} END",
        _v=node,
    )


def _to_string(node: Any, source: str | None) -> Any:
    if source == "timestamp":
        return _fill("CAST(CAST(_v AS TIMESTAMP) AS VARCHAR)", _v=node.this)
    if source and source.startswith(("map<", "struct<", "array<")):
        return _string_of(node.this, source, 0)
    if source in _FRACTIONAL:
        return _fill(
            "CASE WHEN abs(_v) >= 1e7 OR (abs(_v) < 1e-3 AND _v <> 0) THEN "
            "error('CAST(DOUBLE AS STRING) in scientific notation is not supported locally') "
            "ELSE CAST(_v AS VARCHAR) END",
            _v=node.this,
        )
    return None


def _string_of(value: Any, spark: str, depth: int) -> Any:
    """Spark's text for a value: ``[1, null]``, ``{a -> 1}``, ``{1, x}`` (structs by value)."""
    from sqlglot import exp

    if spark in _INTEGRAL or _is_decimal(spark) or spark in ("string", "boolean", "date"):
        return _fill("CAST(_v AS VARCHAR)", _v=value)
    if spark == "timestamp":
        return _fill("CAST(CAST(_v AS TIMESTAMP) AS VARCHAR)", _v=value)
    item = exp.column(f"_x{depth}")
    if spark.startswith("array<"):
        text = _or_null(_string_of(item, spark[6:-1], depth + 1))
        return _fill(
            "'[' || array_to_string(list_transform(_v, _f), ', ') || ']'",
            _v=value,
            _f=_lambda([item.name], text),
        )
    if spark.startswith("map<"):
        key_type, value_type = _split_map(spark)
        key = _string_of(_fn("struct_extract", item, _lit("key")), key_type, depth + 1)
        val = _string_of(_fn("struct_extract", item, _lit("value")), value_type, depth + 1)
        entry = _fill("_k || ' -> ' || _w", _k=key, _w=_or_null(val))
        return _fill(
            "'{' || array_to_string(list_transform(map_entries(_v), _f), ', ') || '}'",
            _v=value,
            _f=_lambda([item.name], entry),
        )
    if spark.startswith("struct<"):
        fields = _struct_fields(spark)
        parts = {
            f"_p{i}": _or_null(_string_of(_fn("struct_extract", value, _lit(name)), kind, depth))
            for i, (name, kind) in enumerate(fields)
        }
        joined = " || ', ' || ".join(parts) or "''"
        return _fill(
            f"CASE WHEN _v IS NULL THEN NULL ELSE '{{' || {joined} || '}}' END", _v=value, **parts
        )
    return _refuse(f"CAST({spark.split('<')[0].upper()} AS STRING) with {spark} inside")


def _or_null(text: Any) -> Any:
    return _fn("coalesce", text, _lit("null"))


def _struct_fields(spark: str) -> list[tuple[str, str]]:
    inner, fields, depth, start = spark[len("struct<") : -1], [], 0, 0
    for i, char in enumerate(inner + ","):
        depth += char in "<("
        depth -= char in ">)"
        if char == "," and depth == 0:
            name, _, kind = inner[start:i].partition(":")
            fields.append((name, kind))
            start = i + 1
    return fields


def _data_type(node: Any, ctx: _Rewriter) -> Any:
    """A bare DECIMAL is DECIMAL(10,0) in Spark (DuckDB would make it DECIMAL(18,3))."""
    from sqlglot import exp

    if node.this == exp.DataType.Type.DECIMAL and not node.expressions:
        return _duck("decimal(10,0)")
    return None


def _in_list(node: Any, ctx: _Rewriter) -> Any:
    """``code IN (4816, 5734)``: a string compared with numbers is cast as in ``=``."""
    items = [*node.expressions, node.args.get("low"), node.args.get("high")]
    kinds = {_t(i) for i in items if i is not None}
    if _t(node.this) != "string" or not kinds or not all(_is_numeric(k) for k in kinds):
        return None
    target = "bigint" if kinds <= set(_INTEGRAL) else "double"
    node.set("this", _strict_number(node.this, target))
    return None


def _set_operation(node: Any, ctx: _Rewriter) -> Any:
    """UNION / INTERSECT / EXCEPT: every branch's column cast to the type Spark widens to."""
    from sqlglot import exp

    if isinstance(ctx.parent, exp.SetOperation):
        return None  # the outermost operation casts all branches
    selects = _branches(node)
    if not selects or any(isinstance(p, exp.Star) for s in selects for p in s.expressions):
        return None
    width = len(selects[0].expressions)
    if any(len(s.expressions) != width for s in selects):
        return None
    for index in range(width):
        spark: str | None = "void"
        for select in selects:
            spark = _wider(spark, _t(select.expressions[index]))
        if spark is None or spark in ("void", "?"):
            continue
        for select in selects:
            projection = select.expressions[index]
            if _t(projection) == spark:
                continue
            name = projection.alias_or_name
            value = projection.this if isinstance(projection, exp.Alias) else projection
            cast = _cast(value.copy(), spark)
            projection.replace(exp.alias_(cast, name) if name else cast)
    return None


def _typeof(node: Any, ctx: _Rewriter) -> Any:
    spark = _t(node.this)
    if spark is None or "?" in spark:
        return _refuse("typeof() of an expression whose Spark type is not known locally")
    return _lit(spark)


# dates and times ----------------------------------------------------------------------

_MICROS = {
    "MICROSECOND": 1,
    "MILLISECOND": 1_000,
    "SECOND": 1_000_000,
    "MINUTE": 60_000_000,
    "HOUR": 3_600_000_000,
    "DAY": 86_400_000_000,
    "WEEK": 604_800_000_000,
}
_MONTHS = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}


def _spellings(table: dict[str, str]) -> dict[str, str]:
    """``{"year": "YEAR Y YR"}`` -> ``{"YEAR": "year", "Y": "year", "YR": "year"}``."""
    return {spelling: value for value, names in table.items() for spelling in names.split()}


# extract(<field> FROM x) -> DuckDB date_part name.
_FIELDS = _spellings(
    {
        "year": "YEAR Y YEARS YR YRS",
        "month": "MONTH MON MONS MONTHS",
        "day": "DAY D DAYS",
        "hour": "HOUR H HOURS HR HRS",
        "minute": "MINUTE M MIN MINS MINUTES",
        "quarter": "QUARTER QTR",
        "week": "WEEK W WEEKS",
        "dayofyear": "DOY DAYOFYEAR",
        "isodow": "DAYOFWEEK_ISO DAYOFWEEKISO DOW_ISO",
        "isoyear": "YEAROFWEEK",
    }
)


def _unit(node: Any) -> str:
    text = node.name if node is not None else ""
    return text.upper().strip("'")


def _ts(node: Any) -> Any:
    """Any date, string or timestamp as a Spark TIMESTAMP (DuckDB TIMESTAMPTZ)."""
    if _t(node) in ("timestamp",):
        return node
    return _cast(node, "timestamp")


def _wallclock(node: Any) -> Any:
    """The UTC wall-clock time (naive TIMESTAMP) of a date, string or timestamp."""
    if _t(node) == "timestamp_ntz":
        return node
    return _fill("CAST(_v AS TIMESTAMP)", _v=_ts(node))


def _elapsed(unit: str, start: Any, end: Any) -> Any:
    """timestampdiff: whole units elapsed from start to end, as Spark (java.time) counts."""
    unit = unit.rstrip("S") if unit.endswith("S") and unit[:-1] in (_MICROS | _MONTHS) else unit
    if unit in _MICROS:
        return _fill(
            "CASE WHEN epoch_us(_e) < epoch_us(_s) "
            f"THEN -((epoch_us(_s) - epoch_us(_e)) // {_MICROS[unit]}) "
            f"ELSE (epoch_us(_e) - epoch_us(_s)) // {_MICROS[unit]} END",
            _s=_wallclock(start),
            _e=_wallclock(end),
        )
    if unit not in _MONTHS:
        return _refuse(f"timestampdiff({unit})")
    months = _fill(
        "(((year(_ed) * 12 + month(_ed)) * 32 + day(_ed)) "
        "- ((year(_s) * 12 + month(_s)) * 32 + day(_s)))",
        _s=_wallclock(start),
        _ed=_fill(
            "CASE WHEN CAST(_e AS DATE) > CAST(_s AS DATE) AND CAST(_e AS TIME) < CAST(_s AS TIME) "
            "THEN CAST(_e AS DATE) - 1 "
            "WHEN CAST(_e AS DATE) < CAST(_s AS DATE) AND CAST(_e AS TIME) > CAST(_s AS TIME) "
            "THEN CAST(_e AS DATE) + 1 ELSE CAST(_e AS DATE) END",
            _s=_wallclock(start),
            _e=_wallclock(end),
        ),
    )
    per = 32 * _MONTHS[unit]
    return _fill(f"CASE WHEN _m < 0 THEN -((-_m) // {per}) ELSE _m // {per} END", _m=months)


def _date_diff(node: Any, ctx: _Rewriter) -> Any:
    end, start = node.this, node.expression
    if node.meta.get("days_between"):
        out = _fill(
            "CAST(date_diff('day', CAST(_s AS DATE), CAST(_e AS DATE)) AS INT)", _s=start, _e=end
        )
        out.meta["spark"] = "int"
        return out
    return _cast(_elapsed(_unit(node.args.get("unit")), start, end), "bigint")


def _months_between(node: Any, ctx: _Rewriter) -> Any:
    rounding = node.args.get("roundoff")
    body = (
        "(year(_a) * 12 + month(_a)) - (year(_b) * 12 + month(_b)) + "
        "((day(_a) - day(_b)) * 86400 + (hour(_a) * 3600 + minute(_a) * 60 + second(_a)) "
        "- (hour(_b) * 3600 + minute(_b) * 60 + second(_b))) / 2678400.0"
    )
    if rounding is None or rounding.sql().upper() != "FALSE":
        body = f"floor(({body}) * 1e8 + 0.5) / 1e8"
    return _fill(
        "CASE WHEN day(_a) = day(_b) "
        "OR (day(_a) = day(last_day(_a)) AND day(_b) = day(last_day(_b))) "
        "THEN CAST((year(_a) * 12 + month(_a)) - (year(_b) * 12 + month(_b)) AS DOUBLE) "
        f"ELSE {body} END",
        _a=_wallclock(node.this),
        _b=_wallclock(node.expression),
    )


def _extract(node: Any, ctx: _Rewriter) -> Any:
    return _date_field(_unit(node.this), node.expression)


def _date_part(node: Any, ctx: _Rewriter) -> Any:
    field, value = node.expressions
    return _date_field(_unit(field), value)


def _date_field(unit: str, value: Any) -> Any:
    if unit in ("SECOND", "SECONDS", "S", "SEC", "SECS"):
        return _fill(
            "CAST(CAST(date_part('microseconds', _v) AS DECIMAL(14, 0)) "
            "* CAST('0.000001' AS DECIMAL(7, 6)) AS DECIMAL(8, 6))",
            _v=_wallclock(value),
        )
    if unit in ("DAYOFWEEK", "DOW"):
        return _fill("CAST(dayofweek(_v) + 1 AS INT)", _v=_wallclock(value))
    if unit not in _FIELDS:
        return _refuse(f"extract({unit})")
    return _fill(f"CAST(date_part('{_FIELDS[unit]}', _v) AS INT)", _v=_wallclock(value))


def _day_of_week(node: Any, ctx: _Rewriter) -> Any:
    return _fill("CAST(dayofweek(CAST(_v AS DATE)) + 1 AS INT)", _v=_wallclock(node.this))


def _weekday(node: Any, ctx: _Rewriter) -> Any:
    return _fill("CAST(isodow(CAST(_v AS DATE)) - 1 AS INT)", _v=_wallclock(node.expressions[0]))


def _add_months(node: Any, ctx: _Rewriter) -> Any:
    return _fill(
        "CAST(CAST(_d AS DATE) + to_months(CAST(_n AS INT)) AS DATE)",
        _d=_date(node.this),
        _n=node.expression,
    )


def _date(node: Any) -> Any:
    if _t(node) == "date":
        return node
    if _t(node) == "timestamp":
        return _fill("CAST(CAST(_v AS TIMESTAMP) AS DATE)", _v=node)
    return _cast(node, "date")


def _ts_or_ds_add(node: Any, ctx: _Rewriter) -> Any:
    node.set("this", _date(node.this))
    return _cast(node, "date")


# trunc(date, <format>) and date_trunc(<format>, ts) -> DuckDB date_trunc part.
_TRUNC_DATE = _spellings(
    {"year": "YEAR YYYY YY", "quarter": "QUARTER", "month": "MONTH MM MON", "week": "WEEK"}
)
_TRUNC_TS = _TRUNC_DATE | _spellings(
    {
        "day": "DAY DD",
        "hour": "HOUR",
        "minute": "MINUTE",
        "second": "SECOND",
        "milliseconds": "MILLISECOND",
        "microseconds": "MICROSECOND",
    }
)


def _literal_unit(node: Any, function: str) -> str:
    from sqlglot import exp

    if not (isinstance(node, exp.Literal) and node.is_string):
        _refuse(f"{function}() with a format that is not a literal")
    return str(node.this).strip().upper()


def _trunc_date(node: Any, ctx: _Rewriter) -> Any:
    value, unit = node.expressions
    part = _TRUNC_DATE.get(_literal_unit(unit, "trunc"))
    if part is None:  # Spark answers NULL for a format it does not know
        return _fill("CAST(NULL AS DATE)")
    return _fill(f"CAST(date_trunc('{part}', _d) AS DATE)", _d=_date(value))


def _trunc_ts(node: Any, ctx: _Rewriter) -> Any:
    unit, value = node.expressions
    part = _TRUNC_TS.get(_literal_unit(unit, "date_trunc"))
    if part is None:
        return _fill("CAST(NULL AS TIMESTAMPTZ)")
    return _fill(f"CAST(date_trunc('{part}', _v) AS TIMESTAMPTZ)", _v=_ts(value))


def _last_day(node: Any, ctx: _Rewriter) -> Any:
    return _fill("last_day(_d)", _d=_date(node.this))


# next_day(d, <day>): ISO day number of each spelling Spark accepts.
_DAYS = {
    spelling: number
    for number, names in enumerate(
        (
            "MO MON MONDAY",
            "TU TUE TUESDAY",
            "WE WED WEDNESDAY",
            "TH THU THURSDAY",
            "FR FRI FRIDAY",
            "SA SAT SATURDAY",
            "SU SUN SUNDAY",
        ),
        start=1,
    )
    for spelling in names.split()
}


def _next_day(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    day = node.expression
    if not (isinstance(day, exp.Literal) and day.is_string):
        return _refuse("next_day() with a day that is not a literal")
    target = _DAYS.get(day.this.strip().upper())
    if target is None:
        return _fill("error('[ILLEGAL_DAY_OF_WEEK] Illegal input for day of week')")
    return _fill(
        f"CAST(_d + CAST(((({target} - isodow(_d)) + 6) % 7) + 1 AS INT) AS DATE)",
        _d=_date(node.this),
    )


def _from_utc(node: Any, ctx: _Rewriter) -> Any:
    zone = node.args.get("zone")
    return _fill("timezone('UTC', timezone(_z, _v))", _z=zone, _v=_ts(node.this))


def _to_utc(node: Any, ctx: _Rewriter) -> Any:
    zone = node.args.get("zone")
    return _fill("timezone(_z, timezone('UTC', _v))", _z=zone, _v=_ts(node.this))


def _utc(node: Any, ctx: _Rewriter) -> Any:
    """DuckDB builds a naive TIMESTAMP; Spark's is a TIMESTAMP at the session zone (UTC)."""
    return _fill("timezone('UTC', _v)", _v=node)


def _timestamp_add(node: Any, ctx: _Rewriter) -> Any:
    return _cast(node, "timestamp")


def _unix_timestamp(node: Any, ctx: _Rewriter) -> Any:
    if node.args.get("format") != _default_unix_format():
        return _cast(node, "bigint")
    value = node.this if node.this is not None else _fn("current_timestamp")
    return _fill("CAST(floor(epoch(_v)) AS BIGINT)", _v=_ts(value))


@lru_cache(maxsize=1)
def _default_unix_format() -> Any:
    import sqlglot

    return sqlglot.parse_one("unix_timestamp(x)", read="databricks").args.get("format")


def _timestamp_seconds(node: Any, ctx: _Rewriter) -> Any:
    return _fn("to_timestamp", *node.expressions)


def _sequence(node: Any, ctx: _Rewriter) -> Any:
    start, end, step = node.args.get("start"), node.args.get("end"), node.args.get("step")
    kind = _wider(_t(start), _t(end))
    if kind in _INTEGRAL:
        step = step or _fill("CASE WHEN _a <= _b THEN 1 ELSE -1 END", _a=start, _b=end)
        return _cast(_fn("generate_series", start, end, step), f"array<{kind}>")
    if kind == "date" and step is not None:
        return _fill(
            "CAST(generate_series(CAST(_a AS TIMESTAMP), CAST(_b AS TIMESTAMP), _c) AS DATE[])",
            _a=start,
            _b=end,
            _c=step,
        )
    return _refuse("sequence() over these types")


# Spark datetime pattern -> strftime, longest token first within each letter.
_JAVA_FORMAT = [
    ("yyyy", "%Y"),
    ("yy", "%y"),
    ("MMMM", "%B"),
    ("MMM", "%b"),
    ("MM", "%m"),
    ("M", "%-m"),
    ("dd", "%d"),
    ("d", "%-d"),
    ("HH", "%H"),
    ("H", "%-H"),
    ("hh", "%I"),
    ("h", "%-I"),
    ("mm", "%M"),
    ("m", "%-M"),
    ("ss", "%S"),
    ("s", "%-S"),
    ("SSSSSS", "%f"),
    ("SSS", "%g"),
    ("EEEE", "%A"),
    ("EEE", "%a"),
    ("E", "%a"),
    ("a", "%p"),
    ("DDD", "%j"),
]


def _strftime(java: str) -> str:
    """A Spark datetime pattern as a DuckDB strftime format (refused when unknown)."""
    out, i = [], 0
    while i < len(java):
        if java[i] == "'":
            end = java.find("'", i + 1)
            end = len(java) if end < 0 else end
            out.append(java[i + 1 : end].replace("%", "%%") or "'")
            i = end + 1
            continue
        for token, code in _JAVA_FORMAT:
            if java.startswith(token, i) and not java.startswith(token + token[0], i):
                out.append(code)
                i += len(token)
                break
        else:
            if java[i].isalpha():
                _refuse(f"datetime pattern letter '{java[i]}'")
            out.append(java[i].replace("%", "%%"))
            i += 1
    return "".join(out)


def _date_format(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    value, pattern = node.expressions
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        return _refuse("date_format() with a pattern that is not a literal")
    fmt = _strftime(pattern.this)
    return _fill(f"strftime(_v, '{fmt.replace(chr(39), chr(39) * 2)}')", _v=_wallclock(value))


# numbers and strings -------------------------------------------------------------------


def _round(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    spark, source = node.meta.get("spark"), _t(node.this)
    digits = node.args.get("decimals") or node.args.get("expression")
    if isinstance(node, (exp.Floor, exp.Ceil)) and digits is not None and _is_decimal(source):
        scale = _int_literal(digits)
        if scale is None or scale < 0:
            return _refuse(f"{node.sql_name().lower()}(DECIMAL, scale) with this scale")
        name = "floor" if isinstance(node, exp.Floor) else "ceil"
        up = _cast(_lit(str(10**scale)), f"decimal({scale + 1},0)")
        down = _cast(
            _lit("1" if scale == 0 else "0." + "0" * (scale - 1) + "1"),
            f"decimal({scale + 1},{scale})",
        )
        out = _fill(f"{name}(_v * _u) * _d", _v=node.this, _u=up, _d=down)
        return _retype(out, spark)
    if isinstance(node, (exp.Floor, exp.Ceil)) and digits is not None:
        return _refuse(f"{node.sql_name().lower()}(x, scale) on a non-decimal")
    if isinstance(node, exp.Round) and source in _FRACTIONAL:
        return _retype(_round_double("round", node.this, digits or _lit(0)), spark)
    return _retype(node, spark)


def _round_double(function: str, value: Any, digits: Any) -> Any:
    """Spark rounds a DOUBLE's shortest decimal text (1.005 -> 1.01), not its binary value
    (1.00499999... -> 1.0, DuckDB's answer)."""
    return _fill(
        "CASE WHEN isfinite(_x) AND abs(_x) < 1e15 "
        f"THEN CAST({function}(CAST(CAST(_x AS VARCHAR) AS DECIMAL(38, 20)), _d) AS DOUBLE) "
        f"ELSE {function}(_x, _d) END",
        _x=value,
        _d=digits,
    )


def _bround(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    value = node.expressions[0]
    digits = node.expressions[1] if len(node.expressions) > 1 else _lit(0)
    spark = _infer_round(exp.Round(this=value, decimals=digits), ctx)
    if _t(value) in _FRACTIONAL:
        return _retype(_round_double("round_even", value, digits), spark)
    return _retype(_fn("round_even", value, digits), spark)


def _format_number(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    value, digits = node.expressions
    places = _int_literal(digits)
    if places is None or places < 0 or (isinstance(digits, exp.Literal) and digits.is_string):
        return _refuse("format_number() with a pattern or non-literal scale")
    if _is_decimal(_t(value)) or _t(value) in _INTEGRAL:
        value = _fn("round_even", _cast(value, "decimal(38,18)"), _lit(places))
    return _fill(f"format('{{:,.{places}f}}', CAST(_v AS DOUBLE))", _v=value)


def _crc32(node: Any, ctx: _Rewriter) -> Any:
    """CRC-32 (IEEE) of the UTF-8 bytes, bit by bit: DuckDB has no crc32()."""
    return _fill(
        "xor(list_reduce(list_transform(range(octet_length(encode(_s))), "
        "lambda _i: CAST(('0x' || substr(hex(encode(_s)), 2 * _i + 1, 2)) AS BIGINT)), "
        "lambda _c, _b: list_reduce(range(8), "
        "lambda _r, _k: xor(_r >> 1, 3988292384 & -(_r & 1)), xor(_c, _b)), "
        "CAST(4294967295 AS BIGINT)), CAST(4294967295 AS BIGINT))",
        _s=_cast(node.expressions[0], "string"),
    )


def _substring(node: Any, ctx: _Rewriter) -> Any:
    start, length = node.args.get("start"), node.args.get("length")
    if start is not None and _int_literal(start) in (None, 0):
        node.set("start", _fill("CASE WHEN _p = 0 THEN 1 ELSE _p END", _p=start))
    if length is not None and (_int_literal(length) is None or (_int_literal(length) or 0) < 0):
        node.set("length", _fn("greatest", length, _lit(0)))
    return None


def _substring_index(node: Any, ctx: _Rewriter) -> Any:
    return _fill(
        "CASE WHEN _n = 0 THEN '' WHEN _n > 0 "
        "THEN array_to_string(list_slice(string_split(_s, _d), 1, _n), _d) "
        "ELSE array_to_string(list_slice(string_split(_s, _d), _n, -1), _d) END",
        _s=node.this,
        _d=node.args.get("delimiter"),
        _n=node.args.get("count"),
    )


def _concat(node: Any, ctx: _Rewriter) -> Any:
    if node.meta.get("spark") == "string":
        return _cast(node, "string")
    return None


def _octet_length(node: Any, ctx: _Rewriter) -> Any:
    return _fill("CAST(octet_length(encode(CAST(_v AS VARCHAR))) AS INT)", _v=node.expressions[0])


def _format_string(node: Any, ctx: _Rewriter) -> Any:
    return _fn("printf", *node.expressions)


def _java_replacement(text: str) -> str:
    """A java.util.regex replacement (``$1``, ``\\$``) in RE2's spelling (``\\1``, ``$``)."""
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append("\\\\" if text[i + 1] == "\\" else text[i + 1])
            i += 2
        elif char == "$":
            digits = re.match(r"\d+", text[i + 1 :])
            if digits is None or len(digits.group()) > 1:
                _refuse("regexp_replace() with a named or multi-digit group reference")
            out.append("\\" + digits.group())
            i += 1 + len(digits.group())
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _regexp_replace(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    replacement = node.args.get("replacement")
    if not (isinstance(replacement, exp.Literal) and replacement.is_string):
        return _refuse("regexp_replace() with a replacement that is not a literal")
    if "$" in replacement.this or "\\" in replacement.this:
        node.set("replacement", _lit(_java_replacement(replacement.this)))
    return None


def _split(node: Any, ctx: _Rewriter) -> Any:
    limit = node.args.get("limit")
    if limit is None:
        return None
    value = _int_literal(limit)
    if value is None or value > 0:
        return _refuse("split() with a positive limit")
    node.set("limit", None)  # zero or negative: no limit, as without one
    return None


def _pad(node: Any, ctx: _Rewriter) -> Any:
    """Spark pads with nothing when the pad is empty, and truncates either way."""
    function = "lpad" if node.args.get("is_left") else "rpad"
    pad = node.args.get("fill_pattern") or _lit(" ")
    return _fill(
        f"CASE WHEN _n <= 0 THEN '' WHEN _p = '' THEN left(_s, _n) ELSE {function}(_s, _n, _p) END",
        _s=node.this,
        _n=node.expression,
        _p=pad,
    )


def _negate(node: Any, ctx: _Rewriter) -> Any:
    """``-x`` of the smallest INT / BIGINT overflows in Spark (ANSI); DuckDB widens."""
    spark = node.meta.get("spark")
    if spark not in _INTEGRAL:
        return None
    wider = "HUGEINT" if spark == "bigint" else "BIGINT"
    return _cast(_fill(f"-CAST(_v AS {wider})", _v=node.this), spark)


def _logarithm(node: Any, ctx: _Rewriter) -> Any:
    """Spark's log of zero or a negative number is NULL (DuckDB: -inf, NaN or an error)."""
    from sqlglot import exp

    args = [a for a in (node.this, node.args.get("expression")) if a is not None]
    guard = " OR ".join(f"_a{i} <= 0" for i in range(len(args)))
    parts = {f"_a{i}": a for i, a in enumerate(args)}
    if isinstance(node, exp.Ln):
        return _fill(f"CASE WHEN {guard} THEN NULL ELSE ln(_a0) END", **parts)
    if len(args) == 1:
        return _fill(f"CASE WHEN {guard} THEN NULL ELSE ln(_a0) END", **parts)
    return _fill(
        f"CASE WHEN {guard} THEN NULL ELSE ln(CAST(_a1 AS DOUBLE)) / ln(CAST(_a0 AS DOUBLE)) END",
        **parts,
    )


@lru_cache(maxsize=1)
def _special_upper() -> tuple[tuple[str, str], ...]:
    """Characters whose upper case is several characters (``ß`` -> ``SS``), as in Java."""
    return tuple((c, c.upper()) for c in map(chr, range(0x80, 0x20000)) if len(c.upper()) > 1)


def _upper(node: Any, ctx: _Rewriter) -> Any:
    pairs = _special_upper()
    chars = "".join(c for c, _ in pairs)
    table = ", ".join(f"['{c}', '{u}']" for c, u in pairs)
    return _fill(
        f"CASE WHEN regexp_matches(_s, '[{chars}]') "
        f"THEN upper(list_reduce([{table}], lambda _t, _r: replace(_t, _r[1], _r[2]), _s)) "
        "ELSE upper(_s) END",
        _s=node.this,
    )


def _lower(node: Any, ctx: _Rewriter) -> Any:
    """Java lowers a final capital sigma to ``ς`` and ``İ`` to two characters."""
    return _fill(
        "CASE WHEN regexp_matches(_s, '[Σİ]') "
        "THEN error('lower() of text with Σ or İ is not supported locally') "
        "ELSE lower(_s) END",
        _s=node.this,
    )


def _like(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    if isinstance(ctx.parent, exp.Escape):
        return None
    return exp.Escape(this=node, expression=_lit("\\"))


def _width_bucket(node: Any, ctx: _Rewriter) -> Any:
    value, low, high, count = (
        node.args.get("this"),
        node.args.get("min_value"),
        node.args.get("max_value"),
        node.args.get("num_buckets"),
    )
    if None in (value, low, high, count):
        return _refuse("width_bucket()")
    return _fill(
        "CASE WHEN _v IS NULL OR _lo IS NULL OR _hi IS NULL OR _n IS NULL THEN NULL "
        "WHEN _n <= 0 OR _lo = _hi THEN error('[INVALID_PARAMETER_VALUE] width_bucket') "
        "WHEN _lo < _hi AND _v < _lo THEN CAST(0 AS BIGINT) "
        "WHEN _lo < _hi AND _v >= _hi THEN CAST(_n + 1 AS BIGINT) "
        "WHEN _lo < _hi "
        "THEN CAST(floor((CAST(_v AS DOUBLE) - _lo) * _n / (_hi - _lo)) + 1 AS BIGINT) "
        "WHEN _v > _lo THEN CAST(0 AS BIGINT) WHEN _v <= _hi THEN CAST(_n + 1 AS BIGINT) "
        "ELSE CAST(floor((_lo - CAST(_v AS DOUBLE)) * _n / (_lo - _hi)) + 1 AS BIGINT) END",
        _v=value,
        _lo=low,
        _hi=high,
        _n=count,
    )


def _try_arith(op: str) -> Rule:
    def rule(node: Any, ctx: _Rewriter) -> Any:
        return _fill(f"try(_a {op} _b)", _a=node.this, _b=node.expression)

    return rule


# arrays, maps, higher-order functions ---------------------------------------------------

_DISTINCT = (
    "list_filter(_l, lambda _e, _i: NOT list_contains(list_transform(list_slice(_l, 1, _i - 1), "
    "lambda _x: _x IS NOT DISTINCT FROM _e), true))"
)
_MEMBER = "list_contains(list_transform(_r, lambda _x: _x IS NOT DISTINCT FROM _e), true)"


def _array_distinct(node: Any, ctx: _Rewriter) -> Any:
    return _fill(_DISTINCT, _l=node.this)


def _array_set_op(kind: str) -> Rule:
    def rule(node: Any, ctx: _Rewriter) -> Any:
        if node.args.get("expressions"):
            left, right = node.expressions[0], node.expressions[1]
        else:
            left, right = node.this, node.expression
        if kind == "union":
            return _fill(_DISTINCT, _l=_fn("list_concat", left, right))
        keep = _MEMBER if kind == "intersect" else f"NOT {_MEMBER}"
        chosen = _fill(f"list_filter(_q, lambda _e: {keep})", _q=left, _r=right)
        return _fill(_DISTINCT, _l=chosen)

    return rule


def _bracket(node: Any, ctx: _Rewriter) -> Any:
    container = _t(node.this) or ""
    if not container.startswith("array<") or node.args.get("safe"):
        return None
    index = node.expressions[0]
    if node.args.get("offset") == 1:  # element_at: 1-based, negative counts from the end
        return _fill(
            "CASE WHEN _i = 0 THEN error('[INVALID_INDEX_OF_ZERO] The index 0 is invalid') "
            "WHEN abs(_i) > len(_a) "
            "THEN error('[INVALID_ARRAY_INDEX_IN_ELEMENT_AT] index out of bounds') "
            "WHEN _i > 0 THEN list_extract(_a, _i) ELSE list_extract(_a, len(_a) + _i + 1) END",
            _a=node.this,
            _i=index,
        )
    return _fill(
        "CASE WHEN _i < 0 OR _i >= len(_a) "
        "THEN error('[INVALID_ARRAY_INDEX] index out of bounds') ELSE list_extract(_a, _i + 1) END",
        _a=node.this,
        _i=index,
    )


def _get(node: Any, ctx: _Rewriter) -> Any:
    array, index = node.expressions
    return _fill("CASE WHEN _i < 0 THEN NULL ELSE list_extract(_a, _i + 1) END", _a=array, _i=index)


def _size(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    value = node.expressions[0] if isinstance(node, exp.Anonymous) else node.this
    if (_t(value) or "").startswith("map<"):
        return _fill("CAST(cardinality(_v) AS INT)", _v=value)
    return _fill("CAST(len(_v) AS INT)", _v=value)


def _array_contains(node: Any, ctx: _Rewriter) -> Any:
    return _fill(
        "CASE WHEN _a IS NULL OR _v IS NULL THEN NULL WHEN list_contains(_a, _v) THEN true "
        "WHEN list_contains(list_transform(_a, lambda _x: _x IS NULL), true) "
        "THEN NULL ELSE false END",
        _a=node.this,
        _v=node.expression,
    )


def _array_position(node: Any, ctx: _Rewriter) -> Any:
    return _fill(
        "CASE WHEN _a IS NULL OR _v IS NULL THEN NULL "
        "ELSE CAST(coalesce(list_position(_a, _v), 0) AS BIGINT) END",
        _a=node.this,
        _v=node.expression,
    )


def _array_sort(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    if any(isinstance(a, exp.Lambda) for a in node.args.values()):
        return _refuse("array_sort() with a comparator")
    return None


def _arrays_zip(node: Any, ctx: _Rewriter) -> Any:
    """Spark names each field after its column, else by position ("0", "1", ...)."""
    from sqlglot import exp

    arrays = node.expressions
    names = [a.name if isinstance(a, exp.Column) else str(i) for i, a in enumerate(arrays)]
    index = exp.column("_i")
    fields = [
        exp.PropertyEQ(
            this=exp.to_identifier(name, quoted=True),
            expression=_fn("list_extract", a.copy(), _fill("_i + 1", _i=index)),
        )
        for name, a in zip(names, arrays, strict=True)
    ]
    longest = _fn("greatest", *[_fn("len", a.copy()) for a in arrays])
    nulls = " OR ".join(f"_n{i} IS NULL" for i in range(len(arrays)))
    body = _fn(
        "list_transform", _fn("range", longest), _lambda(["_i"], exp.Struct(expressions=fields))
    )
    return _fill(
        f"CASE WHEN {nulls} THEN NULL ELSE _z END",
        _z=body,
        **{f"_n{i}": a for i, a in enumerate(arrays)},
    )


def _array_repeat(node: Any, ctx: _Rewriter) -> Any:
    value, count = node.expressions
    return _fill("list_transform(range(_n), lambda _i: _v)", _v=value, _n=count)


def _apply(lam: Any, *args: Any) -> Any:
    """A lambda's body with its parameters replaced by the given expressions."""
    from sqlglot import exp

    names = [p.name for p in lam.expressions]
    body = lam.this.copy()
    for node in list(body.walk()):
        if isinstance(node, (exp.Identifier, exp.Column)) and not node.parent_select:
            name = node.name
            if name in names and isinstance(node, exp.Column | exp.Identifier):
                if isinstance(node, exp.Identifier) and isinstance(node.parent, exp.Column):
                    continue
                replacement = args[names.index(name)].copy()
                if node is body:
                    body = replacement
                else:
                    node.replace(replacement)
    return body


def _lambda(params: list[str], body: Any) -> Any:
    from sqlglot import exp

    return exp.Lambda(this=body, expressions=[exp.to_identifier(p) for p in params])


def _transform(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    lam = node.expression
    if not isinstance(lam, exp.Lambda) or len(lam.expressions) != 2:
        return None
    x = exp.to_identifier("_x")
    index = _fill("CAST(_i - 1 AS INT)", _i=exp.column("_i"))
    body = _apply(lam, x, index)
    return _fn("list_transform", node.this, _lambda(["_x", "_i"], body))


def _exists_hof(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    if not isinstance(node.args.get("expression"), exp.Lambda):
        return None
    mapped = _fn("list_transform", node.this, node.expression)
    return _fill(
        "CASE WHEN _a IS NULL THEN NULL WHEN list_contains(_m, true) THEN true "
        "WHEN list_contains(list_transform(_m, lambda _x: _x IS NULL), true) "
        "THEN NULL ELSE false END",
        _a=node.this,
        _m=mapped,
    )


def _forall(node: Any, ctx: _Rewriter) -> Any:
    array, lam = node.expressions
    mapped = _fn("list_transform", array, lam)
    return _fill(
        "CASE WHEN _a IS NULL THEN NULL WHEN list_contains(_m, false) THEN false "
        "WHEN list_contains(list_transform(_m, lambda _x: _x IS NULL), true) "
        "THEN NULL ELSE true END",
        _a=array,
        _m=mapped,
    )


def _reduce(node: Any, ctx: _Rewriter) -> Any:
    finish = node.args.get("finish")
    if finish is None:
        return None
    node.set("finish", None)
    return _apply(finish, node)


def _zip_with(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    left, right, lam = node.expressions
    z = exp.column("_z")
    body = _apply(lam, _fn("struct_extract", z, _lit(1)), _fn("struct_extract", z, _lit(2)))
    return _fn("list_transform", _fn("list_zip", left, right), _lambda(["_z"], body))


def _map_filter(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    mapping, lam = node.expressions
    entry = exp.column("_en")
    body = _apply(
        lam, _fn("struct_extract", entry, _lit("key")), _fn("struct_extract", entry, _lit("value"))
    )
    kept = _fn("list_filter", _fn("map_entries", mapping), _lambda(["_en"], body))
    return _fn("map_from_entries", kept)


def _str_to_map(node: Any, ctx: _Rewriter) -> Any:
    """str_to_map(text, pairs=',', key_value=':'): Spark splits on regexes; plain
    delimiters split the same way. A repeated key is an error on both engines."""
    from sqlglot import exp

    pair = node.args.get("pair_delim") or _lit(",")
    key_value = node.args.get("key_value_delim") or _lit(":")
    for delim in (pair, key_value):
        if not (isinstance(delim, exp.Literal) and delim.is_string) or re.search(
            r"[\\^$.|?*+()\[\]{}]", delim.this
        ):
            return _refuse("str_to_map() with a regex or non-literal delimiter")
    return _fill(
        "map_from_entries(list_transform(string_split(_s, _p), lambda _e: "
        "{'key': split_part(_e, _k, 1), 'value': CASE WHEN strpos(_e, _k) > 0 "
        "THEN substr(_e, strpos(_e, _k) + length(_k)) END}))",
        _s=node.this,
        _p=pair,
        _k=key_value,
    )


def _map_contains_key(node: Any, ctx: _Rewriter) -> Any:
    return _fn("map_contains", node.this, node.args.get("key"))


# aggregates, JSON and the rest ----------------------------------------------------------


def _percentile(node: Any, ctx: _Rewriter) -> Any:
    quantile = node.args.get("quantile")
    if (_t(quantile) or "").startswith("array<"):
        quantile = _fill("CAST(_q AS DOUBLE[])", _q=quantile)
    return _fn("quantile_cont", _cast(node.this, "double"), quantile)


def _median(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    return _fn("quantile_cont", _cast(node.this, "double"), exp.Literal.number("0.5"))


def _within_group(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    inner, order = node.this, node.expression
    keys = order.expressions if order is not None else []
    if len(keys) != 1 or keys[0].args.get("desc"):
        return _refuse(f"{inner.sql_name().lower()}() WITHIN GROUP with this ORDER BY")
    name = "quantile_cont" if isinstance(inner, exp.PercentileCont) else "quantile_disc"
    return _fn(name, _cast(keys[0].this, "double"), inner.this)


def _json_scalar(node: Any, ctx: _Rewriter) -> Any:
    path = node.expression
    text = path.sql("duckdb") if path is not None else ""
    if "*" in text:
        return _refuse("get_json_object() with a wildcard path")
    return _fill(
        "CASE WHEN json_valid(_s) THEN json_extract_string(_s, _p) END", _s=node.this, _p=path
    )


def _json_array_length(node: Any, ctx: _Rewriter) -> Any:
    return _fill(
        "CASE WHEN json_valid(_s) AND json_type(_s) = 'ARRAY' "
        "THEN CAST(json_array_length(_s) AS INT) END",
        _s=node.expressions[0],
    )


def _from_json(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    schema = node.expression
    if not (isinstance(schema, exp.Literal) and schema.is_string) or node.args.get("options"):
        return _refuse("from_json() with a schema that is not a DDL literal, or options")
    ddl = schema.this.strip()
    wrapped = ddl if re.match(r"^(ARRAY|MAP|STRUCT)\s*<", ddl, re.I) else f"STRUCT<{ddl}>"
    try:
        datatype = exp.DataType.build(wrapped, dialect="databricks")
    except SqlglotError:
        return _refuse("from_json() with this schema")
    structure = json.dumps(_json_structure(datatype)).replace("'", "''")
    if datatype.this == exp.DataType.Type.STRUCT:  # malformed JSON: a struct of NULLs
        out = _fill(
            f"CASE WHEN _s IS NULL THEN NULL WHEN json_valid(_s) "
            f"THEN json_transform(_s, '{structure}') "
            f"ELSE json_transform('{{}}', '{structure}') END",
            _s=node.this,
        )
        out.meta["spark"] = _simple(datatype)
        return out
    out = _fill(
        f"CASE WHEN json_valid(_s) THEN json_transform(_s, '{structure}') END", _s=node.this
    )
    out.meta["spark"] = _simple(datatype)
    return out


def _json_structure(datatype: Any) -> Any:
    from sqlglot import exp

    if datatype.this == exp.DataType.Type.STRUCT:
        return {f.name: _json_structure(f.args["kind"]) for f in datatype.expressions}
    if datatype.this == exp.DataType.Type.ARRAY:
        return [_json_structure(datatype.expressions[0])]
    return datatype.sql("duckdb")


_JSON_SCALARS = ("string", "boolean", "date", *_INTEGRAL)


def _to_json(node: Any, ctx: _Rewriter) -> Any:
    """to_json as Spark writes it: NULL fields left out, DECIMAL with its scale (1.50)."""
    spark = _t(node.this) or ""
    if spark.startswith("array<") and spark[6:-1] in _JSON_SCALARS[:2] + tuple(_INTEGRAL):
        return None  # DuckDB writes these arrays the same way
    if not spark.startswith("struct<"):
        return _refuse(f"to_json() of {spark or 'a value of unknown type'}")
    entries, parts = [], {"_v": node.this}
    for i, (name, kind) in enumerate(_struct_fields(spark)):
        field = _fn("struct_extract", node.this, _lit(name))
        if kind == "string":
            text = _fill("CAST(to_json(_f) AS VARCHAR)", _f=field)
        elif kind == "date":
            text = _fill("'\"' || CAST(_f AS VARCHAR) || '\"'", _f=field)
        elif kind in _JSON_SCALARS or _is_decimal(kind):
            text = _cast(field, "string")
        else:
            return _refuse(f"to_json() of a struct with a {kind} field")
        key = json.dumps(name).replace("'", "''")
        parts[f"_e{i}"] = _fill(f"'{key}:' || _t", _t=text)
        entries.append(f"_e{i}")
    listed = ", ".join(entries)
    return _fill(
        f"CASE WHEN _v IS NULL THEN NULL ELSE "
        f"'{{' || array_to_string(list_filter([{listed}], lambda _j: _j IS NOT NULL), ',') "
        "|| '}' END",
        **parts,
    )


def _quantified(node: Any, ctx: _Rewriter) -> Any:
    """``x > ALL (SELECT ...)``: Spark has no quantified subqueries (``LIKE ANY`` it has)."""
    from sqlglot import exp

    if isinstance(node.this, (exp.Select, exp.Subquery, exp.SetOperation)):
        return _refuse(f"{node.key.upper()} (subquery)")
    return None


def _time_part(node: Any, ctx: _Rewriter) -> Any:
    """hour('2025-02-03 14:32:00'): Spark reads a string as a TIMESTAMP first."""
    if _t(node.this) == "string":
        node.set("this", _cast(node.this, "timestamp"))
    return _retype_value(node, ctx)


def _every(node: Any, ctx: _Rewriter) -> Any:
    return _fn("bool_and", *node.expressions)


def _some(node: Any, ctx: _Rewriter) -> Any:
    return _fn("bool_or", *node.expressions)


def _is_null(node: Any, ctx: _Rewriter) -> Any:
    return _fill("(_v IS NULL)", _v=node.expressions[0])


def _is_not_null(node: Any, ctx: _Rewriter) -> Any:
    return _fill("(_v IS NOT NULL)", _v=node.expressions[0])


def _nanvl(node: Any, ctx: _Rewriter) -> Any:
    return _fill("CASE WHEN isnan(_a) THEN _b ELSE _a END", _a=node.this, _b=node.expression)


def _zero_if_null(node: Any, ctx: _Rewriter) -> Any:
    return _fn("coalesce", node.expressions[0], _lit(0))


def _null_if_zero(node: Any, ctx: _Rewriter) -> Any:
    return _fn("nullif", node.expressions[0], _lit(0))


def _uuid(node: Any, ctx: _Rewriter) -> Any:
    return _fill("CAST(uuid() AS VARCHAR)")


def _explode(node: Any, ctx: _Rewriter) -> Any:
    if (_t(node.this) or "").startswith("map<") and not _projected(ctx.parent):
        return _refuse("explode() of a map outside the SELECT list")
    return None


def _generator(construct: str) -> Rule:
    """Generators expand into columns of the SELECT list (`_expand_generators`)."""

    def rule(node: Any, ctx: _Rewriter) -> Any:
        if not _projected(ctx.parent):
            return _refuse(f"{construct} outside the SELECT list")
        return None

    return rule


def _projected(parent: Any) -> bool:
    from sqlglot import exp

    if isinstance(parent, (exp.Alias, exp.Aliases)):
        parent = parent.parent
    return isinstance(parent, exp.Select)


def _expand_generators(select: Any) -> None:
    """``posexplode(a) AS (pos, val)``, ``explode(map)``, ``json_tuple``, ``inline`` as
    parallel UNNEST columns, which DuckDB zips row by row as Spark's generators do."""
    from sqlglot import exp

    items, changed = [], False
    for item in select.expressions:
        names: list[str] = []
        inner = item
        if isinstance(item, exp.Aliases):
            names, inner = [i.name for i in item.expressions], item.this
        elif isinstance(item, exp.Alias):
            names, inner = [item.alias], item.this
        columns = _generator_columns(inner, names)
        if columns is None:
            items.append(item)
            continue
        items.extend(exp.alias_(value, name, quoted=False) for name, value in columns)
        changed = True
    if changed:
        select.set("expressions", items)


def _generator_columns(node: Any, names: list[str]) -> list[tuple[str, Any]] | None:
    from sqlglot import exp

    if isinstance(node, exp.Posexplode):
        index = _fill("CAST(generate_subscripts(_a, 1) - 1 AS INT)", _a=node.this)
        values = [index, _fn("unnest", node.this)]
        return _named(names, ["pos", "col"], values, "posexplode()")
    if isinstance(node, exp.Explode) and (_t(node.this) or "").startswith("map<"):
        values = [_fill(f"unnest(map_{part}(_m))", _m=node.this) for part in ("keys", "values")]
        return _named(names, ["key", "value"], values, "explode(map)")
    if isinstance(node, exp.Anonymous) and node.name.lower() == "json_tuple":
        text, *keys = node.expressions
        if not all(isinstance(k, exp.Literal) and k.is_string for k in keys):
            return _refuse("json_tuple() with field names that are not literals")
        values = [
            _fill(
                "CASE WHEN json_valid(_s) THEN json_extract_string(_s, _p) END",
                _s=text,
                _p=_lit("$." + json.dumps(k.this)),
            )
            for k in keys
        ]
        return _named(names, [f"c{i}" for i in range(len(keys))], values, "json_tuple()")
    if isinstance(node, exp.Inline):
        spark = _t(node.this) or ""
        fields = re.findall(r"([^<>,:]+):", spark[len("array<struct<") :]) if spark else []
        if not spark.startswith("array<struct<") or not fields:
            return _refuse("inline() of a value whose type is not known locally")
        values = [_fn("struct_extract", _fn("unnest", node.this), _lit(field)) for field in fields]
        return _named(names, fields, values, "inline()")
    return None


def _named(
    names: list[str], default: list[str], values: list[Any], construct: str
) -> list[tuple[str, Any]]:
    if names and len(names) != len(values):
        return _refuse(f"{construct} with {len(names)} aliases for {len(values)} columns")
    return list(zip(names or default, values, strict=True))


def _lateral(node: Any, ctx: _Rewriter) -> Any:
    from sqlglot import exp

    if node.args.get("outer") and not isinstance(node.this, exp.Explode):
        return _refuse(f"LATERAL VIEW OUTER {node.this.sql_name().lower()}()")
    return None


def _outer_laterals(select: Any) -> None:
    """``LATERAL VIEW OUTER explode(a) t AS x`` as ``LEFT JOIN UNNEST(a) AS t(x) ON TRUE``:
    a row whose array is empty or NULL stays, with x NULL, as in Spark."""
    from sqlglot import exp

    laterals = list(select.args.get("laterals") or [])
    if not any(lateral.args.get("outer") for lateral in laterals):
        return
    joins, kept = list(select.args.get("joins") or []), []
    for lateral in laterals:
        if not lateral.args.get("outer"):
            kept.append(lateral)
            continue
        if kept:
            _refuse("LATERAL VIEW OUTER after another LATERAL VIEW")
        alias = lateral.args.get("alias")
        unnest = exp.Unnest(expressions=[lateral.this.this.copy()], alias=alias.copy())
        joins.append(exp.Join(this=unnest, side="LEFT", on=exp.true()))
    select.set("joins", joins)
    select.set("laterals", kept or None)


def _decimal_literal(node: Any, ctx: _Rewriter) -> Any:
    """DuckDB types ``0.125`` as DECIMAL(4,3); Spark as DECIMAL(3,3)."""
    spark = node.meta.get("spark")
    if not _is_decimal(spark) or not node.this.lstrip("-").startswith("0."):
        return None
    from sqlglot import exp

    if isinstance(ctx.parent, (exp.Quantile, exp.PercentileCont, exp.PercentileDisc, exp.Array)):
        return None  # constants DuckDB wants as they are
    return _cast(node, spark)


def _refusing(construct: str) -> Rule:
    return lambda node, ctx: _refuse(construct)


@lru_cache(maxsize=1)  # built on first use, as _build_tables
def _build_rules() -> tuple[dict[Any, Rule], dict[str, Rule]]:
    from sqlglot import exp

    rules: dict[Any, Rule] = {
        exp.Add: _arith,
        exp.Sub: _arith,
        exp.Mul: _arith,
        exp.Mod: _arith,
        exp.Div: _div,
        exp.IntDiv: _int_div,
        exp.Cast: _cast_rule,
        exp.TryCast: _cast_rule,
        exp.DataType: _data_type,
        exp.ArraySort: _array_sort,
        exp.JSONFormat: _to_json,
        exp.All: _quantified,
        exp.Any: _quantified,
        exp.Hour: _time_part,
        exp.Minute: _time_part,
        exp.Second: _time_part,
        exp.RegexpReplace: _regexp_replace,
        exp.RegexpSplit: _split,
        exp.Pad: _pad,
        exp.Neg: _negate,
        exp.Ln: _logarithm,
        exp.Log: _logarithm,
        exp.Upper: _upper,
        exp.Lower: _lower,
        exp.ApproxQuantile: _refusing("approx_percentile()"),
        exp.Kurtosis: _refusing("kurtosis() (DuckDB corrects for sample bias, Spark does not)"),
        exp.Skewness: _refusing("skewness() (DuckDB corrects for sample bias, Spark does not)"),
        exp.Union: _set_operation,
        exp.Intersect: _set_operation,
        exp.Except: _set_operation,
        exp.In: _in_list,
        exp.Between: _in_list,
        exp.Typeof: _typeof,
        exp.Sum: _sum,
        exp.Count: _retype_value,
        exp.CountIf: _retype_value,
        exp.Avg: _avg,
        exp.Window: _window,
        exp.Filter: _filter,
        exp.Min: _retype_value,
        exp.Max: _retype_value,
        exp.Year: _retype_value,
        exp.Month: _retype_value,
        exp.Day: _retype_value,
        exp.DayOfMonth: _retype_value,
        exp.DayOfYear: _retype_value,
        exp.Quarter: _retype_value,
        exp.WeekOfYear: _retype_value,
        exp.Length: _retype_value,
        exp.StrPosition: _retype_value,
        exp.Levenshtein: _retype_value,
        exp.Grouping: _retype_value,
        exp.Sign: _retype_value,
        exp.Coalesce: _retype_value,
        exp.Greatest: _retype_value,
        exp.Least: _retype_value,
        exp.Case: _retype_value,
        exp.If: _if,
        exp.Nullif: _retype_value,
        exp.BitwiseCount: _retype_value,
        exp.Round: _round,
        exp.Floor: _round,
        exp.Ceil: _round,
        exp.DayOfWeek: _day_of_week,
        exp.Extract: _extract,
        exp.DateDiff: _date_diff,
        exp.TimestampDiff: _date_diff,
        exp.MonthsBetween: _months_between,
        exp.AddMonths: _add_months,
        exp.TsOrDsAdd: _ts_or_ds_add,
        exp.LastDay: _last_day,
        exp.NextDay: _next_day,
        exp.AtTimeZone: _from_utc,
        exp.FromTimeZone: _to_utc,
        exp.StrToTime: _utc,
        exp.TimestampFromParts: _utc,
        exp.TimestampAdd: _timestamp_add,
        exp.StrToUnix: _unix_timestamp,
        exp.GenerateSeries: _sequence,
        exp.Substring: _substring,
        exp.SubstringIndex: _substring_index,
        exp.Concat: _concat,
        exp.DPipe: _concat,
        exp.Like: _like,
        exp.ILike: _like,
        exp.WidthBucket: _width_bucket,
        exp.SafeAdd: _try_arith("+"),
        exp.SafeSubtract: _try_arith("-"),
        exp.SafeMultiply: _try_arith("*"),
        exp.ArrayDistinct: _array_distinct,
        exp.ArrayIntersect: _array_set_op("intersect"),
        exp.ArrayExcept: _array_set_op("except"),
        exp.Bracket: _bracket,
        exp.ArraySize: _size,
        exp.ArrayContains: _array_contains,
        exp.ArrayPosition: _array_position,
        exp.Transform: _transform,
        exp.Exists: _exists_hof,
        exp.Reduce: _reduce,
        exp.MapContainsKey: _map_contains_key,
        exp.Quantile: _percentile,
        exp.Median: _median,
        exp.WithinGroup: _within_group,
        exp.JSONExtractScalar: _json_scalar,
        exp.FromJson: _from_json,
        exp.Uuid: _uuid,
        exp.ApproxDistinct: _refusing("approx_count_distinct()"),
        exp.ArraysZip: _arrays_zip,
        exp.Inline: _generator("inline()"),
        exp.Posexplode: _generator("posexplode()"),
        exp.StrToMap: _str_to_map,
        exp.Soundex: _refusing("soundex()"),
        exp.Nanvl: _nanvl,
        exp.Explode: _explode,
        exp.Lateral: _lateral,
        exp.Literal: _decimal_literal,
    }
    anon: dict[str, Rule] = {
        "pmod": _pmod,
        "bround": _bround,
        "format_number": _format_number,
        "crc32": _crc32,
        "weekday": _weekday,
        "trunc": _trunc_date,
        "date_trunc": _trunc_ts,
        "date_part": _date_part,
        "cardinality": _size,
        "timestamp_seconds": _timestamp_seconds,
        "octet_length": _octet_length,
        "format_string": _format_string,
        "date_format": _date_format,
        "get": _get,
        "array_union": _array_set_op("union"),
        "array_repeat": _array_repeat,
        "forall": _forall,
        "zip_with": _zip_with,
        "map_filter": _map_filter,
        "every": _every,
        "some": _some,
        "isnull": _is_null,
        "isnotnull": _is_not_null,
        "bit_count": _retype_value,
        "json_array_length": _json_array_length,
        "zeroifnull": _zero_if_null,
        "nullifzero": _null_if_zero,
        "json_tuple": _generator("json_tuple()"),
        "schema_of_json": _refusing("schema_of_json()"),
        "conv": _refusing("conv()"),
        "percentile_with_frequency": _refusing("percentile(x, p, frequency)"),
        "str_to_map": _refusing("str_to_map()"),
        "soundex": _refusing("soundex()"),
    }
    return rules, anon
