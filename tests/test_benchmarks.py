"""Each benchmark runs once at a tiny size: the benchmark code itself is correct.

Marked ``bench``: not part of the default run (``pytest -m bench`` or ``nox -s bench``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import QUICK

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.bench
@pytest.mark.parametrize("name", list(QUICK))
def test_benchmark_runs_at_tiny_size(name: str, tmp_path: Path, redis_server: object) -> None:
    out = tmp_path / "BENCH.md"
    command = [sys.executable, "-m", "benchmarks", "--quick", "--only", name, "--out", str(out)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "failed" not in text.split("\n## ", 1)[1].split("\n", 1)[0], proc.stderr[-2000:]
    assert "| measurement | median |" in text
    assert "Machine:" in text
