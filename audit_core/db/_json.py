"""JSON text for the TEXT (JSON) columns: stable key order, Decimal and datetime as text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = ["dumps", "json_text"]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(item) for item in value), key=repr)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def dumps(value: Any) -> str:
    """Compact JSON with sorted keys; ``TypeError`` (from ``json``) for what it cannot hold."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))


def json_text(value: Any) -> str | None:
    """None stays None, text is kept as written, anything else becomes compact JSON.

    Values JSON cannot hold raise ``TypeError`` (from ``json`` itself); callers turn it
    into their own error.
    """
    if value is None or isinstance(value, str):
        return value
    return dumps(value)
