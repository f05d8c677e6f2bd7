"""The public surface: pinned, importable, attributed to `audit_core`, cheap to import."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import audit_core

EXPECTED = [
    "AsyncLLMClient",
    "AsyncStateStore",
    "AuditCoreError",
    "AuditTrail",
    "AuditTrailError",
    "Classification",
    "ClientClosedError",
    "ConfigError",
    "CostLedger",
    "DatabricksClient",
    "DatabricksConnectionError",
    "Flag",
    "FlagStore",
    "FlushReport",
    "InvalidFlagError",
    "LLMAuthError",
    "LLMBudgetExceededError",
    "LLMClientOptions",
    "LLMConnectionError",
    "LLMContentFilterError",
    "LLMError",
    "LLMInsufficientCreditsError",
    "LLMModerationError",
    "LLMRateLimitError",
    "LLMResponse",
    "LLMResponseError",
    "LLMStream",
    "LLMTimeoutError",
    "MemoryCache",
    "ModelPrice",
    "QueryError",
    "QueryTimeoutError",
    "ReadOnlyViolationError",
    "RetryPolicy",
    "RunInfo",
    "Settings",
    "StateConflictError",
    "StateEncodingError",
    "StateLockLostError",
    "StateManagerError",
    "StateStoreCache",
    "StateStoreUnavailableError",
    "StoredState",
    "TrailHead",
    "TrailVerification",
    "TrailVerificationError",
    "UnsupportedQueryError",
    "Usage",
    "WarehouseError",
    "calculate_cost",
    "configure_logging",
    "create_all_tables",
    "ensure_schema",
    "get_logger",
    "get_metrics",
]
SEED_NAMES = [
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
]


def test_all_is_pinned_sorted_and_resolves() -> None:
    """__all__ is exactly the pinned list, sorted, and every name in it resolves."""
    assert audit_core.__all__ == EXPECTED
    for name in audit_core.__all__:
        assert getattr(audit_core, name) is not None


def test_type_checkers_see_the_same_names() -> None:
    """The re-exports type checkers read are exactly the names of the runtime table."""
    tree = ast.parse(Path(audit_core.__file__).read_text())
    aliased = {
        alias.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname == alias.name
    }
    assert aliased == set(EXPECTED)


def test_public_classes_report_audit_core_as_their_module() -> None:
    """Tracebacks and reprs say `audit_core.QueryError`, not a private module path."""
    for name in EXPECTED:
        value = getattr(audit_core, name)
        if isinstance(value, type):
            assert value.__module__ == "audit_core", name


def test_version_comes_from_package_metadata() -> None:
    """__version__ is the installed distribution's version, not a second copy."""
    assert audit_core.__version__ == version("audit-core")


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_functions_live_in_compat_and_warn_at_top_level(name: str) -> None:
    """The seed-era wrappers: at home in audit_core.compat, deprecated at the top level."""
    from audit_core import compat

    assert name in compat.__all__
    assert name not in audit_core.__all__
    with pytest.warns(DeprecationWarning, match="audit_core.compat"):
        value = getattr(audit_core, name)
    assert value is getattr(compat, name)


def test_unknown_attribute_is_attribute_error() -> None:
    """A misspelt name is an AttributeError, not a silent None."""
    with pytest.raises(AttributeError, match="NoSuchThing"):
        audit_core.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_import_is_lazy() -> None:
    """`import audit_core` loads none of the heavy data/driver libraries."""
    code = (
        "import sys, json, audit_core; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pandas','pyarrow','duckdb','sqlglot','fakeredis','databricks','aiohttp'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_the_distribution_ships_its_license() -> None:
    """pyproject names the MIT license; the installed metadata carries the LICENSE file."""
    from importlib.metadata import metadata

    assert metadata("audit-core").get_all("License-File") == ["LICENSE"]
