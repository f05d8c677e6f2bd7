"""``audit-core demo --llm simulated``: the LLM stage against a loopback fake model.

The fake is `audit_core.testing.FakeOpenRouter` with a deterministic responder that
answers the classification prompt from the transaction text alone. It exists so the 3%
path (batching, validated answers, escalation of low-confidence answers, cost
accounting) can be seen and tested without a key; everything it produces is labelled
"simulated".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["SIMULATED_KEY", "simulated_answer"]

SIMULATED_KEY = "simulated-no-real-key"
_PERSONAL = ("netflix", "spotify", "gym", "fitness", "doordash", "uber eats", "wine", "spa")
_SUSPICIOUS = ("unknown", "llc", "paypal", "crypto", "gift card", "wire")


def _label(text: str) -> tuple[str, float]:
    lowered = text.lower()
    if any(word in lowered for word in _SUSPICIOUS):
        return "suspicious", 0.9
    if any(word in lowered for word in _PERSONAL):
        return "personal", 0.8
    # An unfamiliar vendor with nothing to go on: a low-confidence answer, which the
    # classifier escalates to the escalation model (answered with more confidence).
    return "business", 0.55


def simulated_answer(body: Mapping[str, Any]) -> str:
    """The fake model's reply to one classification request (a JSON object of answers)."""
    messages = body.get("messages") or []
    try:
        items = json.loads(messages[-1]["content"])["items"]
    except (KeyError, IndexError, TypeError, ValueError):
        return json.dumps({"answers": []})
    escalation = "haiku" in str(body.get("model", "")) or "claude" in str(body.get("model", ""))
    answers = []
    for item in items:
        label, confidence = _label(str(item.get("text", "")))
        if escalation:
            confidence = max(confidence, 0.85)
        answers.append(
            {
                "id": item.get("id"),
                "label": label,
                "confidence": confidence,
                "rationale": f"simulated: judged {label} from the vendor and description",
            }
        )
    return json.dumps({"answers": answers})
