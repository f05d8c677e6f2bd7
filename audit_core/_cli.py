"""``audit-core``: the command line.

Errors from the library print as one line (``error: ...``) with a non-zero exit;
``--debug`` adds the traceback. Exit codes: 0 ok, 1 a check failed or the command
failed, 2 bad usage or configuration, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audit_core._settings import Settings
from audit_core.errors import AuditCoreError, ConfigError

DEFAULT_OUT = Path(".audit-core")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-format", choices=("console", "json"), help="log format (default: AUDIT_LOG_FORMAT)"
    )
    common.add_argument("--log-level", default="WARNING", help="log level (default WARNING)")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")

    parser = argparse.ArgumentParser(
        prog="audit-core",
        description="Infrastructure for a tool-first, LLM-light spend audit: "
        "warehouse, state, LLM, trail.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", parents=[common],
        help="run one end-to-end audit pass on the local gold tables and print a report",
        description="One audit pass: lock, load new transactions, SQL checks, LLM stage for the "
        "ambiguous remainder (skipped without an API key), flags and a verified audit trail.",
    )  # fmt: skip
    demo.add_argument(
        "--rows", type=int, help="audit N generated transactions instead of the shipped fixtures"
    )
    demo.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run")
    demo.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="results folder (default ./.audit-core)"
    )
    demo.add_argument("--json", action="store_true", help="print the report as JSON")
    demo.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT while running"
    )
    demo.add_argument(
        "--stop-after", choices=("lock", "load", "checks", "llm"), help=argparse.SUPPRESS
    )

    doctor = sub.add_parser(
        "doctor", parents=[common],
        help="show configuration (secrets redacted) and check every service",
        description="Configuration and the health of the warehouse, state store and LLM endpoint.",
    )  # fmt: skip
    doctor.add_argument("--timeout", type=float, default=10.0, help="seconds per check")

    query = sub.add_parser(
        "query", parents=[common], help="run Databricks-dialect SQL on the configured warehouse",
        description="Run one Databricks-dialect statement; values go in as bound :name parameters.",
    )  # fmt: skip
    query.add_argument("sql")
    query.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="bind :NAME (VALUE parsed as JSON if it parses, else text)",
    )  # fmt: skip
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")

    init = sub.add_parser(
        "init-db", parents=[common], help="print (or apply) the schema DDL for a dialect",
        description="Print the flags / audit_trail / workflow_state DDL, or apply it.",
    )  # fmt: skip
    init.add_argument("--dialect", choices=("postgres", "databricks", "duckdb"), required=True)
    init.add_argument("--apply", metavar="TARGET",
                      help="postgres: a DSN (needs psycopg); duckdb: a database file; "
                      "databricks: 'warehouse' for the configured one")  # fmt: skip

    fixtures = sub.add_parser(
        "fixtures", parents=[common], help="work with local gold-table fixtures"
    )
    fsub = fixtures.add_subparsers(dest="fixtures_command", required=True, metavar="ACTION")
    gen = fsub.add_parser(
        "generate", parents=[common],
        help="write N generated transactions (and friends) as Parquet",
        description="Deterministic generated gold tables with realistic anomalies, as Parquet.",
    )  # fmt: skip
    gen.add_argument("--rows", type=int, required=True)
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=7)

    flags = sub.add_parser(
        "flags", parents=[common], help="list flags from the demo's results database",
        description="List flags (most severe first) from the results database.",
    )  # fmt: skip
    flags.add_argument("--pending", action="store_true", help="only flags awaiting review")
    flags.add_argument("--run", metavar="RUN_ID", help="only this run's flags")
    flags.add_argument("--limit", type=int, default=50)
    flags.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="results folder (default ./.audit-core)"
    )

    trail = sub.add_parser("trail", parents=[common], help="work with the audit trail")
    tsub = trail.add_subparsers(dest="trail_command", required=True, metavar="ACTION")
    verify = tsub.add_parser(
        "verify", parents=[common],
        help="re-check a run's hash chain; exit 1 if it was tampered with",
        description="Re-read a run's audit trail and check every link of its hash chain.",
    )  # fmt: skip
    verify.add_argument("run_id")
    verify.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="results folder (default ./.audit-core)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        from audit_core._logging import configure_logging

        configure_logging(
            format=args.log_format or settings.log_format, level=args.log_level, stream=sys.stderr
        )
        return asyncio.run(_dispatch(args, settings))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `audit-core ... | head`: the reader left; exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (AuditCoreError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        message = " ".join(str(exc).split())  # one line
        print(f"error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command
    if command == "demo":
        return await _demo(args, settings)
    if command == "doctor":
        return await _doctor(args, settings)
    if command == "query":
        return await _query(args, settings)
    if command == "init-db":
        return await _init_db(args, settings)
    if command == "fixtures":
        from audit_core.fixtures import generate

        out = await asyncio.to_thread(generate, args.rows, args.seed, args.out)
        print(f"wrote {args.rows:,} transactions and matching tables to {out}")
        return 0
    if command == "flags":
        return await _flags(args)
    if command == "trail":
        return await _trail_verify(args)
    raise ConfigError(f"unknown command {command!r}")


async def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from audit_core._demo import Interrupted, Progress, render, report_json, run_demo

    if args.rows is not None and args.rows < 10:
        raise ConfigError(f"--rows must be at least 10, got {args.rows}")
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr="127.0.0.1")
    try:
        report = await run_demo(
            settings, out_dir=args.out, rows=args.rows, resume=args.resume,
            stop_after=args.stop_after, progress=Progress(),
        )  # fmt: skip
    except Interrupted as stop:
        print(f"interrupted after step {stop}; continue with --resume", file=sys.stderr)
        return 130
    print(report_json(report) if args.json else render(report))
    return 0 if report.trail_ok else 1


async def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from audit_core.state import AsyncStateStore
    from audit_core.warehouse import DatabricksClient

    print("configuration")
    for key, value in settings.redacted().items():
        print(f"  {key:<28} {value if value is not None else '-'}")
    print("services")
    failed = False

    async def check(name: str, coro: Any) -> None:
        nonlocal failed
        try:
            status, detail = await asyncio.wait_for(coro, args.timeout)
        except TimeoutError:
            status, detail = "FAIL", f"no answer in {args.timeout:g}s"
        except (AuditCoreError, OSError) as exc:
            status, detail = "FAIL", f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        failed = failed or status == "FAIL"
        print(f"  {name:<12} {status:<5} {detail}")

    async def warehouse() -> tuple[str, str]:
        async with DatabricksClient.from_settings(settings) as wh:
            ok = await wh.health()
            return ("OK" if ok else "FAIL"), f"{wh.backend} warehouse"

    async def state() -> tuple[str, str]:
        async with AsyncStateStore.from_settings(settings, on_unavailable="raise") as store:
            ok = await store.health()
            durable = "" if store.durable else " (embedded, not durable)"
            return ("OK" if ok else "FAIL"), f"{store.url}{durable}"

    async def llm() -> tuple[str, str]:
        if not settings.openrouter_api_key:
            return "SKIP", "no OPENROUTER_API_KEY: the LLM stage will be skipped"
        from audit_core.llm import AsyncLLMClient

        async with AsyncLLMClient.from_settings(settings, max_retries=0) as client:
            models = await client.refresh_pricing()
            return "OK", f"{settings.llm_base_url} ({models} models priced)"

    await check("warehouse", warehouse())
    await check("state", state())
    await check("llm", llm())
    return 1 if failed else 0


def _param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise ConfigError(f"--param must look like NAME=VALUE, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return name.lstrip(":"), value


async def _query(args: argparse.Namespace, settings: Settings) -> int:
    from audit_core.warehouse import DatabricksClient

    params = dict(_param(p) for p in args.param)
    async with DatabricksClient.from_settings(settings) as wh:
        df = await wh.query(args.sql, params or None)
    if args.format == "csv":
        step = 50_000  # stream in slices: a huge result never becomes one giant string
        for start in range(0, max(len(df), 1), step):
            df.iloc[start : start + step].to_csv(sys.stdout, index=False, header=start == 0)
    elif args.format == "json":
        print(df.to_json(orient="records", date_format="iso", default_handler=str))
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", 200, "display.width", 200):
            print(df.to_string(index=False) if len(df) else "(no rows)")
    return 0


async def _init_db(args: argparse.Namespace, settings: Settings) -> int:
    from audit_core.db.schemas import create_all_tables, ddl, ensure_schema

    statements = ddl(args.dialect)
    if not args.apply:
        print(";\n\n".join(statements) + ";")
        return 0
    if args.dialect == "postgres":
        try:
            import psycopg
        except ImportError:
            raise ConfigError(
                "--apply for postgres needs psycopg: pip install 'psycopg[binary]'"
            ) from None
        try:
            with psycopg.connect(args.apply, autocommit=True) as conn, conn.cursor() as cur:
                n = create_all_tables(cur, "postgres")
        except psycopg.Error as exc:
            raise ConfigError(f"cannot apply to PostgreSQL: {type(exc).__name__}") from None
    elif args.dialect == "duckdb":
        import duckdb

        con = duckdb.connect(args.apply)
        try:
            n = create_all_tables(con.cursor(), "duckdb")
        finally:
            con.close()
    else:
        from audit_core.warehouse import DatabricksClient

        async with DatabricksClient.from_settings(settings) as wh:
            if wh.backend != "databricks":
                raise ConfigError("databricks DDL needs DATABRICKS_HOST and ENVIRONMENT=production")
            n = await ensure_schema(wh)
    print(f"applied {n} statements ({args.dialect})")
    return 0


def _results(out: Path) -> Any:
    from audit_core.warehouse import DatabricksClient

    path = out / "audit.duckdb"
    if not path.is_file():
        raise ConfigError(f"no results database at {path}; run `audit-core demo` first")
    return DatabricksClient.local(database=str(path), load_fixtures=False)


async def _flags(args: argparse.Namespace) -> int:
    from audit_core.db import FlagStore

    async with _results(args.out) as wh:
        store = FlagStore(wh)
        found = await store.find(
            status="pending" if args.pending else None, limit=args.limit, audit_run_id=args.run
        )
    if not found:
        print("(no flags)")
    for f in found:
        amount = f"{f.amount:>12}" if f.amount is not None else " " * 12
        print(
            f"{f.severity:<8} {f.rule:<20} {f.transaction_id or '-':<14} {amount}  "
            f"{f.status:<9} {f.title}"
        )
    return 0


async def _trail_verify(args: argparse.Namespace) -> int:
    from audit_core.db import AuditTrail

    async with _results(args.out) as wh:
        exists = await wh.query_arrow(
            "SELECT count(*) FROM audit_trail WHERE audit_run_id = :run", {"run": args.run_id}
        )
        if exists.column(0)[0].as_py() == 0:
            raise ConfigError(f"no audit trail for run {args.run_id!r}")
        trail = AuditTrail(wh, args.run_id)
        result = await trail.verify()
    if result.ok:
        print(f"ok: {result.rows} entries, hash chain intact")
        return 0
    print(f"FAILED at entry {result.first_bad_sequence}: {result.problem}")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
