"""audit-core: async infrastructure for a tool-first, LLM-light spend-audit system.

Importing the package is cheap: the clients and their heavy dependencies (pandas,
pyarrow, duckdb, sqlglot, fakeredis, databricks) load on first use of a name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from audit_core._settings import Settings
from audit_core.errors import (
    AuditCoreError,
    ConfigError,
    DatabricksConnectionError,
    LLMAuthError,
    LLMBudgetExceededError,
    LLMError,
    LLMInsufficientCreditsError,
    LLMRateLimitError,
    LLMResponseError,
    LLMTimeoutError,
    QueryError,
    StateConflictError,
    StateManagerError,
    StateStoreUnavailableError,
    WarehouseError,
)

if TYPE_CHECKING:
    from audit_core._logging import configure_logging, get_logger
    from audit_core._seed import batch_call_llm, call_llm
    from audit_core.llm import (
        AsyncLLMClient,
        CostLedger,
        LLMResponse,
        ModelPrice,
        Usage,
        calculate_cost,
    )
    from audit_core.metrics import get_metrics
    from audit_core.retry import RetryPolicy

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "AsyncLLMClient": "audit_core.llm",
    "CostLedger": "audit_core.llm",
    "LLMResponse": "audit_core.llm",
    "ModelPrice": "audit_core.llm",
    "RetryPolicy": "audit_core.retry",
    "Usage": "audit_core.llm",
    "batch_call_llm": "audit_core._seed",
    "calculate_cost": "audit_core.llm",
    "call_llm": "audit_core._seed",
    "configure_logging": "audit_core._logging",
    "get_logger": "audit_core._logging",
    "get_metrics": "audit_core.metrics",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'audit_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AsyncLLMClient",
    "AuditCoreError",
    "ConfigError",
    "CostLedger",
    "DatabricksConnectionError",
    "LLMAuthError",
    "LLMBudgetExceededError",
    "LLMError",
    "LLMInsufficientCreditsError",
    "LLMRateLimitError",
    "LLMResponse",
    "LLMResponseError",
    "LLMTimeoutError",
    "ModelPrice",
    "QueryError",
    "RetryPolicy",
    "Settings",
    "StateConflictError",
    "StateManagerError",
    "StateStoreUnavailableError",
    "Usage",
    "WarehouseError",
    "batch_call_llm",
    "calculate_cost",
    "call_llm",
    "configure_logging",
    "get_logger",
    "get_metrics",
]
