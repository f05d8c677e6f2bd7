"""Attacks on the audit trail of a real ``audit-core demo`` run, checked by the CLI.

``audit-core demo --out DIR --llm simulated`` runs once per module (unkeyed, and once with
``AUDIT_TRAIL_KEY``); each test tampers with a copy of ``DIR/audit.duckdb`` using plain
DuckDB, as anyone with write access to the file could, then runs ``audit-core trail
verify RUN_ID --out DIR``. The guarantee: exit non-zero with ``FAILED at entry N``
naming the row, never 0. Tests that broke it are marked ``xfail(strict=True)``.

Several tampers first rebuild a table with ``CREATE TABLE AS`` (which drops its
constraints and indexes), so its column types can be changed: a writer with access to
the file can do exactly that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from audit_core._logging import reset_logging
from audit_core.cli import main

KEY = "attack-trail-key"
_OURS = ("AUDIT_", "REDIS_", "OPENROUTER", "DATABRICKS", "ENVIRONMENT")


@dataclass(frozen=True)
class Demo:
    db: Path
    run_id: str
    key: str | None


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.update(extra)
    return env


def _run_demo(folder: Path, key: str | None) -> Demo:
    folder.mkdir(parents=True, exist_ok=True)
    env = _clean_env(**({"AUDIT_TRAIL_KEY": key} if key else {}))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "audit_core",
            "demo",
            "--out",
            str(folder / "out"),
            "--llm",
            "simulated",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    db = folder / "out" / "audit.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    try:
        (run_id,) = con.execute("SELECT DISTINCT audit_run_id FROM audit_trail").fetchone()
    finally:
        con.close()
    return Demo(db, str(run_id), key)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return _run_demo(tmp_path_factory.mktemp("demo"), None)


@pytest.fixture(scope="module")
def keyed_demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return _run_demo(tmp_path_factory.mktemp("keyed"), KEY)


@dataclass
class Copy:
    out: Path
    run_id: str
    key: str | None

    def tamper(self, *statements: str) -> None:
        con = duckdb.connect(str(self.out / "audit.duckdb"))
        try:
            for statement in statements:
                con.execute(statement.replace("{run}", self.run_id))
        finally:
            con.close()

    def verify(self, *extra: str) -> tuple[int, str, str]:
        """``audit-core trail verify RUN --out DIR`` in-process: (exit code, stdout, stderr)."""
        return _cli(["trail", "verify", self.run_id, "--out", str(self.out), *extra], self.key)


_capsys: pytest.CaptureFixture[str] | None = None
_monkeypatch: pytest.MonkeyPatch | None = None


def _cli(argv: list[str], key: str | None) -> tuple[int, str, str]:
    assert _capsys is not None
    assert _monkeypatch is not None
    with _monkeypatch.context() as m:
        for name in list(os.environ):
            if name.startswith(_OURS):
                m.delenv(name)
        if key:
            m.setenv("AUDIT_TRAIL_KEY", key)
        try:
            code = main(argv)
        finally:
            reset_logging()
    captured = _capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def _io(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    global _capsys, _monkeypatch
    _capsys, _monkeypatch = capsys, monkeypatch
    yield
    _capsys = _monkeypatch = None


def _copy(source: Demo, tmp_path: Path) -> Copy:
    out = tmp_path / ("keyed" if source.key else "plain") / "out"
    out.mkdir(parents=True)
    shutil.copy(source.db, out / "audit.duckdb")
    return Copy(out, source.run_id, source.key)


@pytest.fixture
def copy(demo: Demo, tmp_path: Path) -> Copy:
    return _copy(demo, tmp_path)


@pytest.fixture
def keyed_copy(keyed_demo: Demo, tmp_path: Path) -> Copy:
    return _copy(keyed_demo, tmp_path)


REBUILD = (
    "CREATE TABLE t2 AS SELECT * FROM audit_trail",
    "DROP TABLE audit_trail",
    "ALTER TABLE t2 RENAME TO audit_trail",
)
REBUILD_HEADS = (
    "CREATE TABLE h2 AS SELECT * FROM audit_trail_heads",
    "DROP TABLE audit_trail_heads",
    "ALTER TABLE h2 RENAME TO audit_trail_heads",
)
# Row 8 of the simulated demo is the first llm.complete entry (model, tokens, cost).
LLM_ROW = 8


def assert_tampered(result: tuple[int, str, str], row: int | None = None) -> None:
    code, out, err = result
    assert code == 1, (code, out, err)
    assert "FAILED at entry " in out, (out, err)
    if row is not None:
        assert f"FAILED at entry {row}:" in out, out


def test_the_untouched_demo_trail_verifies(copy: Copy, keyed_copy: Copy) -> None:
    """Baseline: the demo's own trail exits 0, unkeyed and keyed."""
    code, out, _ = copy.verify()
    assert (code, out.startswith("ok: 10 entries")) == (0, True), out
    code, out, _ = keyed_copy.verify()
    assert code == 0
    assert "keyed: every HMAC checked" in out


# --- held ----------------------------------------------------------------------------

HELD: dict[str, tuple[tuple[str, ...], int]] = {
    "cost-plus-1e-6": (
        (
            "UPDATE audit_trail SET llm_cost_dollars = llm_cost_dollars + 0.000001 "
            f"WHERE log_sequence_number = {LLM_ROW}",
        ),
        LLM_ROW,
    ),
    "cost-set-on-a-row-without-llm": (
        ("UPDATE audit_trail SET llm_cost_dollars = 0 WHERE log_sequence_number = 3",),
        3,
    ),
    "timestamp-plus-1us": (
        (
            "UPDATE audit_trail SET timestamp = timestamp + INTERVAL 1 MICROSECOND "
            "WHERE log_sequence_number = 4",
        ),
        4,
    ),
    "timestamp-null": (
        ("UPDATE audit_trail SET timestamp = NULL WHERE log_sequence_number = 4",),
        4,
    ),
    "input-null-to-json-null-text": (
        ("UPDATE audit_trail SET input_data = 'null' WHERE log_sequence_number = 2",),
        2,
    ),
    "error-message-null-to-empty-string": (
        ("UPDATE audit_trail SET error_message = '' WHERE log_sequence_number = 2",),
        2,
    ),
    "hash-algorithm-to-v1": (
        ("UPDATE audit_trail SET hash_algorithm = 'sha256-v1' WHERE log_sequence_number = 3",),
        3,
    ),
    "hash-algorithm-all-v1-and-heads": (
        (
            "UPDATE audit_trail SET hash_algorithm = 'sha256-v1'",
            "UPDATE audit_trail_heads SET hash_algorithm = 'sha256-v1'",
        ),
        1,
    ),
    "hash-algorithm-null": (
        (*REBUILD, "UPDATE audit_trail SET hash_algorithm = NULL WHERE log_sequence_number = 2"),
        2,
    ),
    "hash-algorithm-upper-case": (
        (
            *REBUILD,
            "UPDATE audit_trail SET hash_algorithm = 'SHA256' WHERE log_sequence_number = 1",
        ),
        1,
    ),
    "entry-hash-upper-case-with-heads": (
        (
            "UPDATE audit_trail SET entry_hash = upper(entry_hash) WHERE log_sequence_number = 10",
            "UPDATE audit_trail_heads SET last_hash = upper(last_hash) WHERE row_count = 10",
        ),
        10,
    ),
    "entry-hash-null": (
        (*REBUILD, "UPDATE audit_trail SET entry_hash = NULL WHERE log_sequence_number = 10"),
        10,
    ),
    "prev-hash-null": (
        (*REBUILD, "UPDATE audit_trail SET prev_hash = NULL WHERE log_sequence_number = 5"),
        5,
    ),
    "duplicate-row": (
        (
            *REBUILD,
            "INSERT INTO audit_trail SELECT * FROM audit_trail WHERE log_sequence_number = 3",
        ),
        4,
    ),
    "duplicate-last-row": (
        (
            *REBUILD,
            "INSERT INTO audit_trail SELECT * FROM audit_trail WHERE log_sequence_number = 10",
        ),
        11,
    ),
    "lookalike-run-id-on-one-row": (
        (
            "UPDATE audit_trail SET audit_run_id = replace(audit_run_id, 'audit', '\u0430udit') "
            "WHERE log_sequence_number = 6",
        ),
        6,
    ),
    "trailing-space-run-id-on-last-row": (
        (
            "UPDATE audit_trail SET audit_run_id = audit_run_id || ' ' "
            "WHERE log_sequence_number = 10",
        ),
        10,
    ),
    "lookalike-agent-name": (
        (
            "UPDATE audit_trail SET agent_name = 'vendor-classifi\u0435r' "
            f"WHERE log_sequence_number = {LLM_ROW}",
        ),
        LLM_ROW,
    ),
    "nfd-model-name": (
        (
            "UPDATE audit_trail SET llm_model = 'openai/gpt-4o-mini' || chr(769) "
            f"WHERE log_sequence_number = {LLM_ROW}",
        ),
        LLM_ROW,
    ),
    "heads-hash-algorithm-changed": (
        ("UPDATE audit_trail_heads SET hash_algorithm = 'sha256-v1' WHERE row_count = 5",),
        5,
    ),
    "heads-and-rows-cut-consistently": (
        (
            "DELETE FROM audit_trail WHERE log_sequence_number = 10",
            "DELETE FROM audit_trail_heads WHERE row_count = 10",
            "INSERT INTO audit_trail_heads SELECT audit_run_id, 9, entry_hash, hash_algorithm, "
            "TRUE, now() FROM audit_trail WHERE log_sequence_number = 9",
        ),
        10,
    ),
    "extra-completed-head-earlier": (
        (
            "INSERT INTO audit_trail_heads SELECT audit_run_id, 6, entry_hash, hash_algorithm, "
            "TRUE, now() FROM audit_trail WHERE log_sequence_number = 6",
        ),
        7,
    ),
    "state-head-edited-to-more-rows": (
        (
            "UPDATE workflow_state SET intermediate_results = "
            "replace(intermediate_results, '\"rows\": 10', '\"rows\": 11')",
        ),
        11,
    ),
}


@pytest.mark.parametrize("name", list(HELD))
def test_tampering_with_the_demo_trail_exits_1_naming_the_row(copy: Copy, name: str) -> None:
    """Any edit of rows or heads (NULLs, look-alikes, duplicates, algorithms) exits 1 + row."""
    statements, row = HELD[name]
    copy.tamper(*statements)
    assert_tampered(copy.verify(), row)


def test_rows_copied_under_another_run_id_fail_for_that_run_and_leave_this_one_ok(
    copy: Copy,
) -> None:
    """Rows inserted for another run id never verify as that run's trail, nor spoil this one."""
    columns = (
        "log_sequence_number, agent_name, tool_called, timestamp, execution_time_ms, "
        "input_data, output_summary, llm_model, llm_tokens_used, llm_cost_dollars, "
        "error_message, error_stack_trace, decision_chain, hash_algorithm, prev_hash, entry_hash"
    )
    copy.tamper(
        f"INSERT INTO audit_trail SELECT 'forged-run', {columns} FROM audit_trail",
        "INSERT INTO audit_trail_heads SELECT 'forged-run', row_count, last_hash, "
        "hash_algorithm, completed, recorded_at FROM audit_trail_heads",
    )
    assert copy.verify()[0] == 0
    forged = Copy(copy.out, "forged-run", None)
    assert_tampered(forged.verify(), 1)


def test_a_keyed_trail_edited_then_verified_with_the_key_fails(keyed_copy: Copy) -> None:
    """With AUDIT_TRAIL_KEY, a cost edit of 0.000001 is caught at its row."""
    keyed_copy.tamper(
        "UPDATE audit_trail SET llm_cost_dollars = llm_cost_dollars + 0.000001 "
        f"WHERE log_sequence_number = {LLM_ROW}"
    )
    assert_tampered(keyed_copy.verify(), LLM_ROW)


def test_a_keyed_trail_verified_without_the_key_says_the_hmacs_were_not_checked(
    keyed_copy: Copy,
) -> None:
    """Without the key an edit cannot be seen; the verdict must say the HMACs went unchecked."""
    keyed_copy.tamper(
        f"UPDATE audit_trail SET output_summary = 'x' WHERE log_sequence_number = {LLM_ROW}"
    )
    code, out, _ = _cli(["trail", "verify", keyed_copy.run_id, "--out", str(keyed_copy.out)], None)
    assert code == 0  # documented: links and heads only
    assert "unkeyed check only" in out


# --- broken --------------------------------------------------------------------------


def test_a_fractional_sequence_number_is_tampering(copy: Copy) -> None:
    """log_sequence_number 3 -> 3.5 changes a hashed value: exit 1 at row 3."""
    copy.tamper(
        *REBUILD,
        "ALTER TABLE audit_trail ALTER log_sequence_number TYPE DOUBLE",
        "UPDATE audit_trail SET log_sequence_number = 3.5 WHERE log_sequence_number = 3",
    )
    assert_tampered(copy.verify(), 3)


@pytest.mark.parametrize("column_type", ["DOUBLE", "DECIMAL(18,9)", "VARCHAR"])
def test_a_sub_micro_dollar_cost_edit_is_tampering(copy: Copy, column_type: str) -> None:
    """Any change of a stored cost, however small, exits 1 at its row."""
    copy.tamper(
        *REBUILD,
        f"ALTER TABLE audit_trail ALTER llm_cost_dollars TYPE {column_type}",
        "UPDATE audit_trail SET llm_cost_dollars = CAST(CAST(llm_cost_dollars AS DECIMAL(18,9)) "
        f"+ 0.0000004 AS {column_type}) WHERE log_sequence_number = {LLM_ROW}",
    )
    assert_tampered(copy.verify(), LLM_ROW)


def test_a_sub_micro_dollar_cost_edit_is_tampering_keyed(keyed_copy: Copy) -> None:
    """Keyed trail: a retyped cost column edited by 0.0000004 exits 1 at its row."""
    keyed_copy.tamper(
        *REBUILD,
        "ALTER TABLE audit_trail ALTER llm_cost_dollars TYPE DOUBLE",
        "UPDATE audit_trail SET llm_cost_dollars = llm_cost_dollars + 0.0000004 "
        f"WHERE log_sequence_number = {LLM_ROW}",
    )
    assert_tampered(keyed_copy.verify(), LLM_ROW)


@pytest.mark.parametrize("column", ["llm_tokens_used", "execution_time_ms"])
def test_a_fractional_integer_column_is_tampering(copy: Copy, column: str) -> None:
    """An integer column given a fraction changes what is stored: exit 1 at its row."""
    copy.tamper(
        *REBUILD,
        f"ALTER TABLE audit_trail ALTER {column} TYPE DOUBLE",
        f"UPDATE audit_trail SET {column} = {column} + 0.9 WHERE log_sequence_number = {LLM_ROW}",
    )
    assert_tampered(copy.verify(), LLM_ROW)


def test_a_nanosecond_timestamp_edit_is_tampering(copy: Copy) -> None:
    """A stored timestamp moved by 400 ns exits 1 at its row."""
    copy.tamper(
        *REBUILD,
        "ALTER TABLE audit_trail ALTER timestamp TYPE TIMESTAMP_NS",
        "UPDATE audit_trail SET timestamp = make_timestamp_ns(epoch_ns(timestamp) + 400) "
        "WHERE log_sequence_number = 4",
    )
    assert_tampered(copy.verify(), 4)


def test_a_nanosecond_timestamp_edit_is_tampering_keyed(keyed_copy: Copy) -> None:
    """Keyed trail: a stored timestamp moved by 400 ns exits 1 at its row."""
    keyed_copy.tamper(
        *REBUILD,
        "ALTER TABLE audit_trail ALTER timestamp TYPE TIMESTAMP_NS",
        "UPDATE audit_trail SET timestamp = make_timestamp_ns(epoch_ns(timestamp) + 400) "
        "WHERE log_sequence_number = 4",
    )
    assert_tampered(keyed_copy.verify(), 4)


def test_a_nanosecond_timestamp_kept_as_text_is_tampering(copy: Copy) -> None:
    """A timestamp retyped to text and given sub-microsecond digits exits 1 at its row."""
    copy.tamper(
        *REBUILD,
        "ALTER TABLE audit_trail ALTER timestamp TYPE VARCHAR",
        "UPDATE audit_trail SET timestamp = strftime(CAST(timestamp AS TIMESTAMPTZ) "
        "AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S.%f') || '400+00' WHERE log_sequence_number = 4",
    )
    assert_tampered(copy.verify(), 4)


@pytest.mark.parametrize(
    ("table", "column", "column_type"),
    [
        ("audit_trail", "timestamp", "TIMESTAMP_NS"),
        ("audit_trail", "timestamp", "VARCHAR"),
        ("audit_trail", "llm_cost_dollars", "DOUBLE"),
        ("audit_trail", "log_sequence_number", "DECIMAL(18,3)"),
        ("audit_trail_heads", "row_count", "DOUBLE"),
    ],
)
def test_a_retyped_column_is_tampering_even_with_no_value_moved(
    copy: Copy, table: str, column: str, column_type: str
) -> None:
    """A column whose type is not the schema's exits 1 at entry 1, naming the column."""
    rebuild = REBUILD if table == "audit_trail" else REBUILD_HEADS
    copy.tamper(*rebuild, f"ALTER TABLE {table} ALTER {column} TYPE {column_type}")
    result = copy.verify()
    assert_tampered(result, 1)
    assert f"{table}.{column} is " in result[1]


def test_a_dropped_trail_column_is_tampering(copy: Copy) -> None:
    """A trail column removed is a verdict at entry 1 naming it, not a query error."""
    copy.tamper(*REBUILD, "ALTER TABLE audit_trail DROP COLUMN error_stack_trace")
    result = copy.verify()
    assert_tampered(result, 1)
    assert "audit_trail.error_stack_trace is missing" in result[1]


def test_trail_head_publishes_nothing_for_a_retyped_trail(copy: Copy) -> None:
    """`trail head` vouches for the trail, so a retyped column gets no statement (exit 1)."""
    copy.tamper(*REBUILD, "ALTER TABLE audit_trail ALTER timestamp TYPE TIMESTAMP_NS")
    code, out, _ = _cli(["trail", "head", copy.run_id, "--out", str(copy.out)], None)
    assert code == 1
    assert "FAILED at entry 1:" in out


def test_a_null_sequence_number_is_tampering(copy: Copy) -> None:
    """A row whose sequence number is NULL: exit 1 naming the row."""
    copy.tamper(
        *REBUILD, "UPDATE audit_trail SET log_sequence_number = NULL WHERE log_sequence_number = 10"
    )
    assert_tampered(copy.verify(), 10)


def test_a_null_head_row_count_is_tampering(copy: Copy) -> None:
    """A head whose row_count is NULL: exit 1 with a verdict, not a crash."""
    copy.tamper(*REBUILD_HEADS, "UPDATE audit_trail_heads SET row_count = NULL WHERE completed")
    assert_tampered(copy.verify())


def test_a_dropped_heads_table_is_tampering(copy: Copy) -> None:
    """Removing the heads table is tampering (the state head says completed): a verdict."""
    copy.tamper("DROP TABLE audit_trail_heads")
    assert_tampered(copy.verify())


def test_relabelling_an_unkeyed_trail_as_keyed_does_not_hide_an_edit(copy: Copy) -> None:
    """Declaring sha256 entries to be HMACs must not let an edited cost verify as ok."""
    copy.tamper(
        "UPDATE audit_trail SET hash_algorithm = 'hmac-sha256'",
        "UPDATE audit_trail_heads SET hash_algorithm = 'hmac-sha256'",
        "UPDATE workflow_state SET intermediate_results = replace(intermediate_results, "
        '\'"hash_algorithm": "sha256"\', \'"hash_algorithm": "hmac-sha256"\')',
        f"UPDATE audit_trail SET llm_cost_dollars = 0 WHERE log_sequence_number = {LLM_ROW}",
    )
    assert_tampered(copy.verify(), LLM_ROW)


RELABEL = (
    "UPDATE audit_trail SET hash_algorithm = 'hmac-sha256'",
    "UPDATE audit_trail_heads SET hash_algorithm = 'hmac-sha256'",
    "UPDATE workflow_state SET intermediate_results = replace(intermediate_results, "
    '\'"hash_algorithm": "sha256"\', \'"hash_algorithm": "hmac-sha256"\')',
)


@pytest.mark.parametrize("key", [None, KEY], ids=["without-key", "with-key"])
@pytest.mark.parametrize("row", [1, LLM_ROW, 10])
def test_a_relabelled_trail_names_the_edited_row_with_or_without_a_key(
    copy: Copy, key: str | None, row: int
) -> None:
    """Relabelled to hmac-sha256 plus one edit: exit 1 at the edited row, key or no key."""
    copy.tamper(
        *RELABEL, f"UPDATE audit_trail SET output_summary = 'x' WHERE log_sequence_number = {row}"
    )
    result = Copy(copy.out, copy.run_id, key).verify()
    assert_tampered(result, row)
    assert "relabelled hmac-sha256" in result[1]


@pytest.mark.parametrize("key", [None, KEY], ids=["without-key", "with-key"])
def test_a_relabelled_trail_with_no_edit_is_tampering_from_row_1(
    copy: Copy, key: str | None
) -> None:
    """Relabelling alone (every label, no content edit) exits 1 at entry 1, never ok."""
    copy.tamper(*RELABEL)
    result = Copy(copy.out, copy.run_id, key).verify()
    assert_tampered(result, 1)
    assert "relabelled hmac-sha256" in result[1]


def test_a_keyed_trail_verified_without_the_key_is_not_mistaken_for_a_relabelled_one(
    keyed_copy: Copy,
) -> None:
    """The relabel check leaves an honest keyed trail as it was: ok, HMACs unchecked."""
    code, out, _ = _cli(["trail", "verify", keyed_copy.run_id, "--out", str(keyed_copy.out)], None)
    assert code == 0, out
    assert "unkeyed check only" in out


def test_a_forged_schema_version_then_the_suggested_migration_launders_nothing(
    copy: Copy,
) -> None:
    """A removed schema-version row stops verify (exit 2); the migration it suggests does
    not re-hash an edited row: verify still exits 1 naming it."""
    copy.tamper(
        "UPDATE audit_trail SET output_summary = 'laundered' WHERE log_sequence_number = 3",
        "DELETE FROM audit_schema_version",
    )
    code, _, err = copy.verify()
    assert code == 2
    assert "schema version" in err
    code, _, err = _cli(
        ["init-db", "--dialect", "duckdb", "--apply", str(copy.out / "audit.duckdb")], None
    )
    assert code == 0, err
    assert_tampered(copy.verify(), 3)
