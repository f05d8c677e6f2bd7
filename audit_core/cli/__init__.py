"""The ``audit-core`` command line (``audit_core.cli.main``)."""

from audit_core.cli._main import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
