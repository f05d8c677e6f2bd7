"""`AsyncStateStore`: resumable workflow state on ``redis.asyncio``.

Layout: one string key per run, ``{prefix}:{run_id}:state``, holding the JSON envelope
``{"version":N,"updated_at":"...","fence":F,"codec":"orjson","state":{...}}`` with a TTL.
Writes go through one Lua script (`_scripts.WRITE`) that touches only that key (so the
store runs unchanged on Redis Cluster), reads only the envelope's head, and never decodes
the state (so big integers and ``[]``/``{}`` stay exact). Reads are a plain ``GET``.

``on_unavailable="degrade"`` keeps a run going while Redis is unreachable: reads fall
back to what this process last saw or wrote, writes go to the outage buffer
(`_buffer.OutageBuffer`) and are replayed as described in `AsyncStateStore.flush`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from redis import exceptions as redis_errors

from audit_core import _constants as C
from audit_core._lifecycle import AsyncLifecycle
from audit_core._logging import get_logger
from audit_core._settings import resolve_settings
from audit_core.errors import (
    ConfigError,
    StateConflictError,
    StateLockLostError,
    StateManagerError,
    StateStoreUnavailableError,
)
from audit_core.metrics import get_metrics
from audit_core.retry import RetryPolicy
from audit_core.state import _scripts
from audit_core.state._buffer import (
    BufferedWrite,
    OutageBuffer,
    UpdateFunction,
    WriteKind,
    journal_path,
)
from audit_core.state._codec import (
    EncodedState,
    Envelope,
    decode_envelope,
    encode_state,
)
from audit_core.state._connect import UNAVAILABLE, classify, connect
from audit_core.state._lock import LockScope, RunLock, fence_for
from audit_core.state._replay import replay
from audit_core.state._types import (
    Changes,
    FlushReport,
    RunInfo,
    Seen,
    SettingsOptions,
    StoredState,
    StoreOptions,
    UrlOptions,
    apply_changes,
    now_text,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from redis.asyncio import Redis, RedisCluster
    from typing_extensions import Unpack

    from audit_core._settings import Settings

__all__ = [
    "AsyncStateStore",
    "FlushReport",
    "RunInfo",
    "RunLock",
    "SettingsOptions",
    "StoreOptions",
    "StoredState",
    "UrlOptions",
]

T = TypeVar("T")
_log = get_logger("audit_core.state")

# Run ids may not contain key-pattern or separator characters that could reach another
# run's keys (":", "*", "?", "[", "]", "{", "}", whitespace, backslash).
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,199}$")
DEFAULT_MAX_STATE_BYTES = 8 * 1024 * 1024
DEFAULT_CONFLICT_RETRIES = 32
DEFAULT_PROBE_INTERVAL_S = 1.0
CONFLICT_WAIT_INITIAL_S = 0.002
CONFLICT_WAIT_MAX_S = 0.1
_RECENT_RUNS = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class _Scripts:
    write: Any
    raise_fence: Any
    next_fence: Any
    extend_lock: Any
    release_lock: Any


class AsyncStateStore(AsyncLifecycle):
    """Workflow state for resumable runs; see the module docstring for the layout.

    ``client`` is a ``redis.asyncio`` client (or cluster client) the caller owns and
    closes; `from_url` builds one the store owns. ``on_unavailable="degrade"`` (default)
    keeps a run going while Redis is unreachable (versions returned then are
    provisional); ``"raise"`` raises `StateStoreUnavailableError` instead.
    ``buffer_path`` makes the outage buffer survive the process (see `flush`).
    ``clock``/``sleep``/``rng`` drive probes, lock renewal and conflict backoff.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        ttl_s: int = C.DEFAULT_STATE_TTL_S,
        completed_ttl_s: int = C.DEFAULT_COMPLETED_TTL_S,
        key_prefix: str = C.DEFAULT_KEY_PREFIX,
        on_unavailable: Literal["degrade", "raise"] = "degrade",
        max_state_bytes: int = DEFAULT_MAX_STATE_BYTES,
        conflict_retries: int = DEFAULT_CONFLICT_RETRIES,
        probe_interval_s: float = DEFAULT_PROBE_INTERVAL_S,
        buffer_path: str | PathLike[str] | None = None,
        retry_policy: RetryPolicy | None = None,
        registry: CollectorRegistry | None = None,
        now: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if isinstance(client, str):
            raise ConfigError("AsyncStateStore takes a redis client; use from_url() for a URL")
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
        self.conflict_retries = max(1, conflict_retries)
        self.probe_interval_s = probe_interval_s
        self.url = "<client>"
        self.durable = True
        self._now = now
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._metrics = get_metrics(registry)
        self._counters: dict[tuple[str, str], Any] = {}
        # op -> (its "ok" counter's inc, its latency histogram's observe)
        self._done: dict[str, tuple[Callable[[], None], Callable[[float], None]]] = {}
        self._policy = retry_policy or RetryPolicy(
            attempts=3, timeout_s=5.0, wait_initial_s=0.05, wait_max_s=0.5
        )
        self._degraded = False
        self._next_probe = 0.0
        self._flush_lock = asyncio.Lock()
        self._recent: OrderedDict[str, Seen] = OrderedDict()
        self._keys: dict[str, str] = {}
        self._keys_prefix = key_prefix
        self._run_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._hot_lock: tuple[str, asyncio.Lock] | None = None
        self._redis: Any = client
        register = client.register_script
        self._scripts = _Scripts(
            write=register(_scripts.WRITE),
            raise_fence=register(_scripts.RAISE_FENCE),
            next_fence=register(_scripts.NEXT_FENCE),
            extend_lock=register(_scripts.EXTEND_LOCK),
            release_lock=register(_scripts.RELEASE_LOCK),
        )
        self._buffer = OutageBuffer(journal_path(buffer_path))
        # What writes-through at the top of other operations did, until `flush` reports it.
        self._unreported = FlushReport()
        self._server: str | None = None

    @classmethod
    def from_url(
        cls,
        url: str = C.DEFAULT_REDIS_URL,
        *,
        socket_timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        max_connections: int = 64,
        **options: Unpack[StoreOptions],
    ) -> AsyncStateStore:
        """A store on its own client for ``redis://``, ``rediss://``, ``unix://`` or
        ``memory://[NAME]`` (embedded, in-process, not durable); closed with the store."""
        conn = connect(
            url,
            socket_timeout_s=socket_timeout_s,
            connect_timeout_s=connect_timeout_s,
            max_connections=max_connections,
        )
        store = cls(conn.client, **options)
        store.url = conn.url
        store.durable = conn.durable
        store._owns_resources = True
        return store

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, **overrides: Unpack[SettingsOptions]
    ) -> AsyncStateStore:
        """A store on ``REDIS_URL`` / ``REDIS_HOST`` (else embedded), resolved in order:
        ``overrides``, then ``settings`` (default `Settings.from_env`): ``AUDIT_STATE_TTL_S``
        for ``ttl_s`` and ``AUDIT_STATE_BUFFER`` for ``buffer_path``."""
        resolved = resolve_settings(settings)
        options: UrlOptions = {"ttl_s": resolved.state_ttl_s, "buffer_path": resolved.state_buffer}
        url = resolved.redis_url
        for name, value in overrides.items():
            if name == "url":
                url = value  # type: ignore[assignment]
            else:
                options[name] = value  # type: ignore[literal-required]
        return cls.from_url(url, **options)

    async def _aclose_resources(self) -> None:
        """Write through what is pending if Redis answers, then close."""
        try:
            if self._buffer:
                with contextlib.suppress(StateManagerError, *UNAVAILABLE):
                    await self.flush()
                if self._buffer:
                    _log.error(
                        "audit_core.state.closed_with_pending",
                        runs=len(self._buffer),
                        kept_in=str(self._buffer.path) if self._buffer.path else None,
                        note="state written during the outage has not reached Redis",
                    )
        finally:
            self._buffer.close()
            if self._owns_resources:
                await self._redis.aclose()

    def __repr__(self) -> str:
        return (
            f"AsyncStateStore(url={self.url!r}, key_prefix={self.key_prefix!r}, "
            f"degraded={self._degraded}, pending_runs={len(self._buffer)})"
        )

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and writes are buffered."""
        return self._degraded

    @property
    def client(self) -> Any:
        """The underlying ``redis.asyncio`` client."""
        return self._redis

    def key(self, run_id: str) -> str:
        # Every operation needs the key two or three times: validated and built once
        # (for the prefix they were built with).
        key = self._keys.get(run_id) if type(run_id) is str else None
        if key is None or self._keys_prefix is not self.key_prefix:
            key = f"{self.key_prefix}:{self._check_run_id(run_id)}:state"
            if type(run_id) is str:
                if len(self._keys) >= _RECENT_RUNS or self._keys_prefix is not self.key_prefix:
                    self._keys.clear()
                    self._keys_prefix = self.key_prefix
                self._keys[run_id] = key
        return key

    @staticmethod
    def _check_run_id(run_id: str) -> str:
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise StateManagerError(
                f"invalid run id {run_id!r}: use 1-200 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                run_id=run_id if isinstance(run_id, str) else None,
            )
        return run_id

    def _count(self, op: str, outcome: str) -> None:
        counter = self._counters.get((op, outcome))
        if counter is None:  # labels() is a locked lookup: done once per pair
            counter = self._counters[op, outcome] = self._metrics.state_ops.labels(op, outcome)
        counter.inc()

    # the one outage branch -----------------------------------------------------------

    def _outage(self, op: str, exc: BaseException) -> None:
        """Redis did not answer ``op``: strict mode raises, degrade mode starts buffering."""
        if self.on_unavailable == "raise":
            raise StateStoreUnavailableError(
                f"state store {self.url} is unreachable during {op} ({type(exc).__name__})"
            ) from None
        if not self._degraded:
            _log.warning(
                "audit_core.state.degraded",
                url=self.url,
                op=op,
                error_type=type(exc).__name__,
                note="Redis unreachable; buffering writes",
            )
        self._degraded = True
        self._metrics.state_degraded.set(1)
        self._next_probe = self._clock() + self.probe_interval_s

    async def _begin(self, run_id: str | None = None) -> None:
        """Top of every operation, before any run lock is taken: recover if due and
        write the buffer through. Never called with a run lock held, so never re-entered."""
        self._check_open()
        if run_id is not None:
            self.key(run_id)
        if self._degraded:
            await self._probe()
        if self._server is None and not self._degraded:
            self._server = await self._server_id()
        if self._buffer and not self._degraded:
            self._note(await self._write_through())

    def _note(self, report: FlushReport) -> None:
        """Keep ``report`` for the next `flush` (each run once per list)."""
        for name in ("written", "restored", "superseded", "conflicts"):
            kept: list[str] = getattr(self._unreported, name)
            kept.extend(r for r in getattr(report, name) if r not in kept)

    async def _probe(self) -> None:
        """While degraded: PING when the probe interval has passed; leave degraded mode
        when Redis answers."""
        if self._clock() < self._next_probe:
            return
        self._next_probe = self._clock() + self.probe_interval_s
        try:
            await self._redis.ping()
        except UNAVAILABLE:
            return
        self._degraded = False
        self._server = None  # it may have restarted: look again before the next write
        self._metrics.state_degraded.set(0)
        _log.info("audit_core.state.recovered", url=self.url, pending_runs=len(self._buffer))

    async def _server_id(self) -> str | None:
        """The Redis server's run id, which changes when it restarts ("" if unknown)."""
        try:
            info = await self._redis.info("server")
        except UNAVAILABLE:
            return None
        except redis_errors.RedisError:
            return ""
        run = info.get("run_id") if isinstance(info, dict) else None
        return run if isinstance(run, str) else ""

    async def _redis_call(self, op: str, fn: Callable[[int], Awaitable[T]]) -> T:
        """Run ``fn`` under the shared policy; raises one of UNAVAILABLE when Redis is down."""
        started = time.perf_counter()
        try:
            result = await self._policy.call(
                fn, client="state", classify=classify, metrics=self._metrics
            )
        except UNAVAILABLE:
            self._count(op, "unavailable")
            raise
        except redis_errors.ResponseError as exc:
            self._count(op, "error")
            raise StateManagerError(f"Redis rejected {op}: {exc}") from None
        done = self._done.get(op)
        if done is None:
            ok = self._metrics.state_ops.labels(op, "ok")
            done = self._done[op] = (ok.inc, self._metrics.state_seconds.labels(op).observe)
        done[0]()
        done[1](time.perf_counter() - started)
        return result

    def _lock_for(self, run_id: str) -> asyncio.Lock:
        # The last run's lock is also held here, so the weak map keeps it: a run written
        # over and over does not make (and drop) a lock and a weak reference each time.
        hot = self._hot_lock
        if hot is not None and hot[0] == run_id:
            return hot[1]
        lock = self._run_locks.get(run_id)
        if lock is None:
            lock = self._run_locks[run_id] = asyncio.Lock()
        self._hot_lock = (run_id, lock)
        return lock

    def _remember(self, run_id: str, seen: Seen) -> None:
        self._recent[run_id] = seen
        self._recent.move_to_end(run_id)
        while len(self._recent) > _RECENT_RUNS:
            self._recent.popitem(last=False)

    def _local_view(self, run_id: str) -> StoredState:
        seen = self._recent.get(run_id)
        return seen.view(run_id) if seen else StoredState({}, 0, None)

    # reads ---------------------------------------------------------------------------

    async def load(self, run_id: str) -> StoredState:
        """The run's state with its version (``version`` 0 and ``{}`` when absent)."""
        await self._begin(run_id)
        return await self._load(run_id)

    async def restore(self, run_id: str) -> dict[str, Any]:
        """The run's saved state, exactly as saved; ``{}`` when there is none."""
        await self._begin(run_id)
        return (await self._load(run_id)).state

    async def _load(self, run_id: str) -> StoredState:
        if not self._degraded:
            prev = self._recent.get(run_id)
            try:
                env = await self._get(run_id)
                if prev is not None and prev.version > (env.version if env else 0):
                    restored = await self._restore_behind(run_id, prev, env)
                    if restored is not None:
                        return restored
            except UNAVAILABLE as exc:
                self._outage("restore", exc)
            else:
                if env is None:
                    return StoredState({}, 0, None)
                return StoredState(env.state, env.version, env.updated_at)
        self._count("restore", "fallback")
        return self._local_view(run_id)

    async def _restore_behind(
        self, run_id: str, prev: Seen, env: Envelope | None
    ) -> StoredState | None:
        """Redis holds an older version than this process saw. After a restart without
        persistence, write the last-known state back (reported by the next `flush`);
        on the same server it was deleted or expired, which stands."""
        if prev.provisional or run_id in self._buffer:
            return None  # not something Redis ever held: the flush replays it instead
        current = await self._server_id()
        if not prev.server or not current or current == prev.server:
            return None
        self._server = current
        state = prev.view(run_id).state
        encoded = encode_state(state, run_id=run_id, max_bytes=self.max_state_bytes)
        at = prev.updated_at or now_text(self._now())
        written, version = await self._write(
            "restore",
            run_id,
            encoded,
            mode="same",
            expected=env.version if env else 0,
            expected_at=env.updated_at if env else None,
            ttl_s=self._ttl_for(state),
            at=at,
            fence=0,
            version=prev.version,
        )
        if not written:
            return None
        self._note(FlushReport(restored=[run_id]))
        _log.warning(
            "audit_core.state.redis_behind",
            run_id=run_id,
            had=prev.version,
            found=env.version if env else 0,
            note="Redis restarted without this run's data; last-known state written back",
        )
        return StoredState(state, version, at)

    async def _get(self, run_id: str) -> Envelope | None:
        key = self.key(run_id)
        raw = await self._redis_call("restore", lambda _: self._redis.get(key))
        if raw is None:
            return None
        env = decode_envelope(raw, run_id=run_id)
        seen = Seen(
            version=env.version,
            updated_at=env.updated_at,
            raw=raw,
            codec="",
            envelope=True,
            server=self._server,
        )
        self._remember(run_id, seen)
        return env

    # writes --------------------------------------------------------------------------

    async def _write(
        self,
        op: str,
        run_id: str,
        state: EncodedState,
        *,
        mode: Literal["any", "eq", "same", "newer"],
        expected: int = 0,
        expected_at: str | None = None,
        ttl_s: int,
        at: str,
        fence: int,
        version: int = 0,
    ) -> tuple[int, int]:
        """Run the write script; (1, version) written, (0, current) condition failed.

        A fencing token older than the stored one is `StateLockLostError`.
        """
        key = self.key(run_id)
        params = f"{mode} {expected} {ttl_s} {fence} {version} {state.codec} {at}"
        args = [state.data, params] if expected_at is None else [state.data, params, expected_at]
        status, got, stored_fence = await self._redis_call(
            op, lambda _: self._evalsha(self._scripts.write, key, args)
        )
        if status == -1:
            self._count(op, "fenced")
            raise StateLockLostError(
                f"run {run_id!r}: write refused, a newer lock holder has token "
                f"{stored_fence} (this writer's is {fence})",
                run_id=run_id,
            )
        if status == 1:
            seen = Seen(
                version=int(got),
                updated_at=at,
                raw=state.data,
                codec=state.codec,
                server=self._server,
            )
            self._remember(run_id, seen)
        return int(status), int(got)

    async def _evalsha(self, script: Any, key: str, args: list[Any]) -> Any:
        """``script`` on ``key``, as redis-py's Script call does it minus its per-call
        import and tuple copies (a hot path); loaded again if the server lost it."""
        try:
            return await self._redis.evalsha(script.sha, 1, key, *args)
        except redis_errors.NoScriptError:
            script.sha = await self._redis.script_load(script.script)
            return await self._redis.evalsha(script.sha, 1, key, *args)

    def _ttl_for(self, state: Mapping[str, Any]) -> int:
        return self.completed_ttl_s if state.get("status") == "completed" else self.ttl_s

    async def save(self, run_id: str, state: Mapping[str, Any]) -> int:
        """Replace the run's state; returns its new version. TTL: ``ttl_s`` from now."""
        await self._begin(run_id)
        encoded = encode_state(state, run_id=run_id, max_bytes=self.max_state_bytes)
        ttl = self._ttl_for(state)
        fence = fence_for(self.key(run_id))
        async with self._lock_for(run_id):
            at = now_text(self._now())
            if not self._degraded:
                # Never below a version this process saw, even if Redis lost it.
                seen = self._recent.get(run_id)
                floor = seen.version + 1 if seen else 0
                try:
                    _, version = await self._write(
                        "save",
                        run_id,
                        encoded,
                        mode="any",
                        ttl_s=ttl,
                        at=at,
                        fence=fence,
                        version=floor,
                    )
                    return version
                except UNAVAILABLE as exc:
                    self._outage("save", exc)
            return self._buffered(run_id, "save", encoded, ttl, at, fence)

    async def update(
        self,
        run_id: str,
        changes: Changes,
        expected_version: int | None = None,
        *,
        ttl_s: int | None = None,
    ) -> int:
        """Atomically change the run's state; returns the new version.

        ``changes`` is a mapping (shallow-merged into the state) or a function from the
        current state to the new one. With ``expected_version`` the write only happens if
        the stored version still equals it, else `StateConflictError`; without, a
        concurrent writer's conflict is retried up to ``conflict_retries`` times, with
        exponential backoff and full jitter.
        """
        await self._begin(run_id)
        if not callable(changes) and not isinstance(changes, Mapping):
            raise StateManagerError(
                f"changes must be a mapping or a callable, got {type(changes).__name__}",
                run_id=run_id,
            )
        delta = None
        if isinstance(changes, Mapping):
            # Validated up front, so a bad value fails before anything is read or written.
            delta = encode_state(changes, run_id=run_id, max_bytes=self.max_state_bytes)
        fence = fence_for(self.key(run_id))
        # Writers in this process queue here, so only other processes can conflict.
        async with self._lock_for(run_id):
            for attempt in range(self.conflict_retries):
                current = await self._load(run_id)
                if expected_version is not None and current.version != expected_version:
                    raise self._conflict(run_id, current.version, expected_version)
                new_state = apply_changes(changes, current.state, run_id)
                encoded = encode_state(new_state, run_id=run_id, max_bytes=self.max_state_bytes)
                ttl = ttl_s or self._ttl_for(new_state)
                at = now_text(self._now())
                if not self._degraded:
                    try:
                        written, version = await self._write(
                            "update",
                            run_id,
                            encoded,
                            mode="eq",
                            expected=current.version,
                            ttl_s=ttl,
                            at=at,
                            fence=fence,
                        )
                    except UNAVAILABLE as exc:
                        self._outage("update", exc)
                    else:
                        if written:
                            return version
                        self._count("update", "conflict")
                        if expected_version is not None:
                            raise self._conflict(run_id, version, expected_version)
                        await self._backoff(attempt)
                        continue
                kind: WriteKind = "merge" if delta is not None else "call"
                return self._buffered(
                    run_id,
                    kind,
                    encoded,
                    ttl,
                    at,
                    fence,
                    conditional=expected_version is not None,
                    changes=delta,
                    func=None if delta is not None else changes,  # type: ignore[arg-type]
                )
        raise StateConflictError(
            f"run {run_id!r}: update kept conflicting with other writers "
            f"({self.conflict_retries} tries)",
            run_id=run_id,
        )

    @staticmethod
    def _conflict(run_id: str, version: int, expected: int) -> StateConflictError:
        return StateConflictError(
            f"run {run_id!r} is at version {version}, not the expected {expected}",
            run_id=run_id,
        )

    async def _backoff(self, attempt: int) -> None:
        ceiling = min(CONFLICT_WAIT_MAX_S, CONFLICT_WAIT_INITIAL_S * 2**attempt)
        await self._sleep(self._rng() * ceiling)

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
        await self._begin(run_id)
        key = self.key(run_id)
        async with self._lock_for(run_id):
            if not self._degraded:
                try:
                    removed = await self._redis_call("delete", lambda _: self._redis.delete(key))
                except UNAVAILABLE as exc:
                    self._outage("delete", exc)
                else:
                    self._recent.pop(run_id, None)
                    return bool(removed)
            self._buffered(run_id, "delete", None, 0, now_text(self._now()), 0)
            return True

    def _buffered(
        self,
        run_id: str,
        kind: WriteKind,
        state: EncodedState | None,
        ttl_s: int,
        at: str,
        fence: int,
        *,
        conditional: bool = False,
        changes: EncodedState | None = None,
        func: UpdateFunction | None = None,
    ) -> int:
        """Buffer a write made while degraded; returns its provisional version."""
        seen = self._recent.get(run_id)
        base_version = seen.version if seen else 0
        version = base_version + 1
        write = BufferedWrite(
            seq=self._buffer.next_seq(),
            kind=kind,
            conditional=conditional,
            state=None if state is None else state.data,
            codec="" if state is None else state.codec,
            changes=None if changes is None else changes.data,
            version=version,
            at=at,
            ttl_s=ttl_s,
            fence=fence,
            func=func,
        )
        self._buffer.add(run_id, write, base_version, seen.updated_at if seen else None)
        if state is None:
            self._recent.pop(run_id, None)
        else:
            seen = Seen(
                version=version,
                updated_at=at,
                raw=state.data,
                codec=state.codec,
                provisional=True,
            )
            self._remember(run_id, seen)
        self._count(kind, "buffered")
        return version

    async def _raise_fence(self, state_key: str, token: int) -> int:
        """A new lock holder's token goes into the stored state (see `_lock`)."""
        return int(await self._scripts.raise_fence(keys=[state_key], args=[token]))

    # write-through -------------------------------------------------------------------

    async def flush(self, *, raise_on_conflict: bool = False) -> FlushReport:
        """Write through everything buffered while degraded and report what happened.

        Per run, against what Redis holds now:

        - unchanged since this process last saw it: the last buffered state is written
          whole, with the last provisional version handed out (``written``);
        - behind it (version lower, or gone: a restart without persistence): the whole
          last-known state is written back, versions never go backwards (``restored``);
        - moved on (another process wrote): conditional writes are not applied
          (``conflicts``), merges and functions are re-applied to the current state,
          saves are written only if newer than what is there (else ``superseded``).

        With ``raise_on_conflict`` a conflict raises `StateConflictError` after the rest
        went through. Runs still unreachable stay ``pending``.
        """
        self._check_open()
        if self._degraded:
            self._next_probe = 0.0
            await self._probe()
        report = FlushReport()
        if not self._degraded:
            report = await self._write_through()
        earlier, self._unreported = self._unreported, FlushReport()
        for name in ("written", "restored", "superseded", "conflicts"):
            getattr(report, name)[:0] = getattr(earlier, name)
        report.pending = self._buffer.runs()
        if raise_on_conflict and report.conflicts:
            raise StateConflictError(
                f"buffered conditional writes were not applied to {len(report.conflicts)} "
                f"run(s), which changed meanwhile: {', '.join(report.conflicts)}",
                run_id=report.conflicts[0],
            )
        return report

    async def _write_through(self) -> FlushReport:
        report = FlushReport()
        async with self._flush_lock:
            for run_id in self._buffer.runs():
                async with self._lock_for(run_id):
                    pending = self._buffer.get(run_id)
                    if pending is None:
                        continue
                    try:
                        outcome = await replay(self, run_id, pending)
                    except UNAVAILABLE as exc:
                        self._outage("flush", exc)
                        break
                    self._buffer.settle(run_id, pending.writes[-1].seq)
                    getattr(report, outcome).append(run_id)
        report.pending = self._buffer.runs()
        if report.written or report.restored or report.superseded or report.conflicts:
            _log.info(
                "audit_core.state.flushed",
                written=len(report.written),
                restored=len(report.restored),
                superseded=len(report.superseded),
                conflicts=len(report.conflicts),
            )
        for run_id in report.restored:
            _log.warning(
                "audit_core.state.redis_behind",
                run_id=run_id,
                note="Redis held less than this process had seen; buffered state written whole",
            )
        return report

    # runs, locks, health -------------------------------------------------------------

    async def list_runs(self, status: str | None = None, *, limit: int = 100) -> list[RunInfo]:
        """Runs in the store (SCAN, never KEYS), optionally only those with ``status``.

        Raises `StateStoreUnavailableError` when Redis is unreachable, in either mode:
        a partial local answer would look complete.
        """
        await self._begin()
        pattern = f"{self.key_prefix}:*:state"
        prefix_len = len(self.key_prefix) + 1

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
                    found.append(
                        RunInfo(run_id=run_id, version=-1, updated_at=None, status="corrupt")
                    )
                    continue
                run_status = env.state.get("status")
                if status is None or run_status == status:
                    found.append(
                        RunInfo(
                            run_id=run_id,
                            version=env.version,
                            updated_at=env.updated_at,
                            status=None if run_status is None else str(run_status),
                        )
                    )
                if len(found) >= limit:
                    break
            return found

        try:
            out = await self._redis_call("list_runs", scan)
        except UNAVAILABLE as exc:
            raise StateStoreUnavailableError(
                f"state store {self.url} is unreachable during list_runs ({type(exc).__name__})"
            ) from None
        return sorted(out, key=lambda r: r.updated_at or "", reverse=True)

    def lock(
        self,
        run_id: str,
        ttl_s: float = 30,
        wait_s: float = 0,
        *,
        auto_extend: bool = True,
        cancel_on_loss: bool = True,
    ) -> LockScope:
        """Hold the run's lock: one runner per run across every process on this Redis.

        ``async with store.lock(run_id) as held`` yields a `RunLock` with a fencing
        ``held.token``; writes inside the block carry it, and the store refuses writes
        from an older holder (`StateLockLostError`). Raises `StateConflictError` when
        another holder keeps the lock past ``wait_s``. The lease is renewed every
        ``ttl_s / 3`` (``auto_extend``); when it is lost anyway, ``held.lost`` is set
        and (``cancel_on_loss``) the block is cancelled and raises `StateLockLostError`.
        Needs Redis: while it is unreachable this raises `StateStoreUnavailableError`.
        """
        self._check_open()
        self._check_run_id(run_id)
        return LockScope(
            self,
            run_id,
            ttl_s=ttl_s,
            wait_s=wait_s,
            auto_extend=auto_extend,
            cancel_on_loss=cancel_on_loss,
        )

    async def health(self) -> bool:
        """Whether Redis answers a PING now; on recovery, buffered writes go through."""
        self._check_open()
        try:
            await self._redis.ping()
        except UNAVAILABLE as exc:
            if self.on_unavailable == "degrade":
                self._outage("health", exc)
            return False
        if self._degraded:
            self._next_probe = 0.0
        with contextlib.suppress(StateManagerError):
            await self._begin()
        return True

    async def ttl(self, run_id: str) -> int:
        """Seconds until the run's state expires (-2: absent)."""
        await self._begin(run_id)
        key = self.key(run_id)
        try:
            return int(await self._redis_call("ttl", lambda _: self._redis.ttl(key)))
        except UNAVAILABLE as exc:
            raise StateStoreUnavailableError(
                f"state store {self.url} is unreachable during ttl ({type(exc).__name__})",
                run_id=run_id,
            ) from None
