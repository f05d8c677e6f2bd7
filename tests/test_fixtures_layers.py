"""The fixtures package sits below the warehouse: its floors import only downwards."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import audit_core

PACKAGE = Path(audit_core.__file__).parent
# Each module, and the audit_core modules it may import (anything else is a back-reference).
# audit_core._sqlcache (and the _logging it logs with) is a leaf beneath every floor.
FLOORS = {
    "fixtures/_manifest.py": {"audit_core.errors", "audit_core._sqlcache"},
    "fixtures/_load.py": {"audit_core.errors", "audit_core.fixtures._manifest"},
    "fixtures/_generate.py": {"audit_core.errors", "audit_core.fixtures._manifest"},
}


def imports(path: Path) -> set[str]:
    """Every audit_core module ``path`` imports, at any depth (function bodies too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("audit_core")}


@pytest.mark.parametrize(("module", "allowed"), FLOORS.items())
def test_each_floor_imports_only_downwards(module: str, allowed: set[str]) -> None:
    assert imports(PACKAGE / module) <= allowed


def test_no_fixtures_module_imports_the_warehouse() -> None:
    """The generator once imported warehouse._local, which imports the fixtures: a cycle."""
    for path in (PACKAGE / "fixtures").glob("*.py"):
        assert not {m for m in imports(path) if m.startswith("audit_core.warehouse")}, path


def test_the_sql_cache_is_a_leaf() -> None:
    assert imports(PACKAGE / "_sqlcache.py") <= {"audit_core._logging"}
