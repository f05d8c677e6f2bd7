"""Goodput under a rate limit: a batch against a loopback server that allows R requests/s.

The server (its own process) answers requests above R/s, a one-second token bucket, with
429 and ``Retry-After``/``retry-after-ms``. Each client runs the same prompts against a
fresh server: audit_core with adaptive concurrency (the default), audit_core with a fixed
cap (``adaptive_concurrency=False``), and the openai SDK behind a semaphore of the same
size (its own retries honour Retry-After too). Target: within 1.15x of N/R, under 5% 429.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
from prometheus_client import CollectorRegistry

from audit_core import AsyncLLMClient
from benchmarks._common import Section, server_process

MODEL = "openai/gpt-4o-mini"
Runner = Callable[[str, list[str], int], Awaitable[int]]


async def _ours(url: str, prompts: list[str], concurrency: int, adaptive: bool) -> int:
    async with AsyncLLMClient(
        "bench-key",
        base_url=url,
        max_concurrency=concurrency,
        adaptive_concurrency=adaptive,
        registry=CollectorRegistry(),
    ) as llm:
        results = await llm.batch(prompts)
    return sum(1 for r in results if not isinstance(r, Exception))


async def run_adaptive(url: str, prompts: list[str], concurrency: int) -> int:
    return await _ours(url, prompts, concurrency, adaptive=True)


async def run_fixed(url: str, prompts: list[str], concurrency: int) -> int:
    return await _ours(url, prompts, concurrency, adaptive=False)


async def run_openai(url: str, prompts: list[str], concurrency: int) -> int:
    from openai import AsyncOpenAI, OpenAIError

    sem = asyncio.Semaphore(concurrency)
    async with AsyncOpenAI(api_key="bench-key", base_url=url) as client:

        async def one(prompt: str) -> bool:
            async with sem:
                try:
                    r = await client.chat.completions.create(
                        model=MODEL, messages=[{"role": "user", "content": prompt}]
                    )
                except OpenAIError:
                    return False
                return bool(r.choices)

        return sum(await asyncio.gather(*(one(p) for p in prompts)))


RUNNERS: dict[str, Runner] = {
    "audit_core batch, adaptive concurrency (default)": run_adaptive,
    "audit_core batch, fixed cap (adaptive_concurrency=False)": run_fixed,
    "openai AsyncOpenAI + semaphore (SDK retries)": run_openai,
}


def goodput(
    prompts: int = 1000, rps: float = 100, latency_ms: float = 300, concurrency: int = 64
) -> Section:
    ideal = prompts / rps
    section = Section(
        f"Goodput under a rate limit: {prompts} prompts, server allows {rps:g} req/s "
        f"(1 s bucket), {latency_ms:g} ms latency, concurrency cap {concurrency}; "
        f"ideal N/R = {ideal:g} s"
    )
    args = ("--latency-ms", str(latency_ms), "--rate-limit-rps", str(rps))
    for name, runner in RUNNERS.items():
        try:
            with server_process(*args, "--rate-limit-burst", str(rps)) as url:
                w0 = time.perf_counter()
                ok = asyncio.run(runner(url, [f"p{i}" for i in range(prompts)], concurrency))
                wall = time.perf_counter() - w0
                stats = httpx.get(f"{url}/stats").json()
        except ImportError as exc:
            section.notes.append(f"{name}: not installed here ({exc.name}); left out")
            continue
        rejected = stats["statuses"].get("429", 0)
        share = rejected / max(stats["requests"], 1)
        section.add(f"{name}: wall", [wall], "s", f"{ok}/{prompts} completed")
        section.add(
            f"{name}: answered 429", [share * 100], "%", f"{rejected} of {stats['requests']}"
        )
        if ok == prompts:
            section.ratio(f"{name}: wall / ideal (all completed)", wall / ideal, "<= 1.15")
        else:
            section.ratio(f"{name}: completed (gave up on the rest)", ok / prompts, "1.00")
        section.ratio(f"{name}: goodput / R", ok / wall / rps, "")
    return section
