"""The `audit-core` command line: exit codes and output.

Most tests call `main(argv)` in-process (fast, and a failure shows a real traceback); a
few smoke tests run the installed entry point as a real subprocess, where a pipe or the
interpreter's start-up is what is being tested.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from audit_core._logging import reset_logging
from audit_core.cli import main
from audit_core.testing import FakeOpenRouter

CLI = [sys.executable, "-m", "audit_core"]
_OURS = ("AUDIT_", "REDIS_", "OPENROUTER", "DATABRICKS", "ENVIRONMENT")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.update(extra)
    return env


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test starts in its own folder with none of our variables set."""
    for key in list(os.environ):
        if key.startswith(_OURS):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield
    reset_logging()  # main() pointed our logs at this test's captured stderr


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """``cli(*argv, **env)``: run `main` in-process and collect its exit code and output."""

    def run(*argv: str, **env: str) -> Result:
        with monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            try:
                code = main(list(argv))
            except SystemExit as exit_:  # argparse: --help, bad usage
                code = int(exit_.code or 0)
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


def subprocess_run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
    proc = subprocess.run(
        [*CLI, *args], cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=120
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


COMMANDS = (
    [],
    ["demo"],
    ["doctor"],
    ["query"],
    ["init-db"],
    ["fixtures", "generate"],
    ["flags"],
    ["trail", "verify"],
)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_on_every_command(cli: Any, command: list[str]) -> None:
    """Every command has help, and options show their defaults."""
    out = cli(*command, "--help")
    assert out.returncode == 0, out.stderr
    assert "usage: audit-core" in out.stdout
    assert "--debug" in out.stdout
    assert "(default: WARNING)" in " ".join(out.stdout.split())


def test_version(cli: Any) -> None:
    """--version prints the installed package's version."""
    from importlib.metadata import version

    out = cli("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"audit-core {version('audit-core')}"


@pytest.mark.parametrize(
    "argv",
    [
        ["--debug", "query", "SELEC 1"],
        ["query", "SELEC 1", "--debug"],
        ["--log-level", "INFO", "query", "--debug", "SELEC 1"],
    ],
)
def test_global_options_work_before_and_after_the_command(cli: Any, argv: list[str]) -> None:
    """`audit-core --debug query ...` keeps --debug: the traceback is printed."""
    out = cli(*argv)
    assert out.returncode == 1
    assert "Traceback" in out.stderr
    assert "QueryError" in out.stderr


def test_option_after_command_overrides_the_one_before(cli: Any) -> None:
    """--log-format given twice: the later one (after the command) wins."""
    out = cli("--log-format", "console", "query", "SELECT * FROM gold.nope", "--log-format", "json")
    assert any(line.startswith("{") for line in out.stderr.splitlines())


def test_demo_on_embedded_defaults_then_flags_and_trail(cli: Any, tmp_path: Path) -> None:
    out = cli("demo", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["rows_scanned"] == 26  # shipped fixtures after the last completed audit
    assert report["flags_by_rule"] == {
        "duplicate_charge": 1,
        "round_amount": 4,
        "split_purchase": 3,
        "weekend_spend": 2,
        "card_bank_mismatch": 1,
        "unknown_vendor": 5,
    }
    assert report["flags_by_severity"]["INFO"] == 5  # LLM stage skipped -> human review
    assert "no OPENROUTER_API_KEY" in report["llm_note"]
    assert report["trail_ok"] is True
    assert (tmp_path / ".audit-core" / "audit.duckdb").is_file()
    assert "Traceback" not in out.stderr

    flags = cli("flags", "--pending", "--run", report["run_id"])
    assert flags.returncode == 0, flags.stderr
    lines = flags.stdout.splitlines()
    assert len(lines) == 2 * 16 + 1  # a line and an evidence line per flag, then "N of M"
    assert lines[0].startswith("CRITICAL HIGH")
    assert lines[-1] == "16 of 16 flags"
    ok = cli("trail", "verify", report["run_id"])
    assert ok.returncode == 0
    assert "hash chain intact" in ok.stdout

    import duckdb

    con = duckdb.connect(str(tmp_path / ".audit-core" / "audit.duckdb"))
    con.execute("UPDATE audit_trail SET output_summary = 'edited' WHERE log_sequence_number = 2")
    con.close()
    bad = cli("trail", "verify", report["run_id"])
    assert bad.returncode == 1
    assert "FAILED at entry 2" in bad.stdout


def test_trail_head_is_published_and_checked_keyed(cli: Any, tmp_path: Path) -> None:
    """`trail head` prints a signed statement; `verify --head` catches a cut-off tail (1);
    an interrupted run exits 3, not 0 or 1."""
    key = {"AUDIT_TRAIL_KEY": "a key kept outside the database"}
    report = json.loads(cli("demo", "--json", **key).stdout)
    head = cli("trail", "head", report["run_id"], **key)
    assert head.returncode == 0, head.stderr
    statement = json.loads(head.stdout)
    assert statement["mac"].startswith("hmac-sha256:")
    (tmp_path / "head.json").write_text(head.stdout)
    ok = cli("trail", "verify", report["run_id"], "--head", "head.json", **key)
    assert (ok.returncode, "matches the published head" in ok.stdout) == (0, True)
    unkeyed = cli("trail", "verify", report["run_id"])
    assert (unkeyed.returncode, "unkeyed check only" in unkeyed.stdout) == (0, True)
    import duckdb

    con = duckdb.connect(str(tmp_path / ".audit-core" / "audit.duckdb"))
    last = statement["rows"]
    con.execute(f"DELETE FROM audit_trail WHERE log_sequence_number = {last}")
    con.execute("DELETE FROM audit_trail_heads")
    con.close()
    cut = cli("trail", "verify", report["run_id"], "--head", "head.json", **key)
    assert cut.returncode == 1
    assert f"FAILED at entry {last}: truncated" in cut.stdout
    stopped = cli("demo", "--json", "--out", "r", "--stop-after", "checks")
    assert stopped.returncode == 130
    con = duckdb.connect(str(tmp_path / "r" / "audit.duckdb"))
    run_id = con.execute("SELECT audit_run_id FROM workflow_state").fetchone()[0]  # type: ignore[index]
    con.close()
    never = cli("trail", "verify", run_id, "--out", "r")
    assert never.returncode == 3
    assert "never completed" in never.stdout


def test_human_report_reads_well(cli: Any) -> None:
    out = cli("demo")
    assert out.returncode == 0, out.stderr
    for expected in (
        "rows scanned",
        "flags by rule",
        "deterministic vs LLM",
        "time per step",
        "hash chain verified",
        "checkpoints in the results database",
        "LLM calls",
    ):
        assert expected in out.stdout


def test_interrupt_after_checks_then_resume_matches_uninterrupted(cli: Any, tmp_path: Path) -> None:
    full = json.loads(cli("demo", "--json", "--out", "full").stdout)
    stopped = cli("demo", "--json", "--out", "r", "--stop-after", "checks")
    assert stopped.returncode == 130
    import duckdb

    con = duckdb.connect(str(tmp_path / "r" / "audit.duckdb"))
    run_id, status, step = con.execute(
        "SELECT audit_run_id, workflow_status, current_agent FROM workflow_state"
    ).fetchone()  # type: ignore[misc]
    flags_before = con.execute("SELECT count(*) FROM flags").fetchone()
    con.close()
    assert (status, step) == ("in_progress", "checks")
    assert flags_before == (11,)  # every SQL rule's flags, no LLM-stage flags yet
    assert f"run {run_id} started" in stopped.stderr
    assert f"continue with: audit-core demo --resume {run_id} --out r" in stopped.stderr

    resumed = cli("demo", "--json", "--out", "r", "--resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["resumed"] is True
    assert report["flags_by_rule"] == full["flags_by_rule"]
    assert report["flags_written"] == full["flags_written"]
    assert report["trail_ok"] is True
    con = duckdb.connect(str(tmp_path / "r" / "audit.duckdb"))
    dupes = con.execute("SELECT count(*) - count(DISTINCT flag_id) FROM flags").fetchone()
    rules_traced = con.execute(
        "SELECT count(*) FROM audit_trail WHERE tool_called LIKE 'rule.%'"
    ).fetchone()
    con.close()
    assert dupes == (0,)
    assert rules_traced == (5,)  # no rule ran twice
    again = cli("demo", "--out", "r", "--resume", run_id)
    assert again.returncode == 2
    assert "already completed" in again.stderr


@pytest.mark.parametrize("rule", ["card_bank_mismatch", "round_amount", "split_purchase"])
def test_a_stop_after_one_rule_leaves_every_rule_all_or_nothing_and_resume_matches(
    cli: Any, tmp_path: Path, rule: str
) -> None:
    """A stop at one rule's checkpoint cancels the next rule, already running. Each
    rule's flags are then all there or none (a rule is one statement, rolled back
    whole), and the resumed run has exactly the flags of an uninterrupted one, none
    written twice."""
    import duckdb

    rows = "3000"
    full = json.loads(cli("demo", "--json", "--out", "full", "--rows", rows).stdout)
    stopped = cli("demo", "--json", "--out", "r", "--rows", rows, "--stop-after", f"checks.{rule}")
    assert stopped.returncode == 130
    con = duckdb.connect(str(tmp_path / "r" / "audit.duckdb"))
    run_id, data = con.execute(
        "SELECT audit_run_id, intermediate_results FROM workflow_state"
    ).fetchone()  # type: ignore[misc]
    done = json.loads(data)["rules_done"]
    per_rule = dict(con.execute("SELECT rule, count(*) FROM flags GROUP BY rule").fetchall())
    con.close()
    assert rule in done
    for name in done:  # checkpointed: all its flags
        assert per_rule.get(name, 0) == full["flags_by_rule"].get(name, 0), name
    for name, n in per_rule.items():  # any other rule: all or nothing, never a part
        assert n == full["flags_by_rule"][name], name

    resumed = cli("demo", "--json", "--out", "r", "--rows", rows, "--resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["flags_by_rule"] == full["flags_by_rule"]
    assert report["trail_ok"] is True
    con = duckdb.connect(str(tmp_path / "r" / "audit.duckdb"))
    dupes = con.execute("SELECT count(*) - count(DISTINCT flag_id) FROM flags").fetchone()
    con.close()
    assert dupes == (0,)


SLOW_RULE = """-- name: round_amount
-- severity: HIGH
-- confidence: 0.8
-- title: Slow on purpose
SELECT a.transaction_id, a.amount, 'slow' AS detail
FROM gold.recent_transactions a
JOIN gold.recent_transactions b ON (a.amount + b.amount) % 97 = 0
WHERE a.transaction_date > :since
GROUP BY a.transaction_id, a.amount
"""


def test_a_rule_cancelled_mid_statement_leaves_no_flag_and_runs_again_on_resume(
    cli: Any, tmp_path: Path
) -> None:
    """The third rule (made slow: a join of every pair of transactions) runs while the
    second rule's checkpoint is written; a stop at that checkpoint cancels it
    mid-statement, and not one of its flags is in the database; the resume runs it to
    the end, and the flags equal an uninterrupted run's."""
    import duckdb

    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "round_amount.sql").write_text(SLOW_RULE)
    common = ("--json", "--rows", "6000", "--rules", str(folder))
    full = json.loads(cli("demo", "--out", "full", *common).stdout)
    assert full["flags_by_rule"]["round_amount"] > 100
    stopped = cli("demo", "--out", "r", *common, "--stop-after", "checks.duplicate_charge")
    assert stopped.returncode == 130
    con = duckdb.connect(str(tmp_path / "r" / "audit.duckdb"))
    run_id, data = con.execute(
        "SELECT audit_run_id, intermediate_results FROM workflow_state"
    ).fetchone()  # type: ignore[misc]
    slow = con.execute("SELECT count(*) FROM flags WHERE rule = 'round_amount'").fetchone()
    con.close()
    assert "round_amount" not in json.loads(data)["rules_done"]
    assert slow == (0,)
    resumed = cli("demo", "--out", "r", *common, "--resume", run_id)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["flags_by_rule"] == full["flags_by_rule"]


def _oracle(body: Any) -> str:
    items = json.loads(body["messages"][-1]["content"])["items"]
    answers = [
        {
            "id": i["id"],
            "label": "suspicious" if "Unknown" in i["text"] else "business",
            "confidence": 0.9,
            "rationale": "checked",
        }
        for i in items
    ]
    return json.dumps({"answers": answers})


async def test_demo_with_an_llm_endpoint(cli: Any) -> None:
    """With a key and an OpenAI-compatible endpoint, the ambiguous items are classified."""
    async with FakeOpenRouter(responder=_oracle) as server:
        env = {"OPENROUTER_API_KEY": "sk-test-secret", "AUDIT_LLM_BASE_URL": server.url}
        # main() runs its own event loop: give it a thread, keep serving on this one.
        out = await asyncio.wait_for(asyncio.to_thread(cli, "demo", "--json", **env), 120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert server.stats.requests == 1  # 5 items, one batch of 10
    assert report["llm_costs"]["calls"] == 1
    assert "classified 5 items" in report["llm_note"]
    assert report["flags_by_severity"].get("INFO", 0) == 0
    assert report["flags_by_risk"]["HIGH"] >= 5 + 1  # TXN002 'Unknown Vendor LLC' now HIGH
    assert "sk-test-secret" not in out.stdout + out.stderr


BAD_INPUT = [
    (["demo", "--no-such-flag"], {}, 2, "unrecognized arguments"),
    (["query", "SELEC * FROM gold.emails"], {}, 1, "QueryError"),
    (["query", "SELECT * FROM gold.nope"], {}, 1, "unknown table gold.nope"),
    (["demo"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, 1, "unreachable"),
    (["demo"], {"AUDIT_FIXTURES_DIR": "missing"}, 2, "does not exist"),
    (["flags"], {}, 2, "run `audit-core demo` first"),
    (["init-db", "--dialect", "oracle"], {}, 2, "invalid choice"),
    (["doctor"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, 1, "no answer to PING"),
    (
        ["init-db", "--dialect", "postgres", "--apply", "postgresql://u:pw@127.0.0.1:1/db"],
        {},
        2,
        "OperationalError: connection failed",
    ),
]


@pytest.mark.parametrize(("argv", "env", "code", "message"), BAD_INPUT)
def test_bad_input_is_one_clear_line(
    cli: Any, argv: list[str], env: dict[str, str], code: int, message: str
) -> None:
    out = cli(*argv, **env)
    assert out.returncode == code, (out.stdout, out.stderr)
    assert message in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_debug_adds_the_traceback(cli: Any) -> None:
    debug = cli("query", "SELECT * FROM gold.nope", "--debug")
    assert "Traceback" in debug.stderr


def test_query_formats_and_params(cli: Any) -> None:
    sql = (
        "SELECT transaction_id, amount FROM gold.recent_transactions WHERE amount > :min "
        "ORDER BY amount DESC LIMIT 2"
    )
    out = cli("query", sql, "--param", "min=3000", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["transaction_id"] for r in rows] == ["TXN016", "TXN002"]
    sql = "SELECT card_id FROM gold.credit_cards WHERE status = :s"
    csv = cli("query", sql, "--param", "s=frozen", "--format", "csv")
    assert csv.stdout.split() == ["card_id", "CARD-005"]


def test_init_db_prints_and_applies(cli: Any, tmp_path: Path) -> None:
    printed = cli("init-db", "--dialect", "databricks")
    assert printed.returncode == 0
    assert "CLUSTER BY" in printed.stdout
    assert "CREATE INDEX" not in printed.stdout
    target = tmp_path / "schema.duckdb"
    applied = cli("init-db", "--dialect", "duckdb", "--apply", str(target))
    assert applied.returncode == 0, applied.stderr
    again = cli("init-db", "--dialect", "duckdb", "--apply", str(target))
    assert again.returncode == 0
    assert "applied 13 statements (duckdb)" in again.stdout


def test_init_db_applies_to_postgres(cli: Any, postgres_server: Any) -> None:
    out = cli("init-db", "--dialect", "postgres", "--apply", postgres_server.dsn)
    assert out.returncode == 0, out.stderr
    assert "applied" in out.stdout


def test_fixtures_generate_and_doctor(cli: Any, tmp_path: Path) -> None:
    out = cli("fixtures", "generate", "--rows", "2000", "--out", "gen")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "gen" / "sample_transactions.parquet").is_file()
    doctor = cli("doctor", AUDIT_FIXTURES_DIR=str(tmp_path / "gen"), OPENROUTER_API_KEY="")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "warehouse    OK" in doctor.stdout
    assert "state        OK" in doctor.stdout
    assert "llm          SKIP" in doctor.stdout
    secret = cli(
        "doctor", OPENROUTER_API_KEY="sk-or-very-secret", AUDIT_LLM_BASE_URL="http://127.0.0.1:1"
    )
    assert "sk-or-very-secret" not in secret.stdout + secret.stderr
    assert secret.returncode == 1  # the LLM endpoint is unreachable
    assert "llm          FAIL" in secret.stdout


def test_json_logs_for_machines(cli: Any) -> None:
    out = cli("query", "SELECT * FROM gold.nope", "--log-format", "json", "--log-level", "INFO")
    events = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "audit_core.warehouse.failed" for e in events)


# --- a few real subprocesses: the entry point, a real pipe -----------------------------


def test_entry_point_runs_the_demo(tmp_path: Path) -> None:
    """`python -m audit_core demo --json` in a fresh interpreter: the installed path works."""
    out = subprocess_run("demo", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["trail_ok"] is True


def test_reader_that_leaves_early_is_not_an_error(tmp_path: Path) -> None:
    # `audit-core query ... | head -1`: no traceback, the shell's SIGPIPE status
    with subprocess.Popen(
        [*CLI, "query", "SELECT * FROM range(2000000)", "--format", "csv"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline() == b"range\n"
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141, stderr
    assert "Traceback" not in stderr
    assert "BrokenPipe" not in stderr


def test_rules_list_check_and_show(cli: Any, tmp_path: Path) -> None:
    """`audit-core rules`: built-ins and a folder's rules; a broken file names its line."""
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "big.sql").write_text(
        "-- name: big_ticket\n-- severity: HIGH\n-- confidence: 0.7\n-- title: Big\n"
        "SELECT transaction_id, amount, 'big' AS detail FROM gold.recent_transactions\n"
        "WHERE transaction_date > :since AND amount > 4000\n"
    )
    listed = cli("rules", "list", "--rules", str(folder))
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names[-1] == "big_ticket"
    assert "round_amount" in names
    from_env = cli("rules", "list", AUDIT_RULES_DIR=str(folder))
    assert from_env.stdout == listed.stdout
    shown = cli("rules", "show", "round_amount")
    assert "round_threshold = 1000" in shown.stdout
    assert "FROM gold.recent_transactions" in shown.stdout
    assert cli("rules", "check").returncode == 0
    (folder / "broken.sql").write_text(
        "-- name: broken\n-- severity: HUGE\n-- confidence: 1\n-- title: t\nSELECT 1\n"
    )
    broken = cli("rules", "check", "--rules", str(folder))
    assert broken.returncode == 2
    assert f"{folder / 'broken.sql'}:2: severity must be one of" in broken.stderr


# --- issue 19: runs an auditor can trust --------------------------------------------


def test_resume_on_another_source_is_refused_naming_the_difference(cli: Any) -> None:
    """A run started on 200 generated rows cannot be finished on the 28-row sample."""
    stopped = cli("demo", "--rows", "200", "--stop-after", "load", "--json")
    assert stopped.returncode == 130
    run_id = stopped.stderr.split("run ", 1)[1].split()[0]
    wrong = cli("demo", "--resume", run_id)
    assert wrong.returncode == 2
    assert "another source" in wrong.stderr
    assert "rows: run used 200, now None" in wrong.stderr
    right = cli("demo", "--resume", run_id, "--rows", "200", "--json")
    assert right.returncode == 0, right.stderr
    assert json.loads(right.stdout)["source"]["rows"] == 200


def test_a_changed_rule_is_a_different_source(cli: Any, tmp_path: Path) -> None:
    """Editing a rule between stop and resume is named, not silently mixed."""
    folder = tmp_path / "rules"
    folder.mkdir()
    rule = (
        "-- name: big_ticket\n-- severity: HIGH\n-- confidence: 0.7\n-- title: Big\n"
        "SELECT transaction_id, amount, 'big' AS detail FROM gold.recent_transactions\n"
        "WHERE transaction_date > :since AND amount > 4000\n"
    )
    (folder / "big.sql").write_text(rule)
    stopped = cli("demo", "--rules", str(folder), "--stop-after", "load")
    run_id = stopped.stderr.split("run ", 1)[1].split()[0]
    (folder / "big.sql").write_text(rule.replace("4000", "3000"))
    changed = cli("demo", "--resume", run_id, "--rules", str(folder))
    assert changed.returncode == 2
    assert "rule 'big_ticket' changed" in changed.stderr


def test_a_custom_rule_folder_produces_flags(cli: Any, tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "big.sql").write_text(
        "-- name: big_ticket\n-- severity: CRITICAL\n-- confidence: 0.7\n-- title: Big\n"
        "SELECT transaction_id, amount, 'over 4000' AS detail FROM gold.recent_transactions\n"
        "WHERE transaction_date > :since AND amount > 4000\n"
    )
    out = cli("demo", "--json", AUDIT_RULES_DIR=str(folder))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["flags_by_rule"]["big_ticket"] >= 1


def test_re_auditing_a_covered_window_writes_no_second_flag(cli: Any, tmp_path: Path) -> None:
    """A second run over the same window flags nothing twice, says so; --force flags again."""
    first = json.loads(cli("demo", "--json").stdout)
    second_out = cli("demo")
    assert second_out.returncode == 0
    assert "already flagged by an earlier completed run" in second_out.stdout
    import duckdb

    con = duckdb.connect(str(tmp_path / ".audit-core" / "audit.duckdb"))
    (dupes,) = con.execute(
        "SELECT count(*) - count(DISTINCT (transaction_id, rule)) FROM flags"
    ).fetchone()  # type: ignore[misc]
    (total,) = con.execute("SELECT count(*) FROM flags").fetchone()  # type: ignore[misc]
    con.close()
    assert dupes == 0
    assert total == first["flags_written"]
    forced = json.loads(cli("demo", "--json", "--force").stdout)
    assert forced["flags_written"] == first["flags_written"]
    assert forced["duplicates_skipped"] == {}


async def test_an_unreachable_llm_endpoint_falls_back_to_info_flags(cli: Any) -> None:
    """A key but no endpoint: the deterministic flags stand, the ambiguous items become
    INFO flags, and the report says why (no traceback)."""
    env = {"OPENROUTER_API_KEY": "sk-test-secret", "AUDIT_LLM_BASE_URL": "http://127.0.0.1:1"}
    out = await asyncio.wait_for(asyncio.to_thread(cli, "demo", "--json", **env), 300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["flags_by_rule"]["unknown_vendor"] == 5
    assert report["flags_by_severity"]["INFO"] == 5
    assert "LLMConnectionError" in report["llm_note"]
    assert "Traceback" not in out.stderr


def test_flags_filters_formats_and_review(cli: Any, tmp_path: Path) -> None:
    """`flags`: filters, evidence, "N of M", csv/json; `flags review` writes the review
    columns and an audit-trail entry."""
    report = json.loads(cli("demo", "--json").stdout)
    listed = cli("flags", "--limit", "3")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[-1].startswith(f"3 of {report['flags_written']} flags")
    rows = json.loads(cli("flags", "--format", "json", "--limit", "500").stdout)
    assert len(rows) == report["flags_written"]
    weekend = json.loads(cli("flags", "--rule", "weekend_spend", "--format", "json").stdout)
    assert {r["rule"] for r in weekend} == {"weekend_spend"}
    assert all(r["vendor_name"] and r["transaction_date"] for r in weekend)
    high = json.loads(cli("flags", "--severity", "HIGH", "--format", "json").stdout)
    assert high
    assert {r["risk_level"] for r in high} == {"HIGH"}
    vendor = rows[0]["vendor_name"]
    by_vendor = json.loads(cli("flags", "--vendor", vendor.upper(), "--format", "json").stdout)
    assert by_vendor
    assert all(vendor.lower() in r["vendor_name"].lower() for r in by_vendor)
    csv_out = cli("flags", "--format", "csv", "--rule", "round_amount").stdout.splitlines()
    assert csv_out[0].startswith("flag_id,audit_run_id,transaction_id")
    assert len(csv_out) == 1 + report["flags_by_rule"]["round_amount"]
    dated = json.loads(cli("flags", "--since", "2099-01-01", "--format", "json").stdout)
    assert dated == []

    target = weekend[0]["flag_id"]
    reviewed = cli(
        "flags",
        "review",
        target,
        "--decision",
        "dismissed",
        "--reviewer",
        "ana@example.com",
        "--notes",
        "approved travel",
    )
    assert reviewed.returncode == 0, reviewed.stderr
    after = json.loads(cli("flags", "--status", "dismissed", "--format", "json").stdout)
    assert [r["flag_id"] for r in after] == [target]
    assert after[0]["reviewer_id"] == "ana@example.com"
    assert after[0]["reviewer_notes"] == "approved travel"
    assert after[0]["review_timestamp"]
    import duckdb

    con = duckdb.connect(str(tmp_path / ".audit-core" / "audit.duckdb"), read_only=True)
    trail = con.execute(
        "SELECT agent_name, tool_called FROM audit_trail WHERE audit_run_id = ?",
        [f"{report['run_id']}:reviews"],
    ).fetchall()
    con.close()
    assert trail == [("reviewer:ana@example.com", "flags.review")]
    bad = cli("flags", "review", target, "--decision", "confirmed", "--reviewer", "")
    assert bad.returncode == 1
    assert "reviewer_id must be non-empty" in bad.stderr
    assert cli("flags", "--severity", "SEVERE").returncode != 0


def test_runs_lists_every_run_and_how_to_resume(cli: Any) -> None:
    """A stopped run is findable without looking inside the database."""
    stopped = cli("demo", "--stop-after", "checks")
    run_id = stopped.stderr.split("run ", 1)[1].split()[0]
    done = json.loads(cli("demo", "--json").stdout)
    listed = cli("runs")
    assert listed.returncode == 0, listed.stderr
    assert f"resume with: audit-core demo --resume {run_id}" in listed.stdout
    runs = {r["run_id"]: r for r in json.loads(cli("runs", "--format", "json").stdout)}
    assert runs[run_id]["status"] == "in_progress"
    assert runs[run_id]["flags"] == 11
    finished = runs[done["run_id"]]
    assert finished["status"] == "completed"
    assert finished["rows"] == done["rows_scanned"]
    assert finished["flags_by_severity"] == done["flags_by_severity"]
    assert cli("runs", "--out", "elsewhere").returncode == 2


def test_the_simulated_llm_stage_runs_offline_and_says_so(cli: Any, tmp_path: Path) -> None:
    """`--llm simulated`: the 3% path end to end without a key, labelled everywhere."""
    out = cli("demo", "--llm", "simulated", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["llm_note"].startswith("simulated")
    assert report["llm_costs"]["calls"] >= 1
    assert Decimal(report["llm_costs"]["total_usd"]) > 0
    assert "escalated" in report["llm_note"]
    assert report["flags_by_severity"].get("INFO", 0) == 0
    rows = json.loads(cli("flags", "--rule", "unknown_vendor", "--format", "json").stdout)
    assert rows
    assert all(r["detected_by"].startswith("llm-simulated:") for r in rows)
    page = (tmp_path / report["report"]).read_text()
    assert "simulated</b>" in page


def test_demo_with_redis_keeps_its_state_and_lock_there(
    cli: Any, tmp_path: Path, redis_server: Any
) -> None:
    """With REDIS_URL the run's state and lock are Redis's: a run stopped after its checks
    is in Redis at that step, its lock is free again, the resume reads it from there and
    the completed run is marked complete in Redis with the flag summary."""
    from audit_core.state import AsyncStateStore

    url = redis_server.url
    stopped = cli("demo", "--json", "--out", "r", "--stop-after", "checks", REDIS_URL=url)
    assert stopped.returncode == 130
    run_id = stopped.stderr.split("run ", 1)[1].split()[0]

    async def state() -> tuple[dict[str, Any], bool]:
        async with AsyncStateStore.from_url(url) as store:
            saved = await store.restore(run_id)
            async with store.lock(run_id, ttl_s=5, wait_s=0.5):  # free: the stop let it go
                return saved, True

    saved, locked = asyncio.run(state())
    assert locked
    assert saved["current_step"] == "checks"
    assert saved["status"] == "in_progress"
    assert "state store           redis://" not in stopped.stdout  # --json: no human report

    # The results file's row is gone: the resume must find the state in Redis.
    import duckdb

    con = duckdb.connect(str(tmp_path / "r" / "audit.duckdb"))
    con.execute("DELETE FROM workflow_state")
    con.close()
    resumed = cli("demo", "--out", "r", "--resume", run_id, REDIS_URL=url)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed, not redone   load, checks" in resumed.stdout
    assert f"state store           {url}" in resumed.stdout
    completed = asyncio.run(_restore_state(url, run_id))
    assert completed["status"] == "completed"
    assert completed["summary"]["flags"] > 0


async def _restore_state(url: str, run_id: str) -> dict[str, Any]:
    from audit_core.state import AsyncStateStore

    async with AsyncStateStore.from_url(url) as store:
        return await store.restore(run_id)


def test_a_broken_rule_stops_the_demo_before_any_data_is_generated(
    cli: Any, tmp_path: Path
) -> None:
    """The rules load beside the engine's start, but a broken one still fails first:
    exit 2 naming file:line, and no million-row generation is wasted on it."""
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "bad.sql").write_text(
        "-- name: bad\n-- severity: LOW\n-- confidence: 0.5\n-- title: t\n"
        "SELECT transaction_id, amount, 'x' AS detail FROM gold.recent_transactions\n"
        "WHERE transaction_date > :since AND amount > :missing\n"
    )
    out = cli("demo", "--rows", "5000", "--rules", str(folder), "--out", "o")
    assert out.returncode == 2
    assert f"{folder / 'bad.sql'}:5" in out.stderr
    assert not (tmp_path / "o" / "generated-5000").exists()
    again = cli("demo", "--rules", str(folder), "--out", "p")  # fixtures already there
    assert again.returncode == 2
    assert "missing" in again.stderr


def test_without_redis_a_second_demo_on_the_same_results_is_kept_out(
    cli: Any, tmp_path: Path
) -> None:
    """No state store, no run lock in Redis: the results file's own lock keeps a second
    process out while the first runs (a clear error, exit 2), and the first finishes."""
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "round_amount.sql").write_text(SLOW_RULE)
    args = ["demo", "--rows", "6000", "--rules", str(folder), "--out", "o"]
    cli(*args, "--stop-after", "load")  # generate the data first
    first = subprocess.Popen(  # INFO: its progress events say when the rules run
        [*CLI, "--log-level", "INFO", *args],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stderr is not None
        for line in first.stderr:  # the file is open once the run reports its progress
            if "audit_core.demo.progress" in line:
                break
        assert first.poll() is None, "the first run ended before the second started"
        second = cli(*args)
        assert second.returncode == 2
        assert "cannot open DuckDB database" in second.stderr
        assert "lock" in second.stderr.lower()
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "hash chain verified" in out


def test_a_ctrl_c_after_the_work_is_done_does_not_change_how_the_process_ends() -> None:
    """The script entry (`run`) ignores SIGINT once `main` has returned: a Ctrl-C landing
    while the interpreter shuts down (the SQL cache is saved then) killed a finished run
    by SIGINT (status -2) in a fresh-clone CI run. An exit hook sees the disposition, and
    a SIGINT sent from it leaves main's exit code."""
    code = (
        "import atexit, os, signal, sys\n"
        "from audit_core.cli import run\n"
        "def late():\n"
        "    print('ignored' if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else 'live')\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "atexit.register(late)\n"
        "sys.argv = ['audit-core', 'rules', 'list']\n"
        "run()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ignored")
    assert "KeyboardInterrupt" not in done.stderr
