"""Cold and warm query latency: the local DuckDB backend next to the Spark backend.

Both answer the same Databricks SQL over the same generated fixtures; Spark is the
exact-semantics option (Databricks' own engine), DuckDB the fast default. Cold is from
constructing the client to the first answer (engine start and table load included);
warm is the median of repeated runs of the same query afterwards.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from benchmarks._common import Section
from benchmarks.others import WAREHOUSE_SQL

if TYPE_CHECKING:
    from audit_core import DatabricksClient

PARAMS = {"min": 100, "since": "2025-05-15"}


async def _latencies(
    make_client: Callable[[], DatabricksClient], repeats: int
) -> tuple[float, list[float]]:
    """(cold ms, warm ms samples) for one client factory."""
    t0 = time.perf_counter()
    async with make_client() as wh:
        await wh.query(WAREHOUSE_SQL, PARAMS)
        cold = (time.perf_counter() - t0) * 1000
        warm = []
        for _ in range(repeats):
            t1 = time.perf_counter()
            await wh.query(WAREHOUSE_SQL, PARAMS)
            warm.append((time.perf_counter() - t1) * 1000)
    return cold, warm


def _spark_available() -> str | None:
    """Why Spark cannot run here, or None when it can."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'audit-core[spark]')"
    if shutil.which("java") is None:
        return "no Java runtime on PATH"
    return None


def warehouse_spark(rows: int = 100_000, repeats: int = 5) -> Section:
    """DuckDB vs Spark, cold and warm, on the filter + group-by of the warehouse bench."""
    from audit_core import DatabricksClient
    from audit_core.fixtures import generate

    section = Section(f"Warehouse backends: DuckDB vs local Spark, {rows:,} transactions")
    tmp = Path(tempfile.mkdtemp(prefix="audit-bench-spark-"))
    try:
        data = generate(rows, 11, tmp / "data")

        def local() -> DatabricksClient:
            return DatabricksClient.local(data, registry=CollectorRegistry())

        cold, warm = asyncio.run(_latencies(local, repeats))
        section.add("DuckDB cold: client to first answer (fixtures loaded)", [cold], "ms")
        duck = section.add("DuckDB warm: same query again", warm, "ms")
        reason = _spark_available()
        if reason is not None:
            section.notes.append(f"Spark not measured: {reason}.")
            return section

        def spark() -> DatabricksClient:
            return DatabricksClient.spark(fixtures_dir=data, registry=CollectorRegistry())

        cold, warm = asyncio.run(_latencies(spark, repeats))
        section.add("Spark cold: JVM start, tables loaded, first answer", [cold], "ms")
        fast = section.add("Spark warm: same query again", warm, "ms")
        section.ratio("Spark warm / DuckDB warm", fast.median / duck.median, "")
        section.notes.append(
            "Spark runs local[1] with one shuffle partition; the same SQL on both engines."
        )
        return section
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
