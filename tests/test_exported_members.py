"""The public surface: pinned, importable, and cheap to import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import audit_core

EXPECTED = sorted(audit_core.__all__)


def test_all_is_sorted_and_resolves() -> None:
    """__all__ is sorted and every name in it resolves."""
    assert audit_core.__all__ == EXPECTED
    for name in audit_core.__all__:
        assert getattr(audit_core, name) is not None


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
