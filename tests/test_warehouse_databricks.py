"""The Databricks backend through an injected DB-API connection factory (no network here).

The fake driver's exception classes mirror ``databricks.sql.exc`` (4.9.0): the client
classifies by class name along the MRO, so the same rules hold for the real driver.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient, DatabricksConnectionError, QueryError, Settings
from audit_core.errors import ReadOnlyViolationError
from audit_core.retry import RetryPolicy
from audit_core.testing import FakeClock


class Error(Exception):
    pass


class DatabaseError(Error):
    pass


class OperationalError(DatabaseError):
    pass


class RequestError(OperationalError):
    pass


class SessionAlreadyClosedError(RequestError):
    pass


class ServerOperationError(DatabaseError):
    pass


Step = Callable[["FakeCursor"], pa.Table | None]
PRODUCTION = {
    "ENVIRONMENT": "production",
    "DATABRICKS_HOST": "adb-1.azuredatabricks.net",
    "DATABRICKS_TOKEN": "dapi-secret-token",
    "DATABRICKS_WAREHOUSE_ID": "abc123",
}


class FakeDriver:
    """Hands out connections; each execute takes the next scripted step (default: rows)."""

    def __init__(self) -> None:
        self.script: list[Step | BaseException] = []
        self.connections: list[FakeConnection] = []
        self.executed: list[tuple[str, dict[str, Any] | None, int]] = []
        self.connect_failures = 0
        self.lock = threading.Lock()

    def connect(self) -> FakeConnection:
        with self.lock:
            if self.connect_failures:
                self.connect_failures -= 1
                raise RequestError("Error during request to server: connection refused")
            conn = FakeConnection(self)
            self.connections.append(conn)
            return conn

    def next_step(self) -> Step | BaseException | None:
        with self.lock:
            return self.script.pop(0) if self.script else None


class FakeConnection:
    def __init__(self, driver: FakeDriver) -> None:
        self.driver = driver
        self.threads: set[int] = set()
        self.closed = False

    def cursor(self) -> FakeCursor:
        self.threads.add(threading.get_ident())
        return FakeCursor(self)

    def close(self) -> None:
        self.closed = True


class FakeCursor:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.cancelled = threading.Event()
        self.result: pa.Table | None = None

    def execute(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        self.conn.threads.add(threading.get_ident())
        self.conn.driver.executed.append((sql, parameters, threading.get_ident()))
        step = self.conn.driver.next_step()
        if isinstance(step, BaseException):
            raise step
        self.result = step(self) if step else pa.table({"n": [1, 2, 3]})

    def executemany(self, sql: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self.execute(sql, row)

    def fetchall_arrow(self) -> pa.Table:
        assert self.result is not None
        return self.result

    def cancel(self) -> None:
        self.cancelled.set()

    def close(self) -> None:
        pass


def blocks_until_cancelled(cursor: FakeCursor) -> pa.Table:
    """A long statement: returns only once cancel() is called (as the server would)."""
    if not cursor.cancelled.wait(30):
        raise AssertionError("cancel() was never called")
    raise ServerOperationError("Query was cancelled")


@pytest.fixture
def driver() -> FakeDriver:
    return FakeDriver()


@pytest.fixture
def client(driver: FakeDriver, clock: FakeClock) -> DatabricksClient:
    return DatabricksClient.databricks(
        driver.connect,
        host="adb-123.azuredatabricks.net",
        max_workers=2,
        retry_policy=RetryPolicy(attempts=3, sleep=clock.sleep, clock=clock, rng=lambda: 0.5),
        registry=CollectorRegistry(),
    )


async def test_named_parameters_travel_natively(
    client: DatabricksClient, driver: FakeDriver
) -> None:
    async with client:
        df = await client.query("SELECT * FROM gold.t WHERE amount > :min", {"min": 100})
    assert list(df.n) == [1, 2, 3]
    sql, params, _ = driver.executed[0]
    assert sql == "SELECT * FROM gold.t WHERE amount > :min"  # never formatted
    assert params == {"min": 100}
    assert client.backend == "databricks"


async def test_transport_error_reconnects_and_reruns_read(
    client: DatabricksClient, driver: FakeDriver
) -> None:
    driver.script = [
        SessionAlreadyClosedError("Invalid SessionHandle"),
        RequestError("reset by peer"),
    ]
    async with client:
        df = await client.query("SELECT 1")
    assert len(df) == 3
    assert len(driver.executed) == 3
    assert len(driver.connections) == 3  # a fresh session after each transport failure
    assert all(c.closed for c in driver.connections[:2])


async def test_sql_error_is_not_retried(client: DatabricksClient, driver: FakeDriver) -> None:
    driver.script = [ServerOperationError("[TABLE_OR_VIEW_NOT_FOUND] gold.nope cannot be found")]
    async with client:
        with pytest.raises(QueryError, match="TABLE_OR_VIEW_NOT_FOUND") as info:
            await client.query("SELECT * FROM gold.nope")
    assert info.value.sql == "SELECT * FROM gold.nope"
    assert len(driver.executed) == 1


async def test_writes_are_not_resent_after_a_transport_failure(
    client: DatabricksClient, driver: FakeDriver
) -> None:
    """The INSERT may have run before the connection broke: re-sending could double it."""
    driver.script = [RequestError("connection reset")]
    async with client:
        with pytest.raises(DatabricksConnectionError, match="unreachable"):
            await client.execute("INSERT INTO flags VALUES (:id)", {"id": 1})
    assert len(driver.executed) == 1


@pytest.mark.parametrize(
    "sql",
    [
        "WITH fresh AS (SELECT :id AS id) INSERT INTO flags SELECT id FROM fresh",
        "MERGE INTO flags t USING (SELECT :id AS id) s ON t.id = s.id "
        "WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)",
        "DELETE FROM flags WHERE id = :id",
    ],
)
async def test_a_write_is_attempted_once_on_a_failing_connection(
    client: DatabricksClient, driver: FakeDriver, sql: str
) -> None:
    """Whether a statement writes comes from its syntax tree: a WITH ... INSERT is a write."""
    driver.script = [RequestError("connection reset"), RequestError("connection reset")]
    async with client:
        with pytest.raises(DatabricksConnectionError) as info:
            await client.execute(sql, {"id": 1})
    assert len(driver.executed) == 1
    assert info.value.attempts == 1


async def test_query_refuses_a_write_before_sending_it(
    client: DatabricksClient, driver: FakeDriver
) -> None:
    async with client:
        with pytest.raises(ReadOnlyViolationError, match="INSERT"):
            await client.query("WITH x AS (SELECT 1 AS id) INSERT INTO flags SELECT id FROM x")
    assert driver.executed == []
    assert driver.connections == []


async def test_connect_failures_retry_then_raise_connection_error(
    client: DatabricksClient, driver: FakeDriver
) -> None:
    driver.connect_failures = 2
    async with client:
        assert len(await client.query("SELECT 1")) == 3  # third connect works
        driver.connect_failures = 10
        await client.aclose()
    fresh = DatabricksClient.databricks(
        driver.connect,
        retry_policy=RetryPolicy(attempts=2, sleep=FakeClock().sleep),
        registry=CollectorRegistry(),
    )
    async with fresh:
        with pytest.raises(DatabricksConnectionError, match="RequestError"):
            await fresh.query("SELECT 1")


async def test_write_retried_when_it_never_left(
    client: DatabricksClient, driver: FakeDriver
) -> None:
    """A connect failure happens before the statement is sent, so a write may be retried."""
    driver.connect_failures = 1
    async with client:
        await client.execute("INSERT INTO flags VALUES (:id)", {"id": 1})
    assert len(driver.executed) == 1


async def test_cancel_calls_cursor_cancel_and_frees_the_thread(
    client: DatabricksClient, driver: FakeDriver
) -> None:
    driver.script = [blocks_until_cancelled, blocks_until_cancelled]
    async with client:
        first = asyncio.create_task(client.query("SELECT slow()"))
        second = asyncio.create_task(client.query("SELECT slow()"))
        while client.in_flight < 2:  # both workers busy
            await asyncio.sleep(0)
        first.cancel()
        second.cancel()
        for task in (first, second):
            with pytest.raises(asyncio.CancelledError):
                await task
        assert client.in_flight == 0
        async with asyncio.timeout(10):
            assert len(await client.query("SELECT 1")) == 3
        driver.script = [blocks_until_cancelled]
        with pytest.raises(QueryError, match="longer than"):
            await client.query("SELECT slow()", timeout_s=0.05)


async def test_one_connection_per_worker_thread(
    client: DatabricksClient, driver: FakeDriver
) -> None:
    async with client:
        await asyncio.gather(*(client.query("SELECT :i", {"i": i}) for i in range(40)))
    assert 1 <= len(driver.connections) <= 2  # max_workers=2, reused
    for conn in driver.connections:
        assert len(conn.threads) == 1  # never shared between threads
    assert all(c.closed for c in driver.connections)  # aclose closes them


async def test_executemany_and_last_audit_timestamp(
    client: DatabricksClient, driver: FakeDriver
) -> None:
    from datetime import UTC, datetime

    aware = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    driver.script = [
        lambda _c: None,
        lambda _c: None,
        lambda _c: pa.table({"last_completed": pa.array([aware], pa.timestamp("us", "UTC"))}),
    ]
    async with client:
        await client.executemany("INSERT INTO t VALUES (:a)", [{"a": 1}, {"a": 2}])
        assert await client.get_last_audit_timestamp() == aware
    assert [p for _, p, _ in driver.executed[:2]] == [{"a": 1}, {"a": 2}]


def test_from_settings_picks_the_backend(driver: FakeDriver) -> None:
    prod = Settings.from_env(PRODUCTION)
    assert DatabricksClient.from_settings(prod, connect=driver.connect).backend == "databricks"
    dev = Settings.from_env({"DATABRICKS_HOST": "adb-1.azuredatabricks.net"})
    assert DatabricksClient.from_settings(dev).backend == "local"
    assert "dapi-secret-token" not in repr(
        DatabricksClient.from_settings(prod, connect=driver.connect)
    )


def test_driver_retry_is_bounded() -> None:
    from audit_core.warehouse._databricks import DRIVER_RETRY

    assert DRIVER_RETRY["_retry_stop_after_attempts_count"] <= 3
    assert DRIVER_RETRY["_retry_stop_after_attempts_duration"] <= 120
