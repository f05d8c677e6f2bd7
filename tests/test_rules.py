"""Rules as data: the built-in files, a user's folder, and errors that name the line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from audit_core import ConfigError, DatabricksClient
from audit_core.rules import FLAG_COLUMNS, load_rules, parse_rule, read_rule_file

BUILTIN = {
    "card_bank_mismatch": 1,
    "duplicate_charge": 1,
    "round_amount": 4,
    "split_purchase": 3,
    "weekend_spend": 2,
}
CUSTOM = """\
-- name: big_ticket
-- severity: CRITICAL
-- confidence: 0.7
-- title: Very large charge
-- description: anything over the limit
--   (a continuation line)
-- params: limit=4000
SELECT transaction_id, amount, concat('over ', CAST(:limit AS STRING)) AS detail
FROM gold.recent_transactions
WHERE transaction_date > :since AND amount > :limit
"""


def test_builtin_rules_load_and_are_valid() -> None:
    """The shipped rules load from package data, with their parameters typed."""
    rules = {r.name: r for r in load_rules()}
    assert set(rules) == {*BUILTIN, "unknown_vendor"}
    assert rules["round_amount"].params == {"round_threshold": 1000}
    assert rules["split_purchase"].params == {"near_limit_ratio": Decimal("0.9")}
    assert rules["unknown_vendor"].kind == "llm"
    assert rules["unknown_vendor"].labels == ("business", "personal", "suspicious")
    assert rules["duplicate_charge"].description.startswith("The same card charged")


async def test_builtin_rules_find_what_the_demo_expects() -> None:
    """Each built-in SQL rule, bound and run on the shipped fixtures, finds its flags."""
    async with DatabricksClient.local() as wh:
        since = await wh.get_last_audit_timestamp()
        found = {}
        for rule in load_rules():
            if rule.kind == "sql":
                table = await wh.query_arrow(rule.sql, rule.bind(since=since))
                assert set(FLAG_COLUMNS) <= set(table.column_names)
                found[rule.name] = table.num_rows
    assert found == BUILTIN


async def test_a_custom_rule_in_a_folder_is_picked_up_and_runs(tmp_path: Path) -> None:
    """A user's .sql file joins the built-ins, validated, and produces flags."""
    (tmp_path / "big.sql").write_text(CUSTOM)
    rules = load_rules([tmp_path])
    assert [r.name for r in rules][-1] == "big_ticket"
    rule = rules[-1]
    assert rule.severity == "CRITICAL"
    assert rule.description == "anything over the limit (a continuation line)"
    async with DatabricksClient.local() as wh:
        since = await wh.get_last_audit_timestamp()
        table = await wh.query_arrow(rule.sql, rule.bind(since=since))
    assert table.num_rows >= 1
    assert all(a > 4000 for a in table.column("amount").to_pylist())


def test_a_user_rule_overrides_a_builtin_in_place(tmp_path: Path) -> None:
    """Same name as a built-in: the user's version replaces it, same position."""
    text = CUSTOM.replace("big_ticket", "round_amount")
    (tmp_path / "mine.sql").write_text(text)
    before = [r.name for r in load_rules()]
    after = load_rules([tmp_path])
    assert [r.name for r in after] == before
    assert next(r for r in after if r.name == "round_amount").severity == "CRITICAL"


def test_parameter_overrides_must_name_declared_parameters() -> None:
    rule = parse_rule(CUSTOM, "big.sql")
    assert rule.bind({"limit": 10}, since="x") == {"limit": 10, "since": "x"}
    with pytest.raises(ConfigError, match="has no parameter limt"):
        rule.bind({"limt": 10})


def test_the_hash_changes_with_anything_that_changes_the_findings() -> None:
    base = parse_rule(CUSTOM)
    assert base.hash == parse_rule(CUSTOM).hash
    for old, new in [("4000", "5000"), ("> :limit\n", ">= :limit\n"), ("0.7", "0.8")]:
        assert parse_rule(CUSTOM.replace(old, new)).hash != base.hash, old


BROKEN = [
    ("-- name: x\n-- colour: red\n", 2, "unknown header field 'colour'"),
    (CUSTOM.replace("-- severity: CRITICAL", "-- severity: SEVERE"), 2, "severity must be one"),
    (CUSTOM.replace("0.7", "1.5"), 3, "between 0 and 1"),
    (CUSTOM.replace("-- title: Very large charge\n", ""), 1, "missing header field '-- title:'"),
    (CUSTOM.replace(":since AND amount", ":since AND AND amount"), 10, "rule 'big_ticket'"),
    (CUSTOM.replace("-- params: limit=4000", "-- params: limit=4000, floor=1"), 8, "floor"),
    (CUSTOM.replace("-- params: limit=4000", "-- params: lim=4000"), 8, "does not declare"),
    (CUSTOM.replace(" AS detail", " AS note"), 8, "missing detail"),
    (CUSTOM.replace("-- params: limit=4000", "-- params: since=1"), 7, "supplied by the run"),
    (CUSTOM.replace("-- name: big_ticket", "-- name: big_ticket\n-- labels: a"), 2, "only for"),
    (CUSTOM.replace("-- name: big_ticket", "-- name: big_ticket\n-- kind: llm"), 1, "labels"),
]


@pytest.mark.parametrize(("text", "line", "message"), BROKEN)
def test_a_broken_rule_file_names_its_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "broken.sql"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        read_rule_file(path)
    assert str(info.value).startswith(f"{path}:{line}: "), str(info.value)


def test_a_folder_with_two_rules_of_one_name_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text(CUSTOM)
    (tmp_path / "b.sql").write_text(CUSTOM)
    with pytest.raises(ConfigError, match="also defined in"):
        load_rules([tmp_path])


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_rules([tmp_path / "nope"])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_a_rule_or_a_config_error(text: str) -> None:
    """Whatever a rule file holds, loading it never raises anything but ConfigError."""
    try:
        rule = parse_rule(text, "fuzz.sql")
    except ConfigError:
        return
    assert rule.name
    assert rule.sql
