"""The shared retry policy, on a fake clock: waits, caps, deadline, classification."""

from __future__ import annotations

import email.utils
import random

import pytest
from prometheus_client import CollectorRegistry

from audit_core import ConfigError, get_metrics
from audit_core.errors import LLMError
from audit_core.retry import RetryPolicy, Transient, parse_retry_after, set_testing
from audit_core.testing import FakeClock, capture_logs


class Flaky(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("flaky")
        self.retry_after = retry_after
        self.attempts: int | None = None


def classify(exc: Exception) -> Transient | None:
    if isinstance(exc, Flaky):
        return Transient("flaky", exc.retry_after)
    return None


def failing(times: int, retry_after: float | None = None) -> tuple[list[int], object]:
    calls: list[int] = []

    async def fn(attempt: int) -> str:
        calls.append(attempt)
        if len(calls) <= times:
            raise Flaky(retry_after)
        return "done"

    return calls, fn


async def test_backoff_grows_and_is_capped(policy: RetryPolicy, clock: FakeClock) -> None:
    """Waits follow initial * 2**n under full jitter, never above wait_max_s."""
    p = RetryPolicy(
        attempts=6, wait_initial_s=1, wait_max_s=5, sleep=clock.sleep, clock=clock, rng=lambda: 1.0
    )
    calls, fn = failing(5)
    assert await p.call(fn, client="t", classify=classify) == "done"  # type: ignore[arg-type]
    assert calls == [1, 2, 3, 4, 5, 6]
    assert clock.sleeps == [1, 2, 4, 5, 5]


def test_full_jitter_bounds() -> None:
    """With real randomness every wait lies in [0, ceiling]."""
    rng = random.Random(7)
    p = RetryPolicy(wait_initial_s=0.5, wait_max_s=8, rng=rng.random)
    for n in range(1, 10):
        ceiling = min(8, 0.5 * 2 ** (n - 1))
        waits = [p.backoff(n) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # it is really spread, not constant


async def test_retry_after_seconds_is_used(policy: RetryPolicy, clock: FakeClock) -> None:
    """A server-given wait replaces the backoff."""
    _, fn = failing(2, retry_after=7.0)
    await policy.call(fn, client="t", classify=classify)  # type: ignore[arg-type]
    assert clock.sleeps == [7.0, 7.0]


async def test_absurd_retry_after_fails_instead_of_sleeping(
    policy: RetryPolicy, clock: FakeClock
) -> None:
    """A Retry-After beyond the cap is not slept on: one attempt, the error raised."""
    calls, fn = failing(5, retry_after=3600.0)
    with capture_logs() as logs, pytest.raises(Flaky) as info:
        await policy.call(fn, client="t", classify=classify)  # type: ignore[arg-type]
    assert calls == [1]
    assert clock.sleeps == []
    assert info.value.attempts == 1
    assert any(e.get("why") == "retry_after_too_long" for e in logs)


async def test_non_transient_makes_exactly_one_attempt(policy: RetryPolicy) -> None:
    """An error the classifier does not call transient is raised at once."""
    calls: list[int] = []

    async def fn(attempt: int) -> None:
        calls.append(attempt)
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        await policy.call(fn, client="t", classify=classify)
    assert calls == [1]


async def test_stops_after_attempts_and_stamps_them(policy: RetryPolicy) -> None:
    """After `attempts` tries the last error is raised with .attempts set."""
    calls, fn = failing(99)
    with pytest.raises(Flaky) as info:
        await policy.with_attempts(3).call(fn, client="t", classify=classify)  # type: ignore[arg-type]
    assert calls == [1, 2, 3]
    assert info.value.attempts == 3


async def test_deadline_stops_before_a_wait_that_would_cross_it(clock: FakeClock) -> None:
    """The total deadline wins over the attempt count."""
    p = RetryPolicy(
        attempts=50,
        timeout_s=10,
        wait_initial_s=4,
        wait_max_s=4,
        sleep=clock.sleep,
        clock=clock,
        rng=lambda: 1.0,
    )
    calls, fn = failing(99)
    with capture_logs() as logs, pytest.raises(Flaky):
        await p.call(fn, client="t", classify=classify)  # type: ignore[arg-type]
    assert clock.sleeps == [4, 4]  # a third 4 s wait would end at 12 s > 10 s
    assert len(calls) == 3
    assert any(e.get("why") == "deadline" for e in logs)


async def test_each_retry_is_logged_and_counted(clock: FakeClock) -> None:
    """Every retry is a structured event and increments audit_retries_total."""
    registry = CollectorRegistry()
    p = RetryPolicy(sleep=clock.sleep, clock=clock, rng=lambda: 0.0)
    _, fn = failing(2)
    with capture_logs() as logs:
        await p.call(fn, client="llm", classify=classify, metrics=get_metrics(registry))  # type: ignore[arg-type]
    retries = [e for e in logs if e["event"] == "audit_core.retry"]
    assert [e["attempt"] for e in retries] == [1, 2]
    assert retries[0]["client"] == "llm"
    assert retries[0]["reason"] == "flaky"
    value = registry.get_sample_value("audit_retries_total", {"client": "llm", "reason": "flaky"})
    assert value == 2


async def test_testing_switch_turns_retries_off(policy: RetryPolicy, clock: FakeClock) -> None:
    """set_testing(True, attempts=1) makes one attempt and never sleeps."""
    set_testing(True, attempts=1)
    try:
        calls, fn = failing(3)
        with pytest.raises(Flaky):
            await policy.call(fn, client="t", classify=classify)  # type: ignore[arg-type]
    finally:
        set_testing(False)
    assert calls == [1]
    assert clock.sleeps == []


async def test_attempts_stamped_on_llm_error(policy: RetryPolicy) -> None:
    """Our own errors carry the attempt count when the policy gives up."""

    async def fn(attempt: int) -> None:
        err = LLMError("x", model="m")
        raise err

    def always(exc: Exception) -> Transient | None:
        return Transient("x")

    with pytest.raises(LLMError) as info:
        await policy.with_attempts(2).call(fn, client="t", classify=always)
    assert info.value.attempts == 2


def test_parse_retry_after_forms() -> None:
    """Seconds, HTTP-date and retry-after-ms are understood; junk is ignored."""
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": "12"}) == 12.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after": date}, now=lambda: now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=lambda: now) == 0.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "-3"}) is None
    assert parse_retry_after({}) is None


def test_bad_policy_is_config_error() -> None:
    """Nonsense settings are rejected up front."""
    with pytest.raises(ConfigError):
        RetryPolicy(attempts=0)
    with pytest.raises(ConfigError):
        RetryPolicy(timeout_s=-1)
