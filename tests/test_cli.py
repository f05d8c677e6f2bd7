"""The `audit-core` command line, run as a real subprocess: exit codes and output."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from audit_core.testing import FakeOpenRouter

CLI = [sys.executable, "-m", "audit_core._cli"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AUDIT_", "REDIS_", "OPENROUTER", "DATABRICKS", "ENVIRONMENT"))
    }
    env.update(extra)
    return env


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_on_every_command(tmp_path: Path) -> None:
    for command in (
        [],
        ["demo"],
        ["doctor"],
        ["query"],
        ["init-db"],
        ["fixtures", "generate"],
        ["flags"],
        ["trail", "verify"],
    ):
        out = run(*command, "--help", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "usage: audit-core" in out.stdout
        assert len(out.stdout.splitlines()) > 3


def test_demo_on_embedded_defaults_then_flags_and_trail(tmp_path: Path) -> None:
    out = run("demo", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["rows_scanned"] == 26  # shipped fixtures after the last completed audit
    assert report["flags_by_rule"] == {
        "duplicate_charge": 1, "round_amount": 4, "split_purchase": 3, "weekend_spend": 2,
        "card_bank_mismatch": 1, "unknown_vendor": 5,
    }  # fmt: skip
    assert report["flags_by_severity"]["INFO"] == 5  # LLM stage skipped -> human review
    assert "no OPENROUTER_API_KEY" in report["llm_note"]
    assert report["trail_ok"] is True
    assert (tmp_path / ".audit-core" / "audit.duckdb").is_file()
    assert "Traceback" not in out.stderr

    flags = run("flags", "--pending", "--run", report["run_id"], cwd=tmp_path)
    assert flags.returncode == 0, flags.stderr
    lines = flags.stdout.splitlines()
    assert len(lines) == 16
    assert lines[0].startswith("HIGH")
    ok = run("trail", "verify", report["run_id"], cwd=tmp_path)
    assert ok.returncode == 0
    assert "hash chain intact" in ok.stdout

    import duckdb

    con = duckdb.connect(str(tmp_path / ".audit-core" / "audit.duckdb"))
    con.execute("UPDATE audit_trail SET output_summary = 'edited' WHERE sequence_number = 2")
    con.close()
    bad = run("trail", "verify", report["run_id"], cwd=tmp_path)
    assert bad.returncode == 1
    assert "FAILED at entry 2" in bad.stdout


def test_human_report_reads_well(tmp_path: Path) -> None:
    out = run("demo", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for expected in ("rows scanned", "flags by rule", "deterministic vs LLM", "time per step",
                     "hash chain verified", "embedded, not durable", "LLM calls"):  # fmt: skip
        assert expected in out.stdout


def test_interrupt_after_checks_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    full = json.loads(run("demo", "--json", "--out", "full", cwd=tmp_path).stdout)
    stopped = run("demo", "--json", "--out", "r", "--stop-after", "checks", cwd=tmp_path)
    assert stopped.returncode == 130
    assert "continue with --resume" in stopped.stderr
    import duckdb

    con = duckdb.connect(str(tmp_path / "r" / "audit.duckdb"))
    run_id, status, step = con.execute(
        "SELECT run_id, status, current_step FROM workflow_state"
    ).fetchone()  # type: ignore[misc]
    flags_before = con.execute("SELECT count(*) FROM flags").fetchone()
    con.close()
    assert (status, step) == ("running", "checks")
    assert flags_before == (11,)  # every SQL rule's flags, no LLM-stage flags yet

    resumed = run("demo", "--json", "--out", "r", "--resume", run_id, cwd=tmp_path)
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
    again = run("demo", "--out", "r", "--resume", run_id, cwd=tmp_path)
    assert again.returncode == 2
    assert "already completed" in again.stderr


async def test_demo_with_an_llm_endpoint(tmp_path: Path) -> None:
    """With a key and an OpenAI-compatible endpoint, the ambiguous items are classified."""

    def oracle(body: Any) -> str:
        items = json.loads(body["messages"][-1]["content"])["items"]
        return json.dumps({"answers": [
            {"id": i["id"], "label": "suspicious" if "Unknown" in i["text"] else "business",
             "confidence": 0.9, "rationale": "checked"} for i in items
        ]})  # fmt: skip

    async with FakeOpenRouter(responder=oracle) as server:
        env = clean_env(OPENROUTER_API_KEY="sk-test-secret", AUDIT_LLM_BASE_URL=server.url)
        proc = await asyncio.create_subprocess_exec(
            *CLI, "demo", "--json", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, stderr.decode()
    report = json.loads(stdout)
    assert server.stats.requests == 1  # 5 items, one batch of 10
    assert report["llm_costs"]["calls"] == 1
    assert "classified 5 items" in report["llm_note"]
    assert report["flags_by_severity"].get("INFO", 0) == 0
    assert report["flags_by_severity"]["HIGH"] >= 5 + 1  # TXN002 'Unknown Vendor LLC' now HIGH
    assert "sk-test-secret" not in stdout.decode() + stderr.decode()


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    cases = [
        (["demo", "--no-such-flag"], {}, 2, "unrecognized arguments"),
        (["query", "SELEC * FROM gold.emails"], {}, 1, "QueryError"),
        (["query", "SELECT * FROM gold.nope"], {}, 1, "unknown table gold.nope"),
        (["demo"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, 1, "unreachable"),
        (["demo"], {"AUDIT_FIXTURES_DIR": str(tmp_path / "missing")}, 2, "does not exist"),
        (["flags"], {}, 2, "run `audit-core demo` first"),
        (["init-db", "--dialect", "oracle"], {}, 2, "invalid choice"),
        (["doctor"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, 1, "FAIL"),
    ]
    for args, env, code, message in cases:
        out = run(*args, cwd=tmp_path, env=clean_env(**env))
        assert out.returncode == code, (args, out.stdout, out.stderr)
        assert message in out.stdout + out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr, args
    debug = run("query", "SELECT * FROM gold.nope", "--debug", cwd=tmp_path)
    assert "Traceback" in debug.stderr


def test_query_formats_and_params(tmp_path: Path) -> None:
    out = run("query", "SELECT transaction_id, amount FROM gold.recent_transactions WHERE amount > :min "
              "ORDER BY amount DESC LIMIT 2", "--param", "min=3000", "--format", "json", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["transaction_id"] for r in rows] == ["TXN016", "TXN002"]
    csv = run("query", "SELECT card_id FROM gold.credit_cards WHERE status = :s", "--param", "s=frozen",
              "--format", "csv", cwd=tmp_path)  # fmt: skip
    assert csv.stdout.split() == ["card_id", "CARD-005"]


def test_reader_that_leaves_early_is_not_an_error(tmp_path: Path) -> None:
    # `audit-core query ... | head -1`: no traceback, the shell's SIGPIPE status
    with subprocess.Popen(
        [*CLI, "query", "SELECT * FROM range(2000000)", "--format", "csv"],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline() == b"range\n"
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141, stderr
    assert "Traceback" not in stderr
    assert "BrokenPipe" not in stderr


def test_init_db_prints_and_applies(tmp_path: Path) -> None:
    printed = run("init-db", "--dialect", "databricks", cwd=tmp_path)
    assert printed.returncode == 0
    assert "CLUSTER BY" in printed.stdout
    assert "CREATE INDEX" not in printed.stdout
    target = tmp_path / "schema.duckdb"
    applied = run("init-db", "--dialect", "duckdb", "--apply", str(target), cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    again = run("init-db", "--dialect", "duckdb", "--apply", str(target), cwd=tmp_path)
    assert again.returncode == 0
    assert "applied 13 statements (duckdb)" in again.stdout


def test_init_db_applies_to_postgres(tmp_path: Path, postgres_server: Any) -> None:
    out = run("init-db", "--dialect", "postgres", "--apply", postgres_server.dsn, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "applied" in out.stdout


def test_fixtures_generate_and_doctor(tmp_path: Path) -> None:
    out = run("fixtures", "generate", "--rows", "2000", "--out", "gen", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "gen" / "sample_transactions.parquet").is_file()
    doctor = run(
        "doctor",
        cwd=tmp_path,
        env=clean_env(AUDIT_FIXTURES_DIR=str(tmp_path / "gen"), OPENROUTER_API_KEY=""),
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "warehouse    OK" in doctor.stdout
    assert "state        OK" in doctor.stdout
    assert "llm          SKIP" in doctor.stdout
    secret = run(
        "doctor",
        cwd=tmp_path,
        env=clean_env(
            OPENROUTER_API_KEY="sk-or-very-secret", AUDIT_LLM_BASE_URL="http://127.0.0.1:1"
        ),
    )
    assert "sk-or-very-secret" not in secret.stdout + secret.stderr
    assert secret.returncode == 1  # the LLM endpoint is unreachable
    assert "llm          FAIL" in secret.stdout


@pytest.mark.parametrize("flag", ["--log-format"])
def test_json_logs_for_machines(tmp_path: Path, flag: str) -> None:
    out = run("query", "SELECT * FROM gold.nope", flag, "json", "--log-level", "INFO", cwd=tmp_path)
    events = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "audit_core.warehouse.failed" for e in events)
