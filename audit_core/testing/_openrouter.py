"""Test helpers for code that uses audit-core: a loopback OpenRouter and respx helpers.

```python
from audit_core.testing import FakeOpenRouter

async with FakeOpenRouter(latency_ms=20, fault_rate=0.1) as server:
    async with AsyncLLMClient("test-key", base_url=server.url) as llm:
        ...
    server.stats.max_in_flight
```

The server speaks OpenRouter's documented shapes: ``POST /chat/completions`` (``id``,
``created``, ``provider``, usage with token details, ``cost`` when ``report_cost`` and
``cost_details``; ``max_tokens`` obeyed with ``finish_reason: "length"``; ``stream: true``
answered as SSE with a keep-alive comment, text deltas and usage in the last chunk),
``GET /models`` (per-token USD prices, cache read and write prices) and ``GET /stats``;
it listens on 127.0.0.1 only. ``rate_limit_rps`` answers requests above that rate (a
token bucket of ``rate_limit_burst``) with 429 and ``Retry-After``/``retry-after-ms``.

Faults are random (``fault_rate``, drawn from 429 with Retry-After, 502 and 503) or
scripted with `FakeOpenRouter.script`, one per coming request:

====================  ====================================================================
status faults         ``"400"``... ``"503"``: that status with an error object
``reset``             the connection is cut before any answer
``invalid_json``      a 200 whose body is not JSON
``error_200``         a 200 with a top-level error object (code 502)
``choice_error``      a 200 whose choice carries an error (code 503), no usage
``billed_error``      a 200 whose choice carries an error (code 502) *and* usage with cost
``server_error``      OpenRouter's mid-generation error: ``code: "server_error"``,
                      ``finish_reason: "error"``, with usage (in a stream: after some text)
``no_choices``        a 200 with an empty choices list
``content_filter``    ``finish_reason: "content_filter"``, no text, billed usage
``moderation``        403 with moderation metadata (``reasons``, ``flagged_input``)
``retry_after_long``  429 with ``Retry-After: 90``
``echo_key``          401 whose message echoes the request's API key
``echo_prompt``       400 whose message echoes the request's last message
``no_usage``          a normal answer without ``usage``
``negative_cost``     usage with ``cost: -1000``
``nan_cost``          usage with ``cost: NaN``
``string_tokens``     usage with ``prompt_tokens: "lots"``
``usage_list``        ``usage: [1, 2]``
``byok``              BYOK: ``cost: 0``, ``is_byok``, ``cost_details.upstream_inference_cost``
``cache_write``       usage with ``cache_write_tokens`` (half the prompt)
``ignore_max_tokens`` an answer of ``overlong_tokens`` completion tokens, whatever asked
``trickle``           headers at once, then one byte every 0.4 s for ``trickle_s``
``stream_stall``      a stream that sends its first delta, then nothing for ``trickle_s``
====================  ====================================================================
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web

__all__ = ["FakeOpenRouter", "ServerStats", "chat_completion_body", "mock_chat_completion"]

Fault = Literal[
    "429",
    "500",
    "502",
    "503",
    "400",
    "401",
    "402",
    "403",
    "404",
    "408",
    "reset",
    "invalid_json",
    "error_200",
    "choice_error",
    "billed_error",
    "server_error",
    "no_choices",
    "content_filter",
    "moderation",
    "retry_after_long",
    "echo_key",
    "echo_prompt",
    "no_usage",
    "negative_cost",
    "nan_cost",
    "string_tokens",
    "usage_list",
    "byok",
    "cache_write",
    "ignore_max_tokens",
    "trickle",
    "stream_stall",
]
Responder = Callable[[Mapping[str, Any]], str]

_TRANSIENT_FAULTS: tuple[Fault, ...] = ("429", "502", "503")
# Faults that change a normal answer rather than replace it.
_ANSWER_FAULTS = frozenset(
    {
        "billed_error",
        "server_error",
        "content_filter",
        "no_usage",
        "negative_cost",
        "nan_cost",
        "string_tokens",
        "usage_list",
        "byok",
        "cache_write",
        "ignore_max_tokens",
        "stream_stall",
    }
)
# (prompt, completion, cache read, cache write) USD per token, as OpenRouter lists them.
_DEFAULT_PRICES: dict[str, tuple[str, ...]] = {
    "openai/gpt-4o-mini": ("0.00000015", "0.0000006", "0.000000075"),
    "anthropic/claude-3.5-haiku": ("0.0000008", "0.000004", "0.00000008", "0.000001"),
    "anthropic/claude-haiku-4.5": ("0.000001", "0.000005", "0.0000001", "0.00000125"),
    "openai/gpt-4-turbo": ("0.00001", "0.00003"),
}
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def _count_tokens(text: str) -> int:
    # A deterministic stand-in for a tokenizer: about four characters per token.
    return max(1, (len(text) + 3) // 4)


def chat_completion_body(
    text: str,
    *,
    model: str = "openai/gpt-4o-mini",
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    cost: str | None = None,
    finish_reason: str = "stop",
    request_id: str = "gen-test",
) -> dict[str, Any]:
    """An OpenRouter chat-completion response body (the openai SDK's `ChatCompletion`)."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    if cost is not None:
        usage["cost"] = float(cost)
        usage["is_byok"] = False
        usage["cost_details"] = {"upstream_inference_cost": None}
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "provider": "OpenAI",
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "logprobs": None,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "finish_reason": finish_reason,
                "native_finish_reason": finish_reason,
            }
        ],
        "usage": usage,
    }


def mock_chat_completion(router: Any, base_url: str, *responses: Any) -> Any:
    """Route ``POST {base_url}/chat/completions`` on a respx router to ``responses`` in order.

    Each response is an ``httpx.Response``, an exception, or a body dict (sent as 200).
    """
    import httpx

    side_effect = [httpx.Response(200, json=r) if isinstance(r, dict) else r for r in responses]
    return router.post(f"{base_url.rstrip('/')}/chat/completions").mock(side_effect=side_effect)


@dataclass(kw_only=True)
class ServerStats:
    """What the fake server saw."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    models: Counter[str] = field(default_factory=Counter)
    billed_usd: Decimal = Decimal(0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "statuses": dict(self.statuses),
            "faults": dict(self.faults),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "models": dict(self.models),
            "billed_usd": str(self.billed_usd),
        }


class _Bucket:
    """A token bucket: ``rate`` per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, max(burst, 1.0)
        self.tokens, self.at = self.burst, time.monotonic()

    def take(self) -> float:
        """0.0 when a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass(slots=True, kw_only=True)
class _Answer:
    """One normal answer, before a fault directive bends it."""

    body: dict[str, Any]
    model: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    request_id: str


class FakeOpenRouter:
    """A loopback OpenAI/OpenRouter-compatible server for tests and benchmarks."""

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        fault_rate: float = 0.0,
        retry_after_s: float = 0.0,
        report_cost: bool = True,
        responder: Responder | None = None,
        prices: Mapping[str, tuple[str, ...]] | None = None,
        seed: int = 0,
        port: int = 0,
        rate_limit_rps: float | None = None,
        rate_limit_burst: float | None = None,
        overlong_tokens: int = 50_000,
        trickle_s: float = 120.0,
    ) -> None:
        self.latency_s = latency_ms / 1000.0
        self.fault_rate = fault_rate
        self.retry_after_s = retry_after_s
        self.report_cost = report_cost
        self.responder = responder or (lambda body: "ok")
        self.prices = dict(prices or _DEFAULT_PRICES)
        self.overlong_tokens = overlong_tokens
        self.trickle_s = trickle_s
        self.stats = ServerStats()
        self.requests_log: list[dict[str, Any]] = []
        self.keep_requests = False
        self._bucket = (
            _Bucket(rate_limit_rps, rate_limit_burst or rate_limit_rps / 10)
            if rate_limit_rps
            else None
        )
        self._script: list[Fault] = []
        self._rng = random.Random(seed)
        self._port = port
        self._runner: web.AppRunner | None = None
        self._changed: asyncio.Condition | None = None
        self.url = ""

    def script(self, faults: Sequence[Fault]) -> None:
        """Answer the next requests with these faults, in order, then normally."""
        self._script.extend(faults)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/v1/chat/completions", self._chat)
        app.router.add_get("/api/v1/models", self._models)
        app.router.add_get("/api/v1/stats", self._stats)
        # handler_cancellation: a request the client abandons stops here too, as on a
        # real server, so tests can see cancellation reach the wire.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{port}/api/v1"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_in_flight(self, predicate: Callable[[int], bool]) -> None:
        """Return once ``predicate(in_flight)`` holds (wrap in a timeout in tests)."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self.stats.in_flight))

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    def _next_fault(self) -> Fault | None:
        if self._script:
            return self._script.pop(0)
        if self.fault_rate and self._rng.random() < self.fault_rate:
            return self._rng.choice(_TRANSIENT_FAULTS)
        return None

    def _price(self, model: str, prompt: int, completion: int, written: int = 0) -> Decimal | None:
        price = self.prices.get(model)
        if price is None:
            return None
        write = Decimal(price[3]) if len(price) > 3 else Decimal(price[0])
        return (
            Decimal(price[0]) * (prompt - written)
            + write * written
            + Decimal(price[1]) * completion
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        if self._changed is not None:
            await self._notify()
        try:
            raw = await request.read()
            if self._bucket is not None and (wait := self._bucket.take()):
                stats.statuses["429"] += 1
                return _error(429, "rate limit exceeded", _retry_after(wait))
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            fault = self._next_fault()
            if fault is not None:
                stats.faults[fault] += 1
            if fault is not None and fault not in _ANSWER_FAULTS:
                return await self._fault(fault, request, raw)
            try:
                body = json.loads(raw)
                answer = self._answer(body, fault)
            except (ValueError, KeyError, TypeError):
                stats.statuses["400"] += 1
                return _error(400, "bad request body")
            if self.keep_requests:
                self.requests_log.append(body)
            stats.statuses["200"] += 1
            if body.get("stream"):
                return await self._stream(request, answer, fault)
            return _json(answer.body)
        finally:
            stats.in_flight -= 1
            if self._changed is not None:
                await asyncio.shield(self._notify())

    def _answer(self, body: Mapping[str, Any], fault: Fault | None) -> _Answer:
        model, messages = body["model"], body["messages"]
        text = self.responder(body)
        prompt_tokens = sum(_count_tokens(str(m.get("content", ""))) for m in messages)
        completion_tokens = _count_tokens(text)
        finish = "stop"
        limit = body.get("max_tokens")
        if fault == "ignore_max_tokens":
            completion_tokens = self.overlong_tokens
            text = "x" * (4 * completion_tokens)
        elif isinstance(limit, int) and completion_tokens > limit:
            completion_tokens, text, finish = limit, text[: 4 * limit], "length"
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += completion_tokens
        self.stats.models[model] += 1
        request_id = f"gen-{self.stats.requests}"
        out = chat_completion_body(
            text,
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=finish,
            request_id=request_id,
        )
        written = prompt_tokens // 2 if fault == "cache_write" else 0
        cost = self._price(model, prompt_tokens, completion_tokens, written)
        if cost is not None:
            self.stats.billed_usd += cost
        usage: Any = out["usage"]
        usage["prompt_tokens_details"]["cache_write_tokens"] = written
        if self.report_cost and cost is not None:
            usage["cost"] = cost
            usage["is_byok"] = False
            usage["cost_details"] = {"upstream_inference_cost": None}
        _bend(out, fault, cost)
        return _Answer(
            body=out,
            model=model,
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=out["choices"][0]["finish_reason"] if out["choices"] else finish,
            request_id=request_id,
        )

    async def _stream(
        self, request: web.Request, answer: _Answer, fault: Fault | None
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers=_SSE_HEADERS)
        await resp.prepare(request)
        await resp.write(b": OPENROUTER PROCESSING\n\n")
        base = {
            "id": answer.request_id,
            "object": "chat.completion.chunk",
            "created": answer.body["created"],
            "model": answer.model,
            "provider": "OpenAI",
        }
        text = answer.text
        pieces = [text[i : i + 16] for i in range(0, len(text), 16)] or [""]
        if fault == "server_error":
            pieces = pieces[: max(1, len(pieces) // 2)]
        for i, piece in enumerate(pieces):
            delta: dict[str, Any] = {"content": piece}
            if i == 0:
                delta["role"] = "assistant"
            choice = {"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}
            await resp.write(_sse({**base, "choices": [choice]}))
            if fault == "stream_stall":
                await asyncio.sleep(self.trickle_s)
        usage = answer.body.get("usage")
        if fault == "server_error":
            error = answer.body["error"]
            last = {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}
            await resp.write(_sse({**base, "error": error, "choices": [last], "usage": usage}))
        else:
            last = {"index": 0, "delta": {}, "finish_reason": answer.finish_reason}
            await resp.write(_sse({**base, "choices": [last]}))
            if "usage" in answer.body:
                await resp.write(_sse({**base, "choices": [], "usage": usage}))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _fault(self, fault: Fault, request: web.Request, raw: bytes) -> web.StreamResponse:
        stats = self.stats
        if fault == "reset":
            if request.transport is not None:
                request.transport.abort()
            stats.statuses["reset"] += 1
            return web.Response(status=200)
        if fault == "trickle":
            return await self._trickle(request)
        stats.statuses["200" if fault in _BODY_FAULTS else fault] += 1
        if fault in _BODY_FAULTS:
            return _BODY_FAULTS[fault]()
        if fault == "moderation":
            stats.statuses["403"] += 1
            metadata = {"reasons": ["violence"], "flagged_input": "...", "provider_name": "x"}
            return _error(403, "Your input was flagged by moderation", metadata=metadata)
        if fault == "retry_after_long":
            return _error(429, "rate limited", {"Retry-After": "90"})
        if fault == "echo_key":
            key = request.headers.get("Authorization", "").removeprefix("Bearer ")
            return _error(401, f"Incorrect API key provided: {key}")
        if fault == "echo_prompt":
            try:
                last = json.loads(raw)["messages"][-1]["content"]
            except (ValueError, KeyError, TypeError, IndexError):
                last = ""
            return _error(400, f"This model's context is too short for: {last}")
        status = int(fault)
        headers = {"Retry-After": format(self.retry_after_s, "g")} if status == 429 else {}
        return _error(status, f"fake error {status}", headers)

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        deadline = time.monotonic() + self.trickle_s
        while time.monotonic() < deadline:  # JSON allows leading whitespace
            await resp.write(b" ")
            await asyncio.sleep(0.4)
        await resp.write(json.dumps(chat_completion_body("late")).encode())
        await resp.write_eof()
        return resp

    async def _models(self, request: web.Request) -> web.Response:
        data = []
        for model, price in self.prices.items():
            pricing = {"prompt": price[0], "completion": price[1]}
            if len(price) > 2:
                pricing["input_cache_read"] = price[2]
            if len(price) > 3:
                pricing["input_cache_write"] = price[3]
            data.append({"id": model, "name": model, "pricing": pricing})
        return web.json_response({"data": data})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_dict())


def _sse(chunk: Mapping[str, Any]) -> bytes:
    return f"data: {_dumps(chunk)}\n\n".encode()


def _dumps(body: Mapping[str, Any]) -> str:
    """JSON with Decimals as exact numbers (and NaN as the bare token a broken server sends)."""
    exact: list[str] = []

    def placeholder(value: Any) -> str:
        if not isinstance(value, Decimal):
            return str(value)
        exact.append("NaN" if value.is_nan() else format(value, "f"))
        return f"__decimal_{len(exact) - 1}__"

    text = json.dumps(body, default=placeholder)
    for i, number in enumerate(exact):
        text = text.replace(f'"__decimal_{i}__"', number)
    return text


def _json(body: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=_dumps(body).encode(), status=status, content_type="application/json")


def _error(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message}
    if metadata is not None:
        error["metadata"] = dict(metadata)
    resp = _json({"error": error}, status)
    resp.headers.update(headers or {})
    return resp


def _retry_after(wait: float) -> dict[str, str]:
    return {"Retry-After": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}


def _bend(out: dict[str, Any], fault: Fault | None, cost: Decimal | None) -> None:
    """Apply an answer fault to a normal answer ``out`` in place."""
    usage = out["usage"]
    choice = out["choices"][0]
    if fault == "billed_error":
        choice.update(finish_reason="error", error={"code": 502, "message": "provider fell over"})
    elif fault == "server_error":
        error = {"code": "server_error", "message": "Provider disconnected unexpectedly"}
        out["error"] = error
        choice.update(finish_reason="error")
    elif fault == "content_filter":
        choice.update(finish_reason="content_filter")
        choice["message"]["content"] = None
    elif fault == "no_usage":
        del out["usage"]
    elif fault == "negative_cost":
        usage["cost"] = -1000
    elif fault == "nan_cost":
        usage["cost"] = Decimal("NaN")
    elif fault == "string_tokens":
        usage["prompt_tokens"] = "lots"
    elif fault == "usage_list":
        out["usage"] = [1, 2]
    elif fault == "byok":
        usage.update(cost=0, is_byok=True, cost_details={"upstream_inference_cost": cost})


_BODY_FAULTS: dict[str, Callable[[], web.Response]] = {
    "invalid_json": lambda: web.Response(body=b'{"choices": [', content_type="application/json"),
    "error_200": lambda: _json({"error": {"code": 502, "message": "provider error"}}),
    "choice_error": lambda: _json(
        {
            "id": "gen-err",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ""},
                    "finish_reason": "error",
                    "error": {"code": 503, "message": "upstream overloaded"},
                }
            ],
        }
    ),
    "no_choices": lambda: _json({"id": "gen-empty", "choices": []}),
}


def _main() -> None:  # pragma: no cover - used by the benchmarks
    import argparse

    parser = argparse.ArgumentParser(description="Run a loopback fake OpenRouter.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--retry-after-s", type=float, default=0.0)
    parser.add_argument("--rate-limit-rps", type=float, default=None)
    parser.add_argument("--rate-limit-burst", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    async def run() -> None:
        server = FakeOpenRouter(
            latency_ms=args.latency_ms,
            fault_rate=args.fault_rate,
            port=args.port,
            retry_after_s=args.retry_after_s,
            seed=args.seed,
            rate_limit_rps=args.rate_limit_rps,
            rate_limit_burst=args.rate_limit_burst,
        )
        async with server:
            print(server.url, flush=True)
            await asyncio.Event().wait()

    asyncio.run(run())
