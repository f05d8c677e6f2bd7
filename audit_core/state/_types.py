"""The store's value types: what it returns, reports and takes as options."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from os import PathLike
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypedDict

import orjson

from audit_core.errors import StateManagerError
from audit_core.state._buffer import UpdateFunction
from audit_core.state._codec import STDLIB, decode_envelope

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from audit_core.retry import RetryPolicy

__all__ = [
    "Changes",
    "FlushReport",
    "RunInfo",
    "Seen",
    "SettingsOptions",
    "StoreOptions",
    "StoredState",
    "UrlOptions",
    "apply_changes",
    "now_text",
]

Changes = Mapping[str, Any] | UpdateFunction


class StoreOptions(TypedDict, total=False):
    """Keyword arguments of `AsyncStateStore` (for ``from_url`` / ``from_settings``)."""

    ttl_s: int
    completed_ttl_s: int
    key_prefix: str
    on_unavailable: Literal["degrade", "raise"]
    max_state_bytes: int
    conflict_retries: int
    probe_interval_s: float
    buffer_path: str | PathLike[str] | None
    retry_policy: RetryPolicy | None
    registry: CollectorRegistry | None
    now: Callable[[], float]
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    rng: Callable[[], float]


class UrlOptions(StoreOptions, total=False):
    """`StoreOptions` plus the connection settings of `AsyncStateStore.from_url`."""

    socket_timeout_s: float
    connect_timeout_s: float
    max_connections: int


class SettingsOptions(UrlOptions, total=False):
    """`UrlOptions` plus ``url``, for `AsyncStateStore.from_settings`."""

    url: str


_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def now_text(now: float) -> str:
    """``now`` as fixed-width UTC text (so two of them compare as text)."""
    global _last_second
    # Every write stamps one, and strftime costs more than the rest of a save's Python
    # work: the current second's text is kept. Microseconds round as datetime rounds them.
    second = math.floor(now)
    micros = round((now - second) * 1_000_000)
    if micros == 1_000_000:
        second, micros = second + 1, 0
    cached, text = _last_second
    if second != cached:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (second, text)
    return f"{text}.{micros:06d}Z"


@dataclass(frozen=True, slots=True)
class StoredState:
    """A run's state with its version and last-write time (``version`` 0: absent)."""

    state: dict[str, Any]
    version: int
    updated_at: str | None


class Seen(NamedTuple):
    """What this process last wrote or read of a run, for the outage fallback.

    Kept as bytes and decoded only when the fallback is read, so a caller mutating the
    dict it saved or restored cannot change what is kept here. A named tuple: two are
    made per save and restore, at half a frozen dataclass's cost.
    """

    version: int
    updated_at: str | None
    raw: bytes  # the state's JSON; with envelope=True the whole stored value
    codec: str
    envelope: bool = False
    server: str | None = None  # the Redis run id it was seen on, to tell a restart
    provisional: bool = False  # written while degraded, not (yet) confirmed by Redis

    def view(self, run_id: str) -> StoredState:
        if self.envelope:
            state = decode_envelope(self.raw, run_id=run_id).state
        elif self.codec == STDLIB:
            state = json.loads(self.raw)
        else:
            state = orjson.loads(self.raw)
        return StoredState(state, self.version, self.updated_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """One run as `AsyncStateStore.list_runs` reports it."""

    run_id: str
    version: int
    updated_at: str | None
    status: str | None


@dataclass(kw_only=True)
class FlushReport:
    """What `AsyncStateStore.flush` did with the writes buffered during an outage.

    ``written``: replayed as they were made. ``restored``: Redis was behind what this
    process had seen (a restart without persistence), so the whole last-known state was
    written back. ``superseded``: a buffered save lost to newer data another process
    wrote. ``conflicts``: a conditional write whose base was no longer current, never
    applied. ``pending``: still waiting for Redis.
    """

    written: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.pending


def apply_changes(changes: Changes, state: dict[str, Any], run_id: str) -> dict[str, Any]:
    """The state after ``changes``: a shallow merge, or the function's result."""
    if isinstance(changes, Mapping):
        return {**state, **changes}
    result = changes(state)
    if not isinstance(result, Mapping):
        raise StateManagerError(
            f"update function returned {type(result).__name__}, not a mapping", run_id=run_id
        )
    return dict(result)
