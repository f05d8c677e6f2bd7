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
    from audit_core._seed import (
        batch_call_llm,
        call_llm,
        check_databricks_health,
        check_redis_health,
        get_last_audit_timestamp,
        load_mock_data_from_json,
        mark_audit_complete,
        query_gold_tables,
        restore_workflow_state,
        save_workflow_state,
    )
    from audit_core.db import (
        AuditTrail,
        Flag,
        FlagStore,
        TrailVerification,
        create_all_tables,
        ensure_schema,
    )
    from audit_core.llm import (
        AsyncLLMClient,
        Classification,
        CostLedger,
        LLMResponse,
        MemoryCache,
        ModelPrice,
        StateStoreCache,
        Usage,
        calculate_cost,
    )
    from audit_core.metrics import get_metrics
    from audit_core.retry import RetryPolicy
    from audit_core.state import AsyncStateStore, FlushReport, RunInfo, StoredState
    from audit_core.warehouse import DatabricksClient, QueryTimeoutError

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "Classification": "audit_core.llm",
    "MemoryCache": "audit_core.llm",
    "StateStoreCache": "audit_core.llm",
    "AuditTrail": "audit_core.db",
    "Flag": "audit_core.db",
    "FlagStore": "audit_core.db",
    "TrailVerification": "audit_core.db",
    "create_all_tables": "audit_core.db",
    "ensure_schema": "audit_core.db",
    "query_gold_tables": "audit_core._seed",
    "get_last_audit_timestamp": "audit_core._seed",
    "load_mock_data_from_json": "audit_core._seed",
    "check_databricks_health": "audit_core._seed",
    "DatabricksClient": "audit_core.warehouse",
    "QueryTimeoutError": "audit_core.warehouse",
    "AsyncStateStore": "audit_core.state",
    "FlushReport": "audit_core.state",
    "RunInfo": "audit_core.state",
    "StoredState": "audit_core.state",
    "check_redis_health": "audit_core._seed",
    "mark_audit_complete": "audit_core._seed",
    "restore_workflow_state": "audit_core._seed",
    "save_workflow_state": "audit_core._seed",
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
    "AsyncStateStore",
    "AuditCoreError",
    "AuditTrail",
    "Classification",
    "ConfigError",
    "CostLedger",
    "DatabricksClient",
    "DatabricksConnectionError",
    "Flag",
    "FlagStore",
    "FlushReport",
    "LLMAuthError",
    "LLMBudgetExceededError",
    "LLMError",
    "LLMInsufficientCreditsError",
    "LLMRateLimitError",
    "LLMResponse",
    "LLMResponseError",
    "LLMTimeoutError",
    "MemoryCache",
    "ModelPrice",
    "QueryError",
    "QueryTimeoutError",
    "RetryPolicy",
    "RunInfo",
    "Settings",
    "StateConflictError",
    "StateManagerError",
    "StateStoreCache",
    "StateStoreUnavailableError",
    "StoredState",
    "TrailVerification",
    "Usage",
    "WarehouseError",
    "batch_call_llm",
    "calculate_cost",
    "call_llm",
    "check_databricks_health",
    "check_redis_health",
    "configure_logging",
    "create_all_tables",
    "ensure_schema",
    "get_last_audit_timestamp",
    "get_logger",
    "get_metrics",
    "load_mock_data_from_json",
    "mark_audit_complete",
    "query_gold_tables",
    "restore_workflow_state",
    "save_workflow_state",
]
