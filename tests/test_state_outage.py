"""Redis outages: strict mode raises; degrade mode buffers and writes through on recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from itertools import pairwise

import pytest
from prometheus_client import CollectorRegistry

from audit_core import AsyncStateStore, StateStoreUnavailableError
from audit_core.retry import RetryPolicy
from audit_core.testing import FakeClock, capture_logs
from tests.services import RedisServer


@pytest.fixture
async def reader(own_redis_server: RedisServer) -> AsyncIterator[AsyncStateStore]:
    """A second, independent store to look at what really is in Redis."""
    async with AsyncStateStore.from_url(own_redis_server.url, registry=CollectorRegistry()) as s:
        yield s


def make_store(server: RedisServer, clock: FakeClock, **kw: object) -> AsyncStateStore:
    return AsyncStateStore.from_url(
        server.url,
        retry_policy=RetryPolicy(attempts=2, sleep=clock.sleep, clock=clock, rng=lambda: 0.0),
        clock=clock,
        sleep=clock.sleep,
        connect_timeout_s=1.0,
        **{"registry": CollectorRegistry(), **kw},  # type: ignore[arg-type]
    )


async def test_strict_mode_raises_when_redis_dies(
    own_redis_server: RedisServer, clock: FakeClock
) -> None:
    """on_unavailable='raise': every operation raises StateStoreUnavailableError."""
    async with make_store(own_redis_server, clock, on_unavailable="raise") as store:
        await store.save("run-1", {"a": 1})
        own_redis_server.stop()
        with pytest.raises(StateStoreUnavailableError, match="unreachable"):
            await store.save("run-1", {"a": 2})
        with pytest.raises(StateStoreUnavailableError):
            await store.restore("run-1")
        with pytest.raises(StateStoreUnavailableError):
            await store.update("run-1", {"b": 1})
        assert store.degraded is False


async def test_degrade_mode_buffers_and_writes_through_after_restart(
    own_redis_server: RedisServer, clock: FakeClock
) -> None:
    """Kill Redis mid-run: work continues; after restart flush() stores every state."""
    registry = CollectorRegistry()
    async with make_store(own_redis_server, clock, registry=registry) as store:
        await store.save("run-a", {"step": 1, "found": []})
        assert await store.health() is True
        own_redis_server.stop()

        with capture_logs() as logs:
            await store.update("run-a", {"step": 2, "found": [1]})
        assert store.degraded is True
        assert any(e["event"] == "audit_core.state.degraded" for e in logs)
        assert registry.get_sample_value("audit_state_degraded") == 1
        await store.update("run-a", lambda s: {**s, "step": 3})
        await store.save("run-b", {"new": "during outage"})
        await store.mark_complete("run-c", {"flags": 0})
        # Reads fall back to what this process wrote.
        assert await store.restore("run-a") == {"step": 3, "found": [1]}
        assert await store.restore("run-b") == {"new": "during outage"}
        assert await store.restore("never") == {}
        assert await store.health() is False
        report = await store.flush()
        assert set(report.pending) == {"run-a", "run-b", "run-c"}

        own_redis_server.start()  # same port, empty: nothing survived the crash
        report = await store.flush()
        assert report.complete
        # run-a was in Redis before the crash: Redis came back behind it, so the whole
        # last-known state went back, and the report says so.
        assert report.restored == ["run-a"]
        assert set(report.written) == {"run-b", "run-c"}
        assert store.degraded is False
        assert registry.get_sample_value("audit_state_degraded") == 0

    async with AsyncStateStore.from_url(
        own_redis_server.url, registry=CollectorRegistry()
    ) as check:
        assert await check.restore("run-a") == {"step": 3, "found": [1]}
        assert await check.restore("run-b") == {"new": "during outage"}
        done = await check.restore("run-c")
        assert done["status"] == "completed"
        assert done["summary"] == {"flags": 0}


async def test_fallback_read_is_what_was_stored_not_what_the_caller_changed_since(
    own_redis_server: RedisServer, clock: FakeClock
) -> None:
    """The outage fallback serves the last state as stored, even if the caller has since
    mutated the dict it saved or the dict it restored."""
    async with make_store(own_redis_server, clock) as store:
        saved = {"step": 1, "found": ["TXN001"]}
        await store.save("run-s", saved)
        saved["found"].append("not saved")
        await store.save("run-r", {"step": 7})
        restored = await store.restore("run-r")
        restored["step"] = 99
        own_redis_server.stop()
        assert await store.restore("run-s") == {"step": 1, "found": ["TXN001"]}
        assert await store.restore("run-r") == {"step": 7}
        assert store.degraded
        assert (await store.load("run-r")).version == 1


async def test_next_operation_writes_through_without_flush(
    own_redis_server: RedisServer, clock: FakeClock
) -> None:
    """After Redis returns, the next operation (past the probe interval) writes through."""
    async with make_store(own_redis_server, clock) as store:
        own_redis_server.stop()
        await store.save("run-x", {"v": 1})
        assert store.degraded
        own_redis_server.start()
        clock.now += 5  # past the probe interval
        assert await store.restore("run-y") == {}
        assert store.degraded is False
        async with AsyncStateStore.from_url(
            own_redis_server.url, registry=CollectorRegistry()
        ) as check:
            assert await check.restore("run-x") == {"v": 1}


async def test_flush_keeps_newer_data_written_by_another_worker(
    own_redis_server: RedisServer, clock: FakeClock
) -> None:
    """A buffered save older than what another worker stored meanwhile does not clobber it."""
    async with make_store(own_redis_server, clock) as store:
        own_redis_server.stop()
        await store.save("run-z", {"who": "degraded worker"})
        own_redis_server.start()
        async with AsyncStateStore.from_url(
            own_redis_server.url, registry=CollectorRegistry()
        ) as other:
            await other.save("run-z", {"who": "other worker, later"})
            report = await store.flush()
            assert report.superseded == ["run-z"]
            assert await other.restore("run-z") == {"who": "other worker, later"}


async def test_health_follows_the_server(own_redis_server: RedisServer, clock: FakeClock) -> None:
    """health() is True, False while the server is down, and True again after restart."""
    async with make_store(own_redis_server, clock) as store:
        assert await store.health() is True
        own_redis_server.stop()
        assert await store.health() is False
        own_redis_server.start()
        assert await store.health() is True


async def test_lock_needs_redis(own_redis_server: RedisServer, clock: FakeClock) -> None:
    """A run lock is never faked locally: with Redis down it raises, even in degrade mode."""
    async with make_store(own_redis_server, clock) as store:
        own_redis_server.stop()
        with pytest.raises(StateStoreUnavailableError):
            async with store.lock("run-l"):
                pass


async def test_redis_killed_while_writes_are_in_flight(
    own_redis_server: RedisServer, clock: FakeClock, reader: AsyncStateStore
) -> None:
    """Redis dies with saves mid-call on the script path: each either landed or was
    buffered, and after a restart (which drops the loaded script) the last save of
    every run is what Redis holds, at a version no lower than any handed out."""
    async with make_store(own_redis_server, clock) as store:
        versions: dict[str, list[int]] = {}

        async def writer(run_id: str) -> None:
            for n in range(1, 21):
                versions.setdefault(run_id, []).append(await store.save(run_id, {"n": n}))
                await asyncio.sleep(0)

        tasks = [asyncio.create_task(writer(f"run-k{i}")) for i in range(6)]
        while sum(map(len, versions.values())) < 12:  # some saves landed, more in flight
            await asyncio.sleep(0)
        own_redis_server.stop()
        assert sum(map(len, versions.values())) < 120
        await asyncio.gather(*tasks)
        assert store.degraded is True
        own_redis_server.start()
        report = await store.flush()
        assert report.complete
        for run_id, handed_out in versions.items():
            assert all(a < b for a, b in pairwise(handed_out))
            stored = await reader.load(run_id)
            assert stored.state == {"n": 20}
            assert stored.version >= handed_out[-1]
