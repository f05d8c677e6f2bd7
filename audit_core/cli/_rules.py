"""``audit-core rules list|check|show``: the rules a run would use, and why one is broken."""

from __future__ import annotations

import argparse
from pathlib import Path

from audit_core._settings import Settings
from audit_core.rules import Rule, load_rules, read_rule_file

__all__ = ["rule_folders", "rules_check", "rules_list", "rules_show"]


def rule_folders(args: argparse.Namespace, settings: Settings) -> list[Path]:
    """``--rules DIR`` options, else ``AUDIT_RULES_DIR`` (``os.pathsep``-separated)."""
    given: list[Path] = list(getattr(args, "rules", None) or [])
    return given or list(settings.rules_dirs)


def _origin(rule: Rule) -> str:
    return "built-in" if rule.source.startswith("<builtin>") else rule.source


async def rules_list(args: argparse.Namespace, settings: Settings) -> int:
    rules = load_rules(rule_folders(args, settings))
    width = max(len(r.name) for r in rules)
    for rule in rules:
        params = ", ".join(f"{k}={v}" for k, v in rule.params.items()) or "-"
        print(
            f"{rule.name:<{width}}  {rule.kind:<3}  {rule.severity:<8}  {rule.confidence!s:<5} "
            f" {params:<28} {_origin(rule)}"
        )
    return 0


async def rules_check(args: argparse.Namespace, settings: Settings) -> int:
    """Check every rule (or the files given); a broken one is a ConfigError naming its line."""
    if args.files:
        rules = [read_rule_file(Path(f)) for f in args.files]
    else:
        rules = load_rules(rule_folders(args, settings))
    for rule in rules:
        print(f"ok  {rule.name:<24} {rule.hash[:12]}  {_origin(rule)}")
    return 0


async def rules_show(args: argparse.Namespace, settings: Settings) -> int:
    from audit_core.errors import ConfigError

    rules = {r.name: r for r in load_rules(rule_folders(args, settings))}
    rule = rules.get(args.name)
    if rule is None:
        raise ConfigError(f"no rule named {args.name!r}; known: {', '.join(rules)}")
    print(f"name          {rule.name}  ({rule.kind}, {_origin(rule)})")
    print(f"title         {rule.title}")
    print(f"severity      {rule.severity}, confidence {rule.confidence}")
    if rule.description:
        print(f"description   {rule.description}")
    for key, value in rule.params.items():
        print(f"param         {key} = {value}")
    if rule.kind == "llm":
        print(f"labels        {', '.join(rule.labels)}")
        by_label = ", ".join(f"{k}={v}" for k, v in rule.severity_by_label.items())
        print(f"severities    {by_label}")
        print(f"instructions  {rule.instructions}")
    print(f"hash          {rule.hash}")
    print()
    print(rule.sql)
    return 0
