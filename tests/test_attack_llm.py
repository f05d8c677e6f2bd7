# ruff: noqa: SIM117, PT012
"""Attacks on AsyncLLMClient: budgets, reservations, redaction, classify() and deadlines.

Every server is on 127.0.0.1: the package's FakeOpenRouter, or a tiny aiohttp app for
behaviour the fake has no directive for (a stream cut mid-answer, keep-alives forever, a
truncated echo). Every test runs under ``asyncio.timeout``. Tests that broke a
guarantee are marked ``xfail(strict=True)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given, settings, strategies as st
from prometheus_client import CollectorRegistry

from audit_core import AsyncLLMClient, ConfigError, LLMBudgetExceededError, LLMError
from audit_core.llm import CostLedger
from audit_core.testing import FakeOpenRouter, capture_logs

CHEAP = "openai/gpt-4o-mini"
LIMIT_S = 20  # no test here may take longer than this


def make(url: str, key: str = "test-key-0123456789", **kw: Any) -> AsyncLLMClient:
    kw.setdefault("registry", CollectorRegistry())
    return AsyncLLMClient(key, base_url=url, **kw)


@asynccontextmanager
async def loopback(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A one-route aiohttp app on 127.0.0.1 answering ``POST /chat/completions``."""
    app = web.Application()
    app.router.add_post("/chat/completions", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def leaked(secret: str, exc: BaseException, logs: list[Any]) -> list[str]:
    """Where ``secret`` shows up: str/repr of the exception (and its chain), log events."""
    where = []
    seen: BaseException | None = exc
    while seen is not None:
        if secret in str(seen) or secret in repr(seen):
            where.append(f"exception {type(seen).__name__}")
        seen = seen.__cause__ or seen.__context__
    if secret in json.dumps([dict(e) for e in logs], default=str):
        where.append("log events")
    return where


# --- reservations are always released -------------------------------------------------


async def test_cancelling_callers_mid_request_and_in_the_queue_releases_everything() -> None:
    """Reservations: callers cancelled while in flight or queued for a slot leave 0 reserved."""
    async with (
        asyncio.timeout(LIMIT_S),
        FakeOpenRouter(responder=lambda b: "hi", latency_ms=3000) as server,
    ):
        async with make(server.url, budget_usd="1", max_concurrency=2) as llm:
            tasks = [asyncio.create_task(llm.complete(f"p{i}", max_tokens=50)) for i in range(8)]
            while server.stats.in_flight < 2:  # two in flight, six queued for a slot
                await asyncio.sleep(0.01)
            assert llm.costs.reserved_usd > 0  # the in-flight ones hold a reservation
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            assert llm.costs.reserved_usd == 0
            assert llm.costs.total_usd <= Decimal(1)
            await asyncio.sleep(0)
            assert llm.costs.reserved_usd == 0


async def test_a_queued_call_cancelled_as_a_slot_frees_is_cancelled() -> None:
    """Cancellation: a call waiting for a slot, cancelled as one frees, raises CancelledError."""
    async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: "hi") as server:
        async with make(server.url, budget_usd="1", max_concurrency=1) as llm:
            ticket = await llm.limiter.acquire()  # another caller holds the only slot
            task = asyncio.create_task(llm.complete("queued", max_tokens=10))
            for _ in range(50):  # let it reserve and join the queue
                await asyncio.sleep(0.01)
            assert server.stats.requests == 0
            task.cancel()
            llm.limiter.release(ticket, "ok")  # the holder finishes in the same step
            (outcome,) = await asyncio.gather(task, return_exceptions=True)
            assert llm.costs.reserved_usd == 0
            assert isinstance(outcome, asyncio.CancelledError), repr(outcome)


async def test_a_queued_call_cancelled_as_a_slot_frees_releases_its_reservation() -> None:
    """Reservations: that same queued, cancelled call leaves nothing reserved, slot intact."""
    async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: "hi") as server:
        async with make(server.url, budget_usd="1", max_concurrency=1) as llm:
            ticket = await llm.limiter.acquire()
            task = asyncio.create_task(llm.complete("queued", max_tokens=10))
            for _ in range(50):
                await asyncio.sleep(0.01)
            task.cancel()
            llm.limiter.release(ticket, "ok")
            await asyncio.gather(task, return_exceptions=True)
            assert llm.costs.reserved_usd == 0
            assert (await llm.complete("after", max_tokens=10)).text == "hi"
            assert llm.limiter.in_flight == 0


async def test_cancelling_during_a_retry_after_wait_releases_the_reservation() -> None:
    """Reservations: a caller cancelled while waiting out a 429's Retry-After keeps none."""
    async with (
        asyncio.timeout(LIMIT_S),
        FakeOpenRouter(responder=lambda b: "hi", retry_after_s=5) as server,
    ):
        server.script(["429"])
        async with make(server.url, budget_usd="1") as llm:
            task = asyncio.create_task(llm.complete("x", max_tokens=10))
            await asyncio.sleep(0.3)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert llm.costs.reserved_usd == 0


async def test_cancelling_a_stream_consumer_releases_and_charges() -> None:
    """Reservations: a stream consumer cancelled mid-answer leaves 0 reserved, the call charged."""
    async with (
        asyncio.timeout(LIMIT_S),
        FakeOpenRouter(responder=lambda b: "word " * 400) as server,
    ):
        async with make(server.url, budget_usd="1") as llm:

            async def consume() -> None:
                async with llm.stream("x", max_tokens=500) as chunks:
                    async for _ in chunks:
                        await asyncio.sleep(0.01)

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert llm.costs.reserved_usd == 0
            assert llm.costs.total_usd > 0


async def test_cancelling_classify_releases_every_reservation() -> None:
    """Reservations: classify() cancelled with many groups in flight leaves 0 reserved."""
    async with (
        asyncio.timeout(LIMIT_S),
        FakeOpenRouter(responder=lambda b: '{"answers": []}', latency_ms=1000) as server,
    ):
        async with make(server.url, budget_usd="1", max_concurrency=3) as llm:
            task = asyncio.create_task(
                llm.classify(
                    [f"item {i}" for i in range(60)],
                    ["a", "b"],
                    instructions="i",
                    agent_name="attack",
                    batch_size=2,
                )
            )
            await asyncio.sleep(0.3)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert llm.costs.reserved_usd == 0


# --- budget ---------------------------------------------------------------------------

HOSTILE_MIX = [
    "negative_cost",
    "nan_cost",
    "string_tokens",
    "usage_list",
    "no_usage",
    "billed_error",
    "server_error",
    "invalid_json",
    "error_200",
    "byok",
    "cache_write",
    "502",
    "reset",
]


async def test_budget_holds_under_concurrency_and_hostile_usage() -> None:
    """Budget: 80 concurrent calls against replies with bogus usage never spend past the cap."""
    budget = Decimal("0.002")
    async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: "ok " * 30) as server:
        server.script((HOSTILE_MIX * 7)[:80])
        async with make(server.url, budget_usd=budget, max_concurrency=16, max_retries=1) as llm:
            results = await llm.batch([f"prompt {i} " * 20 for i in range(80)], max_tokens=40)
            assert len(results) == 80
            assert any(isinstance(r, LLMBudgetExceededError) for r in results)
            assert all(isinstance(r, LLMError) or r.cost_usd >= 0 for r in results)
            assert llm.costs.total_usd <= budget
            assert llm.costs.reserved_usd == 0
            assert llm.costs.remaining_usd is not None
            assert llm.costs.remaining_usd >= 0
            sent = server.stats.requests
            with pytest.raises(LLMBudgetExceededError):
                while True:  # spend what is left; the refusal sends nothing
                    await llm.complete("more", max_tokens=40)
            assert llm.costs.total_usd <= budget
        assert server.stats.requests >= sent


@pytest.mark.xfail(
    strict=True,
    reason="cannot hold: all 20 requests are sent before any reply shows that the endpoint "
    "ignores max_tokens, and it bills what it generated ($0.60 against $0.05); a client "
    "only learns the overrun from the bill. What holds after the first overrun is pinned "
    "by the two tests below",
)
async def test_budget_is_not_exceeded_by_concurrent_overruns() -> None:
    """Budget: the ledger's actual spend never passes budget_usd, even when replies overrun."""
    budget = Decimal("0.05")
    async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: "hi") as server:
        server.script(["ignore_max_tokens"] * 20)
        async with make(server.url, budget_usd=budget, max_retries=0, max_concurrency=20) as llm:
            await llm.batch([f"p{i}" for i in range(20)], max_tokens=10)
            assert llm.costs.reserved_usd == 0
            assert llm.costs.total_usd <= budget, llm.costs.total_usd


async def test_after_an_overrun_no_call_is_sent_that_the_overrun_would_not_fit() -> None:
    """Budget: once a reply overruns its max_tokens, a call that would not fit at that
    cost is refused unsent, so one at a time the ledger stays under the cap."""
    budget = Decimal("0.05")
    async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: "hi") as server:
        server.script(["ignore_max_tokens"] * 20)
        async with make(server.url, budget_usd=budget, max_retries=0, max_concurrency=1) as llm:
            results = await llm.batch([f"p{i}" for i in range(20)], max_tokens=10)
            assert server.stats.requests == 1  # $0.03 spent, $0.02 left: none fits
            assert all(isinstance(r, LLMBudgetExceededError) for r in results[1:])
            assert llm.costs.total_usd <= budget
            assert llm.costs.reserved_usd == 0


def _overlong(release: asyncio.Event, seen: list[str]) -> Callable[..., Awaitable[web.Response]]:
    """Replies billing 50,000 completion tokens ($0.03) whatever max_tokens said; the
    one for prompt "slow" waits for ``release``."""

    async def handler(request: web.Request) -> web.Response:
        prompt = (await request.json())["messages"][-1]["content"]
        seen.append(prompt)
        if prompt == "slow":
            await release.wait()
        usage = {"prompt_tokens": 5, "completion_tokens": 50_000, "total_tokens": 50_005}
        return web.json_response(
            {
                "id": f"gen-{len(seen)}",
                "model": CHEAP,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}],
                "usage": {**usage, "cost": 0.03},
            }
        )

    return handler


async def test_an_overrun_holds_calls_in_flight_to_it_too() -> None:
    """Budget: when a reply overruns, calls still in flight are reserved at its cost, so
    a call that fits only beside their old reservations is refused unsent."""
    budget = Decimal("0.08")
    release, seen = asyncio.Event(), list[str]()
    async with asyncio.timeout(LIMIT_S), loopback(_overlong(release, seen)) as url:
        async with make(url, budget_usd=budget, max_retries=0) as llm:
            slow = asyncio.create_task(llm.complete("slow", max_tokens=10))
            while seen != ["slow"]:
                await asyncio.sleep(0.01)
            await llm.complete("fast", max_tokens=10)  # $0.03 where $0.00002 was reserved
            with pytest.raises(LLMBudgetExceededError):  # $0.03 + $0.03 in flight + $0.03
                await llm.complete("third", max_tokens=10)
            release.set()
            await slow
            assert seen == ["slow", "fast"]
            assert llm.costs.total_usd == Decimal("0.06")
            assert llm.costs.reserved_usd == 0


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["reserve", "top_up", "record", "release"]),
            st.decimals(min_value=0, max_value=1, places=6),
        ),
        max_size=40,
    )
)
def test_top_ups_keep_the_ledger_balanced(steps: list[tuple[str, Decimal]]) -> None:
    """Budget: reserve, top-up and settle in any order keep spent + reserved + left ==
    budget, and nothing stays reserved once every call has settled."""
    budget = Decimal(2)
    ledger = CostLedger(budget)
    held: list[Any] = []
    for op, amount in steps:
        if op == "reserve":
            with contextlib.suppress(LLMBudgetExceededError):
                held.append(ledger.reserve(amount, model="m"))
        elif op == "top_up":
            ledger.top_up("m", lambda r, amount=amount: r.worst + amount)
        elif held:
            reservation = held.pop(0)
            if op == "release":
                ledger.release(reservation)
            else:
                ledger.record(
                    model="m",
                    agent="a",
                    cost=amount,
                    prompt_tokens=1,
                    completion_tokens=1,
                    reservation=reservation,
                )
        assert ledger.reserved_usd >= 0
        assert ledger.total_usd + ledger.reserved_usd + ledger.remaining_usd == budget  # type: ignore[operator]
    for reservation in held:
        ledger.release(reservation)
    assert ledger.reserved_usd == 0


async def _cut_stream(request: web.Request) -> web.StreamResponse:
    """A 200 that starts answering (SSE, one delta), then drops the connection."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    chunk = {
        "id": "gen-cut",
        "model": CHEAP,
        "choices": [{"index": 0, "delta": {"content": "partial "}, "finish_reason": None}],
    }
    await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
    await asyncio.sleep(0.05)
    assert request.transport is not None
    request.transport.close()
    return response


async def _cut_json(request: web.Request) -> web.StreamResponse:
    """A 200 whose JSON body is cut half-way (the endpoint began answering)."""
    body = json.dumps({"id": "gen-cut", "model": CHEAP, "choices": []}).encode()
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(body) * 2
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    await asyncio.sleep(0.05)
    assert request.transport is not None
    request.transport.close()
    return response


@pytest.mark.parametrize(
    ("handler", "mode"),
    [(_cut_stream, "stream"), (_cut_stream, "complete"), (_cut_json, "complete")],
    ids=["sse-stream", "sse-complete", "json-complete"],
)
async def test_a_reply_cut_mid_answer_is_charged(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], mode: str
) -> None:
    """Budget: every attempt the endpoint began answering is in the ledger (worst case)."""
    async with asyncio.timeout(LIMIT_S), loopback(handler) as url:
        async with make(url, budget_usd="1", max_retries=1) as llm:
            with pytest.raises(LLMError):
                if mode == "stream":
                    async with llm.stream("x", max_tokens=100) as chunks:
                        async for _ in chunks:
                            pass
                else:
                    await llm.complete("x", max_tokens=100)
            assert llm.costs.reserved_usd == 0
            assert llm.costs.total_usd > 0


# --- deadlines ------------------------------------------------------------------------


async def test_total_timeout_bounds_a_retry_after_below_the_cap() -> None:
    """Deadline: a 429 asking for 90 s (under the 120 s cap) cannot stretch total_timeout_s=1."""
    async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: "hi") as server:
        server.script(["retry_after_long"])
        async with make(server.url, timeout_s=0.5, total_timeout_s=1.0, budget_usd="1") as llm:
            started = time.monotonic()
            with pytest.raises(LLMError):
                await llm.complete("x", max_tokens=10)
            assert time.monotonic() - started < 2.0
            assert llm.costs.reserved_usd == 0


async def test_total_timeout_covers_waiting_for_a_concurrency_slot() -> None:
    """Deadline: a call queued behind a 4 s call fails at total_timeout_s=1, not after it."""
    async with (
        asyncio.timeout(LIMIT_S),
        FakeOpenRouter(responder=lambda b: "hi", latency_ms=4000) as server,
    ):
        async with make(
            server.url, max_concurrency=1, timeout_s=10, total_timeout_s=1.0, budget_usd="1"
        ) as llm:
            first = asyncio.create_task(llm.complete("slow", max_tokens=5))
            while server.stats.in_flight < 1:
                await asyncio.sleep(0.01)
            started = time.monotonic()
            with pytest.raises(LLMError):
                await llm.complete("queued", max_tokens=5)
            assert time.monotonic() - started < 2.0
            await asyncio.gather(first, return_exceptions=True)
            assert llm.costs.reserved_usd == 0


async def _keepalive_forever(request: web.Request) -> web.StreamResponse:
    """SSE keep-alive comments every 0.1 s, never an answer (headers sent at once)."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for _ in range(300):
        await response.write(b": OPENROUTER PROCESSING\n\n")
        await asyncio.sleep(0.1)
    return response


@pytest.mark.parametrize("mode", ["stream", "complete"])
async def test_keepalives_forever_hit_the_deadline(mode: str) -> None:
    """Deadline: a server trickling only keep-alive comments cannot outlast timeout_s."""
    async with asyncio.timeout(LIMIT_S), loopback(_keepalive_forever) as url:
        async with make(url, timeout_s=1.0, total_timeout_s=2.5, budget_usd="1") as llm:
            started = time.monotonic()
            with pytest.raises(LLMError):
                if mode == "stream":
                    async with llm.stream("x", max_tokens=10) as chunks:
                        async for _ in chunks:
                            pass
                else:
                    await llm.complete("x", max_tokens=10)
            assert time.monotonic() - started < 4.0
            assert llm.costs.reserved_usd == 0


# --- secrets: the key and the prompt --------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ['sk-"quote\\back', "key with spaces 0123", "sk-or-v1-" + "ab" * 32, "x" * 500],
    ids=["quotes", "spaces", "openrouter", "long"],
)
async def test_an_echoed_key_of_odd_shape_is_redacted(key: str) -> None:
    """Key: a 401 echoing the key (quotes, spaces, long) never shows it, in errors or logs."""
    async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: "hi") as server:
        server.script(["echo_key"])
        with capture_logs() as logs:
            async with make(server.url, key=key, max_retries=0) as llm:
                with pytest.raises(LLMError) as info:
                    await llm.complete("hello")
        assert leaked(key, info.value, logs) == []


@pytest.mark.parametrize("key", ["sk-abc\r\nX-Evil: 1", "sk-abc\x00def-0123"], ids=["crlf", "nul"])
async def test_a_key_with_control_characters_never_leaks(key: str) -> None:
    """Key: a key that cannot go in a header fails without showing the key anywhere."""
    async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: "hi") as server:
        with capture_logs() as logs:
            with pytest.raises(Exception) as info:  # noqa: PT011 - any error, but no leak
                async with make(server.url, key=key, max_retries=0) as llm:
                    await llm.complete("hello")
        assert leaked(key, info.value, logs) == []
        assert server.stats.requests == 0


async def test_a_non_ascii_key_never_leaks_and_is_a_config_error() -> None:
    """Key: a key with a non-ASCII character is a ConfigError that never shows the key."""
    key = "sk-s\u00e9cret-0123456789abcdef"
    with capture_logs() as logs:
        try:
            async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: "hi") as server:
                async with make(server.url, key=key, max_retries=0) as llm:
                    await llm.complete("hello")
        except Exception as exc:
            error: BaseException = exc
        else:
            pytest.fail("a non-ASCII key was accepted")
    assert leaked(key, error, logs) == []
    assert isinstance(error, ConfigError | LLMError), type(error)


async def _echo_truncated(request: web.Request) -> web.Response:
    """A 400 echoing the start of the prompt and the key minus its last 4 characters."""
    body = await request.json()
    prompt = body["messages"][-1]["content"]
    key = request.headers["Authorization"].removeprefix("Bearer ")
    message = f"invalid input '{prompt[:40]}...' for key {key[:-4]}****"
    return web.json_response({"error": {"code": 400, "message": message}}, status=400)


async def test_a_truncated_key_echo_is_redacted() -> None:
    """Key: an endpoint that masks only the key's tail still shows none of it."""
    key = "corp-gateway-token-7f3a9b2c4d5e6f708192"
    async with asyncio.timeout(LIMIT_S), loopback(_echo_truncated) as url:
        with capture_logs() as logs:
            async with make(url, key=key, max_retries=0) as llm:
                with pytest.raises(LLMError) as info:
                    await llm.complete("hello there")
        assert leaked(key[:-4], info.value, logs) == []


async def test_a_truncated_prompt_echo_is_redacted() -> None:
    """Prompt: an error echoing the prompt's first 40 characters does not show them."""
    prompt = "card 4111 pin 9876 for bob, owes 250 usd to acme; " + "details " * 5
    async with asyncio.timeout(LIMIT_S), loopback(_echo_truncated) as url:
        with capture_logs() as logs:
            async with make(url, max_retries=0) as llm:
                with pytest.raises(LLMError) as info:
                    await llm.complete(prompt)
        assert leaked("4111 pin 9876", info.value, logs) == []


async def _id_echoes_key(request: web.Request) -> web.Response:
    """A 200 that is not JSON, its ``x-request-id`` the key without its first and last 4."""
    key = request.headers["Authorization"].removeprefix("Bearer ")
    return web.Response(text="not json", headers={"x-request-id": key[4:-4]})


async def test_a_key_echoed_in_a_request_id_is_not_logged() -> None:
    """Key: a stretch of it in an id the endpoint chose is masked in the logged failure."""
    key = "corp-gateway-token-7f3a9b2c4d5e6f708192"
    async with asyncio.timeout(LIMIT_S), loopback(_id_echoes_key) as url:
        with capture_logs() as logs:
            async with make(url, key=key, max_retries=0) as llm:
                with pytest.raises(LLMError) as info:
                    await llm.complete("hello there")
        assert any(e["event"] == "audit_core.llm.failed" for e in logs)
        assert leaked(key[4:-4], info.value, logs) == []


# --- classify(): one result per item, only ConfigError raised -------------------------


@pytest.mark.parametrize(
    "reply",
    [
        '{"answers": {"id": "1"}}',
        "null",
        '{"answers": [{"id": "1", "label": "business", "confidence": "nan"}]}',
        '{"answers": [{"id": "1", "label": "business", "confidence": 1e999}]}',
        '{"answers": [{"id": "1.0", "label": "business", "confidence": 0.9}]}',
        '{"answers": [{"id": "' + "9" * 5000 + '", "label": "business", "confidence": 0.9}]}',
        '{"answers": [{"id": "1", "label": "business", "confidence": true}]}',
        '{"answers": [' + '{"id": "1", "label": "business", "confidence": 0.9},' * 500 + "1]}",
        "```json\n" + '{"answers": [{"id": "1"}]}',
        "x" * 200_000,
    ],
    ids=[
        "answers-object",
        "null",
        "nan-confidence",
        "inf-confidence",
        "float-id",
        "huge-id",
        "bool-confidence",
        "many-duplicates",
        "fence",
        "huge-text",
    ],
)
async def test_classify_returns_one_result_per_item_for_odd_replies(reply: str) -> None:
    """classify(): whatever JSON-ish text comes back, one result per item and no raise."""
    async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: reply) as server:
        async with make(server.url, max_retries=0) as llm:
            items = ["a", "b", "a"]
            results = await llm.classify(
                items, ["business", "personal"], instructions="i", agent_name="attack"
            )
            assert len(results) == len(items)
            for result in results:
                assert result.label in (None, "business", "personal")
                assert result.label is not None or result.error is not None


async def test_classify_over_hostile_faults_returns_one_result_per_item() -> None:
    """classify(): faults of every kind (usage, 5xx, resets, budget) still give N results."""
    async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: "{}") as server:
        server.script(HOSTILE_MIX * 3)
        async with make(server.url, max_retries=0, budget_usd="0.0005") as llm:
            items = [f"item {i}" for i in range(40)]
            results = await llm.classify(
                items, ["x", "y"], instructions="i", agent_name="attack", batch_size=3
            )
            assert len(results) == len(items)
            assert llm.costs.reserved_usd == 0
            assert llm.costs.total_usd <= Decimal("0.0005")


@pytest.mark.parametrize("label", ['["business"]', '{"a": 1}'], ids=["list", "object"])
async def test_classify_survives_an_unhashable_label(label: str) -> None:
    """classify(): a label that is not a string gives label=None, never an exception."""
    reply = '{"answers": [{"id": "1", "label": ' + label + ', "confidence": 0.9}]}'
    async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: reply) as server:
        async with make(server.url, max_retries=0) as llm:
            results = await llm.classify(
                ["a", "b"], ["business", "personal"], instructions="i", agent_name="attack"
            )
            assert [r.label for r in results] == [None, None]


async def test_classify_survives_deeply_nested_json() -> None:
    """classify(): a deeply nested reply gives label=None per item, never an exception."""
    reply = "[" * 100_000
    async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: reply) as server:
        async with make(server.url, max_retries=0) as llm:
            results = await llm.classify(
                ["a", "b"], ["business", "personal"], instructions="i", agent_name="attack"
            )
            assert [r.label for r in results] == [None, None]


async def test_classify_refuses_bad_arguments_with_config_error_only() -> None:
    """classify(): bad labels, batch size or items are ConfigError, nothing sent."""
    async with asyncio.timeout(LIMIT_S), FakeOpenRouter(responder=lambda b: "{}") as server:
        async with make(server.url) as llm:
            for kwargs in (
                {"items": ["a"], "labels": []},
                {"items": ["a"], "labels": ["x", "x"]},
                {"items": ["a"], "labels": ["x"], "batch_size": 0},
                {"items": [object()], "labels": ["x"]},
                {"items": [None], "labels": ["x"]},
            ):
                with pytest.raises(ConfigError):
                    await llm.classify(instructions="i", agent_name="attack", **kwargs)
        assert server.stats.requests == 0
