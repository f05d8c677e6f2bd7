"""Attacks on today's engine work: the persistent SQL cache, the attached results file,
flags written in the engine, the interruptible demo and DML row counts.

Each test states one guarantee. A test marked ``xfail(strict=True)`` is a guarantee
found broken; its reason says how.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from prometheus_client import CollectorRegistry

from audit_core import DatabricksClient, _sqlcache
from audit_core.db import FlagStore, ensure_schema
from audit_core.db._flags import flag_id_for
from audit_core.errors import (
    ClientClosedError,
    ConfigError,
    InvalidFlagError,
    QueryError,
    ReadOnlyViolationError,
)
from audit_core.warehouse._client import _statement_kind, statement_kind
from audit_core.warehouse._sql import (
    _output_columns,
    _tables_in,
    _to_duckdb,
    output_columns,
    tables_in,
    to_duckdb,
)

DROP = "DROP TABLE gold.recent_transactions"
CLI = [sys.executable, "-m", "audit_core"]


# --- 1. the persistent SQL cache -------------------------------------------------------


def _forget() -> None:
    _sqlcache.reset()
    statement_kind.cache_clear()
    to_duckdb.cache_clear()
    tables_in.cache_clear()
    output_columns.cache_clear()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private cache file for this test; this process's caches emptied around it."""
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    path = folder / "sql.json"
    monkeypatch.setenv("AUDIT_SQL_CACHE", str(path))
    _forget()
    yield path
    _forget()


def _name(kind: str, key: tuple[object, ...]) -> str:
    return hashlib.sha256(repr((kind, key)).encode()).hexdigest()[:40]


def _poison(path: Path) -> None:
    """A well-formed cache file that calls a DROP a read."""
    data = {
        "format": 1,
        "fingerprint": _sqlcache.fingerprint(),
        "entries": {_name("kind", (DROP,)): "read"},
    }
    path.write_text(json.dumps(data))
    path.chmod(0o600)


def test_a_symlink_to_a_file_in_a_world_writable_folder_is_not_trusted(
    cache: Path, tmp_path: Path
) -> None:
    """The file's real folder must be private too, not only the folder of a link to it."""
    public = tmp_path / "public"
    public.mkdir()
    public.chmod(0o777)
    target = public / "planted.json"
    _poison(target)
    cache.symlink_to(target)
    assert statement_kind(DROP) == "write"


def test_a_symlinked_folder_that_is_world_writable_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache folder that is a link to a world-writable folder is not read."""
    public = tmp_path / "public"
    public.mkdir()
    public.chmod(0o777)
    _poison(public / "sql.json")
    link = tmp_path / "link"
    link.symlink_to(public)
    monkeypatch.setenv("AUDIT_SQL_CACHE", str(link / "sql.json"))
    _forget()
    try:
        assert statement_kind(DROP) == "write"
    finally:
        _forget()


def test_a_file_of_another_owner_is_not_trusted(cache: Path) -> None:
    """A cache file owned by someone else (here: nobody) is ignored, even 0600."""
    if os.getuid() != 0:
        pytest.skip("chown to another user needs root")
    _poison(cache)
    os.chown(cache, 65534, 65534)
    assert statement_kind(DROP) == "write"


def test_another_fingerprint_is_ignored(cache: Path) -> None:
    """A poisoned file written under another code version answers nothing."""
    _poison(cache)
    data = json.loads(cache.read_text())
    data["fingerprint"] = "0" * 32
    cache.write_text(json.dumps(data))
    assert statement_kind(DROP) == "write"


_SAVE_ONE = (
    "from audit_core.warehouse._client import statement_kind; from audit_core import _sqlcache\n"
    "print(statement_kind('SELECT 1')); _sqlcache.save()\n"
)


@pytest.mark.parametrize("what", ["fifo", "directory"])
def test_a_cache_path_that_is_not_a_file_neither_hangs_nor_fails(cache: Path, what: str) -> None:
    """A FIFO or a folder where the file should be: the process answers and exits."""
    if what == "fifo":
        os.mkfifo(cache, 0o600)
    else:
        cache.mkdir(mode=0o700)
    env = {**os.environ, "AUDIT_SQL_CACHE": str(cache)}
    proc = subprocess.run(
        [sys.executable, "-c", _SAVE_ONE], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "read"
    if what == "directory":
        assert cache.is_dir()
    assert not [p for p in cache.parent.iterdir() if p.name.startswith(".sql-cache-")]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'a\x00b' AS c",
        "SELECT 'caf\u00e9 \u2028 \U0001f4b8' AS \"\u00e9t\u00e9\", 1 AS x FROM gold.emails",
        "SELECT 1 AS a -- \x00 comment\n",
        "DELETE FROM gold.emails WHERE subject = 'x\\'; DROP TABLE y; --'",
        'SELECT "a""b" FROM t',
    ],
)
def test_odd_text_comes_back_from_the_file_as_it_was_worked_out(cache: Path, sql: str) -> None:
    """NUL, quotes and non-BMP characters survive the file: warm answers equal cold ones."""
    cold = (
        statement_kind(sql),
        tables_in(sql),
        output_columns(sql),
    )
    try:
        translated: object = to_duckdb(sql)
    except QueryError as exc:
        translated = type(exc)
    _sqlcache.save()
    _forget()
    warm_translation: object
    try:
        warm_translation = to_duckdb(sql)
    except QueryError as exc:
        warm_translation = type(exc)
    assert (statement_kind(sql), tables_in(sql), output_columns(sql)) == cold
    assert cold == (_statement_kind(sql), _tables_in(sql), _output_columns(sql))
    assert warm_translation == translated
    if not isinstance(translated, type):
        assert translated == _to_duckdb(sql, None, ())


def test_a_statement_that_fails_is_never_kept(cache: Path) -> None:
    """A translation that raises leaves no entry behind."""
    bad = "SELECT * FROM t WHERE a = ?"
    with pytest.raises(QueryError):
        to_duckdb(bad)
    _sqlcache.save()
    entries = json.loads(cache.read_text())["entries"] if cache.exists() else {}
    assert _name("duckdb", (bad, None, ())) not in entries


def test_parameter_types_that_print_alike_are_other_entries(cache: Path) -> None:
    """Keys built from repr() keep a decimal(3,1) apart from a decimal(31,) spelled the
    same way once joined: the two translations differ and neither is served for the other."""
    sql = "SELECT :p * 2 AS x"
    a = to_duckdb(sql, None, (("p", "decimal(3,1)", 0),))
    b = to_duckdb(sql, None, (("p", "decimal(31,0)", 0),))
    _sqlcache.save()
    _forget()
    assert to_duckdb(sql, None, (("p", "decimal(3,1)", 0),)) == a
    assert to_duckdb(sql, None, (("p", "decimal(31,0)", 0),)) == b
    assert a == _to_duckdb(sql, None, (("p", "decimal(3,1)", 0),))
    assert b == _to_duckdb(sql, None, (("p", "decimal(31,0)", 0),))


def test_the_file_never_holds_more_than_max_entries(cache: Path) -> None:
    """However many answers a process adds, the saved file keeps the newest MAX_ENTRIES."""
    total = _sqlcache.MAX_ENTRIES + 500
    for i in range(total):
        _sqlcache.lookup("attack", (i,), lambda i=i: i, int, int)
    _sqlcache.save()
    entries = json.loads(cache.read_text())["entries"]
    assert len(entries) == _sqlcache.MAX_ENTRIES
    assert _name("attack", (total - 1,)) in entries
    assert _name("attack", (0,)) not in entries
    assert oct(cache.stat().st_mode & 0o777) == oct(0o600)


_FILL = (
    "import sys\n"
    "from audit_core.warehouse._client import statement_kind\n"
    "from audit_core.warehouse._sql import to_duckdb\n"
    "from audit_core import _sqlcache\n"
    "n = int(sys.argv[1])\n"
    "for i in range(40):\n"
    "    statement_kind(f'SELECT {n} * {i} AS v')\n"
    "    to_duckdb(f'DELETE FROM t WHERE a = {n} + {i}')\n"
    "_sqlcache.save()\n"
)


def test_processes_saving_at_once_leave_a_file_whose_answers_are_right(cache: Path) -> None:
    """Four processes save together: the file parses and every entry it kept is right."""
    env = {**os.environ, "AUDIT_SQL_CACHE": str(cache)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _FILL, str(n)], env=env, stderr=subprocess.PIPE)
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    entries = json.loads(cache.read_text())["entries"]
    assert len(entries) >= 80  # at least one process's answers
    expected = {}
    for n in range(4):
        for i in range(40):
            read, delete = f"SELECT {n} * {i} AS v", f"DELETE FROM t WHERE a = {n} + {i}"
            expected[_name("kind", (read,))] = "read"
            done = _to_duckdb(delete, None, ())
            expected[_name("duckdb", (delete, None, ()))] = [
                done.sql,
                sorted(done.params),
                done.counts,
            ]
    assert set(entries) <= set(expected)
    assert all(entries[k] == expected[k] for k in entries)
    assert not [p for p in cache.parent.iterdir() if p.name.startswith(".sql-cache-")]


# --- 2. the attached results file ----------------------------------------------------


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[DatabricksClient, DatabricksClient]]:
    """The shipped fixtures with a results file attached to the same engine."""
    warehouse = DatabricksClient.local(registry=CollectorRegistry())
    results = warehouse.attach(tmp_path / "results.duckdb", registry=CollectorRegistry())
    async with warehouse, results:
        await ensure_schema(results)
        yield warehouse, results


@pytest.fixture
async def apart(tmp_path: Path) -> AsyncIterator[tuple[DatabricksClient, DatabricksClient]]:
    """The same with the results file in an engine of its own (the Arrow path)."""
    warehouse = DatabricksClient.local(registry=CollectorRegistry())
    results = DatabricksClient.local(
        database=tmp_path / "apart.duckdb", load_fixtures=False, registry=CollectorRegistry()
    )
    async with warehouse, results:
        await ensure_schema(results)
        yield warehouse, results


REFUSED = [
    "ATTACH '{dir}/other.duckdb' AS other",
    "COPY (SELECT 1) TO '{dir}/out.csv'",
    "COPY (SELECT 1) TO '{dir}/results.duckdb' (FORMAT csv)",
    "EXPORT DATABASE '{dir}/export'",
    "SET enable_external_access = true",
    "RESET enable_external_access",
    "SET lock_configuration = false",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_csv('{fixtures}/../../../../../../../etc/passwd')",
    "CREATE TABLE stolen AS SELECT * FROM read_text('/etc/hostname')",
]


@pytest.mark.parametrize("who", ["warehouse", "results"])
@pytest.mark.parametrize("template", REFUSED)
async def test_the_sandbox_holds_for_both_clients(
    pair: tuple[DatabricksClient, DatabricksClient], tmp_path: Path, who: str, template: str
) -> None:
    """No file read, ATTACH, COPY out, export, SET or extension, in DuckDB's own dialect."""
    warehouse, results = pair
    client = warehouse if who == "warehouse" else results
    fixtures = str(warehouse.fixtures_dir.resolve()) if warehouse.fixtures_dir else "/"
    sql = template.format(dir=tmp_path, fixtures=fixtures)
    with pytest.raises(QueryError):
        await client.execute(sql, native=True)
    assert not (tmp_path / "out.csv").exists()
    assert not (tmp_path / "other.duckdb").exists()
    assert not (tmp_path / "export").exists()


async def test_the_warehouse_client_cannot_detach_the_results_file(
    pair: tuple[DatabricksClient, DatabricksClient],
) -> None:
    """DETACH is refused like ATTACH; the results client keeps working."""
    warehouse, results = pair
    with pytest.raises(QueryError):
        await warehouse.execute("DETACH results", native=True)
    table = await results.query_arrow("SELECT count(*) AS n FROM flags")
    assert table.to_pylist() == [{"n": 0}]


async def test_the_results_client_cannot_detach_its_own_file(
    pair: tuple[DatabricksClient, DatabricksClient],
) -> None:
    """DETACH of its own (default) catalog fails, in either dialect."""
    _, results = pair
    with pytest.raises(QueryError):
        await results.execute("DETACH results", native=True)
    with pytest.raises(QueryError):
        await results.execute("DETACH DATABASE results")
    assert (await results.query_arrow("SELECT count(*) AS n FROM flags")).num_rows == 1


@pytest.mark.parametrize("who", ["warehouse", "results"])
async def test_only_the_results_files_own_bytes_are_readable_beside_the_fixtures(
    pair: tuple[DatabricksClient, DatabricksClient], tmp_path: Path, who: str
) -> None:
    """DuckDB lets an attached database's own files through the disabled external access:
    the results file (and its WAL) can be read as bytes, which shows nothing the client
    cannot already query. That is the whole of it: a file beside it is still refused."""
    warehouse, results = pair
    client = warehouse if who == "warehouse" else results
    paths = await client.query_arrow(
        "SELECT path FROM duckdb_databases() WHERE database_name = 'results'"
    )
    path = paths.column(0)[0].as_py()
    assert path == str(tmp_path / "results.duckdb")
    own = await client.query_arrow(f"SELECT size FROM read_blob('{path}')")
    assert own.column(0)[0].as_py() > 0
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the warehouse")
    with pytest.raises(ReadOnlyViolationError):
        await client.query_arrow(f"SELECT content FROM read_blob('{secret}')")
    with pytest.raises(ReadOnlyViolationError):
        await client.query_arrow(f"SELECT content FROM read_blob('{tmp_path}/*')")


async def test_the_results_client_cannot_leave_its_catalog(
    pair: tuple[DatabricksClient, DatabricksClient],
) -> None:
    """USE is refused on the attached client, or does not move its later statements."""
    _, results = pair
    with pytest.raises(QueryError):
        await results.execute("USE memory")
    table = await results.query_arrow("SELECT current_database() AS db")
    assert table.to_pylist() == [{"db": "results"}]


async def test_attach_after_the_first_statement_is_refused(tmp_path: Path) -> None:
    """Once the engine ran a statement (and the sandbox is locked) attach() is refused."""
    async with DatabricksClient.local(registry=CollectorRegistry()) as warehouse:
        await warehouse.query_arrow("SELECT 1 AS one")
        with pytest.raises(ConfigError):
            warehouse.attach(tmp_path / "late.duckdb", registry=CollectorRegistry())
        for alias in ("memory", "Main", "TEMP", "system", "not an identifier", "a;b"):
            with pytest.raises(ConfigError):
                DatabricksClient.local(registry=CollectorRegistry()).attach(
                    tmp_path / "x.duckdb", alias=alias
                )


async def test_closing_one_client_mid_statement_leaves_the_other_running(
    tmp_path: Path,
) -> None:
    """The results client closes while a long read runs on the warehouse: the read ends
    with its answer, the warehouse keeps serving, and the engine closes with the last."""
    warehouse = DatabricksClient.local(registry=CollectorRegistry())
    results = warehouse.attach(tmp_path / "r.duckdb", registry=CollectorRegistry())
    await ensure_schema(results)
    slow = asyncio.create_task(
        warehouse.query_arrow("SELECT count(*) AS n FROM range(20000000) AS r(id)")
    )
    await asyncio.sleep(0)
    await results.aclose()
    assert (await slow).to_pylist() == [{"n": 20000000}]
    assert (await warehouse.query_arrow("SELECT count(*) AS n FROM results.main.flags")).num_rows
    with pytest.raises(ClientClosedError):
        await results.query_arrow("SELECT 1 AS one")
    await warehouse.aclose()
    con = duckdb.connect(str(tmp_path / "r.duckdb"))  # the engine let go of the file
    assert con.execute("SELECT count(*) FROM flags").fetchone() == (0,)
    con.close()


async def test_the_warehouse_closing_first_leaves_the_results_client_working(
    tmp_path: Path,
) -> None:
    """Closing the client that made the engine does not close it under the attached one."""
    warehouse = DatabricksClient.local(registry=CollectorRegistry())
    results = warehouse.attach(tmp_path / "r.duckdb", registry=CollectorRegistry())
    await ensure_schema(results)
    await warehouse.aclose()
    await results.execute("INSERT INTO workflow_state (audit_run_id) VALUES ('x')")
    n = await results.query_arrow("SELECT count(*) AS n FROM workflow_state")
    assert n.to_pylist() == [{"n": 1}]
    await results.aclose()
    await results.aclose()  # twice is fine


# --- 3. FlagStore.add_from_query ------------------------------------------------------

FLAG_COLUMNS = (
    "flag_id, transaction_id, audit_run_id, severity_level, risk_level, confidence_score, "
    "explanation, rule, title, amount, detected_by"
)


async def _flag(
    warehouse: DatabricksClient,
    results: DatabricksClient,
    sql: str,
    *,
    run: str = "run-1",
    rule: str = "attack",
    title: str = "Attack",
    params: dict[str, Any] | None = None,
    **options: Any,
) -> Any:
    return await FlagStore(results).add_from_query(
        warehouse,
        sql,
        params or {},
        audit_run_id=run,
        rule=rule,
        risk_level="HIGH",
        confidence_score=0.75,
        title=title,
        **options,
    )


async def _rows(results: DatabricksClient) -> list[dict[str, Any]]:
    table = await results.query_arrow(f"SELECT {FLAG_COLUMNS} FROM flags ORDER BY flag_id")
    return table.to_pylist()


async def _outcome(
    warehouse: DatabricksClient, results: DatabricksClient, sql: str, **options: Any
) -> tuple[object, list[dict[str, Any]]]:
    try:
        written: object = (await _flag(warehouse, results, sql, **options)).written
    except Exception as exc:  # the error class is part of the outcome compared
        written = type(exc).__name__
    return written, await _rows(results)


ID_TYPES = {
    "integer": "SELECT 42 AS transaction_id",
    "bigint": "SELECT CAST(9007199254740993 AS BIGINT) AS transaction_id",
    "decimal": "SELECT CAST(1.50 AS DECIMAL(10,2)) AS transaction_id",
    "date": "SELECT DATE'2024-02-29' AS transaction_id",
    "boolean": "SELECT true AS transaction_id",
}
BROKEN_ID_TYPES = {
    "double": "SELECT CAST(1.0 AS DOUBLE) AS transaction_id",
    "timestamp": "SELECT CAST('2024-01-01 10:00:00' AS TIMESTAMP) AS transaction_id",
}


def _typed_rule(head: str) -> str:
    return f"{head}, CAST(12.34 AS DECIMAL(18,2)) AS amount, 'why' AS detail"


@pytest.mark.parametrize("kind", sorted(ID_TYPES))
async def test_non_string_transaction_ids_agree_between_the_paths(
    pair: tuple[DatabricksClient, DatabricksClient],
    apart: tuple[DatabricksClient, DatabricksClient],
    kind: str,
) -> None:
    """Integer, decimal, date and boolean ids: the engine and Arrow paths write the same
    flag, and its id is `flag_id_for` of the stored transaction id."""
    sql = _typed_rule(ID_TYPES[kind])
    inside = await _outcome(*pair, sql)
    across = await _outcome(*apart, sql)
    assert inside == across
    (row,) = inside[1]
    assert row["flag_id"] == flag_id_for("run-1", "attack", row["transaction_id"])


@pytest.mark.parametrize("kind", sorted(BROKEN_ID_TYPES))
async def test_double_and_timestamp_transaction_ids_agree_between_the_paths(
    pair: tuple[DatabricksClient, DatabricksClient],
    apart: tuple[DatabricksClient, DatabricksClient],
    kind: str,
) -> None:
    """Double and timestamp ids: the same flag on both paths, id consistent with it."""
    sql = _typed_rule(BROKEN_ID_TYPES[kind])
    inside = await _outcome(*pair, sql)
    across = await _outcome(*apart, sql)
    assert inside == across
    for row in across[1]:
        assert row["flag_id"] == flag_id_for("run-1", "attack", row["transaction_id"])


HOSTILE_RULES = {
    "duplicate ids": "SELECT 't1' AS transaction_id, 1.00 AS amount, 'a' AS detail "
    "UNION ALL SELECT 't1', 2.00, 'b'",
    "no rows": "SELECT 't1' AS transaction_id, 1.00 AS amount, 'a' AS detail WHERE 1 = 0",
    "own hits alias": "SELECT hits.transaction_id, hits.amount, hits.detail FROM "
    "(SELECT 't1' AS transaction_id, 1.00 AS amount, 'a' AS detail) AS hits",
    "null id": "SELECT CAST(NULL AS STRING) AS transaction_id, 1.00 AS amount, 'a' AS detail",
    "null detail": "SELECT 't1' AS transaction_id, 1.00 AS amount, CAST(NULL AS STRING) AS detail",
    "empty id": "SELECT '' AS transaction_id, 1.00 AS amount, 'a' AS detail",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_RULES))
async def test_hostile_rule_results_give_the_same_outcome_on_both_paths(
    pair: tuple[DatabricksClient, DatabricksClient],
    apart: tuple[DatabricksClient, DatabricksClient],
    case: str,
) -> None:
    """Duplicates, no rows, a forged flag_id, a clashing alias, NULLs: the engine path
    ends as the Arrow path does (the same count or the same error, the same rows)."""
    sql = HOSTILE_RULES[case]
    inside = await _outcome(*pair, sql)
    across = await _outcome(*apart, sql)
    assert inside == across
    for row in inside[1]:
        assert row["flag_id"] == flag_id_for("run-1", "attack", row["transaction_id"])


async def test_a_rule_with_its_own_flag_id_column_ends_alike_on_both_paths(
    pair: tuple[DatabricksClient, DatabricksClient],
    apart: tuple[DatabricksClient, DatabricksClient],
) -> None:
    """A forged flag_id column is refused the same way on both paths: InvalidFlagError
    naming the rule, nothing written (the flag computes that column itself)."""
    sql = "SELECT 'flg_forged' AS flag_id, 't1' AS transaction_id, 1.00 AS amount, 'a' AS detail"
    inside = await _outcome(*pair, sql)
    across = await _outcome(*apart, sql)
    assert inside == ("InvalidFlagError", [])
    assert inside == across
    with pytest.raises(InvalidFlagError, match=r"rule 'attack'.*flag_id"):
        await _flag(*pair, sql)


@pytest.mark.parametrize("column", ["transaction_id", "detail"])
async def test_a_rule_with_nulls_is_refused_whole_naming_it(
    pair: tuple[DatabricksClient, DatabricksClient], column: str
) -> None:
    """One NULL among good rows: InvalidFlagError naming the rule, and no flag at all."""
    good = "SELECT 't1' AS transaction_id, 1.00 AS amount, 'a' AS detail"
    if column == "transaction_id":
        bad = "SELECT CAST(NULL AS STRING), 2.00, 'b'"
    else:
        bad = "SELECT 't2', 2.00, CAST(NULL AS STRING)"
    with pytest.raises(InvalidFlagError, match="rule 'nully'"):
        await _flag(*pair, f"{good} UNION ALL {bad}", rule="nully")
    assert await _rows(pair[1]) == []


SPLICE = "o'brien :flag_run $flag_rule ?; DROP TABLE flags; --"


async def test_rule_and_title_are_bound_never_spliced(
    pair: tuple[DatabricksClient, DatabricksClient],
) -> None:
    """Quotes, parameter markers and SQL in a rule's name and title are stored as given."""
    sql = "SELECT 't1' AS transaction_id, 1.00 AS amount, 'a' AS detail"
    written = await _flag(*pair, sql, rule=SPLICE, title=SPLICE + " '\"")
    assert written.written == 1
    (row,) = await _rows(pair[1])
    assert row["rule"] == SPLICE
    assert row["title"] == SPLICE + " '\""
    assert row["flag_id"] == flag_id_for("run-1", SPLICE, "t1")
    again = await _flag(*pair, sql, rule=SPLICE, title=SPLICE + " '\"")
    assert (again.written, again.stored) == (0, 1)


async def test_a_rerun_is_idempotent_and_earlier_completed_runs_are_respected(
    pair: tuple[DatabricksClient, DatabricksClient],
) -> None:
    """Same run twice: nothing twice. A later run skips what a completed run flagged
    under the rule (counted as repeated) unless it is not asked to."""
    warehouse, results = pair
    sql = (
        "SELECT transaction_id, amount, 'seen' AS detail FROM gold.recent_transactions "
        "ORDER BY transaction_id LIMIT 3"
    )
    first = await _flag(warehouse, results, sql, run="run-1")
    again = await _flag(warehouse, results, sql, run="run-1")
    assert first.written == 3
    assert (again.written, again.stored) == (0, 3)
    await results.execute(
        "INSERT INTO workflow_state (audit_run_id, workflow_status) VALUES ('run-1', 'completed')"
    )
    later = await _flag(warehouse, results, sql, run="run-2", skip_flagged_before=True)
    assert (later.written, later.repeated) == (0, 3)
    forced = await _flag(warehouse, results, sql, run="run-3")
    assert forced.written == 3


async def test_table_names_are_caller_trusted_sql(
    pair: tuple[DatabricksClient, DatabricksClient],
) -> None:
    """Documented, not a defence: ``runs_table`` (like ``FlagStore(table=...)``) is spliced
    into SQL as written, neither quoted nor checked; SQL in it reaches the parser. It
    must come from the caller's code, never from data."""
    warehouse, results = pair
    sql = "SELECT 't1' AS transaction_id, 1.00 AS amount, 'a' AS detail"
    await _flag(warehouse, results, sql, run="run-1")
    await results.execute(
        "INSERT INTO workflow_state (audit_run_id, workflow_status) VALUES ('run-1', 'completed')"
    )
    runs = "(SELECT 'run-1' AS audit_run_id, 'completed' AS workflow_status)"
    with pytest.raises(QueryError, match="does not parse"):
        await _flag(warehouse, results, sql, run="run-2", skip_flagged_before=True, runs_table=runs)


# --- 4. the interruptible demo ---------------------------------------------------------


def _env() -> dict[str, str]:
    ours = ("AUDIT_", "OPENROUTER_", "DATABRICKS_", "REDIS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(ours)}


def _demo(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "demo", "--json", "--llm", "off", "--rows", "3000", "--out", str(out), *extra],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _flags_of(out: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(out / "audit.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT rule, transaction_id, explanation, risk_level, amount FROM flags ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    return rows


def _runs_of(out: Path) -> list[tuple[Any, ...]]:
    """The runs recorded; none when the signal landed before the schema was made (the
    file exists, its tables not yet: the next run makes them)."""
    con = duckdb.connect(str(out / "audit.duckdb"), read_only=True)
    try:
        made = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'workflow_state'"
        ).fetchone()
        if not made or not made[0]:
            return []
        return con.execute(
            "SELECT audit_run_id, workflow_status FROM workflow_state ORDER BY created_at"
        ).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Any, ...]]:
    out = tmp_path_factory.mktemp("full")
    proc = _demo(out)
    assert proc.returncode == 0, proc.stderr
    return _flags_of(out)


@pytest.mark.parametrize("seed", range(4))
def test_sigint_at_a_random_moment_then_resume_gives_the_uninterrupted_flags(
    tmp_path: Path, uninterrupted: list[tuple[Any, ...]], seed: int
) -> None:
    """A real Ctrl-C (SIGINT) at a seeded moment, then --resume: the flags equal an
    uninterrupted run's, none twice, and the trail verifies. (Where the signal lands
    varies with the machine; the assertion holds wherever it lands.)"""
    out = tmp_path / "r"
    proc = subprocess.Popen(
        [*CLI, "demo", "--json", "--llm", "off", "--rows", "3000", "--out", str(out)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(random.Random(seed).uniform(0.25, 0.9))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 2, 130), err
    assert "Traceback" not in err
    runs = _runs_of(out) if (out / "audit.duckdb").exists() else []
    if runs and runs[-1][1] != "completed":
        resumed = _demo(out, "--resume", runs[-1][0])
        assert resumed.returncode == 0, resumed.stderr
    elif not runs:
        fresh = _demo(out)
        assert fresh.returncode == 0, fresh.stderr
    flags = _flags_of(out)
    assert flags == uninterrupted
    assert len({(f[0], f[1]) for f in flags}) == len(flags)
    run_id = _runs_of(out)[-1][0]
    verify = subprocess.run(
        [*CLI, "trail", "verify", run_id, "--out", str(out)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


# --- 5. execute() row counts -----------------------------------------------------------


@pytest.fixture
async def scratch(tmp_path: Path) -> AsyncIterator[DatabricksClient]:
    """An empty local database with one table t(id, Count)."""
    client = DatabricksClient.local(
        database=tmp_path / "s.duckdb", load_fixtures=False, registry=CollectorRegistry()
    )
    async with client:
        await client.execute("CREATE TABLE t (id INT, `Count` INT)")
        await client.execute("INSERT INTO t VALUES (1, 10), (2, 20), (3, 30)")
        yield client


async def test_counts_for_plain_dml_and_merge_are_the_rows_changed(
    scratch: DatabricksClient,
) -> None:
    """INSERT, UPDATE, DELETE and MERGE report the rows they changed; DDL reports None."""
    assert await scratch.execute("INSERT INTO t VALUES (4, 40), (5, 50)") == 2
    assert await scratch.execute("UPDATE t SET id = id WHERE id > 3") == 2
    merge = (
        "MERGE INTO t USING (SELECT 1 AS id UNION ALL SELECT 9) AS s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id, 0)"
    )
    assert await scratch.execute(merge) == 2
    assert await scratch.execute("DELETE FROM t WHERE id = 9") == 1
    assert await scratch.execute("DELETE FROM t WHERE id = 999") == 0
    assert await scratch.execute("CREATE TABLE u (a INT)") is None
    assert await scratch.execute("SELECT 5 AS Count") is None


async def test_a_with_select_aliasing_count_is_no_row_count(scratch: DatabricksClient) -> None:
    """A query in execute() changed no rows: None, never its own column's value."""
    assert await scratch.execute("WITH x AS (SELECT 7 AS Count) SELECT * FROM x") is None


async def test_insert_returning_a_count_column_reports_the_rows_inserted(
    scratch: DatabricksClient,
) -> None:
    """INSERT ... RETURNING: the rows inserted (1) or None, never a returned value."""
    assert await scratch.execute("INSERT INTO t VALUES (6, 42) RETURNING Count") in (1, None)


async def test_several_native_statements_report_no_guessed_count(
    scratch: DatabricksClient,
) -> None:
    """Several statements in one native text: None or the DML's count, never 99."""
    affected = await scratch.execute("INSERT INTO t VALUES (7, 1); SELECT 99 AS Count", native=True)
    assert affected in (1, None)


async def test_several_translated_statements_are_refused(scratch: DatabricksClient) -> None:
    """Databricks-dialect text with two statements is refused, not half-counted."""
    with pytest.raises(QueryError):
        await scratch.execute("INSERT INTO t VALUES (8, 1); SELECT 99 AS Count")
    n = await scratch.query_arrow("SELECT count(*) AS n FROM t WHERE id = 8")
    assert n.to_pylist() == [{"n": 0}]
