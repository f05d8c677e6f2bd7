"""Response caches for `AsyncLLMClient`: in-memory LRU, or Redis via the state store.

The key is the SHA-256 of the canonical JSON of the whole request body (model,
messages, temperature, max_tokens, response_format and any extra parameter), so
anything that can change the answer changes the key. A cache never fails a call: a
store that cannot be read or written is a miss, logged and counted.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from audit_core._logging import get_logger
from audit_core.errors import ConfigError

if TYPE_CHECKING:
    from audit_core.state import AsyncStateStore

_log = get_logger("audit_core.llm.cache")


def cache_key(body: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of a request body."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ResponseCache(Protocol):
    """Where cached answers live: ``get`` returns what ``set`` stored, or None."""

    async def get(self, key: str) -> dict[str, Any] | None: ...
    async def set(self, key: str, value: dict[str, Any]) -> None: ...


class MemoryCache:
    """A bounded in-process LRU (``max_entries`` answers)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ConfigError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self._data: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> dict[str, Any] | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    async def set(self, key: str, value: dict[str, Any]) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)


class StateStoreCache:
    """Answers in the state store's Redis (or embedded store), with a TTL.

    Keys are ``{prefix}:llmcache:{sha256}``: one key per command, so it works on Redis
    Cluster too.
    """

    def __init__(self, store: AsyncStateStore, *, ttl_s: int = 7 * 86400) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._prefix = f"{store.key_prefix}:llmcache:"

    async def get(self, key: str) -> dict[str, Any] | None:
        try:
            raw = await self.store.client.get(self._prefix + key)
        except Exception as exc:  # a cache must never fail the call
            _log.warning(
                "audit_core.llm.cache_unavailable", op="get", error_type=type(exc).__name__
            )
            return None
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            _log.warning("audit_core.llm.cache_corrupt", key=key[:12])
            return None
        return value if isinstance(value, dict) else None

    async def set(self, key: str, value: dict[str, Any]) -> None:
        data = json.dumps(value, separators=(",", ":"), default=str)
        try:
            await self.store.client.set(self._prefix + key, data, ex=self.ttl_s)
        except Exception as exc:
            _log.warning(
                "audit_core.llm.cache_unavailable", op="set", error_type=type(exc).__name__
            )
