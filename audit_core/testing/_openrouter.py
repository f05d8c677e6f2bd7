"""Test helpers for code that uses audit-core: a loopback OpenRouter and respx helpers.

```python
from audit_core.testing import FakeOpenRouter

async with FakeOpenRouter(latency_ms=20, fault_rate=0.1) as server:
    async with AsyncLLMClient("test-key", base_url=server.url) as llm:
        ...
    server.stats.max_in_flight
```

The server speaks ``POST /chat/completions`` (usage with ``cost`` when ``report_cost``),
``GET /models`` (per-token USD prices) and ``GET /stats``; it listens on 127.0.0.1
only. Faults are random (``fault_rate``, drawn from 429 with Retry-After, 502 and 503)
or scripted with `FakeOpenRouter.script`, one per coming request.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web

__all__ = ["FakeOpenRouter", "ServerStats", "chat_completion_body", "mock_chat_completion"]

Fault = Literal[
    "429", "500", "502", "503", "400", "401", "402", "403", "404", "408",
    "reset", "invalid_json", "error_200", "choice_error", "no_choices",
]  # fmt: skip
Responder = Callable[[Mapping[str, Any]], str]

_TRANSIENT_FAULTS: tuple[Fault, ...] = ("429", "502", "503")
_DEFAULT_PRICES = {
    "openai/gpt-4o-mini": ("0.00000015", "0.0000006"),
    "anthropic/claude-3.5-haiku": ("0.0000008", "0.000004"),
    "anthropic/claude-haiku-4.5": ("0.000001", "0.000005"),
    "openai/gpt-4-turbo": ("0.00001", "0.00003"),
}


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
    """An OpenAI/OpenRouter chat-completion response body."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cost is not None:
        usage["cost"] = float(cost)
    return {
        "id": request_id,
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
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


@dataclass
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
        }


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
        prices: Mapping[str, tuple[str, str]] | None = None,
        seed: int = 0,
        port: int = 0,
    ) -> None:
        self.latency_s = latency_ms / 1000.0
        self.fault_rate = fault_rate
        self.retry_after_s = retry_after_s
        self.report_cost = report_cost
        self.responder = responder or (lambda body: "ok")
        self.prices = dict(prices or _DEFAULT_PRICES)
        self.stats = ServerStats()
        self.requests_log: list[dict[str, Any]] = []
        self.keep_requests = False
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

    def _price(self, model: str, prompt: int, completion: int) -> Decimal | None:
        price = self.prices.get(model)
        if price is None:
            return None
        return Decimal(price[0]) * prompt + Decimal(price[1]) * completion

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        if self._changed is not None:
            await self._notify()
        try:
            raw = await request.read()
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            fault = self._next_fault()
            if fault is not None:
                stats.faults[fault] += 1
                return self._fault(fault, request)
            try:
                body = json.loads(raw)
                model = body["model"]
                messages = body["messages"]
            except (ValueError, KeyError, TypeError):
                stats.statuses["400"] += 1
                return web.json_response(
                    {"error": {"code": 400, "message": "bad request body"}}, status=400
                )
            if self.keep_requests:
                self.requests_log.append(body)
            text = self.responder(body)
            prompt_tokens = sum(_count_tokens(str(m.get("content", ""))) for m in messages)
            completion_tokens = _count_tokens(text)
            stats.prompt_tokens += prompt_tokens
            stats.completion_tokens += completion_tokens
            stats.models[model] += 1
            cost = self._price(model, prompt_tokens, completion_tokens)
            out = chat_completion_body(
                text,
                model=model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                request_id=f"gen-{stats.requests}",
            )
            if self.report_cost and cost is not None:
                out["usage"]["cost"] = "__COST__"
            payload = json.dumps(out)
            if self.report_cost and cost is not None:
                # Exact decimal text, as a JSON number.
                payload = payload.replace('"__COST__"', format(cost, "f"))
            stats.statuses["200"] += 1
            return web.Response(body=payload.encode(), content_type="application/json")
        finally:
            stats.in_flight -= 1
            if self._changed is not None:
                await asyncio.shield(self._notify())

    def _fault(self, fault: Fault, request: web.Request) -> web.StreamResponse:
        if fault == "reset":
            if request.transport is not None:
                request.transport.abort()
            self.stats.statuses["reset"] += 1
            return web.Response(status=200)
        if fault == "invalid_json":
            self.stats.statuses["200"] += 1
            return web.Response(body=b'{"choices": [', content_type="application/json")
        if fault == "error_200":
            self.stats.statuses["200"] += 1
            return web.json_response({"error": {"code": 502, "message": "provider error"}})
        if fault == "choice_error":
            self.stats.statuses["200"] += 1
            return web.json_response(
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
            )
        if fault == "no_choices":
            self.stats.statuses["200"] += 1
            return web.json_response({"id": "gen-empty", "choices": []})
        status = int(fault)
        self.stats.statuses[fault] += 1
        headers = {}
        if status == 429:
            headers["Retry-After"] = format(self.retry_after_s, "g")
        return web.json_response(
            {"error": {"code": status, "message": f"fake error {status}"}},
            status=status,
            headers=headers,
        )

    async def _models(self, request: web.Request) -> web.Response:
        data = [
            {"id": model, "pricing": {"prompt": p, "completion": c}}
            for model, (p, c) in self.prices.items()
        ]
        return web.json_response({"data": data})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_dict())


def _main() -> None:  # pragma: no cover - used by the benchmarks
    import argparse

    parser = argparse.ArgumentParser(description="Run a loopback fake OpenRouter.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--retry-after-s", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    async def run() -> None:
        async with FakeOpenRouter(
            latency_ms=args.latency_ms, fault_rate=args.fault_rate, port=args.port,
            retry_after_s=args.retry_after_s, seed=args.seed,
        ) as server:  # fmt: skip
            print(server.url, flush=True)
            await asyncio.Event().wait()

    asyncio.run(run())
