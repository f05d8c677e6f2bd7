"""Model prices (USD per million tokens) and the pure cost function."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from audit_core.errors import ConfigError

__all__ = ["BUILTIN_PRICES", "ModelPrice", "calculate_cost", "prices_from_models_listing"]

_MILLION = Decimal(1_000_000)


def _dec(value: Decimal | float | int | str, what: str) -> Decimal:
    result = value if isinstance(value, Decimal) else Decimal(str(value))
    if not result.is_finite() or result < 0:
        raise ConfigError(f"{what} must be a finite, non-negative price, got {value!r}")
    return result


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens: input, output, and (when the provider discounts it) cached input."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_per_mtok", _dec(self.input_per_mtok, "input_per_mtok"))
        object.__setattr__(self, "output_per_mtok", _dec(self.output_per_mtok, "output_per_mtok"))
        if self.cached_input_per_mtok is not None:
            object.__setattr__(
                self,
                "cached_input_per_mtok",
                _dec(self.cached_input_per_mtok, "cached_input_per_mtok"),
            )

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> Decimal:
        """Exact cost of one call's tokens."""
        cached = min(max(cached_tokens, 0), prompt_tokens)
        cached_price = (
            self.cached_input_per_mtok
            if self.cached_input_per_mtok is not None
            else self.input_per_mtok
        )
        return (
            (prompt_tokens - cached) * self.input_per_mtok
            + cached * cached_price
            + completion_tokens * self.output_per_mtok
        ) / _MILLION


BUILTIN_PRICES: Mapping[str, ModelPrice] = {
    "openai/gpt-4o-mini": ModelPrice(Decimal("0.15"), Decimal("0.60"), Decimal("0.075")),
    "openai/gpt-4o": ModelPrice(Decimal("2.50"), Decimal("10"), Decimal("1.25")),
    "openai/gpt-4-turbo": ModelPrice(Decimal("10"), Decimal("30")),
    "anthropic/claude-3.5-haiku": ModelPrice(Decimal("0.80"), Decimal("4"), Decimal("0.08")),
    "anthropic/claude-haiku-4.5": ModelPrice(Decimal("1"), Decimal("5"), Decimal("0.10")),
}


def calculate_cost(
    model: str,
    prompt_tokens: int,
    completion_tokens: int = 0,
    pricing: Mapping[str, ModelPrice] | None = None,
    *,
    cached_tokens: int = 0,
) -> Decimal:
    """Cost in USD of ``prompt_tokens`` in and ``completion_tokens`` out on ``model``.

    ``pricing`` is merged over the built-in table. An unknown model raises
    ``ConfigError`` naming it: no model is ever priced as another.
    """
    if prompt_tokens < 0 or completion_tokens < 0:
        raise ConfigError("token counts must not be negative")
    price = (pricing or {}).get(model) or BUILTIN_PRICES.get(model)
    if price is None:
        raise ConfigError(
            f"no price known for model {model!r}; pass pricing={{{model!r}: ModelPrice(...)}}"
        )
    return price.cost(prompt_tokens, completion_tokens, cached_tokens)


def prices_from_models_listing(body: Mapping[str, Any]) -> dict[str, ModelPrice]:
    """Prices from an OpenRouter ``/models`` body (per-token USD strings).

    Entries without prices, or with negative "variable" prices (routers), are skipped.
    """
    out: dict[str, ModelPrice] = {}
    for entry in body.get("data") or ():
        if not isinstance(entry, Mapping):
            continue
        model_id, pricing = entry.get("id"), entry.get("pricing")
        if not isinstance(model_id, str) or not isinstance(pricing, Mapping):
            continue
        try:
            prompt = Decimal(str(pricing["prompt"])) * _MILLION
            completion = Decimal(str(pricing["completion"])) * _MILLION
            cached_raw = pricing.get("input_cache_read")
            cached = Decimal(str(cached_raw)) * _MILLION if cached_raw not in (None, "") else None
            out[model_id] = ModelPrice(
                prompt.normalize(), completion.normalize(), cached and cached.normalize()
            )
        except (KeyError, ArithmeticError, ValueError, ConfigError):
            continue
    return out
