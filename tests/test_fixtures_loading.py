"""User fixtures load as they are, or are refused with an error naming file and column."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st
from prometheus_client import CollectorRegistry

from audit_core import ConfigError, DatabricksClient
from audit_core.fixtures import default_dir, infer_column

# The seed's own sample files: their columns, not the shipped manifest's.
ORIGINAL_TRANSACTIONS = [
    {
        "txn_id": "T-1001",
        "vendor": "Amazon Web Services",
        "amount": 1250.0,
        "date": "2025-01-15",
        "mcc": "4816",
        "card_last4": "0042",
        "posted_at": "2025-01-15T14:32:00Z",
        "is_recurring": True,
        "quantity": 3,
    },
    {
        "txn_id": "T-1002",
        "vendor": "Unknown Vendor LLC",
        "amount": 5000,
        "date": "2025-01-16",
        "mcc": None,
        "card_last4": "0007",
        "posted_at": "2025-01-16T09:15:00+02:00",
        "is_recurring": False,
        "quantity": 1,
    },
    {
        "txn_id": "T-1003",
        "vendor": "Delta Air Lines",
        "amount": 612.4,
        "date": "2025-01-17",
        "mcc": "3058",
        "card_last4": "1234",
        "posted_at": "2025-01-17 08:00:00",
        "is_recurring": None,
        "quantity": 2,
    },
]
ORIGINAL_EMAILS = [
    {"email_id": "E1", "domain": "aws.amazon.com", "received": "2025-01-15T15:00:00Z"},
    {"email_id": "E2", "domain": "unknown-llc.biz", "received": "2025-01-16T10:00:00Z"},
]


def write_json(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path


@pytest.fixture
def original(tmp_path: Path) -> Path:
    """A folder of seed-style sample files and no manifest."""
    write_json(tmp_path / "sample_transactions.json", ORIGINAL_TRANSACTIONS)
    write_json(tmp_path / "sample_emails.json", ORIGINAL_EMAILS)
    return tmp_path


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A copy of the shipped fixtures, manifest included, to break one piece of."""
    for f in default_dir().iterdir():
        shutil.copy(f, tmp_path)
    return tmp_path


@pytest.fixture
async def open_client() -> AsyncIterator[list[DatabricksClient]]:
    """Clients a test makes are closed even when the test fails."""
    made: list[DatabricksClient] = []
    yield made
    for client in made:
        await client.aclose()


async def load(folder: Path, made: list[DatabricksClient]) -> DatabricksClient:
    client = DatabricksClient.local(folder, registry=CollectorRegistry())
    made.append(client)
    await client.query_arrow("SELECT 1")  # loads the fixtures
    return client


async def test_original_sample_files_load_without_a_manifest(
    original: Path, open_client: list[DatabricksClient]
) -> None:
    """The files' own columns come through with values, not as NULL columns."""
    wh = await load(original, open_client)
    df = await wh.query("SELECT txn_id, vendor, date FROM gold.recent_transactions ORDER BY txn_id")
    assert df.to_dict("records") == [
        {"txn_id": "T-1001", "vendor": "Amazon Web Services", "date": date(2025, 1, 15)},
        {"txn_id": "T-1002", "vendor": "Unknown Vendor LLC", "date": date(2025, 1, 16)},
        {"txn_id": "T-1003", "vendor": "Delta Air Lines", "date": date(2025, 1, 17)},
    ]
    emails = await wh.query_arrow("SELECT domain FROM gold.emails ORDER BY email_id")
    assert emails.column("domain").to_pylist() == ["aws.amazon.com", "unknown-llc.biz"]


async def test_without_a_manifest_types_are_inferred_per_column(
    original: Path, open_client: list[DatabricksClient]
) -> None:
    """Codes stay strings, ISO timestamps become UTC timestamps, numbers keep JSON's type."""
    wh = await load(original, open_client)
    table = await wh.query_arrow("SELECT * FROM gold.recent_transactions ORDER BY txn_id")
    types = {f.name: str(f.type) for f in table.schema}
    assert types == {
        "txn_id": "string",
        "vendor": "string",
        "amount": "double",
        "date": "date32[day]",
        "mcc": "string",
        "card_last4": "string",
        "posted_at": "timestamp[us, tz=UTC]",
        "is_recurring": "bool",
        "quantity": "int64",
    }
    declared = await wh.query_arrow("SELECT CAST('2025-01-01' AS TIMESTAMP) AS t")
    assert types["posted_at"] == str(declared.schema.field("t").type)  # a Databricks TIMESTAMP
    assert table.column("card_last4").to_pylist() == ["0042", "0007", "1234"]
    assert table.column("posted_at").to_pylist() == [
        datetime(2025, 1, 15, 14, 32, tzinfo=UTC),
        datetime(2025, 1, 16, 7, 15, tzinfo=UTC),
        datetime(2025, 1, 17, 8, 0, tzinfo=UTC),
    ]


async def test_parquet_without_a_manifest_keeps_its_own_types(
    tmp_path: Path, open_client: list[DatabricksClient]
) -> None:
    pq.write_table(
        pa.table({"txn_id": ["a", "b"], "cents": pa.array([1, 2], pa.int32())}),
        tmp_path / "sample_transactions.parquet",
    )
    wh = await load(tmp_path, open_client)
    table = await wh.query_arrow("SELECT * FROM gold.recent_transactions")
    assert str(table.schema) == "txn_id: string\ncents: int32"


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([None, None], "string"),
        (["4816", "0042", None], "string"),
        (["2025-01-01", "2025-13-01"], "string"),  # looks like a date, is not one
        (["2025-01-01", "2025-01-02T10:00:00Z"], "timestamp[us, tz=UTC]"),
        ([1, "x"], "string"),
        ([1, 2.5], "double"),
        ([2**70], "string"),  # beyond BIGINT: kept exact as text
        ([{"a": 1}, {"a": 2}], "struct<a: int64>"),
        ([[1, 2], []], "list<item: int64>"),
    ],
)
def test_infer_column(values: list[Any], kind: str) -> None:
    assert str(infer_column(values).type) == kind


async def test_file_column_missing_from_the_manifest_is_a_config_error(
    shipped: Path, open_client: list[DatabricksClient]
) -> None:
    rows = json.loads((shipped / "sample_emails.json").read_text())
    write_json(shipped / "sample_emails.json", [{**r, "spam_score": 0.1} for r in rows])
    with pytest.raises(ConfigError, match=r"sample_emails\.json.*gold\.emails") as info:
        await load(shipped, open_client)
    assert "spam_score in the file but not in the manifest" in str(info.value)


async def test_declared_column_missing_from_the_file_is_a_config_error(
    shipped: Path, open_client: list[DatabricksClient]
) -> None:
    rows = json.loads((shipped / "sample_emails.json").read_text())
    write_json(shipped / "sample_emails.json", [{"email_id": r["email_id"]} for r in rows])
    with pytest.raises(ConfigError, match=r"sample_emails\.json.*gold\.emails") as info:
        await load(shipped, open_client)
    assert "has_attachment" in str(info.value)
    assert "in the manifest but not in the file" in str(info.value)


async def test_parquet_columns_are_checked_against_the_manifest(
    shipped: Path, open_client: list[DatabricksClient]
) -> None:
    (shipped / "sample_bank_accounts.json").unlink()
    pq.write_table(pa.table({"account_id": ["A"]}), shipped / "sample_bank_accounts.parquet")
    with pytest.raises(ConfigError, match=r"bank_name.*in the manifest but not in the file"):
        await load(shipped, open_client)


@pytest.mark.parametrize("manifest", [True, False])
async def test_truncated_json_names_file_and_position(
    shipped: Path, open_client: list[DatabricksClient], manifest: bool
) -> None:
    """An export cut off after a whole record once loaded that record silently."""
    if not manifest:
        (shipped / "manifest.json").unlink()
    text = (shipped / "sample_transactions.json").read_text()
    cut = text.index("},") + 2  # after the first complete record
    (shipped / "sample_transactions.json").write_text(text[:cut])
    with pytest.raises(ConfigError, match=r"sample_transactions\.json is not valid JSON at line"):
        await load(shipped, open_client)


async def test_truncated_ndjson_names_the_line(
    shipped: Path, open_client: list[DatabricksClient]
) -> None:
    rows = json.loads((shipped / "sample_emails.json").read_text())
    (shipped / "sample_emails.json").unlink()
    lines = [json.dumps(r) for r in rows]
    lines[-1] = lines[-1][:20]
    (shipped / "sample_emails.ndjson").write_text("\n".join(lines))
    with pytest.raises(ConfigError, match=rf"sample_emails\.ndjson .* at line {len(lines)},"):
        await load(shipped, open_client)


@pytest.mark.parametrize("content", ["", "[]", "  \n"])
async def test_empty_file_is_an_error_unless_the_manifest_allows_it(
    shipped: Path, open_client: list[DatabricksClient], content: str
) -> None:
    (shipped / "sample_emails.json").write_text(content)
    with pytest.raises(
        ConfigError, match=r"sample_emails\.json for table gold\.emails has no rows"
    ):
        await load(shipped, open_client)
    manifest = json.loads((shipped / "manifest.json").read_text())
    manifest["tables"]["gold.emails"]["allow_empty"] = True
    (shipped / "manifest.json").write_text(json.dumps(manifest))
    wh = await load(shipped, open_client)
    table = await wh.query_arrow("SELECT * FROM gold.emails")
    assert table.num_rows == 0
    assert str(table.schema.field("invoice_amount").type) == "decimal128(18, 2)"


async def test_manifest_table_names_are_quoted_not_pasted(
    tmp_path: Path, open_client: list[DatabricksClient]
) -> None:
    """A hostile table name becomes an odd table name, never a second statement."""
    name = 'gold.x" AS SELECT 1; DROP TABLE keep; --'
    manifest = {
        "tables": {
            "keep": {"file": "keep", "columns": {"id": "INT"}},
            name: {"file": "odd", "columns": {"it's": "STRING"}},
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    write_json(tmp_path / "keep.json", [{"id": 1}])
    write_json(tmp_path / "odd.json", [{"it's": "v"}])
    wh = await load(tmp_path, open_client)
    assert (await wh.query("SELECT id FROM keep")).id.tolist() == [1]
    tables = await wh.known_tables()
    assert name in tables


@pytest.mark.parametrize(
    ("table", "spec", "message"),
    [
        ("a.b.c", {"file": "f", "columns": {}}, "must be 'table' or 'schema.table'"),
        ("gold.t", {"file": "../../etc/passwd", "columns": {}}, "must be a file stem"),
        ("gold.t", {"file": "f", "columns": {"c": "NOT A TYPE"}}, "unknown type"),
        ("gold.t", {"file": "f", "columns": {}, "allow_empty": "yes"}, "allow_empty"),
    ],
)
async def test_invalid_manifest_is_a_config_error(
    tmp_path: Path, open_client: list[DatabricksClient], table: str, spec: Any, message: str
) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"tables": {table: spec}}))
    with pytest.raises(ConfigError, match=message):
        await load(tmp_path, open_client)


def test_fixtures_dir_names_the_folder_the_tables_come_from(original: Path) -> None:
    """Public, so compat helpers need not read the backend; None for a results database."""
    assert DatabricksClient.local(original).fixtures_dir == original
    assert DatabricksClient.local().fixtures_dir == default_dir()
    assert DatabricksClient.local(load_fixtures=False).fixtures_dir is None


async def test_a_value_that_does_not_fit_its_declared_type_names_file_and_table(
    shipped: Path, open_client: list[DatabricksClient]
) -> None:
    rows = json.loads((shipped / "sample_emails.json").read_text())
    rows[1]["invoice_amount"] = "twelve dollars"
    write_json(shipped / "sample_emails.json", rows)
    with pytest.raises(ConfigError, match=r"sample_emails\.json for table gold\.emails") as info:
        await load(shipped, open_client)
    assert "twelve dollars" in str(info.value)  # fixture data, not a secret: shown


def test_naive_timestamps_are_utc_whatever_the_machine_zone(shipped: Path) -> None:
    """In the fixture files and in query literals, on every worker's cursor (the zone was
    set on the loading connection only, so workers used the machine's)."""
    rows = json.loads((shipped / "sample_emails.json").read_text())
    rows[0]["received_at"] = "2025-02-03T14:32:00"
    write_json(shipped / "sample_emails.json", rows)
    code = f"""
import asyncio
from audit_core import DatabricksClient

async def main():
    async with DatabricksClient.local({str(shipped)!r}) as wh:
        t = await wh.query_arrow(
            "SELECT received_at, received_at = TIMESTAMP '2025-02-03 14:32:00' AS same "
            "FROM gold.emails WHERE email_id = :id", {{"id": {rows[0]["email_id"]!r}}}
        )
    print(t.column(0)[0].as_py().isoformat(), t.column(1)[0].as_py())

asyncio.run(main())
"""
    env = {**os.environ, "TZ": "America/New_York"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2025-02-03T14:32:00+00:00", "True"]


@settings(deadline=None)  # a loaded machine is no reason to fail
@given(st.lists(st.one_of(st.none(), st.text(alphabet="0123456789", min_size=1)), min_size=1))
def test_digit_codes_stay_exact_strings(values: list[str | None]) -> None:
    """A code like "0042" is never a number, whatever else is in its column."""
    column = infer_column(values)
    assert str(column.type) == "string"
    assert column.to_pylist() == values


@settings(deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.datetimes(
                min_value=datetime(1900, 1, 1),
                max_value=datetime(2200, 1, 1),
                timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), None]),
            ),
        ),
        min_size=1,
    ).filter(lambda v: any(x is not None for x in v))
)
def test_iso_timestamps_become_the_same_instants_in_utc(values: list[datetime | None]) -> None:
    text = [None if v is None else v.isoformat() for v in values]
    column = infer_column(text)
    assert str(column.type) == "timestamp[us, tz=UTC]"
    as_utc = [None if v is None else (v if v.tzinfo else v.replace(tzinfo=UTC)) for v in values]
    assert column.to_pylist() == as_utc
