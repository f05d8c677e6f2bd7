"""Reading a streamed (SSE) chat completion into the shape of a non-streamed one.

OpenRouter sends ``data:`` events of ``chat.completion.chunk`` objects, comment lines
(``: OPENROUTER PROCESSING``) to keep the connection open, usage in the last chunk,
and ``data: [DONE]`` at the end; an error during generation arrives as a chunk with a
top-level ``error`` and ``finish_reason: "error"``. The assembled body goes through the
same checks as a plain response, so a mid-stream error is typed (and retried) the same.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from audit_core.errors import LLMResponseError

__all__ = ["assemble_stream"]


async def assemble_stream(lines: AsyncIterator[str]) -> dict[str, Any]:
    """One ``chat.completion`` body from the SSE ``lines``.

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
        chunk = json.loads(data, parse_float=Decimal)
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
