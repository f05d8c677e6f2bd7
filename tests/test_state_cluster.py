"""The store on a real three-master Redis Cluster (redis.asyncio.RedisCluster).

Every command and Lua script touches one key, so runs spread over all hash slots and
nothing raises CROSSSLOT. list_runs scans every master.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio.cluster import RedisCluster

from audit_core import AsyncStateStore, StateConflictError
from tests.services import RedisClusterServers


@pytest.fixture
async def cluster_store(redis_cluster: RedisClusterServers) -> AsyncIterator[AsyncStateStore]:
    host, port = redis_cluster.startup_node
    client = RedisCluster(host=host, port=port)
    prefix = f"c{uuid.uuid4().hex[:8]}"
    async with AsyncStateStore(client, key_prefix=prefix, registry=CollectorRegistry()) as store:
        yield store
    await client.aclose()


async def test_runs_spread_over_every_master(
    cluster_store: AsyncStateStore, redis_cluster: RedisClusterServers
) -> None:
    """30 runs land on all three masters; each round-trips and list_runs finds all of them."""
    run_ids = [f"run-{i}" for i in range(30)]
    for i, run_id in enumerate(run_ids):
        await cluster_store.save(run_id, {"i": i})
    client = cluster_store.client
    slots = {client.keyslot(cluster_store.key(r)) for r in run_ids}
    owners = {client.nodes_manager.get_node_from_slot(s).port for s in slots}
    assert owners == {n.port for n in redis_cluster.nodes}
    for i, run_id in enumerate(run_ids):
        assert await cluster_store.restore(run_id) == {"i": i}
    listed = await cluster_store.list_runs(limit=100)
    assert sorted(r.run_id for r in listed) == sorted(run_ids)


async def test_concurrent_updates_and_conflicts_on_cluster(cluster_store: AsyncStateStore) -> None:
    """The Lua compare-and-set runs on the key's node: 50 concurrent merges lose nothing."""
    await asyncio.gather(*(cluster_store.update("busy", {f"k{i}": i}) for i in range(50)))
    state = await cluster_store.load("busy")
    assert state.state == {f"k{i}": i for i in range(50)}
    assert state.version == 50
    with pytest.raises(StateConflictError):
        await cluster_store.update("busy", {"late": True}, expected_version=3)


async def test_mark_complete_lock_and_delete_on_cluster(cluster_store: AsyncStateStore) -> None:
    await cluster_store.save("done", {"found": [1, 2]})
    async with cluster_store.lock("done", ttl_s=5, wait_s=1):
        await cluster_store.mark_complete("done", {"flags": 2})
    state = await cluster_store.restore("done")
    assert state["found"] == [1, 2]
    assert state["status"] == "completed"
    assert [r.run_id for r in await cluster_store.list_runs(status="completed")] == ["done"]
    assert await cluster_store.ttl("done") > cluster_store.ttl_s
    assert await cluster_store.delete("done") is True
    assert await cluster_store.restore("done") == {}
