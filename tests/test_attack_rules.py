"""Attacks on rule files: a hostile ``.sql`` rule is a `ConfigError` naming file and line.

Never another exception, never a silent load of something the run would refuse or
misread. Tests that broke the guarantee are marked ``xfail(strict=True)``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from audit_core import ConfigError
from audit_core._logging import reset_logging
from audit_core.cli import main
from audit_core.rules import load_rules, read_rule_file

HEADER = "-- name: r\n-- severity: HIGH\n-- confidence: 0.5\n-- title: t\n"
SELECT = (
    "SELECT transaction_id, amount, 'x' AS detail FROM gold.recent_transactions "
    "WHERE transaction_date > :since"
)
SQL_LINE = 5  # the first SQL line after HEADER


def write(tmp_path: Path, text: str, *, name: str = "hostile.sql") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def assert_config_error(path: Path, line: int | None = None) -> ConfigError:
    """Loading ``path`` raises ConfigError (and nothing else) starting with ``path:line:``."""
    try:
        read_rule_file(path)
    except ConfigError as exc:
        text = str(exc)
        assert text.startswith(f"{path}:"), text
        where = text[len(str(path)) + 1 :].split(":", 1)[0]
        assert where.isdigit(), text
        if line is not None:
            assert int(where) == line, text
        return exc
    except BaseException as exc:
        pytest.fail(f"{type(exc).__name__} instead of ConfigError: {exc}")
    pytest.fail(f"{path.name} loaded silently")


# --- held ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("DELETE FROM gold.recent_transactions WHERE transaction_date > :since", SQL_LINE),
        (
            "INSERT INTO gold.recent_transactions SELECT transaction_id, amount, 'x' AS detail "
            "FROM gold.recent_transactions WHERE transaction_date > :since",
            SQL_LINE,
        ),
        (
            "WITH s AS (SELECT 1) INSERT INTO gold.recent_transactions SELECT * FROM s "
            "WHERE 1 > :since",
            SQL_LINE,
        ),
        (
            "CREATE TABLE x AS SELECT transaction_id, amount, 'x' AS detail "
            "FROM gold.recent_transactions WHERE transaction_date > :since",
            SQL_LINE,
        ),
        ("COPY gold.recent_transactions TO '/tmp/x.csv'", SQL_LINE),
        ("ATTACH '/tmp/evil.duckdb' AS e", SQL_LINE),
        ("PRAGMA enable_profiling", SQL_LINE),
        (SELECT + ";\nDROP TABLE gold.recent_transactions", SQL_LINE),
        (SELECT + "; SELECT 1", SQL_LINE),
        (SELECT + " AND amount > ?", SQL_LINE),
        (
            "WITH d AS (UPDATE gold.recent_transactions SET amount = 0 "
            "WHERE transaction_date > :since RETURNING *) "
            "SELECT transaction_id, amount, 'x' AS detail FROM d",
            SQL_LINE,
        ),
        (
            SELECT + " UNION ALL SELECT transaction_id, amount, 'y' AS detail INTO t2 "
            "FROM gold.recent_transactions",
            SQL_LINE,
        ),
        (SELECT.replace(" FROM", " INTO TEMPORARY newtab FROM", 1), SQL_LINE),
        (SELECT + " AND amount > $1", SQL_LINE),
        ("SET VARIABLE x = 1", SQL_LINE),
        ("INSTALL httpfs", SQL_LINE),
    ],
    ids=[
        "delete",
        "insert-select",
        "with-insert",
        "create-as",
        "copy",
        "attach",
        "pragma",
        "select-then-drop",
        "two-selects",
        "positional-param",
        "update-in-cte",
        "into-after-union",
        "into-temporary",
        "dollar-number-param",
        "set-variable",
        "install",
    ],
)
def test_write_or_multi_statement_sql_is_a_config_error(
    tmp_path: Path, body: str, line: int
) -> None:
    """A rule whose SQL writes, or holds several statements, is a ConfigError naming file:line."""
    assert_config_error(write(tmp_path, HEADER + body), line)


@pytest.mark.parametrize("name", ["since", "flag_run", "flag_rule", "flag_sep"])
def test_a_parameter_named_like_a_run_parameter_is_refused(tmp_path: Path, name: str) -> None:
    """Declaring a parameter the run supplies is a ConfigError on the params line."""
    text = HEADER + f"-- params: {name}=1\n" + SELECT
    exc = assert_config_error(write(tmp_path, text), 5)
    assert "supplied by the run" in str(exc)


def test_binary_content_is_a_config_error(tmp_path: Path) -> None:
    """A rule file that is not UTF-8 (binary) is a ConfigError naming the file."""
    path = tmp_path / "binary.sql"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" + bytes(range(256)))
    with pytest.raises(ConfigError) as info:
        read_rule_file(path)
    assert str(path) in str(info.value)


def test_a_bom_gives_a_config_error_with_a_line_not_a_crash(tmp_path: Path) -> None:
    """A UTF-8 BOM before the header never crashes: ConfigError naming file:line (line 1)."""
    path = tmp_path / "bom.sql"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + SELECT).encode())
    assert_config_error(path, 1)


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "cr"])
def test_crlf_and_cr_line_endings_load_the_same_rule(tmp_path: Path, newline: str) -> None:
    """A rule saved with Windows (or old Mac) line endings loads exactly like the LF one."""
    text = HEADER + "-- params: lim=10\n" + SELECT + "\nAND amount > :lim\n"
    lf = read_rule_file(write(tmp_path, text, name="lf.sql"))
    other = read_rule_file(write(tmp_path, text.replace("\n", newline), name="other.sql"))
    assert (other.name, other.sql, dict(other.params), other.sql_line) == (
        lf.name,
        lf.sql,
        dict(lf.params),
        lf.sql_line,
    )
    assert other.hash == lf.hash


def test_a_huge_rule_file_is_handled_in_bounded_time(tmp_path: Path) -> None:
    """A 2 MB rule (a giant description, a 1000-item IN list) loads or is a ConfigError."""
    values = ", ".join(str(i) for i in range(1_000))
    text = HEADER + "-- description: " + "x" * 2_000_000 + "\n" + SELECT
    text += f"\nAND amount NOT IN ({values})\n"
    path = write(tmp_path, text)
    try:
        rule = read_rule_file(path)
    except ConfigError as exc:
        message = str(exc)
        rule = None
    if rule is None:
        assert message.startswith(f"{path}:")
    else:
        assert rule.name == "r"


def _load_seconds(tmp_path: Path, items: int, start: int = 0) -> float:
    """Seconds to load a rule with an IN list of ``items`` values (``start`` makes it unique,
    so no cache of an earlier load helps)."""
    values = ", ".join(str(i) for i in range(start, start + items))
    text = HEADER + SELECT + f"\nAND amount NOT IN ({values})\n"
    path = write(tmp_path, text, name=f"{items}-{start}.sql")
    started = time.perf_counter()
    read_rule_file(path)
    return time.perf_counter() - started


def test_rule_check_time_is_not_quadratic_in_its_size(tmp_path: Path) -> None:
    """Bounded time: a rule 8x larger (an 8000- vs 1000-item IN list) checks < 24x slower."""
    small = min(_load_seconds(tmp_path, 1_000, start=run * 10_000) for run in range(1, 4))
    large = _load_seconds(tmp_path, 8_000)
    assert large < 24 * small, (small, large)  # linear: ~8x; quadratic: ~64x


def test_cli_rules_check_on_a_write_rule_exits_2_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``audit-core rules check FILE`` on a DELETE rule: exit 2, file:line on stderr."""
    for key in list(os.environ):
        if key.startswith(("AUDIT_", "OPENROUTER", "DATABRICKS", "REDIS_", "ENVIRONMENT")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, HEADER + "DELETE FROM gold.recent_transactions WHERE 1 > :since")
    try:
        code = main(["rules", "check", str(path)])
    finally:
        reset_logging()
    err = capsys.readouterr().err
    assert code == 2
    assert f"{path}:{SQL_LINE}:" in err


def test_a_hostile_file_in_a_rules_folder_stops_the_whole_load(tmp_path: Path) -> None:
    """One DELETE rule among good ones: load_rules is a ConfigError, never a partial set."""
    _clean_folder = tmp_path / "rules"
    _clean_folder.mkdir()
    write(_clean_folder, HEADER.replace("name: r", "name: good") + SELECT, name="a.sql")
    bad = write(_clean_folder, HEADER + "DELETE FROM gold.recent_transactions", name="b.sql")
    with pytest.raises(ConfigError, match=str(bad)):
        load_rules([_clean_folder])


# --- broken when written, fixed since (34b2ea1): kept as regression tests --------------


@pytest.mark.parametrize("value", ["NaN", "sNaN", "-nan"])
def test_confidence_nan_is_a_config_error(tmp_path: Path, value: str) -> None:
    """A NaN confidence is a ConfigError naming the confidence line (3)."""
    assert_config_error(write(tmp_path, HEADER.replace("0.5", value) + SELECT), 3)


def test_an_unterminated_string_is_a_config_error(tmp_path: Path) -> None:
    """SQL with an unterminated quote is a ConfigError naming file:line, not a sqlglot error."""
    body = "SELECT transaction_id, amount, 'x AS detail FROM t WHERE a > :since"
    assert_config_error(write(tmp_path, HEADER + body))


def test_deeply_nested_sql_is_a_config_error(tmp_path: Path) -> None:
    """3000 nested parentheses (a 6 kB file) are a ConfigError, not a RecursionError."""
    body = "SELECT transaction_id, amount, " + "(" * 3000 + "'x'" + ")" * 3000
    body += " AS detail FROM t WHERE a > :since"
    assert_config_error(write(tmp_path, HEADER + body))


def test_select_into_is_a_config_error(tmp_path: Path) -> None:
    """SELECT ... INTO newtab is a write: ConfigError at load, not a failure mid-run."""
    body = SELECT.replace(" FROM", " INTO newtab FROM", 1)
    assert_config_error(write(tmp_path, HEADER + body), SQL_LINE)


def test_delete_in_a_cte_is_a_config_error(tmp_path: Path) -> None:
    """WITH d AS (DELETE ... RETURNING *) SELECT ... is a write: ConfigError at load."""
    body = (
        "WITH d AS (DELETE FROM gold.recent_transactions WHERE transaction_date > :since "
        "RETURNING *) SELECT transaction_id, amount, 'x' AS detail FROM d"
    )
    assert_config_error(write(tmp_path, HEADER + body), SQL_LINE)


@pytest.mark.parametrize("marker", ["$x", "${x}", "@x"])
def test_an_undeclared_non_colon_parameter_is_a_config_error(tmp_path: Path, marker: str) -> None:
    """Declared and used parameters match exactly, whatever the marker syntax."""
    assert_config_error(write(tmp_path, HEADER + SELECT + f" AND amount > {marker}"), SQL_LINE)


def test_a_parameter_declared_twice_is_a_config_error(tmp_path: Path) -> None:
    """A parameter given two defaults is ambiguous: ConfigError on the params line."""
    text = HEADER + "-- params: a=1, a=2\n" + SELECT + " AND amount > :a"
    assert_config_error(write(tmp_path, text), 5)
