"""The wire fast paths against what they replace: httpx's client, and the stdlib's json calls.

No hypothesis deadline: a loaded machine must not turn a slow example into a failure.
"""

from __future__ import annotations

import contextlib
import json
import logging
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings, strategies as st
from prometheus_client import CollectorRegistry

from audit_core import AsyncLLMClient, ClientClosedError
from audit_core.llm._wire import ClientWire, TransportWire, decode_exact, encode_compact
from audit_core.testing import chat_completion_body

URL = httpx.URL("https://llm.test/api/v1/chat/completions")
PAYLOAD = '{"model":"m","messages":[{"role":"user","content":"héllo"}]}'.encode()


class Recorder(httpx.AsyncBaseTransport):
    """Keeps every request it is handed and answers a fixed chat completion."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=chat_completion_body("ok"))


def _seen(request: httpx.Request) -> tuple[Any, ...]:
    return (
        request.method,
        str(request.url),
        request.headers.multi_items(),
        request.content,
        request.extensions,
    )


async def test_transport_wire_sends_exactly_what_the_client_would() -> None:
    """Method, URL, headers (in order), body and timeouts equal those of AsyncClient.send."""
    recorder = Recorder()
    client = httpx.AsyncClient(
        headers={"Authorization": "Bearer k", "X-Title": "app", "Accept": "application/json"},
        timeout=httpx.Timeout(7.0, connect=2.0),
        transport=recorder,
    )
    async with client:
        via_client = await ClientWire(client, URL, None).post(PAYLOAD)
        direct = await TransportWire(client, recorder, URL).post(PAYLOAD)
        await direct.aread()
        await via_client.aread()
    sent_by_client, sent_direct = recorder.requests
    assert _seen(sent_direct) == _seen(sent_by_client)
    assert direct.request is sent_direct
    assert direct.json() == via_client.json()


async def test_transport_wire_logs_the_line_send_logs(caplog: pytest.LogCaptureFixture) -> None:
    """httpx's INFO line for each request still appears for an application that shows it."""
    recorder = Recorder()
    async with httpx.AsyncClient(transport=recorder) as client:
        lines = []
        for wire in (ClientWire(client, URL, None), TransportWire(client, recorder, URL)):
            with caplog.at_level(logging.INFO, logger="httpx"):
                caplog.clear()
                await (await wire.post(PAYLOAD)).aclose()
            lines.append([(r.name, r.levelno, r.getMessage()) for r in caplog.records])
    assert lines[0] == lines[1]
    assert len(lines[0]) == 1


async def test_transport_wire_refuses_a_closed_client_as_send_does() -> None:
    """After the owning client's aclose nothing is sent: send's RuntimeError, or ours
    (a RuntimeError too, so what caught the one catches the other)."""
    recorder = Recorder()
    client = httpx.AsyncClient(transport=recorder)
    await client.aclose()
    with pytest.raises(RuntimeError, match="client has been closed"):
        await ClientWire(client, URL, None).post(PAYLOAD)
    with pytest.raises(ClientClosedError, match="closed"):
        await TransportWire(client, recorder, URL).post(PAYLOAD)
    assert recorder.requests == []


async def test_own_and_callers_client_send_the_same_headers() -> None:
    """A client of ours (direct to its transport) and a caller's (through send) agree."""
    own, theirs = Recorder(), Recorder()
    options: dict[str, Any] = {
        "base_url": "https://llm.test/api/v1",
        "app_name": "audit",
        "app_url": "https://example.test",
    }
    async with AsyncLLMClient(
        "k-123456789", transport=own, registry=CollectorRegistry(), **options
    ) as a:
        await a.complete("hi")
    async with (
        httpx.AsyncClient(transport=theirs) as http,
        AsyncLLMClient(
            "k-123456789", http_client=http, registry=CollectorRegistry(), **options
        ) as b,
    ):
        await b.complete("hi")
    (mine,), (callers,) = own.requests, theirs.requests
    assert dict(mine.headers.items()) == dict(callers.headers.items())
    assert (mine.url, mine.content) == (callers.url, callers.content)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.integers(min_value=2**64, max_value=2**80),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(
            st.text() | st.integers() | st.floats() | st.booleans() | st.none(), inner
        )
    ),
    max_leaves=12,
)


def _outcome(fn: Any, *args: Any) -> tuple[str, str]:
    try:
        return "ok", repr(fn(*args))  # repr: NaN compares unequal to itself
    except Exception as exc:
        return type(exc).__name__, str(exc)


@settings(deadline=None, max_examples=300)
@given(json_values | st.sets(st.integers(), max_size=2) | st.decimals() | st.binary(max_size=3))
def test_encode_compact_is_json_dumps(value: Any) -> None:
    """Same bytes as the json.dumps call it replaces, or the same error."""

    def dumps(v: Any) -> bytes:
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()

    assert _outcome(encode_compact, value) == _outcome(dumps, value)


def _encodings(value: Any) -> list[bytes | str]:
    text = json.dumps(value, ensure_ascii=False)
    found: list[bytes | str] = [text, "\ufeff" + text]
    for codec in ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32-be"):
        with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate
            found.append(text.encode(codec))
    return found


@settings(deadline=None, max_examples=300)
@given(
    st.one_of(
        json_values.map(_encodings),
        st.lists(st.binary(max_size=12) | st.text(max_size=12), min_size=1, max_size=3),
        st.lists(
            st.sampled_from(['{"cost": 0.000123}', "1e400", "-0.0", "NaN", "[1.10, 2.500]"]),
            min_size=1,
            max_size=2,
        ),
    )
)
def test_decode_exact_is_json_loads_with_decimals(inputs: list[bytes | str]) -> None:
    """Same value (floats as exact Decimals) as json.loads(..., parse_float=Decimal), or the
    same error, for text, bytes in any JSON encoding, a BOM, and garbage."""
    for data in inputs:
        assert _outcome(decode_exact, data) == _outcome(
            lambda d: json.loads(d, parse_float=Decimal), data
        )
