"""``python -m audit_core.cli``: the same as the ``audit-core`` script."""

import sys

from audit_core.cli import main

sys.exit(main())
