"""What the chain accepts as the value it hashed.

A stored value that says more than the canonical form keeps (a nanosecond, a seventh
fractional digit) is not the value that was hashed; a value that says the same in
another form (a ``pandas.Timestamp``, trailing zeros) is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, strategies as st

from audit_core.db import verify_chain
from tests.test_trail_chain import KEY, NO_DEADLINE, chain, trails

nanoseconds = st.integers(1, 999)


def with_row(rows: list[dict[str, Any]], index: int, **values: Any) -> list[dict[str, Any]]:
    return [dict(row, **values) if i == index else row for i, row in enumerate(rows)]


def iso(stamp: datetime) -> str:
    return stamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


@NO_DEADLINE
@given(trails, st.data())
def test_a_time_read_in_another_exact_form_keeps_its_hash(trail: Any, data: st.DataObject) -> None:
    """A pandas.Timestamp, or text with nine digits ending in 000: the hash is the same."""
    rows = chain(trail, None)
    index = data.draw(st.integers(0, len(rows) - 1))
    stamp = rows[index]["timestamp"]
    for form in (pd.Timestamp(stamp), iso(stamp).replace("+00", "000+00")):
        assert verify_chain(with_row(rows, index, timestamp=form)).intact


@NO_DEADLINE
@given(trails, st.data(), nanoseconds)
def test_a_time_moved_by_nanoseconds_fails_its_row(
    trail: Any, data: st.DataObject, ns: int
) -> None:
    """Sub-microsecond digits, as a pandas.Timestamp or as text, fail that very row."""
    rows = chain(trail, None)
    index = data.draw(st.integers(0, len(rows) - 1))
    stamp = rows[index]["timestamp"]
    for form in (
        pd.Timestamp(stamp) + pd.Timedelta(nanoseconds=ns),
        iso(stamp).replace("+00", f"{ns:03d}+00"),
    ):
        result = verify_chain(with_row(rows, index, timestamp=form))
        assert (result.status, result.first_bad_sequence) == ("tampered", index + 1)


def test_a_nanosecond_edit_of_a_keyed_row_fails_its_row() -> None:
    """Keyed rows read the same canonical form: 400 ns later is an HMAC mismatch."""
    entry = {"agent_name": "a", "tool_called": "t", "timestamp": datetime(2024, 1, 2, tzinfo=UTC)}
    rows = chain([entry, entry], KEY)
    moved = with_row(rows, 1, timestamp=pd.Timestamp("2024-01-02T00:00:00.000000400Z"))
    result = verify_chain(moved, key=KEY)
    assert (result.status, result.first_bad_sequence) == ("tampered", 2)


@pytest.mark.parametrize(
    ("stamp", "microsecond"),
    [("2024-01-02 00:00:00.1234567+00", 123456), ("2024-01-02T00:00:00,0000001Z", 0)],
)
def test_a_seventh_fractional_digit_of_text_is_not_dropped(stamp: str, microsecond: int) -> None:
    """Text whose first six digits are the hashed time, plus a seventh: not that time."""
    hashed = datetime(2024, 1, 2, microsecond=microsecond, tzinfo=UTC)
    rows = chain([{"agent_name": "a", "tool_called": "t", "timestamp": hashed}], None)
    assert verify_chain(with_row(rows, 0, timestamp=stamp)).intact is False
    assert verify_chain(with_row(rows, 0, timestamp=iso(hashed))).intact
