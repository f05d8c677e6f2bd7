"""Resumable workflow state on redis.asyncio (or an embedded in-process Redis)."""

from audit_core.state._store import AsyncStateStore, FlushReport, RunInfo, RunLock, StoredState

__all__ = ["AsyncStateStore", "FlushReport", "RunInfo", "RunLock", "StoredState"]
