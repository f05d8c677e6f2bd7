"""The outage buffer: writes accepted while Redis was unreachable, waiting to go through.

Each buffered write keeps the whole state it produced, the provisional version its
caller was given, whether it was conditional (``expected_version``), and, per run, what
Redis held when this process last saw it (the base). The store replays a run from that:
see `AsyncStateStore.flush`.

With a ``path`` the buffer is also an append-only journal (one JSON record per line),
so a process that exits during an outage loses nothing: the next store opened on the
same path replays it. It survives a process crash, not a power cut (no fsync), and one
process holds it at a time (an exclusive ``flock``). A torn last line is ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from audit_core._logging import get_logger
from audit_core.errors import ConfigError

__all__ = ["BufferedWrite", "OutageBuffer", "PendingRun", "WriteKind"]

_log = get_logger("audit_core.state")

WriteKind = Literal["save", "merge", "call", "delete"]
UpdateFunction = Callable[[dict[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class BufferedWrite:
    """One write accepted while degraded."""

    seq: int
    kind: WriteKind
    conditional: bool  # made with expected_version: never applied over a newer version
    state: bytes | None  # the whole state after this write; None for a delete
    codec: str
    changes: bytes | None  # a merge's mapping as JSON, re-applied if Redis moved on
    version: int  # the provisional version its caller was given
    at: str
    ttl_s: int
    fence: int
    func: UpdateFunction | None = field(default=None, compare=False)  # in memory only


@dataclass(slots=True, kw_only=True)
class PendingRun:
    """A run's buffered writes and what Redis held when this process last saw it."""

    base_version: int
    base_at: str | None
    writes: list[BufferedWrite] = field(default_factory=list)


class OutageBuffer:
    """Pending writes per run, in order; optionally journalled to ``path``."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._runs: dict[str, PendingRun] = {}
        self._seq = 0
        self._file: IO[bytes] | None = None
        if path is not None:
            self._open(path)

    # journal -------------------------------------------------------------------------

    def _open(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        file = path.open("a+b")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            raise ConfigError(
                f"state buffer {str(path)!r} is held by another open store; "
                "give each process its own buffer_path"
            ) from None
        self._file = file
        file.seek(0)
        self._load(file.read())
        if self._runs:
            _log.warning(
                "audit_core.state.buffer_loaded",
                path=str(path),
                runs=len(self._runs),
                note="writes from an earlier process that never reached Redis; replaying",
            )
        else:
            self._truncate()

    def _load(self, data: bytes) -> None:
        lines = data.split(b"\n")
        for number, line in enumerate(lines):
            if not line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                if number == len(lines) - 1:
                    break  # torn by a crash mid-append: that write was never acknowledged
                raise ConfigError(
                    f"state buffer {str(self.path)!r} is corrupt at line {number + 1}"
                ) from None
            self._replay_record(record)

    def _replay_record(self, record: dict[str, Any]) -> None:
        run_id = record["run"]
        if record["t"] == "done":
            self._settle(run_id, record["through"])
            return
        w = record["w"]
        write = BufferedWrite(
            seq=w["seq"],
            kind=w["kind"],
            conditional=w["conditional"],
            state=None if w["state"] is None else w["state"].encode(),
            codec=w["codec"],
            changes=None if w["changes"] is None else w["changes"].encode(),
            version=w["version"],
            at=w["at"],
            ttl_s=w["ttl_s"],
            fence=w["fence"],
        )
        self._seq = max(self._seq, write.seq)
        self._add(run_id, write, record["base_version"], record["base_at"])

    def _append(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(orjson.dumps(record) + b"\n")
        self._file.flush()  # in the kernel: survives this process exiting

    def _truncate(self) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            self._file.flush()

    def close(self) -> None:
        """Release the journal (its content stays for the next process when not empty)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    # pending writes ------------------------------------------------------------------

    def __bool__(self) -> bool:
        return bool(self._runs)

    def __len__(self) -> int:
        return len(self._runs)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._runs

    def runs(self) -> list[str]:
        """Run ids with pending writes, in the order they were first buffered."""
        return list(self._runs)

    def get(self, run_id: str) -> PendingRun | None:
        return self._runs.get(run_id)

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add(
        self, run_id: str, write: BufferedWrite, base_version: int, base_at: str | None
    ) -> None:
        """Buffer ``write``; the base counts only for a run's first pending write."""
        self._add(run_id, write, base_version, base_at)
        if self._file is not None:
            record = {
                "t": "put",
                "run": run_id,
                "base_version": base_version,
                "base_at": base_at,
                "w": {
                    "seq": write.seq,
                    "kind": write.kind,
                    "conditional": write.conditional,
                    "state": None if write.state is None else write.state.decode(),
                    "codec": write.codec,
                    "changes": None if write.changes is None else write.changes.decode(),
                    "version": write.version,
                    "at": write.at,
                    "ttl_s": write.ttl_s,
                    "fence": write.fence,
                },
            }
            self._append(record)

    def _add(
        self, run_id: str, write: BufferedWrite, base_version: int, base_at: str | None
    ) -> None:
        pending = self._runs.get(run_id)
        if pending is None:
            pending = self._runs[run_id] = PendingRun(base_version=base_version, base_at=base_at)
        pending.writes.append(write)

    def settle(self, run_id: str, through: int) -> None:
        """Drop the run's writes up to sequence ``through``: they went through (or lost)."""
        self._settle(run_id, through)
        if not self._runs:
            self._truncate()
        else:
            self._append({"t": "done", "run": run_id, "through": through})

    def _settle(self, run_id: str, through: int) -> None:
        pending = self._runs.get(run_id)
        if pending is None:
            return
        pending.writes = [w for w in pending.writes if w.seq > through]
        if not pending.writes:
            del self._runs[run_id]


def journal_path(path: str | os.PathLike[str] | None) -> Path | None:
    """``buffer_path`` as a `Path`, with ``~`` expanded."""
    return None if path is None else Path(path).expanduser()
