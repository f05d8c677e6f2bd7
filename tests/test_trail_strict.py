"""What the chain accepts as the value it hashed, and what a relabelled trail looks like.

A stored value that says more than the canonical form keeps (a nanosecond, a seventh
fractional digit) is not the value that was hashed; a value that says the same in
another form (a ``pandas.Timestamp``, trailing zeros) is. Entries labelled HMACs that
are plain SHA-256 hashes are an unkeyed trail relabelled, key or no key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, strategies as st

from audit_core.db import verify_chain
from audit_core.db._chain import KEYED
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


def relabelled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(row, hash_algorithm=KEYED) for row in rows]


@NO_DEADLINE
@given(trails, st.data(), st.sampled_from([None, KEY]))
def test_a_relabelled_trail_names_its_edited_row(
    trail: Any, data: st.DataObject, key: bytes | None
) -> None:
    """Relabelled hmac-sha256 with one row edited: tampered at that row, key or no key."""
    rows = relabelled(chain(trail, None))
    index = data.draw(st.integers(0, len(rows) - 1))
    edited = with_row(rows, index, output_summary=f"{rows[index]['output_summary']}!")
    result = verify_chain(edited, key=key)
    if key is None and len(rows) == 1:
        # The known limit: a lone row that is no plain hash looks like an HMAC without the key.
        assert result.unkeyed_only
        return
    assert (result.status, result.first_bad_sequence) == ("tampered", index + 1)
    if len(rows) > 1:  # another row's plain hash shows the relabelling
        assert "relabelled" in (result.problem or "")


@NO_DEADLINE
@given(trails, st.sampled_from([None, KEY]))
def test_a_relabelled_trail_with_no_edit_fails_at_row_1(trail: Any, key: bytes | None) -> None:
    """Relabelling alone is tampering from row 1: never ok, not even 'unkeyed check only'."""
    result = verify_chain(relabelled(chain(trail, None)), key=key)
    assert (result.status, result.first_bad_sequence) == ("tampered", 1)
    assert "relabelled" in (result.problem or "")


@NO_DEADLINE
@given(trails)
def test_an_honest_keyed_trail_is_not_taken_for_a_relabelled_one(trail: Any) -> None:
    """Real HMACs pass the relabel check: intact with the key, HMACs unchecked without it."""
    rows = chain(trail, KEY)
    assert verify_chain(rows, key=KEY).intact
    without = verify_chain(rows)
    assert without.intact
    assert without.unkeyed_only


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
