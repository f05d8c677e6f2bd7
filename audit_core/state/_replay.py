"""Replaying the outage buffer: one run's buffered writes against what Redis holds now.

See `AsyncStateStore.flush` for the rules. Each function returns the `FlushReport`
field the run belongs in. The store calls `replay` with the run's lock held.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from audit_core._logging import get_logger
from audit_core.errors import StateConflictError, StateLockLostError
from audit_core.state._buffer import BufferedWrite, PendingRun
from audit_core.state._codec import EncodedState, encode_state
from audit_core.state._types import Changes, apply_changes

if TYPE_CHECKING:
    from audit_core.state._store import AsyncStateStore

__all__ = ["replay"]

_log = get_logger("audit_core.state")
_RACES = 8  # tries when another writer keeps changing the run under a replay


async def replay(store: AsyncStateStore, run_id: str, pending: PendingRun) -> str:
    """Write one run's buffered writes through; returns the FlushReport field."""
    for _ in range(_RACES):
        env = await store._get(run_id)
        version = env.version if env else 0
        updated_at = env.updated_at if env else None
        behind = version < pending.base_version
        if not behind and (version, updated_at) != (pending.base_version, pending.base_at):
            return await _diverged(store, run_id, pending)
        last = pending.writes[-1]
        if last.state is None:
            await store._redis_call("flush", lambda _: store._redis.delete(store.key(run_id)))
            store._recent.pop(run_id, None)
            return "restored" if behind else "written"
        try:
            written, _ = await store._write(
                "flush",
                run_id,
                EncodedState(last.state, last.codec),
                mode="same",
                expected=version,
                expected_at=updated_at,
                ttl_s=last.ttl_s,
                at=last.at,
                fence=last.fence,
                version=last.version,
            )
        except StateLockLostError:
            return "conflicts"
        if written:
            return "restored" if behind else "written"
    return await _diverged(store, run_id, pending)


async def _diverged(store: AsyncStateStore, run_id: str, pending: PendingRun) -> str:
    """Another process wrote meanwhile: replay write by write, keeping conditions."""
    outcome = "written"
    for write in pending.writes:
        try:
            result = await _one(store, run_id, write)
        except StateConflictError:
            result = "conflicts"
        if result != "written" and outcome != "conflicts":
            outcome = result
    if outcome != "written":
        _log.warning("audit_core.state.flush_" + outcome, run_id=run_id)
    return outcome


async def _one(store: AsyncStateStore, run_id: str, write: BufferedWrite) -> str:
    key = store.key(run_id)
    if write.conditional:
        return "conflicts"  # its base version is no longer current: never written
    if write.kind == "delete":
        await store._redis_call("flush", lambda _: store._redis.delete(key))
        return "written"
    if write.kind == "save":
        assert write.state is not None
        written, _ = await store._write(
            "flush",
            run_id,
            EncodedState(write.state, write.codec),
            mode="newer",
            ttl_s=write.ttl_s,
            at=write.at,
            fence=write.fence,
        )
        return "written" if written else "superseded"
    changes: Changes
    if write.changes is not None:
        changes = json.loads(write.changes)
    elif write.func is not None:
        changes = write.func
    else:
        return "conflicts"  # a function from an earlier process cannot be re-applied
    for attempt in range(store.conflict_retries):
        env = await store._get(run_id)
        base = env.state if env else {}
        encoded = encode_state(
            apply_changes(changes, base, run_id), run_id=run_id, max_bytes=store.max_state_bytes
        )
        written, _ = await store._write(
            "flush",
            run_id,
            encoded,
            mode="eq",
            expected=env.version if env else 0,
            ttl_s=write.ttl_s,
            at=write.at,
            fence=write.fence,
        )
        if written:
            return "written"
        await store._backoff(attempt)
    return "conflicts"
