"""LLM client overhead, batch wall time, and a retry storm, against a loopback server
in a separate process (so the CPU measured is the client's alone)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from audit_core import AsyncLLMClient
from audit_core.retry import RetryPolicy
from benchmarks._common import Section, server_process

MODEL = "openai/gpt-4o-mini"
Runner = Callable[[str, list[str], int], Awaitable[int]]


def _body(prompt: str) -> bytes:
    return json.dumps({"model": MODEL, "messages": [{"role": "user", "content": prompt}]}).encode()


async def run_ours(url: str, prompts: list[str], concurrency: int) -> int:
    async with AsyncLLMClient(
        "bench-key", base_url=url, max_concurrency=concurrency, registry=CollectorRegistry()
    ) as llm:
        results = await llm.batch(prompts)
    return sum(1 for r in results if not isinstance(r, Exception))


async def run_aiohttp(url: str, prompts: list[str], concurrency: int) -> int:
    import aiohttp

    sem = asyncio.Semaphore(concurrency)
    headers = {"Authorization": "Bearer bench-key", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one(prompt: str) -> bool:
            async with (
                sem,
                session.post(f"{url}/chat/completions", data=_body(prompt), headers=headers) as r,
            ):
                body = await r.json()
                return bool(body["choices"])

        return sum(await asyncio.gather(*(one(p) for p in prompts)))


async def _run_httpx(
    client: httpx.AsyncClient, url: str, prompts: list[str], concurrency: int
) -> int:
    sem = asyncio.Semaphore(concurrency)
    headers = {"Authorization": "Bearer bench-key", "Content-Type": "application/json"}
    async with client:

        async def one(prompt: str) -> bool:
            async with sem:
                r = await client.post(
                    f"{url}/chat/completions", content=_body(prompt), headers=headers
                )
                return bool(r.json()["choices"])

        return sum(await asyncio.gather(*(one(p) for p in prompts)))


async def run_httpx_aiohttp(url: str, prompts: list[str], concurrency: int) -> int:
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.AsyncClient(transport=AiohttpTransport(limits=limits))
    return await _run_httpx(client, url, prompts, concurrency)


async def run_httpx_native(url: str, prompts: list[str], concurrency: int) -> int:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return await _run_httpx(httpx.AsyncClient(limits=limits), url, prompts, concurrency)


async def run_openai(url: str, prompts: list[str], concurrency: int) -> int:
    from openai import AsyncOpenAI

    sem = asyncio.Semaphore(concurrency)
    client = AsyncOpenAI(api_key="bench-key", base_url=url, max_retries=0)
    async with client:

        async def one(prompt: str) -> bool:
            async with sem:
                r = await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": prompt}]
                )
                return bool(r.choices)

        return sum(await asyncio.gather(*(one(p) for p in prompts)))


async def run_litellm(url: str, prompts: list[str], concurrency: int) -> int:
    import litellm

    sem = asyncio.Semaphore(concurrency)

    async def one(prompt: str) -> bool:
        async with sem:
            r = await litellm.acompletion(
                model=MODEL,
                api_base=url,
                api_key="bench-key",
                messages=[{"role": "user", "content": prompt}],
                num_retries=0,
            )
            return bool(r.choices)

    return sum(await asyncio.gather(*(one(p) for p in prompts)))


CLIENTS: dict[str, Runner] = {
    "audit_core AsyncLLMClient.batch": run_ours,
    "raw aiohttp + semaphore (floor)": run_aiohttp,
    "raw httpx on httpx-aiohttp transport": run_httpx_aiohttp,
    "raw httpx, own transport": run_httpx_native,
    "openai AsyncOpenAI + semaphore": run_openai,
    "litellm acompletion + semaphore": run_litellm,
}


def _measure(runner: Runner, url: str, n: int, concurrency: int) -> tuple[float, float, int]:
    prompts = [f"classify transaction {i}" for i in range(n)]
    c0, w0 = time.process_time(), time.perf_counter()
    ok = asyncio.run(runner(url, prompts, concurrency))
    return time.process_time() - c0, time.perf_counter() - w0, ok


def overhead(calls: int = 2000, concurrency: int = 32, repeats: int = 3) -> Section:
    section = Section(
        f"LLM client overhead: CPU per call, {calls} calls, zero latency, concurrency {concurrency}"
    )
    per_call: dict[str, float] = {}
    with server_process() as url:
        _measure(run_ours, url, 50, 8)  # warm the server and imports
        for name, runner in CLIENTS.items():
            try:
                samples = []
                for _ in range(repeats):
                    cpu, _wall, ok = _measure(runner, url, calls, concurrency)
                    if ok != calls:
                        raise RuntimeError(f"{ok}/{calls} calls succeeded")
                    samples.append(cpu / calls * 1e6)
            except ImportError as exc:
                section.notes.append(f"{name}: not installed here ({exc.name}); left out")
                continue
            except Exception as exc:  # a comparison library that fails is reported, not fatal
                section.notes.append(f"{name}: failed ({type(exc).__name__}: {exc}); left out")
                continue
            per_call[name] = section.add(name, samples, "us CPU/call").median
    ours = per_call.get("audit_core AsyncLLMClient.batch")
    if ours:
        for other, target in (
            ("raw httpx on httpx-aiohttp transport", "<= 1.3"),
            ("raw aiohttp + semaphore (floor)", "<= 3"),
            ("openai AsyncOpenAI + semaphore", "<= 0.3"),
            ("raw httpx, own transport", ""),
            ("litellm acompletion + semaphore", ""),
        ):
            if other in per_call:
                section.ratio(f"ours / {other}", ours / per_call[other], target)
    return section


def batch_wall(
    prompts: int = 1000,
    latency_ms: float = 50,
    concurrency: int = 50,
    repeats: int = 3,
    sequential_sample: int = 100,
) -> Section:
    section = Section(
        f"Batch wall time: {prompts} prompts, {latency_ms:g} ms server latency, concurrency {concurrency}"
    )
    ideal = prompts * latency_ms / 1000 / concurrency
    with server_process("--latency-ms", str(latency_ms)) as url:
        for runner in (run_ours, run_aiohttp):  # warm imports and the server
            _measure(runner, url, concurrency, concurrency)
        ours, floor = [], []
        for _ in range(repeats):  # interleaved, so both see the same machine
            ours.append(_measure(run_ours, url, prompts, concurrency)[1])
            floor.append(_measure(run_aiohttp, url, prompts, concurrency)[1])
        fig = section.add("audit_core batch", ours, "s")
        raw = section.add("raw aiohttp + semaphore, same server (floor)", floor, "s")
        _, seq_wall, _ = _measure(run_ours, url, sequential_sample, 1)
    sequential = seq_wall * prompts / sequential_sample
    section.add("ideal (N x latency / concurrency)", [ideal], "s")
    section.add(
        f"original sequential design (measured on {sequential_sample}, scaled)", [sequential], "s"
    )
    section.ratio("ours / ideal", fig.median / ideal, "<= 1.15")
    section.ratio("raw aiohttp floor / ideal", raw.median / ideal, "")
    section.ratio("ours / raw aiohttp floor", fig.median / raw.median, "")
    section.ratio("sequential / ours", sequential / fig.median, "")
    return section


def retry_storm(
    prompts: int = 1000,
    latency_ms: float = 50,
    concurrency: int = 50,
    fault_rate: float = 0.2,
    retry_after_s: float = 0.1,
) -> Section:
    section = Section(
        f"Retry storm: {prompts} prompts, {latency_ms:g} ms latency, concurrency {concurrency}, "
        f"{fault_rate:.0%} transient faults (429 with Retry-After {retry_after_s:g}s, 502, 503)"
    )

    async def run(url: str) -> tuple[int, dict[str, Any]]:
        policy = RetryPolicy(attempts=8, timeout_s=120, wait_initial_s=0.05, wait_max_s=1.0)
        async with AsyncLLMClient(
            "bench-key",
            base_url=url,
            max_concurrency=concurrency,
            registry=CollectorRegistry(),
            retry_policy=policy,
            max_retries=7,
        ) as llm:
            results = await llm.batch([f"p{i}" for i in range(prompts)])
        async with httpx.AsyncClient() as c:
            stats = (await c.get(f"{url}/stats")).json()
        return sum(1 for r in results if not isinstance(r, Exception)), stats

    with server_process("--latency-ms", str(latency_ms)) as clean:
        w0 = time.perf_counter()
        asyncio.run(run(clean))
        clean_wall = time.perf_counter() - w0
    with server_process(
        "--latency-ms",
        str(latency_ms),
        "--fault-rate",
        str(fault_rate),
        "--retry-after-s",
        str(retry_after_s),
        "--seed",
        "3",
    ) as faulty:
        w0 = time.perf_counter()
        ok, stats = asyncio.run(run(faulty))
        storm_wall = time.perf_counter() - w0
    section.add("fault-free wall", [clean_wall], "s")
    section.add("with faults wall", [storm_wall], "s")
    section.add("completed", [ok / prompts * 100], "%", "target 100%")
    retries = stats["requests"] - prompts
    section.add(
        "retries sent", [retries], "requests", json.dumps(stats.get("statuses", {}), sort_keys=True)
    )
    section.ratio("storm wall / fault-free wall", storm_wall / clean_wall, "")
    return section
