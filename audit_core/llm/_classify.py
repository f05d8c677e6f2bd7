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

A request that fails (budget, rate limit, a broken endpoint) costs only its own items:
they come back with ``label=None`` and the typed `LLMError` in ``error``, every other
item keeps its (paid) answer. Only programming errors (`ConfigError`) are raised.
An item's ``cost_usd`` is its share of the requests that answered it.

This module knows the client only as a ``complete`` callable: dependencies point from
the client down to here, never back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from audit_core.errors import ConfigError, LLMError, LLMResponseError
from audit_core.llm._types import LLMResponse, Prompt

__all__ = ["Classification", "Complete", "classify_items", "parse_answers", "response_format"]


class Complete(Protocol):
    """What classification needs from a client: `AsyncLLMClient.complete`."""

    async def __call__(
        self,
        prompt: Prompt,
        *,
        model: str | None = ...,
        agent_name: str = ...,
        temperature: float | None = ...,
        max_tokens: int | None = ...,
        response_format: Mapping[str, Any] | None = ...,
    ) -> LLMResponse: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Classification:
    """One item's answer. ``label`` is None only when no model gave a valid answer; then
    ``error`` says why (an `LLMResponseError` for invalid answers, or the request's error)."""

    label: str | None
    confidence: float | None
    rationale: str
    model: str
    cost_usd: Decimal
    escalated: bool = False
    escalation_reason: str | None = None
    cached: bool = False
    error: LLMError | None = None


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
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's limit
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
        if not isinstance(label, str) or label not in allowed:
            continue
        if not 0 <= index < n_items or not 0.0 <= confidence <= 1.0:
            continue
        out.setdefault(index, _Answer(str(label), confidence, str(answer.get("rationale") or "")))
    return out


async def classify_items(
    complete: Complete,
    items: Sequence[str | Mapping[str, Any]],
    labels: Sequence[str],
    *,
    instructions: str,
    agent_name: str,
    model: str,
    escalation_model: str,
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
    run = _Run(
        complete=complete,
        labels=list(labels),
        instructions=instructions,
        agent_name=agent_name,
        fmt=response_format(labels),
        max_tokens_per_item=max_tokens_per_item,
    )
    await _each_group(distinct, batch_size, lambda g: run.first_pass(g, model, min_confidence))
    hard = [t for t in distinct if t in run.escalate]
    await _each_group(hard, batch_size, lambda g: run.second_pass(g, escalation_model))
    return [run.final[t] for t in texts]


async def _each_group(
    texts: list[str], batch_size: int, work: Callable[[list[str]], Coroutine[Any, Any, None]]
) -> None:
    try:
        async with asyncio.TaskGroup() as tg:
            for start in range(0, len(texts), batch_size):
                tg.create_task(work(texts[start : start + batch_size]))
    except BaseExceptionGroup as eg:
        # Only programming errors get here (LLM errors are per item): raise the first.
        raise eg.exceptions[0] from None


def _failed(model: str, cost: Decimal, error: LLMError, **kw: Any) -> Classification:
    return Classification(
        label=None, confidence=None, rationale="", model=model, cost_usd=cost, error=error, **kw
    )


@dataclass(slots=True, kw_only=True)
class _Run:
    """One classification run: its settings and the answers so far."""

    complete: Complete
    labels: list[str]
    instructions: str
    agent_name: str
    fmt: dict[str, Any]
    max_tokens_per_item: int
    final: dict[str, Classification] = field(default_factory=dict)
    escalate: dict[str, str] = field(default_factory=dict)

    async def ask(self, group: list[str], use: str) -> tuple[dict[int, _Answer], LLMResponse]:
        response = await self.complete(
            _messages(self.instructions, self.labels, group),
            model=use,
            agent_name=self.agent_name,
            temperature=0.0,
            max_tokens=self.max_tokens_per_item * len(group) + 50,
            response_format=self.fmt,
        )
        return parse_answers(response.text, len(group), self.labels), response

    async def first_pass(self, group: list[str], cheap: str, min_confidence: float) -> None:
        try:
            answers, response = await self.ask(group, cheap)
        except LLMError as exc:
            for text in group:
                self.final[text] = _failed(cheap, Decimal(0), exc)
            return
        share = response.cost_usd / len(group)
        missing = [g for i, g in enumerate(group) if i not in answers]
        retry: dict[int, _Answer] = {}
        retry_share = Decimal(0)
        retry_error: LLMError | None = None
        if missing:  # re-ask only the items without a valid answer
            try:
                retry, again = await self.ask(missing, cheap)
                retry_share = again.cost_usd / len(missing)
            except LLMError as exc:
                retry_error = exc
        for i, text in enumerate(group):
            answer = answers.get(i)
            cost = share
            if answer is None:
                answer = retry.get(missing.index(text))
                cost += retry_share
            if answer is None and retry_error is not None:
                self.final[text] = _failed(cheap, cost, retry_error)
            elif answer is None:
                self.escalate[text] = "invalid"
                self.final[text] = _failed(cheap, cost, _invalid(cheap))
            else:
                low = answer.confidence < min_confidence
                if low:
                    self.escalate[text] = "low_confidence"
                self.final[text] = Classification(
                    label=answer.label,
                    confidence=answer.confidence,
                    rationale=answer.rationale,
                    model=response.model,
                    cost_usd=cost,
                    cached=response.cached and not low,
                )

    async def second_pass(self, group: list[str], strong: str) -> None:
        try:
            answers, response = await self.ask(group, strong)
        except LLMError as exc:
            for text in group:
                before = self.final[text]
                reason = self.escalate[text]
                self.final[text] = _failed(
                    strong, before.cost_usd, exc, escalated=True, escalation_reason=reason
                )
            return
        share = response.cost_usd / len(group)
        for i, text in enumerate(group):
            before = self.final[text]
            reason = self.escalate[text]
            answer = answers.get(i)
            cost = before.cost_usd + share
            if answer is None:
                error = _invalid(f"{before.model} or {response.model}")
                self.final[text] = _failed(
                    response.model, cost, error, escalated=True, escalation_reason=reason
                )
            else:
                self.final[text] = Classification(
                    label=answer.label,
                    confidence=answer.confidence,
                    rationale=answer.rationale,
                    model=response.model,
                    cost_usd=cost,
                    escalated=True,
                    escalation_reason=reason,
                    cached=response.cached,
                )


def _invalid(model: str) -> LLMResponseError:
    return LLMResponseError(f"no valid answer from {model}", model=model)


def _item_text(item: str | Mapping[str, Any]) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        return json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)
    raise ConfigError(f"items must be strings or mappings, got {type(item).__name__}")
