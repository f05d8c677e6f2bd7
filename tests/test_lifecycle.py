"""The one client lifecycle: unopened -> open -> closed, never reopened, leaks reported."""

from __future__ import annotations

import gc
import warnings

import pytest

from audit_core import ClientClosedError
from audit_core._lifecycle import AsyncLifecycle, ClientState


class Pool(AsyncLifecycle):
    """A stand-in client that owns one resource and counts how often it was released."""

    def __init__(self, *, owns: bool = True) -> None:
        self._owns_resources = owns
        self.released = 0

    async def _aclose_resources(self) -> None:
        self.released += 1

    async def work(self) -> str:
        self._check_open()
        return "done"


async def test_usable_without_async_with_and_closed_once() -> None:
    """The first call opens the client; aclose releases once however often it is called."""
    pool = Pool()
    assert pool._state is ClientState.UNOPENED
    assert await pool.work() == "done"
    assert pool._state is ClientState.OPEN
    await pool.aclose()
    await pool.aclose()
    assert pool.released == 1
    assert pool.closed


async def test_closed_client_refuses_calls_and_reopening() -> None:
    """After aclose, every call and `async with` raise ClientClosedError naming the class."""
    async with Pool() as pool:
        await pool.work()
    with pytest.raises(ClientClosedError, match="Pool is closed"):
        await pool.work()
    with pytest.raises(ClientClosedError, match="cannot be reopened"):
        async with pool:
            pass


async def test_release_failure_still_closes() -> None:
    """A failing release leaves the client closed (no second, half-done close)."""

    class Broken(Pool):
        async def _aclose_resources(self) -> None:
            self.released += 1
            raise OSError("socket already gone")

    broken = Broken()
    await broken.work()
    with pytest.raises(OSError, match="already gone"):
        await broken.aclose()
    assert broken.closed
    await broken.aclose()
    assert broken.released == 1


def _collect(make: type[Pool], *, use: bool, close: bool, owns: bool) -> list[str]:
    import asyncio

    async def scenario() -> None:
        pool = make(owns=owns)
        if use:
            await pool.work()
        if close:
            await pool.aclose()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(scenario())
        gc.collect()
    return [str(w.message) for w in caught if w.category is ResourceWarning]


def test_unclosed_used_client_that_owns_connections_warns() -> None:
    """Garbage-collecting an open client that owns connections emits a ResourceWarning."""
    assert _collect(Pool, use=True, close=False, owns=True) == [
        "unclosed Pool: call 'await client.aclose()' or use 'async with'"
    ]


@pytest.mark.parametrize(
    ("use", "close", "owns"),
    [(True, True, True), (False, False, True), (True, False, False)],
    ids=["closed", "never-used", "borrowed-connections"],
)
def test_no_warning_when_nothing_can_leak(use: bool, close: bool, owns: bool) -> None:
    """Closed, never used, or using a caller's connections: nothing to report."""
    assert _collect(Pool, use=use, close=close, owns=owns) == []
