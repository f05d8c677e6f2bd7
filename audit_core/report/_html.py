"""``audit-core report RUN_ID``: a self-contained HTML page an auditor reads.

Everything is inline (styles and an SVG chart): the page needs no network when it is
opened. Every figure comes from the results database: the run's workflow state, its
flags and its audit trail (verified as the page is written).
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from audit_core.db._chain import TrailVerification
from audit_core.db._reader import Reader
from audit_core.db._trail import verify_run
from audit_core.errors import ConfigError

__all__ = ["ReportData", "collect", "render_html", "write_report"]

_TOP = 10
# The most severe of a transaction's flags (the levels do not sort by name).
_WORST = (
    "CASE min(CASE severity_level WHEN 'CRITICAL' THEN 0 WHEN 'WARNING' THEN 1 ELSE 2 END) "
    "WHEN 0 THEN 'CRITICAL' WHEN 1 THEN 'WARNING' ELSE 'INFO' END"
)


@dataclass(kw_only=True)
class ReportData:
    """What the page shows; each list is (label, flags, exposure in USD) rows."""

    run_id: str
    status: str
    since: str | None
    rows_scanned: int
    llm_items: int
    llm_note: str
    llm_costs: dict[str, Any]
    flags: int
    exposure: Decimal
    by_severity: list[tuple[str, int, Decimal]] = field(default_factory=list)
    by_rule: list[tuple[str, int, Decimal]] = field(default_factory=list)
    by_department: list[tuple[str, int, Decimal]] = field(default_factory=list)
    top_vendors: list[tuple[str, int, Decimal]] = field(default_factory=list)
    top_transactions: list[dict[str, Any]] = field(default_factory=list)
    by_day: list[tuple[str, int, Decimal]] = field(default_factory=list)
    trail: str = ""
    trail_ok: bool = False
    simulated: bool = False


def _groups(table: Any) -> list[tuple[str, int, Decimal]]:
    return [
        (
            str(r["label"] if r["label"] is not None else "(none)"),
            int(r["n"]),
            r["usd"] or Decimal(0),
        )
        for r in table.to_pylist()
    ]


async def collect(
    reader: Reader,
    run_id: str,
    *,
    key: str | bytes | None = None,
    verification: TrailVerification | None = None,
) -> ReportData:
    """Read one run's figures from a results database (any `Reader`), the queries side by
    side. ``verification``: the trail's verdict when the caller has just verified it
    (the demo, on the open database); else the trail is verified here."""
    state_rows = await reader.query_arrow(
        "SELECT workflow_status, intermediate_results FROM workflow_state "
        "WHERE audit_run_id = :run",
        {"run": run_id},
    )
    if state_rows.num_rows == 0:
        raise ConfigError(f"no run {run_id!r} in the results database")
    row = state_rows.to_pylist()[0]
    state = json.loads(row["intermediate_results"] or "{}")
    run = {"run": run_id}

    async def grouped(
        column: str, order: str = "usd DESC, label", limit: int = 50
    ) -> list[tuple[str, int, Decimal]]:
        # a transaction flagged by two rules counts once in its group's exposure
        return _groups(
            await reader.query_arrow(
                "SELECT label, sum(n) AS n, sum(amount) AS usd FROM ("
                f"SELECT {column} AS label, transaction_id, count(*) AS n, max(amount) AS amount "
                "FROM flags WHERE audit_run_id = :run GROUP BY 1, 2) "
                f"GROUP BY label ORDER BY {order} LIMIT {limit}",
                run,
            )
        )

    async def verified() -> TrailVerification:
        return verification or await verify_run(reader, run_id, key=key)

    # Exposure counts each flagged transaction once, whatever number of rules flagged it.
    (
        totals,
        top,
        by_severity,
        by_rule,
        by_department,
        top_vendors,
        by_day,
        checked,
    ) = await asyncio.gather(
        reader.query_arrow(
            "SELECT count(*) AS n, (SELECT sum(amount) FROM (SELECT DISTINCT "
            "transaction_id, amount FROM flags WHERE audit_run_id = :run)) AS usd "
            "FROM flags WHERE audit_run_id = :run",
            run,
        ),
        reader.query_arrow(
            "SELECT transaction_id, max(amount) AS amount, max(vendor_name) AS vendor, "
            "max(department) AS department, string_agg(DISTINCT rule, ', ') AS rules, "
            f"{_WORST} AS severity FROM flags WHERE audit_run_id = :run GROUP BY "
            f"transaction_id ORDER BY amount DESC NULLS LAST, transaction_id LIMIT {_TOP}",
            run,
        ),
        grouped("severity_level"),
        grouped("rule"),
        grouped("department"),
        grouped("vendor_name", limit=_TOP),
        grouped("CAST(to_date(transaction_date) AS STRING)", "label", 400),
        verified(),
    )
    total = totals.to_pylist()[0]
    if checked.status == "tampered":
        trail = f"FAILED at entry {checked.first_bad_sequence}: {checked.problem}"
    elif checked.status == "incomplete":
        trail = f"intact so far ({checked.rows} entries), run not completed"
    else:
        trail = f"{checked.rows} entries, hash chain intact, run completed"
    costs = state.get("llm_costs") or {}
    return ReportData(
        run_id=run_id,
        status=row["workflow_status"],
        since=state.get("since"),
        rows_scanned=int(state.get("rows_scanned") or 0),
        llm_items=int(state.get("llm_items") or 0),
        llm_note=str(state.get("llm_note") or ""),
        llm_costs=costs,
        flags=int(total["n"]),
        exposure=total["usd"] or Decimal(0),
        by_severity=by_severity,
        by_rule=by_rule,
        by_department=by_department,
        top_vendors=top_vendors,
        top_transactions=top.to_pylist(),
        by_day=by_day,
        trail=trail,
        trail_ok=checked.status == "ok",
        simulated="simulated" in str(state.get("llm_note") or ""),
    )


def _money(value: Decimal | float | int | None) -> str:
    return f"${Decimal(value or 0):,.2f}"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(title: str, rows: Sequence[tuple[str, int, Decimal]], label: str, key: str) -> str:
    body = "".join(
        f'<tr data-label="{_e(name)}"><td>{_e(name)}</td><td class="n" data-flags="{n}">{n:,}</td>'
        f'<td class="n" data-usd="{usd}">{_money(usd)}</td></tr>'
        for name, n, usd in rows
    )
    return (
        f'<section><h2>{_e(title)}</h2><table id="{key}"><thead><tr><th>{_e(label)}</th>'
        f'<th class="n">flags</th><th class="n">exposure</th></tr></thead><tbody>{body}'
        "</tbody></table></section>"
    )


def _chart(days: Sequence[tuple[str, int, Decimal]]) -> str:
    """Flags per transaction day as an inline SVG bar chart."""
    if not days:
        return "<p>No dated flags.</p>"
    width, height, pad = 760, 200, 24
    top = max(n for _, n, _ in days) or 1
    step = (width - 2 * pad) / len(days)
    bars = []
    for i, (day, n, _) in enumerate(days):
        h = (height - 2 * pad) * n / top
        x = pad + i * step
        bars.append(
            f'<rect x="{x:.1f}" y="{height - pad - h:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="#3b6ea8"><title>{_e(day)}: {n} flags</title></rect>'
        )
    first, last = _e(days[0][0]), _e(days[-1][0])
    return (
        f'<svg id="flags-over-time" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="flags per day">{"".join(bars)}'
        f'<text x="{pad}" y="{height - 6}" font-size="11">{first}</text>'
        f'<text x="{width - pad}" y="{height - 6}" font-size="11" text-anchor="end">{last}</text>'
        f'<text x="{pad}" y="14" font-size="11">max {top} per day</text></svg>'
    )


_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1000px;color:#1d2330;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:1.8rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{flex:1 1 160px;background:#f3f5f9;
border-radius:8px;padding:.8rem 1rem}.card b{display:block;font-size:1.5rem}
table{border-collapse:collapse;width:100%}td,th{padding:.3rem .5rem;border-bottom:1px solid
#dde2ea;text-align:left}.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17663a}.bad{color:#a8261b}.note{color:#566}.sim{background:#fff4d6;padding:.4rem}
"""


def render_html(data: ReportData) -> str:
    """The page for ``data``: self-contained, no scripts, no network."""
    costs = data.llm_costs
    share = data.llm_items / data.rows_scanned * 100 if data.rows_scanned else 0.0
    models = (
        "".join(
            f"<tr><td>{_e(m)}</td><td class='n'>{costs.get('calls_by_model', {}).get(m, 0)}</td>"
            f"<td class='n'>{costs.get('tokens_by_model', {}).get(m, 0):,}</td>"
            f"<td class='n'>${_e(usd)}</td></tr>"
            for m, usd in (costs.get("by_model") or {}).items()
        )
        or "<tr><td colspan=4>no LLM calls</td></tr>"
    )
    top = "".join(
        f"<tr><td>{_e(t['transaction_id'])}</td><td>{_e(t['vendor'] or '-')}</td>"
        f"<td>{_e(t['department'] or '-')}</td><td>{_e(t['rules'])}</td>"
        f"<td>{_e(t['severity'])}</td><td class='n'>{_money(t['amount'])}</td></tr>"
        for t in data.top_transactions
    )
    simulated = (
        '<p class="sim">LLM stage: <b>simulated</b> (a loopback fake model, not a real one)</p>'
        if data.simulated
        else ""
    )
    trail_class = "ok" if data.trail_ok else "bad"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Audit run {_e(data.run_id)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_STYLE}</style></head><body>
<h1>Audit run {_e(data.run_id)}</h1>
<p class="note">Status {_e(data.status)}; transactions since {_e(data.since or "?")};
written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by audit-core.</p>
{simulated}
<div class="cards">
<div class="card">rows scanned<b id="rows-scanned">{data.rows_scanned:,}</b></div>
<div class="card">flags<b id="flags-total">{data.flags:,}</b></div>
<div class="card">dollar exposure<b id="exposure"
 data-usd="{data.exposure}">{_money(data.exposure)}</b></div>
<div class="card">LLM cost<b id="llm-cost">${_e(costs.get("total_usd", "0"))}</b></div>
</div>
<h2>Audit trail</h2><p id="trail" class="{trail_class}">{_e(data.trail)}</p>
<h2>Deterministic vs LLM</h2>
<p id="share">{100 - share:.1f}% of transactions decided by SQL rules alone;
{share:.1f}% ({data.llm_items:,}) ambiguous, sent to the LLM stage. {_e(data.llm_note)}</p>
{_table("Exposure by severity", data.by_severity, "severity", "by-severity")}
{_table("Exposure by rule", data.by_rule, "rule", "by-rule")}
{_table("Exposure by department", data.by_department, "department", "by-department")}
{_table("Top flagged vendors", data.top_vendors, "vendor", "top-vendors")}
<section><h2>Top flagged transactions</h2><table id="top-transactions"><thead><tr>
<th>transaction</th><th>vendor</th><th>department</th><th>rules</th><th>severity</th>
<th class="n">amount</th></tr></thead><tbody>{top}</tbody></table></section>
<section><h2>Flags over time</h2>{_chart(data.by_day)}</section>
<section><h2>LLM calls, tokens and cost by model</h2><table id="llm-models"><thead><tr>
<th>model</th><th class="n">calls</th><th class="n">tokens</th><th class="n">cost</th></tr>
</thead><tbody>{models}</tbody></table></section>
<h2>Next</h2><p>Review the flags: <code>audit-core flags --run {_e(data.run_id)} --pending</code>,
then <code>audit-core flags review FLAG_ID --decision confirmed|dismissed|escalated
--reviewer YOU</code>.</p>
</body></html>
"""


async def write_report(
    reader: Reader,
    run_id: str,
    path: Path,
    *,
    key: str | bytes | None = None,
    verification: TrailVerification | None = None,
) -> ReportData:
    """Collect the run's figures and write its page to ``path``."""
    data = await collect(reader, run_id, key=key, verification=verification)
    await asyncio.to_thread(path.write_text, render_html(data), encoding="utf-8")
    return data
