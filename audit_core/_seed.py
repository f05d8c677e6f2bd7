"""Seed-style async functions: thin wrappers over clients built from ``Settings.from_env()``.

They exist for code written against the original function-style design. Each call builds
and closes its own client, which is simple and safe but pays a connection set-up per
call: code that makes many calls should hold a client (``async with AsyncLLMClient...``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from audit_core.errors import LLMError
from audit_core.llm._client import AsyncLLMClient, LLMResponse, Prompt

__all__ = ["batch_call_llm", "call_llm"]


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
