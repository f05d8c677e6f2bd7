"""The seed-era functions in audit_core.compat, on embedded defaults (no services)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from audit_core import ConfigError, QueryError, compat

_OURS = ("AUDIT_", "REDIS_", "OPENROUTER", "DATABRICKS", "ENVIRONMENT")


@pytest.fixture(autouse=True)
def _embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(_OURS):
            monkeypatch.delenv(key)


async def test_gold_tables_and_health() -> None:
    df = await compat.query_gold_tables(
        "SELECT count(*) AS n FROM gold.credit_cards WHERE status = :s", {"s": "frozen"}
    )
    assert int(df.n[0]) == 1
    assert await compat.check_databricks_health() is True
    assert await compat.check_redis_health() is True
    with pytest.raises(QueryError, match=r"gold\.nope"):
        await compat.query_gold_tables("SELECT * FROM gold.nope")


@pytest.mark.parametrize("name", ["gold.emails", "sample_emails", "sample_emails.json"])
async def test_mock_data_by_table_or_file_name(name: str) -> None:
    df = await compat.load_mock_data_from_json(name)
    assert len(df) == 6


async def test_mock_data_from_a_folder_with_an_odd_table_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest table name that needs quoting is quoted, never pasted raw."""
    (tmp_path / "odd.json").write_text(json.dumps([{"a": 1}, {"a": 2}]))
    (tmp_path / "manifest.json").write_text(
        json.dumps({"tables": {"gold.odd-name": {"file": "odd", "columns": {"a": "BIGINT"}}}})
    )
    monkeypatch.setenv("AUDIT_FIXTURES_DIR", str(tmp_path))
    df = await compat.load_mock_data_from_json("odd")
    assert df.a.tolist() == [1, 2]
    with pytest.raises(ConfigError, match="no fixture table 'nope'"):
        await compat.load_mock_data_from_json("nope")


async def test_state_round_trip() -> None:
    """Each call opens its own client; the embedded store is shared within the process."""
    assert await compat.save_workflow_state("run-c", {"a": 1}) is True
    assert await compat.restore_workflow_state("run-c") == {"a": 1}
    assert await compat.mark_audit_complete("run-c", {"n": 1}) is True
    state = await compat.restore_workflow_state("run-c")
    assert (state["a"], state["status"], state["summary"]) == (1, "completed", {"n": 1})
