"""Connection setup: a ``redis.asyncio`` client (or an embedded one) from a URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import exceptions as redis_errors

from audit_core._logging import get_logger
from audit_core._settings import redact_url
from audit_core.errors import ConfigError
from audit_core.retry import Transient

__all__ = ["UNAVAILABLE", "Connection", "classify", "connect"]

_log = get_logger("audit_core.state")
_memory_servers: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Connection:
    """A client built from a URL, the URL with any password hidden, and whether it lasts."""

    client: Any
    url: str
    durable: bool


def connect(
    url: str, *, socket_timeout_s: float, connect_timeout_s: float, max_connections: int
) -> Connection:
    """A client for ``redis://``, ``rediss://``, ``unix://`` or ``memory://[NAME]``.

    ``memory://NAME`` is an embedded in-process Redis (fakeredis, Lua included): the same
    code path, not durable; each NAME is a separate server, shared within the process.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        return _embedded(url.split("://", 1)[1] or "default")
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            "state store URL must start with redis://, rediss://, unix:// or memory://; "
            f"got scheme {scheme!r}"
        )
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    # redis-py's own retry only covers a dropped pooled connection (one quick reconnect);
    # the shared policy above it owns backoff and the deadline, so the two do not multiply.
    client = aioredis.from_url(
        url,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=connect_timeout_s,
        health_check_interval=30,
        max_connections=max_connections,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.01), 1),
    )
    return Connection(client, redact_url(url), durable=True)


def _embedded(name: str) -> Connection:
    import fakeredis

    server = _memory_servers.get(name)
    if server is None:
        server = _memory_servers[name] = fakeredis.FakeServer()
    _log.info(
        "audit_core.state.embedded",
        url=f"memory://{name}",
        durable=False,
        note="embedded in-process store: state is lost when the process exits",
    )
    client = fakeredis.FakeAsyncRedis(server=server, lua_modules=set())
    return Connection(client, f"memory://{name}", durable=False)


def _cluster_transient() -> tuple[type[Exception], ...]:
    from redis import exceptions as redis_errors

    names = ("ClusterDownError", "TryAgainError", "MasterDownError")
    return tuple(getattr(redis_errors, n) for n in names if hasattr(redis_errors, n))


UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    ConnectionError,
    TimeoutError,
    OSError,
)
"""What an unreachable (or still loading) Redis raises."""
_CLUSTER_TRANSIENT = _cluster_transient()


def classify(exc: Exception) -> Transient | None:
    """The retry policy's verdict on a Redis failure."""
    if isinstance(exc, redis_errors.TimeoutError | TimeoutError):
        return Transient("timeout")
    if isinstance(exc, redis_errors.BusyLoadingError):
        return Transient("loading")
    if isinstance(exc, _CLUSTER_TRANSIENT):
        return Transient("cluster")
    if isinstance(exc, redis_errors.ConnectionError | ConnectionError | OSError):
        return Transient("connection")
    return None
