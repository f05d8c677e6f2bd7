"""The version-2 layout as data: the original tables, the trail heads, their value sets.

`audit_core.db.schemas` renders and applies it; `audit_core.db._migration` moves a
version-1 database to it. Both import this module, never each other's internals.
"""

from __future__ import annotations

from audit_core.db._tables import DIALECTS, Column, Dialect, Index, Table, translate
from audit_core.errors import ConfigError

SCHEMA_VERSION = 2
SEVERITIES = ("CRITICAL", "WARNING", "INFO")
RISK_LEVELS = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")
SEVERITY_FOR_RISK = {
    "CRITICAL": "CRITICAL",
    "HIGH": "CRITICAL",
    "MEDIUM": "WARNING",
    "LOW": "WARNING",
    "INFO": "INFO",
}
HUMAN_DECISIONS = ("confirmed", "dismissed", "escalated")
WORKFLOW_STATUSES = ("pending", "in_progress", "completed", "failed", "paused")
# sha256-v1: rows migrated from schema version 1, hashed under their version-1 names.
HASH_ALGORITHMS = ("sha256-v1", "sha256", "hmac-sha256")
VERSION_DESCRIPTION = {
    1: "flags, audit_trail, workflow_state",
    2: "original column names restored; audit_trail_heads; append-only trail",
}


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


FLAGS = Table(
    name="flags",
    columns=(
        Column("flag_id", "VARCHAR(64)", "NOT NULL"),
        Column("transaction_id", "VARCHAR(255)", "NOT NULL"),
        Column("audit_run_id", "VARCHAR(200)", "NOT NULL"),
        Column("severity_level", "VARCHAR(20)"),
        Column("confidence_score", "FLOAT"),
        Column("explanation", "TEXT", "NOT NULL"),
        Column("supporting_evidence_links", "TEXT"),
        Column("reviewed", "BOOLEAN", "DEFAULT FALSE"),
        Column("human_decision", "VARCHAR(30)"),
        Column("reviewer_id", "VARCHAR(255)"),
        Column("review_timestamp", "TIMESTAMPTZ"),
        Column("reviewer_notes", "TEXT"),
        Column("created_at", "TIMESTAMPTZ", "DEFAULT {now}"),
        Column("updated_at", "TIMESTAMPTZ", "DEFAULT {now}"),
        # added by this project
        Column("rule", "VARCHAR(64)"),
        Column("title", "TEXT"),
        Column("amount", "NUMERIC(18,2)"),
        Column("risk_level", "VARCHAR(16)"),
        Column("detected_by", "VARCHAR(100)"),
        # what a reviewer filters and a report groups by, copied from the transaction
        Column("vendor_name", "VARCHAR(255)"),
        Column("department", "VARCHAR(100)"),
        Column("transaction_date", "TIMESTAMPTZ"),
    ),
    primary_key=("flag_id",),
    checks=(
        ("flags_severity_level_check", f"severity_level IN {_in(SEVERITIES)}"),
        ("flags_confidence_score_check", "confidence_score BETWEEN 0 AND 1"),
        ("flags_risk_level_check", f"risk_level IN {_in(RISK_LEVELS)}"),
    ),
    indexes=(
        Index("idx_flags_transaction", "transaction_id"),
        Index("idx_flags_audit_run", "audit_run_id"),
        Index("idx_flags_reviewed", "reviewed, created_at DESC"),
        Index("idx_flags_severity", "severity_level, created_at DESC"),
    ),
    clustering=("audit_run_id", "transaction_id", "severity_level", "created_at"),
)

AUDIT_TRAIL = Table(
    name="audit_trail",
    columns=(
        Column("audit_run_id", "VARCHAR(200)", "NOT NULL"),
        Column("log_sequence_number", "BIGINT", "NOT NULL"),
        Column("agent_name", "VARCHAR(100)", "NOT NULL"),
        Column("tool_called", "VARCHAR(200)", "NOT NULL"),
        Column("timestamp", "TIMESTAMPTZ", "DEFAULT {now}"),
        Column("execution_time_ms", "BIGINT"),
        Column("input_data", "TEXT"),
        Column("output_summary", "TEXT"),
        Column("llm_model", "VARCHAR(200)"),
        Column("llm_tokens_used", "BIGINT"),
        Column("llm_cost_dollars", "NUMERIC(12,6)"),
        Column("error_message", "TEXT"),
        Column("error_stack_trace", "TEXT"),
        Column("decision_chain", "TEXT"),
        # added by this project: the hash chain
        Column("hash_algorithm", "VARCHAR(16)", "NOT NULL"),
        Column("prev_hash", "CHAR(64)", "NOT NULL"),
        Column("entry_hash", "CHAR(64)", "NOT NULL"),
    ),
    primary_key=("audit_run_id", "log_sequence_number"),
    checks=(
        ("audit_trail_sequence_check", "log_sequence_number >= 1"),
        ("audit_trail_tokens_check", "llm_tokens_used IS NULL OR llm_tokens_used >= 0"),
        ("audit_trail_cost_check", "llm_cost_dollars IS NULL OR llm_cost_dollars >= 0"),
        ("audit_trail_time_check", "execution_time_ms IS NULL OR execution_time_ms >= 0"),
        ("audit_trail_hash_algorithm_check", f"hash_algorithm IN {_in(HASH_ALGORITHMS)}"),
    ),
    indexes=(
        Index("idx_audit_trail_agent", "agent_name, timestamp DESC"),
        Index("idx_audit_trail_timestamp", "timestamp DESC"),
    ),
    clustering=("audit_run_id", "agent_name", "timestamp"),
    append_only=True,
)

# One row per flush of a run: (rows so far, hash of the newest). Append-only like the
# trail, so a cut-off tail, or a recomputed chain, disagrees with an earlier head.
AUDIT_TRAIL_HEADS = Table(
    name="audit_trail_heads",
    columns=(
        Column("audit_run_id", "VARCHAR(200)", "NOT NULL"),
        Column("row_count", "BIGINT", "NOT NULL"),
        Column("last_hash", "CHAR(64)", "NOT NULL"),
        Column("hash_algorithm", "VARCHAR(16)", "NOT NULL"),
        Column("completed", "BOOLEAN", "NOT NULL"),
        Column("recorded_at", "TIMESTAMPTZ", "NOT NULL"),
    ),
    primary_key=("audit_run_id", "row_count", "completed"),
    checks=(("audit_trail_heads_rows_check", "row_count >= 0"),),
    clustering=("audit_run_id",),
    append_only=True,
)

WORKFLOW_STATE = Table(
    name="workflow_state",
    columns=(
        Column("audit_run_id", "VARCHAR(200)", "NOT NULL"),
        Column("workflow_status", "VARCHAR(20)"),
        Column("current_agent", "VARCHAR(100)"),
        Column("completed_agents", "TEXT"),
        Column("pending_agents", "TEXT"),
        Column("intermediate_results", "TEXT"),
        Column("created_at", "TIMESTAMPTZ", "DEFAULT {now}"),
        Column("updated_at", "TIMESTAMPTZ", "DEFAULT {now}"),
        # added by this project
        Column("completed_at", "TIMESTAMPTZ"),
        Column("error_message", "TEXT"),
    ),
    primary_key=("audit_run_id",),
    checks=(
        ("workflow_state_workflow_status_check", f"workflow_status IN {_in(WORKFLOW_STATUSES)}"),
    ),
    indexes=(Index("idx_workflow_state_status", "workflow_status, created_at DESC"),),
    clustering=("workflow_status", "created_at"),
)

TABLES: tuple[Table, ...] = (FLAGS, AUDIT_TRAIL, AUDIT_TRAIL_HEADS, WORKFLOW_STATE)


def check_dialect(dialect: str) -> Dialect:
    for known in DIALECTS:
        if dialect == known:
            return known
    raise ConfigError(f"unknown dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")


def version_statements(dialect: Dialect, version: int = SCHEMA_VERSION) -> list[str]:
    """The version table, and the row recording ``version``."""
    create = (
        "CREATE TABLE IF NOT EXISTS audit_schema_version (\n"
        "    version INT NOT NULL,\n"
        f"    applied_at {translate('TIMESTAMPTZ', dialect)} NOT NULL,\n"
        f"    description {translate('TEXT', dialect)} NOT NULL,\n"
        "    CONSTRAINT audit_schema_version_pk PRIMARY KEY (version)\n)"
    )
    description = VERSION_DESCRIPTION[version]
    if dialect == "databricks":
        create += "\nUSING DELTA"
        insert = (
            "MERGE INTO audit_schema_version AS t USING (SELECT "
            f"{version} AS version, '{description}' AS description) AS s "
            "ON t.version = s.version WHEN NOT MATCHED THEN INSERT (version, applied_at, "
            "description) VALUES (s.version, current_timestamp(), s.description)"
        )
    else:
        now = "now()" if dialect == "postgres" else "current_timestamp"
        insert = (
            "INSERT INTO audit_schema_version (version, applied_at, description) VALUES "
            f"({version}, {now}, '{description}') ON CONFLICT (version) DO NOTHING"
        )
    return [create, insert]
