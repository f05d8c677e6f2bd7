"""Database layer: schemas in three dialects, the audit trail, and flags."""

from audit_core.db._flags import Flag, FlagStore
from audit_core.db._trail import AuditTrail, TrailVerification
from audit_core.db.schemas import create_all_tables, ddl, ensure_schema

__all__ = [
    "AuditTrail",
    "Flag",
    "FlagStore",
    "TrailVerification",
    "create_all_tables",
    "ddl",
    "ensure_schema",
]
