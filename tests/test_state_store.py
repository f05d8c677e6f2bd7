"""AsyncStateStore against the embedded store and a real redis-server."""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from unittest.mock import ANY

import pytest
from prometheus_client import CollectorRegistry

from audit_core import (
    AsyncStateStore,
    ClientClosedError,
    ConfigError,
    Settings,
    StateConflictError,
    StateManagerError,
    StoredState,
)


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return f"memory://{uuid.uuid4().hex}"
    server = request.getfixturevalue("redis_server")
    return str(server.url)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[AsyncStateStore]:
    async with AsyncStateStore.from_url(
        store_url, key_prefix=f"t{uuid.uuid4().hex[:8]}", registry=CollectorRegistry()
    ) as s:
        yield s


class Colour(enum.Enum):
    RED = "red"


async def test_round_trip_keeps_json_fidelity(store: AsyncStateStore) -> None:
    """Nested JSON-native state comes back equal: big ints exact, [] a list, {} a dict."""
    state: dict[str, Any] = {
        "big": 2**63 + 1,
        "neg": -(2**70),
        "empty_list": [],
        "empty_dict": {},
        "nested": {"a": [1, {"b": None, "c": [True, False]}], "s": 'ünïcödé "quoted" \\ /'},
        "float": 0.1,
    }
    version = await store.save("run-1", state)
    assert version == 1
    restored = await store.restore("run-1")
    assert restored == state
    assert type(restored["empty_list"]) is list
    assert type(restored["empty_dict"]) is dict
    assert restored["big"] == 2**63 + 1


async def test_ttl_and_key_layout(store: AsyncStateStore) -> None:
    """The key is {prefix}:{run_id}:state with a ~24 h TTL."""
    await store.save("run-ttl", {"x": 1})
    assert store.key("run-ttl") == f"{store.key_prefix}:run-ttl:state"
    assert 86_000 <= await store.ttl("run-ttl") <= 86_400
    assert await store.client.exists(f"{store.key_prefix}:run-ttl:state") == 1


async def test_absent_run_restores_empty(store: AsyncStateStore) -> None:
    """restore of an unknown run is {} (seed behaviour)."""
    assert await store.restore("never-saved") == {}
    assert (await store.load("never-saved")).version == 0


async def test_non_json_types_documented_conversions(store: AsyncStateStore) -> None:
    """datetime, date, Decimal, UUID, Enum and set become their documented JSON forms."""
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    await store.save(
        "run-types",
        {
            "at": datetime(2025, 1, 31, 12, 0, tzinfo=UTC),
            "day": date(2025, 1, 31),
            "amount": Decimal("12.30"),
            "id": u,
            "colour": Colour.RED,
            "tags": {"b", "a"},
            "pair": (1, 2),
        },
    )
    assert await store.restore("run-types") == {
        "at": "2025-01-31T12:00:00+00:00",
        "day": "2025-01-31",
        "amount": "12.30",
        "id": str(u),
        "colour": "red",
        "tags": ["a", "b"],
        "pair": [1, 2],
    }


@pytest.mark.parametrize(
    ("state", "path"),
    [
        ({"a": {"b": object()}}, "state.a.b"),
        ({"a": [1, b"bytes"]}, "state.a[1]"),
        ({"a": float("nan")}, "state.a"),
        ({"a": {1: "int key"}}, "state.a"),
        ({"a": Decimal("Infinity")}, "state.a"),
    ],
)
async def test_unserialisable_value_names_path_and_writes_nothing(
    store: AsyncStateStore, state: dict[str, Any], path: str
) -> None:
    """A value JSON cannot hold raises StateManagerError naming its key path; nothing written."""
    await store.save("run-bad", {"kept": True})
    with pytest.raises(StateManagerError, match=path.replace("[", r"\[").replace("]", r"\]")):
        await store.save("run-bad", state)
    with pytest.raises(StateManagerError):
        await store.update("run-bad", state)
    assert await store.restore("run-bad") == {"kept": True}


@pytest.mark.parametrize(
    "run_id", ["", "a:b", "run*", "x?", "a[1]", "{tag}", "has space", "-lead", "a" * 201]
)
async def test_bad_run_ids_rejected(store: AsyncStateStore, run_id: str) -> None:
    """Empty ids and ids with key-pattern characters are refused before touching Redis."""
    with pytest.raises(StateManagerError, match="invalid run id"):
        await store.save(run_id, {"x": 1})
    with pytest.raises(StateManagerError, match="invalid run id"):
        await store.restore(run_id)


class _SneakyId(str):
    """A run id that hashes and compares like a valid, already used one."""

    def __hash__(self) -> int:
        return hash("run-ok")

    def __eq__(self, other: object) -> bool:
        return other == "run-ok"


async def test_run_ids_are_checked_after_the_key_cache_is_warm(store: AsyncStateStore) -> None:
    """The cached keys never let an invalid id through: not after a valid one was used,
    not as a str subclass posing as a cached id, not after the cache was emptied."""
    await store.save("run-ok", {"x": 1})
    for run_id in ("run-ok:x", "run-ok*", _SneakyId("a:b*")):
        with pytest.raises(StateManagerError, match="invalid run id"):
            await store.save(run_id, {"x": 2})
        with pytest.raises(StateManagerError, match="invalid run id"):
            await store.restore(run_id)
    for i in range(2100):  # past the cache's bound, twice
        assert store.key(f"r{i}") == f"{store.key_prefix}:r{i}:state"
    assert store.key("run-ok") == f"{store.key_prefix}:run-ok:state"
    assert await store.restore("run-ok") == {"x": 1}
    prefix, store.key_prefix = store.key_prefix, "other"
    assert store.key("run-ok") == "other:run-ok:state"
    store.key_prefix = prefix
    assert store.key("run-ok") == f"{prefix}:run-ok:state"


async def test_writes_load_the_script_again_when_the_server_lost_it(
    store: AsyncStateStore,
) -> None:
    """SCRIPT FLUSH (what a restart does) between writes: the next write reloads the
    script and its compare-and-set still holds."""
    assert await store.save("run-flush", {"n": 1}) == 1
    await store.client.script_flush()
    assert await store.update("run-flush", {"n": 2}, expected_version=1) == 2
    await store.client.script_flush()
    with pytest.raises(StateConflictError):
        await store.update("run-flush", {"n": 3}, expected_version=1)
    assert await store.load("run-flush") == StoredState({"n": 2}, 2, ANY)


async def test_huge_state_is_a_clear_error(store: AsyncStateStore) -> None:
    """A state over the 8 MiB limit is refused with its size; the old state stays."""
    await store.save("run-huge", {"small": 1})
    with pytest.raises(StateManagerError, match="over the store's limit"):
        await store.save("run-huge", {"blob": "x" * (11 * 1024 * 1024)})
    assert await store.restore("run-huge") == {"small": 1}


async def test_corrupt_value_is_a_clear_error(store: AsyncStateStore) -> None:
    """Garbage under a run's key gives StateManagerError, and the store stays usable."""
    await store.client.set(store.key("run-corrupt"), b"\x00not json{")
    with pytest.raises(StateManagerError, match="not valid JSON"):
        await store.restore("run-corrupt")
    await store.client.set(store.key("run-corrupt2"), b"[1,2]")
    with pytest.raises(StateManagerError, match="not an object"):
        await store.restore("run-corrupt2")
    await store.save("run-ok", {"fine": True})
    assert await store.restore("run-ok") == {"fine": True}


async def test_seed_format_value_is_read(store: AsyncStateStore) -> None:
    """A bare state dict written by the original design is read as version 0."""
    await store.client.set(store.key("run-legacy"), b'{"status": "running", "step": 2}')
    loaded = await store.load("run-legacy")
    assert loaded.state == {"status": "running", "step": 2}
    assert loaded.version == 0
    assert await store.update("run-legacy", {"step": 3}) == 1
    assert await store.restore("run-legacy") == {"status": "running", "step": 3}


async def test_versions_and_expected_version(store: AsyncStateStore) -> None:
    """Each write bumps the version; a stale expected_version is a StateConflictError."""
    assert await store.save("run-v", {"a": 1}) == 1
    assert await store.update("run-v", {"b": 2}, expected_version=1) == 2
    with pytest.raises(StateConflictError, match="expected 1"):
        await store.update("run-v", {"c": 3}, expected_version=1)
    assert await store.restore("run-v") == {"a": 1, "b": 2}


async def test_callable_update(store: AsyncStateStore) -> None:
    """A function update gets the current state and its result is stored."""
    await store.save("run-fn", {"n": 1, "items": [1]})

    def bump(state: dict[str, Any]) -> dict[str, Any]:
        state["n"] += 1
        state["items"].append(state["n"])
        return state

    await store.update("run-fn", bump)
    assert await store.restore("run-fn") == {"n": 2, "items": [1, 2]}
    with pytest.raises(StateManagerError, match="not a mapping"):
        await store.update("run-fn", lambda s: None)  # type: ignore[arg-type,return-value]


async def test_hundred_concurrent_updates_lose_nothing(store: AsyncStateStore) -> None:
    """100 concurrent update() calls each adding a key: all 100 keys are there."""
    await store.save("run-many", {})
    versions = await asyncio.gather(*(store.update("run-many", {f"k{i}": i}) for i in range(100)))
    state = await store.restore("run-many")
    assert state == {f"k{i}": i for i in range(100)}
    assert sorted(versions) == list(range(2, 102))


async def test_writers_in_one_process_queue_per_run_across_runs(store_url: str) -> None:
    """Concurrent updates alternating between runs (so the kept last-run lock changes
    hands all the time) still queue per run: none conflicts, none is lost."""
    registry = CollectorRegistry()
    async with AsyncStateStore.from_url(store_url, key_prefix="q", registry=registry) as s:
        runs = ("run-qa", "run-qb", "run-qa", "run-qc")

        def bump(state: dict[str, Any]) -> dict[str, Any]:
            return {"n": state.get("n", 0) + 1}

        await asyncio.gather(*(s.update(runs[i % 4], bump) for i in range(120)))
        assert [(await s.restore(r))["n"] for r in ("run-qa", "run-qb", "run-qc")] == [60, 30, 30]
    conflicts = {"op": "update", "outcome": "conflict"}
    assert registry.get_sample_value("audit_state_ops_total", conflicts) is None


async def test_concurrent_updates_from_two_stores_lose_nothing(store_url: str) -> None:
    """Two stores (as two workers) updating one run concurrently lose no key."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    registry = CollectorRegistry()
    async with (
        AsyncStateStore.from_url(store_url, key_prefix=prefix, registry=registry) as a,
        AsyncStateStore.from_url(store_url, key_prefix=prefix, registry=registry) as b,
    ):
        await asyncio.gather(
            *(
                (a if i % 2 else b).update("run-shared", lambda s, i=i: {**s, f"k{i}": i})
                for i in range(60)
            )
        )
        assert await a.restore("run-shared") == {f"k{i}": i for i in range(60)}


async def test_mark_complete_keeps_intermediate_results(store: AsyncStateStore) -> None:
    """mark_complete merges status/summary/completed_at and keeps the rest, longer TTL."""
    await store.save("run-done", {"step": 5, "flags": [1, 2, 3]})
    await store.mark_complete("run-done", {"flags": 3})
    state = await store.restore("run-done")
    assert state["step"] == 5
    assert state["flags"] == [1, 2, 3]
    assert state["status"] == "completed"
    assert state["summary"] == {"flags": 3}
    assert datetime.fromisoformat(state["completed_at"]).tzinfo is not None
    assert await store.ttl("run-done") > 86_400


async def test_delete_and_list_runs(store: AsyncStateStore) -> None:
    """list_runs finds runs by status without KEYS; delete removes one."""
    await store.save("r-a", {"status": "running"})
    await store.save("r-b", {"status": "running"})
    await store.save("r-c", {"x": 1})
    await store.mark_complete("r-c", {})
    running = {r.run_id for r in await store.list_runs("running")}
    assert running == {"r-a", "r-b"}
    completed = await store.list_runs("completed")
    assert [r.run_id for r in completed] == ["r-c"]
    assert len(await store.list_runs()) == 3
    assert len(await store.list_runs(limit=2)) == 2
    assert await store.delete("r-a") is True
    assert await store.delete("r-a") is False
    assert {r.run_id for r in await store.list_runs("running")} == {"r-b"}


async def test_lock_one_holder_at_a_time(store: AsyncStateStore) -> None:
    """While one task holds a run's lock, another cannot take it."""
    held = asyncio.Event()
    release = asyncio.Event()
    holders: list[str] = []

    async def first() -> None:
        async with store.lock("run-lock", ttl_s=5):
            holders.append("first")
            held.set()
            await release.wait()
            holders.remove("first")

    task = asyncio.create_task(first())
    await held.wait()
    with pytest.raises(StateConflictError, match="locked by another runner"):
        async with store.lock("run-lock", ttl_s=5):
            holders.append("second")
    assert holders == ["first"]
    release.set()
    await task
    async with store.lock("run-lock", ttl_s=5):
        assert holders == []


async def test_contending_tasks_never_overlap(store: AsyncStateStore) -> None:
    """Ten tasks that wait for the lock run their critical sections one at a time."""
    inside = 0
    max_inside = 0
    order: list[int] = []

    async def worker(i: int) -> None:
        nonlocal inside, max_inside
        async with store.lock("run-mutex", ttl_s=5, wait_s=10):
            inside += 1
            max_inside = max(max_inside, inside)
            await asyncio.sleep(0)  # yield inside the critical section
            order.append(i)
            inside -= 1

    await asyncio.gather(*(worker(i) for i in range(10)))
    assert max_inside == 1
    assert sorted(order) == list(range(10))


async def test_crashed_holders_lock_expires(store: AsyncStateStore) -> None:
    """A holder that never releases (crashed, not extending) loses the lock after ttl."""
    crashed = store.client.lock(f"{store.key_prefix}:run-crash:lock", timeout=0.3)
    assert await crashed.acquire(blocking=False)
    async with store.lock("run-crash", ttl_s=5, wait_s=3) as held:
        assert await held.owned()


async def test_cancelled_writes_leave_store_consistent(store: AsyncStateStore) -> None:
    """Cancelling save/update mid-flight leaves a whole old or new state and a usable store."""
    await store.save("run-cancel", {"v": 0})
    cancelled = 0
    for i in range(1, 40):
        task = asyncio.create_task(store.update("run-cancel", {"v": i, f"k{i}": "x" * 2000}))
        for _ in range(i % 6):
            await asyncio.sleep(0)  # let the write get to a different point each round
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            cancelled += 1
        state = await store.restore("run-cancel")
        v = state["v"]
        assert v == 0 or state[f"k{v}"] == "x" * 2000
    assert cancelled > 0
    assert await store.update("run-cancel", {"final": True}) > 1
    assert (await store.restore("run-cancel"))["final"] is True


async def test_closed_store_is_a_clear_error(store_url: str) -> None:
    """aclose twice is fine; using a closed store raises ClientClosedError."""
    s = AsyncStateStore.from_url(store_url, registry=CollectorRegistry())
    await s.aclose()
    await s.aclose()
    with pytest.raises(ClientClosedError, match="closed"):
        await s.restore("x")
    with pytest.raises(ClientClosedError):
        await s.save("x", {})


def test_bad_construction() -> None:
    """Unknown URL schemes and modes are ConfigError."""
    with pytest.raises(ConfigError, match="scheme"):
        AsyncStateStore.from_url("http://x")
    with pytest.raises(ConfigError, match="on_unavailable"):
        AsyncStateStore.from_url("memory://", on_unavailable="ignore")  # type: ignore[arg-type]


async def test_from_settings_uses_embedded_store_by_default() -> None:
    """With no Redis configured the store is embedded and says it is not durable."""
    async with AsyncStateStore.from_settings(Settings.from_env({})) as s:
        assert s.durable is False
        assert s.ttl_s == 86_400
        assert await s.health() is True


async def test_operations_are_counted_and_timed(store_url: str) -> None:
    """audit_state_ops_total{op,outcome} and audit_state_op_seconds{op} follow each call."""
    registry = CollectorRegistry()
    async with AsyncStateStore.from_url(store_url, key_prefix="m", registry=registry) as s:
        await s.save("run-m", {"a": 1})
        await s.restore("run-m")
        await s.restore("run-m")
    assert registry.get_sample_value("audit_state_ops_total", {"op": "save", "outcome": "ok"}) == 1
    assert (
        registry.get_sample_value("audit_state_ops_total", {"op": "restore", "outcome": "ok"}) == 2
    )
    assert registry.get_sample_value("audit_state_op_seconds_count", {"op": "restore"}) == 2
    assert registry.get_sample_value("audit_state_degraded") in (None, 0)


async def test_an_unclosed_store_that_owns_its_client_warns(store_url: str) -> None:
    """A used store that built its own client warns when collected unclosed; one on a
    caller's client does not (the caller closes that)."""
    s = AsyncStateStore.from_url(store_url, registry=CollectorRegistry())
    await s.save("r", {"x": 1})
    with pytest.warns(ResourceWarning, match="unclosed AsyncStateStore"):
        s.__del__()
    await s.aclose()
    borrowed = AsyncStateStore(s.client, registry=CollectorRegistry())
    assert borrowed._owns_resources is False


def test_a_url_is_not_a_client() -> None:
    """The constructor takes a client; a URL goes through from_url."""
    with pytest.raises(ConfigError, match="from_url"):
        AsyncStateStore("memory://")
