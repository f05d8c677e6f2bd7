"""One lifecycle for every client: unopened -> open -> closed, as httpx's ``ClientState``.

A client is usable straight after construction (the first call opens it) or inside
``async with``; ``aclose()`` is safe to call twice; a closed client refuses every call
with `ClientClosedError` (clients are not reusable). A client that owns connections and
is garbage-collected while open emits a `ResourceWarning`, as an unclosed file does.
"""

from __future__ import annotations

import enum
import warnings
from types import TracebackType
from typing import Any, Self

from audit_core.errors import ClientClosedError

__all__ = ["AsyncLifecycle", "ClientState"]


class ClientState(enum.Enum):
    UNOPENED = 1
    OPEN = 2
    CLOSED = 3


class AsyncLifecycle:
    """Mixin: ``async with``, ``aclose()``, ``closed`` and the closed-client check.

    Subclasses implement `_aclose_resources` (release what they own; it runs once) and
    call `_check_open` at the top of each public operation. ``_owns_resources`` says
    whether an unclosed, garbage-collected instance warns.
    """

    _state: ClientState = ClientState.UNOPENED
    _owns_resources: bool = False

    async def __aenter__(self) -> Self:
        if self._state is ClientState.CLOSED:
            raise ClientClosedError(
                f"this {type(self).__name__} is closed and cannot be reopened; create a new one"
            )
        self._state = ClientState.OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release what this client owns. Safe to call twice."""
        if self._state is ClientState.CLOSED:
            return
        try:
            await self._aclose_resources()
        finally:
            self._state = ClientState.CLOSED

    async def _aclose_resources(self) -> None:
        """Release owned connections, pools and buffers (called once, by `aclose`)."""

    @property
    def closed(self) -> bool:
        """True once `aclose` has run."""
        return self._state is ClientState.CLOSED

    def _check_open(self) -> None:
        state = self._state
        if state is ClientState.OPEN:
            return
        if state is ClientState.CLOSED:
            raise ClientClosedError(f"this {type(self).__name__} is closed; create a new one")
        self._state = ClientState.OPEN

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # Only an instance that was used and owns connections can leak anything.
        if self._owns_resources and self._state is ClientState.OPEN:
            _warn(
                f"unclosed {type(self).__name__}: call 'await client.aclose()' or use 'async with'",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
