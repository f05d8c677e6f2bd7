"""Model prices (USD per million tokens) and the pure cost function."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
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
    """USD per million tokens: input, output, cached input (a cache read) and, keyword-only,
    cache writes (Anthropic charges them above the input rate). A missing cache price
    means the plain input rate."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None
    _: KW_ONLY
    cache_write_per_mtok: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("input_per_mtok", "output_per_mtok"):
            object.__setattr__(self, name, _dec(getattr(self, name), name))
        for name in ("cached_input_per_mtok", "cache_write_per_mtok"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _dec(getattr(self, name), name))

    def cost(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Decimal:
        """Exact cost of one call's tokens (cache reads and writes are part of the prompt)."""
        cached = min(max(cached_tokens, 0), prompt_tokens)
        written = min(max(cache_write_tokens, 0), prompt_tokens - cached)
        read_price = self.cached_input_per_mtok
        write_price = self.cache_write_per_mtok
        return (
            (prompt_tokens - cached - written) * self.input_per_mtok
            + cached * (self.input_per_mtok if read_price is None else read_price)
            + written * (self.input_per_mtok if write_price is None else write_price)
            + completion_tokens * self.output_per_mtok
        ) / _MILLION


BUILTIN_PRICES: Mapping[str, ModelPrice] = {
    "openai/gpt-4o-mini": ModelPrice(Decimal("0.15"), Decimal("0.60"), Decimal("0.075")),
    "openai/gpt-4o": ModelPrice(Decimal("2.50"), Decimal("10"), Decimal("1.25")),
    "openai/gpt-4-turbo": ModelPrice(Decimal("10"), Decimal("30")),
    "anthropic/claude-3.5-haiku": ModelPrice(
        Decimal("0.80"), Decimal("4"), Decimal("0.08"), cache_write_per_mtok=Decimal("1")
    ),
    "anthropic/claude-haiku-4.5": ModelPrice(
        Decimal("1"), Decimal("5"), Decimal("0.10"), cache_write_per_mtok=Decimal("1.25")
    ),
}


def calculate_cost(
    model: str,
    prompt_tokens: int,
    completion_tokens: int = 0,
    pricing: Mapping[str, ModelPrice] | None = None,
    *,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> Decimal:
    """Cost in USD of ``prompt_tokens`` in and ``completion_tokens`` out on ``model``.

    ``pricing`` is merged over the built-in table. An unknown model raises
    ``ConfigError`` naming it: no model is ever priced as another.
    """
    if min(prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens) < 0:
        raise ConfigError("token counts must not be negative")
    price = (pricing or {}).get(model) or BUILTIN_PRICES.get(model)
    if price is None:
        raise ConfigError(
            f"no price known for model {model!r}; pass pricing={{{model!r}: ModelPrice(...)}}"
        )
    return price.cost(prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens)


def _per_mtok(per_token: Any) -> Decimal | None:
    if per_token in (None, ""):
        return None
    return (Decimal(str(per_token)) * _MILLION).normalize()


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
            out[model_id] = ModelPrice(
                prompt.normalize(),
                completion.normalize(),
                _per_mtok(pricing.get("input_cache_read")),
                cache_write_per_mtok=_per_mtok(pricing.get("input_cache_write")),
            )
        except (KeyError, ArithmeticError, ValueError, ConfigError):
            continue
    return out
