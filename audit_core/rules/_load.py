"""Finding, loading and checking rule files: the built-in set, then the user's folders."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from audit_core.db._flags import RESERVED_COLUMNS
from audit_core.errors import ConfigError, QueryError
from audit_core.rules._rule import FLAG_COLUMNS, RUN_PARAMS, Rule, parse_rule

__all__ = ["check_rule", "load_rules", "read_rule_file"]


def read_rule_file(path: Path) -> Rule:
    """Parse and check one rule file; `ConfigError` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read rule file: {exc}") from None
    rule = parse_rule(text, str(path))
    check_rule(rule)
    return rule


def _builtin() -> list[Rule]:
    folder = resources.files("audit_core.rules") / "builtin"
    rules = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            rule = parse_rule(entry.read_text(encoding="utf-8"), f"<builtin>/{entry.name}")
            check_rule(rule)
            rules.append(rule)
    return rules


def load_rules(folders: Iterable[str | Path] = (), *, builtin: bool = True) -> list[Rule]:
    """The built-in rules (unless ``builtin=False``), then every ``*.sql`` in ``folders``
    in order: a rule with the name of an earlier one replaces it (the override keeps the
    earlier one's place); a new name is added at the end. Each is checked as it loads."""
    by_name: dict[str, Rule] = {}
    if builtin:
        for rule in _builtin():
            by_name[rule.name] = rule
    for folder in folders:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise ConfigError(f"rules folder {path} does not exist or is not a folder")
        seen: dict[str, Path] = {}
        for file in sorted(path.glob("*.sql")):
            rule = read_rule_file(file)
            if rule.name in seen:
                raise ConfigError(
                    f"{file}: rule {rule.name!r} is also defined in {seen[rule.name]}"
                )
            seen[rule.name] = file
            by_name[rule.name] = rule
    return list(by_name.values())


def _line(rule: Rule, exc: QueryError) -> int:
    """The file line of a parse error the SQL layer reported as 'at line N'."""
    text = str(exc)
    marker = " at line "
    if marker in text:
        number = text.split(marker, 1)[1].split(",", 1)[0]
        if number.isdigit():
            return rule.sql_line + int(number) - 1
    return rule.sql_line


def check_rule(rule: Rule) -> None:
    """The SQL parses and runs locally, declared and used parameters match exactly, and
    the result has the columns a flag needs; else `ConfigError` naming ``file:line``."""
    from audit_core.warehouse._client import statement_kind
    from audit_core.warehouse._sql import foreign_parameters, output_columns, to_duckdb

    def refuse(line: int, message: str) -> ConfigError:
        return ConfigError(f"{rule.source}:{line}: rule {rule.name!r}: {message}")

    try:
        kind = statement_kind(rule.sql)
        prepared = to_duckdb(rule.sql)
        foreign = foreign_parameters(rule.sql)
        returned = output_columns(rule.sql)
    except QueryError as exc:
        detail = str(exc).split(": ", 1)[-1] if " at line " in str(exc) else str(exc)
        raise refuse(_line(rule, exc), detail) from None
    except RecursionError:
        raise refuse(rule.sql_line, "SQL is nested too deeply to check") from None
    if kind != "read":
        raise refuse(
            rule.sql_line,
            "a rule is one read-only query (SELECT or WITH ... SELECT); this SQL is "
            + ("several statements" if kind == "several" else "a write or not a query"),
        )
    if foreign:
        raise refuse(rule.sql_line, f"parameters are written :name, not {', '.join(foreign)}")
    used = set(prepared.params)
    declared = set(rule.params)
    undeclared = used - declared - RUN_PARAMS
    unused = declared - used
    if undeclared:
        raise ConfigError(
            f"{rule.source}:{rule.sql_line}: rule {rule.name!r} uses "
            f"{', '.join(':' + p for p in sorted(undeclared))} but does not declare it in "
            "'-- params:'"
        )
    if unused:
        raise ConfigError(
            f"{rule.source}:{rule.sql_line}: rule {rule.name!r} declares "
            f"{', '.join(sorted(unused))} in '-- params:' but its SQL never uses it"
        )
    columns = list(returned)
    reserved = [c for c in columns if c.lower() in RESERVED_COLUMNS]
    if reserved:
        raise ConfigError(
            f"{rule.source}:{rule.sql_line}: rule {rule.name!r} returns "
            f"{', '.join(reserved)}: the flag computes that column itself; rename it"
        )
    missing = [c for c in FLAG_COLUMNS if c not in columns]
    if missing:
        raise ConfigError(
            f"{rule.source}:{rule.sql_line}: rule {rule.name!r} must return the columns "
            f"{', '.join(FLAG_COLUMNS)}; missing {', '.join(missing)} "
            f"(it returns {', '.join(columns) or 'no named columns'})"
        )
