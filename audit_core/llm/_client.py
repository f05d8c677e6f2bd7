"""`AsyncLLMClient`: raw httpx against any OpenAI-compatible endpoint (OpenRouter by default).

The hot path is deliberately plain: one pre-encoded request per attempt, one
``json.loads`` per response, no per-call logger binding, no model objects.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

import httpx

from audit_core import _constants as C
from audit_core._logging import fingerprint, get_logger, redact_text
from audit_core.errors import (
    ConfigError,
    LLMAuthError,
    LLMError,
    LLMInsufficientCreditsError,
    LLMRateLimitError,
    LLMResponseError,
    LLMTimeoutError,
)
from audit_core.llm._cache import ResponseCache, cache_key
from audit_core.llm._costs import CostLedger, Reservation
from audit_core.llm._pricing import BUILTIN_PRICES, ModelPrice, prices_from_models_listing
from audit_core.metrics import get_metrics
from audit_core.retry import RetryPolicy, Transient, parse_retry_after

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from audit_core._settings import Settings
    from audit_core.db._trail import AuditTrail
    from audit_core.llm._classify import Classification

__all__ = ["AsyncLLMClient", "LLMResponse", "Message", "Prompt", "Usage"]

_log = get_logger("audit_core.llm")

Message = Mapping[str, Any]
Prompt = str | Sequence[Message]
Tier = Literal["default", "escalation"]

_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
# Per-message framing tokens added by chat templates; generous, for the budget's worst case.
_FRAMING_TOKENS_PER_MESSAGE = 8
_ERROR_MESSAGE_MAX = 300


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the endpoint reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class LLMResponse:
    """One completed call. ``cost_usd`` is exact; ``cost_source`` says where it came from."""

    text: str
    model: str
    usage: Usage
    cost_usd: Decimal
    cost_source: Literal["provider", "pricing", "unpriced", "cache"]
    latency_s: float
    attempts: int
    request_id: str | None
    finish_reason: str | None
    cached: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _cache_entry(result: LLMResponse) -> dict[str, Any]:
    return {
        "text": result.text, "model": result.model, "usage": asdict(result.usage),
        "cost_usd": str(result.cost_usd), "request_id": result.request_id,
        "finish_reason": result.finish_reason,
    }  # fmt: skip


def _error(
    cls: type[LLMError],
    message: str,
    *,
    model: str,
    status: int | None = None,
    request_id: str | None = None,
    transient: Transient | None = None,
) -> LLMError:
    err = cls(message, model=model, status_code=status, request_id=request_id)
    err._transient = transient  # type: ignore[attr-defined]
    return err


def _classify(exc: Exception) -> Transient | None:
    verdict: Transient | None = getattr(exc, "_transient", None)
    return verdict


def _server_message(body: Any) -> str:
    """The endpoint's error message, redacted and truncated; never its metadata."""
    err = body.get("error") if isinstance(body, Mapping) else None
    msg = err.get("message") if isinstance(err, Mapping) else err if isinstance(err, str) else None
    if not msg:
        return ""
    text = redact_text(str(msg))
    return text if len(text) <= _ERROR_MESSAGE_MAX else text[:_ERROR_MESSAGE_MAX] + "..."


def _status_error_class(status: int) -> type[LLMError]:
    if status == 429:
        return LLMRateLimitError
    if status in (401, 403):
        return LLMAuthError
    if status == 402:
        return LLMInsufficientCreditsError
    if status == 408:
        return LLMTimeoutError
    return LLMError


def _status_transient(status: int, headers: Mapping[str, str] | None) -> Transient | None:
    should = headers.get("x-should-retry") if headers is not None else None
    if should == "false":
        return None
    if status in _TRANSIENT_STATUS or status >= 500 or should == "true":
        return Transient(f"status_{status}", parse_retry_after(headers) if headers else None)
    return None


def _to_messages(prompt: Prompt) -> list[Message]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    messages = list(prompt)
    if not messages:
        raise ConfigError("messages must not be empty")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise ConfigError(f"message {i} must be a mapping with 'role' and 'content'")
    return messages


def _worst_case_prompt_tokens(payload: bytes, n_messages: int) -> int:
    # No tokenizer emits fewer than one byte of UTF-8 per token, so the encoded request
    # is an upper bound on its prompt tokens (plus chat-template framing).
    return len(payload) + _FRAMING_TOKENS_PER_MESSAGE * n_messages


class AsyncLLMClient:
    """Async client for an OpenAI-compatible chat completions endpoint.

    Constructor arguments are explicit; `from_settings` resolves them from `Settings`
    (environment). One pooled HTTP client per instance; use ``async with`` or `aclose`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = C.DEFAULT_LLM_BASE_URL,
        default_model: str = C.DEFAULT_MODEL,
        escalation_model: str = C.DEFAULT_ESCALATION_MODEL,
        max_concurrency: int = C.DEFAULT_LLM_MAX_CONCURRENCY,
        max_retries: int = C.DEFAULT_LLM_MAX_RETRIES,
        timeout_s: float = C.DEFAULT_LLM_TIMEOUT_S,
        budget_usd: Decimal | float | str | None = None,
        pricing: Mapping[str, ModelPrice] | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | Literal["aiohttp", "httpx"] | None = None,
        registry: CollectorRegistry | None = None,
        app_name: str | None = None,
        app_url: str | None = None,
        retry_policy: RetryPolicy | None = None,
        budget_completion_reserve: int = C.DEFAULT_BUDGET_COMPLETION_RESERVE,
        trail: AuditTrail | None = None,
        cache: ResponseCache | None = None,
        cache_nonzero_temperature: bool = False,
    ) -> None:
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be positive, got {timeout_s}")
        budget: Decimal | None = None
        if budget_usd is not None:
            budget = Decimal(str(budget_usd)) if not isinstance(budget_usd, Decimal) else budget_usd
            if not budget.is_finite() or budget < 0:
                raise ConfigError(f"budget_usd must be a non-negative amount, got {budget_usd!r}")
        self._api_key = api_key or None
        self.base_url = base_url.rstrip("/")
        self.default_model = default_model
        self.escalation_model = escalation_model
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self._user_prices: dict[str, ModelPrice] = dict(pricing or {})
        self._prices: dict[str, ModelPrice] = {**BUILTIN_PRICES, **self._user_prices}
        self._reserve_tokens = budget_completion_reserve
        self.costs = CostLedger(budget)
        self.trail = trail
        self._cache = cache
        self.cache_nonzero_temperature = cache_nonzero_temperature
        self._in_flight: dict[str, asyncio.Future[LLMResponse]] = {}
        self.escalations: dict[str, int] = {}
        self._metrics = get_metrics(registry)
        policy = retry_policy or RetryPolicy(
            timeout_s=max(timeout_s * 4, C.DEFAULT_RETRY_DEADLINE_S)
        )
        self._policy = policy.with_attempts(max_retries + 1)
        self._semaphore = asyncio.Semaphore(max_concurrency)
        # Parsed once: httpx would otherwise re-parse the URL string on every request.
        self._chat_url = httpx.URL(f"{self.base_url}/chat/completions")
        self._closed = False
        self._children: dict[tuple[str, str], tuple[Any, ...]] = {}

        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if app_url:
            headers["HTTP-Referer"] = app_url
        if app_name:
            headers["X-OpenRouter-Title"] = app_name
            headers["X-Title"] = app_name
        self._owns_http = http_client is None
        if http_client is not None:
            http_client.headers.update(headers)
            self._http = http_client
        else:
            limits = httpx.Limits(
                max_connections=max_concurrency,
                max_keepalive_connections=max_concurrency,
                keepalive_expiry=30.0,
            )
            if transport is None or transport == "aiohttp":
                from httpx_aiohttp import AiohttpTransport

                transport = AiohttpTransport(limits=limits)
            elif transport == "httpx":
                transport = httpx.AsyncHTTPTransport(limits=limits)
            self._http = httpx.AsyncClient(
                headers=headers,
                timeout=httpx.Timeout(
                    timeout_s, connect=min(C.DEFAULT_LLM_CONNECT_TIMEOUT_S, timeout_s)
                ),
                limits=limits,
                transport=transport,
            )

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> AsyncLLMClient:
        """Build a client from `Settings` (default: ``Settings.from_env()``).

        Resolved in order: explicit ``overrides``, then settings (``OPENROUTER_API_KEY``,
        ``AUDIT_LLM_BASE_URL``, ``GPT4O_MINI_MODEL``, ``AUDIT_LLM_ESCALATION_MODEL``,
        ``AUDIT_LLM_MAX_CONCURRENCY``, ``AUDIT_LLM_BUDGET_USD``), then built-in defaults.
        """
        if settings is None:
            from audit_core._settings import Settings

            settings = Settings.from_env()
        kwargs: dict[str, Any] = {
            "base_url": settings.llm_base_url,
            "default_model": settings.default_model,
            "escalation_model": settings.escalation_model,
            "max_concurrency": settings.llm_max_concurrency,
            "budget_usd": settings.llm_budget_usd,
        }
        kwargs.update(overrides)
        api_key = kwargs.pop("api_key", settings.openrouter_api_key)
        return cls(api_key, **kwargs)

    # lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections (if this client created them). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_http:
            await self._http.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise LLMError("this AsyncLLMClient is closed; create a new one")

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return (
            f"AsyncLLMClient(api_key={key}, base_url={self.base_url!r}, "
            f"default_model={self.default_model!r}, max_concurrency={self.max_concurrency})"
        )

    # pricing -----------------------------------------------------------------------

    @property
    def pricing(self) -> Mapping[str, ModelPrice]:
        """The prices in use: built-in, then the endpoint's (after refresh), then yours."""
        return dict(self._prices)

    def price_of(self, model: str) -> ModelPrice | None:
        return self._prices.get(model)

    async def refresh_pricing(self) -> int:
        """Merge the endpoint's ``/models`` prices into the table; returns how many loaded.

        Prices given to the constructor still win over the endpoint's.
        """
        self._check_open()

        async def fetch(attempt: int) -> httpx.Response:
            try:
                resp = await self._http.get(f"{self.base_url}/models")
            except httpx.TimeoutException as exc:
                raise _error(
                    LLMTimeoutError, f"GET /models timed out ({type(exc).__name__})",
                    model="*", transient=Transient("timeout"),
                ) from None  # fmt: skip
            except httpx.TransportError as exc:
                raise _error(
                    LLMError, f"GET /models failed: {type(exc).__name__}",
                    model="*", transient=Transient("connection"),
                ) from None  # fmt: skip
            if resp.status_code != 200:
                raise _error(
                    _status_error_class(resp.status_code),
                    f"GET /models returned HTTP {resp.status_code}",
                    model="*",
                    status=resp.status_code,
                    transient=_status_transient(resp.status_code, resp.headers),
                )
            return resp

        resp = await self._policy.call(
            fetch, client="llm", classify=_classify, metrics=self._metrics
        )
        try:
            body = json.loads(resp.content)
        except ValueError:
            raise LLMResponseError("GET /models returned invalid JSON", model="*") from None
        loaded = prices_from_models_listing(body)
        self._prices = {**BUILTIN_PRICES, **loaded, **self._user_prices}
        return len(loaded)

    # calls -------------------------------------------------------------------------

    def _resolve_model(self, model: str | None, tier: Tier) -> str:
        if model:
            return model
        if tier == "escalation":
            return self.escalation_model
        if tier != "default":
            raise ConfigError(f"tier must be 'default' or 'escalation', got {tier!r}")
        return self.default_model

    def _meters(self, model: str, agent: str) -> tuple[Any, ...]:
        key = (model, agent)
        children = self._children.get(key)
        if children is None:
            m = self._metrics
            children = self._children[key] = (
                m.llm_requests.labels(model, agent, "ok"),
                m.llm_tokens.labels(model, agent, "prompt"),
                m.llm_tokens.labels(model, agent, "completion"),
                m.llm_cost.labels(model, agent),
                m.llm_seconds.labels(model),
            )
        return children

    async def complete(
        self,
        prompt: Prompt,
        *,
        model: str | None = None,
        tier: Tier = "default",
        agent_name: str = "unknown",
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> LLMResponse:
        """Send one chat completion and return its text, usage and exact cost.

        ``prompt`` is a string (one user message) or a list of chat messages. ``extra``
        keys are passed through in the request body (``tools``, ``seed``, ``provider``...).
        Raises the `LLMError` subclass that matches the failure; see `audit_core.errors`.
        """
        self._check_open()
        if not self._api_key:
            raise ConfigError(
                "no LLM API key: set OPENROUTER_API_KEY or pass api_key= to AsyncLLMClient"
            )
        model_name = self._resolve_model(model, tier)
        messages = _to_messages(prompt)
        if max_tokens is not None and max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {max_tokens}")
        body: dict[str, Any] = {"model": model_name, "messages": messages}
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if response_format is not None:
            body["response_format"] = response_format
        if extra:
            body.update(extra)
        try:
            payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"request body is not JSON-serialisable: {exc}") from None

        if self._cache is not None and (not temperature or self.cache_nonzero_temperature):
            return await self._complete_cached(
                body, payload, model_name, len(messages), max_tokens, agent_name
            )
        return await self._send(payload, model_name, len(messages), max_tokens, agent_name)

    async def _send(
        self,
        payload: bytes,
        model_name: str,
        n_messages: int,
        max_tokens: int | None,
        agent_name: str,
    ) -> LLMResponse:
        reservation = self._reserve(model_name, payload, n_messages, max_tokens)
        started = time.perf_counter()
        try:
            async with self._semaphore:
                self._metrics.llm_in_flight.inc()
                try:
                    response = await self._policy.call(
                        lambda attempt: self._attempt(payload, model_name, attempt),
                        client="llm",
                        classify=_classify,
                        metrics=self._metrics,
                    )
                finally:
                    self._metrics.llm_in_flight.dec()
        except LLMError as exc:
            self.costs.release(reservation)
            self._metrics.llm_requests.labels(model_name, agent_name, type(exc).__name__).inc()
            _log.warning(
                "audit_core.llm.failed",
                model=model_name,
                agent=agent_name,
                error_type=type(exc).__name__,
                status_code=exc.status_code,
                attempts=exc.attempts,
                request_id=exc.request_id,
                prompt=fingerprint(payload),
            )
            if self.trail is not None:
                await self.trail.record(
                    agent_name, "llm.complete", llm_model=model_name,
                    execution_time_ms=(time.perf_counter() - started) * 1000,
                    error=f"{type(exc).__name__}: {exc}",
                )  # fmt: skip
            raise
        except BaseException:
            self.costs.release(reservation)
            raise
        result = self._settle(response, agent_name, time.perf_counter() - started, reservation)
        if self.trail is not None:
            await self.trail.record(
                agent_name, "llm.complete", llm_model=result.model,
                llm_tokens_used=result.usage.total_tokens, llm_cost_dollars=result.cost_usd,
                execution_time_ms=result.latency_s * 1000,
                output_summary=f"{len(result.text)} chars, finish={result.finish_reason}",
            )  # fmt: skip
        return result

    async def _complete_cached(
        self,
        body: Mapping[str, Any],
        payload: bytes,
        model_name: str,
        n_messages: int,
        max_tokens: int | None,
        agent_name: str,
    ) -> LLMResponse:
        """Serve from the cache, or join an identical request in flight, or send it."""
        assert self._cache is not None
        key = cache_key(body)
        hit = await self._cache.get(key)
        if hit is not None:
            return self._replay(hit, agent_name)
        running = self._in_flight.get(key)
        if running is not None:  # the same question is being asked right now: ask once
            original = await asyncio.shield(running)
            return self._replay(_cache_entry(original), agent_name)
        future: asyncio.Future[LLMResponse] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._in_flight[key] = future
        try:
            result = await self._send(payload, model_name, n_messages, max_tokens, agent_name)
        except BaseException as exc:
            future.set_exception(
                exc if isinstance(exc, Exception) else LLMError("cancelled", model=model_name)
            )
            raise
        finally:
            self._in_flight.pop(key, None)
        future.set_result(result)
        await self._cache.set(key, _cache_entry(result))
        return result

    def _replay(self, entry: Mapping[str, Any], agent_name: str) -> LLMResponse:
        """A cached answer: free, marked cached, and counted as saved in the ledger."""
        usage = Usage(**entry["usage"])
        saved = Decimal(entry["cost_usd"])
        self.costs.record_saving(
            model=entry["model"], cost=saved, prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        )  # fmt: skip
        self._metrics.llm_cache_hits.inc()
        return LLMResponse(
            text=entry["text"], model=entry["model"], usage=usage, cost_usd=Decimal(0),
            cost_source="cache", latency_s=0.0, attempts=0, request_id=entry.get("request_id"),
            finish_reason=entry.get("finish_reason"), cached=True,
        )  # fmt: skip

    def _reserve(
        self, model: str, payload: bytes, n_messages: int, max_tokens: int | None
    ) -> Reservation | None:
        if self.costs.budget_usd is None:
            return None
        price = self._prices.get(model)
        if price is None:
            raise ConfigError(
                f"a budget is set but no price is known for model {model!r}, so its "
                "worst-case cost cannot be reserved; pass pricing= or call refresh_pricing()"
            )
        worst = price.cost(
            _worst_case_prompt_tokens(payload, n_messages), max_tokens or self._reserve_tokens
        )
        try:
            reservation = self.costs.reserve(worst, model=model)
        except LLMError:
            self._metrics.llm_requests.labels(model, "-", "budget_exceeded").inc()
            raise
        return reservation

    def _settle(
        self,
        partial: tuple[Mapping[str, Any], str, int, str | None],
        agent: str,
        latency: float,
        reservation: Reservation | None,
    ) -> LLMResponse:
        body, requested_model, attempts, request_id = partial
        usage_raw = body.get("usage") or {}
        prompt_details = usage_raw.get("prompt_tokens_details") or {}
        completion_details = usage_raw.get("completion_tokens_details") or {}
        prompt_tokens = int(usage_raw.get("prompt_tokens") or 0)
        completion_tokens = int(usage_raw.get("completion_tokens") or 0)
        usage = Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=int(usage_raw.get("total_tokens") or prompt_tokens + completion_tokens),
            cached_tokens=int(prompt_details.get("cached_tokens") or 0),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
        )
        reported = usage_raw.get("cost")
        cost: Decimal | None
        source: Literal["provider", "pricing", "unpriced"]
        if reported is not None and not isinstance(reported, bool):
            cost = reported if isinstance(reported, Decimal) else Decimal(str(reported))
            source = "provider"
        else:
            price = self._prices.get(requested_model) or self._prices.get(
                str(body.get("model") or "")
            )
            if price is not None:
                cost = price.cost(prompt_tokens, completion_tokens, usage.cached_tokens)
                source = "pricing"
            else:
                cost, source = None, "unpriced"
                self._metrics.llm_unpriced.labels(requested_model).inc()
                _log.warning("audit_core.llm.unpriced", model=requested_model, agent=agent)
        self.costs.record(
            model=requested_model,
            agent=agent,
            cost=cost,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            reservation=reservation,
        )
        requests, tok_in, tok_out, cost_counter, seconds = self._meters(requested_model, agent)
        requests.inc()
        tok_in.inc(prompt_tokens)
        tok_out.inc(completion_tokens)
        if cost:
            cost_counter.inc(float(cost))
        seconds.observe(latency)
        remaining = self.costs.remaining_usd
        if remaining is not None:
            self._metrics.llm_budget_remaining.set(float(remaining))
        choice = body["choices"][0]
        message = choice.get("message") or {}
        return LLMResponse(
            text=message.get("content") or "",
            model=str(body.get("model") or requested_model),
            usage=usage,
            cost_usd=cost if cost is not None else Decimal(0),
            cost_source=source,
            latency_s=latency,
            attempts=attempts,
            request_id=request_id,
            finish_reason=choice.get("finish_reason"),
            raw=body,
        )

    async def _attempt(
        self, payload: bytes, model: str, attempt: int
    ) -> tuple[Mapping[str, Any], str, int, str | None]:
        try:
            resp = await self._http.post(self._chat_url, content=payload)
        except httpx.TimeoutException as exc:
            raise _error(
                LLMTimeoutError, f"no answer from the LLM endpoint in time ({type(exc).__name__})",
                model=model, transient=Transient("timeout"),
            ) from None  # fmt: skip
        except httpx.TransportError as exc:
            raise _error(
                LLMError, f"LLM endpoint connection failed ({type(exc).__name__})",
                model=model, transient=Transient("connection"),
            ) from None  # fmt: skip
        status = resp.status_code
        request_id = resp.headers.get("x-request-id")
        if status != 200:
            try:
                err_body: Any = json.loads(resp.content)
            except ValueError:
                err_body = None
            detail = _server_message(err_body)
            raise _error(
                _status_error_class(status),
                f"LLM endpoint returned HTTP {status} for model {model!r}"
                + (f": {detail}" if detail else ""),
                model=model,
                status=status,
                request_id=request_id,
                transient=_status_transient(status, resp.headers),
            )
        try:
            body = json.loads(resp.content, parse_float=Decimal)
        except ValueError:
            raise _error(
                LLMResponseError, "LLM endpoint returned invalid JSON",
                model=model, status=status, request_id=request_id,
            ) from None  # fmt: skip
        if not isinstance(body, dict):
            raise _error(
                LLMResponseError, "LLM endpoint returned a JSON body that is not an object",
                model=model, status=status, request_id=request_id,
            )  # fmt: skip
        request_id = body.get("id") or request_id
        if body.get("error") is not None:
            self._raise_embedded(body["error"], body, model, request_id)
        choices = body.get("choices")
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            raise _error(
                LLMResponseError, "LLM endpoint returned no choices",
                model=model, status=status, request_id=request_id,
            )  # fmt: skip
        choice = choices[0]
        if choice.get("error") is not None or choice.get("finish_reason") == "error":
            self._raise_embedded(choice.get("error") or {}, choice, model, request_id)
        if not isinstance(choice.get("message"), dict):
            raise _error(
                LLMResponseError, "LLM endpoint returned a choice with no message",
                model=model, status=status, request_id=request_id,
            )  # fmt: skip
        return body, model, attempt, request_id

    @staticmethod
    def _raise_embedded(error: Any, holder: Mapping[str, Any], model: str, request_id: Any) -> None:
        code = error.get("code") if isinstance(error, Mapping) else None
        try:
            status = int(code) if code is not None else None
        except (TypeError, ValueError):
            status = None
        detail = _server_message({"error": error})
        transient = _status_transient(status, None) if status is not None else None
        cls = _status_error_class(status) if status is not None else LLMResponseError
        if cls is LLMError:
            cls = LLMResponseError
        raise _error(
            cls,
            f"LLM endpoint returned an error inside a 200 response (code {code})"
            + (f": {detail}" if detail else ""),
            model=model,
            status=status,
            request_id=str(request_id) if request_id else None,
            transient=transient,
        )

    async def call(
        self, prompt: Prompt, model: str | None = None, agent_name: str = "unknown", **kwargs: Any
    ) -> str:
        """Seed-style: `complete` and return just the text."""
        response = await self.complete(prompt, model=model, agent_name=agent_name, **kwargs)
        return response.text

    async def classify(
        self,
        items: Sequence[str | Mapping[str, Any]],
        labels: Sequence[str],
        *,
        instructions: str,
        agent_name: str,
        model: str | None = None,
        batch_size: int = 10,
        min_confidence: float = 0.6,
        escalation_model: str | None = None,
    ) -> list[Classification]:
        """Classify ``items`` into ``labels``: validated, re-asked once, escalated rarely.

        See `audit_core.llm._classify` for the flow; one result per item, in order.
        """
        from audit_core.llm._classify import classify

        return await classify(
            self, items, labels, instructions=instructions, agent_name=agent_name,
            model=model, escalation_model=escalation_model, batch_size=batch_size,
            min_confidence=min_confidence,
        )  # fmt: skip

    def count_escalation(self, reason: str) -> None:
        """Count one item escalated to the escalation model (``reason``: why)."""
        self._metrics.llm_escalations.labels(reason).inc()
        self.escalations[reason] = self.escalations.get(reason, 0) + 1

    async def batch(
        self,
        prompts: Sequence[Prompt],
        *,
        model: str | None = None,
        agent_name: str = "unknown",
        max_tokens: int | None = None,
        temperature: float | None = 0.0,
        return_exceptions: bool = True,
        on_progress: Callable[[int, int], object] | None = None,
        **kwargs: Any,
    ) -> list[LLMResponse | LLMError]:
        """Run ``prompts`` concurrently; results in input order.

        Never more than ``max_concurrency`` requests are in flight on this client, also
        across batches. With ``return_exceptions=True`` a failed prompt's slot holds its
        `LLMError`; with ``False`` the first failure cancels the rest and is raised.
        ``on_progress(done, total)`` is called after each prompt finishes.
        """
        self._check_open()
        items = list(prompts)
        total = len(items)
        results: list[Any] = [None] * total
        pending = iter(range(total))
        done = 0

        async def worker() -> None:
            nonlocal done
            for i in pending:
                try:
                    results[i] = await self.complete(
                        items[i],
                        model=model,
                        agent_name=agent_name,
                        max_tokens=max_tokens,
                        temperature=temperature,
                        **kwargs,
                    )
                except LLMError as exc:
                    if not return_exceptions:
                        raise
                    results[i] = exc
                done += 1
                if on_progress is not None:
                    on_progress(done, total)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(total, self.max_concurrency)):
                    group.create_task(worker())
        except BaseExceptionGroup as eg:
            # Callers catch LLMError, not a group: raise the failure that stopped the batch.
            raise eg.exceptions[0] from None
        return results
