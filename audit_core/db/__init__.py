"""Database layer: schemas in three dialects, the migration, the audit trail, and flags."""

from audit_core.db._chain import (
    TrailHead,
    TrailVerification,
    head_statement,
    parse_head_statement,
    verify_chain,
)
from audit_core.db._flags import Flag, FlagStore
from audit_core.db._migration import migration_statements
from audit_core.db._reader import ReadOnlyResults
from audit_core.db._trail import AuditTrail, read_head, verify_run
from audit_core.db.schemas import create_all_tables, ddl, ensure_schema, schema_version

__all__ = [
    "AuditTrail",
    "Flag",
    "FlagStore",
    "ReadOnlyResults",
    "TrailHead",
    "TrailVerification",
    "create_all_tables",
    "ddl",
    "ensure_schema",
    "head_statement",
    "migration_statements",
    "parse_head_statement",
    "read_head",
    "schema_version",
    "verify_chain",
    "verify_run",
]
