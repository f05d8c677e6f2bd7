"""``audit-core``: the parser, the global options, and the one place errors become exit codes.

Errors from the library print as one line (``error: ...``) with a non-zero exit;
``--debug`` adds the traceback. Exit codes: 0 ok, 1 a check failed or the command
failed, 2 bad usage or configuration, 130 interrupted, 141 the reader left (``| head``).
Global options (``--debug``, ``--log-level``, ``--log-format``) work before and after the
command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn

from audit_core._settings import Settings
from audit_core.errors import AuditCoreError, ConfigError

__all__ = ["build_parser", "main"]

DEFAULT_OUT = Path(".audit-core")
Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
_FORMATTER = argparse.ArgumentDefaultsHelpFormatter


def _add_global_options(parser: argparse.ArgumentParser, *, root: bool) -> None:
    # On subcommands the defaults are SUPPRESSed, so an option given before the command
    # is not reset by the subcommand's own default.
    def default(value: Any) -> Any:
        return value if root else argparse.SUPPRESS

    def shown(value: Any) -> str:  # the formatter shows the root's defaults itself
        return "" if root else f" (default: {value})"

    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=default(None),
        help="log format; unset: AUDIT_LOG_FORMAT, else console in development, json in "
        "production" + shown(None),
    )
    group.add_argument(
        "--log-level", default=default("WARNING"), help="log level" + shown("WARNING")
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show tracebacks on errors" + shown(False),
    )


def _command(
    sub: Any, name: str, handler: Handler | None, *, help: str, description: str | None = None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=description or help, formatter_class=_FORMATTER
    )
    _add_global_options(parser, root=False)
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def _out_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")


def _stop_step(value: str) -> str:
    """``--stop-after``: a step, or ``checks.RULE`` (the checkpoint after that rule)."""
    from audit_core.cli import _commands as c

    step, _, rule = value.partition(".")
    if step in c.DEMO_STEPS and (not rule or (step == "checks" and rule.isidentifier())):
        return value
    raise argparse.ArgumentTypeError(
        f"expected one of {', '.join(c.DEMO_STEPS)}, or checks.RULE; got {value!r}"
    )


class _Version(argparse.Action):
    """``--version``: the installed version, read only when asked for (importlib.metadata
    costs more than the rest of building the parser)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from audit_core import __version__

        print(f"{parser.prog} {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each command carries its handler (``args.handler``)."""
    from audit_core.cli import _commands as c, _rules as rules_cmd

    parser = argparse.ArgumentParser(
        prog="audit-core",
        description="Infrastructure for a tool-first, LLM-light spend audit: "
        "warehouse, state, LLM, trail.",
        formatter_class=_FORMATTER,
    )
    parser.add_argument(
        "--version",
        action=_Version,
        nargs=0,
        default=argparse.SUPPRESS,
        help="show the version and exit",
    )
    _add_global_options(parser, root=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = _command(
        sub,
        "demo",
        c.demo,
        help="run one end-to-end audit pass on the local gold tables and print a report",
        description="One audit pass: lock, load new transactions, SQL checks, LLM stage for "
        "the ambiguous remainder (skipped without an API key), flags and a verified trail.",
    )
    demo.add_argument("--rows", type=int, help="audit N generated transactions, not the fixtures")
    demo.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run")
    _out_option(demo)
    demo.add_argument("--json", action="store_true", help="print the report as JSON")
    demo.add_argument("--metrics-port", type=int, help="serve metrics on 127.0.0.1:PORT")
    demo.add_argument(
        "--rules",
        type=Path,
        action="append",
        help="a folder of .sql rule files, added to the built-in rules (repeatable); "
        "unset: AUDIT_RULES_DIR",
    )
    demo.add_argument(
        "--force",
        action="store_true",
        help="flag again what an earlier completed run already flagged",
    )
    demo.add_argument(
        "--llm",
        choices=("auto", "simulated", "off"),
        default="auto",
        help="the LLM stage: auto (a real endpoint when OPENROUTER_API_KEY is set), "
        "simulated (a loopback fake model, labelled as such), off",
    )
    demo.add_argument("--stop-after", type=_stop_step, help=argparse.SUPPRESS)

    doctor = _command(
        sub,
        "doctor",
        c.doctor,
        help="show configuration (secrets redacted) and check every service",
        description="Configuration and the health of the warehouse, state store and LLM.",
    )
    doctor.add_argument("--timeout", type=float, default=10.0, help="seconds per check")

    query = _command(
        sub,
        "query",
        c.query,
        help="run Databricks-dialect SQL on the configured warehouse",
        description="Run one Databricks-dialect statement; values go in as :name parameters.",
    )
    query.add_argument("sql", help="one Databricks-dialect statement")
    query.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="bind :NAME (VALUE parsed as JSON if it parses, else text)",
    )
    query.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output format"
    )

    init = _command(
        sub,
        "init-db",
        c.init_db,
        help="print (or apply) the schema DDL for a dialect",
        description="Print the flags / audit_trail / workflow_state DDL, or apply it.",
    )
    init.add_argument(
        "--dialect",
        choices=("postgres", "databricks", "duckdb"),
        required=True,
        help="SQL dialect of the DDL",
    )
    init.add_argument(
        "--apply",
        metavar="TARGET",
        help="postgres: a DSN (needs psycopg); duckdb: a database file; "
        "databricks: 'warehouse' for the configured one",
    )
    init.add_argument(
        "--migrate",
        action="store_true",
        help="print the statements moving a schema-version-1 database to version 2",
    )

    fixtures = _command(sub, "fixtures", None, help="work with local gold-table fixtures")
    fsub = fixtures.add_subparsers(dest="fixtures_command", required=True, metavar="ACTION")
    gen = _command(
        fsub,
        "generate",
        c.fixtures_generate,
        help="write N generated transactions (and friends) as Parquet",
        description="Deterministic generated gold tables with realistic anomalies, as Parquet.",
    )
    gen.add_argument("--rows", type=int, required=True, help="transactions to generate")
    gen.add_argument("--out", type=Path, required=True, help="folder to write Parquet into")
    gen.add_argument("--seed", type=int, default=7, help="random seed (same seed, same data)")

    flags = _command(
        sub,
        "flags",
        c.flags,
        help="list flags from the demo's results database, or review one",
        description="List flags (most severe first) from the results database, with "
        "evidence, vendor, amount and run; `flags review FLAG_ID` records a decision.",
    )
    flags.add_argument("--pending", action="store_true", help="only flags awaiting review")
    flags.add_argument("--run", metavar="RUN_ID", help="only this run's flags")
    flags.add_argument(
        "--severity", help="CRITICAL, WARNING or INFO, or a risk level (HIGH, MEDIUM, LOW)"
    )
    flags.add_argument("--rule", help="only this rule's flags")
    flags.add_argument(
        "--status", help="pending, reviewed, or a decision (confirmed, dismissed, escalated)"
    )
    flags.add_argument("--vendor", help="vendor name contains this text (any case)")
    flags.add_argument("--since", metavar="DATE", help="transactions on or after DATE")
    flags.add_argument("--until", metavar="DATE", help="transactions before DATE")
    flags.add_argument("--limit", type=int, default=50, help="most flags to list")
    flags.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output format"
    )
    _out_option(flags)
    fsub_flags = flags.add_subparsers(dest="flags_command", metavar="ACTION")
    review = _command(
        fsub_flags,
        "review",
        c.flags_review,
        help="record a reviewer's decision on one flag (and an audit-trail entry)",
    )
    review.add_argument("flag_id", help="the flag's id (the last column of `audit-core flags`)")
    review.add_argument(
        "--decision", required=True, choices=("confirmed", "dismissed", "escalated")
    )
    review.add_argument("--reviewer", required=True, help="who decided (an id or e-mail)")
    review.add_argument("--notes", help="why")
    _out_option(review)

    report = _command(
        sub,
        "report",
        c.report,
        help="write a run's report: a self-contained HTML page, or its flags as CSV",
    )
    report.add_argument("run_id", help="the run to report on")
    report.add_argument("--format", choices=("html", "csv"), default="html", help="output")
    report.add_argument(
        "--output", type=Path, metavar="FILE", help="where to write (html: OUT/report-RUN.html)"
    )
    _out_option(report)

    runs = _command(
        sub,
        "runs",
        c.runs,
        help="list audit runs: status, window, rows, flags by severity, cost, duration",
    )
    runs.add_argument("--format", choices=("table", "json"), default="table", help="output")
    runs.add_argument("--limit", type=int, default=50, help="most runs to list (newest first)")
    _out_option(runs)

    rules = _command(sub, "rules", None, help="list, check or show the audit rules")
    rsub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    rules_help = "a folder of .sql rule files (repeatable); unset: AUDIT_RULES_DIR"
    for name, handler, text in (
        ("list", rules_cmd.rules_list, "the rules a run would use, built-in and yours"),
        ("check", rules_cmd.rules_check, "validate every rule (or the files given)"),
        ("show", rules_cmd.rules_show, "one rule's header, parameters and SQL"),
    ):
        action = _command(rsub, name, handler, help=text)
        action.add_argument("--rules", type=Path, action="append", help=rules_help)
        if name == "check":
            action.add_argument("files", nargs="*", help="rule files to check on their own")
        if name == "show":
            action.add_argument("name", help="the rule's name")

    trail = _command(sub, "trail", None, help="work with the audit trail")
    tsub = trail.add_subparsers(dest="trail_command", required=True, metavar="ACTION")
    verify = _command(
        tsub,
        "verify",
        c.trail_verify,
        help="re-check a run's hash chain: exit 1 tampered, 3 never completed",
        description="Re-read a run's audit trail and check every link of its hash chain.",
    )
    verify.add_argument("run_id", help="the run whose trail to check")
    verify.add_argument(
        "--head", type=Path, metavar="FILE", help="also check against a published head statement"
    )
    _out_option(verify)
    head = _command(
        tsub,
        "head",
        c.trail_head,
        help="print a run's verified head as a JSON statement (HMAC-signed with AUDIT_TRAIL_KEY)",
        description="Print the run's head (rows, last hash, completed) to publish outside "
        "the database; `trail verify RUN_ID --head FILE` checks against it.",
    )
    head.add_argument("run_id", help="the run whose head to print")
    _out_option(head)
    return parser


def run() -> NoReturn:
    """The ``audit-core`` script and ``python -m audit_core``: `main`, then exit with its
    code. Once the work is done, a Ctrl-C no longer changes how the process ends: one
    landing while the interpreter shuts down (the SQL cache is saved then) used to kill it
    by SIGINT (status -2) after a run that had finished and said so."""
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (``sys.exit(main())`` in the script)."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        from audit_core._logging import configure_logging

        configure_logging(
            format=args.log_format or settings.log_format, level=args.log_level, stream=sys.stderr
        )
        handler: Handler = args.handler
        return asyncio.run(handler(args, settings))
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
