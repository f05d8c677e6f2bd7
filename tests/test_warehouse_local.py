"""The local backend runs Databricks-dialect SQL for real on DuckDB over the fixtures.

Expected answers are computed independently with pandas from the fixture JSON files,
so a query that ignored WHERE or GROUP BY (as the original mock adapter did) fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from audit_core import ConfigError, DatabricksClient, QueryError
from audit_core.fixtures import default_dir
from audit_core.warehouse._local import LocalBackend

FIXTURES = default_dir()


def _frame(name: str) -> pd.DataFrame:
    rows = json.loads((FIXTURES / f"sample_{name}.json").read_text())
    df = pd.DataFrame(rows)
    for col in df.columns:
        if col in ("amount", "approval_limit", "invoice_amount", "current_balance"):
            df[col] = df[col].map(lambda v: None if v is None else Decimal(v))
        if col in ("transaction_date", "received_at", "completed_at"):
            df[col] = pd.to_datetime(df[col], utc=True)
    return df


TX = _frame("transactions")
CARDS = _frame("credit_cards")
EMAILS = _frame("emails")
RUNS = _frame("workflow_state")


@pytest.fixture
async def wh() -> AsyncIterator[DatabricksClient]:
    async with DatabricksClient.local(registry=CollectorRegistry()) as client:
        yield client


def rows(df: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [tuple(None if pd.isna(v) else v for v in r) for r in df.itertuples(index=False)]


# (id, Databricks SQL, params, expected rows computed from the raw fixtures)
CORPUS: list[tuple[str, str, dict[str, Any] | None, Callable[[], list[tuple[Any, ...]]]]] = [
    (
        "named_param_filter",
        "SELECT transaction_id FROM gold.recent_transactions WHERE amount > :min ORDER BY transaction_id",
        {"min": 1000},
        lambda: [(t,) for t in sorted(TX[TX.amount > 1000].transaction_id)],
    ),
    (
        "two_params_and_decimal",
        "SELECT count(*) AS n FROM gold.recent_transactions WHERE card_id = :card AND amount >= :floor",
        {"card": "CARD-002", "floor": Decimal("900.00")},
        lambda: [(int(((TX.card_id == "CARD-002") & (TX.amount >= 900)).sum()),)],
    ),
    (
        "backtick_identifiers",
        "SELECT `vendor_name`, `amount` FROM `gold`.`recent_transactions` WHERE `transaction_id` = 'TXN001'",
        None,
        lambda: [("Amazon Web Services", Decimal("1250.00"))],
    ),
    (
        "group_by_having",
        "SELECT card_id, count(*) AS n FROM gold.recent_transactions GROUP BY card_id "
        "HAVING count(*) >= 6 ORDER BY card_id",
        None,
        lambda: [(c, int(n)) for c, n in TX.groupby("card_id").size().items() if n >= 6],
    ),
    (
        "sum_by_department",
        "SELECT department, sum(amount) AS total FROM gold.recent_transactions "
        "GROUP BY department ORDER BY total DESC LIMIT 2",
        None,
        lambda: [
            (d, t)
            for d, t in TX.groupby("department")["amount"]
            .sum()
            .sort_values(ascending=False)[:2]
            .items()
        ],
    ),
    (
        "count_distinct",
        "SELECT COUNT(DISTINCT vendor_name) AS vendors, COUNT(DISTINCT card_id) AS cards "
        "FROM gold.recent_transactions",
        None,
        lambda: [(TX.vendor_name.nunique(), TX.card_id.nunique())],
    ),
    (
        "nvl_and_coalesce",
        "SELECT nvl(vendor_id, 'UNKNOWN') AS v, coalesce(merchant_category_code, '0000') AS mcc "
        "FROM gold.recent_transactions WHERE transaction_id IN ('TXN002', 'TXN003') ORDER BY 1",
        None,
        lambda: [("UNKNOWN", "0000"), ("V-ODP", "5943")],
    ),
    (
        "mcc_stays_a_string",
        "SELECT merchant_category_code FROM gold.recent_transactions WHERE transaction_id = :id",
        {"id": "TXN001"},
        lambda: [("4816",)],
    ),
    (
        "like",
        "SELECT transaction_id FROM gold.recent_transactions WHERE description LIKE 'Standing desks%' ORDER BY 1",
        None,
        lambda: [
            (t,) for t in sorted(TX[TX.description.str.startswith("Standing desks")].transaction_id)
        ],
    ),
    (
        "ilike_with_param",
        "SELECT count(*) FROM gold.recent_transactions WHERE vendor_name ILIKE :pattern",
        {"pattern": "%aws%"},
        lambda: [(0,)],
    ),
    (
        "ilike_case_insensitive",
        "SELECT count(*) FROM gold.recent_transactions WHERE description ILIKE '%AWS%'",
        None,
        lambda: [(int(TX.description.str.lower().str.contains("aws").sum()),)],
    ),
    (
        "case_when",
        "SELECT CASE WHEN amount >= 1000 THEN 'high' WHEN amount >= 100 THEN 'mid' ELSE 'low' END AS band, "
        "count(*) AS n FROM gold.recent_transactions GROUP BY 1 ORDER BY 1",
        None,
        lambda: sorted(
            pd.cut(
                TX.amount.astype(float),
                [-1e9, 100, 1000, 1e12],
                right=False,
                labels=["low", "mid", "high"],
            )
            .astype(str)
            .value_counts()
            .items()
        ),
    ),
    (
        "cte",
        "WITH big AS (SELECT * FROM gold.recent_transactions WHERE amount > 1000) "
        "SELECT count(*) AS n, max(amount) AS top FROM big",
        None,
        lambda: [(int((TX.amount > 1000).sum()), TX.amount.max())],
    ),
    (
        "join_cards",
        "SELECT t.transaction_id, c.cardholder_name FROM gold.recent_transactions t "
        "JOIN gold.credit_cards c ON t.card_id = c.card_id WHERE c.status = 'frozen'",
        None,
        lambda: [
            (r.transaction_id, "Aisha Rahman") for r in TX[TX.card_id == "CARD-005"].itertuples()
        ],
    ),
    (
        "join_three_tables_mismatch",
        "SELECT t.transaction_id, t.account_id AS charged, c.account_id AS expected, b.bank_name "
        "FROM gold.recent_transactions t JOIN gold.credit_cards c ON t.card_id = c.card_id "
        "JOIN gold.bank_accounts b ON b.account_id = t.account_id WHERE t.account_id <> c.account_id",
        None,
        lambda: [("TXN022", "ACCT-003", "ACCT-001", "First Republic Trust")],
    ),
    (
        "left_join_emails",
        "SELECT t.transaction_id, e.email_id FROM gold.recent_transactions t "
        "LEFT JOIN gold.emails e ON e.transaction_id = t.transaction_id "
        "WHERE t.vendor_id IS NULL ORDER BY t.transaction_id",
        None,
        lambda: [
            (t, EMAILS.set_index("transaction_id").email_id.get(t))
            for t in sorted(TX[TX.vendor_id.isna()].transaction_id)
        ],
    ),
    (
        "window_qualify_latest_per_card",
        "SELECT card_id, transaction_id FROM gold.recent_transactions "
        "QUALIFY row_number() OVER (PARTITION BY card_id ORDER BY transaction_date DESC) = 1 ORDER BY card_id",
        None,
        lambda: [
            (c, g.sort_values("transaction_date").transaction_id.iloc[-1])
            for c, g in TX.groupby("card_id")
        ],
    ),
    (
        "window_running_total",
        "SELECT transaction_id, sum(amount) OVER (PARTITION BY card_id ORDER BY transaction_date "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running FROM gold.recent_transactions "
        "WHERE card_id = 'CARD-004' ORDER BY transaction_date",
        None,
        lambda: list(
            zip(
                TX[TX.card_id == "CARD-004"].sort_values("transaction_date").transaction_id,
                TX[TX.card_id == "CARD-004"].sort_values("transaction_date").amount.cumsum(),
                strict=True,
            )
        ),
    ),
    (
        "duplicates_within_24h_lag",
        "SELECT transaction_id FROM (SELECT transaction_id, transaction_date, "
        "lag(transaction_date) OVER (PARTITION BY card_id, vendor_name, amount ORDER BY transaction_date) AS prev "
        "FROM gold.recent_transactions) WHERE prev IS NOT NULL "
        "AND (unix_timestamp(transaction_date) - unix_timestamp(prev)) < 86400",
        None,
        lambda: [("TXN014",)],
    ),
    (
        "date_sub_since_param",
        "SELECT count(*) FROM gold.recent_transactions WHERE transaction_date >= date_sub(to_date(:asof), :days)",
        {"asof": "2025-02-28", "days": 7},
        lambda: [(int((TX.transaction_date >= pd.Timestamp("2025-02-21", tz="UTC")).sum()),)],
    ),
    (
        "date_add",
        "SELECT date_add(to_date('2025-02-27'), 3) AS d",
        None,
        lambda: [(datetime(2025, 3, 2).date(),)],
    ),
    (
        "datediff",
        "SELECT datediff(to_date('2025-03-01'), to_date('2025-02-01')) AS days",
        None,
        lambda: [(28,)],
    ),
    (
        "date_trunc_month",
        "SELECT date_trunc('MONTH', transaction_date) AS month, count(*) AS n "
        "FROM gold.recent_transactions GROUP BY 1 ORDER BY 1",
        None,
        lambda: [
            (datetime(2025, m, 1, tzinfo=UTC), int((TX.transaction_date.dt.month == m).sum()))
            for m in (1, 2)
        ],
    ),
    (
        "date_format_weekend",
        "SELECT transaction_id, date_format(transaction_date, 'EEEE') AS day FROM gold.recent_transactions "
        "WHERE dayofweek(transaction_date) IN (1, 7) ORDER BY 1",
        None,
        lambda: [
            (r.transaction_id, r.transaction_date.day_name())
            for r in TX.sort_values("transaction_id").itertuples()
            if r.transaction_date.day_of_week >= 5
        ],
    ),
    (
        "date_format_month",
        "SELECT date_format(transaction_date, 'yyyy-MM') AS m FROM gold.recent_transactions "
        "WHERE transaction_id = 'TXN004'",
        None,
        lambda: [("2025-01",)],
    ),
    (
        "since_last_completed_audit",
        "WITH last AS (SELECT max(completed_at) AS ts FROM workflow_state "
        "WHERE workflow_status = 'completed') "
        "SELECT count(*) FROM gold.recent_transactions, last WHERE transaction_date > last.ts",
        None,
        lambda: [
            (
                int(
                    (
                        TX.transaction_date
                        > RUNS[RUNS.workflow_status == "completed"].completed_at.max()
                    ).sum()
                ),
            )
        ],
    ),
    (
        "split_purchases_under_limit",
        "SELECT t.card_id, to_date(t.transaction_date) AS day, count(*) AS n, sum(t.amount) AS total "
        "FROM gold.recent_transactions t JOIN gold.credit_cards c USING (card_id) "
        "WHERE t.amount < c.approval_limit AND t.amount >= c.approval_limit * 0.9 "
        "GROUP BY t.card_id, to_date(t.transaction_date) HAVING count(*) >= 2",
        None,
        lambda: [("CARD-002", datetime(2025, 2, 19).date(), 3, Decimal("2945.75"))],
    ),
    (
        "round_amounts",
        "SELECT transaction_id FROM gold.recent_transactions WHERE amount >= :threshold "
        "AND amount % 100 = 0 ORDER BY 1",
        {"threshold": 1000},
        lambda: [
            (t,) for t in sorted(TX[(TX.amount >= 1000) & (TX.amount % 100 == 0)].transaction_id)
        ],
    ),
    (
        "order_by_limit_offset",
        "SELECT transaction_id FROM gold.recent_transactions ORDER BY amount DESC, transaction_id LIMIT 3",
        None,
        lambda: [
            (t,)
            for t in TX.sort_values(
                ["amount", "transaction_id"], ascending=[False, True]
            ).transaction_id[:3]
        ],
    ),
    (
        "workflow_state_every_status",
        "SELECT workflow_status, count(*) FROM workflow_state GROUP BY 1 ORDER BY 1",
        None,
        lambda: sorted((s, int(n)) for s, n in RUNS.workflow_status.value_counts().items()),
    ),
    (
        "emails_amount_mismatch",
        "SELECT e.email_id FROM gold.emails e JOIN gold.recent_transactions t USING (transaction_id) "
        "WHERE e.invoice_amount <> t.amount",
        None,
        lambda: [("EM-004",)],
    ),
]


@pytest.mark.parametrize(
    ("sql", "params", "expected"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
async def test_corpus(
    wh: DatabricksClient, sql: str, params: dict[str, Any] | None, expected: Callable[[], list[Any]]
) -> None:
    df = await wh.query(sql, params=params)
    got = rows(df)
    want = expected()
    if "ORDER BY" not in sql.upper():
        got, want = sorted(got, key=repr), sorted(want, key=repr)
    assert got == want


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 25


async def test_injection_attempt_matches_nothing(wh: DatabricksClient) -> None:
    df = await wh.query(
        "SELECT * FROM gold.recent_transactions WHERE vendor_name = :v", {"v": "x' OR '1'='1"}
    )
    assert df.empty
    # ...and the table is intact and still answers normally.
    assert len(await wh.query("SELECT * FROM gold.recent_transactions")) == len(TX)


async def test_unknown_table_names_it_and_lists_known(wh: DatabricksClient) -> None:
    with pytest.raises(
        QueryError, match=r"unknown table gold\.nope; known tables: .*gold\.credit_cards"
    ) as info:
        await wh.query("SELECT * FROM gold.nope")
    assert info.value.sql == "SELECT * FROM gold.nope"


@pytest.mark.parametrize(
    ("sql", "params", "message"),
    [
        ("SELEC * FROM gold.emails", None, "does not parse"),
        ("SELECT * FROM gold.emails WHERE email_id = :id", None, "missing parameter.*:id"),
        (
            "SELECT * FROM gold.emails WHERE email_id = :id",
            {"id": 1, "oops": 2},
            "unexpected parameter.*:oops",
        ),
        ("SELECT 1; SELECT 2", None, "one SQL statement"),
        ("SELECT * FROM gold.emails WHERE email_id = ?", None, "named parameters"),
        ("SELECT no_such_column FROM gold.emails", None, "no_such_column"),
        ("", None, "non-empty"),
    ],
)
async def test_bad_sql_is_a_typed_error(
    wh: DatabricksClient, sql: str, params: Any, message: str
) -> None:
    with pytest.raises(QueryError, match=message) as info:
        await wh.query(sql, params)
    assert info.value.sql == (sql or None) or info.value.sql == sql


async def test_parameter_values_never_appear_in_errors(wh: DatabricksClient) -> None:
    with pytest.raises(QueryError) as info:
        await wh.query(
            "SELECT * FROM gold.emails WHERE nope = :secret", {"secret": "hunter2-value"}
        )
    assert "hunter2-value" not in str(info.value)


async def test_last_audit_timestamp(wh: DatabricksClient, tmp_path: Path) -> None:
    ts = await wh.get_last_audit_timestamp()
    assert ts == RUNS[RUNS.workflow_status == "completed"].completed_at.max().to_pydatetime()
    assert ts.tzinfo is not None
    assert ts.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    # no completed run at all: the documented default
    for f in FIXTURES.iterdir():
        shutil.copy(f, tmp_path)
    runs = [
        r
        for r in json.loads((FIXTURES / "sample_workflow_state.json").read_text())
        if r["workflow_status"] != "completed"
    ]
    (tmp_path / "sample_workflow_state.json").write_text(json.dumps(runs))
    async with DatabricksClient.local(tmp_path, registry=CollectorRegistry()) as other:
        assert await other.get_last_audit_timestamp() == datetime(2025, 1, 1, tzinfo=UTC)


async def test_execute_executemany_and_query_arrow(wh: DatabricksClient) -> None:
    await wh.execute("CREATE TABLE notes (id INT, body STRING, amount DECIMAL(18,2))")
    await wh.executemany(
        "INSERT INTO notes VALUES (:id, :body, :amount)",
        [{"id": i, "body": f"n{i}", "amount": Decimal(i) / 100} for i in range(5)],
    )
    table = await wh.query_arrow("SELECT sum(amount) AS s, count(*) AS n FROM notes")
    assert table.to_pylist() == [{"s": Decimal("0.10"), "n": 5}]
    with pytest.raises(QueryError, match="missing parameter"):
        await wh.executemany("INSERT INTO notes VALUES (:id, :body, :amount)", [{"id": 9}])
    assert len(await wh.query("SELECT * FROM notes")) == 5  # nothing half-written


async def test_declared_schema_types_all_null_and_codes(tmp_path: Path) -> None:
    """An all-null column keeps its declared type; NDJSON loads; codes stay strings."""
    for f in FIXTURES.iterdir():
        shutil.copy(f, tmp_path)
    cards = json.loads((FIXTURES / "sample_credit_cards.json").read_text())
    (tmp_path / "sample_credit_cards.json").unlink()
    with (tmp_path / "sample_credit_cards.ndjson").open("w") as out:
        for card in cards:
            out.write(json.dumps({**card, "approval_limit": None}) + "\n")
    async with DatabricksClient.local(tmp_path, registry=CollectorRegistry()) as wh:
        table = await wh.query_arrow("SELECT approval_limit, card_last4 FROM gold.credit_cards")
        assert str(table.schema.field("approval_limit").type) == "decimal128(18, 2)"
        assert str(table.schema.field("card_last4").type) == "string"
        assert table.column("card_last4").to_pylist()[0] == "4821"


async def test_missing_fixtures_dir_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        DatabricksClient.local(tmp_path / "nowhere")
    async with DatabricksClient.local(tmp_path, registry=CollectorRegistry()) as wh:
        with pytest.raises(ConfigError, match="no fixture files"):
            await wh.query("SELECT 1")


async def test_generated_parquet_fixtures_load_and_have_anomalies(tmp_path: Path) -> None:
    from audit_core.fixtures import generate

    out = generate(5000, seed=3, out=tmp_path / "gen")
    again = generate(5000, seed=3, out=tmp_path / "gen2")
    assert (out / "sample_transactions.parquet").read_bytes() == (
        again / "sample_transactions.parquet"
    ).read_bytes()
    async with DatabricksClient.local(out, registry=CollectorRegistry()) as wh:
        counts = (
            await wh.query(
                "SELECT count(*) AS n, count_if(vendor_id IS NULL) AS unknown, "
                "count_if(amount >= 1000 AND amount % 100 = 0) AS round, "
                "count_if(dayofweek(transaction_date) IN (1, 7)) AS weekend FROM gold.recent_transactions"
            )
        ).iloc[0]
        assert counts.n == 5000
        assert 50 <= counts.unknown <= 160
        assert 50 <= counts["round"] <= 160
        assert 0 < counts.weekend < 0.15 * 5000
        dups = await wh.query(
            "SELECT count(*) AS n FROM (SELECT unix_timestamp(transaction_date) - "
            "unix_timestamp(lag(transaction_date) OVER (PARTITION BY card_id, vendor_name, "
            "amount ORDER BY transaction_date)) AS gap FROM gold.recent_transactions) "
            "WHERE gap < 86400"
        )
        assert dups.n[0] >= 20
        mism = await wh.query(
            "SELECT count(*) AS n FROM gold.recent_transactions t JOIN gold.credit_cards c "
            "USING (card_id) WHERE t.account_id <> c.account_id"
        )
        assert mism.n[0] >= 5
        assert await wh.get_last_audit_timestamp() == datetime(2025, 5, 31, 23, tzinfo=UTC)


async def test_metrics_count_queries_and_rows() -> None:
    registry = CollectorRegistry()
    async with DatabricksClient.local(registry=registry) as wh:
        await wh.query("SELECT * FROM gold.credit_cards")
        with pytest.raises(QueryError):
            await wh.query("SELECT * FROM gold.nope")
    get = registry.get_sample_value
    assert get("audit_warehouse_queries_total", {"backend": "local", "outcome": "ok"}) == 1
    assert get("audit_warehouse_queries_total", {"backend": "local", "outcome": "error"}) == 1
    assert get("audit_warehouse_rows_total", {"backend": "local"}) == len(CARDS)


async def test_cancelling_interrupts_duckdb_and_frees_the_thread() -> None:
    """A long query is interrupted on cancel; the single worker thread runs the next one."""
    slow = "SELECT count(*) FROM range(1000000000000) a WHERE a.range % 7 = 3"
    async with DatabricksClient.local(max_workers=1, registry=CollectorRegistry()) as wh:
        await wh.query("SELECT 1")  # fixtures loaded, connection made
        task = asyncio.create_task(wh.query(slow))
        while wh.in_flight == 0:  # until the statement runs on the worker
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The one worker thread is free again (an uninterrupted query would hold it for
        # hours): a quick query completes.
        async with asyncio.timeout(10):
            assert (await wh.query("SELECT 2 AS v")).v[0] == 2
            assert wh.in_flight == 0
            with pytest.raises(QueryError, match=r"longer than 0\.05s"):
                await wh.query(slow, timeout_s=0.05)
            assert (await wh.query("SELECT 3 AS v")).v[0] == 3


class ThreadRecordingBackend(LocalBackend):
    """The real local backend, noting the thread each blocking engine call runs on."""

    def __init__(self, fixtures_dir: Path) -> None:
        super().__init__(fixtures_dir)
        self.threads: list[threading.Thread] = []

    def connect(self) -> Any:
        self.threads.append(threading.current_thread())
        return super().connect()

    def run(
        self, conn: Any, sql: str, params: dict[str, Any] | None, want: str, native: bool = False
    ) -> Any:
        self.threads.append(threading.current_thread())
        return super().run(conn, sql, params, want, native)


async def test_engine_calls_run_on_worker_threads_never_on_the_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Eight concurrent queries: every blocking engine call (connect, load, query) runs on
    a warehouse worker thread, and asyncio's slow-callback detector (a generous 1 s bound)
    never sees the loop blocked."""
    from audit_core.fixtures import generate

    out = generate(20_000, seed=1, out=tmp_path / "gen")
    backend = ThreadRecordingBackend(out)
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 1.0
    sql = (
        "SELECT department, vendor_name, count(*) AS n, sum(amount) AS total "
        "FROM gold.recent_transactions WHERE amount > :min GROUP BY ALL ORDER BY total DESC"
    )
    try:
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            async with DatabricksClient(backend, max_workers=4, registry=CollectorRegistry()) as wh:
                results = await asyncio.gather(*(wh.query(sql, {"min": i}) for i in range(8)))
    finally:
        loop.set_debug(False)
    assert all(len(r) > 10 for r in results)
    assert len(backend.threads) >= 9  # at least one connect, then eight queries
    loop_thread = threading.current_thread()
    assert loop_thread not in backend.threads
    assert {t.name.split("_")[0] for t in backend.threads} == {"audit-warehouse"}
    blocked = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert blocked == []


async def test_executemany_bulk_path_matches_row_by_row(wh: DatabricksClient) -> None:
    """The set-based INSERT and the row-by-row fallback store the same values."""
    await wh.execute("CREATE TABLE bulk (id INT, note STRING, amount DECIMAL(18,2), at TIMESTAMP)")
    at = datetime(2025, 2, 1, 12, tzinfo=UTC)
    rows = [
        {"id": i, "note": None if i % 2 else f"n{i}", "amount": Decimal("1.10") * i, "at": at}
        for i in range(50)
    ]
    await wh.executemany("INSERT INTO bulk VALUES (:id, :note, :amount, :at)", rows)
    mixed = [
        {"id": 100, "note": "x", "amount": 5, "at": at},
        {"id": 101, "note": "y", "amount": Decimal("2.50"), "at": at},
    ]
    await wh.executemany(
        "INSERT INTO bulk (id, note, amount, at) VALUES (:id, :note, :amount, :at)", mixed
    )
    got = (await wh.query_arrow("SELECT id, note, amount FROM bulk ORDER BY id")).to_pylist()
    assert len(got) == 52
    assert got[3] == {"id": 3, "note": None, "amount": Decimal("3.30")}
    assert got[4] == {"id": 4, "note": "n4", "amount": Decimal("4.40")}
    assert got[-2:] == [
        {"id": 100, "note": "x", "amount": Decimal("5.00")},
        {"id": 101, "note": "y", "amount": Decimal("2.50")},
    ]


def test_first_query_imports_pandas_off_the_event_loop(tmp_path: Path) -> None:
    """The ~200 ms pandas import (and every DataFrame conversion) runs on a worker thread,
    so the first query() does not stall other coroutines on the loop."""
    code = """
import asyncio, sys, threading

seen = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            seen.append(threading.current_thread().name)
        return None

sys.meta_path.insert(0, Watch())
from audit_core import DatabricksClient

async def main():
    async with DatabricksClient.local() as wh:
        frame = await wh.query("SELECT count(*) AS n FROM gold.recent_transactions")
    print(int(frame["n"][0]), seen[0])

asyncio.run(main())
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    rows, thread = out.stdout.split()
    assert int(rows) > 0
    assert thread.startswith("audit-warehouse"), thread


async def test_a_failed_bulk_insert_reports_its_own_error() -> None:
    """A key violation in a set-based insert names the key, not the aborted transaction,
    and leaves the table as it was (executemany and insert_arrow alike)."""
    import pyarrow as pa

    async with DatabricksClient.local(load_fixtures=False) as wh:
        await wh.execute("CREATE TABLE k (id INT PRIMARY KEY, v STRING)")
        await wh.executemany(
            "INSERT INTO k (id, v) VALUES (:id, :v)", [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]
        )
        with pytest.raises(QueryError, match=r"(?i)duplicate key|primary key|constraint"):
            await wh.executemany(
                "INSERT INTO k (id, v) VALUES (:id, :v)",
                [{"id": 3, "v": "c"}, {"id": 1, "v": "again"}],
            )
        with pytest.raises(QueryError, match=r"(?i)duplicate key|primary key|constraint"):
            await wh.insert_arrow("k", pa.table({"id": [4, 2], "v": ["d", "again"]}))
        await wh.insert_arrow("k", pa.table({"v": ["e"], "id": [5]}))  # by column name
        rows = (await wh.query_arrow("SELECT id, v FROM k ORDER BY id")).to_pylist()
    assert rows == [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 5, "v": "e"}]


async def test_current_date_is_today_in_utc(wh: DatabricksClient) -> None:
    """current_date() is the UTC date (read before and after: a run across midnight is fine)."""
    before = datetime.now(UTC).date()
    table = await wh.query_arrow("SELECT current_date() AS d")
    after = datetime.now(UTC).date()
    assert table.column("d")[0].as_py() in {before, after}


# --- the column-type cache: DDL on any catalog of the engine drops it -------------------


@pytest.mark.parametrize(
    "ddl",
    [
        "CREATE OR REPLACE TABLE t (a DECIMAL(10, 2))",
        "-- a comment first\n/* and another */ CREATE OR REPLACE TABLE t (a DECIMAL(10, 2))",
        "ALTER TABLE t ALTER a TYPE DECIMAL(10, 2)",
    ],
)
async def test_a_changed_column_type_is_seen_by_the_next_statement(
    ddl: str, tmp_path: Path
) -> None:
    """sum() of an INT column is BIGINT in Spark, of a DECIMAL(10,2) a DECIMAL(20,2): a
    stale cached type after the DDL would give the old answer's type."""
    warehouse = DatabricksClient.local(load_fixtures=False, registry=CollectorRegistry())
    results = warehouse.attach(tmp_path / "r.duckdb", registry=CollectorRegistry())
    async with warehouse, results:
        for client in (warehouse, results):
            await client.execute("CREATE TABLE t (a INT)")
            await client.execute("INSERT INTO t VALUES (1), (2)")
            before = await client.query_arrow("SELECT sum(a) AS s FROM t")
            assert str(before.schema.field("s").type) == "int64"
            await client.execute(ddl)
            await client.execute("INSERT INTO t VALUES (1.5)")
            after = await client.query_arrow("SELECT sum(a) AS s FROM t")
            assert str(after.schema.field("s").type) == "decimal128(20, 2)"


def test_only_queries_and_dml_keep_the_cached_types() -> None:
    from audit_core.warehouse._local import keeps_schema

    for sql in (
        "SELECT 1",
        " (SELECT 1)",
        "-- x\nINSERT INTO t VALUES (1)",
        "with a as (select 1) select * from a",
        "DELETE FROM t",
        "update t set a = 1",
    ):
        assert keeps_schema(sql), sql
    for sql in (
        "CREATE TABLE t (a INT)",
        "/* c */ DROP TABLE t",
        "ALTER TABLE t ADD b INT",
        "ATTACH 'x' AS y",
        "",
        "-- only a comment",
        "CREATE OR REPLACE VIEW v AS SELECT 1",
        "PRAGMA x",
        "SET a = 1",
        "TRUNCATE t",
    ):
        assert not keeps_schema(sql), sql


async def test_execute_answers_the_rows_a_dml_statement_changed(tmp_path: Path) -> None:
    async with DatabricksClient.local(load_fixtures=False, registry=CollectorRegistry()) as wh:
        assert await wh.execute("CREATE TABLE t (a INT)") is None
        assert await wh.execute("INSERT INTO t VALUES (1), (2), (3)") == 3
        assert await wh.execute("INSERT INTO t SELECT a FROM t WHERE a > 5") == 0
        assert await wh.execute("UPDATE t SET a = a + 1 WHERE a > 1") == 2
        assert await wh.execute("WITH x AS (SELECT 1) DELETE FROM t WHERE a = 1") == 1
        assert await wh.execute("SELECT 5 AS Count") is None  # a query is not DML
        assert await wh.execute("SELECT count(*) FROM t") is None


async def test_a_script_that_ends_in_ddl_drops_the_cached_types(tmp_path: Path) -> None:
    """A native script whose first statement is DML and whose last retypes a column: the
    cache goes by every statement DuckDB finds in it, not by the first word."""
    async with DatabricksClient.local(load_fixtures=False, registry=CollectorRegistry()) as wh:
        await wh.execute("CREATE TABLE t (a INT)")
        await wh.execute("INSERT INTO t VALUES (1)")
        before = await wh.query_arrow("SELECT sum(a) AS s FROM t")
        assert str(before.schema.field("s").type) == "int64"
        await wh.execute(
            "INSERT INTO t VALUES (2); ALTER TABLE t ALTER a TYPE DECIMAL(10, 2)", native=True
        )
        after = await wh.query_arrow("SELECT sum(a) AS s FROM t")
        assert str(after.schema.field("s").type) == "decimal128(20, 2)"
