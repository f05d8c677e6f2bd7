"""Flags raised by the audit, validated before anything is written, and their review.

Columns are the original ``flags`` layout (``severity_level``, ``confidence_score``,
``explanation``, ``supporting_evidence_links``, ``reviewed``, ``human_decision``, ...);
``rule``, ``title``, ``amount``, ``risk_level`` and ``detected_by`` are this project's
extra columns. ``severity_level`` follows from ``risk_level`` when only the finer level
is given (`SEVERITY_FOR_RISK`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from audit_core._arrow import rows as arrow_rows
from audit_core.db._json import dumps
from audit_core.db._layout import HUMAN_DECISIONS, RISK_LEVELS, SEVERITIES, SEVERITY_FOR_RISK
from audit_core.errors import InvalidFlagError, QueryError

if TYPE_CHECKING:
    import pyarrow as pa

    from audit_core.db._reader import Reader
    from audit_core.warehouse import DatabricksClient

__all__ = [
    "DECISIONS",
    "Flag",
    "FlagFilter",
    "FlagStore",
    "FlagsWritten",
    "RESERVED_COLUMNS",
    "count_flags",
    "find_flags",
    "flag_id_for",
    "flag_params",
    "flag_sql",
    "validate",
]

DECISIONS = HUMAN_DECISIONS
_SEP = "\x1f"  # between the parts of a flag id's key: a byte no id contains
_INSERT_COLUMNS = (
    "flag_id",
    "transaction_id",
    "audit_run_id",
    "severity_level",
    "confidence_score",
    "explanation",
    "supporting_evidence_links",
    "reviewed",
    "created_at",
    "updated_at",
    "rule",
    "title",
    "amount",
    "risk_level",
    "detected_by",
    "vendor_name",
    "department",
    "transaction_date",
)


# Columns `flag_sql` adds: a rule returning one of them is refused (it would be ambiguous).
RESERVED_COLUMNS = ("flag_id", "flag_transaction_id")


def flag_sql(rule_sql: str) -> str:
    """``rule_sql`` wrapped so each row also carries its stable ``flag_id``, computed in
    the engine exactly as `flag_id_for` does (parameters ``:flag_run``, ``:flag_rule``,
    ``:flag_sep``; see `flag_params`), and ``flag_transaction_id``: the transaction id as
    the engine spells it as a string, the text the id was computed from and the one a
    flag stores, whatever type the rule returned it as."""
    return (
        "SELECT concat('flg_', substr(sha2(concat_ws(:flag_sep, :flag_run, :flag_rule, "
        "CAST(hits.transaction_id AS STRING), ''), 256), 1, 24)) AS flag_id, "
        "CAST(hits.transaction_id AS STRING) AS flag_transaction_id, hits.* "
        f"FROM ({rule_sql}) AS hits"
    )


def _prototype(
    audit_run_id: str,
    rule: str,
    risk_level: str,
    confidence_score: float,
    title: str,
    detected_by: str,
) -> Flag:
    """The constants every flag of one rule shares, validated once as `validate` checks a
    single flag (the per-row values are checked by the writer)."""
    return validate(
        Flag(
            audit_run_id=audit_run_id,
            transaction_id="-",
            risk_level=risk_level,
            confidence_score=confidence_score,
            explanation="-",
            rule=rule,
            title=title,
            detected_by=detected_by,
        )
    )


def flag_params(audit_run_id: str, rule: str) -> dict[str, str]:
    """The parameters `flag_sql` adds."""
    return {"flag_run": audit_run_id, "flag_rule": rule, "flag_sep": _SEP}


def _rank(column: str, levels: Iterable[str]) -> str:
    cases = " ".join(f"WHEN '{level}' THEN {i}" for i, level in enumerate(levels))
    return f"CASE {column} {cases} ELSE 9 END"


# Most severe first: the original level, then the finer one, then the newest.
_ORDER = (
    f"{_rank('severity_level', SEVERITIES)}, {_rank('risk_level', reversed(RISK_LEVELS))}, "
    "created_at DESC, flag_id"
)


# Flags a completed run other than :run raised under :rule.
_EARLIER_JOIN = (
    "FROM {flags} AS f JOIN {runs} AS w ON f.audit_run_id = w.audit_run_id "
    "WHERE w.workflow_status = 'completed' AND f.rule = :rule AND f.audit_run_id <> :run"
)
_EARLIER = "SELECT count(*) " + _EARLIER_JOIN
# This run's flags under :rule.
_STORED = "SELECT count(*) FROM {flags} WHERE audit_run_id = :run AND rule = :rule"
_EARLIER_IDS = "SELECT DISTINCT f.transaction_id " + _EARLIER_JOIN


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagsWritten:
    """What `FlagStore.add_from_query` did for one rule."""

    written: int  # new flags
    repeated: int  # findings not flagged again: a completed run already flagged them
    stored: int  # this run's flags under the rule now (with any from an earlier attempt)


@dataclass(frozen=True, slots=True, kw_only=True)
class Flag:
    """One flag: a finding about a transaction, awaiting or after human review."""

    audit_run_id: str
    transaction_id: str
    severity_level: str = ""
    confidence_score: float | None
    explanation: str
    supporting_evidence_links: Any = None
    rule: str | None = None
    title: str | None = None
    amount: Decimal | None = None
    risk_level: str | None = None
    detected_by: str | None = "rules"
    vendor_name: str | None = None
    department: str | None = None
    transaction_date: datetime | None = None
    flag_id: str = ""
    reviewed: bool = False
    human_decision: str | None = None
    reviewer_id: str | None = None
    review_timestamp: datetime | None = None
    reviewer_notes: str | None = None
    created_at: datetime | None = field(default=None, compare=False)
    updated_at: datetime | None = field(default=None, compare=False)


def flag_id_for(audit_run_id: str, rule: str | None, transaction_id: str, extra: str = "") -> str:
    """A stable id: the same finding in the same run always gets the same id."""
    key = _SEP.join((audit_run_id, rule or "", transaction_id, extra))
    return "flg_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _confidence(value: Any) -> float:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidFlagError(f"confidence_score must be a number, got {value!r}") from None
    if not number.is_finite() or not Decimal(0) <= number <= Decimal(1):
        raise InvalidFlagError(f"confidence_score must be between 0 and 1, got {value}")
    return float(number)


def validate(flag: Flag) -> Flag:
    """The flag with its derived fields filled in, or `InvalidFlagError` naming the field."""
    if flag.risk_level is not None and flag.risk_level not in RISK_LEVELS:
        raise InvalidFlagError(
            f"risk_level must be one of {', '.join(RISK_LEVELS)}, got {flag.risk_level!r}"
        )
    severity = flag.severity_level or SEVERITY_FOR_RISK.get(flag.risk_level or "", "")
    if severity not in SEVERITIES:
        raise InvalidFlagError(
            f"severity_level must be one of {', '.join(SEVERITIES)}, got {severity!r}"
        )
    confidence = _confidence(flag.confidence_score)
    for name in ("audit_run_id", "transaction_id", "explanation"):
        if not getattr(flag, name):
            raise InvalidFlagError(f"{name} must be non-empty")
    if isinstance(flag.amount, float):
        raise InvalidFlagError("amount must be a Decimal, not a float")
    if flag.human_decision is not None and flag.human_decision not in DECISIONS:
        raise InvalidFlagError(
            f"human_decision must be one of {', '.join(DECISIONS)}, got {flag.human_decision!r}"
        )
    try:
        _evidence_text(flag.supporting_evidence_links)
    except TypeError as exc:
        raise InvalidFlagError(f"supporting_evidence_links is not JSON: {exc}") from None
    flag_id = flag.flag_id or flag_id_for(flag.audit_run_id, flag.rule, flag.transaction_id)
    return replace(flag, severity_level=severity, confidence_score=confidence, flag_id=flag_id)


class FlagStore:
    """Flags in the ``flags`` table, through a `DatabricksClient` (or any reader for `find`)."""

    def __init__(self, warehouse: DatabricksClient, *, table: str = "flags") -> None:
        self.warehouse = warehouse
        self.table = table

    async def add(
        self,
        audit_run_id: str,
        transaction_id: str,
        confidence_score: Decimal | float | str,
        explanation: str,
        *,
        severity_level: str = "",
        risk_level: str | None = None,
        rule: str | None = None,
        title: str | None = None,
        amount: Decimal | None = None,
        supporting_evidence_links: Any = None,
        detected_by: str | None = "rules",
        flag_id: str = "",
    ) -> Flag:
        """Validate and write one flag; nothing is written when it is invalid.

        Give ``severity_level`` (CRITICAL/WARNING/INFO), or ``risk_level`` (the finer
        INFO..CRITICAL scale) and the severity follows from it.
        """
        flag = Flag(
            audit_run_id=audit_run_id,
            transaction_id=transaction_id,
            severity_level=severity_level,
            risk_level=risk_level,
            confidence_score=confidence_score,  # type: ignore[arg-type]  # validated below
            explanation=explanation,
            rule=rule,
            title=title,
            amount=amount,
            supporting_evidence_links=supporting_evidence_links,
            detected_by=detected_by,
            flag_id=flag_id,
        )
        written = await self.add_many([flag])
        return written[0]

    async def add_many(self, flags: Iterable[Flag], *, skip_existing: bool = False) -> list[Flag]:
        """Validate every flag first (all or nothing), then write them in one batch.

        ``skip_existing`` leaves flags whose id is already stored alone (a resumed run
        re-raising the same findings writes nothing twice). Returns the flags written.
        """
        checked = [validate(f) for f in flags]
        if skip_existing and checked:
            existing: set[str] = set()
            for run_id in sorted({f.audit_run_id for f in checked}):
                table = await self.warehouse.query_arrow(
                    f"SELECT flag_id FROM {self.table} WHERE audit_run_id = :run",
                    {"run": run_id},
                )
                existing.update(table.column(0).to_pylist())
            checked = [f for f in checked if f.flag_id not in existing]
        if not checked:
            return []
        now = datetime.now(UTC)
        checked = [replace(f, created_at=now, updated_at=now) for f in checked]
        rows = [_row(f) for f in checked]
        sql = (
            f"INSERT INTO {self.table} ({', '.join(_INSERT_COLUMNS)}) "
            f"VALUES ({', '.join(':' + c for c in _INSERT_COLUMNS)})"
        )
        await self.warehouse.executemany(sql, rows)
        return checked

    async def add_table(
        self,
        hits: pa.Table,
        *,
        audit_run_id: str,
        rule: str,
        risk_level: str,
        confidence_score: float,
        title: str,
        detected_by: str = "sql-rules",
        skip_existing: bool = False,
        exclude_transactions: Iterable[str] = (),
    ) -> int:
        """One flag per row of ``hits``, written set-based (one Arrow insert, no Python
        object per row); returns how many were written.

        ``hits`` has ``flag_id`` (see `flag_sql`), ``transaction_id``, ``amount`` and
        ``detail`` (the explanation), and optionally ``vendor_name``, ``department`` and
        ``transaction_date``. The per-flag constants are validated once, as `validate`
        does for one flag; a row without a transaction id or detail is rejected, naming
        the rule. ``skip_existing`` leaves ids already stored alone; transactions in
        ``exclude_transactions`` get no flag.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        prototype = _prototype(audit_run_id, rule, risk_level, confidence_score, title, detected_by)
        for column in ("flag_id", "transaction_id", "detail"):
            if column not in hits.column_names:
                raise InvalidFlagError(f"rule {rule!r} returned no {column} column")
            if hits.column(column).null_count:
                raise InvalidFlagError(
                    f"rule {rule!r} returned {hits.column(column).null_count} rows without "
                    f"{'an explanation (detail)' if column == 'detail' else column}"
                )
        # The id as stored: as the engine spelled it when `flag_sql` computed the flag id.
        ids = (
            hits.column("flag_transaction_id")
            if "flag_transaction_id" in hits.column_names
            else hits.column("transaction_id").cast(pa.string())
        )
        keep = None
        excluded = list(exclude_transactions)
        if excluded:
            keep = pc.invert(pc.is_in(ids, pa.array(excluded, pa.string())))
        if skip_existing:
            stored = await self.warehouse.query_arrow(
                f"SELECT flag_id FROM {self.table} WHERE audit_run_id = :run",
                {"run": audit_run_id},
            )
            if stored.num_rows:
                fresh = pc.invert(pc.is_in(hits.column("flag_id"), stored.column(0)))
                keep = fresh if keep is None else pc.and_(keep, fresh)
        if keep is not None:
            hits, ids = hits.filter(keep), ids.filter(keep)
        n: int = hits.num_rows
        if n == 0:
            return 0

        def constant(value: Any, kind: pa.DataType) -> pa.Array:
            return pa.array([value] * n, type=kind)

        columns: dict[str, pa.Array | pa.ChunkedArray] = {
            "flag_id": hits.column("flag_id"),
            "transaction_id": ids,
            "audit_run_id": constant(audit_run_id, pa.string()),
            "severity_level": constant(prototype.severity_level, pa.string()),
            "risk_level": constant(risk_level, pa.string()),
            "confidence_score": constant(prototype.confidence_score, pa.float64()),
            "explanation": hits.column("detail").cast(pa.string()),
            "rule": constant(rule, pa.string()),
            "title": constant(title, pa.string()),
            "detected_by": constant(detected_by, pa.string()),
        }
        for column in ("amount", "vendor_name", "department", "transaction_date"):
            if column in hits.column_names:
                columns[column] = hits.column(column)
        await self.warehouse.insert_arrow(self.table, pa.table(columns))
        return n

    async def add_from_query(
        self,
        source: DatabricksClient,
        sql: str,
        params: Mapping[str, Any],
        *,
        audit_run_id: str,
        rule: str,
        risk_level: str,
        confidence_score: float,
        title: str,
        detected_by: str = "sql-rules",
        skip_flagged_before: bool = False,
        runs_table: str = "workflow_state",
    ) -> FlagsWritten:
        """Flag every row ``sql`` (a rule's query, Databricks SQL) returns on ``source``.

        When the flags table lives in ``source``'s engine (the same client, or a results
        file attached to the local warehouse, `DatabricksClient.attach`) this is one
        ``INSERT INTO flags ... SELECT`` run there, with each flag's stable id computed in
        the engine (`flag_sql`): no finding crosses into Python. Otherwise the findings
        come back as one Arrow table and go in with `add_table`.

        The rows need ``transaction_id``, ``amount`` and ``detail``; ``vendor_name``,
        ``department`` and ``transaction_date`` are kept when returned. Ids already
        stored for this run are left alone, so a rule re-run after an interruption writes
        nothing twice. ``skip_flagged_before``: no flag for a transaction that a completed
        run (a ``completed`` row in ``runs_table``) already flagged under ``rule``; those
        are counted in `FlagsWritten.repeated`.
        """
        from audit_core.warehouse._sql import output_columns

        prototype = _prototype(audit_run_id, rule, risk_level, confidence_score, title, detected_by)
        returned = {name.lower() for name in output_columns(sql)}
        missing = [c for c in ("transaction_id", "detail") if c not in returned]
        if missing:
            raise InvalidFlagError(f"rule {rule!r} returns no {', '.join(missing)} column")
        clash = [c for c in RESERVED_COLUMNS if c in returned]
        if clash:
            raise InvalidFlagError(
                f"rule {rule!r} returns a column named {', '.join(clash)}: the flag computes "
                "that itself; rename the rule's column"
            )
        bound = {**params, **flag_params(audit_run_id, rule)}
        flags = source.table_name_in(self.warehouse, self.table)
        runs = source.table_name_in(self.warehouse, runs_table)
        if flags is None or runs is None:  # two engines: the findings travel as Arrow
            return await self._add_across(
                source, sql, bound, prototype, skip_flagged_before, runs_table
            )
        key = {"run": audit_run_id, "rule": rule}
        mine = _STORED.format(flags=self.table)
        counts = await self.warehouse.query_arrow(
            f"SELECT ({mine}) AS stored, "
            + (
                f"({_EARLIER.format(flags=self.table, runs=runs_table)})"
                if skip_flagged_before
                else "0"
            )
            + " AS earlier",
            key,
        )
        stored, before = (int(counts.column(i)[0].as_py() or 0) for i in range(2))
        guards = []
        if stored:
            guards.append(f"NOT EXISTS (SELECT 1 FROM {flags} AS f WHERE f.flag_id = hits.flag_id)")
        repeated = 0
        if before:
            earlier = (
                f"EXISTS (SELECT 1 FROM {flags} AS f JOIN {runs} AS w "
                "ON f.audit_run_id = w.audit_run_id WHERE w.workflow_status = 'completed' "
                "AND f.rule = :flag_rule AND f.audit_run_id <> :flag_run "
                "AND f.transaction_id = hits.flag_transaction_id)"
            )
            found = await source.query_arrow(
                f"SELECT count(*) AS n FROM ({flag_sql(sql)}) AS hits WHERE {earlier}", bound
            )
            repeated = int(found.column(0)[0].as_py() or 0)
            guards.append(f"NOT {earlier}")
        names = ["flag_id", "transaction_id", "explanation", "audit_run_id", "rule"]
        values = [
            "hits.flag_id",
            "hits.flag_transaction_id",
            "hits.detail",
            ":flag_run",
            ":flag_rule",
        ]
        constants = {
            "severity_level": prototype.severity_level,
            "risk_level": risk_level,
            "confidence_score": prototype.confidence_score,
            "title": title,
            "detected_by": detected_by,
        }
        for column, value in constants.items():
            names.append(column)
            values.append(f":flag_{column}")
            bound[f"flag_{column}"] = value
        for column in ("amount", "vendor_name", "department", "transaction_date"):
            if column in returned:
                names.append(column)
                values.append(f"hits.{column}")
        insert = (
            f"INSERT INTO {flags} ({', '.join(names)}) SELECT {', '.join(values)} "
            f"FROM ({flag_sql(sql)}) AS hits" + (f" WHERE {' AND '.join(guards)}" if guards else "")
        )
        try:
            written = await source.execute(insert, bound)
        except QueryError as exc:
            if "NOT NULL" in str(exc).upper():
                raise InvalidFlagError(
                    f"rule {rule!r} returned rows without a transaction_id or an "
                    f"explanation (detail): {str(exc).split(chr(10), 1)[0]}"
                ) from None
            raise
        if written is None:  # an engine that does not say how many: count them
            written = await self._count(mine, key) - stored
        return FlagsWritten(written=written, repeated=repeated, stored=stored + written)

    async def flagged_before(
        self, audit_run_id: str, rule: str, *, runs_table: str = "workflow_state"
    ) -> set[str]:
        """Transactions a completed run other than ``audit_run_id`` flagged under ``rule``
        (a ``completed`` row in ``runs_table``)."""
        table = await self.warehouse.query_arrow(
            _EARLIER_IDS.format(flags=self.table, runs=runs_table),
            {"run": audit_run_id, "rule": rule},
        )
        return set(table.column(0).to_pylist())

    async def _count(self, sql: str, params: Mapping[str, Any]) -> int:
        table = await self.warehouse.query_arrow(sql, params)
        return int(table.column(0)[0].as_py() or 0) if table.num_rows else 0

    async def _add_across(
        self,
        source: DatabricksClient,
        sql: str,
        bound: dict[str, Any],
        prototype: Flag,
        skip_flagged_before: bool,
        runs_table: str,
    ) -> FlagsWritten:
        """`add_from_query` when the flags table is in another engine."""
        import pyarrow as pa
        import pyarrow.compute as pc

        rule = prototype.rule or ""
        run = prototype.audit_run_id
        hits = await source.query_arrow(flag_sql(sql), bound)
        seen: set[str] = set()
        repeated = 0
        if skip_flagged_before:
            seen = await self.flagged_before(run, rule, runs_table=runs_table)
            if seen:
                ids = hits.column("flag_transaction_id")
                found = pc.is_in(ids, pa.array(sorted(seen), pa.string()))
                repeated = int(pc.sum(found).as_py() or 0)
        written = await self.add_table(
            hits,
            audit_run_id=run,
            rule=rule,
            risk_level=prototype.risk_level or "INFO",
            confidence_score=prototype.confidence_score or 0.0,
            title=prototype.title or "",
            detected_by=prototype.detected_by or "sql-rules",
            skip_existing=True,
            exclude_transactions=seen,
        )
        stored = await self._count(_STORED.format(flags=self.table), {"run": run, "rule": rule})
        return FlagsWritten(written=written, repeated=repeated, stored=stored)

    async def pending(self, limit: int = 100, *, audit_run_id: str | None = None) -> list[Flag]:
        """Flags awaiting review, most severe and most recent first."""
        return await self.find(reviewed=False, limit=limit, audit_run_id=audit_run_id)

    async def find(
        self, *, reviewed: bool | None = None, limit: int = 100, audit_run_id: str | None = None
    ) -> list[Flag]:
        """Flags, optionally by review state and run, most severe first."""
        return await find_flags(
            self.warehouse,
            reviewed=reviewed,
            limit=limit,
            audit_run_id=audit_run_id,
            table=self.table,
        )

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
            f"SELECT flag_id FROM {self.table} WHERE flag_id = :id", {"id": flag_id}
        )
        if found.num_rows == 0:
            raise InvalidFlagError(f"no flag with id {flag_id!r}")
        now = datetime.now(UTC)
        await self.warehouse.execute(
            f"UPDATE {self.table} SET reviewed = TRUE, human_decision = :decision, "
            "reviewer_id = :reviewer, reviewer_notes = :notes, review_timestamp = :at, "
            "updated_at = :at WHERE flag_id = :id",
            {
                "decision": decision,
                "reviewer": reviewer_id,
                "notes": notes,
                "at": now,
                "id": flag_id,
            },
        )
        table = await self.warehouse.query_arrow(
            f"SELECT * FROM {self.table} WHERE flag_id = :id", {"id": flag_id}
        )
        return flag_from_row(arrow_rows(table)[0])


@dataclass(frozen=True, kw_only=True)
class FlagFilter:
    """Which flags to list: every field left at None matches everything.

    ``severity`` matches the original level (CRITICAL/WARNING/INFO) or the finer risk
    level (HIGH, MEDIUM, ...); ``status`` is ``pending``, ``reviewed`` or a decision;
    ``vendor`` matches part of the vendor name, case-insensitively; ``since`` and
    ``until`` bound the transaction date (inclusive, exclusive).
    """

    audit_run_id: str | None = None
    reviewed: bool | None = None
    severity: str | None = None
    rule: str | None = None
    status: str | None = None
    vendor: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        """The WHERE clause (or "") and its bound parameters."""
        clauses: list[str] = []
        params: dict[str, Any] = {}

        def add(clause: str, **values: Any) -> None:
            clauses.append(clause)
            params.update(values)

        if self.reviewed is not None:
            add("reviewed = :reviewed", reviewed=self.reviewed)
        if self.audit_run_id is not None:
            add("audit_run_id = :run", run=self.audit_run_id)
        if self.severity is not None:
            level = self.severity.upper()
            levels = tuple(dict.fromkeys((*SEVERITIES, *RISK_LEVELS)))
            if level not in levels:
                raise InvalidFlagError(
                    f"severity must be one of {', '.join(levels)}, got {self.severity!r}"
                )
            add("(severity_level = :level OR risk_level = :level)", level=level)
        if self.rule is not None:
            add("rule = :rule", rule=self.rule)
        if self.status is not None:
            statuses = ("pending", "reviewed", *DECISIONS)
            if self.status not in statuses:
                raise InvalidFlagError(
                    f"status must be one of {', '.join(statuses)}, got {self.status!r}"
                )
            if self.status in ("pending", "reviewed"):
                add("reviewed = :done", done=self.status == "reviewed")
            else:
                add("human_decision = :decision", decision=self.status)
        if self.vendor is not None:
            add("lower(vendor_name) LIKE :vendor", vendor=f"%{self.vendor.lower()}%")
        if self.since is not None:
            add("transaction_date >= :since", since=self.since)
        if self.until is not None:
            add("transaction_date < :until", until=self.until)
        return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


async def find_flags(
    reader: Reader,
    *,
    reviewed: bool | None = None,
    limit: int = 100,
    audit_run_id: str | None = None,
    table: str = "flags",
    where: FlagFilter | None = None,
) -> list[Flag]:
    """Flags from any reader (a warehouse, or a results database opened read-only)."""
    if limit < 1:
        raise InvalidFlagError(f"limit must be at least 1, got {limit}")
    chosen = where or FlagFilter(reviewed=reviewed, audit_run_id=audit_run_id)
    clause, params = chosen.where()
    sql = f"SELECT * FROM {table}{clause} ORDER BY {_ORDER} LIMIT {int(limit)}"
    result = await reader.query_arrow(sql, params or None)
    return [flag_from_row(r) for r in arrow_rows(result)]


async def count_flags(reader: Reader, where: FlagFilter, *, table: str = "flags") -> int:
    """How many flags match (the M of "N of M")."""
    clause, params = where.where()
    result = await reader.query_arrow(f"SELECT count(*) FROM {table}{clause}", params or None)
    return int(result.column(0)[0].as_py())


def _evidence_text(evidence: Any) -> str | None:
    return None if evidence is None else dumps(evidence)


def _evidence_value(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # written by another agent as plain text: keep it as it is


def _row(flag: Flag) -> dict[str, Any]:
    return {
        "flag_id": flag.flag_id,
        "transaction_id": flag.transaction_id,
        "audit_run_id": flag.audit_run_id,
        "severity_level": flag.severity_level,
        "confidence_score": flag.confidence_score,
        "explanation": flag.explanation,
        "supporting_evidence_links": _evidence_text(flag.supporting_evidence_links),
        "reviewed": flag.reviewed,
        "created_at": flag.created_at,
        "updated_at": flag.updated_at,
        "rule": flag.rule,
        "title": flag.title,
        "amount": flag.amount,
        "risk_level": flag.risk_level,
        "detected_by": flag.detected_by,
        "vendor_name": flag.vendor_name,
        "department": flag.department,
        "transaction_date": flag.transaction_date,
    }


def flag_from_row(row: Mapping[str, Any]) -> Flag:
    """A `Flag` from a ``flags`` row (columns by their original names)."""
    confidence = row.get("confidence_score")
    return Flag(
        audit_run_id=row["audit_run_id"],
        transaction_id=row["transaction_id"],
        severity_level=row.get("severity_level") or "",
        confidence_score=None if confidence is None else float(confidence),
        explanation=row["explanation"],
        supporting_evidence_links=_evidence_value(row.get("supporting_evidence_links")),
        rule=row.get("rule"),
        title=row.get("title"),
        amount=row.get("amount"),
        risk_level=row.get("risk_level"),
        detected_by=row.get("detected_by"),
        vendor_name=row.get("vendor_name"),
        department=row.get("department"),
        transaction_date=row.get("transaction_date"),
        flag_id=row["flag_id"],
        reviewed=bool(row.get("reviewed")),
        human_decision=row.get("human_decision"),
        reviewer_id=row.get("reviewer_id"),
        review_timestamp=row.get("review_timestamp"),
        reviewer_notes=row.get("reviewer_notes"),
        created_at=row.get("created_at"),
        updated_at=row.get("updated_at"),
    )
