"""One local SparkSession and one local `DatabricksClient` for the whole parity run.

Spark starts in about five seconds, so both engines live for the test session. Without
pyspark (or Java) the parity tests skip; with ``AUDIT_REQUIRE_SERVICES=1`` they fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient
from tests.services import free_port, missing

CONNECT_SERVER = "org.apache.spark.sql.connect.service.SparkConnectServer"
CONNECT_START_S = 180.0

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
def spark_connect_url(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server on 127.0.0.1, started with pyspark's own spark-submit."""
    import pyspark

    home = Path(pyspark.__file__).parent
    port = free_port()
    conf = {
        "spark.connect.grpc.binding.port": str(port),
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.memory": "512m",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "1",
        "spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("connect-warehouse")),
    }
    args = [str(home / "bin" / "spark-submit"), "--class", CONNECT_SERVER, "--master", "local[1]"]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    log = tmp_path_factory.mktemp("connect") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*args, "spark-internal"],
            env={**os.environ, "SPARK_HOME": str(home)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its JVM is a child: stop the whole group at the end
        )
    try:
        _wait_for_port(port, server, log)
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _wait_for_port(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + CONNECT_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"Spark Connect server exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"Spark Connect server did not listen within {CONNECT_START_S}s")


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
