"""Identical requests in flight at once are sent once, and survive any one caller leaving.

The shared request runs as a task of its own, which each caller awaits through
``asyncio.shield``: one caller's cancellation leaves it running for the others, and
only when every caller has left is the request itself cancelled (its reservation and
connection are released as for any cancelled call).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["SharedRequests"]

T = TypeVar("T")


@dataclass(slots=True)
class _Shared(Generic[T]):
    task: asyncio.Task[T]
    waiters: int = 0


class SharedRequests(Generic[T]):
    """In-flight requests by key; `join` runs one or joins the one already running."""

    def __init__(self) -> None:
        self._running: dict[str, _Shared[T]] = {}

    def __len__(self) -> int:
        return len(self._running)

    async def join(self, key: str, start: Callable[[], Coroutine[Any, Any, T]]) -> tuple[T, bool]:
        """The result of the request under ``key`` (started with ``start()`` if none runs),
        and whether this caller started it."""
        shared = self._running.get(key)
        owner = shared is None
        if shared is None:
            task = asyncio.create_task(start())
            shared = self._running[key] = _Shared(task)
            task.add_done_callback(functools.partial(self._forget, key, shared))
        shared.waiters += 1
        try:
            result = await asyncio.shield(shared.task)
        except asyncio.CancelledError:
            shared.waiters -= 1
            if shared.waiters == 0:
                shared.task.cancel()
            raise
        shared.waiters -= 1
        return result, owner

    async def cancel_all(self) -> None:
        """Cancel every request still running and wait for them to finish."""
        tasks = [s.task for s in self._running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, key: str, shared: _Shared[T], task: asyncio.Task[T]) -> None:
        if self._running.get(key) is shared:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter got it already
