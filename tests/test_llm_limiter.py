"""The client's concurrency limiter: a cap that holds, AIMD once per round, server pauses."""

from __future__ import annotations

import asyncio

import pytest

from audit_core.llm._limiter import ConcurrencyLimiter
from audit_core.testing import FakeClock


async def test_cap_holds_and_waiters_are_served_in_order() -> None:
    """Never more than the cap in flight; a released slot goes to the longest waiter."""
    limiter = ConcurrencyLimiter(2)
    first, second = await limiter.acquire(), await limiter.acquire()
    assert limiter.try_acquire() is None
    order: list[int] = []

    async def wait(n: int) -> None:
        await limiter.acquire()
        order.append(n)

    tasks = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert limiter.in_flight == 2
    limiter.release(first, "ok")
    limiter.release(second, "ok")
    await asyncio.sleep(0)
    assert order == [0, 1]
    assert limiter.in_flight == 2
    tasks[2].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    """A waiter cancelled after being granted a slot gives it to the next one."""
    limiter = ConcurrencyLimiter(1)
    held = await limiter.acquire()
    granted_then_cancelled = asyncio.create_task(limiter.acquire())
    next_in_line = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    limiter.release(held, "ok")  # grants the first waiter...
    granted_then_cancelled.cancel()  # ...which is cancelled before it runs
    await asyncio.wait_for(next_in_line, 1)
    assert limiter.in_flight == 1
    with pytest.raises(asyncio.CancelledError):
        await granted_then_cancelled


async def test_overload_shrinks_once_per_round_and_successes_grow_it_back() -> None:
    """Several 429s from one round of requests shrink the limit once, not once each."""
    limiter = ConcurrencyLimiter(10)
    tickets = [await limiter.acquire() for _ in range(10)]
    for t in tickets[:5]:
        limiter.release(t, "overload")
    assert limiter.decreases == 1
    assert limiter.limit == pytest.approx(7.0)
    after = await limiter.acquire()
    limiter.release(after, "overload")  # sent under the new limit: counts again
    assert limiter.decreases == 2
    for t in tickets[5:]:
        limiter.release(t, "ok")
    assert limiter.limit > 7.0 * 0.7
    assert limiter.in_flight == 0


async def test_fixed_limiter_never_moves() -> None:
    """adaptive=False: a plain semaphore, whatever the outcomes."""
    limiter = ConcurrencyLimiter(4, adaptive=False)
    t = await limiter.acquire()
    limiter.release(t, "overload", 30.0)
    assert (limiter.limit, limiter.decreases) == (4.0, 0)
    assert limiter.try_acquire() is not None


async def test_retry_after_pauses_every_new_attempt() -> None:
    """A server's Retry-After holds new attempts until it has passed (injected clock)."""
    clock = FakeClock()
    limiter = ConcurrencyLimiter(8, clock=clock, sleep=clock.sleep)
    t = await limiter.acquire()
    limiter.release(t, "overload", 2.5)
    assert limiter.try_acquire() is None  # paused: the fast path refuses
    await limiter.acquire()
    assert clock.sleeps == [2.5]
    assert limiter.try_acquire() is not None  # the pause is over
