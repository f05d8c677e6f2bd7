"""Seed-style async functions: thin wrappers over clients built from ``Settings.from_env()``.

``from audit_core.compat import call_llm`` (the same names are still importable from
``audit_core`` itself, with a `DeprecationWarning`). They exist for code written against
the original function-style design. Each call builds
and closes its own client, which is simple and safe but pays a connection set-up per
call: code that makes many calls should hold a client (``async with AsyncLLMClient...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from audit_core import _DEPRECATED
from audit_core.errors import ConfigError, LLMError
from audit_core.llm import AsyncLLMClient, LLMResponse
from audit_core.state import AsyncStateStore

if TYPE_CHECKING:
    import pandas as pd

Prompt = str | Sequence[Mapping[str, Any]]  # text, or OpenAI-style messages

# The seed-era names: the same set the top-level package forwards here with a warning.
__all__ = sorted(_DEPRECATED)


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


def _warehouse() -> Any:
    from audit_core.warehouse import DatabricksClient

    return DatabricksClient.from_settings()


async def query_gold_tables(sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Run Databricks-dialect SQL on the configured warehouse; a DataFrame.

    Unlike the seed, an unknown table or bad SQL raises `QueryError`; it never returns
    an empty DataFrame to hide the problem.
    """
    async with _warehouse() as wh:
        df: pd.DataFrame = await wh.query(sql, params)
        return df


async def get_last_audit_timestamp() -> datetime:
    """When the last completed audit finished (aware UTC); 2025-01-01 when none."""
    async with _warehouse() as wh:
        ts: datetime = await wh.get_last_audit_timestamp()
        return ts


async def load_mock_data_from_json(table: str) -> pd.DataFrame:
    """A whole local fixture table, by table name (``gold.emails``) or file stem
    (``sample_emails``). Local warehouse only."""
    from audit_core.fixtures import load_manifest

    async with _warehouse() as wh:
        if wh.backend != "local":
            raise ConfigError("load_mock_data_from_json only works on the local warehouse")
        specs = load_manifest(wh.fixtures_dir)
        by_file = {spec.file: name for name, spec in specs.items()}
        name = by_file.get(table.removesuffix(".json"), table)
        if name not in specs:
            known = ", ".join(sorted(specs))
            raise ConfigError(f"no fixture table {table!r}; known: {known}")
        quoted = ".".join("`" + part.replace("`", "``") + "`" for part in name.split("."))
        df: pd.DataFrame = await wh.query(f"SELECT * FROM {quoted}")
        return df


async def check_databricks_health() -> bool:
    """Whether the configured warehouse answers ``SELECT 1``."""
    async with _warehouse() as wh:
        ok: bool = await wh.health()
        return ok
