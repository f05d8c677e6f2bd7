"""Every Prometheus metric of audit-core, defined once per registry.

`get_metrics(registry)` returns the same `Metrics` for the same registry, so building
any number of clients in one process never raises "Duplicated timeseries".
"""

from __future__ import annotations

import threading
import weakref

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics", "get_metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """The library's metrics, registered on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.retries = Counter(
            "audit_retries_total", "Retries made by the shared retry policy.",
            ["client", "reason"], registry=r,
        )  # fmt: skip
        # LLM
        self.llm_requests = Counter(
            "audit_llm_requests_total", "LLM calls by outcome.",
            ["model", "agent", "outcome"], registry=r,
        )  # fmt: skip
        self.llm_tokens = Counter(
            "audit_llm_tokens_total", "LLM tokens by kind (prompt, completion).",
            ["model", "agent", "kind"], registry=r,
        )  # fmt: skip
        self.llm_cost = Counter(
            "audit_llm_cost_usd_total", "LLM spend in USD.", ["model", "agent"], registry=r
        )
        self.llm_seconds = Histogram(
            "audit_llm_request_seconds", "LLM call latency, retries included.",
            ["model"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.llm_in_flight = Gauge(
            "audit_llm_in_flight", "LLM requests currently in flight.", registry=r
        )
        self.llm_budget_remaining = Gauge(
            "audit_llm_budget_remaining_usd", "Budget left on the most recent budgeted client.",
            registry=r,
        )  # fmt: skip
        self.llm_unpriced = Counter(
            "audit_llm_unpriced_calls_total", "LLM calls with no known price and no provider cost.",
            ["model"], registry=r,
        )  # fmt: skip
        self.llm_escalations = Counter(
            "audit_llm_escalations_total", "Items escalated to the escalation model.",
            ["reason"], registry=r,
        )  # fmt: skip
        self.llm_cache_hits = Counter(
            "audit_llm_cache_hits_total", "LLM answers served from the response cache.",
            registry=r,
        )  # fmt: skip
        # State store
        self.state_ops = Counter(
            "audit_state_ops_total", "State-store operations by outcome.",
            ["op", "outcome"], registry=r,
        )  # fmt: skip
        self.state_seconds = Histogram(
            "audit_state_op_seconds", "State-store operation latency.",
            ["op"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.state_degraded = Gauge(
            "audit_state_degraded", "1 while a state store runs degraded (Redis unreachable).",
            registry=r,
        )  # fmt: skip
        # Warehouse
        self.warehouse_queries = Counter(
            "audit_warehouse_queries_total", "Warehouse statements by outcome.",
            ["backend", "outcome"], registry=r,
        )  # fmt: skip
        self.warehouse_seconds = Histogram(
            "audit_warehouse_query_seconds", "Warehouse statement latency.",
            ["backend"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.warehouse_rows = Counter(
            "audit_warehouse_rows_total", "Rows returned by warehouse queries.",
            ["backend"], registry=r,
        )  # fmt: skip


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
