"""``python -m audit_core.testing``: run the loopback OpenRouter in its own process."""

from audit_core.testing._openrouter import _main

_main()
