"""Metrics: one definition per registry, however many clients are built."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from audit_core import AsyncLLMClient, get_metrics


async def test_hundred_clients_share_one_registry() -> None:
    """Building 100 clients on one registry never raises Duplicated timeseries."""
    registry = CollectorRegistry()
    clients = [AsyncLLMClient("k", registry=registry, transport="httpx") for _ in range(100)]
    assert get_metrics(registry) is get_metrics(registry)
    for c in clients:
        await c.aclose()
    names = {m.name for m in registry.collect()}
    assert "audit_retries" in names
    assert "audit_llm_requests" in names
    assert all(n.startswith("audit_") for n in names)


def test_separate_registries_get_separate_metrics() -> None:
    """Another registry gets its own metric objects."""
    assert get_metrics(CollectorRegistry()) is not get_metrics(CollectorRegistry())


def test_every_declared_metric_is_defined() -> None:
    """The typed attributes of Metrics and the definitions table name the same metrics."""
    from audit_core.metrics import _DEFINITIONS, Metrics

    assert set(Metrics.__annotations__) == set(_DEFINITIONS)
    metrics = get_metrics(CollectorRegistry())
    for attribute in _DEFINITIONS:
        assert getattr(metrics, attribute) is not None
