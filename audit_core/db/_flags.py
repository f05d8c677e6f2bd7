"""Flags raised by the audit, validated before anything is written, and their review."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from audit_core.db.schemas import FLAG_STATUSES, SEVERITIES
from audit_core.errors import InvalidFlagError

if TYPE_CHECKING:
    from audit_core.warehouse import DatabricksClient

DECISIONS = tuple(s for s in FLAG_STATUSES if s != "pending")
_INSERT_COLUMNS = (
    "flag_id", "audit_run_id", "transaction_id", "rule", "severity", "confidence", "title",
    "description", "amount", "evidence", "detected_by", "status", "created_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Flag:
    """One flag: a rule's finding about a transaction, awaiting or after human review."""

    audit_run_id: str
    rule: str
    severity: str
    confidence: Decimal
    title: str
    transaction_id: str | None = None
    description: str | None = None
    amount: Decimal | None = None
    evidence: Mapping[str, Any] | None = None
    detected_by: str = "rules"
    flag_id: str = ""
    status: str = "pending"
    reviewer_id: str | None = None
    review_notes: str | None = None
    reviewed_at: datetime | None = None
    created_at: datetime | None = field(default=None, compare=False)


def flag_id_for(audit_run_id: str, rule: str, transaction_id: str | None, extra: str = "") -> str:
    """A stable id: the same finding in the same run always gets the same id."""
    key = "\x1f".join((audit_run_id, rule, transaction_id or "", extra))
    return "flg_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def validate(flag: Flag) -> Flag:
    """The flag with a normalised confidence and id, or `InvalidFlagError` naming the field."""
    if flag.severity not in SEVERITIES:
        raise InvalidFlagError(
            f"severity must be one of {', '.join(SEVERITIES)}, got {flag.severity!r}"
        )
    try:
        confidence = Decimal(str(flag.confidence))
    except (InvalidOperation, ValueError):
        raise InvalidFlagError(f"confidence must be a number, got {flag.confidence!r}") from None
    if not confidence.is_finite() or not Decimal(0) <= confidence <= Decimal(1):
        raise InvalidFlagError(f"confidence must be between 0 and 1, got {flag.confidence}")
    for name in ("audit_run_id", "rule", "title", "detected_by"):
        if not getattr(flag, name):
            raise InvalidFlagError(f"{name} must be non-empty")
    if flag.amount is not None and isinstance(flag.amount, float):
        raise InvalidFlagError("amount must be a Decimal, not a float")
    if flag.status not in FLAG_STATUSES:
        raise InvalidFlagError(
            f"status must be one of {', '.join(FLAG_STATUSES)}, got {flag.status!r}"
        )
    flag_id = flag.flag_id or flag_id_for(flag.audit_run_id, flag.rule, flag.transaction_id)
    values = asdict(flag)
    values.update(confidence=confidence.quantize(Decimal("0.001")), flag_id=flag_id)
    return Flag(**values)


class FlagStore:
    """Flags in the ``flags`` table, through a `DatabricksClient`."""

    def __init__(self, warehouse: DatabricksClient, *, table: str = "flags") -> None:
        self.warehouse = warehouse
        self.table = table

    async def add(
        self,
        audit_run_id: str,
        rule: str,
        severity: str,
        confidence: Decimal | float | str,
        title: str,
        *,
        transaction_id: str | None = None,
        description: str | None = None,
        amount: Decimal | None = None,
        evidence: Mapping[str, Any] | None = None,
        detected_by: str = "rules",
        flag_id: str = "",
    ) -> Flag:
        """Validate and write one flag; nothing is written when it is invalid."""
        flag = Flag(
            audit_run_id, rule, severity, confidence, title, transaction_id,  # type: ignore[arg-type]
            description, amount, evidence, detected_by, flag_id,
        )  # fmt: skip
        written = await self.add_many([flag])
        return written[0]

    async def add_many(self, flags: Iterable[Flag], *, skip_existing: bool = False) -> list[Flag]:
        """Validate every flag first (all or nothing), then write them in one batch.

        ``skip_existing`` leaves flags whose id is already stored alone (a resumed run
        re-raising the same findings writes nothing twice). Returns the flags written.
        """
        checked = [validate(f) for f in flags]
        if skip_existing and checked:
            run_ids = sorted({f.audit_run_id for f in checked})
            existing: set[str] = set()
            for run_id in run_ids:
                table = await self.warehouse.query_arrow(
                    f"SELECT flag_id FROM {self.table} WHERE audit_run_id = :run",
                    {"run": run_id},
                )
                existing.update(table.column(0).to_pylist())
            checked = [f for f in checked if f.flag_id not in existing]
        if not checked:
            return []
        now = datetime.now(UTC)
        rows = [
            {
                "flag_id": f.flag_id, "audit_run_id": f.audit_run_id,
                "transaction_id": f.transaction_id, "rule": f.rule, "severity": f.severity,
                "confidence": f.confidence, "title": f.title, "description": f.description,
                "amount": f.amount,
                "evidence": _evidence_text(f.evidence),
                "detected_by": f.detected_by, "status": f.status, "created_at": now,
            }
            for f in checked
        ]  # fmt: skip
        sql = (
            f"INSERT INTO {self.table} ({', '.join(_INSERT_COLUMNS)}) "
            f"VALUES ({', '.join(':' + c for c in _INSERT_COLUMNS)})"
        )
        await self.warehouse.executemany(sql, rows)
        return checked

    async def pending(self, limit: int = 100, *, audit_run_id: str | None = None) -> list[Flag]:
        """Flags awaiting review, most severe and most recent first."""
        return await self.find(status="pending", limit=limit, audit_run_id=audit_run_id)

    async def find(
        self, *, status: str | None = None, limit: int = 100, audit_run_id: str | None = None
    ) -> list[Flag]:
        """Flags, optionally by status and run, most severe first."""
        if limit < 1:
            raise InvalidFlagError(f"limit must be at least 1, got {limit}")
        where: list[str] = []
        params: dict[str, Any] = {}
        if status is not None:
            where.append("status = :status")
            params["status"] = status
        if audit_run_id is not None:
            where.append("audit_run_id = :run")
            params["run"] = audit_run_id
        order = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(reversed(SEVERITIES)))
        sql = (
            f"SELECT * FROM {self.table}"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY CASE severity {order} END, created_at DESC, flag_id LIMIT {int(limit)}"
        )
        table = await self.warehouse.query_arrow(sql, params or None)
        return [_from_row(r) for r in table.to_pylist()]

    async def review(
        self, flag_id: str, decision: str, reviewer_id: str, notes: str | None = None
    ) -> Flag:
        """Record a reviewer's decision (confirmed, dismissed or escalated)."""
        if decision not in DECISIONS:
            raise InvalidFlagError(
                f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}"
            )
        if not reviewer_id:
            raise InvalidFlagError("reviewer_id must be non-empty")
        found = await self.warehouse.query_arrow(
            f"SELECT flag_id FROM {self.table} WHERE flag_id = :id",
            {"id": flag_id},
        )
        if found.num_rows == 0:
            raise InvalidFlagError(f"no flag with id {flag_id!r}")
        await self.warehouse.execute(
            f"UPDATE {self.table} SET status = :decision, reviewer_id = :reviewer, "
            "review_notes = :notes, reviewed_at = :at WHERE flag_id = :id",
            {"decision": decision, "reviewer": reviewer_id, "notes": notes,
             "at": datetime.now(UTC), "id": flag_id},
        )  # fmt: skip
        table = await self.warehouse.query_arrow(
            f"SELECT * FROM {self.table} WHERE flag_id = :id",
            {"id": flag_id},
        )
        return _from_row(table.to_pylist()[0])


def _evidence_text(evidence: Mapping[str, Any] | None) -> str | None:
    return None if evidence is None else json.dumps(evidence, sort_keys=True, default=str)


def _from_row(row: Mapping[str, Any]) -> Flag:
    evidence = row.get("evidence")
    return Flag(
        audit_run_id=row["audit_run_id"], rule=row["rule"], severity=row["severity"],
        confidence=row["confidence"], title=row["title"], transaction_id=row.get("transaction_id"),
        description=row.get("description"), amount=row.get("amount"),
        evidence=json.loads(evidence) if evidence else None, detected_by=row["detected_by"],
        flag_id=row["flag_id"], status=row["status"], reviewer_id=row.get("reviewer_id"),
        review_notes=row.get("review_notes"), reviewed_at=row.get("reviewed_at"),
        created_at=row.get("created_at"),
    )  # fmt: skip
