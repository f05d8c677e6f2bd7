"""The warehouse: Databricks SQL in production, DuckDB over fixtures locally."""

from audit_core.warehouse._client import DatabricksClient, QueryTimeoutError

__all__ = ["DatabricksClient", "QueryTimeoutError"]
