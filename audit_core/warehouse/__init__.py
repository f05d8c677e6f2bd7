"""The warehouse: Databricks SQL in production, DuckDB over fixtures locally."""

from audit_core.warehouse._client import DatabricksClient

__all__ = ["DatabricksClient"]
