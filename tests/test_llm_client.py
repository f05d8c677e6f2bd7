"""AsyncLLMClient against respx: statuses, retries, error mapping, costs, privacy."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from prometheus_client import CollectorRegistry

from audit_core import (
    AsyncLLMClient,
    ClientClosedError,
    ConfigError,
    LLMAuthError,
    LLMContentFilterError,
    LLMError,
    LLMInsufficientCreditsError,
    LLMRateLimitError,
    LLMResponseError,
    LLMTimeoutError,
    ModelPrice,
    calculate_cost,
)
from audit_core.retry import RetryPolicy
from audit_core.testing import FakeClock, capture_logs, chat_completion_body, mock_chat_completion

BASE = "https://llm.test/api/v1"
KEY = "sk-or-v1-unit-test-secret-key"


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_called=False)


@pytest.fixture
async def llm(router: respx.Router, policy: RetryPolicy) -> AsyncIterator[AsyncLLMClient]:
    client = AsyncLLMClient(
        KEY,
        base_url=BASE,
        transport=httpx.MockTransport(router.async_handler),
        retry_policy=policy,
        registry=CollectorRegistry(),
    )
    async with client:
        yield client


def ok(text: str = "hello", **kw: Any) -> dict[str, Any]:
    return chat_completion_body(text, **kw)


async def test_sends_openai_request_and_parses_response(
    llm: AsyncLLMClient, router: respx.Router
) -> None:
    """The body is an OpenAI chat request; the response fields are all read."""
    route = mock_chat_completion(
        router, BASE, ok("hi there", prompt_tokens=12, completion_tokens=3, cost="0.0000123")
    )
    r = await llm.complete("Classify this", agent_name="vendor", max_tokens=50)
    sent = route.calls.last.request
    body = httpx.Response(200, content=sent.content).json()
    assert body["model"] == "openai/gpt-4o-mini"
    assert body["messages"] == [{"role": "user", "content": "Classify this"}]
    assert body["max_tokens"] == 50
    assert body["temperature"] == 0.0
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert r.text == "hi there"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (12, 3, 15)
    assert r.cost_usd == Decimal("0.0000123")
    assert r.cost_source == "provider"
    assert r.attempts == 1
    assert r.request_id == "gen-test"
    assert r.finish_reason == "stop"


async def test_escalation_tier_and_explicit_model(
    llm: AsyncLLMClient, router: respx.Router
) -> None:
    """tier='escalation' picks the escalation model; model= wins over tier."""
    route = mock_chat_completion(router, BASE, ok(), ok())
    await llm.complete("x", tier="escalation")
    await llm.complete("x", model="openai/gpt-4-turbo", tier="escalation")
    models = [httpx.Response(200, content=c.request.content).json()["model"] for c in route.calls]
    assert models == ["anthropic/claude-3.5-haiku", "openai/gpt-4-turbo"]


async def test_app_headers_when_configured(router: respx.Router) -> None:
    """OpenRouter's attribution headers are sent when app_name / app_url are given."""
    route = mock_chat_completion(router, BASE, ok())
    async with AsyncLLMClient(
        KEY,
        base_url=BASE,
        transport=httpx.MockTransport(router.async_handler),
        app_name="audit",
        app_url="https://example.test",
        registry=CollectorRegistry(),
    ) as llm:
        await llm.complete("x")
    headers = route.calls.last.request.headers
    assert headers["x-openrouter-title"] == "audit"
    assert headers["http-referer"] == "https://example.test"


@pytest.mark.parametrize(
    ("status", "error", "attempts"),
    [
        (400, LLMError, 1),
        (401, LLMAuthError, 1),
        (402, LLMInsufficientCreditsError, 1),
        (403, LLMAuthError, 1),
        (404, LLMError, 1),
        (422, LLMError, 1),
        (408, LLMTimeoutError, 4),
        (409, LLMError, 4),
        (429, LLMRateLimitError, 4),
        (500, LLMError, 4),
        (502, LLMError, 4),
        (503, LLMError, 4),
    ],
)
async def test_status_maps_to_type_and_attempts(
    llm: AsyncLLMClient, router: respx.Router, status: int, error: type[LLMError], attempts: int
) -> None:
    """Each status gives its error type after the right number of attempts."""
    route = router.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(status, json={"error": {"code": status, "message": "nope"}})
    )
    with pytest.raises(error) as info:
        await llm.complete("x")
    assert type(info.value) is error
    assert route.call_count == attempts
    assert info.value.attempts == attempts
    assert info.value.status_code == status
    assert info.value.model == "openai/gpt-4o-mini"
    assert "nope" in str(info.value)


async def test_recovers_after_transient_errors(
    llm: AsyncLLMClient, router: respx.Router, clock: FakeClock
) -> None:
    """429 then 503 then success: the call succeeds on attempt 3."""
    mock_chat_completion(
        router,
        BASE,
        httpx.Response(429, headers={"Retry-After": "2"}, json={"error": {"code": 429}}),
        httpx.Response(503, json={"error": {"code": 503}}),
        ok("fine"),
    )
    r = await llm.complete("x")
    assert r.text == "fine"
    assert r.attempts == 3
    assert clock.sleeps[0] == 2.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (lambda: {"Retry-After": "3"}, 3.0),
        (lambda: {"retry-after-ms": "1500"}, 1.5),
        # built when the test runs (not at collection) so the date is 20 s ahead of now
        (lambda: {"Retry-After": email.utils.formatdate(time.time() + 20, usegmt=True)}, 20.0),
    ],
    ids=["seconds", "ms", "http-date"],
)
async def test_retry_after_forms_are_honoured(
    llm: AsyncLLMClient,
    router: respx.Router,
    clock: FakeClock,
    headers: Callable[[], dict[str, str]],
    expected: float,
) -> None:
    """Retry-After in seconds, ms and as an HTTP date sets the wait (injected sleep)."""
    mock_chat_completion(router, BASE, httpx.Response(429, headers=headers()), ok())
    await llm.complete("x")
    assert clock.sleeps[0] == pytest.approx(expected, abs=1.5)


async def test_retry_after_beyond_cap_fails_fast(
    llm: AsyncLLMClient, router: respx.Router, clock: FakeClock
) -> None:
    """A Retry-After of an hour fails the call rather than sleeping."""
    route = mock_chat_completion(
        router, BASE, httpx.Response(429, headers={"Retry-After": "3600"}), ok()
    )
    with pytest.raises(LLMRateLimitError):
        await llm.complete("x")
    assert route.call_count == 1
    assert clock.sleeps == []


async def test_x_should_retry_false_is_obeyed(llm: AsyncLLMClient, router: respx.Router) -> None:
    """A 503 the server marks x-should-retry: false is not retried."""
    route = mock_chat_completion(
        router, BASE, httpx.Response(503, headers={"x-should-retry": "false"}), ok()
    )
    with pytest.raises(LLMError):
        await llm.complete("x")
    assert route.call_count == 1


async def test_connection_errors_and_timeouts_are_retried(
    llm: AsyncLLMClient, router: respx.Router
) -> None:
    """A reset connection and a read timeout are retried, then succeed."""
    route = mock_chat_completion(
        router,
        BASE,
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ReadTimeout("slow"),
        ok("after reset"),
    )
    r = await llm.complete("x")
    assert r.text == "after reset"
    assert route.call_count == 3


async def test_timeouts_exhausted_raise_timeout_error(
    llm: AsyncLLMClient, router: respx.Router
) -> None:
    """Timeouts on every attempt end in LLMTimeoutError with the attempts."""
    router.post(f"{BASE}/chat/completions").mock(side_effect=httpx.ConnectTimeout("x"))
    with pytest.raises(LLMTimeoutError) as info:
        await llm.complete("x")
    assert info.value.attempts == 4


async def test_error_object_inside_200_is_retried_when_transient(
    llm: AsyncLLMClient, router: respx.Router
) -> None:
    """A top-level error in a 200 (code 502) is retried; a choice error too."""
    choice_error = {
        "id": "gen-x",
        "choices": [{"finish_reason": "error", "error": {"code": 503, "message": "down"}}],
    }
    route = mock_chat_completion(
        router, BASE, {"error": {"code": 502, "message": "upstream"}}, choice_error, ok("ok")
    )
    r = await llm.complete("x")
    assert r.text == "ok"
    assert route.call_count == 3


async def test_error_object_inside_200_non_transient(
    llm: AsyncLLMClient, router: respx.Router
) -> None:
    """A 200 whose error code is 400 fails at once as LLMResponseError."""
    route = mock_chat_completion(router, BASE, {"error": {"code": 400, "message": "bad"}}, ok())
    with pytest.raises(LLMResponseError):
        await llm.complete("x")
    assert route.call_count == 1


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, content=b"{not json"),
        httpx.Response(200, json={"id": "x", "choices": []}),
        httpx.Response(200, json={"id": "x"}),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, json={"id": "x", "choices": [{"finish_reason": "stop"}]}),
    ],
)
async def test_malformed_bodies_are_response_errors(
    llm: AsyncLLMClient, router: respx.Router, response: httpx.Response
) -> None:
    """Invalid JSON, no choices, or a choice with no message: LLMResponseError."""
    mock_chat_completion(router, BASE, response)
    with pytest.raises(LLMResponseError):
        await llm.complete("x")


async def test_content_filter_is_a_typed_error_not_retried(
    llm: AsyncLLMClient, router: respx.Router
) -> None:
    """finish_reason content_filter raises LLMContentFilterError on the first attempt,
    and its usage is still charged."""
    body = ok("", finish_reason="content_filter", cost="0.0003")
    body["choices"][0]["message"]["content"] = None
    route = mock_chat_completion(router, BASE, body, ok())
    with pytest.raises(LLMContentFilterError) as info:
        await llm.complete("x")
    assert info.value.attempts == 1
    assert info.value.request_id == "gen-test"
    assert route.call_count == 1
    assert llm.costs.total_usd == Decimal("0.0003")
    assert llm.costs.billed_failures == 1


async def test_missing_api_key_sends_nothing(router: respx.Router) -> None:
    """api_key None or '' is a ConfigError on the first call, before any request."""
    route = mock_chat_completion(router, BASE, ok())
    for key in (None, ""):
        async with AsyncLLMClient(
            key, base_url=BASE, transport=httpx.MockTransport(router.async_handler)
        ) as llm:
            with pytest.raises(ConfigError, match="OPENROUTER_API_KEY"):
                await llm.complete("x")
    assert route.call_count == 0


async def test_closed_client_is_a_clear_error(llm: AsyncLLMClient) -> None:
    """aclose twice is fine; a call after it raises ClientClosedError."""
    await llm.aclose()
    await llm.aclose()
    with pytest.raises(ClientClosedError, match="closed"):
        await llm.complete("x")
    with pytest.raises(ClientClosedError):
        await llm.batch(["x"])


# --- costs ---------------------------------------------------------------------------


async def test_table_cost_when_provider_gives_none(
    llm: AsyncLLMClient, router: respx.Router
) -> None:
    """Without usage.cost the table prices input and output at their own rates."""
    mock_chat_completion(router, BASE, ok(prompt_tokens=1000, completion_tokens=500))
    r = await llm.complete("x")
    # 1000 x $0.15/M + 500 x $0.60/M = 0.00015 + 0.0003
    assert r.cost_usd == Decimal("0.00045")
    assert r.cost_source == "pricing"


async def test_cached_tokens_priced_at_cached_rate(
    llm: AsyncLLMClient, router: respx.Router
) -> None:
    """Cached prompt tokens use the cached-read price when the table has one."""
    body = ok(prompt_tokens=1000, completion_tokens=0)
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": 400}
    mock_chat_completion(router, BASE, body)
    r = await llm.complete("x")
    # 600 x 0.15/M + 400 x 0.075/M
    assert r.cost_usd == Decimal("0.00012")
    assert r.usage.cached_tokens == 400


def test_calculate_cost_exact_and_unknown_model() -> None:
    """calculate_cost is exact Decimal arithmetic; an unknown model is a ConfigError."""
    assert calculate_cost("anthropic/claude-3.5-haiku", 2000, 1000) == Decimal("0.0056")
    assert calculate_cost("openai/gpt-4-turbo", 1, 1) == Decimal("0.00004")
    assert calculate_cost("anthropic/claude-haiku-4.5", 1_000_000, 1_000_000) == Decimal(6)
    custom = {"my/model": ModelPrice(Decimal("2"), Decimal("3"))}
    assert calculate_cost("my/model", 500_000, 0, pricing=custom) == Decimal(1)
    with pytest.raises(ConfigError, match="mystery/model"):
        calculate_cost("mystery/model", 10, 10)


async def test_unknown_model_is_unpriced_not_mispriced(
    llm: AsyncLLMClient, router: respx.Router
) -> None:
    """A model with no price and no provider cost is counted unpriced, at $0, and logged."""
    mock_chat_completion(router, BASE, ok(model="mystery/model"))
    with capture_logs() as logs:
        r = await llm.complete("x", model="mystery/model")
    assert r.cost_source == "unpriced"
    assert r.cost_usd == 0
    assert llm.costs.unpriced_calls == 1
    assert llm.costs.total_usd == 0
    assert "mystery/model" not in llm.costs.by_model
    assert any(e["event"] == "audit_core.llm.unpriced" for e in logs)


async def test_refresh_pricing_loads_models_listing(
    llm: AsyncLLMClient, router: respx.Router
) -> None:
    """/models per-token prices become per-million prices in the table."""
    router.get(f"{BASE}/models").mock(
        return_value=httpx.Response(
            200,
            json={
                "data": [
                    {"id": "new/model", "pricing": {"prompt": "0.000002", "completion": "0.00001"}},
                    {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}},
                ]
            },
        )
    )
    assert await llm.refresh_pricing() == 1
    assert llm.pricing["new/model"] == ModelPrice(Decimal("2"), Decimal("10"))
    assert "openrouter/auto" not in llm.pricing


async def test_ledger_sums_and_snapshot(llm: AsyncLLMClient, router: respx.Router) -> None:
    """The ledger adds by model and by agent; the snapshot is JSON-ready strings."""
    mock_chat_completion(
        router,
        BASE,
        ok(cost="0.001"),
        ok(cost="0.002"),
        ok(model="anthropic/claude-3.5-haiku", cost="0.004"),
    )
    await llm.complete("a", agent_name="one")
    await llm.complete("b", agent_name="two")
    await llm.complete("c", agent_name="two", tier="escalation")
    assert llm.costs.total_usd == Decimal("0.007")
    assert llm.costs.by_agent == {"one": Decimal("0.001"), "two": Decimal("0.006")}
    assert sum(llm.costs.by_model.values()) == llm.costs.total_usd
    snap = llm.costs.snapshot()
    assert snap["total_usd"] == "0.007"
    assert snap["calls"] == 3


async def test_failed_attempts_cost_nothing(llm: AsyncLLMClient, router: respx.Router) -> None:
    """Only the successful attempt is charged."""
    mock_chat_completion(router, BASE, httpx.Response(502), ok(cost="0.01"))
    await llm.complete("x")
    assert llm.costs.total_usd == Decimal("0.01")
    assert llm.costs.calls == 1


# --- privacy ---------------------------------------------------------------------------


async def test_key_and_prompt_never_in_logs_repr_or_errors(
    llm: AsyncLLMClient, router: respx.Router
) -> None:
    """The API key and prompt text appear in no log event, repr or exception."""
    prompt = "card 4111-1111 paid ACME CONFIDENTIAL"
    router.post(f"{BASE}/chat/completions").mock(
        return_value=httpx.Response(
            401, json={"error": {"code": 401, "message": f"bad key Bearer {KEY}"}}
        )
    )
    with capture_logs() as logs, pytest.raises(LLMAuthError) as info:
        await llm.complete(prompt)
    everything = repr(logs) + repr(llm) + str(info.value) + repr(info.value)
    assert KEY not in everything
    assert "CONFIDENTIAL" not in everything
    assert "unit-test-secret" not in everything
    failed = [e for e in logs if e["event"] == "audit_core.llm.failed"]
    assert failed[0]["prompt"]["len"] > len(prompt)


async def test_bad_arguments_are_config_errors(llm: AsyncLLMClient) -> None:
    """Empty messages, bad tier, bad max_tokens: ConfigError, nothing sent."""
    with pytest.raises(ConfigError):
        await llm.complete([])
    with pytest.raises(ConfigError):
        await llm.complete("x", tier="premium")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        await llm.complete("x", max_tokens=0)
    with pytest.raises(ConfigError):
        await llm.complete([{"content": "no role"}])
    with pytest.raises(ConfigError):
        AsyncLLMClient(KEY, max_concurrency=0)
    with pytest.raises(ConfigError):
        AsyncLLMClient(KEY, budget_usd=-5)


# --- structure -------------------------------------------------------------------------


def test_retry_decisions_read_public_attributes() -> None:
    """The classifier reads .transient and .retry_after_s, nothing private."""
    from audit_core.llm._errors_map import retry_verdict

    verdict = retry_verdict(
        LLMRateLimitError("x", status_code=429, transient=True, retry_after_s=3)
    )
    assert verdict is not None
    assert (verdict.reason, verdict.retry_after_s) == ("status_429", 3)
    assert retry_verdict(LLMError("x", status_code=400)) is None
    assert retry_verdict(ValueError("not ours")) is None


def test_from_settings_takes_typed_overrides() -> None:
    """Settings fill the defaults; keyword overrides win (api_key included)."""
    from audit_core import Settings

    settings = Settings.from_env({"OPENROUTER_API_KEY": "env-key", "AUDIT_LLM_BUDGET_USD": "2"})
    llm = AsyncLLMClient.from_settings(settings, max_concurrency=3, api_key="override-key")
    assert llm.max_concurrency == 3
    assert llm.costs.budget_usd == Decimal(2)
    assert llm._api_key == "override-key"


async def test_unclosed_used_client_warns(router: respx.Router) -> None:
    """A client that owns its connections, was used and is dropped unclosed warns."""
    mock_chat_completion(router, BASE, ok())
    llm = AsyncLLMClient(KEY, base_url=BASE, transport=httpx.MockTransport(router.async_handler))
    await llm.complete("x")
    with pytest.warns(ResourceWarning, match="unclosed AsyncLLMClient"):
        del llm
