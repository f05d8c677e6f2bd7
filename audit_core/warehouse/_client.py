"""`DatabricksClient`: one async facade over the Databricks and local DuckDB backends.

Every blocking DB-API call runs on the client's own bounded thread pool (never the
loop's default executor), with one connection per worker thread, made lazily and
reused. Cancelling the awaiting task, or ``timeout_s`` running out, cancels the running
statement (``cursor.cancel()`` / DuckDB ``interrupt()``) and waits briefly for the worker
thread to come free before the cancellation propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

from audit_core._logging import get_logger
from audit_core.errors import (
    AuditCoreError,
    ConfigError,
    DatabricksConnectionError,
    QueryError,
    QueryTimeoutError,
    WarehouseError,
)
from audit_core.metrics import get_metrics
from audit_core.retry import RetryPolicy, Transient
from audit_core.warehouse._sql import is_read_only

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from prometheus_client import CollectorRegistry

    from audit_core._settings import Settings

_log = get_logger("audit_core.warehouse")
DEFAULT_LAST_AUDIT = datetime(2025, 1, 1, tzinfo=UTC)
LAST_AUDIT_SQL = (
    "SELECT max(completed_at) AS last_completed FROM {table} WHERE status = 'completed'"
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
    def classify(self, exc: BaseException) -> Transient | None: ...


class _Ticket:
    """One statement in flight: lets the loop's thread cancel it on the worker's connection."""

    __slots__ = ("cancelled", "conn", "lock")

    def __init__(self) -> None:
        self.conn: Any = None
        self.cancelled = False
        self.lock = threading.Lock()


class DatabricksClient:
    """Async gold-table queries on Databricks (production) or DuckDB over fixtures (local)."""

    def __init__(
        self,
        backend: Backend,
        *,
        max_workers: int = 4,
        timeout_s: float | None = None,
        cancel_grace_s: float = 5.0,
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
        self._policy = retry_policy or RetryPolicy(attempts=3, timeout_s=120.0)
        self._metrics = get_metrics(registry)
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="audit-warehouse")
        self._local = threading.local()
        self._conns: list[Any] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        self._in_flight = 0
        self._queries = self._metrics.warehouse_queries
        self._seconds = self._metrics.warehouse_seconds.labels(backend.name)
        self._rows = self._metrics.warehouse_rows.labels(backend.name)

    # construction ----------------------------------------------------------------------

    @classmethod
    def local(cls, fixtures_dir: str | Path | None = None, **kwargs: Any) -> DatabricksClient:
        """DuckDB over ``fixtures_dir`` (default: the shipped fixtures).

        ``database`` is ``":memory:"`` or a file path; ``load_fixtures=False`` gives an
        empty database (for flags and the audit trail, say).
        """
        from audit_core.warehouse._local import LocalBackend

        database = str(kwargs.pop("database", ":memory:"))
        load = bool(kwargs.pop("load_fixtures", True))
        path = Path(fixtures_dir).expanduser() if fixtures_dir is not None else None
        return cls(LocalBackend(path, database=database, load_fixtures=load), **kwargs)

    @classmethod
    def databricks(
        cls,
        connect: Callable[[], Any] | None = None,
        *,
        host: str | None = None,
        warehouse_id: str | None = None,
        token: str | None = None,
        **kwargs: Any,
    ) -> DatabricksClient:
        """Databricks SQL, through ``connect`` (a DB-API connection factory) or the connector."""
        from audit_core.warehouse._databricks import DatabricksBackend, connector_factory

        if connect is None:
            if not (host and warehouse_id and token):
                raise ConfigError("Databricks needs host, warehouse_id and token")
            connect = connector_factory(host, warehouse_id, token)
        return cls(DatabricksBackend(connect, host=host or "<injected>"), **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kwargs: Any) -> DatabricksClient:
        """Databricks when ``DATABRICKS_HOST`` is set and ``ENVIRONMENT=production``, else local."""
        if settings is None:
            from audit_core._settings import Settings

            settings = Settings.from_env()
        if settings.warehouse_backend == "databricks":
            return cls.databricks(
                host=settings.databricks_host,
                warehouse_id=settings.databricks_warehouse_id,
                token=settings.databricks_token,
                **kwargs,
            )
        return cls.local(settings.fixtures_dir, **kwargs)

    @property
    def backend(self) -> str:
        """``"databricks"`` or ``"local"``."""
        return self._backend.name

    @property
    def in_flight(self) -> int:
        """Statements running on worker threads right now."""
        return self._in_flight

    def __repr__(self) -> str:
        return f"DatabricksClient(backend={self.backend!r}, closed={self._closed})"

    # lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every worker connection and the pool (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
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
            if self._backend.classify(exc) is not None:
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
        if self._closed:
            raise WarehouseError("the warehouse client is closed")
        if not isinstance(sql, str) or not sql.strip():
            raise QueryError(
                "SQL must be a non-empty string", sql=sql if isinstance(sql, str) else None
            )
        timeout = self.timeout_s if timeout_s is None else timeout_s
        read_only = is_read_only(sql)
        classify = self._backend.classify

        def retryable(exc: BaseException) -> Transient | None:
            reason = classify(exc)
            # Writes are only re-sent when the failure happened before they were sent.
            before_send = isinstance(exc, DatabricksConnectionError) and exc.before_send
            if reason is not None and (read_only or before_send):
                return reason
            return None

        started = time.perf_counter()
        backend = self._backend.name
        try:
            result = await self._policy.call(
                lambda _attempt: self._submit(job, sql, timeout),
                client="warehouse",
                classify=retryable,
                metrics=self._metrics,
            )
        except asyncio.CancelledError:
            self._queries.labels(backend, "cancelled").inc()
            raise
        except AuditCoreError as exc:
            self._queries.labels(backend, "error").inc()
            _log.warning(
                "audit_core.warehouse.failed", op=op, backend=backend,
                error_type=type(exc).__name__, sql_chars=len(sql),
            )  # fmt: skip
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
        """Run a Databricks-dialect query; the result as a ``pyarrow.Table``."""
        bound = _check_mapping(params, sql)
        backend = self._backend
        table = await self._run(
            "query", sql, lambda conn: backend.run(conn, sql, bound, "arrow"), timeout_s,
            lambda t: 0 if t is None else int(t.num_rows),
        )  # fmt: skip
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
    ) -> None:
        """Run a statement without a result (DDL / DML).

        ``native=True`` sends SQL already in the backend's own dialect (DuckDB locally)
        untranslated, as `ensure_schema` does with per-dialect DDL.
        """
        bound = _check_mapping(params, sql)
        backend = self._backend
        await self._run(
            "execute", sql, lambda conn: backend.run(conn, sql, bound, "none", native), timeout_s
        )

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

    async def get_last_audit_timestamp(self) -> datetime:
        """When the last completed audit finished (aware UTC); 2025-01-01 when there is none."""
        table = await self.query_arrow(LAST_AUDIT_SQL.format(table=self.state_table))
        value = table.column(0)[0].as_py() if table.num_rows else None
        if value is None:
            return DEFAULT_LAST_AUDIT
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

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
