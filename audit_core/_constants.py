"""Defaults shared by every client, in one place."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

# LLM
DEFAULT_LLM_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_MODEL = "openai/gpt-4o-mini"
DEFAULT_ESCALATION_MODEL = "anthropic/claude-3.5-haiku"
DEFAULT_LLM_MAX_CONCURRENCY = 16
DEFAULT_LLM_MAX_RETRIES = 3
DEFAULT_LLM_TIMEOUT_S = 60.0
DEFAULT_LLM_CONNECT_TIMEOUT_S = 10.0
# Completion tokens reserved against a budget when a call gives no max_tokens.
DEFAULT_BUDGET_COMPLETION_RESERVE = 4096
# The longest Retry-After an LLM call sleeps on (as the openai SDK); longer fails at once
# with the wait on the error's retry_after_s.
DEFAULT_LLM_RETRY_AFTER_MAX_S = 120.0

# Retry policy (shared by all clients)
DEFAULT_RETRY_WAIT_INITIAL_S = 0.5
DEFAULT_RETRY_WAIT_MAX_S = 30.0
DEFAULT_RETRY_EXP_BASE = 2.0
# A server's Retry-After above this is not slept on: the call fails instead.
DEFAULT_RETRY_AFTER_MAX_S = 60.0
DEFAULT_RETRY_DEADLINE_S = 300.0

# State store
DEFAULT_STATE_TTL_S = 86_400
DEFAULT_COMPLETED_TTL_S = 30 * 86_400
DEFAULT_KEY_PREFIX = "audit"
DEFAULT_REDIS_URL = "memory://"

# Warehouse
DEFAULT_AUDIT_START = datetime(2025, 1, 1, tzinfo=UTC)

MICRO = Decimal("0.000001")
