"""``python -m audit_core``: the same as the ``audit-core`` script."""

from audit_core.cli import run

run()
