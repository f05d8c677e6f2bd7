"""A tamper-evident, hash-chained audit trail written in batches through the warehouse.

Rows use the original ``audit_trail`` columns (``log_sequence_number``, ``timestamp``,
``error_message``, ``error_stack_trace``, ...) plus the chain (``hash_algorithm``,
``prev_hash``, ``entry_hash``; see ``audit_core.db._chain``). Sequence numbers are handed
out synchronously on the event loop, so they are gap-free and strictly increasing per
run under any number of concurrent ``record`` calls.

Each flush writes the pending rows (one transaction) and then appends the run's head
(rows, last hash) to ``audit_trail_heads``; `complete` appends the final head, marked
completed. A crash between the two leaves rows the head does not cover yet, which
verifies as *incomplete*, never as intact and complete. With a key (``key=``, or
``AUDIT_TRAIL_KEY`` through `AuditTrail.from_env`) every entry hash is an HMAC-SHA256.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar

from audit_core._arrow import rows as arrow_rows
from audit_core._lifecycle import AsyncLifecycle
from audit_core.db._chain import (
    COST_PLACES,
    GENESIS,
    KEYED,
    TRAIL_COLUMNS,
    TrailHead,
    TrailVerification,
    as_key,
    entry_hash,
    recomputed,
    verify_chain,
    whole_number,
)
from audit_core.db._json import json_text
from audit_core.db._layout import AUDIT_TRAIL, AUDIT_TRAIL_HEADS
from audit_core.db._tables import translate
from audit_core.errors import AuditTrailError, QueryError

if TYPE_CHECKING:
    from audit_core.db._reader import Reader
    from audit_core.warehouse import DatabricksClient

__all__ = [
    "TRAIL_KEY_ENV",
    "AuditTrail",
    "Trace",
    "column_drift",
    "read_head",
    "read_run",
    "read_state_head",
    "verify_run",
]

TRAIL_KEY_ENV = "AUDIT_TRAIL_KEY"
HEADS_TABLE = "audit_trail_heads"
STATE_TABLE = "workflow_state"
_HEAD_COLUMNS = (
    "audit_run_id",
    "row_count",
    "last_hash",
    "hash_algorithm",
    "completed",
    "recorded_at",
)
# How DuckDB's information_schema names a type the layout spells otherwise.
_DUCKDB_TYPE_NAMES = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}
P = ParamSpec("P")
R = TypeVar("R")


def _checked_cost(cost: Decimal | None) -> Decimal | None:
    if cost is None:
        return None
    if isinstance(cost, float):
        raise AuditTrailError("llm_cost_dollars must be a Decimal, not a float")
    cost = Decimal(cost).quantize(COST_PLACES)
    if cost < 0:
        raise AuditTrailError(f"llm_cost_dollars must be >= 0, got {cost}")
    return cost


class AuditTrail(AsyncLifecycle):
    """Append-only, hash-chained record of what each agent did in one audit run."""

    def __init__(
        self,
        warehouse: DatabricksClient,
        audit_run_id: str,
        *,
        key: str | bytes | None = None,
        batch_size: int = 200,
        table: str = "audit_trail",
        heads_table: str = HEADS_TABLE,
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
        self.heads_table = heads_table
        self._key = as_key(key)
        self.hash_algorithm = KEYED if self._key is not None else "sha256"
        self._now = now
        self._buffer: list[dict[str, Any]] = []
        self._next: int | None = None
        self._head = GENESIS
        self._head_algorithm = self.hash_algorithm  # the newest row's (a resumed v1 run's)
        self._written = (0, GENESIS, self.hash_algorithm)  # the newest row in the table
        self._head_due = False  # rows written that no head covers yet
        self._completed = False
        self._completing = False
        self._load_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._insert = (
            f"INSERT INTO {table} ({', '.join(TRAIL_COLUMNS)}) "
            f"VALUES ({', '.join(':' + c for c in TRAIL_COLUMNS)})"
        )
        self._insert_head = (
            f"INSERT INTO {heads_table} ({', '.join(_HEAD_COLUMNS)}) "
            f"VALUES ({', '.join(':' + c for c in _HEAD_COLUMNS)})"
        )

    @classmethod
    def from_env(
        cls,
        warehouse: DatabricksClient,
        audit_run_id: str,
        *,
        environ: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """The trail keyed by ``AUDIT_TRAIL_KEY`` when it is set (unkeyed otherwise)."""
        env = os.environ if environ is None else environ
        return cls(warehouse, audit_run_id, key=env.get(TRAIL_KEY_ENV) or None, **kwargs)

    @property
    def keyed(self) -> bool:
        return self._key is not None

    @property
    def head(self) -> TrailHead:
        """Rows recorded so far (written or pending) and the newest row's hash."""
        rows = 0 if self._next is None else self._next - 1
        return TrailHead(
            audit_run_id=self.audit_run_id,
            rows=rows,
            last_hash=self._head,
            hash_algorithm=self._head_algorithm,
            completed=self._completed,
        )

    @property
    def pending(self) -> int:
        """Rows recorded but not yet written."""
        return len(self._buffer)

    async def _aclose_resources(self) -> None:
        await self.flush()

    async def _load_head(self) -> None:
        """Continue an existing run's chain (a resumed run appends, never restarts)."""
        async with self._load_lock:
            if self._next is not None:
                return
            table = await self.warehouse.query_arrow(
                f"SELECT {', '.join(TRAIL_COLUMNS)} FROM {self.table} "
                "WHERE audit_run_id = :run ORDER BY log_sequence_number DESC LIMIT 1",
                {"run": self.audit_run_id},
            )
            if not table.num_rows:
                self._next = 1
                return
            last = arrow_rows(table)[0]
            self._check_resumable(last)
            done = await self.warehouse.query_arrow(
                f"SELECT count(*) AS n FROM {self.heads_table} "
                "WHERE audit_run_id = :run AND completed",
                {"run": self.audit_run_id},
            )
            if done.column(0)[0].as_py():
                raise AuditTrailError(
                    f"run {self.audit_run_id!r} is completed; its trail takes no more entries",
                    run_id=self.audit_run_id,
                )
            rows = int(last["log_sequence_number"])
            self._next, self._head = rows + 1, str(last["entry_hash"])
            self._head_algorithm = str(last["hash_algorithm"])
            self._written = (rows, self._head, self._head_algorithm)

    def _check_resumable(self, last: Mapping[str, Any]) -> None:
        """Refuse to extend a chain this writer's key (or lack of one) cannot continue."""
        existing = last["hash_algorithm"]
        if (existing == KEYED) != self.keyed:
            wanted = "needs the key it was written with" if existing == KEYED else "is not keyed"
            raise AuditTrailError(
                f"the trail of run {self.audit_run_id!r} {wanted}; "
                f"resume it {'with' if existing == KEYED else 'without'} {TRAIL_KEY_ENV}",
                run_id=self.audit_run_id,
            )
        if self.keyed and recomputed(last, str(last["prev_hash"]), self._key) != last["entry_hash"]:
            raise AuditTrailError(
                f"the trail of run {self.audit_run_id!r} was written with another key",
                run_id=self.audit_run_id,
            )

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
        error_message: str | None = None,
        error_stack_trace: str | None = None,
        decision_chain: Any = None,
        error: str | None = None,
    ) -> int:
        """Append one entry; returns its ``log_sequence_number``. Written at the next flush.

        ``error`` is the version-1 spelling of ``error_message``.
        """
        self._check_open()
        self._check_not_completed()
        if not agent_name or not tool_called:
            raise AuditTrailError("agent_name and tool_called must be non-empty")
        for name, number in (
            ("execution_time_ms", execution_time_ms),
            ("llm_tokens_used", llm_tokens_used),
        ):
            if number is not None and number < 0:
                raise AuditTrailError(f"{name} must be >= 0, got {number}")
        cost = _checked_cost(llm_cost_dollars)
        try:
            input_text, chain_text = json_text(input_data), json_text(decision_chain)
        except TypeError as exc:
            raise AuditTrailError(f"trail data is not JSON-serialisable: {exc}") from None
        if self._next is None:
            await self._load_head()
            self._check_not_completed()  # complete() may have begun while the head loaded
        assert self._next is not None
        # From here to the append nothing awaits: numbering and chaining are atomic.
        sequence = self._next
        self._next += 1
        row: dict[str, Any] = {
            "audit_run_id": self.audit_run_id,
            "log_sequence_number": sequence,
            "agent_name": agent_name,
            "tool_called": tool_called,
            "timestamp": datetime.fromtimestamp(self._now(), UTC),
            "execution_time_ms": None if execution_time_ms is None else round(execution_time_ms),
            "input_data": input_text,
            "output_summary": output_summary,
            "llm_model": llm_model,
            "llm_tokens_used": llm_tokens_used,
            "llm_cost_dollars": cost,
            "error_message": error_message if error_message is not None else error,
            "error_stack_trace": error_stack_trace,
            "decision_chain": chain_text,
            "hash_algorithm": self.hash_algorithm,
            "prev_hash": self._head,
        }
        row["entry_hash"] = self._head = entry_hash(row, self._head, self._key)
        self._head_algorithm = self.hash_algorithm
        self._buffer.append(row)
        if len(self._buffer) >= self.batch_size:
            await self.flush()
        return sequence

    async def flush(self) -> int:
        """Write every pending row (in order), then the run's head; returns rows written.

        Rows stay pending if their write fails; a head that fails to write is retried at
        the next flush.
        """
        self._check_open()
        async with self._flush_lock:
            rows, self._buffer = self._buffer, []
            if rows:
                try:
                    await self.warehouse.executemany(self._insert, rows)
                except BaseException:
                    self._buffer[:0] = rows  # keep them, in order, for the next flush
                    raise
                last = rows[-1]
                self._written = (
                    int(last["log_sequence_number"]),
                    str(last["entry_hash"]),
                    str(last["hash_algorithm"]),
                )
                self._head_due = True
            if self._head_due:
                await self._append_head(completed=False)
            return len(rows)

    async def _append_head(self, *, completed: bool) -> None:
        rows, last_hash, algorithm = self._written
        await self.warehouse.execute(
            self._insert_head,
            {
                "audit_run_id": self.audit_run_id,
                "row_count": rows,
                "last_hash": last_hash,
                "hash_algorithm": algorithm,
                "completed": completed,
                "recorded_at": datetime.fromtimestamp(self._now(), UTC),
            },
        )
        self._head_due = False

    async def complete(self) -> TrailHead:
        """Flush and append the final head, marked completed; the trail takes no more rows.

        Safe to call twice. Returns the final head (publish it with `head_statement`).
        """
        if self._completed:
            return self.head
        if self._next is None:
            await self._load_head()
        self._completing = True  # from here on, record() refuses: nothing lands after the head
        try:
            await self.flush()
            await self._append_head(completed=True)
        except BaseException:
            self._completing = False
            raise
        self._completed = True
        return self.head

    def _check_not_completed(self) -> None:
        if self._completed or self._completing:
            raise AuditTrailError(
                f"run {self.audit_run_id!r} is completed; its trail takes no more entries",
                run_id=self.audit_run_id,
            )

    async def verify(
        self, *, expected_rows: int | None = None, statement: TrailHead | None = None
    ) -> TrailVerification:
        """Re-read the run and check every link and head; the first bad row is named.

        ``expected_rows`` defaults to what this writer knows it wrote, so a trail missing
        its newest rows fails even before the next head is written.
        """
        if not self.closed:
            await self.flush()
        if expected_rows is None and self._next is not None:
            expected_rows = self._next - 1
        return await verify_run(
            self.warehouse,
            self.audit_run_id,
            key=self._key,
            expected_rows=expected_rows,
            statement=statement,
            table=self.table,
            heads_table=self.heads_table,
        )

    def trace(self, agent_name: str, tool_called: str, *, input_data: Any = None) -> Trace:
        """Time a tool call and record it (error and stack trace included if it raises).

        ``async with trail.trace("agent", "tool") as t: ...; t.output_summary = "..."``,
        or as a decorator on an async function: ``@trail.trace("agent", "tool")``.
        """
        return Trace(self, agent_name, tool_called, input_data)


async def read_run(
    reader: Reader, audit_run_id: str, *, table: str = "audit_trail", heads_table: str = HEADS_TABLE
) -> tuple[list[dict[str, Any]], list[TrailHead]]:
    """A run's trail rows (in sequence order) and its heads, from any reader."""
    rows = await reader.query_arrow(
        f"SELECT {', '.join(TRAIL_COLUMNS)} FROM {table} "
        "WHERE audit_run_id = :run ORDER BY log_sequence_number",
        {"run": audit_run_id},
    )
    heads = await reader.query_arrow(
        f"SELECT row_count, last_hash, hash_algorithm, completed FROM {heads_table} "
        "WHERE audit_run_id = :run ORDER BY row_count, completed",
        {"run": audit_run_id},
    )
    return arrow_rows(rows), [
        TrailHead(
            audit_run_id=audit_run_id,
            rows=_head_rows(h["row_count"]),
            last_hash=str(h["last_hash"]),
            hash_algorithm=str(h["hash_algorithm"]),
            completed=bool(h["completed"]),
        )
        for h in arrow_rows(heads)
    ]


def _head_rows(value: Any) -> int:
    """A head's row count; -1 (matching no chain) when it is not a whole number."""
    rows = whole_number(value)
    return -1 if rows is None else rows


async def read_head(
    reader: Reader, audit_run_id: str, *, heads_table: str = HEADS_TABLE
) -> TrailHead | None:
    """The run's newest stored head (completed preferred), or None when it has none."""
    table = await reader.query_arrow(
        f"SELECT row_count, last_hash, hash_algorithm, completed FROM {heads_table} "
        "WHERE audit_run_id = :run ORDER BY row_count DESC, completed DESC LIMIT 1",
        {"run": audit_run_id},
    )
    if not table.num_rows:
        return None
    h = arrow_rows(table)[0]
    return TrailHead(
        audit_run_id=audit_run_id,
        rows=_head_rows(h["row_count"]),
        last_hash=str(h["last_hash"]),
        hash_algorithm=str(h["hash_algorithm"]),
        completed=bool(h["completed"]),
    )


async def read_state_head(
    reader: Reader, audit_run_id: str, *, state_table: str = STATE_TABLE
) -> TrailHead | None:
    """The head kept in the run's workflow state (``intermediate_results["trail_head"]``)."""
    try:
        table = await reader.query_arrow(
            f"SELECT intermediate_results FROM {state_table} WHERE audit_run_id = :run",
            {"run": audit_run_id},
        )
    except QueryError:
        return None  # no workflow_state table here: nothing to compare with
    if not table.num_rows:
        return None
    try:
        state = json.loads(table.column(0)[0].as_py() or "{}")
    except ValueError:
        return None
    return TrailHead.from_state(audit_run_id, state) if isinstance(state, dict) else None


async def column_drift(reader: Reader) -> tuple[list[str], list[str]]:
    """The trail's and heads' columns in a DuckDB database that differ from the schema:
    (missing, retyped), each as ``"audit_trail.output_summary"`` and
    ``"audit_trail.timestamp is TIMESTAMP_NS, not TIMESTAMP WITH TIME ZONE"``.

    The writer never changes a type; a table rebuilt with a wider one can hold values
    the canonical form would read as the ones that were hashed.
    """
    found = await reader.query_arrow(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_name IN (:trail, :heads) AND table_catalog = current_database() "
        "AND table_schema = current_schema()",  # the tables read, not a same-named copy
        {"trail": AUDIT_TRAIL.name, "heads": AUDIT_TRAIL_HEADS.name},
    )
    types = {(r["table_name"], r["column_name"]): r["data_type"] for r in found.to_pylist()}
    missing, retyped = [], []
    for table in (AUDIT_TRAIL, AUDIT_TRAIL_HEADS):
        for column in table.columns:
            wanted = translate(column.pg_type, "duckdb")
            wanted = _DUCKDB_TYPE_NAMES.get(wanted, wanted)
            actual = types.get((table.name, column.name))
            if actual is None:
                missing.append(f"{table.name}.{column.name}")
            elif actual != wanted:
                retyped.append(f"{table.name}.{column.name} is {actual}, not {wanted}")
    return missing, retyped


async def verify_run(
    reader: Reader,
    audit_run_id: str,
    *,
    key: str | bytes | None = None,
    expected_rows: int | None = None,
    statement: TrailHead | None = None,
    table: str = "audit_trail",
    heads_table: str = HEADS_TABLE,
    state_table: str | None = STATE_TABLE,
    retyped: Sequence[str] = (),
) -> TrailVerification:
    """Verify a stored run from any process (see `verify_chain` for the checks).

    The run's heads, and the head kept in its workflow state (unless ``state_table`` is
    None), are checked along with ``statement``; ``retyped`` is what `column_drift`
    found.
    """
    rows, heads = await read_run(reader, audit_run_id, table=table, heads_table=heads_table)
    state_head = None
    if state_table is not None:
        state_head = await read_state_head(reader, audit_run_id, state_table=state_table)
    result = verify_chain(
        rows,
        heads,
        key=key,
        expected_rows=expected_rows,
        statement=statement,
        state_head=state_head,
        retyped=retyped,
    )
    return replace(result, audit_run_id=audit_run_id)


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
        message = stack = None
        if e is not None:
            message = f"{type(e).__name__}: {e}"
            stack = "".join(traceback.format_exception(et, e, tb))
        await self.trail.record(
            self.agent,
            self.tool,
            input_data=self.input_data,
            output_summary=self.output_summary,
            execution_time_ms=(time.perf_counter() - self._started) * 1000,
            error_message=message,
            error_stack_trace=stack,
            decision_chain=self.decision_chain,
        )

    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            async with Trace(self.trail, self.agent, self.tool, self.input_data):
                return await fn(*args, **kwargs)

        return wrapper
