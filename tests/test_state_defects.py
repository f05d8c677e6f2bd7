"""Issue 17, one test per defect: outages meeting concurrency, fencing, hostile inputs.

Each of these failed (or hung, stopped by its timeout) on the store before the fix.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from audit_core import (
    AsyncStateStore,
    ConfigError,
    StateConflictError,
    StateEncodingError,
    StateLockLostError,
    StateManagerError,
)
from audit_core.retry import RetryPolicy
from audit_core.testing import FakeClock
from tests.services import RedisServer, missing, redis_binary

pytestmark = pytest.mark.redis


def make_store(server: RedisServer, clock: FakeClock, **kw: Any) -> AsyncStateStore:
    """A store whose retries, probes and backoff run on the fake clock."""
    return AsyncStateStore.from_url(
        server.url,
        retry_policy=RetryPolicy(attempts=2, sleep=clock.sleep, clock=clock, rng=lambda: 0.0),
        clock=clock,
        sleep=clock.sleep,
        connect_timeout_s=1.0,
        **{"registry": CollectorRegistry(), **kw},
    )


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own with an fsync-per-write AOF: restarts keep data."""
    binary = redis_binary()
    if binary is None:
        missing("redis-server")
        raise AssertionError("unreachable")
    server = RedisServer(binary, persistent=True)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
async def other(aof_server: RedisServer) -> AsyncIterator[AsyncStateStore]:
    """Another worker on the same Redis."""
    async with AsyncStateStore.from_url(aof_server.url, registry=CollectorRegistry()) as s:
        yield s


# --- outages -----------------------------------------------------------------------------


async def test_update_after_recovery_with_a_buffered_merge_returns(
    own_redis_server: RedisServer, clock: FakeClock
) -> None:
    """update() and mark_complete() on a run with a buffered merge finish after recovery
    (they used to re-take the run's own lock and hang)."""
    async with make_store(own_redis_server, clock) as store:
        await store.save("r", {"a": 1})
        own_redis_server.stop()
        await store.update("r", {"b": 2})
        own_redis_server.start()
        clock.advance(5)
        async with asyncio.timeout(10):
            assert await store.update("r", {"c": 3}) == 3
            await store.mark_complete("r", {"done": True})
        state = await store.restore("r")
    assert {k: state[k] for k in "abc"} == {"a": 1, "b": 2, "c": 3}
    assert state["status"] == "completed"


async def test_buffered_conditional_write_is_a_conflict_not_an_overwrite(
    aof_server: RedisServer, other: AsyncStateStore, clock: FakeClock
) -> None:
    """update(expected_version=v) made while cut off is never written over a newer
    version another worker committed: the flush reports (or raises) a conflict."""
    async with make_store(aof_server, clock) as store:
        assert await store.save("r", {"who": "start"}) == 1
        aof_server.stop()
        assert await store.update("r", {"who": "cut off"}, expected_version=1) == 2
        aof_server.start()  # persistent: version 1 is still there
        assert await other.update("r", {"who": "other"}, expected_version=1) == 2
        report = await store.flush()
        assert await other.restore("r") == {"who": "other"}
        assert report.conflicts == ["r"]
        assert report.written == []
        # and a caller that waits for the outcome gets the error
        aof_server.stop()
        await store.update("r", {"who": "cut off again"}, expected_version=2)
        aof_server.start()
        await other.update("r", {"who": "other again"})
        with pytest.raises(StateConflictError, match="not applied"):
            await store.flush(raise_on_conflict=True)
        assert await other.restore("r") == {"who": "other again"}


async def test_restart_without_persistence_restores_whole_states_and_says_so(
    own_redis_server: RedisServer, clock: FakeClock
) -> None:
    """Redis comes back empty: each run gets its whole last-known state (not only the
    outage's changes), versions do not go back, and the report lists them as restored."""
    async with make_store(own_redis_server, clock) as store:
        runs = [f"run-{i}" for i in range(12)]
        for run in runs:
            for step in range(10):
                await store.update(run, {f"step{step}": step})
        own_redis_server.stop()
        for run in runs[:8]:
            assert await store.update(run, {"during": "outage"}) == 11
        own_redis_server.start()
        report = await store.flush()
        assert sorted(report.restored) == sorted(runs[:8])
        assert report.written == []
        for run in runs[:8]:
            loaded = await store.load(run)
            assert loaded.version == 11
            assert loaded.state == {**{f"step{s}": s for s in range(10)}, "during": "outage"}
        # runs without buffered writes are noticed on their next read
        loaded = await store.load(runs[9])
        assert loaded.version == 10
        assert len(loaded.state) == 10
        assert (await store.flush()).restored == [runs[9]]


async def test_a_delete_on_the_same_server_is_not_undone(redis_server: RedisServer) -> None:
    """Redis holding less because another worker deleted the run is not a restart."""
    prefix = f"d{uuid.uuid4().hex[:6]}"
    async with (
        AsyncStateStore.from_url(redis_server.url, key_prefix=prefix) as a,
        AsyncStateStore.from_url(redis_server.url, key_prefix=prefix) as b,
    ):
        await a.save("r", {"x": 1})
        assert await b.delete("r") is True
        assert await a.restore("r") == {}
        assert (await a.flush()).restored == []


async def test_durable_buffer_is_replayed_by_the_next_process(
    own_redis_server: RedisServer, clock: FakeClock, tmp_path: Path
) -> None:
    """A store that closes during an outage leaves its buffer on disk; the next store
    on the same buffer_path writes it through."""
    path = tmp_path / "state-buffer.log"
    async with make_store(own_redis_server, clock, buffer_path=path) as first:
        await first.save("r", {"a": 1})
        own_redis_server.stop()
        await first.update("r", {"b": 2})
        await first.update("r", lambda s: {**s, "c": 3})
        await first.save("new", {"only": "buffered"})
        with pytest.raises(ConfigError, match="held by another"):
            AsyncStateStore.from_url(own_redis_server.url, buffer_path=path)
    assert path.stat().st_size > 0
    with path.open("ab") as f:
        f.write(b'{"t":"put","run":"torn"')  # a crash mid-append
    own_redis_server.start()
    async with make_store(own_redis_server, clock, buffer_path=path) as second:
        report = await second.flush()
        assert report.written == ["new"]
        assert report.restored == ["r"]  # Redis came back empty, behind version 1
        assert await second.restore("r") == {"a": 1, "b": 2, "c": 3}
        assert (await second.load("r")).version == 3
        assert await second.restore("new") == {"only": "buffered"}
    assert path.stat().st_size == 0


def test_buffer_path_comes_from_the_environment(tmp_path: Path) -> None:
    """AUDIT_STATE_BUFFER is Settings.state_buffer, which from_settings passes on."""
    from audit_core import Settings

    settings = Settings.from_env({"AUDIT_STATE_BUFFER": str(tmp_path / "b.log")})
    assert settings.state_buffer == tmp_path / "b.log"
    store = AsyncStateStore.from_settings(settings)
    assert store._buffer.path == tmp_path / "b.log"
    asyncio.run(store.aclose())


# --- locks ---------------------------------------------------------------------------


@pytest.fixture
async def store(redis_server: RedisServer, clock: FakeClock) -> AsyncIterator[AsyncStateStore]:
    async with make_store(redis_server, clock, key_prefix=f"f{uuid.uuid4().hex[:6]}") as s:
        yield s


async def test_fencing_tokens_grow(store: AsyncStateStore) -> None:
    """Each holder gets a larger token than the one before."""
    tokens = []
    for _ in range(3):
        async with store.lock("r") as held:
            tokens.append(held.token)
            await store.save("r", {"t": held.token})
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == 3


async def test_a_holder_whose_lease_expired_cannot_write(store: AsyncStateStore) -> None:
    """After another worker takes the lock, the old holder's writes are refused."""
    await store.save("r", {"v": 0})

    async def newer_holder() -> int:
        async with store.lock("r") as new:
            await store.update("r", {"v": "new"})
            return new.token

    async def old_holder() -> None:
        async with store.lock("r", auto_extend=False) as old:
            await store.client.delete(f"{store.key_prefix}:r:lock")  # the lease ran out
            assert await asyncio.create_task(newer_holder()) > old.token
            with pytest.raises(StateConflictError, match="newer lock holder"):
                await store.update("r", {"v": "stale"})
            with pytest.raises(StateConflictError):
                await store.save("r", {"v": "stale"})

    with pytest.raises(StateLockLostError):
        await old_holder()
    assert await store.restore("r") == {"v": "new"}


async def test_lease_loss_cancels_the_holder(store: AsyncStateStore, clock: FakeClock) -> None:
    """When a renewal finds the lock taken, `lost` is set and the block is cancelled
    with StateLockLostError."""
    lock = store.lock("r", ttl_s=30)

    async def holder() -> None:
        async with lock:
            await store.client.set(f"{store.key_prefix}:r:lock", "someone-else")
            await asyncio.Event().wait()  # blocks until cancelled

    async with asyncio.timeout(10):
        with pytest.raises(StateLockLostError, match="lost while held"):
            await holder()
    held = lock.held
    assert held is not None
    assert held.lost.is_set()
    assert 10.0 in clock.sleeps  # renewals every ttl/3, on the injected sleep


async def test_renewal_keeps_the_lock_on_the_injected_clock(
    store: AsyncStateStore, clock: FakeClock
) -> None:
    """A step spanning many lease periods keeps the lock: renewed every ttl/3."""
    async with asyncio.timeout(10), store.lock("r", ttl_s=30) as held:
        while clock.sleeps.count(10.0) < 10:
            await asyncio.sleep(0)
        assert await held.owned()
        assert await store.client.pttl(f"{store.key_prefix}:r:lock") > 25_000
        assert not held.lost.is_set()
        with pytest.raises(StateConflictError, match="locked by another"):
            async with store.lock("r", wait_s=5):
                pass


# --- inputs --------------------------------------------------------------------------


async def test_hostile_states_are_typed_errors_without_hanging(store: AsyncStateStore) -> None:
    """Cyclic, 5,000-deep and lone-surrogate states are StateEncodingError, at once."""
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    deep: Any = {}
    for _ in range(5000):
        deep = {"d": deep}
    async with asyncio.timeout(5):
        for bad in (cyclic, deep, {"s": "\ud800"}):
            with pytest.raises(StateEncodingError):
                await store.save("r", bad)
            with pytest.raises(StateEncodingError):
                await store.update("r", bad)
    assert await store.restore("r") == {}


async def test_an_envelope_with_spaces_keeps_its_version(store: AsyncStateStore) -> None:
    """Another tool's valid envelope (spaces, other key order) is read by the script too."""
    text = json.dumps({"state": {"a": 1}, "updated_at": "2025-01-01", "version": 5}, indent=1)
    await store.client.set(store.key("r"), text)
    assert await store.update("r", {"b": 2}, expected_version=5) == 6
    await store.client.set(store.key("r"), '{"version": 9, "state": {"a": 1}}')
    assert await store.save("r", {"c": 3}) == 10


@pytest.mark.parametrize("version", ["1e23", "9007199254740992", "-4", "1.5"])
async def test_out_of_range_versions_are_refused(store: AsyncStateStore, version: str) -> None:
    """A version Lua cannot count exactly is an error, never a wrap to a negative."""
    await store.client.set(store.key("r"), f'{{"version": {version}, "state": {{}}}}')
    with pytest.raises(StateManagerError, match="out"):
        await store.update("r", {"a": 1})
    with pytest.raises(StateManagerError, match="out"):
        await store.save("r", {"a": 1})


async def test_two_hundred_writers_on_one_key_all_land(redis_server: RedisServer) -> None:
    """Conflict retries back off with jitter: 8 workers x 25 concurrent merges, none lost."""
    prefix = f"w{uuid.uuid4().hex[:6]}"
    registry = CollectorRegistry()
    stores = [
        AsyncStateStore.from_url(redis_server.url, key_prefix=prefix, registry=registry)
        for _ in range(8)
    ]
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(
                *(
                    s.update("hot", {f"w{i}-{j}": j})
                    for i, s in enumerate(stores)
                    for j in range(25)
                )
            )
        loaded = await stores[0].load("hot")
        assert len(loaded.state) == 200
        assert loaded.version == 200
    finally:
        for s in stores:
            await s.aclose()
