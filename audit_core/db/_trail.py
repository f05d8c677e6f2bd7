"""A tamper-evident, hash-chained audit trail written in batches through the warehouse.

Each row carries ``prev_hash`` and ``entry_hash = SHA-256(canonical JSON of the row's
columns + prev_hash)``; the first row of a run chains from 64 zeros. Sequence numbers
are handed out synchronously on the event loop, so they are gap-free and strictly
increasing per run under any number of concurrent ``record`` calls. The canonical form
is what survives a round trip through any of the three databases (UTC timestamps with
microseconds, costs at 6 decimal places, integers as integers), so `verify` recomputes
the same hashes from what it reads back.

`verify` reports the first row that was altered (hash mismatch), removed (a gap, a
broken link, or a trail shorter than this writer knows it to be) or reordered (a broken
link). A removal of the newest rows is only visible to a verifier that knows how long
the trail was: this writer does, and so does anyone who kept `head` (count and hash).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from audit_core._logging import get_logger
from audit_core.errors import AuditTrailError

if TYPE_CHECKING:
    from audit_core.warehouse import DatabricksClient

_log = get_logger("audit_core.trail")
GENESIS = "0" * 64
COLUMNS = (
    "audit_run_id", "sequence_number", "recorded_at", "agent_name", "tool_called",
    "input_data", "output_summary", "execution_time_ms", "llm_model", "llm_tokens_used",
    "llm_cost_dollars", "error", "decision_chain", "prev_hash", "entry_hash",
)  # fmt: skip
_HASHED = COLUMNS[:-2]
_COST_PLACES = Decimal("0.000001")
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class TrailVerification:
    """The result of `AuditTrail.verify`: true when the whole chain checks out."""

    ok: bool
    rows: int
    first_bad_sequence: int | None = None
    problem: str | None = None

    def __bool__(self) -> bool:
        return self.ok


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _canonical(row: Mapping[str, Any]) -> str:
    """The row's hashed columns as canonical JSON, stable across database round trips."""
    out: dict[str, Any] = {}
    for column in _HASHED:
        value = row.get(column)
        if value is None:
            out[column] = None
        elif column == "recorded_at":
            stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=UTC)
            out[column] = stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        elif column == "llm_cost_dollars":
            out[column] = format(Decimal(str(value)).quantize(_COST_PLACES), "f")
        elif column in ("sequence_number", "execution_time_ms", "llm_tokens_used"):
            out[column] = int(value)
        else:
            out[column] = str(value)
    return json.dumps(out, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(row: Mapping[str, Any], prev_hash: str) -> str:
    """SHA-256 over the row's canonical JSON followed by the previous row's hash."""
    return hashlib.sha256((_canonical(row) + prev_hash).encode()).hexdigest()


class AuditTrail:
    """Append-only, hash-chained record of what each agent did in one audit run."""

    def __init__(
        self,
        warehouse: DatabricksClient,
        audit_run_id: str,
        *,
        batch_size: int = 200,
        table: str = "audit_trail",
        now: Callable[[], float] = time.time,
    ) -> None:
        if not audit_run_id or not isinstance(audit_run_id, str):
            raise AuditTrailError("audit_run_id must be a non-empty string")
        if batch_size < 1:
            raise AuditTrailError(f"batch_size must be at least 1, got {batch_size}")
        self.warehouse = warehouse
        self.audit_run_id = audit_run_id
        self.batch_size = batch_size
        self.table = table
        self._now = now
        self._buffer: list[dict[str, Any]] = []
        self._next: int | None = None
        self._head = GENESIS
        self._load_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._closed = False
        self._insert = (
            f"INSERT INTO {table} ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join(':' + c for c in COLUMNS)})"
        )

    @property
    def head(self) -> tuple[int, str]:
        """(rows recorded so far, hash of the newest row): keep it to detect truncation."""
        return (0 if self._next is None else self._next - 1), self._head

    @property
    def pending(self) -> int:
        """Rows recorded but not yet written."""
        return len(self._buffer)

    async def __aenter__(self) -> AuditTrail:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Write everything pending (safe to call twice)."""
        if not self._closed:
            await self.flush()
            self._closed = True

    async def _load_head(self) -> None:
        """Continue an existing run's chain (a resumed run appends, never restarts)."""
        async with self._load_lock:
            if self._next is not None:
                return
            table = await self.warehouse.query_arrow(
                f"SELECT sequence_number, entry_hash FROM {self.table} "
                "WHERE audit_run_id = :run ORDER BY sequence_number DESC LIMIT 1",
                {"run": self.audit_run_id},
            )
            if table.num_rows:
                last = table.to_pylist()[0]
                self._next, self._head = int(last["sequence_number"]) + 1, str(last["entry_hash"])
            else:
                self._next = 1

    async def record(
        self,
        agent_name: str,
        tool_called: str,
        *,
        input_data: Any = None,
        output_summary: str | None = None,
        execution_time_ms: int | float | None = None,
        llm_model: str | None = None,
        llm_tokens_used: int | None = None,
        llm_cost_dollars: Decimal | None = None,
        error: str | None = None,
        decision_chain: Any = None,
    ) -> int:
        """Append one entry; returns its sequence number. Written at the next batch/flush."""
        if self._closed:
            raise AuditTrailError("the audit trail is closed")
        if not agent_name or not tool_called:
            raise AuditTrailError("agent_name and tool_called must be non-empty")
        for name, number in (
            ("execution_time_ms", execution_time_ms),
            ("llm_tokens_used", llm_tokens_used),
        ):
            if number is not None and number < 0:
                raise AuditTrailError(f"{name} must be >= 0, got {number}")
        if llm_cost_dollars is not None:
            if isinstance(llm_cost_dollars, float):
                raise AuditTrailError("llm_cost_dollars must be a Decimal, not a float")
            llm_cost_dollars = Decimal(llm_cost_dollars).quantize(_COST_PLACES)
            if llm_cost_dollars < 0:
                raise AuditTrailError(f"llm_cost_dollars must be >= 0, got {llm_cost_dollars}")
        try:
            input_text, chain_text = _json_text(input_data), _json_text(decision_chain)
        except TypeError as exc:
            raise AuditTrailError(f"trail data is not JSON-serialisable: {exc}") from None
        if self._next is None:
            await self._load_head()
        assert self._next is not None
        # From here to the append nothing awaits: numbering and chaining are atomic.
        sequence = self._next
        self._next += 1
        row: dict[str, Any] = {
            "audit_run_id": self.audit_run_id,
            "sequence_number": sequence,
            "recorded_at": datetime.fromtimestamp(self._now(), UTC),
            "agent_name": agent_name,
            "tool_called": tool_called,
            "input_data": input_text,
            "output_summary": output_summary,
            "execution_time_ms": None if execution_time_ms is None else round(execution_time_ms),
            "llm_model": llm_model,
            "llm_tokens_used": llm_tokens_used,
            "llm_cost_dollars": llm_cost_dollars,
            "error": error,
            "decision_chain": chain_text,
            "prev_hash": self._head,
        }
        row["entry_hash"] = self._head = entry_hash(row, self._head)
        self._buffer.append(row)
        if len(self._buffer) >= self.batch_size:
            await self.flush()
        return sequence

    async def flush(self) -> int:
        """Write every pending row (in sequence order); rows stay pending if it fails."""
        async with self._flush_lock:
            rows, self._buffer = self._buffer, []
            if not rows:
                return 0
            try:
                await self.warehouse.executemany(self._insert, rows)
            except BaseException:
                self._buffer[:0] = rows  # keep them, in order, for the next flush
                raise
            return len(rows)

    async def verify(self, *, expected_rows: int | None = None) -> TrailVerification:
        """Re-read the run and check every link; the first bad row is named.

        ``expected_rows`` defaults to what this writer knows it wrote, so a trail missing
        its newest rows fails too.
        """
        await self.flush()
        table = await self.warehouse.query_arrow(
            f"SELECT {', '.join(COLUMNS)} FROM {self.table} "
            "WHERE audit_run_id = :run ORDER BY sequence_number",
            {"run": self.audit_run_id},
        )
        rows = table.to_pylist()
        if expected_rows is None and self._next is not None:
            expected_rows = self._next - 1
        return verify_rows(rows, expected_rows)

    def trace(self, agent_name: str, tool_called: str, *, input_data: Any = None) -> Trace:
        """Time a tool call and record it (error and stack trace included if it raises).

        ``async with trail.trace("agent", "tool") as t: ...; t.output_summary = "..."``,
        or as a decorator on an async function: ``@trail.trace("agent", "tool")``.
        """
        return Trace(self, agent_name, tool_called, input_data)


def verify_rows(rows: list[dict[str, Any]], expected_rows: int | None = None) -> TrailVerification:
    """Check a run's rows (ordered by sequence number) link by link."""
    prev = GENESIS
    for index, row in enumerate(rows):
        expected = index + 1
        sequence = int(row["sequence_number"])
        if sequence != expected:
            problem = (
                f"row {expected} is missing (next row found is {sequence})"
                if sequence > expected
                else f"row {sequence} appears twice"
            )
            return TrailVerification(False, len(rows), expected, problem)
        if row["prev_hash"] != prev:
            return TrailVerification(
                False, len(rows), sequence,
                f"row {sequence} does not follow row {sequence - 1}: "
                "a row was removed or reordered",
            )  # fmt: skip
        if entry_hash(row, prev) != row["entry_hash"]:
            return TrailVerification(False, len(rows), sequence, f"row {sequence} was altered")
        prev = row["entry_hash"]
    if expected_rows is not None and len(rows) < expected_rows:
        return TrailVerification(
            False, len(rows), len(rows) + 1,
            f"the trail ends at row {len(rows)} but {expected_rows} were written",
        )  # fmt: skip
    return TrailVerification(True, len(rows))


class Trace:
    """Context manager / decorator made by `AuditTrail.trace`."""

    def __init__(self, trail: AuditTrail, agent: str, tool: str, input_data: Any) -> None:
        self.trail = trail
        self.agent = agent
        self.tool = tool
        self.input_data = input_data
        self.output_summary: str | None = None
        self.decision_chain: Any = None
        self._started = 0.0

    async def __aenter__(self) -> Trace:
        self._started = time.perf_counter()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        elapsed_ms = (time.perf_counter() - self._started) * 1000
        error = None
        if e is not None:
            error = "".join(traceback.format_exception(et, e, tb))
        await self.trail.record(
            self.agent, self.tool, input_data=self.input_data, output_summary=self.output_summary,
            execution_time_ms=elapsed_ms, error=error, decision_chain=self.decision_chain,
        )  # fmt: skip

    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            async with Trace(self.trail, self.agent, self.tool, self.input_data):
                return await fn(*args, **kwargs)

        return wrapper
