"""The state codec and the store against a model, as properties (hypothesis)."""

from __future__ import annotations

import asyncio
import json
import math
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from prometheus_client import CollectorRegistry

from audit_core import AsyncStateStore, StateConflictError, StateEncodingError, StateManagerError
from audit_core.state._codec import (
    MAX_DEPTH,
    decode_envelope,
    encode_state,
    envelope_bytes,
)
from audit_core.state._types import now_text

MB = 8 * 1024 * 1024

ints = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53),
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),  # where orjson's range ends
    st.integers(min_value=-(2**200), max_value=2**200),
)
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)  # no lone surrogates
leaves = st.one_of(
    st.none(), st.booleans(), ints, st.floats(allow_nan=False, allow_infinity=False), texts
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(texts, inner, max_size=5)),
    max_leaves=30,
)
states = st.dictionaries(texts, values, max_size=8)


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON: types included, so [] is not {}, 1 is not 1.0 or True."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


@given(states)
def test_envelope_round_trip_is_exact(state: dict[str, Any]) -> None:
    """Any JSON state survives encode -> envelope -> decode with types and big ints intact."""
    encoded = encode_state(state, max_bytes=MB)
    env = decode_envelope(envelope_bytes(7, "2025-01-01T00:00:00.000000Z", encoded), run_id="r")
    assert env.version == 7
    assert same_json(env.state, state)
    # and the bytes are JSON any reader agrees on
    assert same_json(json.loads(encoded.data), state)


@given(states, st.sampled_from([float("nan"), float("inf"), -float("inf")]), texts)
def test_non_finite_floats_are_refused_anywhere(
    state: dict[str, Any], bad: float, key: str
) -> None:
    """NaN and Infinity are a StateEncodingError wherever they sit (orjson would write null)."""
    nested = {**state, "deep": [{"x": [bad]}]}
    with pytest.raises(StateEncodingError, match="JSON cannot hold"):
        encode_state(nested, max_bytes=MB)
    with pytest.raises(StateEncodingError):
        encode_state({**state, key: bad}, max_bytes=MB)


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimal_keeps_every_digit(value: Decimal) -> None:
    """A Decimal is stored as its exact text, never a float."""
    encoded = encode_state({"d": value}, max_bytes=MB)
    assert json.loads(encoded.data) == {"d": str(value)}


def test_cyclic_state_is_a_typed_error_without_hanging() -> None:
    """A dict that contains itself is refused at once, naming the path."""
    state: dict[str, Any] = {"a": {"b": []}}
    state["a"]["b"].append(state)
    with pytest.raises(StateEncodingError, match=r"cyclic: state\.a\.b\[0\] contains itself"):
        encode_state(state, max_bytes=MB)
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(StateEncodingError, match="cyclic"):
        encode_state({"l": loop, "big": 2**70}, max_bytes=MB)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 100_000])
def test_too_deep_state_is_a_typed_error(depth: int) -> None:
    """Deep nesting is StateEncodingError (never RecursionError), with or without big ints."""
    deep: Any = 1
    for _ in range(depth):
        deep = [deep]
    for state in ({"d": deep}, {"d": deep, "big": 2**70}):
        with pytest.raises(StateEncodingError, match="deeper than"):
            encode_state(state, max_bytes=MB)


def test_as_deep_as_allowed_round_trips() -> None:
    """Nesting just under the limit is stored, big ints or not."""
    deep: Any = 2**70
    for _ in range(MAX_DEPTH - 2):
        deep = [deep]
    encoded = encode_state({"d": deep}, max_bytes=MB)
    assert decode_envelope(envelope_bytes(1, "t", encoded), run_id="r").state == {"d": deep}


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"a": "x\ud800y"}, r"lone surrogate"),
        ({"k\udfff": 1}, r"lone surrogate"),
        ({"a": {1: 2}}, r"keys must be strings"),
        ({"a": [b"bytes"]}, r"state\.a\[0\] is a bytes"),
        ({"a": object(), "big": 2**80}, r"state\.a is a object"),
    ],
)
def test_unencodable_values_are_typed(state: dict[str, Any], match: str) -> None:
    """Surrogates, non-string keys and foreign objects are StateEncodingError naming the path."""
    with pytest.raises(StateEncodingError, match=match):
        encode_state(state, max_bytes=MB)


def test_big_integers_read_back_exactly_from_any_writer() -> None:
    """A value written by another tool (no codec marker) keeps integers beyond 64 bits."""
    raw = b'{"version": 3, "updated_at": "x", "state": {"n": 123456789012345678901234567890}}'
    env = decode_envelope(raw, run_id="r")
    assert env.state["n"] == 123456789012345678901234567890
    assert env.version == 3


@pytest.mark.parametrize("version", ["1e23", "-1", "2.5", "9007199254740992"])
def test_out_of_range_versions_are_refused_when_read(version: str) -> None:
    """A stored version outside 0..2**53-1 is a StateManagerError, never wrapped."""
    raw = b'{"version": %s, "state": {}}' % version.encode()
    with pytest.raises(StateManagerError, match="outside"):
        decode_envelope(raw, run_id="r")


# --- the store against a model of acknowledged writes ------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("save"), st.sampled_from("ab"), st.dictionaries(texts, values, max_size=3)
        ),
        st.tuples(
            st.just("merge"), st.sampled_from("ab"), st.dictionaries(texts, values, max_size=3)
        ),
        st.tuples(st.just("cas"), st.sampled_from("ab"), st.integers(-1, 1)),
        st.tuples(st.just("delete"), st.sampled_from("ab"), st.none()),
        st.tuples(
            st.just("foreign"),
            st.sampled_from("ab"),
            st.sampled_from([(", ", ": "), (",", ": "), (" , ", " : ")]),
        ),
    ),
    max_size=12,
)


async def _run_against_model(script: list[tuple[str, str, Any]]) -> None:
    model: dict[str, tuple[dict[str, Any], int]] = {}
    async with AsyncStateStore.from_url(
        f"memory://{uuid.uuid4().hex}", registry=CollectorRegistry()
    ) as store:
        for op, run, arg in script:
            state, version = model.get(run, ({}, 0))
            if op == "save":
                assert await store.save(run, arg) == version + 1
                model[run] = (arg, version + 1)
            elif op == "merge":
                assert await store.update(run, arg) == version + 1
                model[run] = ({**state, **arg}, version + 1)
            elif op == "cas":
                expected = version + arg
                if expected == version:
                    assert await store.update(run, {"cas": version}, expected) == version + 1
                    model[run] = ({**state, "cas": version}, version + 1)
                else:
                    with pytest.raises(StateConflictError):
                        await store.update(run, {"cas": version}, expected)
            elif op == "delete":
                assert await store.delete(run) is (run in model)
                model.pop(run, None)
            elif run in model:  # another tool rewrites the envelope with other spacing
                text = json.dumps({"state": state, "version": version}, separators=arg)
                # fakeredis's cjson (unlike Redis's) cannot read integers beyond 64 bits
                if not re.search(r"\d{18}", text):
                    await store.client.set(store.key(run), text)
            loaded = await store.load(run)
            want_state, want_version = model.get(run, ({}, 0))
            assert same_json(loaded.state, want_state)
            assert loaded.version == want_version


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_store_matches_a_model_of_acknowledged_writes(script: list[tuple[str, str, Any]]) -> None:
    """Every acknowledged write is what a later read sees; versions count writes; a stale
    expected_version is refused; an envelope re-spaced by another tool changes nothing."""
    asyncio.run(asyncio.wait_for(_run_against_model(script), 30))


@given(
    st.one_of(
        st.floats(min_value=0, max_value=2**34, allow_nan=False),
        st.integers(min_value=0, max_value=2**34),
        # just below a whole second, and half a microsecond either side of one
        st.integers(min_value=0, max_value=2**31).map(lambda s: s + 0.9999995),
        st.integers(min_value=0, max_value=2**31).map(lambda s: s + 5e-7),
    )
)
def test_write_times_are_datetimes_text(now: float) -> None:
    """The cached-second stamp is exactly what strftime of the datetime gives."""
    expected = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert now_text(now) == expected
    assert now_text(now + 1) == datetime.fromtimestamp(now + 1, UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
