"""The parity corpus (``corpus.sql``) as data, and how answers are compared."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

CORPUS_FILE = Path(__file__).with_name("corpus.sql")


@dataclass(frozen=True)
class Case:
    """One corpus query: its id, SQL, parameters and whether Spark must raise."""

    id: str
    sql: str
    params: dict[str, Any] | None = None
    expect_error: bool = False
    line: int = field(default=0, compare=False)


def load_corpus(path: Path = CORPUS_FILE) -> list[Case]:
    """Parse ``-- id:`` blocks; headers ``-- params:`` (JSON) and ``-- expect: error``."""
    cases: list[Case] = []
    current: dict[str, Any] | None = None
    body: list[str] = []

    def close() -> None:
        if current is not None:
            sql = "\n".join(body).strip().rstrip(";").strip()
            cases.append(Case(sql=sql, **current))

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.rstrip()
        if line.startswith("-- id:"):
            close()
            current, body = {"id": line[6:].strip(), "line": number}, []
        elif current is None:
            continue
        elif line.startswith("-- params:"):
            current["params"] = json.loads(line[10:])
        elif line.startswith("-- expect:"):
            current["expect_error"] = line[10:].strip() == "error"
        elif line.strip():
            body.append(line)
    close()
    return cases


# types ------------------------------------------------------------------------------


def spark_type(arrow_type: Any) -> str:
    """The Spark SQL type (``simpleString``) an Arrow type stands for."""
    import pyarrow as pa
    import pyarrow.types as t

    simple = {
        pa.int8(): "tinyint",
        pa.int16(): "smallint",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.float32(): "float",
        pa.float64(): "double",
        pa.bool_(): "boolean",
        pa.string(): "string",
        pa.large_string(): "string",
        pa.string_view(): "string",
        pa.binary(): "binary",
        pa.large_binary(): "binary",
        pa.date32(): "date",
        pa.null(): "void",
    }
    if arrow_type in simple:
        return simple[arrow_type]
    if t.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if t.is_timestamp(arrow_type):
        return "timestamp" if arrow_type.tz else "timestamp_ntz"
    if t.is_map(arrow_type):
        return f"map<{spark_type(arrow_type.key_type)},{spark_type(arrow_type.item_type)}>"
    if t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_list_view(arrow_type):
        return f"array<{spark_type(arrow_type.value_type)}>"
    if t.is_struct(arrow_type):
        fields = ",".join(f"{f.name}:{spark_type(f.type)}" for f in arrow_type)
        return f"struct<{fields}>"
    return f"arrow:{arrow_type}"


# values -----------------------------------------------------------------------------

FLOAT_REL_TOL = 1e-12


def same_value(a: Any, b: Any) -> bool:
    """Equal as Spark would print them: doubles to 1e-12, NaN equals NaN, exact otherwise."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=FLOAT_REL_TOL, abs_tol=1e-300)
    if type(a) is not type(b) and not (isinstance(a, datetime) and isinstance(b, datetime)):
        return False
    if isinstance(a, Decimal):
        return bool(a == b and a.as_tuple().exponent == b.as_tuple().exponent)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def sort_key(row: tuple[Any, ...]) -> str:
    return repr(tuple(_canon(v) for v in row))


def _canon(value: Any) -> Any:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else round(value, 9)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return sorted((k, _canon(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    return value
