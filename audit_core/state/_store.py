"""`AsyncStateStore`: resumable workflow state on ``redis.asyncio``.

Layout: one string key per run, ``{prefix}:{run_id}:state``, holding the JSON envelope
``{"version": N, "updated_at": "...", "state": {...}}`` with a TTL. Every write goes
through one Lua script that touches only that key (so the store runs unchanged on Redis
Cluster) and never decodes the state (so big integers and ``[]``/``{}`` stay exact).

``memory://`` is an embedded in-process Redis (fakeredis, Lua included): the same code
path, not durable. ``memory://NAME`` names a separate embedded server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from audit_core import _constants as C
from audit_core._logging import get_logger
from audit_core._settings import redact_url
from audit_core.errors import (
    ConfigError,
    StateConflictError,
    StateManagerError,
    StateStoreUnavailableError,
)
from audit_core.metrics import get_metrics
from audit_core.retry import RetryPolicy, Transient
from audit_core.state._codec import Envelope, decode_envelope, encode_state

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from audit_core._settings import Settings

__all__ = ["AsyncStateStore", "FlushReport", "RunInfo", "RunLock", "StoredState"]

T = TypeVar("T")
_log = get_logger("audit_core.state")

# Run ids may not contain key-pattern or separator characters that could reach another
# run's keys (":", "*", "?", "[", "]", "{", "}", whitespace, backslash).
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,199}$")
DEFAULT_MAX_STATE_BYTES = 8 * 1024 * 1024
DEFAULT_CONFLICT_RETRIES = 32
DEFAULT_PROBE_INTERVAL_S = 1.0
_RECENT_RUNS = 1024
# Set inside a write-through so the reads it does itself do not start another one.
_IN_WRITE_THROUGH: ContextVar[bool] = ContextVar("audit_state_in_write_through", default=False)

# KEYS[1] state key. ARGV: mode ('any' | 'eq' | 'newer'), expected version (for 'eq'),
# state JSON, updated_at (fixed-width UTC, so it compares as text), ttl seconds.
# Returns {1, new_version} when written, {0, current_version} when the condition failed.
# Reads only the envelope's head (GETRANGE), not the whole state: version and updated_at
# sit in its first bytes, so a 100 KB state is not copied into Lua just to be replaced.
_WRITE_LUA = """
local cur = redis.call('GETRANGE', KEYS[1], 0, 79)
if cur == '' then cur = false end
local v = 0
local at = ''
if cur then
  local mv, mat = string.match(cur, '^{"version":(%d+),"updated_at":"([^"]*)"')
  if mv then v = tonumber(mv); at = mat end
end
if ARGV[1] == 'eq' and tonumber(ARGV[2]) ~= v then return {0, v} end
if ARGV[1] == 'newer' and cur and at >= ARGV[4] then return {0, v} end
v = v + 1
redis.call('SET', KEYS[1],
  '{"version":' .. string.format('%d', v) .. ',"updated_at":"' .. ARGV[4] .. '","state":'
  .. ARGV[3] .. '}', 'EX', ARGV[5])
return {1, v}
"""

_UNAVAILABLE = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    ConnectionError,
    TimeoutError,
    OSError,
)
_CLUSTER_TRANSIENT: tuple[type[Exception], ...] = tuple(
    getattr(redis_errors, name)
    for name in ("ClusterDownError", "TryAgainError", "MasterDownError")
    if hasattr(redis_errors, name)
)

_memory_servers: dict[str, Any] = {}


def _classify(exc: Exception) -> Transient | None:
    if isinstance(exc, redis_errors.TimeoutError | TimeoutError):
        return Transient("timeout")
    if isinstance(exc, redis_errors.BusyLoadingError):
        return Transient("loading")
    if isinstance(exc, _CLUSTER_TRANSIENT):
        return Transient("cluster")
    if isinstance(exc, redis_errors.ConnectionError | ConnectionError | OSError):
        return Transient("connection")
    return None


def _now_text(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class StoredState:
    """A run's state with its version and last-write time (``version`` 0: absent)."""

    state: dict[str, Any]
    version: int
    updated_at: str | None


@dataclass(frozen=True, slots=True)
class _Seen:
    """What this process last wrote or read of a run, for the degraded-mode fallback.

    Kept as bytes and decoded only when that fallback is read: a save costs no decode, and
    a caller mutating the dict it saved or restored cannot change what is kept here.
    """

    version: int
    updated_at: str | None
    raw: bytes  # the state's JSON; with stored=True the whole stored value (envelope)
    stored: bool = False

    def view(self, run_id: str) -> StoredState:
        if self.stored:
            state = decode_envelope(self.raw, run_id=run_id).state
        else:
            state = json.loads(self.raw)
        return StoredState(state, self.version, self.updated_at)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run as `AsyncStateStore.list_runs` reports it."""

    run_id: str
    version: int
    updated_at: str | None
    status: str | None


@dataclass
class FlushReport:
    """What `AsyncStateStore.flush` wrote through, what is still pending, and what
    lost to newer data written by another process."""

    written: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.pending


@dataclass
class _Op:
    kind: Literal["save", "merge", "call", "delete"]
    payload: Any
    ttl_s: int
    at: str


class RunLock:
    """A held run lock; `extend` pushes its expiry out for a long step."""

    def __init__(self, lock: Any, run_id: str, ttl_s: float) -> None:
        self._lock = lock
        self.run_id = run_id
        self.ttl_s = ttl_s

    async def extend(self, ttl_s: float | None = None) -> None:
        """Reset the lock's expiry to ``ttl_s`` (default: its ttl) from now."""
        try:
            await self._lock.extend(ttl_s or self.ttl_s, replace_ttl=True)
        except redis_errors.LockError as exc:
            raise StateConflictError(
                f"lock on run {self.run_id!r} was lost before it could be extended",
                run_id=self.run_id,
            ) from exc

    async def owned(self) -> bool:
        """Whether this holder still owns the lock in Redis."""
        return bool(await self._lock.owned())


class AsyncStateStore:
    """Workflow state for resumable runs; see the module docstring for the layout.

    ``on_unavailable="degrade"`` (default) keeps a run going while Redis is unreachable:
    reads fall back to what this process last saw or wrote (else ``{}``), writes are
    buffered in process and written through, in order, as soon as Redis answers again
    (or on `flush`). ``"raise"`` raises `StateStoreUnavailableError` instead. Versions
    returned while degraded are provisional.
    """

    def __init__(
        self,
        url_or_client: str | Any = C.DEFAULT_REDIS_URL,
        *,
        ttl_s: int = C.DEFAULT_STATE_TTL_S,
        completed_ttl_s: int = C.DEFAULT_COMPLETED_TTL_S,
        key_prefix: str = C.DEFAULT_KEY_PREFIX,
        on_unavailable: Literal["degrade", "raise"] = "degrade",
        max_state_bytes: int = DEFAULT_MAX_STATE_BYTES,
        conflict_retries: int = DEFAULT_CONFLICT_RETRIES,
        socket_timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        max_connections: int = 64,
        probe_interval_s: float = DEFAULT_PROBE_INTERVAL_S,
        retry_policy: RetryPolicy | None = None,
        registry: CollectorRegistry | None = None,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if on_unavailable not in ("degrade", "raise"):
            raise ConfigError(
                f"on_unavailable must be 'degrade' or 'raise', got {on_unavailable!r}"
            )
        if ttl_s < 1 or completed_ttl_s < 1:
            raise ConfigError("ttl_s and completed_ttl_s must be positive seconds")
        if not key_prefix or not re.fullmatch(r"[A-Za-z0-9._\-]+", key_prefix):
            raise ConfigError(
                f"key_prefix must be letters, digits, '.', '_' or '-': {key_prefix!r}"
            )
        self.ttl_s = int(ttl_s)
        self.completed_ttl_s = int(completed_ttl_s)
        self.key_prefix = key_prefix
        self.on_unavailable = on_unavailable
        self.max_state_bytes = max_state_bytes
        self.conflict_retries = conflict_retries
        self.probe_interval_s = probe_interval_s
        self._now = now
        self._monotonic = monotonic
        self._metrics = get_metrics(registry)
        self._policy = retry_policy or RetryPolicy(
            attempts=3, timeout_s=5.0, wait_initial_s=0.05, wait_max_s=0.5
        )
        self._closed = False
        self._degraded = False
        self._next_probe = 0.0
        self._pending: dict[str, list[_Op]] = {}
        self._flush_lock = asyncio.Lock()
        self._recent: OrderedDict[str, _Seen] = OrderedDict()
        self._run_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._owns_client = isinstance(url_or_client, str)
        self.url = "<client>"
        self.durable = True
        if isinstance(url_or_client, str):
            self.url = redact_url(url_or_client)
            self._redis = self._connect(
                url_or_client, socket_timeout_s, connect_timeout_s, max_connections
            )
        else:
            self._redis = url_or_client
        self._script = self._redis.register_script(_WRITE_LUA)

    def _connect(self, url: str, socket_timeout: float, connect_timeout: float, pool: int) -> Any:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme == "memory":
            import fakeredis

            name = url.split("://", 1)[1] or "default"
            server = _memory_servers.get(name)
            if server is None:
                server = _memory_servers[name] = fakeredis.FakeServer()
            self.durable = False
            _log.info(
                "audit_core.state.embedded",
                url=f"memory://{name}",
                durable=False,
                note="embedded in-process store: state is lost when the process exits",
            )
            return fakeredis.FakeAsyncRedis(server=server, lua_modules=set())
        if scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(
                "state store URL must start with redis://, rediss://, unix:// or memory://; "
                f"got scheme {scheme!r}"
            )
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff

        # redis-py's own retry only covers a dropped pooled connection (one quick
        # reconnect); the shared policy above it owns backoff and the deadline, so the
        # two layers do not multiply.
        return aioredis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            health_check_interval=30,
            max_connections=pool,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.01), 1),
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> AsyncStateStore:
        """A store on ``REDIS_URL`` / ``REDIS_HOST`` (else embedded) with ``AUDIT_STATE_TTL_S``."""
        if settings is None:
            from audit_core._settings import Settings

            settings = Settings.from_env()
        kwargs: dict[str, Any] = {"ttl_s": settings.state_ttl_s}
        kwargs.update(overrides)
        url = kwargs.pop("url_or_client", settings.redis_url)
        return cls(url, **kwargs)

    # lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Write through what is pending if Redis answers, then close. Safe twice."""
        if self._closed:
            return
        if self._pending:
            with contextlib.suppress(StateManagerError):
                report = await self.flush()
                if report.pending:
                    _log.error(
                        "audit_core.state.closed_with_pending",
                        runs=len(report.pending),
                        note="state written during the outage was never stored in Redis",
                    )
        self._closed = True
        if self._owns_client:
            await self._redis.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise StateManagerError("this AsyncStateStore is closed; create a new one")

    def __repr__(self) -> str:
        return (
            f"AsyncStateStore(url={self.url!r}, key_prefix={self.key_prefix!r}, "
            f"degraded={self._degraded}, pending_runs={len(self._pending)})"
        )

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and writes are buffered in process."""
        return self._degraded

    @property
    def client(self) -> Any:
        """The underlying ``redis.asyncio`` client."""
        return self._redis

    def key(self, run_id: str) -> str:
        return f"{self.key_prefix}:{self._check_run_id(run_id)}:state"

    @staticmethod
    def _check_run_id(run_id: str) -> str:
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise StateManagerError(
                f"invalid run id {run_id!r}: use 1-200 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                run_id=run_id if isinstance(run_id, str) else None,
            )
        return run_id

    # degraded-mode plumbing ---------------------------------------------------------

    def _enter_degraded(self, op: str, exc: BaseException) -> None:
        if not self._degraded:
            _log.warning(
                "audit_core.state.degraded",
                url=self.url,
                op=op,
                error_type=type(exc).__name__,
                note="Redis unreachable; buffering writes in process",
            )
        self._degraded = True
        self._metrics.state_degraded.set(1)
        self._next_probe = self._monotonic() + self.probe_interval_s

    def _unavailable(self, op: str, exc: BaseException) -> StateStoreUnavailableError:
        return StateStoreUnavailableError(
            f"state store {self.url} is unreachable during {op} ({type(exc).__name__})"
        )

    async def _redis_call(self, op: str, fn: Callable[[int], Awaitable[T]]) -> T:
        """Run ``fn`` under the shared policy; raises one of _UNAVAILABLE when Redis is down."""
        if self._degraded:
            await self._maybe_recover()
            if self._degraded:
                raise ConnectionError("state store degraded; next probe pending")
        started = time.perf_counter()
        try:
            result = await self._policy.call(
                fn, client="state", classify=_classify, metrics=self._metrics
            )
        except _UNAVAILABLE:
            self._metrics.state_ops.labels(op, "unavailable").inc()
            raise
        except redis_errors.ResponseError as exc:
            self._metrics.state_ops.labels(op, "error").inc()
            raise StateManagerError(f"Redis rejected {op}: {exc}") from None
        self._metrics.state_ops.labels(op, "ok").inc()
        self._metrics.state_seconds.labels(op).observe(time.perf_counter() - started)
        return result

    async def _maybe_recover(self) -> FlushReport | None:
        """Probe Redis when due; on recovery write the buffer through and return the report."""
        if self._monotonic() < self._next_probe:
            return None
        self._next_probe = self._monotonic() + self.probe_interval_s
        try:
            await self._redis.ping()
        except _UNAVAILABLE:
            return None
        self._degraded = False
        self._metrics.state_degraded.set(0)
        _log.info("audit_core.state.recovered", url=self.url, pending_runs=len(self._pending))
        return await self._write_through()

    def _remember(self, run_id: str, seen: _Seen) -> None:
        self._recent[run_id] = seen
        self._recent.move_to_end(run_id)
        while len(self._recent) > _RECENT_RUNS:
            self._recent.popitem(last=False)

    def _local_view(self, run_id: str) -> StoredState:
        seen = self._recent.get(run_id)
        return seen.view(run_id) if seen else StoredState({}, 0, None)

    def _buffer(self, run_id: str, op: _Op, state_json: bytes | None) -> int:
        self._pending.setdefault(run_id, []).append(op)
        base = self._recent.get(run_id)
        version = (base.version if base else 0) + 1
        if state_json is None:
            self._recent.pop(run_id, None)
        else:
            self._remember(run_id, _Seen(version, op.at, state_json))
        self._metrics.state_ops.labels(op.kind, "buffered").inc()
        return version

    # reads ---------------------------------------------------------------------------

    async def load(self, run_id: str) -> StoredState:
        """The run's state with its version (``version`` 0 and ``{}`` when absent)."""
        self._check_open()
        key = self.key(run_id)
        if run_id in self._pending and not self._degraded and not _IN_WRITE_THROUGH.get():
            await self._maybe_flush()
        try:
            raw = await self._redis_call("restore", lambda _: self._redis.get(key))
        except _UNAVAILABLE as exc:
            if self.on_unavailable == "raise":
                raise self._unavailable("restore", exc) from None
            self._enter_degraded("restore", exc)
            self._metrics.state_ops.labels("restore", "fallback").inc()
            _log.warning("audit_core.state.fallback_read", run_id=run_id)
            return self._local_view(run_id)
        if raw is None:
            return StoredState({}, 0, None)
        env: Envelope = decode_envelope(raw, run_id=run_id)
        self._remember(run_id, _Seen(env.version, env.updated_at, raw, stored=True))
        return StoredState(env.state, env.version, env.updated_at)

    async def restore(self, run_id: str) -> dict[str, Any]:
        """The run's saved state, exactly as saved; ``{}`` when there is none."""
        return (await self.load(run_id)).state

    # writes --------------------------------------------------------------------------

    async def _write(
        self,
        op: str,
        run_id: str,
        state_json: bytes,
        *,
        mode: Literal["any", "eq", "newer"],
        expected: int,
        ttl_s: int,
        at: str,
    ) -> tuple[bool, int]:
        key = self.key(run_id)
        written, version = await self._redis_call(
            op,
            lambda _: self._script(keys=[key], args=[mode, expected, state_json, at, ttl_s]),
        )
        return bool(written), int(version)

    def _ttl_for(self, state: Mapping[str, Any]) -> int:
        return self.completed_ttl_s if state.get("status") == "completed" else self.ttl_s

    async def save(self, run_id: str, state: Mapping[str, Any]) -> int:
        """Replace the run's state; returns its new version. TTL: ``ttl_s`` from now."""
        self._check_open()
        self._check_run_id(run_id)
        data = encode_state(state, run_id=run_id, max_bytes=self.max_state_bytes)
        ttl = self._ttl_for(state)
        at = _now_text(self._now())
        try:
            _, version = await self._write(
                "save", run_id, data, mode="any", expected=0, ttl_s=ttl, at=at
            )
        except _UNAVAILABLE as exc:
            if self.on_unavailable == "raise":
                raise self._unavailable("save", exc) from None
            self._enter_degraded("save", exc)
            return self._buffer(run_id, _Op("save", data, ttl, at), data)
        self._remember(run_id, _Seen(version, at, data))
        return version

    def _lock_for(self, run_id: str) -> asyncio.Lock:
        lock = self._run_locks.get(run_id)
        if lock is None:
            lock = asyncio.Lock()
            self._run_locks[run_id] = lock
        return lock

    async def update(
        self,
        run_id: str,
        changes: Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]],
        expected_version: int | None = None,
        *,
        ttl_s: int | None = None,
    ) -> int:
        """Atomically change the run's state; returns the new version.

        ``changes`` is a mapping (shallow-merged into the state) or a function from the
        current state to the new one. With ``expected_version`` the write only happens if
        the stored version still equals it, else `StateConflictError`; without, a
        concurrent writer's conflict is retried up to ``conflict_retries`` times.
        """
        self._check_open()
        self._check_run_id(run_id)
        if not callable(changes) and not isinstance(changes, Mapping):
            raise StateManagerError(
                f"changes must be a mapping or a callable, got {type(changes).__name__}",
                run_id=run_id,
            )
        if isinstance(changes, Mapping):
            # Validate up front so a bad value fails before anything is read or written.
            encode_state(changes, run_id=run_id, max_bytes=self.max_state_bytes)
        # Writers in this process queue here, so only other processes can conflict.
        async with self._lock_for(run_id):
            return await self._update_locked(run_id, changes, expected_version, ttl_s)

    async def _update_locked(
        self,
        run_id: str,
        changes: Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]],
        expected_version: int | None,
        ttl_s: int | None,
    ) -> int:
        for _ in range(max(self.conflict_retries, 1)):
            current = await self.load(run_id)
            if expected_version is not None and current.version != expected_version:
                raise StateConflictError(
                    f"run {run_id!r} is at version {current.version}, "
                    f"not the expected {expected_version}",
                    run_id=run_id,
                )
            new_state = _apply(changes, current.state, run_id)
            data = encode_state(new_state, run_id=run_id, max_bytes=self.max_state_bytes)
            ttl = ttl_s or self._ttl_for(new_state)
            at = _now_text(self._now())
            if self._degraded:
                kind: Literal["merge", "call"] = "merge" if isinstance(changes, Mapping) else "call"
                return self._buffer(run_id, _Op(kind, changes, ttl, at), data)
            try:
                written, version = await self._write(
                    "update",
                    run_id,
                    data,
                    mode="eq",
                    expected=current.version,
                    ttl_s=ttl,
                    at=at,
                )
            except _UNAVAILABLE as exc:
                if self.on_unavailable == "raise":
                    raise self._unavailable("update", exc) from None
                self._enter_degraded("update", exc)
                kind = "merge" if isinstance(changes, Mapping) else "call"
                return self._buffer(run_id, _Op(kind, changes, ttl, at), data)
            if written:
                self._remember(run_id, _Seen(version, at, data))
                return version
            self._metrics.state_ops.labels("update", "conflict").inc()
            if expected_version is not None:
                raise StateConflictError(
                    f"run {run_id!r} changed concurrently (now version {version}, "
                    f"expected {expected_version})",
                    run_id=run_id,
                )
        raise StateConflictError(
            f"run {run_id!r}: update kept conflicting with other writers "
            f"({self.conflict_retries} tries)",
            run_id=run_id,
        )

    async def mark_complete(self, run_id: str, summary: Any) -> int:
        """Merge ``status="completed"``, ``summary`` and ``completed_at``; keep the rest.

        The run is then kept for ``completed_ttl_s``.
        """
        completed_at = datetime.fromtimestamp(self._now(), UTC).isoformat()
        return await self.update(
            run_id,
            {"status": "completed", "summary": summary, "completed_at": completed_at},
            ttl_s=self.completed_ttl_s,
        )

    async def delete(self, run_id: str) -> bool:
        """Remove the run's state; True when there was one."""
        self._check_open()
        key = self.key(run_id)
        self._recent.pop(run_id, None)
        try:
            removed = await self._redis_call("delete", self._deleter(key))
        except _UNAVAILABLE as exc:
            if self.on_unavailable == "raise":
                raise self._unavailable("delete", exc) from None
            self._enter_degraded("delete", exc)
            self._buffer(run_id, _Op("delete", None, 0, _now_text(self._now())), None)
            return True
        self._pending.pop(run_id, None)
        return bool(removed)

    def _deleter(self, key: str) -> Callable[[int], Awaitable[Any]]:
        return lambda _: self._redis.delete(key)

    # write-through -------------------------------------------------------------------

    async def _maybe_flush(self) -> None:
        with contextlib.suppress(StateManagerError):
            await self._write_through()

    async def flush(self) -> FlushReport:
        """Write through everything buffered while degraded; report what is still pending."""
        self._check_open()
        if self._degraded:
            self._next_probe = 0.0
            report = await self._maybe_recover()
            if report is None:
                return FlushReport(pending=list(self._pending))
            return report
        return await self._write_through()

    async def _write_through(self) -> FlushReport:
        if _IN_WRITE_THROUGH.get():
            return FlushReport(pending=list(self._pending))
        async with self._flush_lock:
            token = _IN_WRITE_THROUGH.set(True)
            try:
                return await self._write_through_locked()
            finally:
                _IN_WRITE_THROUGH.reset(token)

    async def _write_through_locked(self) -> FlushReport:
        report = FlushReport()
        for run_id in list(self._pending):
            ops = self._pending[run_id]
            superseded = False
            try:
                while ops:
                    op = ops[0]
                    if op.kind == "save":
                        written, _ = await self._write(
                            "flush", run_id, op.payload, mode="newer", expected=0,
                            ttl_s=op.ttl_s, at=op.at,
                        )  # fmt: skip
                        superseded = superseded or not written
                    elif op.kind == "delete":
                        await self._redis_call("flush", self._deleter(self.key(run_id)))
                    else:
                        async with self._lock_for(run_id):
                            await self._update_locked(run_id, op.payload, None, op.ttl_s)
                    ops.pop(0)
            except _UNAVAILABLE as exc:
                self._enter_degraded("flush", exc)
                report.pending.extend(r for r in self._pending if r not in report.written)
                return report
            del self._pending[run_id]
            (report.superseded if superseded else report.written).append(run_id)
            if superseded:
                _log.warning("audit_core.state.flush_superseded", run_id=run_id)
        if report.written or report.superseded:
            _log.info(
                "audit_core.state.flushed",
                written=len(report.written),
                superseded=len(report.superseded),
            )
        return report

    # runs, locks, health -------------------------------------------------------------

    async def list_runs(self, status: str | None = None, *, limit: int = 100) -> list[RunInfo]:
        """Runs in the store (SCAN, never KEYS), optionally only those with ``status``.

        Raises `StateStoreUnavailableError` when Redis is unreachable, in either mode:
        a partial local answer would look complete.
        """
        self._check_open()
        pattern = f"{self.key_prefix}:*:state"
        prefix_len = len(self.key_prefix) + 1
        out: list[RunInfo] = []

        async def scan(_: int) -> list[RunInfo]:
            found: list[RunInfo] = []
            async for key in self._redis.scan_iter(match=pattern, count=500):
                text = key.decode() if isinstance(key, bytes) else key
                run_id = text[prefix_len : -len(":state")]
                raw = await self._redis.get(key)
                if raw is None:
                    continue
                try:
                    env = decode_envelope(raw, run_id=run_id)
                except StateManagerError:
                    found.append(RunInfo(run_id, -1, None, "corrupt"))
                    continue
                run_status = env.state.get("status")
                if status is None or run_status == status:
                    found.append(
                        RunInfo(run_id, env.version, env.updated_at, run_status and str(run_status))
                    )
                if len(found) >= limit:
                    break
            return found

        try:
            out = await self._redis_call("list_runs", scan)
        except _UNAVAILABLE as exc:
            raise self._unavailable("list_runs", exc) from None
        return sorted(out, key=lambda r: r.updated_at or "", reverse=True)

    @contextlib.asynccontextmanager
    async def lock(
        self,
        run_id: str,
        ttl_s: float = 30,
        wait_s: float = 0,
        *,
        auto_extend: bool = True,
    ) -> AsyncIterator[RunLock]:
        """Hold the run's lock: one runner per run across every process on this Redis.

        Raises `StateConflictError` when another holder keeps it past ``wait_s``. While
        held, it is extended every ``ttl_s / 3`` (``auto_extend``) so a long step keeps
        it, and a crashed holder's lock expires after ``ttl_s``. Needs Redis: while it
        is unreachable this raises `StateStoreUnavailableError` in either mode.
        """
        self._check_open()
        name = f"{self.key_prefix}:{self._check_run_id(run_id)}:lock"
        lock = self._redis.lock(
            name,
            timeout=ttl_s,
            sleep=min(0.05, ttl_s / 10),
            blocking=wait_s > 0,
            blocking_timeout=wait_s if wait_s > 0 else None,
            thread_local=False,
        )
        try:
            acquired = await lock.acquire()
        except _UNAVAILABLE as exc:
            raise self._unavailable("lock", exc) from None
        if not acquired:
            self._metrics.state_ops.labels("lock", "conflict").inc()
            raise StateConflictError(
                f"run {run_id!r} is locked by another runner (waited {wait_s:g}s)", run_id=run_id
            )
        handle = RunLock(lock, run_id, ttl_s)
        extender = asyncio.create_task(self._extend_loop(handle)) if auto_extend else None
        try:
            yield handle
        finally:
            if extender is not None:
                extender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await extender
            try:
                await lock.release()
            except redis_errors.LockNotOwnedError:
                _log.warning("audit_core.state.lock_lost", run_id=run_id)
            except _UNAVAILABLE:
                _log.warning("audit_core.state.lock_release_failed", run_id=run_id)

    @staticmethod
    async def _extend_loop(handle: RunLock) -> None:
        while True:
            await asyncio.sleep(handle.ttl_s / 3)
            try:
                await handle.extend()
            except (StateConflictError, *_UNAVAILABLE):
                _log.warning("audit_core.state.lock_extend_failed", run_id=handle.run_id)
                return

    async def health(self) -> bool:
        """Whether Redis answers a PING now; on recovery, buffered writes go through."""
        self._check_open()
        try:
            await self._redis.ping()
        except _UNAVAILABLE as exc:
            if not self._degraded and self.on_unavailable == "degrade":
                self._enter_degraded("health", exc)
            return False
        if self._degraded:
            self._next_probe = 0.0
            await self._maybe_recover()
        return True

    async def ttl(self, run_id: str) -> int:
        """Seconds until the run's state expires (-2: absent)."""
        key = self.key(run_id)
        return int(await self._redis_call("ttl", lambda _: self._redis.ttl(key)))


def _apply(
    changes: Mapping[str, Any] | Callable[[dict[str, Any]], Mapping[str, Any]],
    state: dict[str, Any],
    run_id: str,
) -> dict[str, Any]:
    if isinstance(changes, Mapping):
        return {**state, **changes}
    result = changes(state)
    if not isinstance(result, Mapping):
        raise StateManagerError(
            f"update function returned {type(result).__name__}, not a mapping", run_id=run_id
        )
    return dict(result)
