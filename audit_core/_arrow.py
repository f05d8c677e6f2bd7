"""Arrow results as Python values, without pyarrow's detour through pandas.

pyarrow turns each time-zone-aware timestamp into a ``datetime`` only after asking
whether pandas is installed, which imports pandas (about 0.2 s and 45 MB, more than the
rest of a command line run) the first time. These helpers convert such columns from
their integer values instead, to the same aware ``datetime``; every other type is
pyarrow's own ``to_pylist``. Nanosecond columns are left to pyarrow: a ``datetime``
cannot hold them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["first", "rows", "values"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo:
    if name.upper() in ("UTC", "ETC/UTC", "Z", "+00:00"):
        return UTC
    if name[:1] in "+-" and len(name) == 6 and name[3] == ":":
        sign = -1 if name[0] == "-" else 1
        from datetime import timezone

        return timezone(sign * timedelta(hours=int(name[1:3]), minutes=int(name[4:6])))
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _aware(column: pa.Array | pa.ChunkedArray) -> str | None:
    """The zone of a second/milli/microsecond aware timestamp column, else None."""
    kind = column.type
    tz = getattr(kind, "tz", None)
    if tz and getattr(kind, "unit", "ns") in ("s", "ms", "us"):
        return str(tz)
    return None


def values(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """``column.to_pylist()``, aware timestamps converted without pandas."""
    tz = _aware(column)
    if tz is None:
        plain: list[Any] = column.to_pylist()
        return plain
    import pyarrow as pa

    unit = column.type.unit
    scale = {"s": 1_000_000, "ms": 1_000, "us": 1}[unit]
    zone = _zone(tz)
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out: list[Any] = []
    for chunk in chunks:
        for raw in chunk.view(pa.int64()).to_pylist():
            if raw is None:
                out.append(None)
                continue
            moment = _EPOCH + timedelta(microseconds=raw * scale)
            out.append(moment if zone is UTC else moment.astimezone(zone))
    return out


def rows(table: pa.Table) -> list[dict[str, Any]]:
    """``table.to_pylist()``, aware timestamps converted without pandas."""
    if not any(_aware(column) for column in table.columns):
        plain: list[dict[str, Any]] = table.to_pylist()
        return plain
    names = table.column_names
    columns = [values(table.column(i)) for i in range(table.num_columns)]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def first(table: pa.Table, default: Any = None) -> Any:
    """The first column's first value, ``default`` when there is no row."""
    if table.num_rows == 0 or table.num_columns == 0:
        return default
    return values(table.column(0).slice(0, 1))[0]
