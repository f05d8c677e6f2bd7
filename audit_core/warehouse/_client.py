"""`DatabricksClient`: one async facade over the Databricks and local DuckDB backends.

Every blocking DB-API call runs on the client's own bounded thread pool (never the
loop's default executor), with one connection per worker thread, made lazily and
reused. Cancelling the awaiting task, or ``timeout_s`` running out, cancels the running
statement (``cursor.cancel()`` / DuckDB ``interrupt()``) and waits briefly for the worker
thread to come free before the cancellation propagates.

Whether a statement reads or writes is decided from its sqlglot syntax tree
(`statement_kind`): ``query()`` runs only a read, and only a read is re-sent after a
transport failure (a write only when it never left).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict, Unpack

from audit_core._lifecycle import AsyncLifecycle
from audit_core._logging import get_logger
from audit_core._settings import resolve_settings
from audit_core._sqlcache import MISSING, lookup
from audit_core.errors import (
    AuditCoreError,
    ClientClosedError,
    ConfigError,
    DatabricksConnectionError,
    QueryError,
    QueryTimeoutError,
    ReadOnlyViolationError,
    WarehouseError,
)
from audit_core.metrics import get_metrics
from audit_core.retry import RetryPolicy, Transient

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from prometheus_client import CollectorRegistry

    from audit_core._settings import Settings

_log = get_logger("audit_core.warehouse")
DEFAULT_MAX_WORKERS = 4
DEFAULT_CANCEL_GRACE_S = 5.0
DEFAULT_RETRY_ATTEMPTS = 3
DEFAULT_RETRY_DEADLINE_S = 120.0
DEFAULT_LAST_AUDIT = datetime(2025, 1, 1, tzinfo=UTC)
LAST_AUDIT_SQL = (
    "SELECT max(completed_at) AS last_completed FROM {table} WHERE workflow_status = 'completed'"
)


class Backend(Protocol):
    name: str

    def connect(self) -> Any: ...
    def run(
        self, conn: Any, sql: str, params: dict[str, Any] | None, want: str, native: bool = False
    ) -> Any: ...
    def run_many(self, conn: Any, sql: str, rows: list[dict[str, Any]]) -> None: ...
    def cancel(self, conn: Any) -> None: ...
    def close(self, conn: Any) -> None: ...
    def shutdown(self) -> None: ...


class ClientOptions(TypedDict, total=False):
    """The keywords every `DatabricksClient` constructor passes on to ``__init__``."""

    max_workers: int
    timeout_s: float | None
    cancel_grace_s: float
    retry_policy: RetryPolicy | None
    registry: CollectorRegistry | None
    state_table: str


class _Ticket:
    """One statement in flight: lets the loop's thread cancel it on the worker's connection."""

    __slots__ = ("cancelled", "conn", "lock")

    def __init__(self) -> None:
        self.conn: Any = None
        self.cancelled = False
        self.lock = threading.Lock()


class DatabricksClient(AsyncLifecycle):
    """Async gold-table queries on Databricks (production) or DuckDB over fixtures (local).

    Build one with `local`, `databricks` or `from_settings`; use it inside ``async with``
    (or call `aclose`): it owns a thread pool and a connection per worker thread.
    """

    _owns_resources = True

    def __init__(
        self,
        backend: Backend,
        *,
        max_workers: int = DEFAULT_MAX_WORKERS,
        timeout_s: float | None = None,
        cancel_grace_s: float = DEFAULT_CANCEL_GRACE_S,
        retry_policy: RetryPolicy | None = None,
        registry: CollectorRegistry | None = None,
        state_table: str = "workflow_state",
    ) -> None:
        if max_workers < 1:
            raise ConfigError(f"max_workers must be at least 1, got {max_workers}")
        self._backend = backend
        self.timeout_s = timeout_s
        self.cancel_grace_s = cancel_grace_s
        self.state_table = state_table
        self._policy = retry_policy or RetryPolicy(
            attempts=DEFAULT_RETRY_ATTEMPTS, timeout_s=DEFAULT_RETRY_DEADLINE_S
        )
        self._metrics = get_metrics(registry)
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="audit-warehouse")
        self._local = threading.local()
        self._conns: list[Any] = []
        self._conns_lock = threading.Lock()
        self._in_flight = 0
        self._queries = self._metrics.warehouse_queries
        self._seconds = self._metrics.warehouse_seconds.labels(backend.name)
        self._rows = self._metrics.warehouse_rows.labels(backend.name)

    # construction ----------------------------------------------------------------------

    @classmethod
    def local(
        cls,
        fixtures_dir: str | Path | None = None,
        *,
        database: str | Path = ":memory:",
        load_fixtures: bool = True,
        **options: Unpack[ClientOptions],
    ) -> DatabricksClient:
        """DuckDB over ``fixtures_dir`` (default: the shipped fixtures).

        ``database`` is ``":memory:"`` or a file path; ``load_fixtures=False`` gives an
        empty database (for flags and the audit trail, say).
        """
        from audit_core.warehouse._local import LocalBackend

        path = Path(fixtures_dir).expanduser() if fixtures_dir is not None else None
        backend = LocalBackend(path, database=str(database), load_fixtures=load_fixtures)
        return cls(backend, **options)

    @classmethod
    def databricks(
        cls,
        connect: Callable[[], Any] | None = None,
        *,
        host: str | None = None,
        warehouse_id: str | None = None,
        token: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> DatabricksClient:
        """Databricks SQL, through ``connect`` (a DB-API connection factory) or the connector."""
        from audit_core.warehouse._databricks import DatabricksBackend, connector_factory

        if connect is None:
            if not (host and warehouse_id and token):
                raise ConfigError("Databricks needs host, warehouse_id and token")
            connect = connector_factory(host, warehouse_id, token)
        return cls(DatabricksBackend(connect, host=host or "<injected>"), **options)

    def attach(
        self, database: str | Path, *, alias: str = "results", **options: Unpack[ClientOptions]
    ) -> DatabricksClient:
        """A client on the DuckDB file ``database``, run by this local client's engine.

        Locally this is what a Databricks catalog gives for free: the flags table beside
        the gold tables. A statement on this client can read the fixtures and write the
        file in one go (name the file's tables ``alias.main.table``; see `table_name_in`),
        so findings never leave the engine. The returned client sees the file's tables by
        their bare names. Call it before the first statement; close both clients (the
        engine closes with the last).
        """
        from audit_core.warehouse._local import LocalBackend

        if not isinstance(self._backend, LocalBackend):
            raise ConfigError(
                f"attach() needs the local warehouse; this client is {self.backend!r}"
            )
        if self.closed:
            raise ClientClosedError(f"this {type(self).__name__} is closed; create a new one")
        return type(self)(self._backend.attach(database, alias), **options)

    def table_name_in(self, other: DatabricksClient, table: str) -> str | None:
        """How a statement on this client names ``other``'s ``table``: ``table`` itself
        when both are one client, ``alias.main.table`` when ``other`` was attached to
        this client's engine (`attach`), None when they run on different engines."""
        if other is self:
            return table
        from audit_core.warehouse._local import AttachedBackend

        theirs = other._backend
        if isinstance(theirs, AttachedBackend) and theirs.engine is self._backend:
            return f"{theirs.alias}.{table}" if "." in table else f"{theirs.alias}.main.{table}"
        return None

    @classmethod
    def spark(
        cls,
        remote: str | None = None,
        *,
        fixtures_dir: str | Path | None = None,
        load_fixtures: bool | None = None,
        **options: Unpack[ClientOptions],
    ) -> DatabricksClient:
        """Apache Spark, Databricks' own engine: exact Databricks SQL semantics.

        ``remote=None`` runs Spark in-process (needs the ``spark`` extra and Java) over the
        same tables as `local`; ``remote="sc://host:15002"`` uses a Spark Connect server
        and the tables it has. ``load_fixtures`` defaults to true locally, false remotely.
        """
        from audit_core.warehouse._spark import spark_backend

        path = Path(fixtures_dir).expanduser() if fixtures_dir is not None else None
        backend = spark_backend(remote, fixtures_dir=path, load_fixtures=load_fixtures)
        return cls(backend, **options)

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        connect: Callable[[], Any] | None = None,
        **options: Unpack[ClientOptions],
    ) -> DatabricksClient:
        """The warehouse ``settings`` name (default: read from the environment).

        ``AUDIT_WAREHOUSE`` (``local``, ``databricks`` or ``spark``) when set; otherwise
        Databricks in production and DuckDB in development. Databricks uses
        ``DATABRICKS_HOST`` and friends (``connect`` replaces the connector, for tests);
        DuckDB and in-process Spark read ``AUDIT_FIXTURES_DIR`` or the shipped fixtures.
        """
        settings = resolve_settings(settings)
        backend = settings.warehouse_backend
        if backend == "databricks":
            return cls.databricks(
                connect,
                host=settings.databricks_host,
                warehouse_id=settings.databricks_warehouse_id,
                token=settings.databricks_token,
                **options,
            )
        if backend == "spark":
            return cls.spark(settings.spark_remote, fixtures_dir=settings.fixtures_dir, **options)
        return cls.local(settings.fixtures_dir, **options)

    @property
    def backend(self) -> str:
        """``"databricks"``, ``"local"`` (DuckDB) or ``"spark"``."""
        return self._backend.name

    @property
    def fixtures_dir(self) -> Path | None:
        """The fixtures folder the tables were loaded from; None when none was loaded."""
        directory = getattr(self._backend, "fixtures_dir", None)  # only local backends have one
        return directory if isinstance(directory, Path) else None

    @property
    def in_flight(self) -> int:
        """Statements running on worker threads right now."""
        return self._in_flight

    def __repr__(self) -> str:
        return f"DatabricksClient(backend={self.backend!r}, closed={self.closed})"

    # lifecycle -------------------------------------------------------------------------

    async def _aclose_resources(self) -> None:
        """Close every worker connection and the pool."""
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(Exception):
                self._backend.close(conn)
        self._backend.shutdown()

    # worker-thread side ----------------------------------------------------------------

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._backend.connect()
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def _drop_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._conns_lock, contextlib.suppress(ValueError):
                self._conns.remove(conn)
            with contextlib.suppress(Exception):
                self._backend.close(conn)

    def _work(self, ticket: _Ticket, job: Callable[[Any], Any], sql: str) -> Any:
        with ticket.lock:
            if ticket.cancelled:
                raise QueryError("query was cancelled before it started", sql=sql)
        try:
            conn = self._conn()
        except DatabricksConnectionError as exc:
            exc.before_send = True
            raise
        with ticket.lock:
            ticket.conn = conn
        with self._conns_lock:
            self._in_flight += 1
        try:
            return job(conn)
        except WarehouseError as exc:
            if exc.transient:
                self._drop_conn()  # a broken or expired session: reconnect next time
            raise
        finally:
            with ticket.lock:
                ticket.conn = None
            with self._conns_lock:
                self._in_flight -= 1

    @staticmethod
    def _cancel(ticket: _Ticket, backend: Backend) -> None:
        with ticket.lock:
            ticket.cancelled = True
            conn = ticket.conn
        if conn is not None:
            with contextlib.suppress(Exception):
                backend.cancel(conn)

    # loop side -------------------------------------------------------------------------

    async def _submit(self, job: Callable[[Any], Any], sql: str, timeout_s: float | None) -> Any:
        ticket = _Ticket()
        future = asyncio.wrap_future(self._pool.submit(self._work, ticket, job, sql))
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(future)
        except TimeoutError:
            if future.done():
                raise  # the worker itself raised TimeoutError
            await self._abandon(future, ticket)
            raise QueryTimeoutError(
                f"query ran longer than {timeout_s}s and was cancelled", sql=sql
            ) from None
        except asyncio.CancelledError:
            await self._abandon(future, ticket)
            raise

    async def _abandon(self, future: asyncio.Future[Any], ticket: _Ticket) -> None:
        """Cancel the statement and give the worker a moment to come free.

        The cancel is repeated until the worker returns: one sent in the instant between
        the worker taking the connection and the engine starting the statement is lost.
        """
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        deadline = time.monotonic() + self.cancel_grace_s
        with contextlib.suppress(asyncio.CancelledError):
            while not future.done() and time.monotonic() < deadline:
                self._cancel(ticket, self._backend)  # also stops it starting later
                await asyncio.wait({future}, timeout=0.05)
        if not future.done():
            _log.warning("audit_core.warehouse.cancel_slow", grace_s=self.cancel_grace_s)

    async def _run(
        self,
        op: str,
        sql: str,
        job: Callable[[Any], Any],
        timeout_s: float | None,
        count_rows: Callable[[Any], int] | None = None,
    ) -> Any:
        self._check_open()
        _check_sql(sql)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        resend = _resend_policy(statement_kind(sql) == "read")
        started = time.perf_counter()
        backend = self._backend.name
        try:
            result = await self._policy.call(
                lambda _attempt: self._submit(job, sql, timeout),
                client="warehouse",
                classify=resend,
                metrics=self._metrics,
            )
        except asyncio.CancelledError:
            self._queries.labels(backend, "cancelled").inc()
            raise
        except AuditCoreError as exc:
            self._queries.labels(backend, "error").inc()
            _log.warning(
                "audit_core.warehouse.failed",
                op=op,
                backend=backend,
                error_type=type(exc).__name__,
                sql_chars=len(sql),
            )
            raise
        self._queries.labels(backend, "ok").inc()
        self._seconds.observe(time.perf_counter() - started)
        if count_rows is not None:
            self._rows.inc(count_rows(result))
        return result

    # public API ------------------------------------------------------------------------

    async def query_arrow(
        self, sql: str, params: Mapping[str, Any] | None = None, *, timeout_s: float | None = None
    ) -> pa.Table:
        """Run one Databricks-dialect read statement; the result as a ``pyarrow.Table``.

        Anything else (a write, DDL, ``SET``, several statements) raises
        `ReadOnlyViolationError` before it is sent; use `execute` to write.
        """
        self._check_open()
        _check_sql(sql)
        _check_read(sql)
        bound = _check_mapping(params, sql)
        backend = self._backend
        table = await self._run(
            "query",
            sql,
            lambda conn: backend.run(conn, sql, bound, "arrow"),
            timeout_s,
            _num_rows,
        )
        if table is None:
            import pyarrow as pa

            return pa.table({})
        return table

    async def query(
        self, sql: str, params: Mapping[str, Any] | None = None, *, timeout_s: float | None = None
    ) -> pd.DataFrame:
        """Run a Databricks-dialect query; the result as a pandas DataFrame.

        DECIMAL columns come back as `decimal.Decimal` (money stays exact), timestamps as
        ``datetime64``.
        """
        table = await self.query_arrow(sql, params, timeout_s=timeout_s)
        # On a worker thread: the first call imports pandas (~200 ms) and a big result
        # takes a while to convert; neither may stall the event loop.
        frame: pd.DataFrame = await asyncio.get_running_loop().run_in_executor(
            self._pool, table.to_pandas
        )
        return frame

    async def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        native: bool = False,
    ) -> int | None:
        """Run a statement without a result (DDL / DML); the number of rows it inserted,
        updated or deleted when the engine reports one (DuckDB, Delta), else None.

        ``native=True`` sends SQL already in the backend's own dialect (DuckDB locally)
        untranslated, as `ensure_schema` does with per-dialect DDL.
        """
        bound = _check_mapping(params, sql)
        backend = self._backend
        affected: int | None = await self._run(
            "execute", sql, lambda conn: backend.run(conn, sql, bound, "none", native), timeout_s
        )
        return affected

    async def executemany(
        self, sql: str, rows: Sequence[Mapping[str, Any]], *, timeout_s: float | None = None
    ) -> None:
        """Run one statement per row (``:name`` markers), in one transaction where supported."""
        if not rows:
            return
        bound = [_check_mapping(r, sql) or {} for r in rows]
        backend = self._backend
        await self._run(
            "executemany", sql, lambda conn: backend.run_many(conn, sql, bound), timeout_s
        )

    async def insert_arrow(
        self, table: str, data: pa.Table, *, timeout_s: float | None = None
    ) -> None:
        """Append ``data`` to ``table``, matching columns by name (absent ones take their
        defaults). Locally one set-based INSERT from the Arrow table; elsewhere an
        ``INSERT ... VALUES`` per row through `executemany`."""
        if data.num_rows == 0:
            return
        backend = self._backend
        native = getattr(backend, "insert_arrow", None)
        if native is None:
            columns = data.column_names
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + c for c in columns)})"
            )
            await self.executemany(sql, data.to_pylist(), timeout_s=timeout_s)
            return
        await self._run(
            "insert_arrow",
            f"INSERT INTO {table}",
            lambda conn: native(conn, table, data),
            timeout_s,
        )

    async def get_last_audit_timestamp(self) -> datetime:
        """When the last completed audit finished (aware UTC); 2025-01-01 when there is none."""
        from audit_core._arrow import first

        table = await self.query_arrow(LAST_AUDIT_SQL.format(table=self.state_table))
        value: Any = first(table)
        if value is None:
            return DEFAULT_LAST_AUDIT
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)

    async def health(self) -> bool:
        """Whether the warehouse answers ``SELECT 1`` now."""
        try:
            table = await self.query_arrow("SELECT 1 AS ok", timeout_s=30.0)
        except (WarehouseError, ConfigError) as exc:
            _log.warning(
                "audit_core.warehouse.unhealthy",
                backend=self.backend,
                error_type=type(exc).__name__,
            )
            return False
        return bool(table.num_rows == 1)

    async def known_tables(self) -> list[str]:
        """Tables the local engine holds (``schema.table``; ``main`` tables unqualified)."""
        backend = self._backend
        known = getattr(backend, "known_tables", None)
        if known is None:
            raise WarehouseError("known_tables() is only available on the local backend")
        result: list[str] = await self._run("known_tables", "SHOW TABLES", known, None)
        return result


def _check_mapping(params: Mapping[str, Any] | None, sql: str) -> dict[str, Any] | None:
    if params is None:
        return None
    if not isinstance(params, Mapping):
        raise QueryError(
            f"params must be a mapping of :name to value, got {type(params).__name__}", sql=sql
        )
    return dict(params)


def _num_rows(table: pa.Table | None) -> int:
    return 0 if table is None else int(table.num_rows)


def _check_sql(sql: object) -> None:
    if not isinstance(sql, str) or not sql.strip():
        raise QueryError(
            "SQL must be a non-empty string", sql=sql if isinstance(sql, str) else None
        )


def _resend_policy(read: bool) -> Callable[[Exception], Transient | None]:
    """The retry classifier: a transient failure is retried for a read, and for a write
    only when it failed before the statement was sent (re-sending could apply it twice)."""

    def classify(exc: Exception) -> Transient | None:
        if not (isinstance(exc, AuditCoreError) and exc.transient):
            return None
        before_send = isinstance(exc, DatabricksConnectionError) and exc.before_send
        if read or before_send:
            return Transient("connection")
        return None

    return classify


# Statements ---------------------------------------------------------------------------

StatementKind = Literal["read", "write", "several", "unparsed"]
_EXPLAIN_OPTIONS = frozenset({"EXTENDED", "CODEGEN", "COST", "FORMATTED", "ANALYZE"})


@lru_cache(maxsize=1)
def _tree_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(statement types that read, node types that write or change state anywhere)."""
    from sqlglot import exp

    reads = (exp.Select, exp.SetOperation, exp.Subquery, exp.Values, exp.Describe)
    writes = (
        exp.DML,  # INSERT (also DDL), UPDATE, DELETE, MERGE, COPY
        exp.DDL,
        exp.Drop,
        exp.Alter,
        exp.TruncateTable,
        exp.Set,
        exp.Pragma,
        exp.Use,
        exp.Cache,
        exp.Uncache,
        exp.Refresh,
        exp.Grant,
        exp.Revoke,
        exp.Command,
        exp.Transaction,
        exp.Commit,
        exp.Rollback,
        exp.LoadData,
        exp.Analyze,
        exp.Attach,
        exp.Detach,
        exp.Install,
        exp.Into,
        exp.Kill,
        exp.Declare,
        exp.Execute,
        exp.Put,
        exp.Get,
    )
    return reads, writes


@lru_cache(maxsize=1024)
def statement_kind(sql: str) -> StatementKind:
    """What ``sql`` is, from its syntax tree (never from a regex).

    ``"read"``: one Databricks-dialect query that changes nothing (``SELECT``, set
    operations, ``VALUES``, ``DESCRIBE``, ``SHOW``, ``EXPLAIN`` of a read).
    ``"write"``: anything else, including ``WITH ... INSERT``, and DuckDB statements
    Databricks has no syntax for (``ATTACH``). ``"several"``: more than one statement.
    ``"unparsed"``: not SQL sqlglot can parse.
    """
    return lookup("kind", (sql,), lambda: _statement_kind(sql), str, _known_kind)


_KINDS: frozenset[str] = frozenset({"read", "write", "several", "unparsed"})


def _known_kind(value: Any) -> Any:
    return value if value in _KINDS else MISSING


def _statement_kind(sql: str) -> StatementKind:
    kind = _kind(sql, "databricks")
    if kind == "unparsed" and _kind(sql, "duckdb") in ("write", "several"):
        return "write"
    return kind


def _kind(sql: str, dialect: str) -> StatementKind:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        trees = [t for t in sqlglot.parse(sql, read=dialect) if t is not None]
    except SqlglotError:
        return "unparsed"
    if len(trees) != 1:
        return "several" if trees else "unparsed"
    tree = trees[0]
    if isinstance(tree, exp.Command):
        keyword = str(tree.this).upper()
        rest = tree.expression.name if isinstance(tree.expression, exp.Literal) else ""
        if keyword == "SHOW":
            return "read"
        if keyword == "EXPLAIN":
            words = rest.split()
            while words and words[0].upper() in _EXPLAIN_OPTIONS:
                words.pop(0)
            return "read" if words and _kind(" ".join(words), dialect) == "read" else "write"
        return "write"
    reads, writes = _tree_types()
    if isinstance(tree, reads) and tree.find(*writes) is None:
        return "read"
    return "write"


def _check_read(sql: str) -> None:
    """Raise `ReadOnlyViolationError` unless ``sql`` is one read statement.

    SQL that does not parse goes on: the local engine reports the parse error, and
    Databricks (whose parser is the authority) gets it once, never re-sent.
    """
    kind = statement_kind(sql)
    if kind in ("read", "unparsed"):
        return
    if kind == "several":
        raise ReadOnlyViolationError("query() runs one SQL statement, got several", sql=sql)
    raise ReadOnlyViolationError(
        f"query() runs one read statement; {_label(sql)} is not one (use execute())", sql=sql
    )


def _label(sql: str) -> str:
    """The statement's kind for a message: ``INSERT`` for ``WITH ... INSERT``, say."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    first = sql.split(None, 1)[0].upper()
    try:
        tree = sqlglot.parse_one(sql, read="databricks")
    except SqlglotError:
        return first
    if isinstance(tree, exp.Command):
        return str(tree.this).upper()
    if isinstance(tree, _tree_types()[1]):
        return tree.key.upper()
    return first
