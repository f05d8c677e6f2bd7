"""nox sessions: tests (default), lint, typecheck, bench."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (real redis-server / PostgreSQL where installed)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and the typing file of the public API."""
    session.install("-e", ".[typecheck]")
    session.run("mypy", "--strict", "audit_core")
    session.run("mypy", "--strict", "tests/typing/api.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks and rewrite BENCHMARKS.md."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)
