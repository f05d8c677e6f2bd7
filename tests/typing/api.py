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
