"""Validation of the ``usage`` object an endpoint reports, and the cost it implies.

An endpoint's usage is input like any other: token counts must be integers in
``[0, 10**8]``, a cost a finite, non-negative number under $1M. Anything else raises
`LLMResponseError`; the client re-raises it with the model and request id after
charging the call the worst case it reserved (a reply we cannot verify may still have
been billed).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from audit_core.errors import LLMResponseError
from audit_core.llm._types import Usage

__all__ = ["parse_usage"]

_MAX_TOKENS = 10**8
_MAX_COST = Decimal(10**6)
_ZERO = Decimal(0)


def _invalid(what: str) -> LLMResponseError:
    # The message names the field, never its value.
    return LLMResponseError(f"invalid usage: {what}", status_code=200)


def _count(holder: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = holder.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        raise _invalid(f"usage.{name} is not an integer")
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if not isinstance(value, int):
        raise _invalid(f"usage.{name} is not an integer")
    if not 0 <= value <= _MAX_TOKENS:
        raise _invalid(f"usage.{name} is out of range")
    return value


def _money(holder: Mapping[str, Any], name: str) -> Decimal | None:
    value = holder.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise _invalid(f"usage.{name} is not a number")
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    if not amount.is_finite() or amount < 0 or amount > _MAX_COST:
        raise _invalid(f"usage.{name} is not a finite, non-negative amount")
    return amount


def _details(holder: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = holder.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _invalid(f"usage.{name} is not an object")
    return value


def parse_usage(raw: Any) -> tuple[Usage, Decimal | None]:
    """Validated token counts and the provider-reported cost (None when not reported).

    For BYOK calls (``is_byok``, or a zero ``cost`` next to a non-zero
    ``cost_details.upstream_inference_cost``) the cost is OpenRouter's fee plus what the
    upstream provider charged your own key: both are real spend.
    """
    if not isinstance(raw, Mapping):
        raise _invalid("usage is not an object")
    prompt = _count(raw, "prompt_tokens")
    completion = _count(raw, "completion_tokens")
    total = _count(raw, "total_tokens", prompt + completion)
    prompt_details = _details(raw, "prompt_tokens_details")
    cached = _count(prompt_details, "cached_tokens")
    written = _count(prompt_details, "cache_write_tokens")
    if cached + written > prompt:
        raise _invalid("usage reports more cached tokens than prompt tokens")
    reasoning = _count(_details(raw, "completion_tokens_details"), "reasoning_tokens")
    usage = Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cached_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
    )
    cost = _money(raw, "cost")
    upstream = _money(_details(raw, "cost_details"), "upstream_inference_cost")
    if upstream is not None and (raw.get("is_byok") is True or (cost == _ZERO and upstream)):
        cost = (cost or _ZERO) + upstream
    return usage, cost
