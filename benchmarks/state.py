"""State store round trips against what a user would write with redis-py instead.

Registered by the runner as ``"state": lambda: state.state()`` (and a smoke size
``state.state(round_trips=20, repeats=1)``). Starts its own redis-server on loopback;
nothing from ``tests`` is imported.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry

from benchmarks._common import Section

SIZES = (1024, 100 * 1024)
TARGET = 1.3  # ours / (json.dumps + SET, GET + json.loads)


@contextmanager
def redis_server() -> Iterator[str | None]:
    """A throw-away redis-server on a free loopback port (None when not installed)."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="audit-bench-redis-")
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", workdir]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def document(size: int) -> dict[str, Any]:
    """A state of about ``size`` bytes of JSON: rows of text, a few numbers and flags."""
    rows = max(1, size // 100)
    return {
        "status": "in_progress",
        "step": 7,
        "rows": [{"id": i, "note": "x" * 60, "ok": i % 3 == 0} for i in range(rows)],
    }


async def _ours(url: str, doc: dict[str, Any], round_trips: int) -> float:
    from audit_core import AsyncStateStore

    async with AsyncStateStore.from_url(url, registry=CollectorRegistry()) as store:
        await store.save("bench", doc)
        await store.restore("bench")
        t0 = time.perf_counter()
        for _ in range(round_trips):
            await store.save("bench", doc)
            await store.restore("bench")
        return (time.perf_counter() - t0) / round_trips * 1e6


async def _raw(url: str, doc: dict[str, Any], round_trips: int, *, with_json: bool) -> float:
    import redis.asyncio as aioredis

    payload = json.dumps(doc).encode()
    client = aioredis.from_url(url)
    try:
        await client.set("raw", payload)
        t0 = time.perf_counter()
        for _ in range(round_trips):
            if with_json:
                await client.set("raw", json.dumps(doc), ex=86400)
                json.loads(await client.get("raw"))
            else:
                await client.set("raw", payload, ex=86400)
                await client.get("raw")
        return (time.perf_counter() - t0) / round_trips * 1e6
    finally:
        await client.aclose()


def state(round_trips: int = 2000, repeats: int = 5) -> Section:
    """save+restore vs raw redis-py, with and without JSON, at 1 KB and 100 KB."""
    section = Section(
        f"State store: save+restore round trip vs raw redis-py ({round_trips} round trips, "
        f"median of {repeats})"
    )
    with redis_server() as url:
        if url is None:
            section.notes.append("redis-server not installed: left out")
            return section
        for size in SIZES:
            doc = document(size)
            label = f"{size // 1024} KB"
            ours, raw, raw_json = [], [], []
            for _ in range(repeats):  # interleaved, so all three see the same machine
                ours.append(asyncio.run(_ours(url, doc, round_trips)))
                raw.append(asyncio.run(_raw(url, doc, round_trips, with_json=False)))
                raw_json.append(asyncio.run(_raw(url, doc, round_trips, with_json=True)))
            a = section.add(f"audit_core save+restore, {label}", ours, "us/round trip")
            b = section.add(f"raw SET+GET of the same bytes, {label}", raw, "us/round trip")
            c = section.add(
                f"raw json.dumps+SET, GET+json.loads, {label}", raw_json, "us/round trip"
            )
            section.ratio(f"ours / raw with JSON, {label}", a.median / c.median, f"<= {TARGET}")
            section.ratio(f"ours / raw same bytes, {label}", a.median / b.median, "")
    return section


if __name__ == "__main__":
    result = state()
    for fig in result.figures:
        print(f"{fig.name:55s} {fig.median:10.1f} {fig.unit}")
    for name, value, target in result.ratios:
        print(f"{name:55s} {value:10.2f} {target}")
