"""One local SparkSession and one local `DatabricksClient` for the whole parity run.

Spark starts in about five seconds, so both engines live for the test session. Without
pyspark (or Java) the parity tests skip; with ``AUDIT_REQUIRE_SERVICES=1`` they fail.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient
from tests.services import missing

# Filled in by the tests, reported at the end of the run.
OUTCOMES: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.parity)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local Spark with the fixture tables, ANSI on, UTC, bound to 127.0.0.1."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing("pyspark (pip install 'audit-core[spark]')")
    if shutil.which("java") is None:
        missing("java (a JRE for pyspark)")
    from audit_core.warehouse._spark import load_fixtures, local_session

    session = local_session(warehouse_dir=tmp_path_factory.mktemp("spark-warehouse"))
    load_fixtures(session)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def local_wh() -> Iterator[DatabricksClient]:
    """The local DuckDB backend over the shipped fixtures (driven with asyncio.run)."""
    client = DatabricksClient.local(registry=CollectorRegistry())
    yield client
    asyncio.run(client.aclose())


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not OUTCOMES:
        return
    counts: dict[str, int] = {}
    for outcome in OUTCOMES.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    total = len(OUTCOMES)
    terminalreporter.section("Spark parity")
    for outcome, n in sorted(counts.items()):
        terminalreporter.write_line(f"{outcome:>12}: {n:4d} ({100 * n / total:.1f}%)")
    refused = sorted(k for k, v in OUTCOMES.items() if v == "refused")
    if refused:
        terminalreporter.write_line("refused locally: " + ", ".join(refused))
