"""The trail's hash chain: canonical rows, entry hashes, heads, and the verdict.

``entry_hash = H(canonical JSON of the row's hashed columns + prev_hash)``; the first
row of a run chains from 64 zeros. ``H`` is the row's ``hash_algorithm``:

- ``sha256``: SHA-256 (anyone can recompute it: it catches accidents and edits by
  someone who does not also rewrite every later row and every head);
- ``hmac-sha256``: HMAC-SHA256 under a key (``AUDIT_TRAIL_KEY``) that the database never
  sees, so a writer without the key cannot forge a chain that verifies with it (entries
  labelled so that are plain SHA-256 hashes are an unkeyed trail relabelled: tampered,
  with or without the key);
- ``sha256-v1``: rows migrated from schema version 1, hashed under their version-1
  column names (``sequence_number``, ``recorded_at``, ``error``), which still verify.

The canonical form survives a round trip through every database (UTC timestamps with
microseconds, costs at 6 decimal places, integers as integers). It is strict: a stored
value it cannot hold exactly (a nanosecond, a seventh cost digit, 3.5 as a count) reads
as something no writer hashed, so a retyped column cannot hide an edit.

A *head* is (rows, hash of the newest row, completed). The writer appends one to
``audit_trail_heads`` at every flush, so a tail cut off later, or a chain recomputed
from some row on, disagrees with a head recorded earlier. A head published outside the
database (`head_statement`, HMAC-signed when keyed) also catches a forger who rewrote
both tables.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from audit_core.db._layout import AUDIT_TRAIL
from audit_core.errors import AuditTrailError, TrailVerificationError

__all__ = [
    "GENESIS",
    "TrailHead",
    "TrailVerification",
    "entry_hash",
    "head_statement",
    "parse_head_statement",
    "verify_chain",
]

GENESIS = "0" * 64
KEYED = "hmac-sha256"
TRAIL_COLUMNS = AUDIT_TRAIL.column_names
_HASHED = tuple(c for c in TRAIL_COLUMNS if c not in ("prev_hash", "entry_hash"))
# version-1 name -> version-2 column, for rows migrated from schema version 1
_V1_HASHED = (
    ("audit_run_id", "audit_run_id"),
    ("sequence_number", "log_sequence_number"),
    ("recorded_at", "timestamp"),
    ("agent_name", "agent_name"),
    ("tool_called", "tool_called"),
    ("input_data", "input_data"),
    ("output_summary", "output_summary"),
    ("execution_time_ms", "execution_time_ms"),
    ("llm_model", "llm_model"),
    ("llm_tokens_used", "llm_tokens_used"),
    ("llm_cost_dollars", "llm_cost_dollars"),
    ("error", "error_message"),
    ("decision_chain", "decision_chain"),
)
_INTEGERS = frozenset(("log_sequence_number", "execution_time_ms", "llm_tokens_used"))
COST_PLACES = Decimal("0.000001")
STATEMENT_KIND = "audit-core trail head"
_FRACTION = re.compile(r"[.,](\d+)")  # the seconds' fraction in a time read as text


def whole_number(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (3, 3.0, Decimal('3')), else None.

    A stored 3.5 never silently becomes 3: a column retyped to hide an edit shows."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)


def _timestamp(value: Any) -> str:
    """UTC to the microsecond; a finer stored time is not one the trail wrote.

    Both readings below would drop the extra digits silently: ``%f`` ignores a
    ``pandas.Timestamp``'s nanoseconds (a TIMESTAMP_NS column), and ``fromisoformat``
    truncates text past six fractional digits."""
    if isinstance(value, datetime):
        if getattr(value, "nanosecond", 0):
            return f"not a microsecond time: {value!r}"
        stamp = value
    else:
        text = str(value)
        fraction = _FRACTION.search(text)
        if fraction is not None and fraction.group(1)[6:].strip("0"):
            return f"not a microsecond time: {value!r}"
        stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normal(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column == "timestamp":
        return _timestamp(value)
    if column == "llm_cost_dollars":
        try:
            cost = Decimal(str(value))
            rounded = cost.quantize(COST_PLACES)
        except ArithmeticError:
            return f"not a cost: {value!r}"
        # Costs are stored to the micro-dollar; finer digits were not written by us.
        return format(rounded, "f") if rounded == cost else f"not a cost: {value!r}"
    if column in _INTEGERS:
        number = whole_number(value)
        return number if number is not None else f"not an integer: {value!r}"
    return str(value)


def canonical(row: Mapping[str, Any]) -> str:
    """The row's hashed columns as canonical JSON, under the names its algorithm uses."""
    if row.get("hash_algorithm") == "sha256-v1":
        pairs: Sequence[tuple[str, str]] = _V1_HASHED
    else:
        pairs = tuple((c, c) for c in _HASHED)
    out = {name: _normal(column, row.get(column)) for name, column in pairs}
    return json.dumps(out, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def as_key(key: str | bytes | None) -> bytes | None:
    """A trail key as bytes (text keys are UTF-8); None or empty means unkeyed."""
    if not key:
        return None
    return key.encode() if isinstance(key, str) else bytes(key)


def entry_hash(row: Mapping[str, Any], prev_hash: str, key: bytes | None = None) -> str:
    """The row's hash under its ``hash_algorithm`` (``key`` needed for hmac-sha256)."""
    data = (canonical(row) + prev_hash).encode()
    if row.get("hash_algorithm") == KEYED:
        if key is None:
            raise AuditTrailError("an hmac-sha256 entry needs the trail key")
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class TrailHead:
    """A run's head: how many rows, the newest row's hash, and whether the run completed."""

    audit_run_id: str
    rows: int
    last_hash: str
    hash_algorithm: str
    completed: bool = False

    def as_state(self) -> dict[str, Any]:
        """The head as kept in a run's workflow state (``intermediate_results["trail_head"]``)."""
        return {
            "rows": self.rows,
            "last_hash": self.last_hash,
            "hash_algorithm": self.hash_algorithm,
            "completed": self.completed,
        }

    @classmethod
    def from_state(cls, audit_run_id: str, state: Mapping[str, Any]) -> TrailHead | None:
        """The head a workflow state holds under ``"trail_head"``, or None when it has none."""
        data = state.get("trail_head")
        if not isinstance(data, Mapping):
            return None
        try:
            return cls(
                audit_run_id=audit_run_id,
                rows=int(data["rows"]),
                last_hash=str(data["last_hash"]),
                hash_algorithm=str(data["hash_algorithm"]),
                completed=bool(data.get("completed", False)),
            )
        except (KeyError, TypeError, ValueError):
            return None


def _statement_body(head: TrailHead) -> dict[str, Any]:
    return {
        "statement": STATEMENT_KIND,
        "audit_run_id": head.audit_run_id,
        "rows": head.rows,
        "last_hash": head.last_hash,
        "hash_algorithm": head.hash_algorithm,
        "completed": head.completed,
    }


def _mac(body: Mapping[str, Any], key: bytes) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def head_statement(head: TrailHead, key: str | bytes | None = None) -> str:
    """The head as a small JSON statement to publish (ticket, WORM bucket, email).

    With a key it carries ``"mac": "hmac-sha256:<hex>"`` over the other fields, so a
    statement cannot be altered without the key either.
    """
    body = _statement_body(head)
    secret = as_key(key)
    body["mac"] = None if secret is None else f"{KEYED}:{_mac(_statement_body(head), secret)}"
    return json.dumps(body, sort_keys=True, indent=2) + "\n"


def parse_head_statement(text: str, key: str | bytes | None = None) -> TrailHead:
    """Read a statement; with a key, its MAC must verify (`TrailVerificationError`)."""
    try:
        data = json.loads(text)
        head = TrailHead(
            audit_run_id=str(data["audit_run_id"]),
            rows=int(data["rows"]),
            last_hash=str(data["last_hash"]),
            hash_algorithm=str(data["hash_algorithm"]),
            completed=bool(data["completed"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise TrailVerificationError(f"unreadable head statement: {exc}") from None
    if data.get("statement") != STATEMENT_KIND:
        raise TrailVerificationError(f"not a trail head statement (no {STATEMENT_KIND!r})")
    secret = as_key(key)
    if secret is not None:
        mac = data.get("mac")
        expected = f"{KEYED}:{_mac(_statement_body(head), secret)}"
        if not isinstance(mac, str) or not hmac.compare_digest(mac, expected):
            raise TrailVerificationError(
                "the head statement's signature does not verify with this key",
                run_id=head.audit_run_id,
            )
    return head


Status = Literal["ok", "incomplete", "tampered"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TrailVerification:
    """The verdict on one run's trail.

    ``status`` is ``"ok"`` (intact and completed), ``"incomplete"`` (intact so far, but
    the run never completed) or ``"tampered"`` (edited, removed, reordered, forged or
    cut off; ``first_bad_sequence`` names the row). ``unkeyed_only`` is true when the
    entries are HMACs that could not be recomputed without the key: links, heads, any
    published head, and that no entry is a plain hash were checked, the HMACs were not.
    """

    status: Status
    rows: int
    first_bad_sequence: int | None = None
    problem: str | None = None
    keyed: bool = False
    unkeyed_only: bool = False
    head_rows: int | None = None
    audit_run_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def raise_for_tampering(self) -> None:
        """`TrailVerificationError` (with ``run_id`` and ``sequence``) when tampered."""
        if self.status == "tampered":
            raise TrailVerificationError(
                f"audit trail of run {self.audit_run_id!r} failed verification: {self.problem}",
                run_id=self.audit_run_id,
                sequence=self.first_bad_sequence,
            )

    @property
    def intact(self) -> bool:
        """No tampering found (the run may still be incomplete)."""
        return self.status != "tampered"

    def __bool__(self) -> bool:
        return self.ok


@dataclass(slots=True)
class _Check:
    rows: Sequence[Mapping[str, Any]]
    key: bytes | None
    unkeyed_only: bool = False

    def verdict(
        self, status: Status, sequence: int | None = None, problem: str | None = None, **extra: Any
    ) -> TrailVerification:
        return TrailVerification(
            status=status,
            rows=len(self.rows),
            first_bad_sequence=sequence,
            problem=problem,
            keyed=self.key is not None,
            unkeyed_only=self.unkeyed_only,
            **extra,
        )

    def _place_by_link(self, row: Mapping[str, Any]) -> int:
        """Where a row without a usable number sits in the chain: after the row whose
        hash it links to (1 when it links to the genesis)."""
        if row.get("prev_hash") == GENESIS:
            return 1
        for other in self.rows:
            if other.get("entry_hash") == row.get("prev_hash"):
                before = whole_number(other.get("log_sequence_number"))
                if before is not None:
                    return before + 1
        return 0

    def walk(self) -> TrailVerification | None:
        """Every row in place, linked to the one before, and hashed as stored."""
        prev, previous_algorithm = GENESIS, None
        for index, row in enumerate(self.rows):
            expected = index + 1
            sequence = whole_number(row["log_sequence_number"])
            if sequence is None:
                place = self._place_by_link(row)
                problem = (
                    f"row {place} has no whole log_sequence_number ({row['log_sequence_number']!r})"
                )
                return self.verdict("tampered", place, problem)
            if sequence != expected:
                problem = (
                    f"row {expected} is missing (the next row found is {sequence})"
                    if sequence > expected
                    else f"row {sequence} appears twice"
                )
                return self.verdict("tampered", expected, problem)
            algorithm = row.get("hash_algorithm")
            bad = _algorithm_problem(algorithm, previous_algorithm, self.key)
            if bad:
                return self.verdict("tampered", sequence, f"row {sequence} {bad}")
            previous_algorithm = algorithm
            if row["prev_hash"] != prev:
                problem = (
                    f"row {sequence} does not follow row {sequence - 1}: "
                    "a row was removed, inserted or reordered"
                )
                return self.verdict("tampered", sequence, problem)
            if algorithm == KEYED and self.key is None:
                if _plain(row, prev):
                    return self.relabelled()
                self.unkeyed_only = True
            elif recomputed(row, prev, self.key) != row["entry_hash"]:
                if algorithm == KEYED and any(_plain(r, r["prev_hash"]) for r in self.rows):
                    return self.relabelled()
                return self.verdict("tampered", sequence, f"row {sequence} was altered")
            prev = row["entry_hash"]
        return None

    def relabelled(self) -> TrailVerification:
        """Entries labelled HMACs that are plain hashes: an unkeyed trail relabelled, which
        would otherwise pass unchecked without the key. Names the first row that no
        longer chains as plain SHA-256 (an edit made under the label), else row 1."""
        relabelled = f"an unkeyed trail relabelled {KEYED} (plain SHA-256 entries, not HMACs)"
        prev = GENESIS
        for sequence, row in enumerate(self.rows, start=1):
            if not _plain(row, prev):
                return self.verdict(
                    "tampered", sequence, f"row {sequence} was altered in {relabelled}"
                )
            prev = row["entry_hash"]
        return self.verdict("tampered", 1, f"row 1 on is {relabelled}")

    def against(self, head: TrailHead, source: str) -> TrailVerification | None:
        """The trail agrees with a head: long enough, same hash at that row, same algorithm."""
        count = len(self.rows)
        if head.rows > count:
            problem = f"truncated: the trail ends at row {count} but {source} records {head.rows}"
            return self.verdict("tampered", count + 1, problem)
        if head.rows == 0:
            return None
        row = self.rows[head.rows - 1]
        if row["entry_hash"] != head.last_hash or row.get("hash_algorithm") != head.hash_algorithm:
            problem = f"row {head.rows} does not match {source} (recorded at {head.rows} rows)"
            return self.verdict("tampered", head.rows, problem)
        if head.completed and count > head.rows:
            problem = f"row {head.rows + 1} was added after {source} closed the run"
            return self.verdict("tampered", head.rows + 1, problem)
        return None


def recomputed(row: Mapping[str, Any], prev: str, key: bytes | None) -> str | None:
    """The row's hash, or None when a value cannot be read the way it was hashed."""
    try:
        return entry_hash(row, prev, key)
    except (ValueError, TypeError, ArithmeticError):
        return None


def _plain(row: Mapping[str, Any], prev: str) -> bool:
    """The row's stored hash is an unkeyed one (sha256 or sha256-v1), whatever its label.

    An HMAC equal to the plain hash of the same data does not happen by chance."""
    return any(
        recomputed({**row, "hash_algorithm": algorithm}, prev, None) == row["entry_hash"]
        for algorithm in ("sha256", "sha256-v1")
    )


def _algorithm_problem(algorithm: Any, previous: Any, key: bytes | None) -> str | None:
    if algorithm not in ("sha256-v1", "sha256", KEYED):
        return f"has an unknown hash algorithm {algorithm!r}"
    if key is not None and algorithm != KEYED:
        return f"is not keyed ({algorithm}): a keyed check needs every entry to be an HMAC"
    if (
        previous is None
        or previous == algorithm
        or (previous, algorithm) == ("sha256-v1", "sha256")
    ):
        return None
    return f"switches the chain from {previous} to {algorithm}"


def verify_chain(
    rows: Sequence[Mapping[str, Any]],
    heads: Sequence[TrailHead] = (),
    *,
    key: str | bytes | None = None,
    expected_rows: int | None = None,
    statement: TrailHead | None = None,
    state_head: TrailHead | None = None,
    retyped: Sequence[str] = (),
) -> TrailVerification:
    """Check a run's rows (ordered by ``log_sequence_number``) against its heads.

    ``heads`` are the run's rows of ``audit_trail_heads``; ``expected_rows`` what an
    in-process writer knows it wrote; ``statement`` a published head; ``state_head`` the
    head kept in the run's workflow state. With ``key`` every entry must be an HMAC
    under it. A head kept outside the trail that says the run completed, while no
    completed head is stored with it, means stored heads were removed: tampered.
    ``retyped`` describes columns whose type is not the schema's: tampered from row 1
    on, unless a row that no longer matches its hash is named first.
    """
    check = _Check(rows, as_key(key))
    found = check.walk()
    if found is not None:
        return found
    outside = [
        (head, source)
        for head, source in (
            (statement, "the published head"),
            (state_head, "the head in the run's workflow state"),
        )
        if head is not None
    ]
    for head, source in [(h, "the head stored with the trail") for h in heads] + outside:
        found = check.against(head, source)
        if found is not None:
            return found
    count = len(rows)
    if expected_rows is not None and count < expected_rows:
        problem = f"truncated: the trail ends at row {count} but this writer wrote {expected_rows}"
        return check.verdict("tampered", count + 1, problem)
    latest = max(heads, key=lambda h: (h.rows, h.completed), default=None)
    head_rows = None if latest is None else latest.rows
    for head, source in outside:
        if head.completed and (latest is None or not latest.completed):
            problem = (
                f"{source} says the run completed at row {head.rows}, "
                "but no completed head is stored with the trail"
            )
            return check.verdict("tampered", head.rows, problem, head_rows=head_rows)
    if retyped:
        problem = (
            f"{'; '.join(retyped)}: a column's type was changed since the schema created it, "
            "so no stored value can be vouched for"
        )
        return check.verdict("tampered", 1, problem, head_rows=head_rows)
    if latest is None:
        return check.verdict("incomplete", None, "no head recorded: the run never completed")
    if not latest.completed:
        problem = f"the run never completed (last head at row {latest.rows} of {count})"
        return check.verdict("incomplete", None, problem, head_rows=head_rows)
    return check.verdict("ok", head_rows=head_rows)
