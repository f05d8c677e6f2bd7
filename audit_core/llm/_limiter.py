"""The client's concurrency limit: a fixed cap, or AIMD that follows the provider's rate.

Providers answer bursts with 429 (or 503). With ``adaptive=True`` the limit shrinks by
30% on such an answer (once per round of requests sent under the old limit, as TCP
does), grows by one per limit's worth of successes (a quarter of that near the limit
where the provider last pushed back), and never exceeds ``max_concurrency``; a server's
``Retry-After`` also pauses every new attempt of the client until it has passed, since
the rate limit is shared by all of them. One limiter per client, shared by all its calls
and batches. With ``adaptive=False`` it is a plain semaphore of ``max_concurrency``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Literal

__all__ = ["ConcurrencyLimiter", "Outcome"]

Outcome = Literal["ok", "overload", "other"]
_DECREASE = 0.7
# Growth per limit's worth of successes: one, but only a quarter near the limit at which
# the provider last pushed back (each probe past it costs a 429 or two).
_STEP_NEAR_CEILING = 0.25
_NEAR = 0.85


class ConcurrencyLimiter:
    """At most ``limit`` attempts in flight (``limit`` moves only when adaptive)."""

    def __init__(
        self,
        max_concurrency: int,
        *,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.adaptive = adaptive
        self.limit = float(max_concurrency)
        self.in_flight = 0
        self.decreases = 0
        self._clock = clock
        self._sleep = sleep
        self._epoch = 0
        self._not_before = 0.0
        self._ceiling = float("inf")
        self._waiters: deque[asyncio.Future[None]] = deque()

    def _cap(self) -> int:
        return max(1, int(self.limit))

    def try_acquire(self) -> int | None:
        """A slot at once (its ticket), or None when the caller must wait in `acquire`."""
        free = self.in_flight < self._cap() and not self._waiters
        if free and self._not_before <= self._clock():
            self.in_flight += 1
            return self._epoch
        return None

    async def acquire(self) -> int:
        """Wait for a slot (and past any server-requested pause); returns a ticket."""
        if self.in_flight < self._cap() and not self._waiters:
            self.in_flight += 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._give_back()  # granted, then cancelled: pass the slot on
                elif waiter in self._waiters:  # a release may have dropped it already
                    self._waiters.remove(waiter)
                raise
        pause = self._not_before - self._clock()
        if pause > 0:
            try:
                await self._sleep(pause)
            except asyncio.CancelledError:
                self._give_back()
                raise
        return self._epoch

    def release(self, ticket: int, outcome: Outcome, retry_after_s: float | None = None) -> None:
        """Return a slot, saying how its attempt went."""
        if self.adaptive:
            if outcome == "overload":
                if ticket == self._epoch:  # the first overload of this round decides
                    self._ceiling = self.limit
                    self.limit = max(1.0, self.limit * _DECREASE)
                    self._epoch += 1
                    self.decreases += 1
                if retry_after_s:
                    self._not_before = max(self._not_before, self._clock() + retry_after_s)
            elif outcome == "ok" and self.limit < self.max_concurrency:
                step = _STEP_NEAR_CEILING if self.limit > _NEAR * self._ceiling else 1.0
                self.limit = min(float(self.max_concurrency), self.limit + step / self.limit)
        self._give_back()

    def _give_back(self) -> None:
        self.in_flight -= 1
        cap = self._cap()
        while self._waiters and self.in_flight < cap:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)
