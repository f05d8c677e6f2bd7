"""The LLM client, its pricing table and its cost ledger."""

from audit_core.llm._cache import MemoryCache, ResponseCache, StateStoreCache, cache_key
from audit_core.llm._classify import Classification
from audit_core.llm._client import AsyncLLMClient, LLMClientOptions
from audit_core.llm._costs import CostLedger
from audit_core.llm._pricing import BUILTIN_PRICES, ModelPrice, calculate_cost
from audit_core.llm._stream import LLMStream
from audit_core.llm._types import LLMResponse, Usage

__all__ = [
    "BUILTIN_PRICES",
    "AsyncLLMClient",
    "Classification",
    "CostLedger",
    "LLMClientOptions",
    "LLMResponse",
    "LLMStream",
    "MemoryCache",
    "ModelPrice",
    "ResponseCache",
    "StateStoreCache",
    "Usage",
    "cache_key",
    "calculate_cost",
]
