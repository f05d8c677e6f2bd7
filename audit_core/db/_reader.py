"""Reading a results database without writing to it.

`Reader` is what verification and flag listing need (a `DatabricksClient` is one);
`ReadOnlyResults` opens a local DuckDB results file with ``read_only=True``, so
``trail verify`` and ``flags`` work on read-only media and can never change the
evidence they check.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

from audit_core._lifecycle import AsyncLifecycle
from audit_core.errors import ConfigError, QueryError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ReadOnlyResults", "Reader"]


class Reader(Protocol):
    """Runs one Databricks-dialect read statement with ``:name`` parameters."""

    async def query_arrow(
        self, sql: str, params: Mapping[str, Any] | None = None, *, timeout_s: float | None = None
    ) -> pa.Table: ...


class ReadOnlyResults(AsyncLifecycle):
    """A local DuckDB results database opened read-only (``async with``)."""

    _owns_resources = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: Any = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path) -> Self:
        """`ConfigError` naming the file when there is no results database there."""
        if not Path(path).is_file():
            raise ConfigError(f"no results database at {path}; run `audit-core demo` first")
        return cls(path)

    def _connect(self) -> Any:
        import duckdb

        if self._db is None:
            try:
                self._db = duckdb.connect(str(self.path), read_only=True)
            except duckdb.Error as exc:
                raise ConfigError(f"cannot open {self.path} read-only: {exc}") from None
            self._db.execute("SET TimeZone = 'UTC'")
        return self._db

    def _run(self, sql: str, params: Mapping[str, Any] | None) -> pa.Table:
        import duckdb

        from audit_core.warehouse._sql import to_duckdb

        prepared = to_duckdb(sql)
        with self._lock:
            db = self._connect()
            try:
                relation = db.sql(prepared.sql, params=dict(params) if params else None)
                return relation.to_arrow_table()
            except duckdb.Error as exc:
                raise QueryError(f"{type(exc).__name__}: {exc}", sql=sql) from None

    async def query_arrow(
        self, sql: str, params: Mapping[str, Any] | None = None, *, timeout_s: float | None = None
    ) -> pa.Table:
        """One read statement on a worker thread; ``timeout_s`` is accepted and ignored."""
        self._check_open()
        return await asyncio.to_thread(self._run, sql, params)

    async def _aclose_resources(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
