"""Shared fixtures: a fake clock for the retry policy."""

from __future__ import annotations

import pytest

from audit_core.retry import RetryPolicy


class FakeClock:
    """A monotonic clock that only moves when the policy 'sleeps'."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def policy(clock: FakeClock) -> RetryPolicy:
    """A retry policy that never really sleeps, with deterministic mid-range jitter."""
    return RetryPolicy(sleep=clock.sleep, clock=clock, rng=lambda: 0.5)
