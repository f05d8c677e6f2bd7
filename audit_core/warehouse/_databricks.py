"""The Databricks backend: databricks-sql-connector (DB-API, threadsafety 1) on threads.

Errors are classified by the connector's exception class names (walking the MRO), so the
mapping is the same for the real driver and for a test's DB-API fake:

- ``RequestError`` and its family (including ``SessionAlreadyClosedError``,
  ``CursorAlreadyClosedError``, ``MaxRetryDurationError``), ``OperationalError`` and OS
  network errors are transport failures: the connection is dropped, a fresh one is made
  and read-only statements are re-run under the shared retry policy; they surface as
  `DatabricksConnectionError`.
- ``ServerOperationError``, ``ProgrammingError`` and other ``DatabaseError``s are SQL
  errors: never retried, raised as `QueryError` with the server's message.

The driver's own retry is set explicitly (two attempts, 60 s at most, 5 s cap between
tries), so it and the shared policy above it cannot multiply into its 15-minute default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from audit_core.errors import ConfigError, DatabricksConnectionError, QueryError

DRIVER_RETRY = {
    "_retry_stop_after_attempts_count": 2,
    "_retry_stop_after_attempts_duration": 60.0,
    "_retry_delay_min": 0.5,
    "_retry_delay_max": 5.0,
    "_socket_timeout": 120.0,
}
_TRANSPORT = frozenset(
    {"RequestError", "OperationalError", "InterfaceError", "ConnectionError", "TimeoutError"}
)
_SQL = frozenset(
    {"ServerOperationError", "ProgrammingError", "DatabaseError", "DataError", "IntegrityError"}
)


def _names(exc: BaseException) -> set[str]:
    return {klass.__name__ for klass in type(exc).__mro__}


def is_transport_error(exc: BaseException) -> bool:
    names = _names(exc)
    if "ServerOperationError" in names:
        return False
    return bool(names & _TRANSPORT) or isinstance(exc, OSError)


def connector_factory(host: str, warehouse_id: str, token: str, **extra: Any) -> Callable[[], Any]:
    """A factory of real connections (needs the ``databricks`` extra)."""
    try:
        from databricks import sql
    except ImportError:
        raise ConfigError(
            "the Databricks backend needs databricks-sql-connector: "
            "pip install 'audit-core[databricks]'"
        ) from None
    hostname = host.removeprefix("https://").removeprefix("http://").rstrip("/")
    options = {**DRIVER_RETRY, **extra}

    def connect() -> Any:
        return sql.connect(
            server_hostname=hostname,
            http_path=f"/sql/1.0/warehouses/{warehouse_id}",
            access_token=token,
            **options,
        )

    return connect


class _Session:
    """One worker thread's DB-API connection, and the cursor running on it (for cancel)."""

    __slots__ = ("conn", "cursor")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.cursor: Any = None


class DatabricksBackend:
    """Statements on Databricks SQL through DB-API connections from ``connect``."""

    name = "databricks"

    def __init__(self, connect: Callable[[], Any], *, host: str = "<injected>") -> None:
        self._connect = connect
        self.host = host

    def connect(self) -> _Session:
        try:
            return _Session(self._connect())
        except Exception as exc:
            raise self.map_error(exc, None) from None

    def run(
        self,
        session: _Session,
        sql: str,
        params: dict[str, Any] | None,
        want: str,
        native: bool = False,
    ) -> Any:
        try:
            cursor = session.conn.cursor()
        except Exception as exc:
            raise self.map_error(exc, sql) from None
        session.cursor = cursor  # for cancel() from the event loop's thread
        try:
            cursor.execute(sql, parameters=dict(params) if params else None)
            if want == "none":
                return _affected(cursor)
            return cursor.fetchall_arrow()
        except Exception as exc:
            raise self.map_error(exc, sql) from None
        finally:
            session.cursor = None
            with contextlib.suppress(Exception):  # a cursor that cannot close is gone
                cursor.close()

    def run_many(self, session: _Session, sql: str, rows: list[dict[str, Any]]) -> None:
        try:
            cursor = session.conn.cursor()
        except Exception as exc:
            raise self.map_error(exc, sql) from None
        session.cursor = cursor
        try:
            cursor.executemany(sql, [dict(r) for r in rows])
        except Exception as exc:
            raise self.map_error(exc, sql) from None
        finally:
            session.cursor = None
            with contextlib.suppress(Exception):
                cursor.close()

    def cancel(self, session: _Session) -> None:
        cursor = session.cursor
        if cursor is not None:
            cursor.cancel()

    def close(self, session: _Session) -> None:
        session.conn.close()

    def shutdown(self) -> None:
        return None

    def map_error(self, exc: Exception, sql: str | None) -> Exception:
        """The driver's exception as `DatabricksConnectionError` (transient) or `QueryError`."""
        if isinstance(exc, DatabricksConnectionError | QueryError):
            return exc
        message = str(exc).split("\n", 1)[0][:500]
        if is_transport_error(exc):
            return DatabricksConnectionError(
                f"Databricks at {self.host} unreachable ({type(exc).__name__}): {message}",
                sql=sql,
            )
        if _names(exc) & _SQL:
            return QueryError(f"Databricks rejected the statement: {message}", sql=sql)
        return exc


def _affected(cursor: Any) -> int | None:
    """``num_affected_rows`` of a DML statement's one-row answer, else None."""
    try:
        table = cursor.fetchall_arrow()
    except Exception:
        return None
    if table.num_rows and "num_affected_rows" in table.column_names:
        value = table.column("num_affected_rows")[0].as_py()
        return int(value) if value is not None else None
    return None
