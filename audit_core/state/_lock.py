"""Run locks with fencing tokens and lease-loss notice.

``async with store.lock(run_id) as held`` takes ``{prefix}:{run_id}:lock`` (``SET NX PX``
with a random owner value) and a fencing token: a per-run counter that only grows. The
token is raised into the run's stored state at once, and every write made inside the
block carries it; the write script refuses a token lower than the stored one, so a
holder whose lease ran out can no longer write once another holder has the lock.

While held the lease is renewed every ``ttl_s / 3`` (on the injected sleep). When a
renewal finds the lock gone, ``held.lost`` is set and, with ``cancel_on_loss`` (default),
the task inside the block is cancelled; the block then raises `StateLockLostError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

from audit_core._logging import get_logger
from audit_core.errors import (
    StateConflictError,
    StateLockLostError,
    StateStoreUnavailableError,
)
from audit_core.state._connect import UNAVAILABLE

if TYPE_CHECKING:
    from audit_core.state._store import AsyncStateStore

__all__ = ["LockScope", "RunLock", "fence_for"]

_log = get_logger("audit_core.state")

# State key -> fencing token of the lock held by this task (inherited by its children).
_NO_FENCES: Mapping[str, int] = MappingProxyType({})
_FENCES: ContextVar[Mapping[str, int]] = ContextVar("audit_state_fences", default=_NO_FENCES)
_COUNTER_TTL_FLOOR_S = 7 * 86_400


def fence_for(state_key: str) -> int:
    """The fencing token this task holds for ``state_key`` (0: not under its lock)."""
    return _FENCES.get().get(state_key, 0)


class RunLock:
    """A held run lock: its fencing ``token``, a ``lost`` event, `extend` and `owned`."""

    def __init__(self, scope: LockScope, token: int) -> None:
        self._scope = scope
        self.run_id = scope.run_id
        self.ttl_s = scope.ttl_s
        self.token = token
        self.lost = asyncio.Event()

    async def extend(self, ttl_s: float | None = None) -> None:
        """Reset the lease to ``ttl_s`` (default: the lock's ttl) from now.

        Raises `StateLockLostError` when the lock is no longer this holder's.
        """
        if not await self._scope.renew(ttl_s or self.ttl_s):
            self._scope.lose("extend")
            raise StateLockLostError(
                f"lock on run {self.run_id!r} was lost before it could be extended",
                run_id=self.run_id,
            )

    async def owned(self) -> bool:
        """Whether this holder still owns the lock in Redis."""
        value = await self._scope.store.client.get(self._scope.lock_key)
        return value is not None and _text(value) == self._scope.owner


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class LockScope:
    """The ``async with`` behind `AsyncStateStore.lock`; see the module docstring."""

    def __init__(
        self,
        store: AsyncStateStore,
        run_id: str,
        *,
        ttl_s: float,
        wait_s: float,
        auto_extend: bool,
        cancel_on_loss: bool,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.ttl_s = ttl_s
        self.wait_s = wait_s
        self.auto_extend = auto_extend
        self.cancel_on_loss = cancel_on_loss
        self.lock_key = f"{store.key_prefix}:{run_id}:lock"
        self.state_key = store.key(run_id)
        self.owner = secrets.token_hex(16)
        self.held: RunLock | None = None
        self._task: asyncio.Task[Any] | None = None
        self._extender: asyncio.Task[None] | None = None
        self._cancelled = False
        self._stopping = False
        self._renewing = False
        self._fence_token: Token[Mapping[str, int]] | None = None
        self._valid_until = 0.0

    # acquire / release ----------------------------------------------------------------

    async def __aenter__(self) -> RunLock:
        await self.store._begin(self.run_id)  # buffered writes go through first
        await self._call("lock", self._take)
        try:
            token = await self._fence()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._release()
            raise
        held = self.held = RunLock(self, token)
        self._fence_token = _FENCES.set({**_FENCES.get(), self.state_key: token})
        self._task = asyncio.current_task()
        if self.auto_extend:
            self._extender = asyncio.create_task(self._extend_loop())
        return held

    async def _take(self) -> None:
        store = self.store
        deadline = store._clock() + self.wait_s
        poll = min(0.05, self.ttl_s / 10)
        while True:
            started = store._clock()
            ok = await store.client.set(
                self.lock_key, self.owner, nx=True, px=max(1, int(self.ttl_s * 1000))
            )
            if ok:
                self._valid_until = started + self.ttl_s
                return
            if store._clock() >= deadline:
                store._count("lock", "conflict")
                raise StateConflictError(
                    f"run {self.run_id!r} is locked by another runner (waited {self.wait_s:g}s)",
                    run_id=self.run_id,
                )
            await store._sleep(poll)

    async def _fence(self) -> int:
        """A fresh fencing token, raised into the run's stored state."""
        store = self.store
        token: int = await self._call("lock", lambda: self._token(0))
        stored: int = await self._call("lock", lambda: store._raise_fence(self.state_key, token))
        if stored > token:  # the counter was lost (expired) while the state kept its fence
            token = await self._call("lock", lambda: self._token(stored))
            await self._call("lock", lambda: store._raise_fence(self.state_key, token))
        return token

    async def _token(self, floor: int) -> int:
        counter = f"{self.store.key_prefix}:{self.run_id}:fence"
        ttl_ms = int(max(_COUNTER_TTL_FLOOR_S, 2 * self.store.completed_ttl_s) * 1000)
        token = await self.store._scripts.next_fence(keys=[counter], args=[floor, ttl_ms])
        return int(token)

    async def renew(self, ttl_s: float) -> bool:
        started = self.store._clock()
        ok = await self.store._scripts.extend_lock(
            keys=[self.lock_key], args=[self.owner, max(1, int(ttl_s * 1000))]
        )
        if ok:
            self._valid_until = started + ttl_s
        return bool(ok)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        await self._stop_extending()
        if self._fence_token is not None:
            _FENCES.reset(self._fence_token)
        held = self.held
        assert held is not None
        if not held.lost.is_set():
            await self._release()
        if not held.lost.is_set():
            return False
        ours = self._cancelled and exc_type is asyncio.CancelledError and self._task is not None
        if ours and self._task is not None and self._task.uncancel() > 0:
            return False  # cancelled from outside as well: let that cancellation go on
        raise StateLockLostError(
            f"lock on run {self.run_id!r} (token {held.token}) was lost while held",
            run_id=self.run_id,
        ) from exc

    async def _release(self) -> None:
        try:
            released = await self.store._scripts.release_lock(
                keys=[self.lock_key], args=[self.owner]
            )
        except UNAVAILABLE:
            _log.warning("audit_core.state.lock_release_failed", run_id=self.run_id)
            return
        if not released:
            self.lose("release")

    # lease ----------------------------------------------------------------------------

    async def _extend_loop(self) -> None:
        store = self.store
        while not self._stopping:
            await store._sleep(self.ttl_s / 3)
            if self._stopping:
                return
            self._renewing = True
            try:
                if await self.renew(self.ttl_s):
                    continue
            except UNAVAILABLE:
                if store._clock() < self._valid_until:
                    continue  # Redis may come back before the lease runs out
            finally:
                self._renewing = False
            self.lose("renew")
            return

    async def _stop_extending(self) -> None:
        """Stop the renewal task; a renewal in flight is let finish, never cut mid-reply."""
        extender = self._extender
        if extender is None:
            return
        self._stopping = True
        if not self._renewing:
            extender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await extender

    def lose(self, during: str) -> None:
        """Mark the lease lost; cancel the holder's task when asked to."""
        held = self.held
        if held is None or held.lost.is_set():
            return
        held.lost.set()
        _log.warning("audit_core.state.lock_lost", run_id=self.run_id, during=during)
        store = self.store
        store._count("lock", "lost")
        task = self._task
        if self.cancel_on_loss and task is not None and not task.done() and during == "renew":
            self._cancelled = True
            task.cancel(f"lock on run {self.run_id!r} lost")

    async def _call(self, op: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await fn()
        except UNAVAILABLE as exc:
            raise StateStoreUnavailableError(
                f"state store {self.store.url} is unreachable during {op} ({type(exc).__name__})",
                run_id=self.run_id,
            ) from None
