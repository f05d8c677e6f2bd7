"""The library's own loggers: structlog events on stdlib ``audit_core.*`` loggers.

A library never configures logging for its host. Importing or using audit-core leaves
``structlog.configure`` and the root logger exactly as the application set them: every
event goes through a *private* structlog chain (redaction always on) and is handed to
the stdlib logger named after the area (``audit_core.llm``, ``audit_core.state``, ...).
Where those records go is the application's choice, like any library's; with no
logging configured at all, Python's last-resort handler prints WARNING and above on
stderr. The CLI, or a user who asks, calls `configure_logging` to get console or JSON
lines from audit-core's loggers (only theirs).

Events are named ``"audit_core.<area>.<event>"`` with keyword fields. Prompt text,
responses and query parameter values are never logged as such: `fingerprint` gives
their length and a short hash instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import structlog

__all__ = [
    "capture_logs",
    "configure_logging",
    "fingerprint",
    "get_logger",
    "redact_secrets",
    "redact_text",
    "reset_logging",
]

_SECRET_KEY = re.compile(r"token|api_key|apikey|authorization|password|passwd|secret", re.I)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
# OpenRouter / OpenAI / Databricks key shapes, in case one is pasted into free text.
_KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_-]{8,}|dapi[0-9a-f]{16,})")
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@\s]+@")
REDACTED = "***"
ROOT = "audit_core"
_EVENT_ATTR = "audit_core_event"
_HEAD = frozenset({"event", "log_level", "logger_name"})


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


# --- the private chain ---------------------------------------------------------------

# Lists that `capture_logs` appends to; while one is open every event is captured
# (redacted), whatever the stdlib level says.
_captures: list[list[MutableMapping[str, Any]]] = []


def _add_names(
    logger: logging.Logger, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event_dict.setdefault("log_level", "warning" if method_name == "warn" else method_name)
    event_dict.setdefault("logger_name", logger.name)
    return event_dict


def _format_exception(
    logger: logging.Logger, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    exc_info = event_dict.pop("exc_info", None)
    if exc_info:
        if exc_info is True:
            exc_info = sys.exc_info()
        if isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if isinstance(exc_info, tuple) and exc_info[0] is not None:
            event_dict["exception"] = redact_text(
                "".join(logging.Formatter().formatException(exc_info))
            )
    return event_dict


def _to_stdlib(
    logger: logging.Logger, method_name: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    for captured in _captures:
        captured.append(dict(event_dict))
    if not logger.isEnabledFor(_LEVELS[event_dict["log_level"]]):
        raise structlog.DropEvent
    fields = " ".join(
        f"{k}={v!r}"
        for k, v in event_dict.items()
        if k not in ("event", "log_level", "logger_name")
    )
    message = f"{event_dict['event']} {fields}" if fields else str(event_dict["event"])
    # stacklevel: the record names the line in audit-core that logged, not structlog.
    return (message,), {"extra": {_EVENT_ATTR: dict(event_dict)}, "stacklevel": 4}


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "exception": logging.ERROR,
}
_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    _add_names,
    _format_exception,
    redact_secrets,
    _to_stdlib,
]


class _Logger(structlog.stdlib.BoundLogger):
    """structlog's stdlib logger, skipping all work for events nobody will see."""

    def _enabled(self, level: int) -> bool:
        return bool(_captures) or self._logger.isEnabledFor(level)

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if self._enabled(logging.DEBUG):
            return self._proxy_to_logger("debug", event, *args, **kw)
        return None

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if self._enabled(logging.INFO):
            return self._proxy_to_logger("info", event, *args, **kw)
        return None

    def warning(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if self._enabled(logging.WARNING):
            return self._proxy_to_logger("warning", event, *args, **kw)
        return None

    def error(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if self._enabled(logging.ERROR):
            return self._proxy_to_logger("error", event, *args, **kw)
        return None

    def exception(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if self._enabled(logging.ERROR):
            kw.setdefault("exc_info", True)
            return self._proxy_to_logger("error", event, *args, **kw)
        return None


def get_logger(name: str) -> Any:
    """A structlog logger for ``name`` (an ``audit_core.*`` stdlib logger underneath).

    It uses a private processor chain: the application's structlog configuration is
    neither read nor changed, and redaction always applies.
    """
    return _Logger(logging.getLogger(name), processors=_PROCESSORS, context={})


@contextlib.contextmanager
def capture_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Collect every audit-core event (already redacted) made inside the block, at any level.

    The test-side twin of ``structlog.testing.capture_logs`` for the library's own
    loggers, which do not go through the application's structlog configuration.
    """
    captured: list[MutableMapping[str, Any]] = []
    _captures.append(captured)
    try:
        yield captured
    finally:
        _captures.remove(captured)


# --- opt-in output: the CLI, or a user who asks ---------------------------------------


class _Formatter(logging.Formatter):
    def __init__(self, format: Literal["console", "json"]) -> None:
        super().__init__()
        self._json = format == "json"

    def format(self, record: logging.LogRecord) -> str:
        event = dict(getattr(record, _EVENT_ATTR, None) or {"event": record.getMessage()})
        event.setdefault("log_level", record.levelname.lower())
        event.setdefault("logger_name", record.name)
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z")
        if self._json:
            return json.dumps({**event, "timestamp": stamp}, default=repr)
        level = event.pop("log_level")
        name = event.pop("event")
        event.pop("logger_name", None)
        exception = event.pop("exception", None)
        fields = " ".join(f"{k}={v!r}" for k, v in event.items())
        line = f"{stamp} [{level:<7}] {name} {fields}".rstrip()
        return f"{line}\n{exception}" if exception else line


_handler: logging.Handler | None = None


def configure_logging(
    format: Literal["console", "json"] = "console",
    level: int | str = logging.INFO,
    *,
    stream: TextIO | None = None,
) -> None:
    """Send audit-core's own events to ``stream`` (default stderr) as console or JSON lines.

    Only the ``audit_core`` stdlib logger is touched (its level, one handler of ours, and
    ``propagate=False`` so records are not printed twice); structlog's global
    configuration and the root logger stay the application's. Calling it again
    replaces the previous set-up.
    """
    global _handler
    from audit_core.errors import ConfigError

    if isinstance(level, str):
        resolved = logging.getLevelName(level.upper())
        if not isinstance(resolved, int):
            raise ConfigError(f"unknown log level {level!r}")
        level = resolved
    if format not in ("console", "json"):
        raise ConfigError(f"log format must be 'console' or 'json', got {format!r}")
    root = logging.getLogger(ROOT)
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(stream or sys.stderr)
    _handler.setFormatter(_Formatter(format))
    root.addHandler(_handler)
    root.setLevel(level)
    root.propagate = False


def reset_logging() -> None:
    """Undo `configure_logging`: audit-core's records go wherever the host's logging says."""
    global _handler
    root = logging.getLogger(ROOT)
    if _handler is not None:
        root.removeHandler(_handler)
        _handler = None
    root.setLevel(logging.NOTSET)
    root.propagate = True
