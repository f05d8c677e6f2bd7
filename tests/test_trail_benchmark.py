"""The trail benchmark's code runs (tiny size; `pytest -m bench`), it does not measure here."""

from __future__ import annotations

import pytest


@pytest.mark.bench
def test_trail_benchmark_runs_at_a_tiny_size() -> None:
    """Every figure is a positive rate and both ratios are computed."""
    from benchmarks.trail import trail

    section = trail(records=50, repeats=1)
    assert [f.name for f in section.figures][:2] == [
        "batched (200 per INSERT), SHA-256",
        "batched (200 per INSERT), HMAC-SHA256 key",
    ]
    assert all(f.median > 0 for f in section.figures)
    assert [name for name, _, _ in section.ratios] == [
        "batched keyed / unkeyed",
        "batched / one per record",
    ]
