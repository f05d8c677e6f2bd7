"""`audit-core demo --rows N` next to its floor: the same rules as raw DuckDB
``INSERT INTO flags SELECT ...`` over the same Parquet files, into a DuckDB file.

Both run as fresh processes on data generated beforehand, each repeat into a new
results file; wall time and peak memory (max RSS) of each process are measured the same
way, interleaved, median of the repeats. The floor does no audit_core work at all: it
gets the rules already transpiled.

The demo is measured as installed (bytecode compiled, as ``pip install`` does) and in
two states of its SQL cache (`audit_core._sqlcache`): warm, as every run after the
first on a machine is, and cold (an empty cache: the first run after an install or an
upgrade).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from benchmarks._common import Section

_MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
    "wall = time.perf_counter() - t\n"
    "print(json.dumps([wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))\n"
)

_FLOOR = """
import json, sys, duckdb
from decimal import Decimal
folder, results, rules = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
con = duckdb.connect(results)
con.execute("SET TimeZone = 'UTC'")
con.execute("CREATE SCHEMA IF NOT EXISTS gold")
for table, path in rules["tables"].items():
    reader = "read_parquet" if path.endswith(".parquet") else "read_json_auto"
    con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {reader}('{path}')")
for statement in rules["ddl"] or [
    "CREATE TABLE IF NOT EXISTS flags (flag_id VARCHAR PRIMARY KEY, transaction_id VARCHAR NOT NULL, "
    "audit_run_id VARCHAR NOT NULL, severity_level VARCHAR, risk_level VARCHAR, confidence_score DOUBLE, "
    "explanation VARCHAR NOT NULL, rule VARCHAR, title VARCHAR, amount DECIMAL(18,2), vendor_name VARCHAR, "
    "department VARCHAR, transaction_date TIMESTAMPTZ, reviewed BOOLEAN DEFAULT FALSE, "
    "created_at TIMESTAMPTZ DEFAULT now())"
]:
    con.execute(statement)
run = rules["run"]
since = con.execute("SELECT max(completed_at) FROM workflow_state WHERE workflow_status = 'completed'").fetchone()[0]
for rule in rules["rules"]:
    con.execute(
        "INSERT INTO flags (flag_id, transaction_id, audit_run_id, severity_level, risk_level, "
        "confidence_score, explanation, rule, title, amount, vendor_name, department, transaction_date) "
        "SELECT 'flg_' || substr(sha256(concat_ws(chr(31), $run, $rule, hits.transaction_id, '')), 1, 24), "
        "hits.transaction_id, $run, $severity, $risk, $confidence, hits.detail, $rule, $title, hits.amount, "
        "hits.vendor_name, hits.department, hits.transaction_date FROM (" + rule["sql"] + ") AS hits",
        {**rule["params"], **{k: Decimal(rule["params"][k]) for k in rule["decimals"]}, "since": since, "run": run, "rule": rule["name"], "severity": rule["severity"],
         "risk": rule["risk"], "confidence": rule["confidence"], "title": rule["title"]},
    )
con.close()
"""


def _floor_plan(run: str, folder: Path, *, same_table: bool = True) -> dict[str, object]:
    """The floor's input: tables, rules already transpiled, and the flags table's DDL
    (audit-core's own, indexes included, or a bare one with its primary key only)."""
    from audit_core.db.schemas import SEVERITY_FOR_RISK, ddl
    from audit_core.fixtures import find_file, load_manifest
    from audit_core.rules import load_rules
    from audit_core.warehouse._sql import to_duckdb

    tables = {}
    for name, spec in load_manifest(folder).items():
        path = find_file(folder, spec.file)
        if path is not None:
            tables[name] = path.as_posix()
    rules = []
    for rule in load_rules():
        risk = rule.severity
        title = rule.title
        if rule.kind == "llm":  # no key: the ambiguous items become INFO flags for review
            risk, title = "INFO", f"{rule.title}: needs human review (LLM stage skipped)"
        rules.append(
            {
                "name": rule.name,
                "sql": to_duckdb(rule.sql).sql,
                "params": {
                    k: str(v) if isinstance(v, Decimal) else v for k, v in rule.params.items()
                },
                "decimals": [k for k, v in rule.params.items() if isinstance(v, Decimal)],
                "severity": SEVERITY_FOR_RISK[risk],
                "risk": risk,
                "confidence": float(rule.confidence) if rule.kind == "sql" else 0.5,
                "title": title,
            }
        )
    flags_ddl = [sql for sql in ddl("duckdb") if " flags " in sql or " flags(" in sql]
    return {"run": run, "tables": tables, "rules": rules, "ddl": flags_ddl if same_table else []}


def _measure(command: list[str], cwd: str, env: dict[str, str]) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall, rss = json.loads(out.stdout)
    return float(wall), float(rss)


def demo_floor(rows: int = 1_000_000, repeats: int = 3) -> Section:
    section = Section(f"`audit-core demo --rows {rows:,}` next to raw DuckDB doing the same")
    tmp = tempfile.mkdtemp(prefix="audit-demo-floor-")
    cache = Path(tmp, "sql-cache.json")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER", "REDIS_", "AUDIT_"))
    }
    warm = {**env, "AUDIT_SQL_CACHE": str(cache)}
    package = Path(__file__).resolve().parents[1] / "audit_core"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)

    def demo(out: str) -> list[str]:
        return [sys.executable, "-m", "audit_core", "demo", "--rows", str(rows), "--out", out]

    try:
        # generate the data (and fill the SQL cache, as a first run does)
        subprocess.run(demo("gen"), cwd=tmp, env=warm, capture_output=True, check=True)
        folder = Path(tmp, "gen", f"generated-{rows}")
        plans = {
            "floor": json.dumps(_floor_plan("floor-run", folder)),
            "bare": json.dumps(_floor_plan("floor-run", folder, same_table=False)),
        }
        floor = [sys.executable, "-c", _FLOOR, folder.as_posix()]
        runs: dict[str, list[tuple[float, float]]] = {s: [] for s in ("warm", "cold", *plans)}
        for i in range(repeats):
            for state in runs:
                out = Path(tmp, f"{state}-{i}")
                out.mkdir()
                (out / folder.name).symlink_to(folder, target_is_directory=True)
                if state in plans:
                    command = [*floor, str(out / "floor.duckdb"), plans[state]]
                    runs[state].append(_measure(command, tmp, env))
                    continue
                chosen = warm
                if state == "cold":
                    chosen = {**env, "AUDIT_SQL_CACHE": str(out / "empty-cache.json")}
                runs[state].append(_measure(demo(out.name), tmp, chosen))
        labels = {
            "warm": "audit-core demo (SQL cache warm)",
            "cold": "audit-core demo (SQL cache cold)",
            "floor": "raw DuckDB floor (the flags table as audit-core defines it)",
            "bare": "raw DuckDB floor (a bare flags table: primary key only)",
        }
        for state, label in labels.items():
            section.add(f"{label}: wall", [w for w, _ in runs[state]], "s")
        for state, label in labels.items():
            section.add(f"{label}: peak memory", [m for _, m in runs[state]], "MiB")
        floor_wall = statistics.median(w for w, _ in runs["floor"])
        floor_rss = statistics.median(m for _, m in runs["floor"])
        bare_wall = statistics.median(w for w, _ in runs["bare"])
        bare_rss = statistics.median(m for _, m in runs["bare"])
        for state in ("warm", "cold"):
            wall = statistics.median(w for w, _ in runs[state])
            rss = statistics.median(m for _, m in runs[state])
            section.ratios.append((f"demo ({state}) / floor, wall", wall / floor_wall, "<= 1.5"))
            section.ratios.append(
                (f"demo ({state}) / floor, peak memory", rss / floor_rss, "<= 1.5")
            )
            section.ratios.append(
                (f"demo ({state}) / bare-table floor, wall", wall / bare_wall, "")
            )
            section.ratios.append(
                (f"demo ({state}) / bare-table floor, peak memory", rss / bare_rss, "")
            )
        section.notes.append(
            f"All write the same {_flag_count(Path(tmp, 'floor-0', 'floor.duckdb')):,} flags "
            f"(at {rows:,} rows) to a new DuckDB file each run. The floor writes them into the "
            "flags table exactly as audit-core defines it (its four indexes included, the "
            "original schema's); the bare-table floor shows what those indexes cost. The "
            "demo also loads and checks the rules, checkpoints after every rule, writes and "
            "verifies the hash-chained trail, and writes the HTML report. Cold: the first "
            "run with an empty SQL cache (after an install or upgrade); warm: every run after."
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return section


def _flag_count(path: Path) -> int:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        found = con.execute("SELECT count(*) FROM flags").fetchone()
    finally:
        con.close()
    return int(found[0]) if found else 0
