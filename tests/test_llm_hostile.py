"""AsyncLLMClient against a broken or hostile endpoint (the loopback FakeOpenRouter's faults).

Each test names the guarantee it attacks: budgets, validated usage, billed failures,
streaming, deadlines, error mapping, redaction, classify() and shared requests.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from audit_core import (
    AsyncLLMClient,
    ConfigError,
    LLMBudgetExceededError,
    LLMConnectionError,
    LLMContentFilterError,
    LLMError,
    LLMModerationError,
    LLMRateLimitError,
    LLMResponseError,
    LLMTimeoutError,
    MemoryCache,
    calculate_cost,
)
from audit_core.llm import LLMStream
from audit_core.retry import RetryPolicy
from audit_core.testing import FakeClock, FakeOpenRouter, capture_logs

CHEAP = "openai/gpt-4o-mini"
HAIKU = "anthropic/claude-3.5-haiku"


def echo(body: Any) -> str:
    return f"echo:{body['messages'][-1]['content']}"


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter(responder=echo) as s:
        yield s


def client(server: FakeOpenRouter, policy: RetryPolicy, **kw: Any) -> AsyncLLMClient:
    kw.setdefault("api_key", "test-key")
    kw.setdefault("registry", CollectorRegistry())
    return AsyncLLMClient(base_url=server.url, retry_policy=policy, **kw)


# --- budgets ---------------------------------------------------------------------------


async def test_budget_bounds_the_reply_with_max_tokens(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """With a budget and no max_tokens, the request carries the bound the reservation
    assumed, so a server that would talk forever cannot overspend."""
    server.responder = lambda body: "y" * 400_000  # 100k tokens if unbounded
    server.keep_requests = True
    async with client(server, policy, budget_usd="0.01", budget_completion_reserve=1000) as llm:
        r = await llm.complete("hello")
        assert server.requests_log[0]["max_tokens"] == 1000
        assert r.usage.completion_tokens == 1000
        assert r.finish_reason == "length"
        assert llm.costs.total_usd <= Decimal("0.01")
        assert llm.costs.reserved_usd == 0
        await llm.complete("again", max_tokens=5)
        assert server.requests_log[1]["max_tokens"] == 5  # the caller's, when smaller


async def test_overrun_is_recorded_at_real_cost_and_counted(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """A server that ignores max_tokens: the reply is charged what it cost, as an overrun."""
    server.script(["ignore_max_tokens"])
    registry = CollectorRegistry()
    async with client(server, policy, budget_usd="1", max_retries=0, registry=registry) as llm:
        r = await llm.complete("hi", max_tokens=10)
        assert r.usage.completion_tokens == server.overlong_tokens
        assert r.cost_usd == server.stats.billed_usd
        assert llm.costs.total_usd == server.stats.billed_usd
        assert llm.costs.overruns == 1
        assert llm.costs.reserved_usd == 0
    counted = registry.get_sample_value("audit_llm_budget_overruns_total", {"model": r.model})
    assert counted == 1


@pytest.mark.parametrize("fault", ["negative_cost", "nan_cost", "string_tokens", "usage_list"])
async def test_invalid_usage_is_a_response_error_with_reservation_settled(
    server: FakeOpenRouter, policy: RetryPolicy, fault: Any
) -> None:
    """Negative or NaN cost, non-integer tokens, a usage list: LLMResponseError, the call is
    charged its worst case (never a negative amount), nothing stays reserved, and the
    client keeps working."""
    server.script([fault])
    async with client(server, policy, budget_usd="0.05", max_retries=0) as llm:
        with pytest.raises(LLMResponseError, match="usage"):
            await llm.complete("hi", max_tokens=20)
        assert llm.costs.reserved_usd == 0
        assert llm.costs.total_usd > 0
        assert llm.costs.by_source == {"worst_case": llm.costs.total_usd}
        assert llm.costs.billed_failures == 1
        ok = await llm.complete("next", max_tokens=20)
        assert ok.cost_source == "provider"
        assert llm.costs.total_usd <= Decimal("0.05")


async def test_negative_cost_cannot_unlock_spending(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """After a reply claiming cost -1000, the budget still stops calls at its cap."""
    server.script(["negative_cost"])
    async with client(server, policy, budget_usd="0.0005", max_retries=0) as llm:
        with pytest.raises(LLMResponseError):
            await llm.complete("x", max_tokens=50)
        results = await asyncio.gather(
            *(llm.complete(f"p{i}", max_tokens=50) for i in range(200)), return_exceptions=True
        )
    assert any(isinstance(r, LLMBudgetExceededError) for r in results)
    assert llm.costs.total_usd <= Decimal("0.0005")
    assert llm.costs.total_usd >= 0


async def test_twenty_garbled_replies_leak_no_reservation(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """20 replies with unreadable usage leave nothing reserved: spent + left == budget."""
    server.script(["string_tokens", "usage_list"] * 10)
    async with client(server, policy, budget_usd="0.05", max_retries=0) as llm:
        results = await asyncio.gather(
            *(llm.complete(f"p{i}", max_tokens=20) for i in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, LLMResponseError) for r in results)
        assert llm.costs.reserved_usd == 0
        assert llm.costs.remaining_usd == Decimal("0.05") - llm.costs.total_usd


# --- every billed attempt in the ledger -------------------------------------------------


async def test_billed_errors_are_retried_and_every_attempt_charged(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """A 200 whose choice carries an error and a cost is retried; each billed attempt is in
    the ledger, so the ledger equals what the server billed."""
    server.script(["billed_error"] * 3)
    async with client(server, policy, max_retries=3) as llm:
        r = await llm.complete("hi")
    assert r.attempts == 4
    assert server.stats.billed_usd > r.cost_usd > 0
    assert llm.costs.total_usd == server.stats.billed_usd
    assert llm.costs.billed_failures == 3
    assert llm.costs.calls == 4


async def test_byok_upstream_cost_is_charged(server: FakeOpenRouter, policy: RetryPolicy) -> None:
    """BYOK: cost 0 and the real cost in cost_details.upstream_inference_cost."""
    server.script(["byok"])
    async with client(server, policy) as llm:
        r = await llm.complete("hello there")
    assert r.cost_source == "provider"
    assert r.cost_usd == server.stats.billed_usd > 0


async def test_missing_usage_is_unpriced(server: FakeOpenRouter, policy: RetryPolicy) -> None:
    """No usage: 'unpriced', $0 without a budget, the reserved worst case with one."""
    server.script(["no_usage", "no_usage"])
    async with client(server, policy) as llm:
        r = await llm.complete("x")
        assert (r.cost_source, r.cost_usd, llm.costs.unpriced_calls) == ("unpriced", 0, 1)
    async with client(server, policy, budget_usd="1") as llm:
        r = await llm.complete("x", max_tokens=10)
        assert r.cost_source == "unpriced"
        assert r.cost_usd > 0
        assert llm.costs.total_usd == r.cost_usd
        assert llm.costs.reserved_usd == 0


async def test_cache_writes_priced_at_the_write_rate(
    policy: RetryPolicy,
) -> None:
    """Anthropic cache writes cost more than plain input: the table prices them so."""
    async with FakeOpenRouter(responder=echo, report_cost=False) as srv:
        srv.script(["cache_write"])
        async with client(srv, policy) as llm:
            r = await llm.complete("a prompt long enough to be cached" * 4, model=HAIKU)
    assert r.cost_source == "pricing"
    assert r.usage.cache_write_tokens == r.usage.prompt_tokens // 2 > 0
    assert r.cost_usd == srv.stats.billed_usd
    plain = calculate_cost(HAIKU, r.usage.prompt_tokens, r.usage.completion_tokens)
    assert r.cost_usd > plain


# --- streaming ---------------------------------------------------------------------------


async def test_streaming_assembles_text_and_charges_final_usage(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """stream=True: text from the deltas, usage and cost from the last chunk."""
    server.keep_requests = True
    prompt = "stream me a fairly long answer please"
    async with client(server, policy) as llm:
        r = await llm.complete(prompt, stream=True)
    assert r.text == f"echo:{prompt}"
    assert server.requests_log[0]["stream"] is True
    assert r.cost_source == "provider"
    assert r.cost_usd == server.stats.billed_usd > 0
    assert r.usage.prompt_tokens > 0
    assert r.finish_reason == "stop"


async def test_mid_stream_server_error_is_retried_and_billed(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """The documented mid-stream error (code server_error, finish_reason error) is retried;
    the failed attempt's usage is charged too."""
    server.script(["server_error"])
    async with client(server, policy) as llm:
        r = await llm.complete("a streamed prompt of some length", stream=True)
    assert r.attempts == 2
    assert r.text == "echo:a streamed prompt of some length"
    assert llm.costs.total_usd == server.stats.billed_usd
    assert llm.costs.billed_failures == 1


async def test_server_error_in_a_plain_200_is_retried(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """code 'server_error' inside a 200 is as transient as code 502."""
    server.script(["server_error"])
    async with client(server, policy) as llm:
        r = await llm.complete("x")
    assert r.attempts == 2


async def test_stream_yields_deltas_then_the_priced_response(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """stream(): text deltas as they arrive, then usage and cost from the final chunk."""
    prompt = "a prompt long enough to come back in several pieces"
    async with client(server, policy) as llm:
        async with llm.stream(prompt) as chunks:
            deltas = [d async for d in chunks]
        r = chunks.response
    assert len(deltas) > 2
    assert "".join(deltas) == r.text == f"echo:{prompt}"
    assert r.cost_source == "provider"
    assert r.cost_usd == server.stats.billed_usd > 0


async def _drain(chunks: LLMStream, into: list[str]) -> None:
    async with chunks:
        async for delta in chunks:
            into.append(delta)


async def test_stream_retries_only_before_any_text(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """A 502 before the answer is retried; a mid-stream error after text is raised, typed,
    not retried (the reader would see the text twice), and its usage is charged."""
    server.script(["502"])
    async with client(server, policy) as llm:
        async with llm.stream("first prompt of some length") as chunks:
            text = "".join([d async for d in chunks])
        assert text == "echo:first prompt of some length"
        assert chunks.response.attempts == 2
        server.script(["server_error"])
        received: list[str] = []
        with pytest.raises(LLMResponseError, match="inside a 200") as info:
            await _drain(llm.stream("second prompt of some length"), received)
        assert received
        assert info.value.attempts == 1
        assert llm.costs.total_usd == server.stats.billed_usd
    assert server.stats.requests == 3


async def test_leaving_a_stream_early_cancels_it_and_charges_the_worst_case(
    policy: RetryPolicy,
) -> None:
    """A reader that leaves mid-answer cancels the request; what the endpoint may bill for
    it is charged at the worst case reserved, and nothing stays reserved."""
    async with FakeOpenRouter(responder=echo, trickle_s=30) as srv:
        srv.script(["stream_stall"])
        async with client(srv, policy, budget_usd="1") as llm:
            async with llm.stream("a prompt that stalls after its first piece") as chunks:
                first = await anext(chunks)
            assert first
            await asyncio.wait_for(srv.wait_in_flight(lambda n: n == 0), 5)
            assert llm.costs.reserved_usd == 0
            assert llm.costs.by_source == {"worst_case": llm.costs.total_usd}
            assert llm.costs.total_usd > 0
            with pytest.raises(ConfigError, match="not ended"):
                _ = chunks.response


# --- deadlines -----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_trickling_server_hits_the_per_attempt_deadline(
    policy: RetryPolicy, transport: Any
) -> None:
    """One byte every 0.4 s never trips a read timeout; timeout_s still bounds the attempt."""
    async with FakeOpenRouter(trickle_s=30) as srv:
        srv.script(["trickle"])
        async with client(srv, policy, timeout_s=1, max_retries=0, transport=transport) as llm:
            started = time.monotonic()
            with pytest.raises(LLMTimeoutError) as info:
                await llm.complete("x")
            assert time.monotonic() - started < 3
    assert info.value.attempts == 1


async def test_total_deadline_bounds_the_retries(policy: RetryPolicy) -> None:
    """total_timeout_s bounds the whole call, attempts and waits included."""
    async with FakeOpenRouter(trickle_s=30) as srv:
        srv.script(["trickle"] * 6)
        async with client(srv, policy, timeout_s=1, total_timeout_s=1.5, max_retries=5) as llm:
            started = time.monotonic()
            with pytest.raises(LLMTimeoutError, match="total deadline"):
                await llm.complete("x")
            assert time.monotonic() - started < 3


# --- error mapping -------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_refused_connection_is_a_connection_error(
    policy: RetryPolicy, transport: Any
) -> None:
    """A refused connection is LLMConnectionError (retried), not a timeout."""
    url = f"http://127.0.0.1:{_closed_port()}/api/v1"
    async with AsyncLLMClient(
        "k", base_url=url, retry_policy=policy, transport=transport, registry=CollectorRegistry()
    ) as llm:
        with pytest.raises(LLMConnectionError) as info:
            await llm.complete("x")
    assert info.value.attempts == 4


async def test_reset_connection_is_a_connection_error(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """A connection cut before the answer is LLMConnectionError after the retries."""
    server.script(["reset"] * 2)
    async with client(server, policy, max_retries=1) as llm:
        with pytest.raises(LLMConnectionError):
            await llm.complete("x")


async def test_moderation_refusal_is_its_own_error(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """403 with moderation metadata: LLMModerationError, not retried."""
    server.script(["moderation"])
    async with client(server, policy) as llm:
        with pytest.raises(LLMModerationError) as info:
            await llm.complete("x")
    assert info.value.status_code == 403
    assert server.stats.requests == 1


async def test_content_filter_raises_typed_error(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """finish_reason content_filter: LLMContentFilterError, as its docstring says."""
    server.script(["content_filter"])
    async with client(server, policy) as llm:
        with pytest.raises(LLMContentFilterError):
            await llm.complete("x")
        assert llm.costs.total_usd == server.stats.billed_usd > 0
    assert server.stats.requests == 1


async def test_long_retry_after_is_honoured_up_to_the_maximum(
    server: FakeOpenRouter, policy: RetryPolicy, clock: FakeClock
) -> None:
    """Retry-After: 90 is waited (default maximum 120 s, as the openai SDK)."""
    server.script(["retry_after_long"])
    async with client(server, policy) as llm:
        r = await llm.complete("x")
    assert r.attempts == 2
    assert clock.sleeps == [90.0]


async def test_retry_after_beyond_the_maximum_carries_the_wait(
    server: FakeOpenRouter, policy: RetryPolicy, clock: FakeClock
) -> None:
    """Above max_retry_after_s the call fails at once with the wait on the error."""
    server.script(["retry_after_long"])
    async with client(server, policy, max_retry_after_s=30) as llm:
        with pytest.raises(LLMRateLimitError) as info:
            await llm.complete("x")
    assert info.value.retry_after_s == 90.0
    assert info.value.attempts == 1
    assert clock.sleeps == []


# --- redaction -----------------------------------------------------------------------------


async def test_echoed_key_of_any_shape_is_redacted(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """A key not shaped sk-/dapi- that the server echoes is not in the error or the logs."""
    key = "corp_7Hq2-ZZmn0pQ-internal"
    server.script(["echo_key"])
    async with client(server, policy, api_key=key) as llm:
        with capture_logs() as logs, pytest.raises(LLMError) as info:
            await llm.complete("x")
    assert "Incorrect API key provided" in str(info.value)
    assert key not in str(info.value) + repr(info.value) + repr(logs)


async def test_echoed_prompt_is_redacted_from_error_and_trail(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """A 400 echoing the prompt: the text is in neither str(exc) nor the trail row."""
    from audit_core import DatabricksClient
    from audit_core.db import AuditTrail, ensure_schema

    prompt = "Employee Jane Roe card 4111 paid CASINO ROYALE on 2025-03-01"
    server.script(["echo_prompt"])
    async with DatabricksClient.local(load_fixtures=False, registry=CollectorRegistry()) as wh:
        await ensure_schema(wh)
        trail = AuditTrail(wh, "run-hostile")
        async with client(server, policy, trail=trail) as llm:
            with pytest.raises(LLMError) as info:
                await llm.complete(prompt)
        await trail.flush()
        rows = (
            await wh.query_arrow("SELECT error_message, input_data FROM audit_trail")
        ).to_pylist()
    assert "context is too short" in str(info.value)
    for piece in ("CASINO", "ROYALE", "Employee", "2025-03-01", prompt):
        assert piece not in str(info.value)
        assert piece not in str(rows)
    assert "sha256" in str(rows[0]["input_data"])


# --- classify and shared requests ----------------------------------------------------------


async def test_classify_returns_one_result_per_item_when_a_group_fails(
    policy: RetryPolicy,
) -> None:
    """One group failing non-transiently costs only its items: label None, typed error."""

    def oracle(body: Any) -> str:
        import json

        items = json.loads(body["messages"][-1]["content"])["items"]
        answers = [
            {"id": i["id"], "label": "business", "confidence": 0.9, "rationale": "r"} for i in items
        ]
        return json.dumps({"answers": answers})

    async with FakeOpenRouter(responder=oracle) as srv:
        srv.script(["400"])  # the first group's request
        async with client(srv, policy, max_concurrency=1) as llm:
            out = await llm.classify(
                [f"item {i}" for i in range(6)],
                ["business", "personal"],
                instructions="x",
                agent_name="t",
                batch_size=3,
            )
    assert len(out) == 6
    failed = [c for c in out if c.label is None]
    assert len(failed) == 3
    assert all(isinstance(c.error, LLMError) and c.error.status_code == 400 for c in failed)
    assert [c.label for c in out if c.label is not None] == ["business"] * 3


async def test_classify_over_budget_returns_results_not_a_group(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """A budget too small for every group: items carry LLMBudgetExceededError, no raise."""
    async with client(server, policy, budget_usd="0") as llm:
        out = await llm.classify(
            ["a", "b", "c"], ["x", "y"], instructions="i", agent_name="t", batch_size=1
        )
    assert [type(c.error) for c in out] == [LLMBudgetExceededError] * 3
    assert server.stats.requests == 0


async def test_one_callers_cancellation_does_not_cancel_a_shared_request(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """Two callers share one in-flight request; cancelling the first leaves the second's."""
    server.latency_s = 0.3
    async with client(server, policy, cache=MemoryCache(10)) as llm:
        first = asyncio.create_task(llm.complete("same"))
        await asyncio.wait_for(server.wait_in_flight(lambda n: n == 1), 5)
        second = asyncio.create_task(llm.complete("same"))
        await asyncio.sleep(0.05)
        first.cancel()
        r = await asyncio.wait_for(second, 5)
        assert r.text == "echo:same"
        assert first.cancelled()
    assert server.stats.requests == 1


async def test_last_caller_leaving_cancels_the_shared_request(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """When every caller of a shared request is cancelled, the request is cancelled too."""
    server.latency_s = 30
    async with client(server, policy, cache=MemoryCache(10), budget_usd=1) as llm:
        callers = [asyncio.create_task(llm.complete("same", max_tokens=5)) for _ in range(3)]
        await asyncio.wait_for(server.wait_in_flight(lambda n: n == 1), 5)
        for c in callers:
            c.cancel()
        await asyncio.wait_for(server.wait_in_flight(lambda n: n == 0), 5)
        assert llm.costs.reserved_usd == 0


# --- adaptive concurrency ------------------------------------------------------------------


async def _rate_limited_batch(adaptive: bool) -> tuple[int, dict[str, Any], int]:
    policy = RetryPolicy(attempts=20, timeout_s=60, wait_initial_s=0.05, wait_max_s=0.5)
    async with FakeOpenRouter(latency_ms=50, rate_limit_rps=200, rate_limit_burst=40) as srv:
        async with AsyncLLMClient(
            "k",
            base_url=srv.url,
            retry_policy=policy,
            max_retries=19,
            max_concurrency=32,
            adaptive_concurrency=adaptive,
            registry=CollectorRegistry(),
        ) as llm:
            results = await llm.batch([f"p{i}" for i in range(400)])
            decreases = llm.limiter.decreases
        ok = sum(1 for r in results if not isinstance(r, LLMError))
        return ok, srv.stats.as_dict(), decreases


async def test_adaptive_concurrency_backs_off_a_rate_limit() -> None:
    """AIMD on 429 completes the batch with a fraction of the rejected requests of a fixed
    cap of 32 (which also exhausts its retries on some prompts)."""
    ok, stats, decreases = await _rate_limited_batch(adaptive=True)
    fixed_ok, fixed_stats, fixed_decreases = await _rate_limited_batch(adaptive=False)
    assert ok == 400
    assert fixed_ok <= 400
    assert decreases >= 1
    assert fixed_decreases == 0
    assert stats["statuses"].get("429", 0) < fixed_stats["statuses"]["429"] / 5
    assert stats["statuses"].get("429", 0) < 0.1 * stats["requests"]


# --- the fake server speaks the documented shapes -------------------------------------------


async def test_fake_server_replies_validate_against_the_openai_sdk(
    server: FakeOpenRouter,
) -> None:
    """The openai SDK's own client and models accept the fake's answers and streams."""
    from openai import AsyncOpenAI
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    async with AsyncOpenAI(api_key="k", base_url=server.url, max_retries=0) as sdk:
        completion = await sdk.chat.completions.create(
            model=CHEAP, messages=[{"role": "user", "content": "hi"}]
        )
        assert isinstance(completion, ChatCompletion)
        assert completion.choices[0].message.content == "echo:hi"
        assert completion.usage is not None
        assert completion.usage.total_tokens > 0
        ChatCompletion.model_validate(completion.model_dump())
        chunks = [
            chunk
            async for chunk in await sdk.chat.completions.create(
                model=CHEAP,
                messages=[{"role": "user", "content": "a longer prompt to split"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        ]
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo:a longer prompt to split"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    async with httpx.AsyncClient() as raw:
        listing = (await raw.get(f"{server.url}/models")).json()
    haiku = next(m for m in listing["data"] if m["id"] == HAIKU)
    assert {"input_cache_read", "input_cache_write"} <= set(haiku["pricing"])


# --- lifecycle -----------------------------------------------------------------------------


async def test_callers_http_client_is_not_mutated(
    server: FakeOpenRouter, policy: RetryPolicy
) -> None:
    """Headers go on each request; the caller's client keeps its own headers."""
    async with httpx.AsyncClient(headers={"X-Mine": "1"}) as mine:
        async with AsyncLLMClient(
            "secret-key-123",
            base_url=server.url,
            http_client=mine,
            retry_policy=policy,
            registry=CollectorRegistry(),
        ) as llm:
            assert (await llm.complete("x")).text == "echo:x"
        assert "authorization" not in mine.headers
        assert dict(mine.headers)["x-mine"] == "1"
        assert not mine.is_closed  # not ours to close
