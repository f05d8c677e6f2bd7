"""structlog set-up: one logger family, secrets redacted from every event.

Events are named ``"audit_core.<area>.<event>"`` with keyword fields. Prompt text,
responses and query parameter values are never logged as such: `fingerprint` gives
their length and a short hash instead.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog

__all__ = ["configure_logging", "fingerprint", "get_logger", "redact_secrets", "redact_text"]

_SECRET_KEY = re.compile(r"token|api_key|apikey|authorization|password|passwd|secret", re.I)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
# OpenRouter / OpenAI / Databricks key shapes, in case one is pasted into free text.
_KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_-]{8,}|dapi[0-9a-f]{16,})")
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@\s]+@")
REDACTED = "***"


def redact_text(text: str) -> str:
    """``text`` with bearer tokens, API-key shapes and URL passwords replaced by ``***``."""
    text = _BEARER.sub(r"\1 " + REDACTED, text)
    text = _KEY_SHAPES.sub(REDACTED, text)
    return _URL_PASSWORD.sub(r"\1" + REDACTED + "@", text)


def _redact(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if depth > 5:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED
            if isinstance(k, str) and _SECRET_KEY.search(k) and v is not None
            else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact(v, depth + 1) for v in value)
    return value


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: masks secret-named keys and bearer/key strings in values."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEY.search(key) and value is not None:
            event_dict[key] = REDACTED
        elif isinstance(value, str | Mapping | list | tuple):
            event_dict[key] = _redact(value)
        elif isinstance(value, BaseException):
            event_dict[key] = redact_text(repr(value))
    return event_dict


def fingerprint(text: str | bytes) -> dict[str, Any]:
    """What we log instead of sensitive text: its length and a 12-hex-digit SHA-256."""
    data = text.encode() if isinstance(text, str) else text
    return {"len": len(data), "sha256": hashlib.sha256(data).hexdigest()[:12]}


def configure_logging(
    format: Literal["console", "json"] = "console",
    level: int | str = logging.INFO,
    *,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog once for the process: JSON lines or console, redaction always on."""
    if isinstance(level, str):
        resolved = logging.getLevelName(level.upper())
        if not isinstance(resolved, int):
            from audit_core.errors import ConfigError

            raise ConfigError(f"unknown log level {level!r}")
        level = resolved
    if format not in ("console", "json"):
        from audit_core.errors import ConfigError

        raise ConfigError(f"log format must be 'console' or 'json', got {format!r}")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        # Not cached: a later structlog.configure (the app's, or a test's capture_logs)
        # must reach loggers that have already been used.
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A structlog logger whose events carry ``logger_name=name``.

    If the application has not configured structlog by the time the first audit_core
    logger is made, audit_core applies its safe default: console lines on **stderr**
    (never stdout, which belongs to the application), WARNING and above, secrets
    redacted. `configure_logging` (or the application's own ``structlog.configure``)
    replaces it at any time.
    """
    if not structlog.is_configured():
        configure_logging(level=logging.WARNING)
    return structlog.get_logger(logger_name=name)
