"""Properties that are the real specification of small shared pieces (hypothesis)."""

from __future__ import annotations

import math
import string

from hypothesis import example, given, strategies as st

from audit_core._logging import redact_text
from audit_core.retry import RetryPolicy, parse_retry_after

header_values = st.one_of(
    st.text(max_size=40),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)


@example(retry_after="inf", retry_after_ms=None)
@example(retry_after=None, retry_after_ms="1e400")
@example(retry_after="NaN", retry_after_ms="-1")
@given(
    retry_after=st.none() | header_values,
    retry_after_ms=st.none() | header_values,
)
def test_retry_after_is_absent_or_a_finite_non_negative_wait(
    retry_after: str | None, retry_after_ms: str | None
) -> None:
    """Whatever a server sends, the wait is None or a finite number of seconds >= 0."""
    headers = {
        k: v
        for k, v in (("retry-after", retry_after), ("retry-after-ms", retry_after_ms))
        if v is not None
    }
    wait = parse_retry_after(headers, now=lambda: 1_700_000_000.0)
    assert wait is None or (math.isfinite(wait) and wait >= 0)


@example(retry_number=1025, draw=0.5, initial=1.0, cap=30.0)
@given(
    retry_number=st.integers(min_value=1, max_value=10_000),
    draw=st.floats(min_value=0.0, max_value=1.0),
    initial=st.floats(min_value=0.0, max_value=10.0),
    cap=st.floats(min_value=0.0, max_value=120.0),
)
def test_backoff_stays_within_zero_and_the_cap(
    retry_number: int, draw: float, initial: float, cap: float
) -> None:
    """Full-jitter backoff never waits less than zero or more than wait_max_s."""
    policy = RetryPolicy(wait_initial_s=initial, wait_max_s=cap, rng=lambda: draw)
    wait = policy.backoff(retry_number)
    assert 0.0 <= wait <= cap


key_tails = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=8, max_size=60)
separators = st.sampled_from([" ", "\n", "=", ":", '"', "'", "(", ",", "/", "\t"])
free_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)


@given(prefix=free_text, sep=separators, tail=key_tails, after=separators, suffix=free_text)
def test_a_key_shaped_token_never_survives_redaction(
    prefix: str, sep: str, tail: str, after: str, suffix: str
) -> None:
    """An sk- key anywhere in free text (between separators) is masked."""
    key = f"sk-{tail}"
    text = redact_text(f"{prefix}{sep}{key}{after}{suffix}")
    assert key not in text


@given(prefix=free_text, token=st.text(alphabet=string.ascii_letters + string.digits, min_size=6))
def test_a_bearer_token_never_survives_redaction(prefix: str, token: str) -> None:
    """`Bearer <token>` keeps the word and loses the token."""
    text = redact_text(f"{prefix} Authorization: Bearer {token}")
    assert f"Bearer {token}" not in text
