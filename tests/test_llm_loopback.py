"""AsyncLLMClient end to end against the loopback FakeOpenRouter (aiohttp transport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from audit_core import AsyncLLMClient, LLMBudgetExceededError, LLMError, LLMRateLimitError
from audit_core.retry import RetryPolicy
from audit_core.testing import FakeOpenRouter


def echo(body: Any) -> str:
    return f"echo:{body['messages'][-1]['content']}"


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter(responder=echo) as s:
        yield s


def client(server: FakeOpenRouter, policy: RetryPolicy, **kw: Any) -> AsyncLLMClient:
    return AsyncLLMClient(
        "test-key", base_url=server.url, retry_policy=policy, registry=CollectorRegistry(), **kw
    )


async def test_batch_bounded_concurrency_and_order(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """500 prompts at concurrency 16: the server sees exactly 16 at most, order is kept."""
    server.latency_s = 0.01
    progress: list[tuple[int, int]] = []
    async with client(server, policy, max_concurrency=16) as llm:
        prompts = [f"p{i}" for i in range(500)]
        results = await llm.batch(prompts, on_progress=lambda d, t: progress.append((d, t)))
    assert server.stats.max_in_flight == 16
    assert server.stats.requests == 500
    assert [r.text for r in results if not isinstance(r, LLMError)] == [
        f"echo:p{i}" for i in range(500)
    ]
    assert progress[-1] == (500, 500)
    assert [d for d, _ in progress] == list(range(1, 501))


async def test_concurrency_cap_holds_across_batches(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """Two batches and loose calls at once still never exceed max_concurrency."""
    server.latency_s = 0.01
    async with client(server, policy, max_concurrency=5) as llm:
        await asyncio.gather(
            llm.batch([f"a{i}" for i in range(40)]),
            llm.batch([f"b{i}" for i in range(40)]),
            *(llm.complete(f"c{i}") for i in range(20)),
        )
    assert server.stats.max_in_flight == 5
    assert server.stats.requests == 100


async def test_one_failure_does_not_sink_the_batch(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """With return_exceptions (default) the failed slot holds its error, others succeed."""
    server.script(["400"])
    async with client(server, policy, max_concurrency=1) as llm:
        results = await llm.batch(["a", "b", "c"])
    assert isinstance(results[0], LLMError)
    assert [getattr(r, "text", None) for r in results[1:]] == ["echo:b", "echo:c"]


async def test_return_exceptions_false_raises_first_failure(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """With return_exceptions=False the first failure is raised and the rest stop."""
    server.script(["401"])
    async with client(server, policy, max_concurrency=1) as llm:
        with pytest.raises(LLMError) as info:
            await llm.batch([f"p{i}" for i in range(20)], return_exceptions=False)
    assert info.value.status_code == 401
    assert server.stats.requests < 20


async def test_transient_faults_retried_end_to_end(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """429, 502, a reset connection and errors inside a 200 are all retried to success."""
    server.script(["429", "502", "reset", "error_200", "choice_error"])
    async with client(server, policy, max_concurrency=1, max_retries=5) as llm:
        r = await llm.complete("hello")
    assert r.text == "echo:hello"
    assert r.attempts == 6


async def test_rate_limit_exhausted(server: FakeOpenRouter, policy: RetryPolicy) -> None:
    """429 on every attempt ends in LLMRateLimitError after max_retries + 1 attempts."""
    server.script(["429"] * 3)
    async with client(server, policy, max_retries=2) as llm:
        with pytest.raises(LLMRateLimitError) as info:
            await llm.complete("x")
    assert info.value.attempts == 3
    assert server.stats.requests == 3


async def test_provider_cost_is_exact(server: FakeOpenRouter, policy: RetryPolicy) -> None:
    """The server's usage.cost (exact decimal text) is the recorded cost."""
    async with client(server, policy) as llm:
        r = await llm.complete("abcdefgh")  # 2 prompt tokens, "echo:abcdefgh" = 4 tokens
    assert r.cost_source == "provider"
    assert r.cost_usd == Decimal("0.00000015") * 2 + Decimal("0.0000006") * 4


async def test_budget_holds_under_200_concurrent_calls(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """A budget that fits 10 worst cases: at most 10 sent, the rest refused, spend <= budget."""
    server.latency_s = 0.02
    async with client(server, policy, budget_usd="0.0000001") as probe:
        with pytest.raises(LLMBudgetExceededError) as info:
            await probe.complete("p000", max_tokens=20, agent_name="probe")
    worst = info.value.required_usd
    assert worst is not None
    assert server.stats.requests == 0
    budget = worst * 10 + worst / 2
    async with client(server, policy, budget_usd=budget, max_concurrency=64) as llm:
        results = await asyncio.gather(
            *(
                llm.complete(f"p{i:03d}", max_tokens=20, agent_name=f"agent{i % 3}")
                for i in range(200)
            ),
            return_exceptions=True,
        )
        ok = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, LLMBudgetExceededError)]
        assert len(ok) == 10
        assert len(refused) == 190
        assert server.stats.requests == 10
        assert llm.costs.total_usd <= budget
        assert llm.costs.reserved_usd == 0
        assert llm.costs.remaining_usd == budget - llm.costs.total_usd
        assert sum(llm.costs.by_model.values()) == llm.costs.total_usd
        assert sum(llm.costs.by_agent.values()) == llm.costs.total_usd
        assert llm.costs.total_usd == sum(r.cost_usd for r in ok)


async def test_budget_with_unpriced_model_refuses(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """With a budget, a model whose worst case cannot be priced is refused, nothing sent."""
    from audit_core import ConfigError

    async with client(server, policy, budget_usd=1) as llm:
        with pytest.raises(ConfigError, match="mystery/model"):
            await llm.complete("x", model="mystery/model")
    assert server.stats.requests == 0


async def test_cancelling_a_batch_cancels_in_flight_requests(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """Cancelling batch() stops its requests and releases every reservation."""
    server.latency_s = 30.0
    registry = CollectorRegistry()
    async with AsyncLLMClient(
        "k",
        base_url=server.url,
        retry_policy=policy,
        registry=registry,
        max_concurrency=4,
        budget_usd=10,
    ) as llm:
        task = asyncio.create_task(llm.batch([f"p{i}" for i in range(20)]))
        await asyncio.wait_for(server.wait_in_flight(lambda n: n == 4), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The server sees the four requests abandoned: they were cancelled on the wire.
        await asyncio.wait_for(server.wait_in_flight(lambda n: n == 0), 10)
        assert llm.costs.reserved_usd == 0
        assert registry.get_sample_value("audit_llm_in_flight") == 0
    assert server.stats.requests == 4


async def test_stock_httpx_transport_selectable(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """transport='httpx' uses httpx's own pool and gives the same results."""
    async with client(server, policy, transport="httpx") as llm:
        assert await llm.call("z") == "echo:z"


async def test_refresh_pricing_from_loopback(server: FakeOpenRouter, policy: RetryPolicy) -> None:
    """The fake server's /models feeds refresh_pricing."""
    async with client(server, policy) as llm:
        assert await llm.refresh_pricing() == 4
        assert llm.pricing["openai/gpt-4-turbo"].output_per_mtok == Decimal(30)


async def test_every_call_is_recorded_in_the_audit_trail(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """With trail=, each call (and each failure) lands in the hash-chained trail."""
    from audit_core import DatabricksClient
    from audit_core.db import AuditTrail, ensure_schema

    async with DatabricksClient.local(load_fixtures=False, registry=CollectorRegistry()) as wh:
        await ensure_schema(wh)
        trail = AuditTrail(wh, "run-llm")
        async with client(server, policy, trail=trail, max_retries=0) as llm:
            ok = await llm.complete("hello", agent_name="classifier")
            server.script(["401"])
            with pytest.raises(LLMError):
                await llm.complete("again", agent_name="classifier")
        await trail.complete()
        rows = (
            await wh.query_arrow(
                "SELECT agent_name, tool_called, llm_model, llm_tokens_used, llm_cost_dollars, "
                "error_message, input_data FROM audit_trail ORDER BY log_sequence_number"
            )
        ).to_pylist()
        assert (await trail.verify()).status == "ok"
    assert len(rows) == 2
    assert rows[0]["agent_name"] == "classifier"
    assert rows[0]["llm_tokens_used"] == ok.usage.total_tokens > 0
    assert rows[0]["llm_cost_dollars"] == ok.cost_usd.quantize(Decimal("0.000001"))
    assert rows[0]["error_message"] is None
    assert "LLMAuthError" in rows[1]["error_message"]
    assert "sha256" in str(rows[0]["input_data"])  # the prompt's hash and length, not its text
    assert "hello" not in str(rows)  # prompt text stays out of the trail
