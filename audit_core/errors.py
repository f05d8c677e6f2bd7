"""Every error audit-core raises.

```
AuditCoreError
├── ConfigError
├── WarehouseError
│   ├── DatabricksConnectionError   transport/connect failures (retried first)
│   └── QueryError                  bad SQL, unknown table, bad params; carries .sql
├── LLMError                        carries .model, .status_code, .attempts where known
│   ├── LLMRateLimitError           429 still failing after retries
│   ├── LLMAuthError                401 / 403
│   ├── LLMInsufficientCreditsError 402
│   ├── LLMTimeoutError
│   ├── LLMResponseError            malformed body, error object inside a 200, empty choice
│   └── LLMBudgetExceededError      the client's own budget would be exceeded; nothing sent
└── StateManagerError
    ├── StateStoreUnavailableError  only raised in strict mode
    └── StateConflictError          optimistic-concurrency check failed / lock not acquired
```

Messages never contain secrets, prompt text or query parameter values: the attributes
carry what a caller needs to act (model, status code, request id, SQL text, attempts).
"""

from __future__ import annotations

from decimal import Decimal

__all__ = [
    "AuditCoreError",
    "ConfigError",
    "DatabricksConnectionError",
    "LLMAuthError",
    "LLMBudgetExceededError",
    "LLMError",
    "LLMInsufficientCreditsError",
    "LLMRateLimitError",
    "LLMResponseError",
    "LLMTimeoutError",
    "QueryError",
    "StateConflictError",
    "StateManagerError",
    "StateStoreUnavailableError",
    "WarehouseError",
]


class AuditCoreError(Exception):
    """Base of every error raised by audit-core.

    ``attempts`` is how many times the operation was tried, set by the shared retry
    policy when it gave up (``None`` when the operation never went through it).
    """

    attempts: int | None = None


class ConfigError(AuditCoreError):
    """A setting or argument is missing or invalid; the message names which."""


class WarehouseError(AuditCoreError):
    """A warehouse operation failed."""


class DatabricksConnectionError(WarehouseError):
    """The warehouse could not be reached (transport or connect failure).

    ``before_send`` is true when the failure happened while connecting, before any
    statement was sent (so even a write is safe to retry).
    """

    before_send: bool = False


class QueryError(WarehouseError):
    """The warehouse rejected a statement: bad SQL, unknown table, bad parameters.

    ``sql`` is the statement as the caller wrote it (parameter values are never part of
    it, since values always travel as bound parameters).
    """

    def __init__(self, message: str, *, sql: str | None = None) -> None:
        super().__init__(message)
        self.sql = sql


class LLMError(AuditCoreError):
    """An LLM call failed.

    Attributes are ``None`` where unknown: ``model`` asked for, HTTP ``status_code``,
    ``attempts`` made, and the endpoint's ``request_id``.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        status_code: int | None = None,
        attempts: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.status_code = status_code
        self.attempts = attempts
        self.request_id = request_id


class LLMRateLimitError(LLMError):
    """HTTP 429 that was still failing after retries."""


class LLMAuthError(LLMError):
    """HTTP 401 or 403: the key is missing, wrong or not allowed this model."""


class LLMInsufficientCreditsError(LLMError):
    """HTTP 402: the account has no credits left."""


class LLMTimeoutError(LLMError):
    """The endpoint did not answer within the timeout, on every attempt."""


class LLMResponseError(LLMError):
    """The endpoint answered with something unusable: invalid JSON, an error object
    inside a 200, no choices, or a content-filtered answer."""


class LLMBudgetExceededError(LLMError):
    """The call's worst-case cost does not fit in the client's budget; nothing was sent."""

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        required_usd: Decimal | None = None,
        remaining_usd: Decimal | None = None,
    ) -> None:
        super().__init__(message, model=model, attempts=0)
        self.required_usd = required_usd
        self.remaining_usd = remaining_usd


class StateManagerError(AuditCoreError):
    """A state-store operation failed; ``run_id`` names the run where known."""

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


class StateStoreUnavailableError(StateManagerError):
    """Redis could not be reached and the store is in strict (``on_unavailable="raise"``) mode."""


class StateConflictError(StateManagerError):
    """An optimistic-concurrency check failed, or a run lock is held by someone else."""
