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
Secrets are masked by value too: any 8-character stretch of one registered with
`register_secret` (each LLM client registers its key while open) goes from every event,
whatever echoed it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import structlog

__all__ = [
    "SECRET_WINDOW",
    "Shingles",
    "capture_logs",
    "configure_logging",
    "fingerprint",
    "forget_secret",
    "get_logger",
    "mask_spans",
    "redact_secrets",
    "redact_text",
    "register_secret",
    "reset_logging",
    "shared_runs",
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


# The shortest stretch of a registered secret masked wherever it appears: an endpoint
# that hides only a key's tail ("sk-or-v1-ab12...****") shows no 8 characters of it.
# Shorter stretches are left alone (too many ordinary words share 7); a secret shorter
# than the window is masked whole, and one under _MIN_SECRET not at all.
SECRET_WINDOW = 8
_MIN_SECRET = 4


def _windows(text: str, k: int, step: int = 1) -> Iterator[str]:
    """The ``k``-character windows of ``text`` starting every ``step`` (sliced in C)."""
    n = len(text)
    return map(text.__getitem__, map(slice, range(0, n - k + 1, step), range(k, n + 1, step)))


def _runs(text: str, k: int, shared: set[str]) -> list[tuple[int, int]]:
    """The maximal runs of ``text`` covered by its ``k``-windows that are in ``shared``."""
    found: list[tuple[int, int]] = []
    start = end = -1
    for i, window in enumerate(_windows(text, k)):
        if window in shared:
            if i > end:
                if end >= 0:
                    found.append((start, end))
                start = i
            end = i + k
    if end >= 0:
        found.append((start, end))
    return found


def shared_runs(text: str, values: Iterable[str], k: int) -> list[tuple[int, int]]:
    """The runs of ``text`` sharing ``k`` or more characters with one of ``values``.

    ``text`` is the one indexed, so a long value (a whole prompt) costs a pass in C and
    no memory; use `Shingles` to look for a few short values in many texts.
    """
    if len(text) < k:
        return []
    step = max(1, k // 3)
    probes = set(_windows(text, k - step + 1))
    own = set(_windows(text, k))
    shared: set[str] = set()
    for value in values:
        # A run of k shared characters holds a shorter shared window at some multiple of
        # step in value: one probe per step finds most values share nothing, cheaply.
        if not probes.isdisjoint(_windows(value, k - step + 1, step)):
            shared.update(own.intersection(_windows(value, k)))
    return _runs(text, k, shared) if shared else []


class Shingles:
    """Finds, in any text, every stretch shared with some short secret values.

    A stretch is shared when it is a run of ``k`` or more characters that also occurs in
    one of the values. Each such run is covered by windows of exactly ``k`` characters of
    that value, so one pass with a set of the values' windows finds them all, in time
    linear in the text. A value shorter than ``k`` is looked for whole.
    """

    __slots__ = ("_probes", "_step", "_whole", "_windows", "k")

    def __init__(self, k: int, values: Iterable[str] = ()) -> None:
        self.k = k
        # Every run of k shared characters holds, at a multiple of _step, a shorter
        # window of a value: probing those first makes the usual miss cheap.
        self._step = max(1, k // 2)
        self._windows: set[str] = set()
        self._probes: set[str] = set()
        self._whole: set[str] = set()
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        if len(value) >= self.k:
            self._windows.update(_windows(value, self.k))
            self._probes.update(_windows(value, self.k - self._step + 1))
        elif value:
            self._whole.add(value)

    def __bool__(self) -> bool:
        return bool(self._windows or self._whole)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The ``(start, end)`` runs of ``text`` shared with a value (may overlap)."""
        found: list[tuple[int, int]] = []
        probe = self.k - self._step + 1
        if self._probes and not self._probes.isdisjoint(_windows(text, probe, self._step)):
            found = _runs(text, self.k, self._windows)
        for value in self._whole:
            at = text.find(value)
            while at >= 0:
                found.append((at, at + len(value)))
                at = text.find(value, at + 1)
        return found


def mask_spans(text: str, spans: Iterable[tuple[int, int]], marker: str = "***") -> str:
    """``text`` with each run of overlapping or touching ``spans`` replaced by ``marker``."""
    out: list[str] = []
    shown = 0  # text[:shown] is accounted for in out
    start = end = -1  # the run being merged
    for at, until in sorted(spans):
        if at > end:
            if end >= 0:
                out += (text[shown:start], marker)
                shown = end
            start = at
        end = max(end, until)
    if end >= 0:
        out += (text[shown:start], marker)
        shown = end
    out.append(text[shown:])
    return "".join(out)


# Secrets registered by the clients that hold them (refcounted: two clients may share a
# key). Readers take the current Shingles without a lock; a change builds a new one.
_registry_lock = threading.Lock()
_registered: Counter[str] = Counter()
_known = Shingles(SECRET_WINDOW)


def _rebuild() -> None:
    global _known
    _known = Shingles(SECRET_WINDOW, _registered)


def register_secret(value: str) -> None:
    """Mask every 8-character stretch of ``value`` (all of it, if shorter) in each redacted
    text and log event, until `forget_secret`. Values under 4 characters are ignored."""
    if len(value) < _MIN_SECRET:
        return
    with _registry_lock:
        _registered[value] += 1
        if _registered[value] == 1:
            _rebuild()


def forget_secret(value: str) -> None:
    """Undo one `register_secret` of ``value``."""
    with _registry_lock:
        if _registered[value] <= 0:
            _registered.pop(value, None)
            return
        _registered[value] -= 1
        if not _registered[value]:
            del _registered[value]
            _rebuild()


def redact_text(text: str) -> str:
    """``text`` with registered secrets (any 8-character stretch of one), bearer tokens,
    API-key shapes and URL passwords replaced by ``***``."""
    known = _known
    if known:
        spans = known.spans(text)
        if spans:
            text = mask_spans(text, spans, REDACTED)
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
