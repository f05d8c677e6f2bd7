"""The local backend: DuckDB in memory, fixtures loaded as real, typed tables.

The database is a sandbox: once the fixtures are loaded, external access (files, the
network, extensions) is switched off and the configuration locked, so no statement can
read ``/etc/passwd``, ``COPY`` a table out, ``ATTACH`` a file or turn the switch back on;
``ATTACH``, ``DETACH``, ``USE`` and ``SET`` are refused before they reach the engine
(DuckDB's lock does not cover the first three). DuckDB still lets an attached results
file's own bytes be read (``read_blob``): nothing a client cannot already query.

A results file (flags, the audit trail) can be attached to the same engine before it
opens (`LocalBackend.attach`), the way Databricks keeps the flags table in the catalog
that holds the gold tables: one statement then reads the fixtures and writes the file,
``INSERT INTO results.main.flags SELECT ... FROM gold.recent_transactions``, and no row
leaves the engine. The attached file is also served as a backend of its own
(`AttachedBackend`), whose connections see its tables by their bare names.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from audit_core._logging import get_logger
from audit_core._sqlcache import lookup
from audit_core.errors import ConfigError, QueryError, ReadOnlyViolationError
from audit_core.fixtures import default_dir, load_manifest, load_tables
from audit_core.warehouse._sql import (
    Prepared,
    Schema,
    check_params,
    param_types,
    schema_of,
    tables_in,
    to_duckdb,
)

_log = get_logger("audit_core.warehouse")
_MISSING_TABLE = re.compile(r"Table with name (\S+?) does not exist", re.I)
# Statements that cannot change a table's columns: the schema cache outlives them.
_KEEPS_SCHEMA = frozenset(
    {
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "WITH",
        "VALUES",
        "FROM",
        "TABLE",
        "DESCRIBE",
        "SHOW",
        "EXPLAIN",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
    }
)
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.S)


def keeps_schema(sql: str, kinds: frozenset[str] | None = None) -> bool:
    """Whether ``sql`` certainly leaves every table's columns as they are: its first
    keyword is a query's or DML's, and, given DuckDB's ``kinds`` of its statements, every
    one of them is (a script may end in DDL); anything else might be DDL."""
    rest = sql[_LEADING.match(sql).end() :]  # type: ignore[union-attr]
    word = re.match(r"[A-Za-z]+", rest)
    if word is None or word.group(0).upper() not in _KEEPS_SCHEMA:
        return False
    return kinds is None or kinds <= _KEEPING_KINDS


# Applied once the fixtures are loaded (they are files); the lock comes last and also
# locks itself. The time zone is set first: a naive fixture timestamp is UTC, and so is
# a naive literal in a query, on every worker's cursor whatever the machine's zone.
def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


SANDBOX = ("SET enable_external_access = false", "SET lock_configuration = true")


def _as_written(sql: str, name: str) -> str:
    """The table as the SQL named it (``gold.nope``), given DuckDB's bare ``nope``."""
    import sqlglot
    from sqlglot import exp

    try:
        for table in sqlglot.parse_one(sql, read="databricks").find_all(exp.Table):
            if table.name == name:
                return ".".join(p for p in (table.catalog, table.db, table.name) if p)
    except sqlglot.errors.SqlglotError:
        pass
    return name


@dataclass(frozen=True, slots=True)
class BulkInsert:
    """``INSERT INTO t (cols) VALUES (:a, :b, ...)`` rewritten to read rows from a view."""

    sql: str  # DuckDB text with ``{view}`` where the rows' relation goes
    params: tuple[str, ...]


@lru_cache(maxsize=256)
def bulk_insert_plan(sql: str) -> BulkInsert | None:
    """A set-based plan for a one-row, all-parameter INSERT; None for anything else."""
    return lookup(
        "bulk_insert",
        (sql,),
        lambda: _bulk_insert_plan(sql),
        lambda plan: None if plan is None else [plan.sql, list(plan.params)],
        lambda v: None if v is None else BulkInsert(str(v[0]), tuple(str(n) for n in v[1])),
    )


def _bulk_insert_plan(sql: str) -> BulkInsert | None:
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


class LocalBackend:
    """Runs Databricks-dialect SQL on one in-memory DuckDB database.

    The database is built once, on first use, from a fixtures folder; each worker thread
    gets its own connection to it (``cursor()``), as DuckDB requires.
    """

    name = "local"

    def __init__(
        self,
        fixtures_dir: Path | None = None,
        *,
        database: str = ":memory:",
        load_fixtures: bool = True,
    ) -> None:
        # None for a database that holds no fixtures (flags and the audit trail, say).
        self.fixtures_dir: Path | None = None
        if load_fixtures:
            self.fixtures_dir = Path(fixtures_dir) if fixtures_dir is not None else default_dir()
            if not self.fixtures_dir.is_dir():
                raise ConfigError(f"fixtures folder {self.fixtures_dir} does not exist")
        self.database = database
        self._db: Any = None
        self._init_lock = threading.Lock()
        self.tables: dict[str, int] = {}
        self._attached: dict[str, str] = {}  # alias -> DuckDB file, attached on open
        self._users = 1  # this backend and every AttachedBackend on it
        # Column types of the tables statements read, per catalog; dropped whenever a
        # statement that might be DDL runs on any catalog of the engine.
        self._schemas: dict[tuple[str, frozenset[str]], Schema] = {}
        self._schema_generation = 0
        self._schema_lock = threading.Lock()

    def attach(self, database: str | Path, alias: str) -> AttachedBackend:
        """``database`` (a DuckDB file, made if missing) attached to this engine as
        ``alias`` when it opens; the returned backend runs statements on that file.

        Only before the engine opens (the sandbox then locks ``ATTACH`` away); the engine
        closes when this backend and every attached one have shut down.
        """
        if not alias.isidentifier() or alias.lower() in ("memory", "main", "temp", "system"):
            raise ConfigError(f"cannot attach a database as {alias!r}: not a free identifier")
        path = Path(database).expanduser()
        with self._init_lock:
            if self._db is not None:
                raise ConfigError(
                    f"attach {path} before the local warehouse runs its first statement"
                )
            if alias in self._attached:
                raise ConfigError(f"a database is already attached as {alias!r}")
            self._attached[alias] = str(path)
            self._users += 1
        return AttachedBackend(self, alias, str(path))

    # connections (called on worker threads) ------------------------------------------

    def _base(self) -> Any:
        with self._init_lock:
            if self._db is None:
                import duckdb

                if self.database != ":memory:":
                    Path(self.database).parent.mkdir(parents=True, exist_ok=True)
                try:
                    db = duckdb.connect(self.database)
                except duckdb.Error as exc:
                    raise ConfigError(
                        f"cannot open DuckDB database {self.database}: {exc}"
                    ) from None
                try:
                    db.execute("SET GLOBAL TimeZone = 'UTC'")  # every cursor, not this one
                    if self.fixtures_dir is not None:
                        self._load(db, self.fixtures_dir)
                        # Parquet fixtures are views read in place: the sandbox lets the
                        # engine read that one folder, and nothing else.
                        folder = _sql_literal(str(self.fixtures_dir.resolve()) + "/")
                        db.execute(f"SET allowed_directories = [{folder}]")
                    for alias, path in self._attached.items():
                        Path(path).parent.mkdir(parents=True, exist_ok=True)
                        try:
                            db.execute(f"ATTACH {_sql_literal(path)} AS {alias}")
                        except duckdb.Error as exc:
                            raise ConfigError(
                                f"cannot open DuckDB database {path}: {exc}"
                            ) from None
                    for statement in SANDBOX:
                        db.execute(statement)
                except BaseException:
                    db.close()
                    raise
                self._db = db
            return self._db

    def connect(self) -> Any:
        return self._base().cursor()

    def _load(self, db: Any, directory: Path) -> None:
        self.tables = load_tables(db, directory)
        if not self.tables:
            raise ConfigError(
                f"no fixture files in {directory}; expected e.g. "
                + ", ".join(f"{s.file}.json" for s in load_manifest(directory).values())
            )
        _log.info("audit_core.warehouse.fixtures_loaded", path=str(directory), tables=self.tables)

    # statements (called on worker threads) -------------------------------------------

    def prepare(
        self, conn: Any, sql: str, params: dict[str, Any] | None, catalog: str = ""
    ) -> Prepared:
        """`audit_core.warehouse._sql.prepare`, with the tables' column types cached."""
        tables = tables_in(sql)
        schema = None
        if tables:
            key = (catalog, tables)
            with self._schema_lock:
                generation = self._schema_generation
                schema = self._schemas.get(key)
            if schema is None:
                schema = schema_of(conn, tables)
                with self._schema_lock:
                    if generation == self._schema_generation:
                        self._schemas[key] = schema
        return to_duckdb(sql, schema, param_types(params))

    def _schema_may_change(self, sql: str, kinds: frozenset[str] | None) -> None:
        if not keeps_schema(sql, kinds):
            with self._schema_lock:
                self._schema_generation += 1
                self._schemas.clear()

    def run(
        self,
        conn: Any,
        sql: str,
        params: dict[str, Any] | None,
        want: str,
        native: bool = False,
        catalog: str = "",
    ) -> Any:
        counts = False  # native SQL is the package's own DDL: no count to report
        if native:  # already DuckDB SQL: run as written
            text = sql
        else:
            prepared = self.prepare(conn, sql, params, catalog)
            check_params(sql, prepared.params, params)
            text, counts = prepared.sql, prepared.counts
        bound = dict(params) if params else None
        kinds = _refuse_fixed(conn, text, sql, reading=want != "none")
        if want != "arrow":
            self._schema_may_change(text, kinds)
        try:
            if want == "none":
                conn.execute(text, bound)
                return _affected(conn) if counts else None
            relation = conn.sql(text, params=bound)
            if relation is None:  # a statement without a result (DDL/DML) ran already
                return None
            return relation.to_arrow_table()
        except Exception as exc:
            raise self.map_error(exc, sql, conn, reading=want != "none") from None

    def run_many(self, conn: Any, sql: str, rows: list[dict[str, Any]]) -> None:
        """All rows in one transaction. A plain ``INSERT ... VALUES (:a, :b)`` goes in as
        one set-based INSERT from an Arrow table (about 10x DuckDB's executemany)."""
        prepared = to_duckdb(sql)
        for row in rows:
            check_params(sql, prepared.params, row)
        kinds = _refuse_fixed(conn, prepared.sql, sql, reading=False)
        self._schema_may_change(prepared.sql, kinds)
        plan = bulk_insert_plan(sql) if len(rows) > 1 else None
        table = None
        if plan is not None:
            import pyarrow as pa

            try:
                table = pa.table({name: [row[name] for row in rows] for name in plan.params})
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                table = None  # mixed Python types in a column: row by row instead
        if plan is not None and table is not None:
            self._insert_view(conn, sql, table, plan.sql)
            return
        try:
            conn.execute("BEGIN")
            conn.executemany(prepared.sql, rows)
            conn.execute("COMMIT")
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise self.map_error(exc, sql, conn) from None

    def insert_arrow(self, conn: Any, table: str, data: Any) -> None:
        """All of ``data`` (an Arrow table) into ``table`` by column name, in one
        set-based INSERT: no Python object per row."""
        target = ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))
        sql = f"INSERT INTO {target} BY NAME SELECT * FROM {{view}}"
        self._insert_view(conn, f"INSERT INTO {table}", data, sql)

    def _insert_view(self, conn: Any, sql: str, data: Any, insert: str) -> None:
        """``insert`` (with ``{view}``) from ``data`` registered as a view, in one
        transaction. The view is dropped after the rollback, so a failed insert reports
        its own error (a key violation, say), not the aborted transaction's."""
        view = f"_audit_rows_{threading.get_ident()}"
        conn.register(view, data)
        try:
            conn.execute("BEGIN")
            conn.execute(insert.format(view=view))
            conn.execute("COMMIT")
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise self.map_error(exc, sql, conn) from None
        finally:
            conn.unregister(view)

    def cancel(self, conn: Any) -> None:
        conn.interrupt()

    def close(self, conn: Any) -> None:
        conn.close()

    def shutdown(self) -> None:
        with self._init_lock:
            self._users -= 1
            if self._users <= 0 and self._db is not None:
                self._db.close()
                self._db = None

    # errors --------------------------------------------------------------------------

    def map_error(self, exc: Exception, sql: str, conn: Any, *, reading: bool = False) -> Exception:
        import duckdb

        if isinstance(exc, QueryError):
            return exc
        if isinstance(exc, duckdb.InterruptException):
            return QueryError("query was cancelled", sql=sql)
        if isinstance(exc, duckdb.PermissionException):
            message = "file, network and extension access are disabled on the local warehouse"
            if reading:
                return ReadOnlyViolationError(f"query() refused it: {message}", sql=sql)
            return QueryError(message, sql=sql)
        message = str(exc).split("\n", 1)[0]
        found = _MISSING_TABLE.search(str(exc))
        if isinstance(exc, duckdb.CatalogException) and found:
            known = ", ".join(self.known_tables(conn))
            name = _as_written(sql, found.group(1))
            return QueryError(f"unknown table {name}; known tables: {known}", sql=sql)
        if isinstance(exc, duckdb.Error):
            return QueryError(f"{type(exc).__name__}: {message}", sql=sql)
        return exc

    @staticmethod
    def known_tables(conn: Any) -> list[str]:
        rows = conn.execute(
            "SELECT CASE WHEN table_schema = 'main' THEN table_name "
            "ELSE table_schema || '.' || table_name END FROM information_schema.tables "
            "WHERE table_catalog = current_database() ORDER BY 1"
        ).fetchall()
        return [r[0] for r in rows]


# The engine's databases and settings are fixed once it opens: no statement may attach,
# detach, switch (``USE``) or set. DuckDB's own lock covers ``SET``, not these.
_FIXED = frozenset({"StatementType.ATTACH", "StatementType.DETACH", "StatementType.SET"})
_KINDS_SEEN: dict[str, frozenset[str]] = {}


# Statement kinds that leave every table's columns as they are.
_KEEPING_KINDS = frozenset(
    f"StatementType.{kind}"
    for kind in ("SELECT", "INSERT", "UPDATE", "DELETE", "MERGE_INTO", "EXPLAIN", "TRANSACTION")
)


def _refuse_fixed(conn: Any, text: str, sql: str, *, reading: bool) -> frozenset[str] | None:
    """DuckDB's kinds of the statements in ``text`` (None when it cannot parse them:
    running it reports why), after refusing any that would change the engine's
    databases or settings."""
    kinds = _KINDS_SEEN.get(text)
    if kinds is None:
        try:
            kinds = frozenset(str(s.type) for s in conn.extract_statements(text))
        except Exception:
            return None
        if len(_KINDS_SEEN) < 4096:
            _KINDS_SEEN[text] = kinds
    if kinds & _FIXED:
        message = (
            "the local warehouse's databases and settings are fixed: ATTACH, DETACH, USE "
            "and SET are refused"
        )
        if reading:
            raise ReadOnlyViolationError(f"query() refused it: {message}", sql=sql)
        raise QueryError(message, sql=sql)
    return kinds


def _affected(conn: Any) -> int | None:
    """The row count DuckDB answers a DML statement with (one BIGINT column named
    ``Count``); None after anything else."""
    described = conn.description
    if not described or len(described) != 1 or described[0][0] != "Count":
        return None
    try:
        row = conn.fetchone()
    except Exception:
        return None
    if row is not None and type(row[0]) is int:
        return row[0]
    return None


class AttachedBackend:
    """A DuckDB file attached to a `LocalBackend`'s engine, run as a backend of its own:
    its connections are the engine's, with the file as their default catalog."""

    name = "local"
    fixtures_dir: Path | None = None

    def __init__(self, engine: LocalBackend, alias: str, database: str) -> None:
        self.engine = engine
        self.alias = alias
        self.database = database

    def connect(self) -> Any:
        conn = self.engine.connect()
        conn.execute(f"USE {self.alias}")
        return conn

    def run(
        self, conn: Any, sql: str, params: dict[str, Any] | None, want: str, native: bool = False
    ) -> Any:
        return self.engine.run(conn, sql, params, want, native, catalog=self.alias)

    def run_many(self, conn: Any, sql: str, rows: list[dict[str, Any]]) -> None:
        self.engine.run_many(conn, sql, rows)

    def insert_arrow(self, conn: Any, table: str, data: Any) -> None:
        self.engine.insert_arrow(conn, table, data)

    def cancel(self, conn: Any) -> None:
        conn.interrupt()

    def close(self, conn: Any) -> None:
        conn.close()

    def shutdown(self) -> None:
        self.engine.shutdown()
