"""The package's shape: one error module, imports that point one way, no test imports.

These walk the source (the syntax trees), so a new module is checked without a list
to keep up to date.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import audit_core
from audit_core import errors

ROOT = Path(audit_core.__file__).parent
REPO = ROOT.parent

# Builtin exceptions a module may raise itself, each for a protocol Python defines and
# never reaching a caller of the library as such: a module's __getattr__ raises
# AttributeError; an unreachable branch after tenacity's loop (for the type checker); a
# JSON encoder's ``default=`` hook raises TypeError, which the state codec converts to
# StateEncodingError.
ALLOWED_BUILTIN_RAISES = {
    ("__init__.py", "AttributeError"),
    ("retry.py", "AssertionError"),
    ("state/_codec.py", "TypeError"),
}


def _modules(root: Path, package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = [package, *rel.parts]
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every module imported at run time (top level or inside functions), not for typing.

    ``from base import name`` comes out as ``"base:name"``; `_resolve` decides whether
    ``name`` is a submodule.
    """
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield f"{base}:{alias.name}"  # `from base import name`: resolved by the caller
        stack.extend(ast.iter_child_nodes(node))


def _graph() -> dict[str, set[str]]:
    mods = dict(_modules(ROOT, "audit_core"))
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = {
            _resolve(t, mods) for t in _runtime_imports(tree, name, path.name == "__init__.py")
        }
        graph[name] = {t for t in targets if t in mods and t != name}
    return graph


def _resolve(target: str, modules: object) -> str:
    """``base:name`` -> ``base.name`` when that is a module, else ``base``."""
    base, _, name = target.partition(":")
    if not name:
        return base
    return f"{base}.{name}" if f"{base}.{name}" in modules else base


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_in_the_package() -> None:
    """Dependencies point one way: no module reaches itself through run-time imports."""
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a two-module loop is reported."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]


def test_neither_package_nor_benchmarks_import_tests() -> None:
    """`tests` is never imported by audit_core or benchmarks."""
    offenders = []
    for package in ("audit_core", "benchmarks"):
        for name, path in _modules(REPO / package, package):
            tree = ast.parse(path.read_text(), str(path))
            imported = {
                t.partition(":")[0]
                for t in _runtime_imports(tree, name, path.name == "__init__.py")
            }
            if any(m == "tests" or m.startswith("tests.") for m in imported):
                offenders.append(name)
    assert offenders == []


def _package_exceptions() -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for info in pkgutil.walk_packages(audit_core.__path__, "audit_core."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("audit_core"):
                found.add(obj)
    return found


def test_every_exception_class_is_defined_and_exported_in_errors() -> None:
    """Each exception class in the package lives in errors.py, is exported and drawn."""
    exported = {getattr(errors, name) for name in errors.__all__}
    strays = {
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _package_exceptions()
        if cls not in exported and not cls.__name__.startswith("_")
    }
    assert strays == set()
    for name in errors.__all__:
        assert name in (errors.__doc__ or ""), f"{name} is not drawn in the errors tree"
        assert getattr(audit_core, name) is getattr(errors, name)
        assert issubclass(getattr(errors, name), errors.AuditCoreError)


def test_raise_sites_raise_our_errors() -> None:
    """No module raises a builtin exception where a typed error belongs."""
    builtin_errors = {
        name
        for name, obj in vars(builtins).items()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    }
    found = []
    for _, path in _modules(ROOT, "audit_core"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id in builtin_errors:
                rel = str(path.relative_to(ROOT))
                if (rel, exc.id) not in ALLOWED_BUILTIN_RAISES:
                    found.append(f"{rel}:{node.lineno} raises {exc.id}")
    assert found == []


# ModelPrice(input, output, cached_input) is positional by the public contract (API.md).
POSITIONAL_BY_CONTRACT = {"ModelPrice"}


def test_dataclasses_with_more_than_three_fields_are_keyword_only() -> None:
    """A value object with many fields is built by name, never by position."""
    found = []
    for _, path in _modules(ROOT, "audit_core"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ClassDef) or node.name in POSITIONAL_BY_CONTRACT:
                continue
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                target = call.func if call else decorator
                if getattr(target, "id", getattr(target, "attr", None)) != "dataclass":
                    continue
                options = {
                    k.arg: getattr(k.value, "value", None) for k in (call.keywords if call else [])
                }
                fields = [s for s in node.body if isinstance(s, ast.AnnAssign)]
                if len(fields) > 3 and not options.get("kw_only"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert found == []


def test_no_fmt_skip_anywhere() -> None:
    """The formatter decides layout: no skip marker in the package, tests or benchmarks."""
    marker = "fmt: " + "skip"
    found = [
        str(path.relative_to(REPO))
        for folder in ("audit_core", "tests", "benchmarks")
        for path in (REPO / folder).rglob("*.py")
        if marker in path.read_text()
    ]
    assert found == []
