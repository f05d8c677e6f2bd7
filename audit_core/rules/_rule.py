"""Audit rules as data: ``.sql`` files with a small header, validated when they load.

```sql
-- name: round_amount
-- severity: MEDIUM                  (INFO, LOW, MEDIUM, HIGH or CRITICAL)
-- confidence: 0.6                   (0 to 1)
-- title: Round amount over the threshold
-- description: free text; a line that starts with "--   " continues the field above
-- params: round_threshold=1000      (name=default, comma-separated; JSON values)
SELECT transaction_id, amount, concat('round amount ', amount) AS detail
FROM gold.recent_transactions
WHERE transaction_date > :since AND amount >= :round_threshold AND amount % 100 = 0
```

The SQL is Databricks SQL. It returns one row per finding with at least
``transaction_id``, ``amount`` and ``detail`` (the flag's explanation); ``vendor_name``,
``department`` and ``transaction_date``, when returned, are kept on the flag for review
filters and the report. ``:since`` (the
start of the audited window) is supplied by the run; every other ``:name`` must be
declared in ``params`` and every declared parameter must be used. A rule of
``kind: llm`` selects the ambiguous items for the LLM stage and adds ``labels``,
``instructions`` and ``severity_by_label``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from audit_core.db.schemas import RISK_LEVELS
from audit_core.errors import ConfigError

__all__ = [
    "FLAG_COLUMNS",
    "RISK_LEVELS",
    "RUN_PARAMS",
    "Rule",
    "parse_rule",
]

# Supplied by the run, never declared by a rule: the window's start, and the three the
# flag-id wrapper adds (`audit_core.db._flags.flag_sql`).
RUN_PARAMS = frozenset({"since", "flag_run", "flag_rule", "flag_sep"})
FLAG_COLUMNS = ("transaction_id", "amount", "detail")
_FIELDS = frozenset(
    {
        "name",
        "kind",
        "severity",
        "confidence",
        "title",
        "description",
        "params",
        "labels",
        "instructions",
        "severity_by_label",
    }
)
_REQUIRED = ("name", "severity", "confidence", "title")
_LLM_REQUIRED = ("labels", "instructions", "severity_by_label")


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One audit rule: what it looks for (``sql``) and how its findings are flagged."""

    name: str
    severity: str
    confidence: Decimal
    title: str
    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    kind: Literal["sql", "llm"] = "sql"
    labels: tuple[str, ...] = ()
    instructions: str = ""
    severity_by_label: Mapping[str, str] = field(default_factory=dict)
    source: str = "<string>"
    sql_line: int = 1  # the line of `source` where the SQL starts (for error messages)

    @property
    def hash(self) -> str:
        """SHA-256 of everything that changes what the rule finds (part of a run's checkpoint)."""
        data = {
            "name": self.name,
            "kind": self.kind,
            "severity": self.severity,
            "confidence": str(self.confidence),
            "title": self.title,
            "sql": self.sql,
            "params": {k: _jsonable(v) for k, v in sorted(self.params.items())},
            "labels": list(self.labels),
            "instructions": self.instructions,
            "severity_by_label": dict(sorted(self.severity_by_label.items())),
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def bind(self, overrides: Mapping[str, Any] | None = None, **run: Any) -> dict[str, Any]:
        """The parameter values for one execution: defaults, then ``overrides``, then the
        run's own (``since``). An override for a parameter the rule does not declare is a
        `ConfigError`."""
        unknown = set(overrides or {}) - set(self.params)
        if unknown:
            raise ConfigError(
                f"rule {self.name!r} ({self.source}) has no parameter "
                f"{', '.join(sorted(unknown))}; it declares {', '.join(self.params) or 'none'}"
            )
        return {**self.params, **(overrides or {}), **run}


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _error(source: str, line: int, message: str) -> ConfigError:
    return ConfigError(f"{source}:{line}: {message}")


def _header(lines: list[str], source: str) -> tuple[dict[str, tuple[int, str]], int]:
    """The ``-- key: value`` fields (with their line numbers) and the first SQL line."""
    fields: dict[str, tuple[int, str]] = {}
    last: str | None = None
    index = 0
    for index, raw in enumerate(lines):
        line = raw.rstrip()
        if not line.strip():
            continue
        if not line.startswith("--"):
            return fields, index
        body = line[2:]
        if body.startswith("   ") and last is not None:  # a continuation line
            number, value = fields[last]
            fields[last] = (number, f"{value} {body.strip()}".strip())
            continue
        key, sep, value = body.strip().partition(":")
        key = key.strip().lower()
        if not sep or not key.replace("_", "").isalnum():
            raise _error(source, index + 1, f"expected '-- key: value', got {line.strip()!r}")
        if key not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise _error(source, index + 1, f"unknown header field {key!r} (known: {known})")
        if key in fields:
            raise _error(source, index + 1, f"header field {key!r} given twice")
        fields[key] = (index + 1, value.strip())
        last = key
    return fields, len(lines)


def _pairs(text: str, source: str, line: int, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise _error(source, line, f"{what} must be name=value pairs, got {item!r}")
        if name in out:
            raise _error(source, line, f"{what}: {name!r} is given twice")
        out[name] = value.strip()
    return out


def _param_value(raw: str) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(value, float):  # money and thresholds stay exact
        return Decimal(raw)
    return value


def _level(value: str, source: str, line: int, what: str) -> str:
    level = value.strip().upper()
    if level not in RISK_LEVELS:
        raise _error(source, line, f"{what} must be one of {', '.join(RISK_LEVELS)}, got {value!r}")
    return level


def parse_rule(text: str, source: str = "<string>") -> Rule:
    """A `Rule` from the text of a rule file; `ConfigError` naming ``source:line`` if the
    header is malformed. (The SQL itself is checked by `audit_core.rules.check_rule`.)"""
    lines = text.splitlines()
    fields, first_sql = _header(lines, source)
    sql = "\n".join(lines[first_sql:]).strip().rstrip(";").strip()
    end = len(lines) or 1
    for key in _REQUIRED:
        if key not in fields:
            raise _error(source, 1, f"missing header field '-- {key}:'")
    if not sql:
        raise _error(source, end, "no SQL after the header")

    def get(key: str) -> tuple[int, str]:
        return fields.get(key, (1, ""))

    line, name = get("name")
    if not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise _error(source, line, f"rule name must be letters, digits and _, got {name!r}")
    line, kind = get("kind")
    kind = kind or "sql"
    if kind not in ("sql", "llm"):
        raise _error(source, line, f"kind must be 'sql' or 'llm', got {kind!r}")
    line, raw_conf = get("confidence")
    try:
        confidence = Decimal(raw_conf)
    except InvalidOperation:
        raise _error(source, line, f"confidence must be a number, got {raw_conf!r}") from None
    if not confidence.is_finite() or not (0 <= confidence <= 1):
        raise _error(source, line, f"confidence must be between 0 and 1, got {raw_conf}")
    line, raw_params = get("params")
    params = {k: _param_value(v) for k, v in _pairs(raw_params, source, line, "params").items()}
    clash = RUN_PARAMS & set(params)
    if clash:
        raise _error(source, line, f"{', '.join(sorted(clash))} is supplied by the run")
    extra: dict[str, Any] = {}
    if kind == "llm":
        for key in _LLM_REQUIRED:
            if key not in fields:
                raise _error(source, 1, f"an llm rule needs '-- {key}:'")
        line, raw_labels = get("labels")
        labels = tuple(filter(None, (s.strip() for s in raw_labels.split(","))))
        line, raw_map = get("severity_by_label")
        by_label = {
            k: _level(v, source, line, f"severity for {k!r}")
            for k, v in _pairs(raw_map, source, line, "severity_by_label").items()
        }
        if set(by_label) != set(labels):
            raise _error(
                source, line, "severity_by_label must give a severity for each label, exactly"
            )
        extra = {
            "labels": labels,
            "severity_by_label": by_label,
            "instructions": get("instructions")[1],
        }
    else:
        stray = [k for k in _LLM_REQUIRED if k in fields]
        if stray:
            raise _error(source, fields[stray[0]][0], f"{stray[0]!r} is only for kind: llm")
    line, severity = get("severity")
    return Rule(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        severity=_level(severity, source, line, "severity"),
        confidence=confidence,
        title=get("title")[1],
        description=get("description")[1],
        sql=sql,
        params=params,
        source=source,
        sql_line=first_sql + 1,
        **extra,
    )
