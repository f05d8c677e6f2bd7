"""Value types of the LLM client: prompts, usage, responses and one prepared request.

The lowest floor of ``audit_core.llm``: every other module may import this one, and it
imports none of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

__all__ = ["CostSource", "LLMResponse", "Message", "Prompt", "Request", "Sink", "Tier", "Usage"]

Message = Mapping[str, Any]
Prompt = str | Sequence[Message]
Tier = Literal["default", "escalation"]
# Where a recorded cost came from:
#   provider    the endpoint's own usage.cost (plus the BYOK upstream cost)
#   pricing     the price table times the reported token counts
#   unpriced    no verifiable figure: usage missing, or no price for the model; with a
#               budget set the call is charged the worst case it reserved
#   worst_case  usage that failed validation; charged the worst case it reserved
#   cache       answered from the response cache (free)
CostSource = Literal["provider", "pricing", "unpriced", "worst_case", "cache"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token counts as the endpoint reported them (validated: non-negative integers)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMResponse:
    """One completed call. ``cost_usd`` is what the ledger charged; ``cost_source`` says why."""

    text: str
    model: str
    usage: Usage
    cost_usd: Decimal
    cost_source: CostSource
    latency_s: float
    attempts: int
    request_id: str | None
    finish_reason: str | None
    cached: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


class Sink(Protocol):
    """Receives a streamed answer's text deltas; ``delivered`` once it has any."""

    delivered: bool

    def __call__(self, delta: str) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One prepared chat request: what every attempt sends, and what settles its cost.

    ``payload`` is the encoded ``body``; ``max_tokens`` is the completion bound that the
    budget reservation assumes (and that ``body`` carries when a budget is set);
    ``sink`` receives a streamed answer's text deltas as they arrive (`LLMStream`).
    """

    body: Mapping[str, Any]
    payload: bytes
    model: str
    agent: str
    n_messages: int
    max_tokens: int | None
    stream: bool
    sink: Sink | None = field(default=None, repr=False, compare=False)
