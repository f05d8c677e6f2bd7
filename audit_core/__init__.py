"""audit-core: async infrastructure for a tool-first, LLM-light spend-audit system.

Importing the package is cheap: the clients and their heavy dependencies (pandas,
pyarrow, duckdb, sqlglot, fakeredis, databricks) load on first use of a name.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from audit_core import errors as _errors
from audit_core._settings import Settings as Settings
from audit_core.errors import (
    AuditCoreError as AuditCoreError,
    AuditTrailError as AuditTrailError,
    ClientClosedError as ClientClosedError,
    ConfigError as ConfigError,
    DatabricksConnectionError as DatabricksConnectionError,
    InvalidFlagError as InvalidFlagError,
    LLMAuthError as LLMAuthError,
    LLMBudgetExceededError as LLMBudgetExceededError,
    LLMConnectionError as LLMConnectionError,
    LLMContentFilterError as LLMContentFilterError,
    LLMError as LLMError,
    LLMInsufficientCreditsError as LLMInsufficientCreditsError,
    LLMModerationError as LLMModerationError,
    LLMRateLimitError as LLMRateLimitError,
    LLMResponseError as LLMResponseError,
    LLMTimeoutError as LLMTimeoutError,
    QueryError as QueryError,
    QueryTimeoutError as QueryTimeoutError,
    ReadOnlyViolationError as ReadOnlyViolationError,
    StateConflictError as StateConflictError,
    StateEncodingError as StateEncodingError,
    StateLockLostError as StateLockLostError,
    StateManagerError as StateManagerError,
    StateStoreUnavailableError as StateStoreUnavailableError,
    TrailVerificationError as TrailVerificationError,
    UnsupportedQueryError as UnsupportedQueryError,
    WarehouseError as WarehouseError,
)

if TYPE_CHECKING:
    from audit_core._logging import configure_logging as configure_logging, get_logger as get_logger
    from audit_core.db import (
        AuditTrail as AuditTrail,
        Flag as Flag,
        FlagStore as FlagStore,
        TrailHead as TrailHead,
        TrailVerification as TrailVerification,
        create_all_tables as create_all_tables,
        ensure_schema as ensure_schema,
    )
    from audit_core.llm import (
        AsyncLLMClient as AsyncLLMClient,
        Classification as Classification,
        CostLedger as CostLedger,
        LLMClientOptions as LLMClientOptions,
        LLMResponse as LLMResponse,
        LLMStream as LLMStream,
        MemoryCache as MemoryCache,
        ModelPrice as ModelPrice,
        StateStoreCache as StateStoreCache,
        Usage as Usage,
        calculate_cost as calculate_cost,
    )
    from audit_core.metrics import get_metrics as get_metrics
    from audit_core.retry import RetryPolicy as RetryPolicy
    from audit_core.state import (
        AsyncStateStore as AsyncStateStore,
        FlushReport as FlushReport,
        RunInfo as RunInfo,
        StoredState as StoredState,
    )
    from audit_core.warehouse import DatabricksClient as DatabricksClient

# The one table of the public surface: name -> the module that defines it. It drives the
# lazy imports below and `__all__`; tests/test_exported_members.py pins it.
_PUBLIC: dict[str, str] = {
    **{name: "audit_core.errors" for name in _errors.__all__},
    "Settings": "audit_core._settings",
    "configure_logging": "audit_core._logging",
    "get_logger": "audit_core._logging",
    "get_metrics": "audit_core.metrics",
    "RetryPolicy": "audit_core.retry",
    "AsyncLLMClient": "audit_core.llm",
    "Classification": "audit_core.llm",
    "CostLedger": "audit_core.llm",
    "LLMClientOptions": "audit_core.llm",
    "LLMResponse": "audit_core.llm",
    "LLMStream": "audit_core.llm",
    "MemoryCache": "audit_core.llm",
    "ModelPrice": "audit_core.llm",
    "StateStoreCache": "audit_core.llm",
    "Usage": "audit_core.llm",
    "calculate_cost": "audit_core.llm",
    "AsyncStateStore": "audit_core.state",
    "FlushReport": "audit_core.state",
    "RunInfo": "audit_core.state",
    "StoredState": "audit_core.state",
    "DatabricksClient": "audit_core.warehouse",
    "AuditTrail": "audit_core.db",
    "Flag": "audit_core.db",
    "FlagStore": "audit_core.db",
    "TrailHead": "audit_core.db",
    "TrailVerification": "audit_core.db",
    "create_all_tables": "audit_core.db",
    "ensure_schema": "audit_core.db",
}

# Seed-era function wrappers: their home is `audit_core.compat`; the top-level names
# still work, with a DeprecationWarning, and are not part of `__all__`.
_DEPRECATED = frozenset(
    {
        "batch_call_llm",
        "call_llm",
        "check_databricks_health",
        "check_redis_health",
        "get_last_audit_timestamp",
        "load_mock_data_from_json",
        "mark_audit_complete",
        "query_gold_tables",
        "restore_workflow_state",
        "save_workflow_state",
    }
)

__all__ = sorted(_PUBLIC)


def _publish(value: Any) -> Any:
    """Public classes report ``audit_core`` as their module (as httpx's do)."""
    if isinstance(value, type) and value.__module__.startswith("audit_core."):
        value.__module__ = "audit_core"
    return value


for _name in _errors.__all__:
    _publish(getattr(_errors, _name))
_publish(Settings)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        value: Any = version("audit-core")
    elif name in _DEPRECATED:
        warnings.warn(
            f"audit_core.{name} is deprecated; import it from audit_core.compat",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module("audit_core.compat"), name)
    elif name in _PUBLIC:
        value = _publish(getattr(importlib.import_module(_PUBLIC[name]), name))
    else:
        raise AttributeError(f"module 'audit_core' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
