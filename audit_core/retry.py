"""The one retry policy shared by the LLM client, the state store and the warehouse client.

Exponential backoff with full jitter, capped per wait; stops after ``attempts`` tries or
when the next wait would cross the ``timeout_s`` deadline, whichever comes first. A
server-given wait (``Retry-After`` in seconds or as an HTTP date, ``retry-after-ms``) is
used as is when it is at most ``retry_after_max_s``; a longer one fails the call at once
rather than sleeping for minutes. Only failures the caller's classifier calls transient
are retried; anything else fails on the first attempt.

==================  ==========================================================
``attempts``        tries in all, the first included (``4`` = 3 retries)
``timeout_s``       total deadline across tries and waits (``None``: none)
``wait_initial_s``  ceiling of the first backoff wait
``wait_max_s``      ceiling of any backoff wait
``wait_exp_base``   growth of the ceiling per retry
``jitter``          full jitter: each wait is uniform in ``[0, ceiling]``
``retry_after_max``  longest server-requested wait that is honoured
==================  ==========================================================

Every retry is logged as ``audit_core.retry`` and counted in
``audit_retries_total{client,reason}``. Tests inject ``sleep``/``clock``/``rng`` or call
`set_testing`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from audit_core import _constants as C
from audit_core._logging import get_logger
from audit_core.metrics import Metrics, get_metrics

__all__ = [
    "Classifier",
    "RetryPolicy",
    "Transient",
    "parse_retry_after",
    "set_testing",
]

T = TypeVar("T")
_log = get_logger("audit_core.retry")


@dataclass(frozen=True, slots=True)
class Transient:
    """A classifier's verdict that a failure is worth retrying.

    ``reason`` is a short stable label for logs and metrics (``"status_429"``,
    ``"timeout"``); ``retry_after_s`` is the server's requested wait, if it gave one.
    """

    reason: str
    retry_after_s: float | None = None


Classifier = Callable[[Exception], Transient | None]


@dataclass(frozen=True, slots=True)
class _Testing:
    attempts: int


_testing: _Testing | None = None


def set_testing(on: bool, *, attempts: int = 1) -> None:
    """Testing switch: while on, no policy sleeps and none tries more than ``attempts``."""
    global _testing
    _testing = _Testing(attempts) if on else None


async def _no_sleep(_: float) -> None:
    return None


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Backoff settings plus the injectable sleep, clock and randomness."""

    attempts: int = C.DEFAULT_LLM_MAX_RETRIES + 1
    timeout_s: float | None = C.DEFAULT_RETRY_DEADLINE_S
    wait_initial_s: float = C.DEFAULT_RETRY_WAIT_INITIAL_S
    wait_max_s: float = C.DEFAULT_RETRY_WAIT_MAX_S
    wait_exp_base: float = C.DEFAULT_RETRY_EXP_BASE
    jitter: bool = True
    retry_after_max_s: float = C.DEFAULT_RETRY_AFTER_MAX_S
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        from audit_core.errors import ConfigError

        if self.attempts < 1:
            raise ConfigError(f"retry attempts must be >= 1, got {self.attempts}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError(f"retry timeout_s must be positive, got {self.timeout_s}")
        if self.wait_initial_s < 0 or self.wait_max_s < 0 or self.retry_after_max_s < 0:
            raise ConfigError("retry waits must not be negative")

    def with_attempts(self, attempts: int) -> RetryPolicy:
        """A copy of this policy with another attempt count."""
        return replace(self, attempts=attempts)

    def backoff(self, retry_number: int) -> float:
        """The wait before retry ``retry_number`` (1-based) when the server named none."""
        try:
            growth = self.wait_exp_base ** max(retry_number - 1, 0)
        except OverflowError:  # a long-running retry loop: the cap applies long before
            growth = math.inf
        ceiling = min(self.wait_max_s, self.wait_initial_s * growth) if growth else 0.0
        return self.rng() * ceiling if self.jitter else ceiling

    async def call(
        self,
        fn: Callable[[int], Awaitable[T]],
        *,
        client: str,
        classify: Classifier,
        metrics: Metrics | None = None,
    ) -> T:
        """Await ``fn(attempt_number)`` until it succeeds or the policy gives up.

        The final exception is re-raised unchanged, with ``.attempts`` set when the
        exception has that attribute.
        """
        attempts = self.attempts
        sleep = self.sleep
        if _testing is not None:
            attempts = min(attempts, _testing.attempts)
            sleep = _no_sleep
        # Fast path: the first attempt runs without tenacity's bookkeeping; most calls
        # succeed, and this is the per-call CPU the LLM benchmark measures.
        try:
            return await fn(1)
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None or attempts == 1:
                _stamp(exc, 1)
                raise
            first = exc
            start = self.clock()
        return await self._retry(
            fn, first, verdict, start, attempts, sleep, client, classify, metrics or get_metrics()
        )

    async def _retry(
        self,
        fn: Callable[[int], Awaitable[T]],
        first: Exception,
        verdict: Transient,
        start: float,
        attempts: int,
        sleep: Callable[[float], Awaitable[None]],
        client: str,
        classify: Classifier,
        metrics: Metrics,
    ) -> T:
        last: dict[str, Any] = {"verdict": verdict, "gave_up": None}

        def should_retry(exc: BaseException) -> bool:
            v = classify(exc) if isinstance(exc, Exception) else None
            last["verdict"] = v
            return v is not None

        def wait(rs: RetryCallState) -> float:
            v: Transient = last["verdict"]
            if v.retry_after_s is not None:
                return max(v.retry_after_s, 0.0)
            return self.backoff(rs.attempt_number)

        def stop(rs: RetryCallState) -> bool:
            v: Transient = last["verdict"]
            if rs.attempt_number >= attempts:
                last["gave_up"] = "attempts"
            elif v.retry_after_s is not None and v.retry_after_s > self.retry_after_max_s:
                last["gave_up"] = "retry_after_too_long"
            elif (
                self.timeout_s is not None
                and self.clock() - start + rs.upcoming_sleep > self.timeout_s
            ):
                last["gave_up"] = "deadline"
            else:
                return False
            return True

        def before_sleep(rs: RetryCallState) -> None:
            v: Transient = last["verdict"]
            metrics.retries.labels(client, v.reason).inc()
            exc = rs.outcome.exception() if rs.outcome else None
            _log.warning(
                "audit_core.retry",
                client=client,
                reason=v.reason,
                attempt=rs.attempt_number,
                wait_s=round(rs.upcoming_sleep, 3),
                server_wait=v.retry_after_s is not None,
                error_type=type(exc).__name__,
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(should_retry),
            wait=wait,
            stop=stop,
            before_sleep=before_sleep,
            sleep=sleep,
            reraise=True,
        )
        replay: list[Exception] = [first]
        attempt_number = 1
        try:
            async for attempt in retrying:
                with attempt:
                    attempt_number = attempt.retry_state.attempt_number
                    if replay:
                        # Attempt 1 already ran on the fast path; replay its outcome.
                        raise replay.pop()
                    result = await fn(attempt_number)
                    return result
        except Exception as exc:
            _stamp(exc, attempt_number)
            if last["gave_up"] is not None:
                v = last["verdict"]
                _log.warning(
                    "audit_core.retry.gave_up",
                    client=client,
                    reason=v.reason if v else None,
                    why=last["gave_up"],
                    attempts=attempt_number,
                    error_type=type(exc).__name__,
                )
            raise
        raise AssertionError("unreachable: tenacity ended without outcome")  # pragma: no cover


def _stamp(exc: BaseException, attempts: int) -> None:
    if hasattr(exc, "attempts"):
        with contextlib.suppress(AttributeError):  # read-only on a foreign type
            exc.attempts = attempts


def parse_retry_after(
    headers: Mapping[str, str], *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be delta-seconds or an HTTP date. Returns ``None`` when absent or
    unparseable; a date in the past gives ``0.0``.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = -1.0
        if math.isfinite(value) and value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        return value if math.isfinite(value) and value >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - now(), 0.0)
