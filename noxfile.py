"""nox sessions: tests (default), lint, typecheck, parity, chaos, bench."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (real redis-server / PostgreSQL where installed)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def parity(session: nox.Session) -> None:
    """The local engine against Apache Spark (pyspark in local mode; needs a JRE)."""
    session.install("-e", ".[test,spark]")
    session.run("pytest", "-m", "parity", "tests/parity", *session.posargs)


@nox.session
def chaos(session: nox.Session) -> None:
    """The state store's chaos test, long: 50 seeds x 10 s against a real redis-server
    killed, paused and restarted (the default suite runs 2 short seeds)."""
    session.install("-e", ".[test]")
    env = {"AUDIT_CHAOS_SEEDS": "50", "AUDIT_CHAOS_SECONDS": "10", "AUDIT_REQUIRE_SERVICES": "1"}
    session.run("pytest", "tests/test_state_chaos.py", *session.posargs, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and the typing file of the public API."""
    session.install("-e", ".[typecheck,spark]")
    session.run("mypy", "--strict", "audit_core")
    session.run("mypy", "--strict", "tests/typing/api.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Check each benchmark at a tiny size, then run them all and rewrite BENCHMARKS.md.

    A missed target never fails the session; broken benchmark code does.
    """
    session.install("-e", ".[test,bench,spark]")
    session.run("pytest", "-m", "bench")
    # LiteLLM is compared only if it installs here (it has heavy native dependencies).
    session.run(
        "python", "-m", "pip", "install", "--quiet", "litellm==1.110.2", success_codes=[0, 1]
    )
    session.run("python", "-m", "benchmarks", *session.posargs)
