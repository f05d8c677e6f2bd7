"""Every error audit-core raises.

```
AuditCoreError                          .attempts where the shared retry policy gave up
├── ConfigError                         a setting, argument or input file is invalid
├── ClientClosedError                   a closed (or never usable) client was used again
├── WarehouseError
│   ├── DatabricksConnectionError       transport/connect failures (retried first)
│   └── QueryError                      bad SQL, unknown table, bad params; carries .sql
│       ├── QueryTimeoutError           ran past its timeout_s and was cancelled
│       ├── UnsupportedQueryError       a construct the local engine cannot answer as Spark does
│       └── ReadOnlyViolationError      a write, file or system access through query()
├── LLMError                            carries .model, .status_code, .request_id,
│   │                                   .retry_after_s, .attempts where known
│   ├── LLMRateLimitError               429 still failing after retries
│   ├── LLMAuthError                    401 / 403
│   ├── LLMModerationError              403 moderation refusal of the input
│   ├── LLMInsufficientCreditsError     402
│   ├── LLMTimeoutError                 no answer within the deadline
│   ├── LLMConnectionError              connection refused or reset, on every attempt
│   ├── LLMResponseError                malformed body, error object inside a 200, empty choice
│   │   └── LLMContentFilterError       finish_reason "content_filter"
│   └── LLMBudgetExceededError          the client's own budget would be exceeded; nothing sent
├── StateManagerError                   carries .run_id
│   ├── StateStoreUnavailableError      only raised in strict mode
│   ├── StateConflictError              optimistic-concurrency check failed / lock not acquired
│   │   └── StateLockLostError          a lock's lease expired (or was taken) while held
│   └── StateEncodingError              a state that cannot be stored: cyclic, too deep, not JSON
├── InvalidFlagError                    a flag or review rejected before anything was written
└── AuditTrailError                     carries .run_id, .sequence
    └── TrailVerificationError          the chain does not verify (tampered or truncated)
```

Messages never contain secrets, prompt text or query parameter values: the attributes
carry what a caller needs to act (model, status code, request id, SQL text, attempts).
The shared retry policy reads the same public attributes (``retry_after_s``,
``transient``) to decide whether and when to try again.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = [
    "AuditCoreError",
    "AuditTrailError",
    "ClientClosedError",
    "ConfigError",
    "DatabricksConnectionError",
    "InvalidFlagError",
    "LLMAuthError",
    "LLMBudgetExceededError",
    "LLMConnectionError",
    "LLMContentFilterError",
    "LLMError",
    "LLMInsufficientCreditsError",
    "LLMModerationError",
    "LLMRateLimitError",
    "LLMResponseError",
    "LLMTimeoutError",
    "QueryError",
    "QueryTimeoutError",
    "ReadOnlyViolationError",
    "StateConflictError",
    "StateEncodingError",
    "StateLockLostError",
    "StateManagerError",
    "StateStoreUnavailableError",
    "TrailVerificationError",
    "UnsupportedQueryError",
    "WarehouseError",
]


class AuditCoreError(Exception):
    """Base of every error raised by audit-core.

    ``attempts`` is how many times the operation was tried, set by the shared retry
    policy when it gave up (``None`` when the operation never went through it).
    ``transient`` is true when trying again later may succeed (the retry policy's
    verdict); ``retry_after_s`` is the wait a server asked for, when it asked.
    """

    attempts: int | None = None
    transient: bool = False
    retry_after_s: float | None = None


class ConfigError(AuditCoreError):
    """A setting, argument or input file is missing or invalid; the message names which."""


class ClientClosedError(AuditCoreError, RuntimeError):
    """A client was used after ``aclose()``; create a new one (clients are not reusable)."""


class WarehouseError(AuditCoreError):
    """A warehouse operation failed."""


class DatabricksConnectionError(WarehouseError):
    """The warehouse could not be reached (transport or connect failure).

    ``before_send`` is true when the failure happened while connecting, before any
    statement was sent (so even a write is safe to retry).
    """

    transient = True

    def __init__(self, message: str, *, before_send: bool = False, sql: str | None = None) -> None:
        super().__init__(message)
        self.before_send = before_send
        self.sql = sql


class QueryError(WarehouseError):
    """The warehouse rejected a statement: bad SQL, unknown table, bad parameters.

    ``sql`` is the statement as the caller wrote it (parameter values are never part of
    it, since values always travel as bound parameters).
    """

    def __init__(self, message: str, *, sql: str | None = None) -> None:
        super().__init__(message)
        self.sql = sql


class QueryTimeoutError(QueryError):
    """A statement ran past its ``timeout_s`` and was cancelled."""


class UnsupportedQueryError(QueryError):
    """The local engine cannot answer this construct the way Spark does, so it refuses.

    ``construct`` names the function or clause (``"timestampdiff(WEEK)"``, say).
    """

    def __init__(self, message: str, *, sql: str | None = None, construct: str = "") -> None:
        super().__init__(message, sql=sql)
        self.construct = construct


class ReadOnlyViolationError(QueryError):
    """``query()`` was given something other than one read statement (a write, a file or
    system access, several statements); use ``execute()`` to write."""


class LLMError(AuditCoreError):
    """An LLM call failed.

    Attributes are ``None`` where unknown: ``model`` asked for, HTTP ``status_code``,
    ``attempts`` made, the endpoint's ``request_id``, and ``retry_after_s`` (the wait the
    endpoint asked for).
    """

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        status_code: int | None = None,
        attempts: int | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.status_code = status_code
        self.attempts = attempts
        self.request_id = request_id
        self.retry_after_s = retry_after_s
        if transient is not None:
            self.transient = transient


class LLMRateLimitError(LLMError):
    """HTTP 429 that was still failing after retries (or asked for a wait too long to take)."""


class LLMAuthError(LLMError):
    """HTTP 401 or 403: the key is missing, wrong or not allowed this model."""


class LLMModerationError(LLMError):
    """HTTP 403 from a moderation check: the input was refused (retrying will not help)."""


class LLMInsufficientCreditsError(LLMError):
    """HTTP 402: the account has no credits left."""


class LLMTimeoutError(LLMError):
    """The endpoint did not answer within the deadline, on every attempt."""


class LLMConnectionError(LLMError):
    """The endpoint could not be reached: connection refused or reset, on every attempt."""


class LLMResponseError(LLMError):
    """The endpoint answered with something unusable: invalid JSON, an error object
    inside a 200, no choices, or usage that fails validation."""


class LLMContentFilterError(LLMResponseError):
    """The answer was withheld by a content filter (``finish_reason: "content_filter"``)."""


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

    transient = True


class StateConflictError(StateManagerError):
    """An optimistic-concurrency check failed, or a run lock is held by someone else."""


class StateLockLostError(StateConflictError):
    """A run lock's lease expired, or another holder took it, while work was still under it."""


class StateEncodingError(StateManagerError):
    """A state cannot be stored: cyclic, nested too deep, too large, or not encodable as JSON."""


class InvalidFlagError(AuditCoreError, ValueError):
    """A flag (or a review of one) was rejected before anything was written."""


class AuditTrailError(AuditCoreError):
    """A trail entry was invalid, or the trail could not be written or read.

    ``run_id`` and ``sequence`` name the run and row where known.
    """

    def __init__(
        self, message: str, *, run_id: str | None = None, sequence: int | None = None
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.sequence = sequence


class TrailVerificationError(AuditTrailError):
    """The audit trail does not verify: a row was edited, removed, reordered or forged,
    or the tail was cut off. ``sequence`` is the first bad row where one is known."""
