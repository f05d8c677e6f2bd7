"""Every Prometheus metric of audit-core, defined once per registry.

`get_metrics(registry)` returns the same `Metrics` for the same registry, so building
any number of clients in one process never raises "Duplicated timeseries".
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics", "get_metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def _counter(name: str, doc: str, *labels: str) -> Callable[[CollectorRegistry], Counter]:
    return lambda registry: Counter(name, doc, labels, registry=registry)


def _gauge(name: str, doc: str, *labels: str) -> Callable[[CollectorRegistry], Gauge]:
    return lambda registry: Gauge(name, doc, labels, registry=registry)


def _histogram(name: str, doc: str, *labels: str) -> Callable[[CollectorRegistry], Histogram]:
    return lambda registry: Histogram(
        name, doc, labels, buckets=_LATENCY_BUCKETS, registry=registry
    )


# attribute -> how to make it; one line per metric, few labels, stable names.
_DEFINITIONS: dict[str, Callable[[CollectorRegistry], Counter | Gauge | Histogram]] = {
    "retries": _counter(
        "audit_retries_total", "Retries made by the shared retry policy.", "client", "reason"
    ),
    # LLM
    "llm_requests": _counter(
        "audit_llm_requests_total", "LLM calls by outcome.", "model", "agent", "outcome"
    ),
    "llm_tokens": _counter(
        "audit_llm_tokens_total",
        "LLM tokens by kind (prompt, completion).",
        "model",
        "agent",
        "kind",
    ),
    "llm_cost": _counter("audit_llm_cost_usd_total", "LLM spend in USD.", "model", "agent"),
    "llm_seconds": _histogram(
        "audit_llm_request_seconds", "LLM call latency, retries included.", "model"
    ),
    "llm_in_flight": _gauge("audit_llm_in_flight", "LLM requests currently in flight."),
    "llm_budget_remaining": _gauge(
        "audit_llm_budget_remaining_usd", "Budget left on the most recent budgeted client."
    ),
    "llm_unpriced": _counter(
        "audit_llm_unpriced_calls_total",
        "LLM calls with no known price and no provider cost.",
        "model",
    ),
    "llm_escalations": _counter(
        "audit_llm_escalations_total", "Items escalated to the escalation model.", "reason"
    ),
    "llm_budget_overruns": _counter(
        "audit_llm_budget_overruns_total",
        "LLM replies that cost more than their budget reservation (recorded at real cost).",
        "model",
    ),
    "llm_cache_hits": _counter(
        "audit_llm_cache_hits_total", "LLM answers served from the response cache."
    ),
    # State store
    "state_ops": _counter(
        "audit_state_ops_total", "State-store operations by outcome.", "op", "outcome"
    ),
    "state_seconds": _histogram("audit_state_op_seconds", "State-store operation latency.", "op"),
    "state_degraded": _gauge(
        "audit_state_degraded", "1 while a state store runs degraded (Redis unreachable)."
    ),
    # Warehouse
    "warehouse_queries": _counter(
        "audit_warehouse_queries_total", "Warehouse statements by outcome.", "backend", "outcome"
    ),
    "warehouse_seconds": _histogram(
        "audit_warehouse_query_seconds", "Warehouse statement latency.", "backend"
    ),
    "warehouse_rows": _counter(
        "audit_warehouse_rows_total", "Rows returned by warehouse queries.", "backend"
    ),
}


class Metrics:
    """The library's metrics, registered on one registry (see `_DEFINITIONS`)."""

    retries: Counter
    llm_requests: Counter
    llm_tokens: Counter
    llm_cost: Counter
    llm_seconds: Histogram
    llm_in_flight: Gauge
    llm_budget_remaining: Gauge
    llm_unpriced: Counter
    llm_escalations: Counter
    llm_budget_overruns: Counter
    llm_cache_hits: Counter
    state_ops: Counter
    state_seconds: Histogram
    state_degraded: Gauge
    warehouse_queries: Counter
    warehouse_seconds: Histogram
    warehouse_rows: Counter

    def __init__(self, registry: CollectorRegistry) -> None:
        for attribute, make in _DEFINITIONS.items():
            setattr(self, attribute, make(registry))


_lock = threading.Lock()
_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, Metrics] = weakref.WeakKeyDictionary()


def get_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    """The `Metrics` of ``registry`` (default the global one), created on first use."""
    reg = REGISTRY if registry is None else registry
    with _lock:
        metrics = _by_registry.get(reg)
        if metrics is None:
            metrics = _by_registry[reg] = Metrics(reg)
        return metrics
