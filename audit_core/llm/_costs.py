"""The cost ledger of one `AsyncLLMClient`, and the budget reservations that keep its cap."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from audit_core.errors import LLMBudgetExceededError

__all__ = ["CostLedger", "Reservation"]

_ZERO = Decimal(0)


class Reservation:
    """A call's expected worst cost, held against the budget until the call settles.

    ``worst`` is what the request itself bounds (its bytes and ``max_tokens``); ``amount``
    may be more, once replies on ``model`` have been seen to overrun that bound.
    """

    __slots__ = ("amount", "model", "open", "worst")

    def __init__(self, amount: Decimal, *, model: str = "", worst: Decimal | None = None) -> None:
        self.amount = amount
        self.model = model
        self.worst = amount if worst is None else worst
        self.open = True


class CostLedger:
    """What a client has spent, reserved and has left, by model and by agent.

    Reserve-then-settle under one lock: a call reserves its worst case before it is
    sent and settles to its real cost after, so the budget holds under any concurrency.
    """

    def __init__(self, budget_usd: Decimal | None = None) -> None:
        self.budget_usd = budget_usd
        self._lock = threading.Lock()
        self.total_usd = _ZERO
        self.reserved_usd = _ZERO
        self._open: set[Reservation] = set()
        self.by_model: dict[str, Decimal] = defaultdict(lambda: _ZERO)
        self.by_agent: dict[str, Decimal] = defaultdict(lambda: _ZERO)
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.unpriced_calls = 0
        self.unpriced_models: set[str] = set()
        # Every billed attempt is here: those that failed after billing (an error
        # inside a 200 with usage, a content filter, usage that fails validation) too.
        self.billed_failures = 0
        self.by_source: dict[str, Decimal] = defaultdict(lambda: _ZERO)
        self.calls_by_source: dict[str, int] = defaultdict(int)
        # Replies whose real cost exceeded the worst case reserved for them.
        self.overruns = 0
        self.calls_by_model: dict[str, int] = defaultdict(int)
        self.tokens_by_model: dict[str, int] = defaultdict(int)
        # What the response cache and in-flight deduplication saved (USD: what the
        # original answer cost, so an estimate of the repeat's price).
        self.saved_calls = 0
        self.saved_tokens = 0
        self.saved_usd = _ZERO

    @property
    def remaining_usd(self) -> Decimal | None:
        """Budget left after spend and open reservations; ``None`` without a budget."""
        if self.budget_usd is None:
            return None
        return self.budget_usd - self.total_usd - self.reserved_usd

    def reserve(
        self, amount: Decimal, *, model: str, worst: Decimal | None = None
    ) -> Reservation | None:
        """Hold ``amount`` against the budget or raise `LLMBudgetExceededError`
        (``worst``: the request's own bound, when ``amount`` allows for overruns)."""
        if self.budget_usd is None:
            return None
        with self._lock:
            remaining = self.budget_usd - self.total_usd - self.reserved_usd
            if amount > remaining:
                raise LLMBudgetExceededError(
                    f"call on {model!r} may cost up to ${amount:.6f}, but only "
                    f"${max(remaining, _ZERO):.6f} of the ${self.budget_usd} budget is left",
                    model=model,
                    required_usd=amount,
                    remaining_usd=max(remaining, _ZERO),
                )
            self.reserved_usd += amount
            reservation = Reservation(amount, model=model, worst=worst)
            self._open.add(reservation)
        return reservation

    def top_up(self, model: str, amount_for: Callable[[Reservation], Decimal]) -> None:
        """Raise each open reservation on ``model`` to ``amount_for(it)`` where that is more.

        For calls already sent when a reply showed ``model`` costs more than requests
        bound: they are now expected to cost that too, so what is left for new calls
        shrinks at once (below zero if they will overrun the budget between them).
        """
        with self._lock:
            for reservation in self._open:
                if reservation.model == model:
                    more = amount_for(reservation) - reservation.amount
                    if more > 0:
                        reservation.amount += more
                        self.reserved_usd += more

    def release(self, reservation: Reservation | None) -> None:
        """Give back a reservation whose call cost nothing (it failed)."""
        if reservation is None or not reservation.open:
            return
        with self._lock:
            reservation.open = False
            self._open.discard(reservation)
            self.reserved_usd -= reservation.amount

    def record(
        self,
        *,
        model: str,
        agent: str,
        cost: Decimal | None,
        prompt_tokens: int,
        completion_tokens: int,
        reservation: Reservation | None = None,
        source: str = "pricing",
        failed: bool = False,
    ) -> bool:
        """Settle one billed attempt (``cost=None``: no price was known; ``failed``: the
        attempt was billed but raised). Returns True when ``cost`` overran the reservation.
        """
        with self._lock:
            overrun = False
            if reservation is not None and reservation.open:
                reservation.open = False
                self._open.discard(reservation)
                self.reserved_usd -= reservation.amount
                overrun = cost is not None and cost > reservation.amount
                self.overruns += overrun
            self.calls += 1
            self.billed_failures += failed
            self.calls_by_source[source] += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.calls_by_model[model] += 1
            self.tokens_by_model[model] += prompt_tokens + completion_tokens
            if cost is None or source == "unpriced":
                self.unpriced_calls += 1
                self.unpriced_models.add(model)
            if cost is None:
                return overrun
            self.total_usd += cost
            self.by_model[model] += cost
            self.by_agent[agent] += cost
            self.by_source[source] += cost
            return overrun

    def record_saving(
        self, *, model: str, cost: Decimal, prompt_tokens: int, completion_tokens: int
    ) -> None:
        """Count a call answered from the cache (or a duplicate joined in flight)."""
        with self._lock:
            self.saved_calls += 1
            self.saved_tokens += prompt_tokens + completion_tokens
            self.saved_usd += cost

    def snapshot(self) -> dict[str, Any]:
        """A JSON-serialisable copy (Decimals as strings, so nothing is rounded)."""
        with self._lock:
            remaining = self.remaining_usd
            return {
                "total_usd": str(self.total_usd),
                "reserved_usd": str(self.reserved_usd),
                "remaining_usd": None if remaining is None else str(remaining),
                "budget_usd": None if self.budget_usd is None else str(self.budget_usd),
                "by_model": {k: str(v) for k, v in sorted(self.by_model.items())},
                "by_agent": {k: str(v) for k, v in sorted(self.by_agent.items())},
                "calls": self.calls,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "unpriced_calls": self.unpriced_calls,
                "unpriced_models": sorted(self.unpriced_models),
                "billed_failures": self.billed_failures,
                "overruns": self.overruns,
                "by_source": {k: str(v) for k, v in sorted(self.by_source.items())},
                "calls_by_source": dict(sorted(self.calls_by_source.items())),
                "calls_by_model": dict(sorted(self.calls_by_model.items())),
                "tokens_by_model": dict(sorted(self.tokens_by_model.items())),
                "saved": {
                    "calls": self.saved_calls,
                    "tokens": self.saved_tokens,
                    "usd": str(self.saved_usd),
                },
            }

    def __repr__(self) -> str:
        return (
            f"CostLedger(total_usd={self.total_usd}, reserved_usd={self.reserved_usd}, "
            f"remaining_usd={self.remaining_usd}, calls={self.calls})"
        )
