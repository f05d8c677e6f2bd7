"""Money: budget reservations, and the settlement of every billed attempt.

Each attempt reserves its worst case before it is sent (the encoded request's bytes as
prompt tokens, the request's ``max_tokens`` as completion). A 200 is settled whatever it
holds: its usage is validated and charged, even when the body also carries an error
(that error is raised after the charge). What cannot be verified is charged the worst
case reserved: a body that is not JSON or not an object, usage that fails validation
("worst_case"), a stream abandoned after the endpoint began answering ("worst_case"),
and a successful answer with no usage at all ("unpriced"). Without a
budget nothing is reserved, so those are counted in ``unpriced_calls`` at $0. A reply
that costs more than its reservation is recorded at its real cost, as an overrun.

After a reply on a model costs more than its request bounds, no call on that model is
sent whose cost, scaled by the worst ratio seen (and at least the dearest overrun),
does not fit what is left, with calls in flight held to the same figure. Replies
already sent when the first overrun shows are billed as the endpoint chooses: a budget
is kept exactly only by endpoints that honour ``max_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from audit_core._logging import get_logger
from audit_core.errors import ConfigError, LLMError, LLMResponseError
from audit_core.llm._costs import CostLedger, Reservation
from audit_core.llm._errors_map import (
    Redactor,
    content_filter_error,
    embedded_error,
    message_texts,
)
from audit_core.llm._pricing import ModelPrice
from audit_core.llm._types import CostSource, Request, Usage
from audit_core.llm._usage import parse_usage
from audit_core.metrics import Metrics

__all__ = ["Accountant", "Billed"]

_log = get_logger("audit_core.llm")
# Per-message framing tokens added by chat templates; generous, for the budget's worst case.
_FRAMING_TOKENS_PER_MESSAGE = 8
_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(slots=True, kw_only=True)
class Billed:
    """One settled attempt: its body and what the ledger charged for it."""

    body: Mapping[str, Any]
    usage: Usage
    cost: Decimal
    source: CostSource
    request_id: str | None
    attempt: int


def _worst_case_prompt_tokens(payload: bytes, n_messages: int) -> int:
    # No tokenizer emits fewer than one byte of UTF-8 per token, so the encoded request
    # is an upper bound on its prompt tokens (plus chat-template framing).
    return len(payload) + _FRAMING_TOKENS_PER_MESSAGE * n_messages


class Accountant:
    """The ledger, the prices and the meters of one client, and the rules that use them."""

    def __init__(
        self,
        *,
        ledger: CostLedger,
        prices: dict[str, ModelPrice],
        reserve_tokens: int,
        metrics: Metrics,
        api_key: str | None,
    ) -> None:
        self.ledger = ledger
        self.prices = prices
        self.reserve_tokens = reserve_tokens
        self.metrics = metrics
        self._api_key = api_key
        self._children: dict[tuple[str, str], tuple[Any, ...]] = {}
        # Per model: the largest cost / bound ratio and the largest cost seen overrunning.
        self._overruns: dict[str, tuple[Decimal, Decimal]] = {}

    def meters(self, model: str, agent: str) -> tuple[Any, ...]:
        key = (model, agent)
        children = self._children.get(key)
        if children is None:
            m = self.metrics
            children = self._children[key] = (
                m.llm_requests.labels(model, agent, "ok"),
                m.llm_tokens.labels(model, agent, "prompt"),
                m.llm_tokens.labels(model, agent, "completion"),
                m.llm_cost.labels(model, agent),
                m.llm_seconds.labels(model),
            )
        return children

    def reserve(self, req: Request) -> Reservation | None:
        if self.ledger.budget_usd is None:
            return None
        price = self.prices.get(req.model)
        if price is None:
            raise ConfigError(
                f"a budget is set but no price is known for model {req.model!r}, so its "
                "worst-case cost cannot be reserved; pass pricing= or call refresh_pricing()"
            )
        assert req.max_tokens is not None  # _prepare bounds every budgeted request
        worst = price.cost(_worst_case_prompt_tokens(req.payload, req.n_messages), req.max_tokens)
        try:
            return self.ledger.reserve(
                self._expected(req.model, worst), model=req.model, worst=worst
            )
        except LLMError:
            self.metrics.llm_requests.labels(req.model, "-", "budget_exceeded").inc()
            raise

    def _expected(self, model: str, worst: Decimal) -> Decimal:
        """What a call bounded by ``worst`` may cost, given the overruns seen on ``model``."""
        seen = self._overruns.get(model)
        if seen is None:
            return worst
        ratio, largest = seen
        return max(worst * ratio, largest, worst)

    def _learn_overrun(self, model: str, cost: Decimal, worst: Decimal) -> None:
        """A reply cost more than its request bounds (an endpoint ignoring ``max_tokens``,
        a price above the table's): from now on calls on ``model`` reserve as much, scaled
        to their own bound, and calls already in flight are held to it too."""
        ratio, largest = self._overruns.get(model, (_ONE, _ZERO))
        if worst > 0:
            ratio = max(ratio, cost / worst)
        self._overruns[model] = (ratio, max(largest, cost))
        self.ledger.top_up(model, lambda r: self._expected(model, r.worst))

    def unverified(
        self, req: Request, reservation: Reservation | None, what: str, request_id: str | None
    ) -> LLMResponseError:
        """A 200 we cannot read may still be billed: charge the worst case reserved."""
        self.charge_worst_case(req, reservation)
        return LLMResponseError(
            f"LLM endpoint returned {what} (charged the worst case reserved)",
            model=req.model,
            status_code=200,
            request_id=request_id,
        )

    def charge_worst_case(self, req: Request, reservation: Reservation | None) -> None:
        """Charge an attempt whose cost cannot be known the worst case it reserved."""
        self._charge(req, None, None, reservation, "worst_case", failed=True)

    def _charge(
        self,
        req: Request,
        usage: Usage | None,
        cost: Decimal | None,
        reservation: Reservation | None,
        source: CostSource,
        *,
        failed: bool = False,
    ) -> Decimal:
        """Record one billed attempt; ``cost=None`` with ``usage=None``: the worst case."""
        if cost is None and usage is None and reservation is not None:
            cost = reservation.amount
        prompt = usage.prompt_tokens if usage else 0
        completion = usage.completion_tokens if usage else 0
        overrun = self.ledger.record(
            model=req.model,
            agent=req.agent,
            cost=cost,
            prompt_tokens=prompt,
            completion_tokens=completion,
            reservation=reservation,
            source=source,
            failed=failed,
        )
        # Learn only from billed usage: a worst case charged is our own estimate.
        if usage is not None and cost is not None and reservation and cost > reservation.worst:
            self._learn_overrun(req.model, cost, reservation.worst)
        if overrun:
            self.metrics.llm_budget_overruns.labels(req.model).inc()
            _log.warning(
                "audit_core.llm.overrun",
                model=req.model,
                agent=req.agent,
                cost_usd=str(cost),
                reserved_usd=str(reservation.amount if reservation else None),
            )
        if source == "unpriced":
            self.metrics.llm_unpriced.labels(req.model).inc()
            _log.warning("audit_core.llm.unpriced", model=req.model, agent=req.agent)
        _req, tok_in, tok_out, cost_counter, _sec = self.meters(req.model, req.agent)
        tok_in.inc(prompt)
        tok_out.inc(completion)
        if cost:
            cost_counter.inc(float(cost))
        if self.ledger.budget_usd is not None:
            self.metrics.llm_budget_remaining.set(float(self.ledger.remaining_usd or 0))
        return cost if cost is not None else _ZERO

    def _price(self, req: Request, body: Mapping[str, Any], usage: Usage) -> Decimal | None:
        price = self.prices.get(req.model) or self.prices.get(str(body.get("model") or ""))
        if price is None:
            return None
        return price.cost(
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens,
            usage.cache_write_tokens,
        )

    def settle(
        self,
        req: Request,
        body: Any,
        reservation: Reservation | None,
        attempt: int,
        request_id: str | None,
    ) -> Billed:
        """Charge a 200's usage (even when it carries an error), then raise that error."""
        if not isinstance(body, dict):
            raise self.unverified(req, reservation, "a body that is not an object", request_id)
        if isinstance(body.get("id"), str):
            request_id = body["id"]
        usage: Usage | None = None
        reported: Decimal | None = None
        if body.get("usage") is not None:
            try:
                usage, reported = parse_usage(body["usage"])
            except LLMResponseError as exc:
                raise self.unverified(req, reservation, str(exc), request_id) from None
        failure = self._failure(req, body, request_id)
        source: CostSource
        if usage is None:
            if failure is not None:
                raise failure  # an error without usage: nothing billed, reservation released
            cost, source = None, "unpriced"  # charged the worst case reserved, if any
        elif reported is not None:
            cost, source = reported, "provider"
        else:
            cost = self._price(req, body, usage)
            source = "pricing" if cost is not None else "unpriced"
        charged = self._charge(req, usage, cost, reservation, source, failed=failure is not None)
        if failure is not None:
            raise failure
        return Billed(
            body=body,
            usage=usage or Usage(),
            cost=charged,
            source=source,
            request_id=request_id,
            attempt=attempt,
        )

    def _failure(
        self, req: Request, body: Mapping[str, Any], request_id: str | None
    ) -> LLMError | None:
        """What is wrong with a 200 body, or None when it holds a usable answer."""
        if body.get("error") is not None:
            return self._embedded(req, body["error"], request_id)
        choices = body.get("choices")
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            return LLMResponseError(
                "LLM endpoint returned no choices",
                model=req.model,
                status_code=200,
                request_id=request_id,
            )
        choice = choices[0]
        if choice.get("error") is not None or choice.get("finish_reason") == "error":
            return self._embedded(req, choice.get("error") or {}, request_id)
        if choice.get("finish_reason") == "content_filter":
            return content_filter_error(model=req.model, request_id=request_id)
        if not isinstance(choice.get("message"), dict):
            return LLMResponseError(
                "LLM endpoint returned a choice with no message",
                model=req.model,
                status_code=200,
                request_id=request_id,
            )
        return None

    def _embedded(self, req: Request, error: Any, request_id: str | None) -> LLMError:
        redact = Redactor(self._api_key, message_texts(req.body["messages"]))
        return embedded_error(error, model=req.model, redact=redact, request_id=request_id)
