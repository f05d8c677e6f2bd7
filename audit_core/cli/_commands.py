"""The command handlers: ``async def handler(args, settings) -> exit code``.

Each is wired to its subcommand by `audit_core.cli._main.build_parser`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit_core._settings import Settings
from audit_core.errors import AuditCoreError, ConfigError

DEMO_STEPS = ("lock", "load", "checks", "llm")


async def demo(args: argparse.Namespace, settings: Settings) -> int:
    from audit_core._demo import (
        DemoOptions,
        Interrupted,
        Progress,
        new_run_id,
        render,
        report_json,
        run_demo,
    )
    from audit_core.cli._rules import rule_folders

    if args.rows is not None and args.rows < 10:
        raise ConfigError(f"--rows must be at least 10, got {args.rows}")
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr="127.0.0.1")
    options = DemoOptions(
        out_dir=args.out,
        rows=args.rows,
        resume=args.resume,
        run_id=args.resume or new_run_id(),
        rules_dirs=tuple(rule_folders(args, settings)),
        force=args.force,
        stop_after=args.stop_after,
        llm=args.llm,
    )
    again = f"audit-core demo --resume {options.run_id}"
    if args.rows is not None:
        again += f" --rows {args.rows}"
    if args.out != Path(".audit-core"):
        again += f" --out {args.out}"
    print(f"run {options.run_id} {'resumed' if args.resume else 'started'}", file=sys.stderr)
    try:
        report = await run_demo(settings, options, progress=Progress(sys.stderr))
    except Interrupted as stop:
        print(f"interrupted after step {stop}; continue with: {again}", file=sys.stderr)
        return 130
    except BaseException as exc:  # Ctrl-C, a crash: the run id is what lets it resume
        if not (isinstance(exc, ConfigError) and "already completed" in str(exc)):
            print(f"run {options.run_id} stopped; continue with: {again}", file=sys.stderr)
        raise
    print(report_json(report) if args.json else render(report))
    return 0 if report.trail_ok else 1


async def _write_page(out: Path, run_id: str, page: Path) -> None:
    from audit_core.db._reader import ReadOnlyResults
    from audit_core.db._verify_cmd import RESULTS_FILE, trail_key_from_env
    from audit_core.report import write_report

    async with ReadOnlyResults.open(out / RESULTS_FILE) as results:
        await write_report(results, run_id, page, key=trail_key_from_env())


async def report(args: argparse.Namespace, settings: Settings) -> int:
    """``audit-core report RUN_ID``: the run's HTML page, or its flags as CSV."""
    from audit_core.db._verify_cmd import flags_command

    if args.format == "csv":
        from audit_core.db._flags import FlagFilter

        where = FlagFilter(audit_run_id=args.run_id)
        code, text = await flags_command(args.out, limit=10_000_000, where=where, format="csv")
        if args.output:
            await asyncio.to_thread(args.output.write_text, text + "\n", encoding="utf-8")
            print(f"wrote {args.output}")
        else:
            print(text)
        return code
    page = args.output or args.out / f"report-{args.run_id}.html"
    await _write_page(args.out, args.run_id, page)
    print(f"wrote {page}")
    return 0


async def doctor(args: argparse.Namespace, settings: Settings) -> int:
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
            # query, not health(): a failure says why instead of only "False"
            await wh.query_arrow("SELECT 1 AS ok")
            return "OK", f"{wh.backend} warehouse answers SELECT 1"

    async def state() -> tuple[str, str]:
        async with AsyncStateStore.from_settings(settings, on_unavailable="raise") as store:
            ok = await store.health()
            durable = "" if store.durable else " (embedded, not durable)"
            if not ok:
                return "FAIL", f"{store.url}: no answer to PING (is redis-server running there?)"
            return "OK", f"{store.url}{durable}"

    async def llm() -> tuple[str, str]:
        if not settings.openrouter_api_key:
            return "SKIP", "no OPENROUTER_API_KEY: the LLM stage will be skipped"
        from audit_core.llm import AsyncLLMClient

        async with AsyncLLMClient.from_settings(settings, max_retries=0) as client:
            models = await client.refresh_pricing()
            return "OK", f"{settings.llm_base_url} ({models} models priced)"

    async def sql_cache() -> tuple[str, str]:
        from audit_core._sqlcache import describe

        return await asyncio.to_thread(describe)

    await check("warehouse", warehouse())
    await check("state", state())
    await check("llm", llm())
    await check("sql cache", sql_cache())
    return 1 if failed else 0


async def fixtures_generate(args: argparse.Namespace, settings: Settings) -> int:
    from audit_core.fixtures import generate

    out = await asyncio.to_thread(generate, args.rows, args.seed, args.out)
    print(f"wrote {args.rows:,} transactions and matching tables to {out}")
    return 0


def _param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise ConfigError(f"--param must look like NAME=VALUE, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return name.lstrip(":"), value


async def query(args: argparse.Namespace, settings: Settings) -> int:
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


async def init_db(args: argparse.Namespace, settings: Settings) -> int:
    from audit_core.db.schemas import create_all_tables, ddl, ensure_schema

    if args.migrate:
        from audit_core.db import migration_statements

        print(";\n\n".join(migration_statements(args.dialect)) + ";")
        return 0
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
            from audit_core._logging import redact_text

            reason = redact_text(" ".join(str(exc).split()))
            raise ConfigError(
                f"cannot apply to PostgreSQL: {type(exc).__name__}: {reason}"
            ) from None
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


def _day(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"{option} must be a date like 2025-01-31, got {text!r}") from None


async def flags(args: argparse.Namespace, settings: Settings) -> int:
    from audit_core.db._flags import FlagFilter
    from audit_core.db._verify_cmd import flags_command

    where = FlagFilter(
        audit_run_id=args.run,
        reviewed=False if args.pending else None,
        severity=args.severity,
        rule=args.rule,
        status=args.status,
        vendor=args.vendor,
        since=_day(args.since, "--since"),
        until=_day(args.until, "--until"),
    )
    code, text = await flags_command(args.out, limit=args.limit, where=where, format=args.format)
    print(text)
    return code


async def runs(args: argparse.Namespace, settings: Settings) -> int:
    from audit_core.db._verify_cmd import runs_command

    code, text = await runs_command(args.out, format=args.format, limit=args.limit)
    print(text)
    return code


async def flags_review(args: argparse.Namespace, settings: Settings) -> int:
    """Record a reviewer's decision on one flag, and the review in the audit trail."""
    from audit_core.db import AuditTrail, FlagStore
    from audit_core.db._verify_cmd import RESULTS_FILE, trail_key_from_env
    from audit_core.warehouse import DatabricksClient

    path = args.out / RESULTS_FILE
    if not path.is_file():
        raise ConfigError(f"no results database at {path}; run `audit-core demo` first")
    async with DatabricksClient.local(database=str(path), load_fixtures=False) as results:
        flag = await FlagStore(results).review(
            args.flag_id, args.decision, args.reviewer, args.notes
        )
        # Reviews come after the run's trail is complete: they form the run's review log.
        review_log = f"{flag.audit_run_id}:reviews"
        async with AuditTrail(results, review_log, key=trail_key_from_env()) as trail:
            await trail.record(
                f"reviewer:{args.reviewer}",
                "flags.review",
                input_data={"flag_id": flag.flag_id, "transaction_id": flag.transaction_id},
                output_summary=f"{args.decision}: {flag.rule} on {flag.transaction_id}",
                decision_chain={"decision": args.decision, "notes": args.notes},
            )
    print(
        f"{flag.flag_id} {args.decision} by {args.reviewer}; recorded in the audit trail "
        f"as run {review_log!r}"
    )
    return 0


async def trail_verify(args: argparse.Namespace, settings: Settings) -> int:
    from audit_core.db._verify_cmd import trail_key_from_env, trail_verify_command

    code, text = await trail_verify_command(
        args.out, args.run_id, head_file=args.head, key=trail_key_from_env()
    )
    print(text)
    return code


async def trail_head(args: argparse.Namespace, settings: Settings) -> int:
    from audit_core.db._verify_cmd import trail_head_command, trail_key_from_env

    code, text = await trail_head_command(args.out, args.run_id, key=trail_key_from_env())
    print(text)
    return code
