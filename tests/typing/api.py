"""Exercises the public API under mypy --strict (never run, only type-checked)."""

from __future__ import annotations

from decimal import Decimal

from audit_core import (
    AsyncLLMClient,
    LLMError,
    LLMResponse,
    ModelPrice,
    Settings,
    calculate_cost,
)


async def llm_usage() -> None:
    settings: Settings = Settings.from_env({})
    async with AsyncLLMClient.from_settings(settings) as llm:
        r: LLMResponse = await llm.complete("hi", agent_name="a", tier="escalation")
        cost: Decimal = r.cost_usd
        text: str = await llm.call("hi")
        results: list[LLMResponse | LLMError] = await llm.batch(["a", "b"])
        total: Decimal = llm.costs.total_usd
        snapshot: dict[str, object] = llm.costs.snapshot()
        print(cost, text, results, total, snapshot)
    price = ModelPrice(Decimal("1"), Decimal("2"))
    c: Decimal = calculate_cost("x", 1, 2, pricing={"x": price})
    print(c)


async def state_usage() -> None:
    from audit_core import AsyncStateStore, StoredState

    async with AsyncStateStore.from_url("memory://typing") as store:
        version: int = await store.save("run-1", {"a": 1})
        state: dict[str, object] = await store.restore("run-1")
        loaded: StoredState = await store.load("run-1")
        async with store.lock("run-1", ttl_s=30, wait_s=1) as held:
            token: int = held.token
            await store.update("run-1", {"b": 2}, expected_version=loaded.version)
            print(token, held.lost.is_set())
        report = await store.flush(raise_on_conflict=True)
        print(report.written, report.restored, report.conflicts)
        print(version, state)


async def warehouse_usage() -> None:
    from datetime import datetime

    import pandas as pd
    import pyarrow as pa

    from audit_core import AuditTrail, DatabricksClient, Flag, FlagStore, ensure_schema

    async with DatabricksClient.local() as wh:
        df: pd.DataFrame = await wh.query("SELECT 1 AS x WHERE 1 = :one", {"one": 1})
        table: pa.Table = await wh.query_arrow("SELECT 1")
        ts: datetime = await wh.get_last_audit_timestamp()
        ok: bool = await wh.health()
        n: int = await ensure_schema(wh)
        trail = AuditTrail(wh, "run-1")
        seq: int = await trail.record("agent", "tool", llm_cost_dollars=Decimal("0.01"))
        flags: list[Flag] = await FlagStore(wh).pending(10)
        print(df, table, ts, ok, n, seq, flags, wh.backend)


async def classify_usage() -> None:
    from audit_core import Classification, MemoryCache

    async with AsyncLLMClient("k", cache=MemoryCache(100)) as llm:
        out: list[Classification] = await llm.classify(
            ["x"], ["a", "b"], instructions="i", agent_name="a", batch_size=5
        )
        print(out[0].label, out[0].cost_usd)


def rules_and_testing_usage() -> None:
    from pathlib import Path

    from audit_core import AuditCoreError, ClientClosedError, RetryPolicy
    from audit_core.rules import Rule, load_rules
    from audit_core.testing import FakeClock, capture_logs

    rules: list[Rule] = load_rules([Path("rules")])
    params: dict[str, object] = rules[0].bind({"round_threshold": 500}, since="2025-01-01")
    digest: str = rules[0].hash
    clock = FakeClock()
    policy = RetryPolicy(attempts=3, sleep=clock.sleep, clock=clock)
    with capture_logs() as events:
        pass
    closed: type[AuditCoreError] = ClientClosedError
    print(params, digest, policy, events, closed)


async def compat_usage() -> None:
    from audit_core.compat import call_llm, query_gold_tables

    text: str = await call_llm("hi")
    print(text, await query_gold_tables("SELECT 1"))
