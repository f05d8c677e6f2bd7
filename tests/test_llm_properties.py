"""Properties that are the specification: cost arithmetic, usage validation, redaction, ledger.

No hypothesis deadline: a loaded machine must not turn a slow example into a failure.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from hypothesis import given, settings, strategies as st

from audit_core.errors import LLMResponseError
from audit_core.llm import BUILTIN_PRICES, CostLedger, ModelPrice, calculate_cost
from audit_core.llm._errors_map import Redactor
from audit_core.llm._usage import parse_usage

MILLION = Decimal(1_000_000)
prices = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)
tokens = st.integers(min_value=0, max_value=10**7)


@st.composite
def split_prompt(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(prompt, cached, written, completion) with cached + written <= prompt."""
    prompt = draw(tokens)
    cached = draw(st.integers(0, prompt))
    written = draw(st.integers(0, prompt - cached))
    return prompt, cached, written, draw(tokens)


@settings(deadline=None)
@given(prices, prices, prices, prices, split_prompt())
def test_cost_is_the_exact_sum_of_its_parts(
    inp: Decimal, out: Decimal, read: Decimal, write: Decimal, t: tuple[int, int, int, int]
) -> None:
    """Every token class at its own rate, in exact Decimal, never negative."""
    prompt, cached, written, completion = t
    price = ModelPrice(inp, out, read, cache_write_per_mtok=write)
    expected = ((prompt - cached - written) * inp + cached * read + written * write) / MILLION
    expected += completion * out / MILLION
    cost = price.cost(prompt, completion, cached, written)
    assert cost == expected
    assert cost >= 0


@settings(deadline=None)
@given(prices, prices, split_prompt(), split_prompt())
def test_cost_is_additive_over_calls(
    inp: Decimal, out: Decimal, a: tuple[int, int, int, int], b: tuple[int, int, int, int]
) -> None:
    """Two calls cost what one call with their summed tokens costs (no rounding drift)."""
    price = ModelPrice(inp, out, inp / 10, cache_write_per_mtok=inp * Decimal("1.25"))
    both = tuple(x + y for x, y in zip(a, b, strict=True))
    cost_a = price.cost(a[0], a[3], a[1], a[2])
    cost_b = price.cost(b[0], b[3], b[1], b[2])
    assert cost_a + cost_b == price.cost(both[0], both[3], both[1], both[2])


@settings(deadline=None)
@given(st.sampled_from(sorted(BUILTIN_PRICES)), split_prompt())
def test_calculate_cost_matches_the_table(model: str, t: tuple[int, int, int, int]) -> None:
    """calculate_cost is ModelPrice.cost of the built-in entry, and monotone in output."""
    prompt, cached, written, completion = t
    cost = calculate_cost(
        model, prompt, completion, cached_tokens=cached, cache_write_tokens=written
    )
    assert cost == BUILTIN_PRICES[model].cost(prompt, completion, cached, written)
    more = calculate_cost(
        model, prompt, completion + 1, cached_tokens=cached, cache_write_tokens=written
    )
    assert more >= cost


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children)
    ),
    max_leaves=8,
)
money = (
    st.sampled_from(
        [float("nan"), Decimal("NaN"), Decimal("sNaN"), float("inf"), Decimal("-Infinity")]
    )
    | st.sampled_from([-1000, -0.0, "0.1", True, None, [1], {"a": 1}])
    | st.floats()
    | st.decimals()
)
usage_keys = st.sampled_from(
    ["prompt_tokens", "completion_tokens", "total_tokens", "cost", "is_byok"]
)
usage_like = (
    st.dictionaries(usage_keys, json_values)
    | json_values
    | st.fixed_dictionaries({"prompt_tokens": tokens, "cost": money})
    | st.fixed_dictionaries(
        {
            "prompt_tokens": json_values,
            "prompt_tokens_details": st.dictionaries(
                st.sampled_from(["cached_tokens", "cache_write_tokens"]), json_values
            ),
            "cost_details": st.dictionaries(st.just("upstream_inference_cost"), json_values),
        }
    )
)


@settings(max_examples=300, deadline=None)
@given(usage_like)
def test_usage_is_valid_or_rejected_never_anything_else(raw: Any) -> None:
    """Whatever the endpoint sends as usage: counts that are non-negative integers and a
    finite non-negative cost, or LLMResponseError (never another exception, never NaN)."""
    try:
        usage, cost = parse_usage(raw)
    except LLMResponseError:
        return
    for n in (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens):
        assert isinstance(n, int)
        assert not isinstance(n, bool)
        assert n >= 0
    assert usage.cached_tokens + usage.cache_write_tokens <= usage.prompt_tokens
    if cost is not None:
        assert cost.is_finite()
        assert cost >= 0


@settings(deadline=None)
@given(tokens, tokens, st.decimals(min_value=0, max_value=10, places=8))
def test_valid_usage_round_trips(prompt: int, completion: int, cost: Decimal) -> None:
    """A well-formed usage object is read exactly."""
    usage, read = parse_usage(
        {"prompt_tokens": prompt, "completion_tokens": completion, "cost": cost}
    )
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, completion)
    assert usage.total_tokens == prompt + completion
    assert read == cost


key_text = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=12)
prompt_text = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,\n", min_size=1, max_size=80)


@settings(deadline=None)
@given(key_text, prompt_text, st.text(max_size=20), st.text(max_size=20))
def test_redactor_removes_the_key_and_prompt_whatever_surrounds_them(
    key: str, prompt: str, before: str, after: str
) -> None:
    """The key (any shape) and the whole prompt never survive redaction."""
    redact = Redactor(key, [prompt])
    out = redact(f"{before}{key}{after} echo: {prompt} {key}")
    assert key not in out
    if len(prompt.strip()) >= 8:
        assert prompt.strip() not in out


ops = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "record", "release"]),
        st.decimals(min_value=0, max_value=1, places=6),
    ),
    max_size=40,
)


@settings(deadline=None)
@given(st.decimals(min_value=0, max_value=5, places=4), ops)
def test_ledger_never_leaks_or_goes_negative(budget: Decimal, steps: Any) -> None:
    """Any sequence of reserve / record / release keeps spent + reserved + left == budget,
    with nothing reserved once every reservation is settled."""
    from audit_core import LLMBudgetExceededError

    ledger = CostLedger(budget)
    open_ = []
    for op, amount in steps:
        if op == "reserve":
            with contextlib.suppress(LLMBudgetExceededError):
                open_.append(ledger.reserve(amount, model="m"))
        elif open_:
            held = open_.pop()
            if op == "record":
                ledger.record(
                    model="m",
                    agent="a",
                    cost=amount,
                    prompt_tokens=1,
                    completion_tokens=1,
                    reservation=held,
                )
            else:
                ledger.release(held)
        assert ledger.reserved_usd >= 0
        assert ledger.total_usd + ledger.reserved_usd + ledger.remaining_usd == budget  # type: ignore[operator]
    for held in open_:
        ledger.release(held)
    assert ledger.reserved_usd == 0
