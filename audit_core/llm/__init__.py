"""The LLM client, its pricing table and its cost ledger."""

from audit_core.llm._client import AsyncLLMClient, LLMResponse, Usage
from audit_core.llm._costs import CostLedger
from audit_core.llm._pricing import BUILTIN_PRICES, ModelPrice, calculate_cost

__all__ = [
    "BUILTIN_PRICES",
    "AsyncLLMClient",
    "CostLedger",
    "LLMResponse",
    "ModelPrice",
    "Usage",
    "calculate_cost",
]
