"""How one chat request reaches the endpoint, and its JSON both ways.

A client we built ourselves has one transport, no auth, no redirects to follow, no
event hooks and no proxies of httpx's (a given transport turns those off), so the
request goes to that transport directly: the same `httpx.Request`, headers and
timeouts that ``AsyncClient.send`` would pass it, without the per-request work of
merging defaults, running the auth and redirect generators and parsing cookies into
a jar nobody reads (about a fifth of the CPU of a call). A caller's ``http_client``
is always used through ``send``, so its hooks, auth and mounts apply as configured.

Both return the response unread (streamed); the caller reads and closes it.

The JSON coders are built once: ``json.dumps``/``json.loads`` with options build a
new encoder or decoder per call. Same output, same errors (the stdlib's own; orjson
would differ on NaN, big integers and exact decimals).
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any, Protocol

import httpx

from audit_core.errors import ClientClosedError

__all__ = ["ClientWire", "TransportWire", "Wire", "decode_exact", "encode_compact"]

_httpx_log = logging.getLogger("httpx")
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_EXACT = json.JSONDecoder(parse_float=Decimal)


def encode_compact(body: Any) -> bytes:
    """``json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()``."""
    return _ENCODER.encode(body).encode()


def decode_exact(data: bytes | str) -> Any:
    """``json.loads(data, parse_float=Decimal)``: numbers with a fraction stay exact."""
    if isinstance(data, str):
        if data.startswith("\ufeff"):  # as json.loads refuses it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
    else:
        data = data.decode(json.detect_encoding(data), "surrogatepass")
    return _EXACT.decode(data)


class Wire(Protocol):
    async def post(self, payload: bytes) -> httpx.Response: ...


class ClientWire:
    """Through an `httpx.AsyncClient`, with ``headers`` added to its own."""

    __slots__ = ("_client", "_headers", "_url")

    def __init__(
        self, client: httpx.AsyncClient, url: httpx.URL, headers: dict[str, str] | None
    ) -> None:
        self._client = client
        self._url = url
        self._headers = headers

    async def post(self, payload: bytes) -> httpx.Response:
        request = self._client.build_request(
            "POST", self._url, content=payload, headers=self._headers
        )
        return await self._client.send(request, stream=True)


class TransportWire:
    """Straight to ``transport``, with the headers and timeouts of the client that owns it."""

    __slots__ = ("_client", "_headers", "_timeout", "_transport", "_url")

    def __init__(
        self, client: httpx.AsyncClient, transport: httpx.AsyncBaseTransport, url: httpx.URL
    ) -> None:
        self._client = client
        self._transport = transport
        self._url = url
        self._headers = httpx.Headers(client.headers)  # the defaults build_request merges
        self._timeout = client.timeout.as_dict()

    async def post(self, payload: bytes) -> httpx.Response:
        if self._client.is_closed:  # a retry racing aclose: send() would refuse it too
            raise ClientClosedError("the LLM client's connections are closed")
        request = httpx.Request(
            "POST",
            self._url,
            headers=self._headers,
            content=payload,
            extensions={"timeout": self._timeout},
        )
        response = await self._transport.handle_async_request(request)
        response.request = request
        if _httpx_log.isEnabledFor(logging.INFO):  # the line send() logs, for who reads it
            _httpx_log.info(
                'HTTP Request: %s %s "%s %d %s"',
                request.method,
                request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        return response
