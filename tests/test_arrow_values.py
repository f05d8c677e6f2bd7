"""`audit_core._arrow`: the same Python values as pyarrow's ``to_pylist``, without pandas."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from audit_core._arrow import first, rows, values

ZONES = ["UTC", "Etc/UTC", "America/New_York", "Asia/Kolkata", "+05:30", "-08:00"]
UNITS = ["s", "ms", "us"]
# Inside what a datetime holds, in every unit.
MOMENTS = st.integers(min_value=-62_000_000_000, max_value=250_000_000_000)


@settings(max_examples=200, deadline=None)
@given(
    seconds=st.lists(st.one_of(st.none(), MOMENTS), max_size=20),
    micro=st.integers(min_value=0, max_value=999_999),
    zone=st.sampled_from(ZONES),
    unit=st.sampled_from(UNITS),
    split=st.integers(min_value=0, max_value=20),
)
def test_aware_timestamps_equal_pyarrows_own(
    seconds: list[int | None], micro: int, zone: str, unit: str, split: int
) -> None:
    scale = {"s": 1, "ms": 1_000, "us": 1_000_000}[unit]
    extra = {"s": 0, "ms": micro // 1_000, "us": micro}[unit]
    raw = [None if s is None else s * scale + extra for s in seconds]
    kind = pa.timestamp(unit, tz=zone)
    chunked = pa.chunked_array(
        [pa.array(raw[:split], kind), pa.array(raw[split:], kind)], type=kind
    )
    expected = chunked.to_pylist()  # pyarrow's answer (it may import pandas; fine here)
    got = values(chunked)
    assert got == expected
    assert [g.utcoffset() if g else None for g in got] == [
        e.utcoffset() if e else None for e in expected
    ]
    table = pa.table({"t": chunked, "n": pa.array(range(len(raw)))})
    assert rows(table) == table.to_pylist()
    assert first(table) == (expected[0] if expected else None)


def test_other_types_and_empty_tables_are_pyarrows_own() -> None:
    table = pa.table(
        {
            "naive": pa.array([datetime(2025, 1, 1, 12)], pa.timestamp("us")),
            "ns": pa.array([1], pa.timestamp("ns", tz="UTC")),
            "s": ["x"],
        }
    )
    assert rows(table) == table.to_pylist()
    assert first(pa.table({"a": pa.array([], pa.int64())}), "none") == "none"
    assert first(pa.table({}), 7) == 7


def test_a_utc_value_is_the_instant_it_says() -> None:
    moment = datetime(2025, 5, 31, 23, 0, 0, 123456, tzinfo=UTC)
    column = pa.array([moment], pa.timestamp("us", tz="UTC"))
    assert values(column) == [moment]
    assert values(column)[0] - moment == timedelta(0)


@pytest.mark.parametrize("call", ["values(column)", "rows(table)", "first(table)"])
def test_no_pandas_is_imported(call: str) -> None:
    code = (
        "import sys\n"
        "from audit_core._arrow import first, rows, values\n"
        # Built by DuckDB, as a query's answer is: pyarrow's own constructors consult
        # pandas for an aware type.
        "import duckdb\n"
        "con = duckdb.connect()\n"
        "con.execute(\"SET TimeZone = 'America/New_York'\")\n"
        "table = con.sql(\"SELECT TIMESTAMPTZ '2025-01-01 00:00:00+00' AS t\").to_arrow_table()\n"
        "column = table.column(0)\n"
        "assert 'pandas' not in sys.modules\n"
        f"{call}\n"
        "assert 'pandas' not in sys.modules, 'pandas was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
