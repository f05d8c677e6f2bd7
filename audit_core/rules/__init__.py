"""Audit rules as data: built-in ``.sql`` files plus the user's folders (``--rules DIR``,
``AUDIT_RULES_DIR``), each validated when it loads."""

from audit_core.rules._load import check_rule, load_rules, read_rule_file
from audit_core.rules._rule import FLAG_COLUMNS, RISK_LEVELS, RUN_PARAMS, Rule, parse_rule

__all__ = [
    "FLAG_COLUMNS",
    "RISK_LEVELS",
    "RUN_PARAMS",
    "Rule",
    "check_rule",
    "load_rules",
    "parse_rule",
    "read_rule_file",
]
