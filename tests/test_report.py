"""The run report: rendered by a real browser (headless Chromium), not blank, and every
number on the page equal to what the results database holds."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from audit_core._logging import reset_logging
from audit_core.cli import main
from tests.services import missing

_OURS = ("AUDIT_", "REDIS_", "OPENROUTER", "DATABRICKS", "ENVIRONMENT")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    missing("chromium (Debian package chromium)")
    raise AssertionError("unreachable")


def _browse(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}",
    ]
    return subprocess.run(
        [_chromium(), *flags, *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _png_colours(path: Path) -> int:
    """How many distinct pixel values an 8-bit RGB(A) PNG holds (a blank page has one)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8
            channels = {2: 3, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    seen: set[bytes] = set()
    previous = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):  # undo the PNG filter of this row
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        if row % 8 == 0:
            seen.update(bytes(line[i : i + channels]) for i in range(0, stride, channels * 4))
        previous = line
    return len(seen)


@pytest.fixture
def demo_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> dict[str, Any]:
    for key in list(os.environ):
        if key.startswith(_OURS):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    try:
        assert main(["demo", "--json"]) == 0
    finally:
        reset_logging()
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def _text(dom: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom)
    assert found, element_id
    return found.group(1).strip()


def test_the_report_renders_in_chromium_with_the_databases_numbers(
    demo_run: dict[str, Any], tmp_path: Path
) -> None:
    page = (tmp_path / demo_run["report"]).resolve()
    assert page.is_file()
    assert "http" not in re.sub(r'xmlns="http[^"]*"', "", page.read_text())  # no network

    shot = tmp_path / "page.png"
    _browse(page, tmp_path, "--window-size=1100,2400", f"--screenshot={shot}")
    assert _png_colours(shot) > 20  # text, tables and a chart, not a blank page
    dom = _browse(page, tmp_path, "--dump-dom").stdout

    con = duckdb.connect(str(tmp_path / ".audit-core" / "audit.duckdb"), read_only=True)
    run = [demo_run["run_id"]]
    (flags,) = con.execute("SELECT count(*) FROM flags WHERE audit_run_id = ?", run).fetchone()  # type: ignore[misc]
    (exposure,) = con.execute(
        "SELECT sum(amount) FROM (SELECT DISTINCT transaction_id, amount FROM flags "
        "WHERE audit_run_id = ?)",
        run,
    ).fetchone()  # type: ignore[misc]
    by_rule = dict(
        con.execute(
            "SELECT rule, count(*) FROM flags WHERE audit_run_id = ? GROUP BY rule", run
        ).fetchall()
    )
    con.close()
    assert int(_text(dom, "flags-total").replace(",", "")) == flags
    assert Decimal(_text(dom, "exposure").lstrip("$").replace(",", "")) == exposure
    assert int(_text(dom, "rows-scanned").replace(",", "")) == demo_run["rows_scanned"]
    assert _text(dom, "trail").endswith("hash chain intact, run completed")
    shown = dict(
        re.findall(
            r'data-label="([^"]+)"><td>[^<]*</td><td class="n" data-flags="(\d+)"',
            dom.split('id="by-rule"')[1].split("</table>")[0],
        )
    )
    assert {k: int(v) for k, v in shown.items()} == by_rule
    assert "<svg" in dom


def test_the_report_as_csv_has_every_flag(demo_run: dict[str, Any], capsys: Any) -> None:
    try:
        assert main(["report", demo_run["run_id"], "--format", "csv"]) == 0
    finally:
        reset_logging()
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("flag_id,audit_run_id,transaction_id")
    assert len(lines) == 1 + demo_run["flags_written"]


def test_an_unknown_run_is_a_clear_error(demo_run: dict[str, Any], capsys: Any) -> None:
    try:
        assert main(["report", "no-such-run"]) == 2
    finally:
        reset_logging()
    assert "no run 'no-such-run'" in capsys.readouterr().err
