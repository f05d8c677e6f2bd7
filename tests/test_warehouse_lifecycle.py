"""DatabricksClient's lifecycle: usable at once, closed for good, loud when leaked."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient
from audit_core.errors import ClientClosedError

CALLS: dict[str, Callable[[DatabricksClient], Awaitable[Any]]] = {
    "query": lambda wh: wh.query("SELECT 1"),
    "query_arrow": lambda wh: wh.query_arrow("SELECT 1"),
    "execute": lambda wh: wh.execute("CREATE TABLE t (a INT)"),
    "executemany": lambda wh: wh.executemany("INSERT INTO t VALUES (:a)", [{"a": 1}]),
    "get_last_audit_timestamp": lambda wh: wh.get_last_audit_timestamp(),
    "health": lambda wh: wh.health(),
    "known_tables": lambda wh: wh.known_tables(),
}


def make() -> DatabricksClient:
    return DatabricksClient.local(registry=CollectorRegistry())


def forget(box: list[DatabricksClient]) -> None:
    """Drop the only reference and collect, as the garbage collector eventually would."""
    box.clear()
    gc.collect()


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_a_closed_client_refuses_every_call(
    call: Callable[[DatabricksClient], Awaitable[Any]],
) -> None:
    wh = make()
    await wh.query_arrow("SELECT 1")
    await wh.aclose()
    assert wh.closed
    with pytest.raises(ClientClosedError, match="DatabricksClient is closed"):
        await call(wh)


async def test_aclose_twice_is_fine_and_reopening_is_refused() -> None:
    wh = make()
    async with wh:
        assert (await wh.query_arrow("SELECT 1 AS n")).to_pylist() == [{"n": 1}]
    await wh.aclose()
    with pytest.raises(ClientClosedError):
        async with wh:
            pass
    assert "closed=True" in repr(wh)


async def test_a_client_used_without_async_with_opens_on_first_call() -> None:
    wh = make()
    try:
        assert (await wh.query_arrow("SELECT 2 AS n")).to_pylist() == [{"n": 2}]
    finally:
        await wh.aclose()


async def test_a_used_client_left_unclosed_warns_when_collected() -> None:
    """Its worker threads and connections would otherwise leak silently."""
    box = [make()]
    await box[0].query_arrow("SELECT 1")
    with pytest.warns(ResourceWarning, match="unclosed DatabricksClient"):
        forget(box)


def test_an_unused_client_needs_no_close() -> None:
    """Construction owns nothing yet (threads and connections are made on first use)."""
    box = [make()]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        forget(box)
    assert [w for w in seen if issubclass(w.category, ResourceWarning)] == []
