"""JSON encoding of workflow state, and the envelope stored in Redis.

What non-JSON values become (they come back as these JSON types, not as the originals):

=====================  =============================================================
``datetime``           ISO 8601 string (``2025-01-31T12:00:00+00:00``; naive stays naive)
``date``               ISO 8601 date string (``2025-01-31``)
``Decimal``            string with every digit (``"12.30"``): money is never a float
``UUID``               canonical string
``Enum``               its ``.value``, encoded by these same rules
``set``/``frozenset``  list, sorted when the items are sortable
``tuple``              list
=====================  =============================================================

Integers of any size stay exact; ``[]`` stays a list and ``{}`` a dict. Anything else
(objects, bytes, NaN/Infinity, non-string keys, lone surrogates, cycles, nesting deeper
than `MAX_DEPTH`) is a `StateEncodingError` naming the key path, raised before anything
is written. Nothing here recurses in Python, so no input can hit the recursion limit.

orjson does the work. It cannot hold integers beyond 64 bits (those states go through
the standard library's encoder, after the checking walk) and it writes NaN as ``null``
(so a ``null`` in its output triggers a check for non-finite floats). On the way back,
orjson would read such integers as floats, so the envelope names the codec that can
read the state exactly (``"codec":"orjson"`` or ``"json"``).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Final
from uuid import UUID

import orjson

from audit_core.errors import StateEncodingError, StateManagerError

__all__ = [
    "MAX_DEPTH",
    "MAX_VERSION",
    "EncodedState",
    "Envelope",
    "decode_envelope",
    "encode_state",
    "envelope_bytes",
]

MAX_DEPTH: Final = 254
"""Containers may nest this deep, the state itself included (orjson's own limit)."""
MAX_VERSION: Final = 2**53 - 1
"""Largest version a run can reach: exact in Lua's doubles and in JavaScript."""

ORJSON: Final = "orjson"
STDLIB: Final = "json"
_ORJSON_HEAD: Final = b',"codec":"orjson","state":'
_HEAD_SCAN: Final = 200
_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATACLASS
_SCALARS: Final = (str, int, bool, type(None))


@dataclass(frozen=True, slots=True)
class EncodedState:
    """A state's JSON bytes and the codec that reads them back exactly."""

    data: bytes
    codec: str


def _default(value: Any) -> Any:
    """Encoder hook for the non-JSON types in the table above; anything else refuses."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError("non-finite Decimal")
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        items = list(value)
        with contextlib.suppress(TypeError):  # unsortable items keep set order
            items.sort()
        return items
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(type(value).__name__)


def encode_state(
    state: Mapping[str, Any], *, run_id: str | None = None, max_bytes: int
) -> EncodedState:
    """The state as compact UTF-8 JSON, or `StateEncodingError` naming what is wrong."""
    if not isinstance(state, Mapping):
        raise StateEncodingError(
            f"state must be a mapping, got {type(state).__name__}", run_id=run_id
        )
    try:
        data = orjson.dumps(state, default=_default, option=_OPTIONS)
        codec = ORJSON
    except orjson.JSONEncodeError:
        # Either the state is wrong (the walk says where) or it holds an integer beyond
        # 64 bits, which the standard encoder writes exactly.
        check_state(state, run_id=run_id)
        data = _stdlib_dumps(state, run_id)
        codec = STDLIB
    else:
        if b"null" in data:  # orjson writes NaN and Infinity as null
            check_state(state, run_id=run_id)
    if len(data) > max_bytes:
        raise StateEncodingError(
            f"state is {len(data):,} bytes encoded, over the store's limit of {max_bytes:,}",
            run_id=run_id,
        )
    return EncodedState(data, codec)


def _stdlib_dumps(state: Mapping[str, Any], run_id: str | None) -> bytes:
    try:
        text = json.dumps(
            state, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
        )
        return text.encode()
    except (TypeError, ValueError, RecursionError):  # the walk found nothing: be safe anyway
        raise StateEncodingError("state cannot be stored as JSON", run_id=run_id) from None


_EXIT = object()


def check_state(state: Any, *, run_id: str | None = None) -> None:
    """Walk ``state`` without recursion; raise `StateEncodingError` at the first bad value.

    Finds cycles (a container inside itself), nesting deeper than `MAX_DEPTH`, non-string
    keys, lone surrogates, NaN/Infinity and types JSON cannot hold.
    """
    on_path: set[int] = set()
    stack: list[Any] = [(state, "state", 0)]
    while stack:
        item = stack.pop()
        if item[0] is _EXIT:
            on_path.discard(item[1])
            continue
        value, path, depth = item
        if isinstance(value, str):
            _check_text(value, path, run_id)
            continue
        if isinstance(value, _SCALARS):
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                raise StateEncodingError(
                    f"state value at {path} is {value!r}, which JSON cannot hold", run_id=run_id
                )
            continue
        children = _children(value, path, run_id)
        if children is None:
            continue
        if depth >= MAX_DEPTH:
            raise StateEncodingError(
                f"state is nested deeper than {MAX_DEPTH} levels at {path}", run_id=run_id
            )
        if id(value) in on_path:
            raise StateEncodingError(f"state is cyclic: {path} contains itself", run_id=run_id)
        on_path.add(id(value))
        stack.append((_EXIT, id(value)))
        stack.extend((child, child_path, depth + 1) for child_path, child in children)


def _check_text(text: str, path: str, run_id: str | None) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        raise StateEncodingError(
            f"state text at {path} holds a lone surrogate, which UTF-8 cannot hold",
            run_id=run_id,
        ) from None


def _children(value: Any, path: str, run_id: str | None) -> list[tuple[str, Any]] | None:
    """A container's (path, child) pairs; None for a leaf that needs no walk."""
    if isinstance(value, Mapping):
        out = []
        for key, child in value.items():
            if not isinstance(key, str):
                raise StateEncodingError(
                    f"state key {key!r} at {path} is a {type(key).__name__}; keys must be strings",
                    run_id=run_id,
                )
            _check_text(key, path, run_id)
            out.append((f"{path}.{key}", child))
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [(f"{path}[{i}]", child) for i, child in enumerate(value)]
    if isinstance(value, Enum):
        return [(path, value.value)]
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise StateEncodingError(
                f"state value at {path} is {value}, which JSON cannot hold", run_id=run_id
            )
        return None
    if isinstance(value, datetime | date | UUID):
        return None
    raise StateEncodingError(
        f"state value at {path} is a {type(value).__name__}, which cannot be stored as JSON",
        run_id=run_id,
    )


def envelope_bytes(version: int, updated_at: str, state: EncodedState, *, fence: int = 0) -> bytes:
    """The stored form; the Lua write script builds the same bytes."""
    return b'{"version":%d,"updated_at":"%s","fence":%d,"codec":"%s","state":%s}' % (
        version,
        updated_at.encode(),
        fence,
        state.codec.encode(),
        state.data,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """A decoded stored value: ``version`` 0 for a seed-era bare state."""

    version: int
    updated_at: str | None
    fence: int
    state: dict[str, Any]


def _corrupt(raw: bytes, run_id: str, why: str) -> StateManagerError:
    return StateManagerError(
        f"stored state for run {run_id!r} {why} ({len(raw)} bytes); "
        "it was not written by audit-core or is corrupt",
        run_id=run_id,
    )


def _loads(raw: bytes, run_id: str) -> Any:
    if raw.find(_ORJSON_HEAD, 0, _HEAD_SCAN) > 0:
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(raw)
    try:
        return json.loads(raw)  # exact for integers of any size
    except (ValueError, UnicodeDecodeError):
        raise _corrupt(raw, run_id, "is not valid JSON") from None
    except RecursionError:
        raise _corrupt(raw, run_id, "is nested too deep to read") from None


def version_of(value: Any, run_id: str) -> int | None:
    """An envelope's version as a bounded integer; None when it is not a number at all."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    exact = isinstance(value, int) or value.is_integer()
    if not (exact and 0 <= value <= MAX_VERSION):
        raise StateManagerError(
            f"stored state for run {run_id!r} has version {value!r}, outside 0..{MAX_VERSION}",
            run_id=run_id,
        )
    return int(value)


def decode_envelope(raw: bytes, *, run_id: str) -> Envelope:
    """Parse a stored value; a seed-era bare JSON object is read as version 0."""
    value = _loads(raw, run_id)
    if not isinstance(value, dict):
        raise _corrupt(raw, run_id, f"is a JSON {type(value).__name__}, not an object")
    state = value.get("state")
    if isinstance(state, dict):
        version = version_of(value.get("version"), run_id)
        if version is not None:
            fence = value.get("fence")
            updated_at = value.get("updated_at")
            return Envelope(
                version=version,
                updated_at=updated_at if isinstance(updated_at, str) else None,
                fence=fence if isinstance(fence, int) and not isinstance(fence, bool) else 0,
                state=state,
            )
    # The original design stored the bare state dict at the same key.
    return Envelope(version=0, updated_at=None, fence=0, state=value)
