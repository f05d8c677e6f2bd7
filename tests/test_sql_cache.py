"""The persistent SQL cache: a warm process answers without sqlglot, and the cache
never answers differently from working the statement out, nor trusts a file others
could have written."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit_core import _sqlcache
from audit_core.errors import ReadOnlyViolationError
from audit_core.warehouse import DatabricksClient
from audit_core.warehouse._client import _statement_kind, statement_kind
from audit_core.warehouse._sql import _to_duckdb, to_duckdb
from tests.parity._corpus import load_corpus

DROP = "DROP TABLE gold.recent_transactions"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cache file for this test, and this process's caches emptied around it."""
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    path = folder / "sql.json"
    monkeypatch.setenv("AUDIT_SQL_CACHE", str(path))
    _forget()
    yield path
    _forget()


def _forget() -> None:
    _sqlcache.reset()
    statement_kind.cache_clear()
    to_duckdb.cache_clear()


def _name(kind: str, key: tuple[object, ...]) -> str:
    return hashlib.sha256(repr((kind, key)).encode()).hexdigest()[:40]


def _write(path: Path, entries: dict[str, object], fingerprint: str | None = None) -> None:
    data = {
        "format": 1,
        "fingerprint": fingerprint or _sqlcache.fingerprint(),
        "entries": entries,
    }
    path.write_text(json.dumps(data))
    path.chmod(0o600)


def _run(code: str, path: Path) -> str:
    env = {**os.environ, "AUDIT_SQL_CACHE": str(path)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


QUERY = (
    "import asyncio, sys\n"
    "from audit_core import DatabricksClient\n"
    "async def main():\n"
    "    async with DatabricksClient.local() as wh:\n"
    "        t = await wh.query_arrow('SELECT vendor_name, sum(amount) AS s FROM "
    "gold.recent_transactions WHERE amount > :m GROUP BY 1 ORDER BY 1', {'m': 10})\n"
    "        print(t.to_pylist(), t.schema.field('s').type)\n"
    "asyncio.run(main())\n"
    "print('sqlglot' in sys.modules)\n"
)


def test_a_warm_process_answers_the_same_without_importing_sqlglot(cache: Path) -> None:
    cold = _run(QUERY, cache).splitlines()
    assert cold[-1] == "True"  # worked out: sqlglot was needed
    assert cache.is_file()
    assert cache.stat().st_mode & 0o077 == 0  # private to this user
    warm = _run(QUERY, cache).splitlines()
    assert warm[-1] == "False"
    assert warm[:-1] == cold[:-1]


def test_cached_answers_equal_worked_out_ones_over_the_parity_corpus(cache: Path) -> None:
    """Every corpus statement through the cache (written, then read back in a fresh
    load) gives what translating it directly gives, errors included."""
    statements = [case.sql for case in load_corpus()]

    def direct(sql: str) -> object:
        try:
            return _to_duckdb(sql, None, ())
        except Exception as exc:
            return type(exc).__name__

    def cached(sql: str) -> object:
        try:
            return to_duckdb(sql)
        except Exception as exc:
            return type(exc).__name__

    expected = {sql: (direct(sql), _statement_kind(sql)) for sql in statements}
    first = {sql: (cached(sql), statement_kind(sql)) for sql in statements}
    _sqlcache.save()
    _forget()
    second = {sql: (cached(sql), statement_kind(sql)) for sql in statements}
    assert first == expected
    assert second == expected
    assert len(json.loads(cache.read_text())["entries"]) >= len(statements)


@pytest.mark.parametrize("who", ["file", "folder"])
async def test_a_file_others_can_write_is_not_trusted(cache: Path, who: str) -> None:
    """A poisoned entry saying a DROP is a read is ignored when the file or its folder is
    writable by others: query() still refuses the DROP."""
    _write(cache, {_name("kind", (DROP,)): "read"})
    (cache if who == "file" else cache.parent).chmod(0o666 if who == "file" else 0o777)
    async with DatabricksClient.local() as wh:
        with pytest.raises(ReadOnlyViolationError):
            await wh.query_arrow(DROP)


def test_the_trust_check_is_what_stands_between_a_poisoned_file_and_query(
    cache: Path,
) -> None:
    """The same poisoned file, private: it is read (so the check above is the guard, and
    the test above can fail)."""
    _write(cache, {_name("kind", (DROP,)): "read"})
    assert statement_kind(DROP) == "read"


@pytest.mark.parametrize(
    "content",
    ["", "{", "null", '{"format": 1, "fingerprint": "x", "entries": []}', "\x00" * 50],
)
def test_a_damaged_file_is_ignored_and_replaced(cache: Path, content: str) -> None:
    cache.write_text(content)
    cache.chmod(0o600)
    assert statement_kind("SELECT 1") == "read"
    assert to_duckdb("SELECT :x AS y").params == frozenset({"x"})
    _sqlcache.save()
    data = json.loads(cache.read_text())
    assert data["fingerprint"] == _sqlcache.fingerprint()
    assert len(data["entries"]) == 2


def test_an_entry_it_cannot_read_is_worked_out_again(cache: Path) -> None:
    _write(cache, {_name("kind", (DROP,)): "maybe", _name("duckdb", ("SELECT 1", None, ())): 7})
    assert statement_kind(DROP) == "write"
    assert to_duckdb("SELECT 1").sql == "SELECT 1"


def test_another_code_version_starts_afresh(cache: Path) -> None:
    _write(cache, {_name("kind", (DROP,)): "read"}, fingerprint="someone-else")
    assert statement_kind(DROP) == "write"


def test_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_SQL_CACHE", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _forget()
    try:
        assert statement_kind("SELECT 2") == "read"
        _sqlcache.save()
        assert list(tmp_path.iterdir()) == []
    finally:
        _forget()


def test_the_default_place_is_under_xdg_cache_home(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    assert _sqlcache.cache_path(env) == tmp_path / "audit-core" / "sql-cache.json"
    assert _sqlcache.cache_path({"AUDIT_SQL_CACHE": "OFF"}) is None


def test_two_processes_saving_at_once_leave_a_readable_file(cache: Path) -> None:
    code = (
        "import sys\n"
        "from audit_core.warehouse._sql import to_duckdb\n"
        "for i in range(300):\n"
        "    to_duckdb(f'SELECT {i} + :p{sys.argv[1]} AS x')\n"
    )
    env = {**os.environ, "AUDIT_SQL_CACHE": str(cache)}
    workers = [subprocess.Popen([sys.executable, "-c", code, str(n)], env=env) for n in range(3)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
    data = json.loads(cache.read_text())
    assert len(data["entries"]) >= 300  # one writer's whole set, at least


def test_the_same_text_over_other_column_types_is_another_entry(cache: Path) -> None:
    """``sum(a)`` is BIGINT over INT and DECIMAL(20,2) over DECIMAL(10,2): a cache keyed
    on the text alone would hand the second process the first one's translation."""
    code = (
        "import asyncio, sys\n"
        "from audit_core import DatabricksClient\n"
        "async def main():\n"
        "    async with DatabricksClient.local(load_fixtures=False) as wh:\n"
        "        await wh.execute(f'CREATE TABLE t (a {sys.argv[1]})')\n"
        "        await wh.execute('INSERT INTO t VALUES (1)')\n"
        "        t = await wh.query_arrow('SELECT sum(a) AS s FROM t')\n"
        "        print(t.schema.field('s').type)\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "AUDIT_SQL_CACHE": str(cache)}

    def answer(column_type: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code, column_type],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    assert answer("INT") == "int64"
    assert answer("DECIMAL(10, 2)") == "decimal128(20, 2)"
    assert answer("INT") == "int64"


def test_doctor_says_where_the_cache_is_and_whether_it_is_trusted(cache: Path) -> None:
    assert _sqlcache.describe() == ("OK", f"{cache} (empty: the first run fills it)")
    statement_kind("SELECT 3")
    _sqlcache.save()
    assert _sqlcache.describe() == ("OK", f"{cache} (1 answer kept)")
    cache.chmod(0o646)
    status, detail = _sqlcache.describe()
    assert status == "FAIL"
    assert "ignored" in detail
