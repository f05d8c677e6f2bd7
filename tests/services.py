"""Real servers for tests, started from installed binaries on free loopback ports.

When a binary is missing the test is skipped with the reason, unless
AUDIT_REQUIRE_SERVICES=1, where it fails: CI must never silently skip them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REQUIRE = os.environ.get("AUDIT_REQUIRE_SERVICES") == "1"


def missing(what: str) -> None:
    """Skip (or, with AUDIT_REQUIRE_SERVICES=1, fail) for a missing service binary."""
    import pytest  # here, so the benchmarks can use these servers without pytest installed

    message = f"{what} not installed; install it or unset AUDIT_REQUIRE_SERVICES to skip"
    if REQUIRE:
        pytest.fail(message)
    pytest.skip(f"{what} not installed (set AUDIT_REQUIRE_SERVICES=1 to make this fail)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _OutputWatcher:
    """Reads a server's output on a thread (so a full pipe never blocks it) and lets the
    test wait, event-driven, for a line to appear."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.seen = b""
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        with stream, contextlib.suppress(OSError, ValueError):
            while chunk := stream.read1(65536):
                with self.cond:
                    self.seen += chunk
                    self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, marker: bytes, timeout: float, *, after: int = 0) -> int:
        """Block until ``marker`` appears past offset ``after``; return the offset after it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while (at := self.seen.find(marker, after)) < 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    tail = self.seen.decode(errors="replace")[-800:]
                    raise RuntimeError(f"server never logged {marker!r}: {tail}")
                self.cond.wait(min(remaining, 1.0))
            return at + len(marker)


class RedisServer:
    """A redis-server process on 127.0.0.1 that a test can stop and start again."""

    def __init__(self, binary: str, port: int | None = None, *extra: str) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.extra = extra
        self.dir = tempfile.mkdtemp(prefix="audit-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self.dir,
                "--protected-mode", "yes",
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.output = _OutputWatcher(self.proc)
        self.output.wait_for(b"Ready to accept connections", 20)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None:
            self.output.thread.join(10)  # reads to EOF, then closes the pipe
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000, Redis's rule) is free too."""
    import random

    for _ in range(200):
        port = random.randint(20000, 55000)
        try:
            for p in (port, port + 10000):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


class RedisClusterServers:
    """Three cluster-enabled redis-server masters on loopback, joined by redis-cli."""

    def __init__(self, binary: str, cli: str) -> None:
        self.nodes = [
            RedisServer(binary, _cluster_port(), "--cluster-enabled", "yes",
                        "--cluster-node-timeout", "5000")
            for _ in range(3)
        ]  # fmt: skip
        for node in self.nodes:
            node.extra = (*node.extra, "--cluster-config-file", f"{node.dir}/nodes.conf")
        self.cli = cli

    @property
    def startup_node(self) -> tuple[str, int]:
        return "127.0.0.1", self.nodes[0].port

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [self.cli, "--cluster", "create",
             *(f"127.0.0.1:{n.port}" for n in self.nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        # `--cluster create` returns once every slot is assigned; each node logs when it
        # sees the whole cluster as ok, which is when it serves commands.
        for node in self.nodes:
            node.output.wait_for(b"Cluster state changed: ok", 30)

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def postgres_bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


class PostgresServer:
    """A throw-away PostgreSQL cluster (initdb) on a loopback port, trust auth.

    PostgreSQL refuses to run as root; when the tests run as root, the server runs as
    the ``postgres`` system user (created by the Debian package).
    """

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="audit-pg-")
        self.data = Path(self.dir) / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self.user: str | None = None
        if os.geteuid() == 0:
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no 'postgres' user") from None
            self.user = "postgres"
            shutil.chown(self.dir, "postgres")

    @property
    def dsn(self) -> str:
        return f"postgresql://audit@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "audit",
             "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, timeout=120, user=self.user,
        )  # fmt: skip
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, user=self.user,
        )  # fmt: skip
        self.output = _OutputWatcher(self.proc)
        self.output.wait_for(b"database system is ready to accept connections", 60)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
            self.output.thread.join(10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
