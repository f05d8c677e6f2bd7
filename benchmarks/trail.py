"""Audit trail throughput: records per second batched, with and without the key.

``trail(records, repeats)`` returns a `Section`: register it as
``"trail": lambda: trail.trail()`` (quick: ``trail.trail(records=50, repeats=1)``).
Each batched run writes its rows 200 per INSERT plus one head row per flush, through
the local (DuckDB) backend, as the demo does; the hash-only figures show how much of
that is the chain itself.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from benchmarks._common import Section

KEY = "benchmark key: 32 bytes or more...."


async def _records_per_second(records: int, batch_size: int, key: str | None) -> float:
    from audit_core import DatabricksClient
    from audit_core.db import AuditTrail, ensure_schema

    async with DatabricksClient.local(load_fixtures=False, registry=CollectorRegistry()) as wh:
        await ensure_schema(wh)
        trail = AuditTrail(wh, f"bench-{batch_size}-{bool(key)}", key=key, batch_size=batch_size)
        t0 = time.perf_counter()
        for i in range(records):
            await trail.record("bench", "tool", output_summary=f"step {i}", execution_time_ms=3)
        await trail.complete()
        elapsed = time.perf_counter() - t0
        result = await trail.verify()
        assert result.ok, result.problem
        return records / elapsed


async def _verified_per_second(records: int, key: str | None) -> float:
    from audit_core import DatabricksClient
    from audit_core.db import AuditTrail, ensure_schema, verify_run

    async with DatabricksClient.local(load_fixtures=False, registry=CollectorRegistry()) as wh:
        await ensure_schema(wh)
        async with AuditTrail(wh, "bench-verify", key=key, batch_size=200) as trail:
            for i in range(records):
                await trail.record("bench", "tool", output_summary=f"step {i}")
            await trail.complete()
        t0 = time.perf_counter()
        result = await verify_run(wh, "bench-verify", key=key)
        elapsed = time.perf_counter() - t0
        assert result.ok, result.problem
        return records / elapsed


def _hashes_per_second(records: int, key: bytes | None) -> float:
    from audit_core.db._chain import GENESIS, KEYED, entry_hash

    row = {
        "audit_run_id": "bench",
        "agent_name": "bench",
        "tool_called": "tool",
        "timestamp": datetime(2025, 1, 1, tzinfo=UTC),
        "output_summary": "step",
        "execution_time_ms": 3,
        "hash_algorithm": KEYED if key else "sha256",
    }
    prev = GENESIS
    t0 = time.perf_counter()
    for i in range(records):
        row["log_sequence_number"] = i + 1
        prev = entry_hash(row, prev, key)
    return records / (time.perf_counter() - t0)


def trail(records: int = 2000, repeats: int = 3) -> Section:
    """Trail records per second batched, with and without the key; verify and hash rates."""
    section = Section(
        f"Audit trail: records per second through the local backend ({records} records)"
    )

    asyncio.run(_records_per_second(200, 200, None))  # warm up: imports, first transpiles
    unkeyed_runs: list[float] = []
    keyed_runs: list[float] = []
    for _ in range(repeats):  # interleaved, so a noisy moment hits both alike
        unkeyed_runs.append(asyncio.run(_records_per_second(records, 200, None)))
        keyed_runs.append(asyncio.run(_records_per_second(records, 200, KEY)))
    unkeyed = section.add("batched (200 per INSERT), SHA-256", unkeyed_runs, "records/s")
    keyed = section.add("batched (200 per INSERT), HMAC-SHA256 key", keyed_runs, "records/s")
    single = section.add(
        "one INSERT per record, SHA-256",
        [asyncio.run(_records_per_second(records, 1, None)) for _ in range(repeats)],
        "records/s",
        "each flush also appends a head row",
    )
    section.add(
        "verify, SHA-256",
        [asyncio.run(_verified_per_second(records, None)) for _ in range(repeats)],
        "rows/s",
    )
    section.add(
        "verify, HMAC-SHA256 key",
        [asyncio.run(_verified_per_second(records, KEY)) for _ in range(repeats)],
        "rows/s",
    )
    section.add(
        "entry hash only, SHA-256",
        [_hashes_per_second(records * 10, None) for _ in range(repeats)],
        "hashes/s",
    )
    section.add(
        "entry hash only, HMAC-SHA256",
        [_hashes_per_second(records * 10, KEY.encode()) for _ in range(repeats)],
        "hashes/s",
    )
    section.ratio("batched keyed / unkeyed", keyed.median / unkeyed.median, "close to 1")
    section.ratio("batched / one per record", unkeyed.median / single.median, "")
    return section
