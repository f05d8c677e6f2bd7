"""Batch classification with validated answers, one re-ask, and tiered escalation.

Flow for each distinct item (identical items are asked once and share the answer):

1. the default model answers, ``batch_size`` items per request, through structured
   output (a JSON schema whose ``label`` is an enum of the allowed labels) where the
   model supports it; every answer is validated locally regardless;
2. items with a missing or invalid answer are re-asked once, alone of the rest;
3. an item escalates to the escalation model when its answer is still invalid
   (``reason="invalid"``) or its confidence is under ``min_confidence``
   (``reason="low_confidence"``); each escalation is counted in
   ``audit_llm_escalations_total{reason}`` and marked on the result;
4. the escalation model's valid answer is final; if it too is invalid, the result has
   ``label=None`` and says why in ``error`` (never a made-up label).

An item's ``cost_usd`` is its share of the requests that answered it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from audit_core.errors import ConfigError

if TYPE_CHECKING:
    from audit_core.llm._client import AsyncLLMClient, LLMResponse


@dataclass(frozen=True, slots=True)
class Classification:
    """One item's answer. ``label`` is None only when no model gave a valid answer."""

    label: str | None
    confidence: float | None
    rationale: str
    model: str
    cost_usd: Decimal
    escalated: bool = False
    escalation_reason: str | None = None
    cached: bool = False
    error: str | None = None


@dataclass(slots=True)
class _Answer:
    label: str
    confidence: float
    rationale: str


def response_format(labels: Sequence[str]) -> dict[str, Any]:
    """The JSON schema that constrains a batch answer to ``labels``."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "classification",
            "strict": True,
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "required": ["answers"],
                "properties": {
                    "answers": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["id", "label", "confidence", "rationale"],
                            "properties": {
                                "id": {"type": "string"},
                                "label": {"type": "string", "enum": list(labels)},
                                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                                "rationale": {"type": "string"},
                            },
                        },
                    }
                },
            },
        },
    }


def _messages(
    instructions: str, labels: Sequence[str], items: Sequence[str]
) -> list[dict[str, str]]:
    system = (
        f"{instructions.strip()}\n\n"
        f"Classify every item into exactly one of these labels: {json.dumps(list(labels))}.\n"
        'Reply with JSON only: {"answers": [{"id": "<item id>", "label": "<label>", '
        '"confidence": <number 0..1>, "rationale": "<one short sentence>"}]}, '
        "one answer per item, using the item ids given."
    )
    payload = {"items": [{"id": str(i + 1), "text": text} for i, text in enumerate(items)]}
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": json.dumps(payload, ensure_ascii=False)},
    ]


def parse_answers(text: str, n_items: int, labels: Sequence[str]) -> dict[int, _Answer]:
    """Valid answers by item index; anything malformed is simply absent."""
    try:
        data = json.loads(text.strip().removeprefix("```json").removesuffix("```"))
    except ValueError:
        return {}
    answers = data.get("answers") if isinstance(data, dict) else data
    if not isinstance(answers, list):
        return {}
    out: dict[int, _Answer] = {}
    allowed = set(labels)
    for answer in answers:
        if not isinstance(answer, dict):
            continue
        try:
            index = int(str(answer.get("id"))) - 1
            confidence = float(answer.get("confidence"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        label = answer.get("label")
        if not 0 <= index < n_items or label not in allowed or not 0.0 <= confidence <= 1.0:
            continue
        out.setdefault(index, _Answer(str(label), confidence, str(answer.get("rationale") or "")))
    return out


async def classify(
    client: AsyncLLMClient,
    items: Sequence[str | Mapping[str, Any]],
    labels: Sequence[str],
    *,
    instructions: str,
    agent_name: str,
    model: str | None = None,
    escalation_model: str | None = None,
    batch_size: int = 10,
    min_confidence: float = 0.6,
    max_tokens_per_item: int = 120,
) -> list[Classification]:
    """One `Classification` per item, in order. See the module docstring for the flow."""
    if not labels or len(set(labels)) != len(labels):
        raise ConfigError("labels must be a non-empty list of distinct strings")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    texts = [_item_text(item) for item in items]
    distinct = list(dict.fromkeys(texts))
    cheap = model or client.default_model
    strong = escalation_model or client.escalation_model
    fmt = response_format(labels)
    final: dict[str, Classification] = {}
    escalate: dict[str, str] = {}

    async def ask(group: list[str], use: str) -> tuple[dict[int, _Answer], LLMResponse]:
        response = await client.complete(
            _messages(instructions, labels, group), model=use, agent_name=agent_name,
            temperature=0.0, max_tokens=max_tokens_per_item * len(group) + 50,
            response_format=fmt,
        )  # fmt: skip
        return parse_answers(response.text, len(group), labels), response

    async def first_pass(group: list[str]) -> None:
        answers, response = await ask(group, cheap)
        share = response.cost_usd / len(group)
        missing = [g for i, g in enumerate(group) if i not in answers]
        retry: dict[int, _Answer] = {}
        retry_share = Decimal(0)
        if missing:  # re-ask only the items without a valid answer
            retry, again = await ask(missing, cheap)
            retry_share = again.cost_usd / len(missing)
        for i, text in enumerate(group):
            answer = answers.get(i)
            cost = share
            if answer is None:
                j = missing.index(text)
                answer = retry.get(j)
                cost += retry_share
            if answer is None:
                escalate[text] = "invalid"
                final[text] = Classification(None, None, "", cheap, cost, error="invalid")
            elif answer.confidence < min_confidence:
                escalate[text] = "low_confidence"
                final[text] = Classification(
                    answer.label, answer.confidence, answer.rationale, response.model, cost
                )
            else:
                final[text] = Classification(
                    answer.label, answer.confidence, answer.rationale, response.model, cost,
                    cached=response.cached,
                )  # fmt: skip

    async def second_pass(group: list[str]) -> None:
        answers, response = await ask(group, strong)
        share = response.cost_usd / len(group)
        for i, text in enumerate(group):
            before = final[text]
            reason = escalate[text]
            client.count_escalation(reason)
            answer = answers.get(i)
            cost = before.cost_usd + share
            if answer is None:
                final[text] = Classification(
                    None, None, "", response.model, cost, True, reason,
                    error="no valid answer from the default or the escalation model",
                )  # fmt: skip
            else:
                final[text] = Classification(
                    answer.label, answer.confidence, answer.rationale, response.model, cost,
                    True, reason, response.cached,
                )  # fmt: skip

    async with asyncio.TaskGroup() as tg:
        for start in range(0, len(distinct), batch_size):
            tg.create_task(first_pass(distinct[start : start + batch_size]))
    hard = [t for t in distinct if t in escalate]
    if hard:
        async with asyncio.TaskGroup() as tg:
            for start in range(0, len(hard), batch_size):
                tg.create_task(second_pass(hard[start : start + batch_size]))
    return [final[t] for t in texts]


def _item_text(item: str | Mapping[str, Any]) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        return json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)
    raise ConfigError(f"items must be strings or mappings, got {type(item).__name__}")
