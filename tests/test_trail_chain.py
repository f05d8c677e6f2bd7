"""Properties of the hash chain itself (no database): hypothesis states the spec."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from audit_core.db import TrailHead, head_statement, parse_head_statement, verify_chain
from audit_core.db._chain import GENESIS, KEYED, entry_hash
from audit_core.errors import TrailVerificationError

KEY = b"k" * 32
NO_DEADLINE = settings(deadline=None)  # a loaded CI machine must not turn slow into failed
text = st.text(max_size=30)
optional_text = st.none() | text
ENTRY = {
    "agent_name": st.text(min_size=1, max_size=20),
    "tool_called": st.text(min_size=1, max_size=20),
    "timestamp": st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    "execution_time_ms": st.none() | st.integers(0, 2**40),
    "input_data": optional_text,
    "output_summary": optional_text,
    "llm_model": optional_text,
    "llm_tokens_used": st.none() | st.integers(0, 2**40),
    "llm_cost_dollars": st.none()
    | st.decimals(0, 10_000, places=6, allow_nan=False, allow_infinity=False),
    "error_message": optional_text,
    "error_stack_trace": optional_text,
    "decision_chain": optional_text,
}
entries = st.fixed_dictionaries(ENTRY)
trails = st.lists(entries, min_size=1, max_size=12)
HASHED = tuple(ENTRY)


def chain(items: list[dict[str, Any]], key: bytes | None) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for i, item in enumerate(items, 1):
        row = {
            "audit_run_id": "r",
            "log_sequence_number": i,
            "hash_algorithm": KEYED if key else "sha256",
            **item,
            "prev_hash": prev,
        }
        row["entry_hash"] = prev = entry_hash(row, prev, key)
        rows.append(row)
    return rows


def head_of(rows: list[dict[str, Any]], *, completed: bool = True) -> TrailHead:
    return TrailHead(
        audit_run_id="r",
        rows=len(rows),
        last_hash=rows[-1]["entry_hash"],
        hash_algorithm=rows[-1]["hash_algorithm"],
        completed=completed,
    )


def changed(value: Any, column: str = "") -> Any:
    """A different value of the same kind (the column's kind when the value is None)."""
    if value is None:
        if column == "llm_cost_dollars":
            return Decimal("0.000001")
        return 0 if column in ("execution_time_ms", "llm_tokens_used") else "x"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, Decimal):
        return value + Decimal("0.000001")
    if isinstance(value, datetime):
        return value + timedelta(microseconds=1)
    return str(value) + "x"


@NO_DEADLINE
@given(trails, st.booleans())
def test_an_untouched_chain_verifies(items: list[dict[str, Any]], keyed: bool) -> None:
    """Whatever was recorded, the chain as written verifies, with its key when keyed."""
    key = KEY if keyed else None
    rows = chain(items, key)
    result = verify_chain(rows, [head_of(rows)], key=key)
    assert result.ok, result.problem
    assert result.rows == len(rows)
    assert result.keyed is keyed


@NO_DEADLINE
@given(trails, st.data(), st.booleans())
def test_changing_any_field_of_any_row_names_that_row(
    items: list[dict[str, Any]], data: st.DataObject, keyed: bool
) -> None:
    """Altering one hashed value anywhere fails at exactly that row."""
    key = KEY if keyed else None
    rows = chain(items, key)
    head = head_of(rows)
    index = data.draw(st.integers(0, len(rows) - 1))
    column = data.draw(st.sampled_from(HASHED))
    rows[index] = {**rows[index], column: changed(rows[index][column], column)}
    result = verify_chain(rows, [head], key=key)
    assert result.status == "tampered"
    assert result.first_bad_sequence == index + 1
    assert result.problem == f"row {index + 1} was altered"


@NO_DEADLINE
@given(trails, st.data())
def test_removing_any_rows_is_caught(items: list[dict[str, Any]], data: st.DataObject) -> None:
    """Any non-empty set of removed rows fails; a cut-off tail names the first row cut."""
    rows = chain(items, None)
    head = head_of(rows)
    removed = data.draw(st.sets(st.integers(0, len(rows) - 1), min_size=1))
    kept = [r for i, r in enumerate(rows) if i not in removed]
    result = verify_chain(kept, [head])
    assert result.status == "tampered"
    assert result.first_bad_sequence == min(removed) + 1


@NO_DEADLINE
@given(trails)
def test_a_recomputed_chain_differs_from_every_head_recorded_before_the_change(
    items: list[dict[str, Any]],
) -> None:
    """Rewriting row 1 and re-hashing everything after it disagrees with the first head."""
    rows = chain(items, None)
    heads = [head_of(rows[: i + 1], completed=False) for i in range(len(rows))]
    forged_items = [{**items[0], "output_summary": changed(items[0]["output_summary"])}]
    forged = chain(forged_items + items[1:], None)
    result = verify_chain(forged, heads)
    assert result.status == "tampered"
    assert result.first_bad_sequence == 1


@NO_DEADLINE
@given(trails)
def test_without_the_key_a_keyed_chain_is_checked_for_links_only(
    items: list[dict[str, Any]],
) -> None:
    """No key: HMACs are not recomputed, and the verdict says so."""
    rows = chain(items, KEY)
    result = verify_chain(rows, [head_of(rows)])
    assert result.ok
    assert result.unkeyed_only
    assert not result.keyed


@NO_DEADLINE
@given(trails)
def test_a_chain_under_another_key_never_verifies(items: list[dict[str, Any]]) -> None:
    rows = chain(items, b"someone else's key")
    result = verify_chain(rows, [head_of(rows)], key=KEY)
    assert (result.status, result.first_bad_sequence) == ("tampered", 1)


@settings(max_examples=50, deadline=None)
@given(trails, st.booleans(), st.booleans())
def test_head_statements_round_trip_and_resist_edits(
    items: list[dict[str, Any]], keyed: bool, completed: bool
) -> None:
    """A statement reads back as the head; with a key, any edit breaks its signature."""
    key = KEY if keyed else None
    head = head_of(chain(items, key), completed=completed)
    text = head_statement(head, key)
    assert parse_head_statement(text, key) == head
    if keyed:
        edited = text.replace(f'"rows": {head.rows}', f'"rows": {head.rows + 1}')
        with pytest.raises(TrailVerificationError, match="signature"):
            parse_head_statement(edited, key)
    assert replace(head, rows=head.rows + 1) != parse_head_statement(text, key)


@NO_DEADLINE
@given(trails)
def test_the_hash_survives_database_representations(items: list[dict[str, Any]]) -> None:
    """Naive UTC timestamps, costs with other scales, numbers as text: the same hash."""
    rows = chain(items, None)
    for row in rows:
        as_read = dict(row)
        as_read["timestamp"] = row["timestamp"].replace(tzinfo=None)
        if row["llm_cost_dollars"] is not None:
            as_read["llm_cost_dollars"] = str(row["llm_cost_dollars"]) + "0"
        if row["llm_tokens_used"] is not None:
            as_read["llm_tokens_used"] = str(row["llm_tokens_used"])
        assert entry_hash(as_read, row["prev_hash"]) == row["entry_hash"]


def test_an_unreadable_value_is_reported_as_altered_not_raised() -> None:
    """A value the canonical form cannot read (text in a cost) fails that row, no crash."""
    rows = chain([{"agent_name": "a", "tool_called": "t", "llm_cost_dollars": Decimal(1)}], None)
    rows[0]["llm_cost_dollars"] = "one dollar"
    result = verify_chain(rows, [])
    assert (result.status, result.problem) == ("tampered", "row 1 was altered")


@NO_DEADLINE
@given(trails, st.booleans())
def test_a_head_kept_in_workflow_state_reads_back(
    items: list[dict[str, Any]], completed: bool
) -> None:
    """as_state / from_state round trip; a state without a usable head gives None."""
    head = head_of(chain(items, None), completed=completed)
    assert TrailHead.from_state("r", {"trail_head": head.as_state()}) == head
    assert TrailHead.from_state("r", {}) is None
    assert TrailHead.from_state("r", {"trail_head": {"rows": "many"}}) is None
