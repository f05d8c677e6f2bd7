"""Real servers for tests, started from installed binaries on free loopback ports.

When a binary is missing the test is skipped with the reason, unless
AUDIT_REQUIRE_SERVICES=1, where it fails: CI must never silently skip them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
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
    """A redis-server process on 127.0.0.1 that a test can kill, pause and start again.

    ``persistent`` turns on the append-only file with an fsync per write, so a SIGKILL
    and restart keeps every acknowledged write; without it a restart comes back empty.
    """

    def __init__(
        self, binary: str, port: int | None = None, *extra: str, persistent: bool = False
    ) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.extra = extra
        self.persistent = persistent
        self.dir = tempfile.mkdtemp(prefix="audit-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _argv(self) -> list[str]:
        aof = ["yes", "--appendfsync", "always"] if self.persistent else ["no"]
        options = {
            "--port": str(self.port),
            "--bind": "127.0.0.1",
            "--save": "",
            "--dir": self.dir,
            "--protected-mode": "yes",
        }
        argv = [self.binary]
        for name, value in options.items():
            argv += [name, value]
        return [*argv, "--appendonly", *aof, *self.extra]

    def start(self) -> None:
        self.proc = subprocess.Popen(self._argv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.output = _OutputWatcher(self.proc)
        self.output.wait_for(b"Ready to accept connections", 20)

    def stop(self) -> None:
        """SIGKILL: no shutdown save; with ``persistent`` the fsynced AOF survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None:
            self.output.thread.join(10)  # reads to EOF, then closes the pipe
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung server)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

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
        cluster = ("--cluster-enabled", "yes", "--cluster-node-timeout", "5000")
        self.nodes = [RedisServer(binary, _cluster_port(), *cluster) for _ in range(3)]
        for node in self.nodes:
            node.extra = (*node.extra, "--cluster-config-file", f"{node.dir}/nodes.conf")
        self.cli = cli

    @property
    def startup_node(self) -> tuple[str, int]:
        return "127.0.0.1", self.nodes[0].port

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        nodes = [f"127.0.0.1:{n.port}" for n in self.nodes]
        command = [self.cli, "--cluster", "create", *nodes, "--cluster-replicas", "0"]
        subprocess.run([*command, "--cluster-yes"], check=True, capture_output=True, timeout=60)
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
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "audit"]
        initdb += ["--auth=trust", "--no-sync", "-E", "UTF8"]
        subprocess.run(initdb, check=True, capture_output=True, timeout=120, user=self.user)
        config = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": self.dir,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        argv = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for name, value in config.items():
            argv += ["-c", f"{name}={value}"]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, user=self.user
        )
        self.output = _OutputWatcher(self.proc)
        self.output.wait_for(b"database system is ready to accept connections", 60)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
            self.output.thread.join(10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
