"""From what the endpoint or the transport did to the `LLMError` subclass a caller catches.

Mapping follows OpenRouter's documented errors and the openai SDK's retry rules:

==========================================  ==============================  =========
what happened                               error                           retried
==========================================  ==============================  =========
connection refused / reset / dropped        `LLMConnectionError`            yes
no complete answer in time                  `LLMTimeoutError`               yes
401, 403                                    `LLMAuthError`                  no
403 with moderation metadata                `LLMModerationError`            no
402                                         `LLMInsufficientCreditsError`   no
408                                         `LLMTimeoutError`               yes
429                                         `LLMRateLimitError`             yes
409, 425, 5xx, 52x                          `LLMError`                      yes
error object in a 200 (numeric code)        as its code, else response      as code
``code: "server_error"`` (mid-stream)       `LLMResponseError`              yes
``finish_reason: "content_filter"``         `LLMContentFilterError`         no
==========================================  ==============================  =========

``x-should-retry`` from the server overrides the column. The retry policy reads only
the public attributes set here (``transient``, ``retry_after_s``, ``status_code``).
Every message (and the endpoint's request id) is redacted by value (`Redactor`): no
stretch of 8+ characters of the client's key, whatever its shape, and no run of 12+
characters of the request's message text reaches ``str(exc)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from audit_core._logging import SECRET_WINDOW, Shingles, mask_spans, redact_text, shared_runs
from audit_core.errors import (
    LLMAuthError,
    LLMConnectionError,
    LLMContentFilterError,
    LLMError,
    LLMInsufficientCreditsError,
    LLMModerationError,
    LLMRateLimitError,
    LLMResponseError,
    LLMTimeoutError,
)
from audit_core.retry import Transient, parse_retry_after

__all__ = [
    "Redactor",
    "message_texts",
    "content_filter_error",
    "embedded_error",
    "retry_verdict",
    "status_error",
    "transport_error",
]

_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
# Error codes given as strings inside a 200 (mid-stream), worth another attempt.
_TRANSIENT_CODES = frozenset({"server_error", "rate_limit_exceeded", "overloaded", "timeout"})
_MESSAGE_MAX = 300
# Prompt text is masked wherever the error shares a run of 12+ characters with it: long
# enough that a provider's own wording rarely matches a prompt by chance (a run that
# long is about three words), short enough to catch a clipped or partial echo. Shorter
# echoes are caught as whole words and lines of 8+ characters, or the whole prompt.
_PROMPT_WINDOW = 12
_MIN_SECRET_PIECE = 8
_MIN_KEY = 4
_MASK = "[redacted]"
_PUNCTUATION = ".,;:!?\"'()[]{}"
_LONG_WORD = re.compile(rf"\S{{{_MIN_SECRET_PIECE},}}")


def message_texts(messages: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The text of every message (and of every text part of a multi-part message)."""
    texts: list[str] = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, Sequence):
            texts.extend(
                str(p.get("text")) for p in content if isinstance(p, Mapping) and p.get("text")
            )
    return tuple(texts)


def _with_escaped(value: str) -> tuple[str, ...]:
    # An endpoint may echo a request body inside its message: quotes, backslashes and
    # newlines then arrive escaped as in JSON.
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]
    return (value,) if escaped == value else (value, escaped)


class Redactor:
    """Removes known values from text: the API key and a request's message contents.

    Any stretch of the key of 8+ characters goes (the whole key, if shorter), and any run
    of 12+ characters shared with a message, so an endpoint that echoes part of a key or
    a prompt leaks none of it. Shorter echoes of a message are caught as whole words and
    lines of 8+ characters. Built only when an error message needs it.
    """

    __slots__ = ("_key", "_pieces", "_texts")

    def __init__(self, key: str | None, texts: Iterable[str] = ()) -> None:
        self._key = Shingles(SECRET_WINDOW)
        if key and len(key) >= _MIN_KEY:
            for form in _with_escaped(key):
                self._key.add(form)
        self._texts: list[str] = []
        self._pieces = Shingles(_PROMPT_WINDOW)  # holds only pieces shorter than that
        for value in texts:
            for form in _with_escaped(value):
                self._texts.append(form)
                for piece in _short_pieces(form):
                    self._pieces.add(piece)

    def __call__(self, text: str) -> str:
        spans = self._key.spans(text) + self._pieces.spans(text)
        spans += shared_runs(text, self._texts, _PROMPT_WINDOW)
        if spans:
            text = mask_spans(text, spans, _MASK)
        return redact_text(text)


def _short_pieces(value: str) -> Iterable[str]:
    """Its whole, lines and words of 8 to 11 characters (longer ones go by windows)."""
    lines = {line.strip() for line in value.splitlines() if len(line) >= _MIN_SECRET_PIECE}
    words = {w.strip(_PUNCTUATION) for w in set(_LONG_WORD.findall(value))}
    pieces = {value, value.strip(), *lines, *words}
    return (p for p in pieces if _MIN_SECRET_PIECE <= len(p) < _PROMPT_WINDOW)


def _server_message(error: Any, redact: Redactor) -> str:
    msg = error.get("message") if isinstance(error, Mapping) else error
    if not isinstance(msg, str) or not msg:
        return ""
    text = redact(msg)
    return text if len(text) <= _MESSAGE_MAX else text[:_MESSAGE_MAX] + "..."


def _redacted_id(request_id: str | None, redact: Redactor) -> str | None:
    # The endpoint chooses its ids too; they are logged with the failure.
    return redact(request_id) if request_id else request_id


def _with_detail(prefix: str, detail: str) -> str:
    return f"{prefix}: {detail}" if detail else prefix


def _is_moderation(error: Any) -> bool:
    if not isinstance(error, Mapping):
        return False
    meta = error.get("metadata")
    if isinstance(meta, Mapping) and ("reasons" in meta or "flagged_input" in meta):
        return True
    message = error.get("message")
    return isinstance(message, str) and (
        "moderation" in message.lower() or "flagged" in message.lower()
    )


def _status_class(status: int, error: Any) -> type[LLMError]:
    if status == 429:
        return LLMRateLimitError
    if status == 403 and _is_moderation(error):
        return LLMModerationError
    if status in (401, 403):
        return LLMAuthError
    if status == 402:
        return LLMInsufficientCreditsError
    if status == 408:
        return LLMTimeoutError
    return LLMError


def _status_transient(status: int, headers: Mapping[str, str] | None) -> bool:
    should = headers.get("x-should-retry") if headers is not None else None
    if should == "false":
        return False
    return status in _TRANSIENT_STATUS or status >= 500 or should == "true"


def status_error(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    *,
    model: str,
    redact: Redactor,
    request_id: str | None,
) -> LLMError:
    """The error for a non-200 answer (``body``: its decoded JSON, or None)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    cls = _status_class(status, error)
    detail = _server_message(error, redact)
    return cls(
        _with_detail(f"LLM endpoint returned HTTP {status} for model {model!r}", detail),
        model=model,
        status_code=status,
        request_id=_redacted_id(request_id, redact),
        retry_after_s=parse_retry_after(headers),
        transient=_status_transient(status, headers),
    )


def embedded_error(error: Any, *, model: str, redact: Redactor, request_id: str | None) -> LLMError:
    """The error for an error object inside a 200 (top level, in a choice, or mid-stream)."""
    code = error.get("code") if isinstance(error, Mapping) else None
    status: int | None = None
    if isinstance(code, int) and not isinstance(code, bool):
        status = code
    elif isinstance(code, str) and code.isdigit():
        status = int(code)
    if status is not None:
        cls = _status_class(status, error)
        transient = _status_transient(status, None)
    else:
        cls = LLMResponseError
        transient = isinstance(code, str) and code in _TRANSIENT_CODES
    if cls is LLMError:
        cls = LLMResponseError
    detail = _server_message(error, redact)
    shown = code if isinstance(code, int | str) else None
    return cls(
        _with_detail(
            f"LLM endpoint returned an error inside a 200 response (code {shown})", detail
        ),
        model=model,
        status_code=status,
        request_id=_redacted_id(request_id, redact),
        transient=transient,
    )


def content_filter_error(*, model: str, request_id: str | None) -> LLMContentFilterError:
    """The answer was withheld by a content filter; asking again gives the same."""
    return LLMContentFilterError(
        f"the answer from model {model!r} was withheld by a content filter",
        model=model,
        request_id=request_id,
        transient=False,
    )


def _caused_by_timeout(exc: BaseException) -> bool:
    """Whether a transport error really is a timeout.

    httpx-aiohttp maps every aiohttp connection error (refused, reset) to
    ``httpx.ConnectTimeout``; the original aiohttp exception is its ``__cause__``.
    """
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        return isinstance(cause, TimeoutError)
    return isinstance(exc, httpx.TimeoutException)


def transport_error(exc: httpx.HTTPError, *, model: str, what: str) -> LLMError:
    """A transport failure: a timeout, or the connection refused, reset or dropped."""
    name = type(exc.__cause__ or exc).__name__
    if isinstance(exc, httpx.TimeoutException) and _caused_by_timeout(exc):
        return LLMTimeoutError(f"{what}: no answer in time ({name})", model=model, transient=True)
    if isinstance(exc, httpx.TransportError):
        return LLMConnectionError(
            f"{what}: connection failed ({name})", model=model, transient=True
        )
    return LLMResponseError(f"{what}: unreadable response ({name})", model=model)


def retry_verdict(exc: Exception) -> Transient | None:
    """The retry policy's classifier: public attributes only."""
    if not isinstance(exc, LLMError) or not exc.transient:
        return None
    if isinstance(exc, LLMTimeoutError) and exc.status_code is None:
        reason = "timeout"
    elif isinstance(exc, LLMConnectionError):
        reason = "connection"
    elif exc.status_code is not None:
        reason = f"status_{exc.status_code}"
    else:
        reason = "server_error"
    return Transient(reason, exc.retry_after_s)
