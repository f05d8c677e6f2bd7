"""`AsyncLLMClient`: raw httpx against any OpenAI-compatible endpoint (OpenRouter by default).

The hot path is deliberately plain: one pre-encoded request per attempt, one JSON
decode per response, no per-call logger binding, no model objects. The pieces live next
door: the POST and the JSON coders in `_wire`, money in `_accounting`, error mapping and
redaction in `_errors_map`, usage validation in `_usage`, the concurrency limit in
`_limiter`, shared in-flight requests in `_shared`, stream assembly in `_stream`.

Deadlines: ``timeout_s`` bounds each attempt end to end (connect, send, the whole body or
stream), whatever the transport; ``total_timeout_s`` bounds the call, retries and their
waits included. Both are one timer per attempt (whichever ends first).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Self, TypedDict, Unpack

import httpx

from audit_core import _constants as C
from audit_core._lifecycle import AsyncLifecycle
from audit_core._logging import fingerprint, forget_secret, get_logger, register_secret
from audit_core._settings import resolve_settings
from audit_core.errors import ConfigError, LLMError, LLMResponseError, LLMTimeoutError
from audit_core.llm._accounting import Accountant, Billed
from audit_core.llm._cache import ResponseCache, cache_key
from audit_core.llm._classify import Classification, classify_items
from audit_core.llm._costs import CostLedger, Reservation
from audit_core.llm._errors_map import (
    Redactor,
    message_texts,
    retry_verdict,
    status_error,
    transport_error,
)
from audit_core.llm._limiter import ConcurrencyLimiter, Outcome
from audit_core.llm._pricing import BUILTIN_PRICES, ModelPrice, prices_from_models_listing
from audit_core.llm._shared import SharedRequests
from audit_core.llm._stream import DeltaSink, LLMStream, assemble_stream
from audit_core.llm._types import LLMResponse, Message, Prompt, Request, Sink, Tier, Usage
from audit_core.llm._wire import ClientWire, TransportWire, Wire, decode_exact, encode_compact
from audit_core.metrics import get_metrics
from audit_core.retry import RetryPolicy

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from audit_core._settings import Settings
    from audit_core.db._trail import AuditTrail

__all__ = ["AsyncLLMClient", "LLMClientOptions", "LLMResponse", "Message", "Prompt", "Usage"]

_log = get_logger("audit_core.llm")

# The longest server-requested wait honoured by default (the openai SDK's figure).
_OVERLOAD_STATUS = frozenset({429, 503})


class LLMClientOptions(TypedDict, total=False):
    """Keyword arguments of `AsyncLLMClient`, for ``from_settings(**overrides)``."""

    api_key: str | None
    base_url: str
    default_model: str
    escalation_model: str
    max_concurrency: int
    adaptive_concurrency: bool
    max_retries: int
    timeout_s: float
    total_timeout_s: float | None
    max_retry_after_s: float
    budget_usd: Decimal | float | str | None
    pricing: Mapping[str, ModelPrice] | None
    http_client: httpx.AsyncClient | None
    transport: httpx.AsyncBaseTransport | Literal["aiohttp", "httpx"] | None
    registry: CollectorRegistry | None
    app_name: str | None
    app_url: str | None
    retry_policy: RetryPolicy | None
    budget_completion_reserve: int
    trail: AuditTrail | None
    cache: ResponseCache | None
    cache_nonzero_temperature: bool


def _final_if_delivered(req: Request, error: LLMError) -> LLMError:
    # Text already handed to a stream's reader cannot be taken back: no retry after it.
    if req.sink is not None and req.sink.delivered:
        error.transient = False
    return error


def _cache_entry(result: LLMResponse) -> dict[str, Any]:
    return {
        "text": result.text,
        "model": result.model,
        "usage": asdict(result.usage),
        "cost_usd": str(result.cost_usd),
        "request_id": result.request_id,
        "finish_reason": result.finish_reason,
    }


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


def _http_client(
    transport: httpx.AsyncBaseTransport | Literal["aiohttp", "httpx"] | None,
    headers: Mapping[str, str],
    max_concurrency: int,
    timeout_s: float,
) -> tuple[httpx.AsyncClient, httpx.AsyncBaseTransport]:
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
    connect = min(C.DEFAULT_LLM_CONNECT_TIMEOUT_S, timeout_s)
    client = httpx.AsyncClient(
        headers=headers,
        timeout=httpx.Timeout(timeout_s, connect=connect),
        limits=limits,
        transport=transport,
    )
    return client, transport


class AsyncLLMClient(AsyncLifecycle):
    """Async client for an OpenAI-compatible chat completions endpoint.

    Constructor arguments are explicit; `from_settings` resolves them from `Settings`
    (environment). One pooled HTTP client per instance; use ``async with`` or `aclose`.
    A caller's ``http_client`` is used as given: never modified, never closed by us.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = C.DEFAULT_LLM_BASE_URL,
        default_model: str = C.DEFAULT_MODEL,
        escalation_model: str = C.DEFAULT_ESCALATION_MODEL,
        max_concurrency: int = C.DEFAULT_LLM_MAX_CONCURRENCY,
        adaptive_concurrency: bool = True,
        max_retries: int = C.DEFAULT_LLM_MAX_RETRIES,
        timeout_s: float = C.DEFAULT_LLM_TIMEOUT_S,
        total_timeout_s: float | None = None,
        max_retry_after_s: float = C.DEFAULT_LLM_RETRY_AFTER_MAX_S,
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
        if budget_completion_reserve < 1:
            raise ConfigError("budget_completion_reserve must be >= 1")
        total = max(timeout_s * 4, C.DEFAULT_RETRY_DEADLINE_S)
        total = total if total_timeout_s is None else total_timeout_s
        if total <= 0:
            raise ConfigError(f"total_timeout_s must be positive, got {total_timeout_s}")
        budget: Decimal | None = None
        if budget_usd is not None:
            budget = budget_usd if isinstance(budget_usd, Decimal) else Decimal(str(budget_usd))
            if not budget.is_finite() or budget < 0:
                raise ConfigError(f"budget_usd must be a non-negative amount, got {budget_usd!r}")
        if api_key and not (api_key.isascii() and api_key.isprintable()):
            # It goes into an HTTP header: refuse it here, and never echo it.
            raise ConfigError(
                "api_key must be printable ASCII (it is sent as an HTTP header); the key "
                "given is not (it is not shown)"
            )
        self._api_key = api_key or None
        self.base_url = base_url.rstrip("/")
        self.default_model = default_model
        self.escalation_model = escalation_model
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.total_timeout_s = total
        self._user_prices: dict[str, ModelPrice] = dict(pricing or {})
        self.trail = trail
        self._cache = cache
        self.cache_nonzero_temperature = cache_nonzero_temperature
        self._in_flight: SharedRequests[LLMResponse] = SharedRequests()
        self.escalations: dict[str, int] = {}
        self._metrics = get_metrics(registry)
        self._books = Accountant(
            ledger=CostLedger(budget),
            prices={**BUILTIN_PRICES, **self._user_prices},
            reserve_tokens=budget_completion_reserve,
            metrics=self._metrics,
            api_key=self._api_key,
        )
        self.costs = self._books.ledger
        self._policy = replace(
            retry_policy or RetryPolicy(),
            attempts=max_retries + 1,
            timeout_s=total,
            retry_after_max_s=max_retry_after_s,
        )
        self.limiter = ConcurrencyLimiter(
            max_concurrency,
            adaptive=adaptive_concurrency,
            clock=self._policy.clock,
            sleep=self._policy.sleep,
        )
        # Parsed once: httpx would otherwise re-parse the URL string on every request.
        self._chat_url = httpx.URL(f"{self.base_url}/chat/completions")

        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if app_url:
            headers["HTTP-Referer"] = app_url
        if app_name:
            headers["X-OpenRouter-Title"] = app_name
            headers["X-Title"] = app_name
        self._wire: Wire
        if http_client is not None:
            self._http = http_client
            self._headers: dict[str, str] | None = headers  # sent with each request
            self._wire = ClientWire(http_client, self._chat_url, headers)
        else:
            self._http, own = _http_client(transport, headers, max_concurrency, timeout_s)
            self._headers = None  # already the client's defaults
            self._wire = TransportWire(self._http, own, self._chat_url)
            self._owns_resources = True
        if self._api_key:
            # Until aclose, no 8 characters of the key show in any audit-core log event,
            # whatever the endpoint echoes (an id, a header, a message).
            register_secret(self._api_key)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, **overrides: Unpack[LLMClientOptions]
    ) -> Self:
        """Build a client from `Settings` (default: ``Settings.from_env()``).

        Resolved in order: explicit ``overrides``, then settings (``OPENROUTER_API_KEY``,
        ``AUDIT_LLM_BASE_URL``, ``GPT4O_MINI_MODEL``, ``AUDIT_LLM_ESCALATION_MODEL``,
        ``AUDIT_LLM_MAX_CONCURRENCY``, ``AUDIT_LLM_BUDGET_USD``), then built-in defaults.
        """
        settings = resolve_settings(settings)
        options: LLMClientOptions = {
            "api_key": settings.openrouter_api_key,
            "base_url": settings.llm_base_url,
            "default_model": settings.default_model,
            "escalation_model": settings.escalation_model,
            "max_concurrency": settings.llm_max_concurrency,
            "budget_usd": settings.llm_budget_usd,
        }
        options.update(overrides)
        return cls(**options)

    async def _aclose_resources(self) -> None:
        if self._api_key:
            forget_secret(self._api_key)
        await self._in_flight.cancel_all()
        if self._owns_resources:
            await self._http.aclose()

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
        return dict(self._books.prices)

    def price_of(self, model: str) -> ModelPrice | None:
        return self._books.prices.get(model)

    async def refresh_pricing(self) -> int:
        """Merge the endpoint's ``/models`` prices into the table; returns how many loaded.

        Prices given to the constructor still win over the endpoint's.
        """
        self._check_open()
        redact = Redactor(self._api_key)

        async def fetch(attempt: int) -> bytes:
            try:
                async with asyncio.timeout(self.timeout_s):
                    resp = await self._http.get(f"{self.base_url}/models", headers=self._headers)
            except TimeoutError:
                raise LLMTimeoutError(
                    "GET /models: no answer in time", model="*", transient=True
                ) from None
            except httpx.HTTPError as exc:
                raise transport_error(exc, model="*", what="GET /models") from None
            if resp.status_code != 200:
                raise status_error(
                    resp.status_code, None, resp.headers, model="*", redact=redact, request_id=None
                )
            return resp.content

        content = await self._policy.call(
            fetch, client="llm", classify=retry_verdict, metrics=self._metrics
        )
        try:
            body = json.loads(content)
        except ValueError:
            raise LLMResponseError("GET /models returned invalid JSON", model="*") from None
        if not isinstance(body, Mapping):
            raise LLMResponseError("GET /models returned no object", model="*")
        loaded = prices_from_models_listing(body)
        self._books.prices = {**BUILTIN_PRICES, **loaded, **self._user_prices}
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

    def _prepare(
        self,
        prompt: Prompt,
        *,
        model: str | None,
        tier: Tier,
        agent_name: str,
        temperature: float | None,
        max_tokens: int | None,
        response_format: Mapping[str, Any] | None,
        stream: bool,
        extra: Mapping[str, Any],
        sink: Sink | None = None,
    ) -> Request:
        """The request value object for one call; refuses a closed client or a missing key
        before anything is built or sent."""
        self._check_open()
        if not self._api_key:
            raise ConfigError(
                "no LLM API key: set OPENROUTER_API_KEY or pass api_key= to AsyncLLMClient"
            )
        model_name = self._resolve_model(model, tier)
        messages = _to_messages(prompt)
        if max_tokens is not None and max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {max_tokens}")
        if "stream" in extra:
            raise ConfigError("pass stream=True as the keyword of complete(), not in extra")
        bound = max_tokens
        if self.costs.budget_usd is not None and bound is None:
            bound = self._books.reserve_tokens  # the endpoint is told what the budget assumes
        body: dict[str, Any] = {"model": model_name, "messages": messages}
        if temperature is not None:
            body["temperature"] = temperature
        if bound is not None:
            body["max_tokens"] = bound
        if response_format is not None:
            body["response_format"] = response_format
        if extra:
            body.update(extra)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        try:
            payload = encode_compact(body)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"request body is not JSON-serialisable: {exc}") from None
        return Request(
            body=body,
            payload=payload,
            model=model_name,
            agent=agent_name,
            n_messages=len(messages),
            max_tokens=bound,
            stream=stream,
            sink=sink,
        )

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
        stream: bool = False,
        **extra: Any,
    ) -> LLMResponse:
        """Send one chat completion and return its text, usage and exact cost.

        ``prompt`` is a string (one user message) or a list of chat messages. ``extra``
        keys are passed through in the request body (``tools``, ``seed``, ``provider``...).
        ``stream=True`` reads the answer as server-sent events (usage from the last
        chunk) under the same deadlines, retries and accounting, and returns it whole.
        Raises the `LLMError` subclass that matches the failure; see `audit_core.errors`.
        """
        req = self._prepare(
            prompt,
            model=model,
            tier=tier,
            agent_name=agent_name,
            temperature=temperature,
            max_tokens=max_tokens,
            response_format=response_format,
            stream=stream,
            extra=extra,
        )
        if self._cache is not None and (not temperature or self.cache_nonzero_temperature):
            return await self._complete_cached(req)
        return await self._send(req)

    def stream(
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
    ) -> LLMStream:
        """Stream one chat completion: iterate the result for text deltas as they arrive,
        then read its ``response`` (usage and cost from the final chunk).

        Same budget, deadlines, accounting and typed errors as `complete`; an attempt is
        retried only while it has delivered no text. Never served from the cache.
        """
        sink = DeltaSink()
        req = self._prepare(
            prompt,
            model=model,
            tier=tier,
            agent_name=agent_name,
            temperature=temperature,
            max_tokens=max_tokens,
            response_format=response_format,
            stream=True,
            extra=extra,
            sink=sink,
        )
        return LLMStream(lambda: self._send(req), sink)

    async def _send(self, req: Request) -> LLMResponse:
        started = time.perf_counter()
        # The call's deadline: every attempt ends by it, and the policy sleeps past it never.
        deadline = asyncio.get_running_loop().time() + self.total_timeout_s
        try:
            billed: Billed = await self._policy.call(
                lambda number: self._attempt(req, number, deadline),
                client="llm",
                classify=retry_verdict,
                metrics=self._metrics,
            )
        except LLMError as exc:
            await self._failed(req, exc, started)
            raise
        latency = time.perf_counter() - started
        result = self._response(billed, req, latency)
        if self.trail is not None:
            await self.trail.record(
                req.agent,
                "llm.complete",
                input_data={"prompt": fingerprint(req.payload)},
                llm_model=result.model,
                llm_tokens_used=result.usage.total_tokens,
                llm_cost_dollars=result.cost_usd,
                execution_time_ms=latency * 1000,
                output_summary=f"{len(result.text)} chars, finish={result.finish_reason}",
            )
        return result

    async def _failed(self, req: Request, exc: LLMError, started: float) -> None:
        self._metrics.llm_requests.labels(req.model, req.agent, type(exc).__name__).inc()
        _log.warning(
            "audit_core.llm.failed",
            model=req.model,
            agent=req.agent,
            error_type=type(exc).__name__,
            status_code=exc.status_code,
            attempts=exc.attempts,
            request_id=exc.request_id,
            retry_after_s=exc.retry_after_s,
            prompt=fingerprint(req.payload),
        )
        if self.trail is not None:
            await self.trail.record(
                req.agent,
                "llm.complete",
                input_data={"prompt": fingerprint(req.payload)},
                llm_model=req.model,
                execution_time_ms=(time.perf_counter() - started) * 1000,
                error=f"{type(exc).__name__}: {exc}",
            )

    def _response(self, billed: Billed, req: Request, latency: float) -> LLMResponse:
        body, usage = billed.body, billed.usage
        requests, _in, _out, _cost, seconds = self._books.meters(req.model, req.agent)
        requests.inc()
        seconds.observe(latency)
        choice = body["choices"][0]
        text = choice["message"].get("content")
        return LLMResponse(
            text=text if isinstance(text, str) else "",
            model=str(body.get("model") or req.model),
            usage=usage,
            cost_usd=billed.cost,
            cost_source=billed.source,
            latency_s=latency,
            attempts=billed.attempt,
            request_id=billed.request_id,
            finish_reason=choice.get("finish_reason"),
            raw=body,
        )

    async def _complete_cached(self, req: Request) -> LLMResponse:
        """Serve from the cache, or join an identical request in flight, or send it."""
        assert self._cache is not None
        key = cache_key(req.body)
        hit = await self._cache.get(key)
        if hit is not None:
            return self._replay(hit, req.agent)
        result, owner = await self._in_flight.join(key, lambda: self._send_and_store(req, key))
        return result if owner else self._replay(_cache_entry(result), req.agent)

    async def _send_and_store(self, req: Request, key: str) -> LLMResponse:
        assert self._cache is not None
        result = await self._send(req)
        await self._cache.set(key, _cache_entry(result))
        return result

    def _replay(self, entry: Mapping[str, Any], agent_name: str) -> LLMResponse:
        """A cached answer: free, marked cached, and counted as saved in the ledger."""
        usage = Usage(**entry["usage"])
        saved = Decimal(entry["cost_usd"])
        self.costs.record_saving(
            model=entry["model"],
            cost=saved,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        )
        self._metrics.llm_cache_hits.inc()
        return LLMResponse(
            text=entry["text"],
            model=entry["model"],
            usage=usage,
            cost_usd=Decimal(0),
            cost_source="cache",
            latency_s=0.0,
            attempts=0,
            request_id=entry.get("request_id"),
            finish_reason=entry.get("finish_reason"),
            cached=True,
        )

    # one attempt -------------------------------------------------------------------

    async def _attempt(self, req: Request, attempt: int, deadline: float) -> Billed:
        """One attempt under its own reservation, concurrency slot and deadline."""
        reservation = self._books.reserve(req)
        try:
            ticket = self.limiter.try_acquire()
            if ticket is None:
                ticket = await self._wait_for_slot(req, attempt, deadline)
            outcome: Outcome = "other"
            retry_after: float | None = None
            self._metrics.llm_in_flight.inc()
            try:
                when = min(asyncio.get_running_loop().time() + self.timeout_s, deadline)
                async with asyncio.timeout_at(when):
                    billed = await self._exchange(req, reservation, attempt)
                outcome = "ok"
                return billed
            except TimeoutError:
                error = self._timeout(req, attempt, total=when == deadline)
                raise _final_if_delivered(req, error) from None
            except LLMError as exc:
                if exc.status_code in _OVERLOAD_STATUS:
                    outcome, retry_after = "overload", exc.retry_after_s
                _final_if_delivered(req, exc)
                raise
            finally:
                self._metrics.llm_in_flight.dec()
                self.limiter.release(ticket, outcome, retry_after)
        finally:
            self.costs.release(reservation)  # a no-op once the attempt was charged

    async def _wait_for_slot(self, req: Request, attempt: int, deadline: float) -> int:
        try:
            async with asyncio.timeout_at(deadline):
                return await self.limiter.acquire()
        except TimeoutError:
            raise self._timeout(req, attempt, total=True) from None

    def _timeout(self, req: Request, attempt: int, *, total: bool) -> LLMTimeoutError:
        if total:  # the call's deadline: not retried
            return LLMTimeoutError(
                f"LLM call on {req.model!r} ran past its total deadline "
                f"({self.total_timeout_s:g} s, {attempt} attempts)",
                model=req.model,
                attempts=attempt,
                transient=False,
            )
        return LLMTimeoutError(
            f"no complete answer from the LLM endpoint within {self.timeout_s:g} s",
            model=req.model,
            transient=True,
        )

    async def _exchange(
        self, req: Request, reservation: Reservation | None, attempt: int
    ) -> Billed:
        if req.stream:
            return await self._exchange_stream(req, reservation, attempt)
        try:
            resp = await self._wire.post(req.payload)
        except httpx.HTTPError as exc:
            raise transport_error(exc, model=req.model, what="LLM endpoint") from None
        try:
            await self._read_body(req, reservation, resp)
        finally:
            await resp.aclose()
        request_id = resp.headers.get("x-request-id")
        if resp.status_code != 200:
            raise self._status_error(req, resp, request_id)
        try:
            body = decode_exact(resp.content)
        except ValueError:
            raise self._books.unverified(req, reservation, "invalid JSON", request_id) from None
        return self._books.settle(req, body, reservation, attempt, request_id)

    async def _read_body(
        self, req: Request, reservation: Reservation | None, resp: httpx.Response
    ) -> None:
        """Read the whole body. An answer (a 200) cut off or abandoned mid-body was
        begun, so the endpoint may bill it: it is charged its worst case."""
        try:
            await resp.aread()
        except httpx.HTTPError as exc:
            if resp.status_code == 200:
                self._books.charge_worst_case(req, reservation)
            raise transport_error(exc, model=req.model, what="LLM endpoint") from None
        except asyncio.CancelledError:
            if resp.status_code == 200:
                self._books.charge_worst_case(req, reservation)
            raise

    async def _exchange_stream(
        self, req: Request, reservation: Reservation | None, attempt: int
    ) -> Billed:
        try:
            resp = await self._wire.post(req.payload)
        except httpx.HTTPError as exc:
            raise transport_error(exc, model=req.model, what="LLM endpoint") from None
        try:
            request_id = resp.headers.get("x-request-id")
            if resp.status_code != 200:
                await resp.aread()
                raise self._status_error(req, resp, request_id)
            try:
                body = await assemble_stream(resp.aiter_lines(), req.sink)
            except (ValueError, LLMResponseError):
                raise self._books.unverified(
                    req, reservation, "an invalid stream", request_id
                ) from None
            except asyncio.CancelledError:
                # Abandoned mid-answer (a reader left, a deadline hit): the endpoint may
                # bill what it generated, which we will never see.
                self._books.charge_worst_case(req, reservation)
                raise
            except httpx.HTTPError as exc:  # cut off mid-answer: billed all the same
                self._books.charge_worst_case(req, reservation)
                raise transport_error(exc, model=req.model, what="LLM endpoint") from None
        finally:
            await resp.aclose()
        return self._books.settle(req, body, reservation, attempt, request_id)

    def _status_error(self, req: Request, resp: httpx.Response, request_id: str | None) -> LLMError:
        try:
            body: Any = json.loads(resp.content)
        except ValueError:
            body = None
        redact = Redactor(self._api_key, message_texts(req.body["messages"]))
        return status_error(
            resp.status_code,
            body,
            resp.headers,
            model=req.model,
            redact=redact,
            request_id=request_id,
        )

    # conveniences ------------------------------------------------------------------

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

        One result per item, in order, always: an item whose request failed has
        ``label=None`` and the typed `LLMError` in ``error``. Raises only for
        programming errors (`ConfigError`). See `audit_core.llm._classify` for the flow.
        """
        self._check_open()
        results = await classify_items(
            self.complete,
            items,
            labels,
            instructions=instructions,
            agent_name=agent_name,
            model=model or self.default_model,
            escalation_model=escalation_model or self.escalation_model,
            batch_size=batch_size,
            min_confidence=min_confidence,
        )
        for result in results:
            reason = result.escalation_reason
            if reason is not None:
                self._metrics.llm_escalations.labels(reason).inc()
                self.escalations[reason] = self.escalations.get(reason, 0) + 1
        return results

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
        across batches (fewer while the adaptive limit backs off a rate-limited endpoint).
        With ``return_exceptions=True`` a failed prompt's slot holds its `LLMError`; with
        ``False`` the first failure cancels the rest and is raised.
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
