"""What sqlglot decided about a statement, kept between processes.

Parsing and translating SQL is most of a short run's Python time, and importing sqlglot
alone costs more than a small query. The answers depend on nothing but the statement's
text (with the table types and parameter types a translation also takes), this
package's SQL code and sqlglot's version, so they are kept in a file, as Python keeps
bytecode: a process that finds its statements there never imports sqlglot.

- Where: ``AUDIT_SQL_CACHE`` (a file path, or ``off``), else
  ``$XDG_CACHE_HOME/audit-core/sql-cache.json`` (``~/.cache/...``).
- Invalidation: every entry is keyed under a fingerprint of this package's SQL modules
  (their bytes) and sqlglot's installed version; a change to either starts afresh.
- Trust: the answers decide what ``query()`` lets through, so only a file owned by this
  user, in a folder owned by this user, neither writable by anyone else, is read; it is
  written the same way (0600 in a 0700 folder), atomically, when the process exits.
- Bounds: at most `MAX_ENTRIES`, the newest kept; a file that does not parse as this
  module wrote it is ignored (and replaced). Only answers are kept, never errors: a
  statement that fails is worked out (and fails) again.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from audit_core._logging import get_logger

__all__ = [
    "MAX_ENTRIES",
    "MISSING",
    "cache_path",
    "describe",
    "fingerprint",
    "lookup",
    "reset",
    "save",
]

T = TypeVar("T")
MISSING: Any = object()  # what a ``decode`` returns for an entry it cannot read
MAX_ENTRIES = 4096
_FORMAT = 1
_log = get_logger("audit_core.warehouse")
# The modules whose code decides the answers (relative to the package).
_SOURCES = (
    "_sqlcache.py",
    "warehouse/_sql.py",
    "warehouse/_client.py",
    "warehouse/_local.py",
    "fixtures/_manifest.py",
)
_DEPENDENCY = "sqlglot"


def cache_path(environ: dict[str, str] | os._Environ[str] | None = None) -> Path | None:
    """The cache file, or None when ``AUDIT_SQL_CACHE=off``."""
    env = os.environ if environ is None else environ
    chosen = env.get("AUDIT_SQL_CACHE", "").strip()
    if chosen.lower() in ("off", "0", "false", "no", "none"):
        return None
    if chosen:
        return Path(chosen).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "audit-core" / "sql-cache.json"


def _dependency_version() -> str:
    """sqlglot's version, read from its files: importing it is what the cache avoids."""
    from importlib.util import find_spec

    spec = find_spec(_DEPENDENCY)
    if spec is None or spec.origin is None:
        return "missing"
    folder = Path(spec.origin).parent
    for name in ("_version.py", "__init__.py"):
        with contextlib.suppress(OSError):
            return hashlib.sha256((folder / name).read_bytes()).hexdigest()[:16]
    return "unknown"


def fingerprint() -> str:
    """This package's SQL code and sqlglot's version, as one hex digest."""
    digest = hashlib.sha256(f"format {_FORMAT}".encode())
    here = Path(__file__).parent
    for name in _SOURCES:
        with contextlib.suppress(OSError):
            digest.update((here / name).read_bytes())
    digest.update(_dependency_version().encode())
    return digest.hexdigest()[:32]


def _private(item: Path) -> bool:
    """Owned by this user and writable by no one else."""
    getuid = getattr(os, "getuid", None)
    try:
        info = item.stat()
    except OSError:
        return False
    if getuid is not None and info.st_uid != getuid():
        return False
    return not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _trusted(path: Path) -> bool:
    """The file and the folder it is in are both private to this user: the folder the
    name is in, and, through any symlink, the folder the file really is in."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # a dangling link or a loop
        return False
    return _private(path.parent) and _private(real.parent) and _private(real)


class _Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded = False
        self.path: Path | None = None
        self.print = ""
        self.entries: dict[str, Any] = {}
        self.added = 0
        self.registered = False

    def load(self) -> None:
        self.loaded = True
        self.path = cache_path()
        if self.path is None:
            return
        self.print = fingerprint()
        if not self.path.is_file() or not _trusted(self.path):
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if (
            isinstance(data, dict)
            and data.get("format") == _FORMAT
            and data.get("fingerprint") == self.print
            and isinstance(data.get("entries"), dict)
        ):
            self.entries = data["entries"]

    def save(self) -> None:
        with self.lock:
            if not self.added or self.path is None:
                return
            entries = dict(list(self.entries.items())[-MAX_ENTRIES:])
            data = {"format": _FORMAT, "fingerprint": self.print, "entries": entries}
            self.added = 0
        folder = self.path.parent
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _private(folder):
                return
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".sql-cache-")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(data, out, separators=(",", ":"))
                os.chmod(temporary, 0o600)
                os.replace(temporary, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:  # a read-only home, a full disk: the cache is optional
            _log.debug("audit_core.warehouse.sql_cache_not_saved", error=type(exc).__name__)


_store = _Store()


def lookup(
    kind: str,
    key: tuple[Any, ...],
    compute: Callable[[], T],
    encode: Callable[[T], Any],
    decode: Callable[[Any], T],
) -> T:
    """``compute()``'s answer for (``kind``, ``key``), from the cache when it holds it.

    ``encode`` turns the answer into JSON values and ``decode`` back; an entry that
    ``decode`` cannot read (it returns `MISSING`, or fails) is worked out again.
    """
    with _store.lock:
        if not _store.loaded:
            _store.load()
        if _store.path is None:
            name = None
        else:
            name = hashlib.sha256(repr((kind, key)).encode()).hexdigest()[:40]
        stored = _store.entries.get(name) if name is not None else None
    if stored is not None:
        try:
            decoded = decode(stored)
        except (TypeError, ValueError, KeyError, IndexError):
            decoded = MISSING
        if decoded is not MISSING:
            return decoded
    answer = compute()
    if name is None:
        return answer
    encoded = encode(answer)
    with _store.lock:
        _store.entries.pop(name, None)
        _store.entries[name] = encoded
        _store.added += 1
        if not _store.registered:
            _store.registered = True
            atexit.register(_store.save)
    return answer


def describe() -> tuple[str, str]:
    """(status, detail) of the cache for ``audit-core doctor``."""
    path = cache_path()
    if path is None:
        return "SKIP", "AUDIT_SQL_CACHE=off: every statement is worked out with sqlglot"
    if not path.is_file():
        return "OK", f"{path} (empty: the first run fills it)"
    if not _trusted(path):
        return "FAIL", f"{path} is writable by others or not yours: it is ignored"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = len(data["entries"])
        current = data.get("fingerprint") == fingerprint()
    except (OSError, ValueError, KeyError, TypeError):
        return "OK", f"{path} (unreadable: it will be replaced)"
    if not current:
        return "OK", f"{path} (from another version: it will be replaced)"
    return "OK", f"{path} ({entries} {'answer' if entries == 1 else 'answers'} kept)"


def save() -> None:
    """Write the new entries now (done at exit anyway)."""
    _store.save()


def reset() -> None:
    """Forget what was loaded and added (tests; a changed ``AUDIT_SQL_CACHE``)."""
    with _store.lock:
        _store.loaded = False
        _store.path = None
        _store.entries = {}
        _store.added = 0
