"""JSON encoding of workflow state, with the envelope stored in Redis.

What non-JSON values become (they come back as these JSON types, not as the originals):

===================  ===============================================================
``datetime``         ISO 8601 string (``2025-01-31T12:00:00+00:00``; naive stays naive)
``date``             ISO 8601 date string (``2025-01-31``)
``Decimal``          string with every digit (``"12.30"``): money is never a float
``UUID``             canonical string
``Enum``             its ``.value``, encoded by these same rules
``set``/``frozenset``  list, sorted when the items are sortable
``tuple``            list
===================  ===============================================================

Integers of any size stay exact; ``[]`` stays a list and ``{}`` a dict. Anything else
(objects, bytes, NaN/Infinity, non-string keys) is a `StateManagerError` naming the key
path, raised before anything is written.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from audit_core.errors import StateManagerError

__all__ = ["Envelope", "decode_envelope", "encode_state", "envelope_bytes"]

_NATIVE = (str, int, bool, type(None))
_PREFIX = b'{"version":'


def _convert(value: Any, path: str, run_id: str | None) -> Any:
    if isinstance(value, _NATIVE):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise StateManagerError(
            f"state value at {path} is {value!r}, which JSON cannot hold", run_id=run_id
        )
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise StateManagerError(
                    f"state key {k!r} at {path} is a {type(k).__name__}; keys must be strings",
                    run_id=run_id,
                )
            out[k] = _convert(v, f"{path}.{k}", run_id)
        return out
    if isinstance(value, list | tuple):
        return [_convert(v, f"{path}[{i}]", run_id) for i, v in enumerate(value)]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise StateManagerError(
                f"state value at {path} is {value}, which JSON cannot hold", run_id=run_id
            )
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return _convert(value.value, path, run_id)
    if isinstance(value, set | frozenset):
        items = list(value)
        with contextlib.suppress(TypeError):  # unsortable items keep set order
            items.sort()
        return [_convert(v, f"{path}[{i}]", run_id) for i, v in enumerate(items)]
    raise StateManagerError(
        f"state value at {path} is a {type(value).__name__}, which cannot be stored as JSON",
        run_id=run_id,
    )


def _default(value: Any) -> Any:
    """json.dumps hook for the non-JSON types in the table above; anything else raises."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("non-finite Decimal")
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        items = list(value)
        with contextlib.suppress(TypeError):
            items.sort()
        return items
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(type(value).__name__)


_SCALARS = frozenset({str, int, float, bool, type(None)})
_SEQUENCES = frozenset({list, tuple, set, frozenset})


def _keys_are_strings(value: Any) -> bool:
    """True when every mapping key anywhere in ``value`` is a str (json would coerce others).

    Type checks by identity first, so a list of thousands of strings costs one pass.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _SEQUENCES:
            stack.extend([c for c in item if type(c) not in _SCALARS])
        elif kind is dict or isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    return False
                if type(child) not in _SCALARS:
                    stack.append(child)
        elif isinstance(item, Enum):
            stack.append(item.value)
    return True


def encode_state(state: Mapping[str, Any], *, run_id: str | None = None, max_bytes: int) -> bytes:
    """The state as compact UTF-8 JSON, or `StateManagerError` naming what is wrong.

    The C encoder does the work; the path-naming walker runs only to explain a failure.
    """
    if not isinstance(state, Mapping):
        raise StateManagerError(
            f"state must be a mapping, got {type(state).__name__}", run_id=run_id
        )
    try:
        if not _keys_are_strings(state):
            raise TypeError("non-string key")
        text = json.dumps(
            state, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
        )
    except (TypeError, ValueError, RecursionError):
        _convert(state, "state", run_id)  # raises StateManagerError naming the path
        raise StateManagerError("state cannot be stored as JSON", run_id=run_id) from None
    data = text.encode()
    if len(data) > max_bytes:
        raise StateManagerError(
            f"state is {len(data):,} bytes encoded, over the store's limit of {max_bytes:,}",
            run_id=run_id,
        )
    return data


def envelope_bytes(version: int, updated_at: str, state_json: bytes) -> bytes:
    """The stored form; the Lua write script builds the same bytes."""
    return b'{"version":%d,"updated_at":"%s","state":%s}' % (
        version,
        updated_at.encode(),
        state_json,
    )


class Envelope:
    """A decoded stored value."""

    __slots__ = ("state", "updated_at", "version")

    def __init__(self, version: int, updated_at: str | None, state: dict[str, Any]) -> None:
        self.version = version
        self.updated_at = updated_at
        self.state = state


def decode_envelope(raw: bytes, *, run_id: str) -> Envelope:
    """Parse a stored value; a seed-era bare JSON object is read as version 0."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise StateManagerError(
            f"stored state for run {run_id!r} is not valid JSON ({len(raw)} bytes); "
            "it was not written by audit-core or is corrupt",
            run_id=run_id,
        ) from None
    if not isinstance(value, dict):
        raise StateManagerError(
            f"stored state for run {run_id!r} is a JSON {type(value).__name__}, not an object",
            run_id=run_id,
        )
    if raw.startswith(_PREFIX) and isinstance(value.get("state"), dict):
        version = value.get("version")
        if isinstance(version, int):
            return Envelope(version, value.get("updated_at"), value["state"])
    # The original design stored the bare state dict at the same key.
    return Envelope(0, None, value)
