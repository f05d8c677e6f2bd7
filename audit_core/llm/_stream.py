"""Reading a streamed (SSE) chat completion into the shape of a non-streamed one.

OpenRouter sends ``data:`` events of ``chat.completion.chunk`` objects, comment lines
(``: OPENROUTER PROCESSING``) to keep the connection open, usage in the last chunk,
and ``data: [DONE]`` at the end; an error during generation arrives as a chunk with a
top-level ``error`` and ``finish_reason: "error"``. The assembled body goes through the
same checks as a plain response, so a mid-stream error is typed (and retried) the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Self

from audit_core.errors import ConfigError, LLMError, LLMResponseError
from audit_core.llm._types import LLMResponse
from audit_core.llm._wire import decode_exact

__all__ = ["DeltaSink", "LLMStream", "assemble_stream"]

_END = object()


class DeltaSink:
    """Where a streamed attempt delivers its text deltas; remembers whether it has, since
    an attempt that has delivered text cannot be retried without repeating it."""

    __slots__ = ("delivered", "queue")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.delivered = False

    def __call__(self, delta: str) -> None:
        self.delivered = True
        self.queue.put_nowait(delta)


class LLMStream:
    """The text deltas of one streamed completion, as they arrive; `response` at the end.

    ```python
    async with llm.stream("Summarise ...") as chunks:
        async for delta in chunks:
            print(delta, end="")
    chunks.response.cost_usd   # usage and cost from the final chunk
    ```

    Failures are the typed `LLMError` of `AsyncLLMClient.complete`, raised by the
    iteration; retries happen only while no text has been delivered. Leaving early
    (``aclose``, or the ``async with``) cancels the request.
    """

    def __init__(
        self, start: Callable[[], Coroutine[Any, Any, LLMResponse]], sink: DeltaSink
    ) -> None:
        self._start: Callable[[], Coroutine[Any, Any, LLMResponse]] | None = start
        self._sink = sink
        self._task: asyncio.Task[LLMResponse] | None = None
        self._response: LLMResponse | None = None
        self._deltas = self._read()

    @property
    def response(self) -> LLMResponse:
        """The whole answer with its usage and cost, once the iteration has ended."""
        if self._response is None:
            raise ConfigError("the stream has not ended yet: iterate it to the end first")
        return self._response

    def __aiter__(self) -> Self:
        return self

    def __anext__(self) -> Awaitable[str]:
        return self._deltas.__anext__()

    async def _read(self) -> AsyncGenerator[str, None]:
        if self._start is None:
            return
        self._task = asyncio.create_task(self._start())
        self._task.add_done_callback(lambda _: self._sink.queue.put_nowait(_END))
        self._start = None
        while (item := await self._sink.queue.get()) is not _END:
            assert isinstance(item, str)
            yield item
        self._response = self._task.result()  # raises the call's error, if any

    async def aclose(self) -> None:
        """Stop reading; a request still running is cancelled."""
        self._start = None
        await self._deltas.aclose()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, LLMError):
                await task

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def assemble_stream(
    lines: AsyncIterator[str], on_delta: Callable[[str], object] | None = None
) -> dict[str, Any]:
    """One ``chat.completion`` body from the SSE ``lines``; ``on_delta`` sees each text delta.

    A chunk that is not JSON raises ValueError, one that is not an object LLMResponseError.

    Text deltas are joined; the last ``usage``, ``finish_reason``, ``id`` and ``model``
    win; the first ``error`` (top level or in a choice) is kept and ends the read.
    """
    parts: list[str] = []
    body: dict[str, Any] = {"object": "chat.completion"}
    choice: dict[str, Any] = {"index": 0, "finish_reason": None}
    async for line in lines:
        if not line.startswith("data:"):
            continue  # blank separators, comments, other SSE fields
        data = line[5:].strip()
        if data == "[DONE]":
            break
        chunk = decode_exact(data)
        if not isinstance(chunk, dict):
            raise LLMResponseError("a stream chunk is not a JSON object")
        for key in ("id", "model", "created", "provider", "usage"):
            if chunk.get(key) is not None:
                body[key] = chunk[key]
        for c in chunk.get("choices") or ():
            if not isinstance(c, dict):
                raise LLMResponseError("a stream choice is not a JSON object")
            delta = c.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                parts.append(delta["content"])
                if on_delta is not None and delta["content"]:
                    on_delta(delta["content"])
            if c.get("finish_reason") is not None:
                choice["finish_reason"] = c["finish_reason"]
            if c.get("error") is not None:
                choice["error"] = c["error"]
        if chunk.get("error") is not None:
            body["error"] = chunk["error"]
            break
        if "error" in choice:
            break
    choice["message"] = {"role": "assistant", "content": "".join(parts)}
    body["choices"] = [choice]
    return body
