"""classify(): validated answers, one re-ask, escalation; the response cache. Loopback server."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from audit_core import AsyncLLMClient, AsyncStateStore, MemoryCache, StateStoreCache
from audit_core.llm import cache_key
from audit_core.retry import RetryPolicy
from audit_core.testing import FakeOpenRouter

LABELS = ["business", "personal", "suspicious"]
CHEAP, STRONG = "openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"


class Oracle:
    """Answers like a model would; items containing 'garbled' or 'unsure' misbehave on
    the cheap model (an off-list label on every ask / a low confidence)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, list[str]]] = []
        self.formats: list[Any] = []

    def __call__(self, body: Any) -> str:
        self.formats.append(body.get("response_format"))
        items = json.loads(body["messages"][-1]["content"])["items"]
        model = body["model"]
        self.asked.append((model, [i["text"] for i in items]))
        answers = []
        for item in items:
            text = item["text"]
            label, confidence = "business", 0.9
            if "personal" in text:
                label = "personal"
            if model == CHEAP and "garbled" in text:
                label = "definitely-not-a-label"
            if model == CHEAP and "unsure" in text:
                confidence = 0.3
            answers.append(
                {"id": item["id"], "label": label, "confidence": confidence, "rationale": "r"}
            )
        if any("partial" in i["text"] for i in items) and len(items) > 1:
            answers = answers[:-1]  # drop the last answer: a partial reply
        return json.dumps({"answers": answers})


@pytest.fixture
async def server() -> AsyncIterator[tuple[FakeOpenRouter, Oracle]]:
    oracle = Oracle()
    async with FakeOpenRouter(responder=oracle) as s:
        yield s, oracle


def make(
    server: FakeOpenRouter,
    policy: RetryPolicy,
    registry: CollectorRegistry | None = None,
    **kw: Any,
) -> AsyncLLMClient:
    return AsyncLLMClient(
        "k",
        base_url=server.url,
        retry_policy=policy,
        registry=registry or CollectorRegistry(),
        default_model=CHEAP,
        escalation_model=STRONG,
        **kw,
    )


async def test_valid_answers_in_order_with_costs(
    server: tuple[FakeOpenRouter, Oracle], policy: RetryPolicy
) -> None:
    srv, oracle = server
    async with make(srv, policy) as llm:
        items = [
            f"card charge {i} personal" if i % 3 == 0 else f"vendor invoice {i}" for i in range(25)
        ]
        out = await llm.classify(
            items, LABELS, instructions="Classify spend.", agent_name="t", batch_size=10
        )
    assert [c.label for c in out] == ["personal" if i % 3 == 0 else "business" for i in range(25)]
    assert srv.stats.requests == 3  # 10 + 10 + 5
    assert all(c.cost_usd > 0 and not c.escalated for c in out)
    assert sum(c.cost_usd for c in out) == pytest.approx(llm.costs.total_usd, rel=Decimal("1e-9"))
    assert out[0].model == CHEAP
    schema = oracle.formats[0]["json_schema"]["schema"]
    assert schema["properties"]["answers"]["items"]["properties"]["label"]["enum"] == LABELS


async def test_off_list_label_is_reasked_then_escalated_once(
    server: tuple[FakeOpenRouter, Oracle], policy: RetryPolicy
) -> None:
    srv, oracle = server
    registry = CollectorRegistry()
    async with make(srv, policy, registry) as llm:
        out = await llm.classify(
            ["ok one", "garbled two", "ok three"],
            LABELS,
            instructions="x",
            agent_name="t",
            batch_size=3,
        )
    assert [m for m, _ in oracle.asked] == [CHEAP, CHEAP, STRONG]
    assert oracle.asked[1][1] == ["garbled two"]  # only the bad item is re-asked
    assert oracle.asked[2][1] == ["garbled two"]
    assert out[1].label == "business"
    assert out[1].escalated
    assert out[1].escalation_reason == "invalid"
    assert out[1].model == STRONG
    assert not out[0].escalated
    assert registry.get_sample_value("audit_llm_escalations_total", {"reason": "invalid"}) == 1


async def test_low_confidence_escalates_exactly_once(
    server: tuple[FakeOpenRouter, Oracle], policy: RetryPolicy
) -> None:
    srv, oracle = server
    registry = CollectorRegistry()
    async with make(srv, policy, registry) as llm:
        out = await llm.classify(["unsure about this"], LABELS, instructions="x", agent_name="t")
    assert [m for m, _ in oracle.asked] == [CHEAP, STRONG]
    assert out[0].escalation_reason == "low_confidence"
    assert out[0].confidence == 0.9
    assert (
        registry.get_sample_value("audit_llm_escalations_total", {"reason": "low_confidence"}) == 1
    )
    assert llm.escalations == {"low_confidence": 1}


async def test_partial_answer_reasks_only_the_missing_item(
    server: tuple[FakeOpenRouter, Oracle], policy: RetryPolicy
) -> None:
    srv, oracle = server
    async with make(srv, policy) as llm:
        out = await llm.classify(
            ["a partial", "b", "c"], LABELS, instructions="x", agent_name="t", batch_size=3
        )
    assert oracle.asked[1] == (CHEAP, ["c"])
    assert [c.label for c in out] == ["business"] * 3
    assert not any(c.escalated for c in out)


async def test_duplicates_are_asked_once(
    server: tuple[FakeOpenRouter, Oracle], policy: RetryPolicy
) -> None:
    srv, _ = server
    items = [f"item {i}" for i in range(80)] + [f"item {i}" for i in range(20)]
    async with make(srv, policy) as llm:
        out = await llm.classify(items, LABELS, instructions="x", agent_name="t", batch_size=1)
    assert srv.stats.requests == 80
    assert len(out) == 100
    assert out[80] == out[0]


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_second_run_with_redis_cache_sends_nothing(
    server: tuple[FakeOpenRouter, Oracle],
    policy: RetryPolicy,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    srv, _ = server
    url = (
        f"memory://{uuid.uuid4().hex}"
        if backend == "memory"
        else request.getfixturevalue("redis_server").url
    )
    items = [f"txn {i}" for i in range(30)]
    async with AsyncStateStore.from_url(
        url, key_prefix=f"c{uuid.uuid4().hex[:6]}", registry=CollectorRegistry()
    ) as store:
        async with make(srv, policy, cache=StateStoreCache(store, ttl_s=3600)) as first:
            one = await first.classify(
                items, LABELS, instructions="x", agent_name="t", batch_size=5
            )
        sent = srv.stats.requests
        assert sent == 6
        registry = CollectorRegistry()
        async with make(srv, policy, registry, cache=StateStoreCache(store, ttl_s=3600)) as second:
            two = await second.classify(
                items, LABELS, instructions="x", agent_name="t", batch_size=5
            )
        assert srv.stats.requests == sent  # nothing sent
        assert [c.label for c in two] == [c.label for c in one]
        assert all(c.cached and c.cost_usd == 0 for c in two)
        assert second.costs.total_usd == 0
        snap = second.costs.snapshot()
        assert snap["saved"]["calls"] == 6
        assert Decimal(snap["saved"]["usd"]) == first.costs.total_usd
        assert snap["saved"]["tokens"] == first.costs.prompt_tokens + first.costs.completion_tokens
        assert registry.get_sample_value("audit_llm_cache_hits_total") == 6
        key = f"{store.key_prefix}:llmcache:"
        assert await store.client.ttl(key + cache_key({"x": 1})) == -2  # absent key
        assert len([k async for k in store.client.scan_iter(match=key + "*")]) == 6


async def test_identical_concurrent_requests_are_sent_once(
    server: tuple[FakeOpenRouter, Oracle], policy: RetryPolicy
) -> None:
    srv, _ = server
    srv.latency_s = 0.02
    prompt = json.dumps({"items": [{"id": "1", "text": "same"}]})
    async with make(srv, policy, cache=MemoryCache(100)) as llm:
        results = await llm.batch([prompt] * 10)
    assert srv.stats.requests == 1
    assert sum(1 for r in results if getattr(r, "cached", False)) == 9


async def test_nonzero_temperature_is_not_cached_unless_asked(
    server: tuple[FakeOpenRouter, Oracle], policy: RetryPolicy
) -> None:
    srv, _ = server
    prompt = json.dumps({"items": [{"id": "1", "text": "t"}]})
    async with make(srv, policy, cache=MemoryCache(100)) as llm:
        await llm.complete(prompt, temperature=0.7)
        await llm.complete(prompt, temperature=0.7)
    assert srv.stats.requests == 2
    async with make(srv, policy, cache=MemoryCache(100), cache_nonzero_temperature=True) as llm:
        await llm.complete(prompt, temperature=0.7)
        again = await llm.complete(prompt, temperature=0.7)
    assert srv.stats.requests == 3
    assert again.cached


def test_cache_keys_differ_by_model_prompt_and_format() -> None:
    base = {"model": "a", "messages": [{"role": "user", "content": "p"}], "temperature": 0.0}
    keys = {
        cache_key(base),
        cache_key({**base, "model": "b"}),
        cache_key({**base, "messages": [{"role": "user", "content": "q"}]}),
        cache_key({**base, "response_format": {"type": "json_object"}}),
        cache_key({**base, "max_tokens": 10}),
    }
    assert len(keys) == 5
    assert cache_key(dict(reversed(list(base.items())))) == cache_key(base)  # order-insensitive


def test_memory_cache_is_bounded() -> None:
    import asyncio

    cache = MemoryCache(3)
    for i in range(10):
        asyncio.run(cache.set(str(i), {"i": i}))
    assert len(cache) == 3
    assert asyncio.run(cache.get("0")) is None
    assert asyncio.run(cache.get("9")) == {"i": 9}
