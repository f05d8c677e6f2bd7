"""A clock for tests: time moves only when code under test sleeps on it."""

from __future__ import annotations

import asyncio

__all__ = ["FakeClock"]


class FakeClock:
    """A monotonic clock that only moves when something ``await``\\ s its `sleep`.

    Pass ``clock`` and ``clock.sleep`` wherever audit-core takes an injected clock and
    sleep (`RetryPolicy`, the state store's lock renewal, ...): retries and lease
    timing then run instantly and deterministically. ``sleeps`` records every wait asked
    for. `advance` moves time without sleeping (to expire a lease, say).
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` without waiting."""
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the wait, move the clock, and yield to the loop once."""
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)
