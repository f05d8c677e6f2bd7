"""Every code block in the README runs as written, offline.

Python blocks run as scripts in a fresh interpreter, with none of our variables set (no
key, no Redis, no Databricks). Shell blocks: each ``audit-core ...`` line runs through
the real entry point, in order, in one folder (``RUN_ID`` stands for the id of the run
the README's own ``audit-core demo`` made). The two set-up commands (``pip install ...``)
are what CI itself runs, so they are not run again here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
_OURS = ("AUDIT_", "REDIS_", "OPENROUTER", "DATABRICKS", "ENVIRONMENT")


def _blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(README.read_text()) if lang == language]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}


def _commands() -> list[str]:
    """Shell commands that start with ``audit-core`` (also after ``&&``), continuations
    joined, comments dropped."""
    lines: list[str] = []
    for block in _blocks("bash"):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            for part in line.split("  #", 1)[0].split("&&"):
                if part.strip().startswith("audit-core "):
                    lines.append(part.strip())
    return lines


def test_the_readme_has_blocks_to_run() -> None:
    """The checks below can fail: there is something to run in each language."""
    assert len(_blocks("python")) >= 2
    assert any(c.startswith("audit-core demo") for c in _commands())


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_block_runs_as_written(index: int, tmp_path: Path) -> None:
    code = _blocks("python")[index]
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"block {index}:\n{code}\n--- stderr:\n{proc.stderr[-3000:]}"


def test_shell_commands_run_as_written(tmp_path: Path) -> None:
    run_id = None
    for line in _commands():
        argv = shlex.split(line)
        if "RUN_ID" in argv:
            assert run_id is not None, f"{line!r} needs a run made by an earlier demo line"
            argv = [run_id if a == "RUN_ID" else a for a in argv]
        proc = subprocess.run(
            [sys.executable, "-m", "audit_core", *argv[1:]],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"{line}\n--- stderr:\n{proc.stderr[-3000:]}"
        if argv[1] == "demo" and run_id is None:
            found = re.search(r"\brun (audit-[\w-]+)", proc.stdout + proc.stderr)
            run_id = found.group(1) if found else None


def test_sql_blocks_are_valid_rule_files(tmp_path: Path) -> None:
    """A rule shown in the README loads and checks as a rule file."""
    from audit_core.rules import read_rule_file

    blocks = _blocks("sql")
    assert blocks
    for index, block in enumerate(blocks):
        path = tmp_path / f"readme-{index}.sql"
        path.write_text(block)
        assert read_rule_file(path).name
