"""Seed-style async functions: thin wrappers over clients built from ``Settings.from_env()``.

They exist for code written against the original function-style design. Each call builds
and closes its own client, which is simple and safe but pays a connection set-up per
call: code that makes many calls should hold a client (``async with AsyncLLMClient...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from audit_core.errors import LLMError
from audit_core.llm._client import AsyncLLMClient, LLMResponse, Prompt
from audit_core.state._store import AsyncStateStore

__all__ = [
    "batch_call_llm",
    "call_llm",
    "check_redis_health",
    "mark_audit_complete",
    "restore_workflow_state",
    "save_workflow_state",
]


async def call_llm(prompt: Prompt, model: str | None = None, agent_name: str = "unknown") -> str:
    """One completion's text, on a client from the environment's settings."""
    async with AsyncLLMClient.from_settings() as llm:
        return await llm.call(prompt, model=model, agent_name=agent_name)


async def batch_call_llm(
    prompts: Sequence[Prompt], model: str | None = None, agent_name: str = "unknown", **kwargs: Any
) -> list[LLMResponse | LLMError]:
    """`AsyncLLMClient.batch` on a client from the environment's settings."""
    async with AsyncLLMClient.from_settings() as llm:
        return await llm.batch(prompts, model=model, agent_name=agent_name, **kwargs)


async def save_workflow_state(run_id: str, state: Mapping[str, Any]) -> bool:
    """Save a run's state (seed signature: True once stored or buffered)."""
    async with AsyncStateStore.from_settings() as store:
        await store.save(run_id, state)
        return True


async def restore_workflow_state(run_id: str) -> dict[str, Any]:
    """A run's saved state, ``{}`` when there is none."""
    async with AsyncStateStore.from_settings() as store:
        return await store.restore(run_id)


async def mark_audit_complete(run_id: str, summary: Any) -> bool:
    """Mark a run completed, keeping its intermediate results (unlike the seed)."""
    async with AsyncStateStore.from_settings() as store:
        await store.mark_complete(run_id, summary)
        return True


async def check_redis_health() -> bool:
    """Whether the configured state store answers."""
    async with AsyncStateStore.from_settings() as store:
        return await store.health()
