"""``python -m tests.parity._connect_probe URL``: one query over Spark Connect, as JSON.

pyspark allows no Spark Connect session in a process that runs a local one, so the
parity test runs the remote client here, in a process of its own, as a user would.
"""

from __future__ import annotations

import asyncio
import json
import sys

from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient, QueryError
from tests.parity.test_spark_backend import SQL


async def probe(url: str) -> dict[str, object]:
    async with DatabricksClient.spark(url, load_fixtures=True, registry=CollectorRegistry()) as wh:
        table = await wh.query_arrow(SQL, {"min": 100})
        try:
            await wh.query("SELECT 1 / 0 AS x")
            error = ""
        except QueryError as exc:
            error = str(exc)
    return {"rows": table.to_pylist(), "schema": str(table.schema), "error": error}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(probe(sys.argv[1])), default=str))
