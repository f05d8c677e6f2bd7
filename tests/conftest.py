"""Shared fixtures: a fake clock for the retry policy."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

from audit_core.retry import RetryPolicy
from audit_core.testing import FakeClock

# The persistent SQL cache (audit_core._sqlcache) goes under $XDG_CACHE_HOME: a folder of
# this session's own, so no test reads or writes the user's cache, subprocesses included.
_CACHE_HOME = tempfile.mkdtemp(prefix="audit-core-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE_HOME
os.environ.pop("AUDIT_SQL_CACHE", None)
atexit.register(shutil.rmtree, _CACHE_HOME, True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def policy(clock: FakeClock) -> RetryPolicy:
    """A retry policy that never really sleeps, with deterministic mid-range jitter."""
    return RetryPolicy(sleep=clock.sleep, clock=clock, rng=lambda: 0.5)


# --- real services ---------------------------------------------------------------------

from collections.abc import Iterator  # noqa: E402

from tests.services import (  # noqa: E402
    PostgresServer,
    RedisClusterServers,
    RedisServer,
    missing,
    postgres_bindir,
    redis_binary,
)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session (tests use unique run ids / prefixes)."""
    binary = redis_binary()
    if binary is None:
        missing("redis-server")
        raise AssertionError("unreachable")
    server = RedisServer(binary)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which it may kill and restart."""
    binary = redis_binary()
    if binary is None:
        missing("redis-server")
        raise AssertionError("unreachable")
    server = RedisServer(binary)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A three-master Redis Cluster on loopback, built with `redis-cli --cluster create`."""
    binary, cli = redis_binary(), shutil.which("redis-cli")
    if binary is None or cli is None:
        missing("redis-server / redis-cli")
        raise AssertionError("unreachable")
    cluster = RedisClusterServers(binary, cli)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (initdb in a temp dir, loopback only)."""
    bindir = postgres_bindir()
    if bindir is None:
        missing("PostgreSQL (initdb/postgres)")
        raise AssertionError("unreachable")
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
