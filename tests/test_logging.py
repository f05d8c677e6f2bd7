"""Logging: JSON lines, and secrets redacted from every event."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from audit_core import configure_logging, get_logger
from audit_core._logging import fingerprint, redact_text


@pytest.fixture
def json_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("json", "DEBUG", stream=stream)
    yield stream
    structlog.reset_defaults()


def test_json_lines_redact_secret_keys_and_bearer_values(json_stream: io.StringIO) -> None:
    """Secret-named keys, bearer strings and URL passwords never reach a JSON line."""
    log = get_logger("t")
    log.info(
        "audit_core.test",
        api_key="sk-or-v1-abcdefghijkl",
        headers={"Authorization": "Bearer abc.def.ghi", "x": 1},
        note="sent Bearer sometoken123 to redis://u:pw123@h:1",
        db_password="hunter2",
    )
    line = json_stream.getvalue().strip()
    event = json.loads(line)
    assert event["event"] == "audit_core.test"
    assert event["logger_name"] == "t"
    assert "abcdefghijkl" not in line
    assert "abc.def.ghi" not in line
    assert "sometoken123" not in line
    assert "pw123" not in line
    assert "hunter2" not in line
    assert event["headers"]["x"] == 1


def test_level_filters(json_stream: io.StringIO) -> None:
    """Events below the configured level are dropped."""
    configure_logging("json", "WARNING", stream=json_stream)
    get_logger("t").info("audit_core.quiet")
    get_logger("t").warning("audit_core.loud")
    assert "quiet" not in json_stream.getvalue()
    assert "loud" in json_stream.getvalue()


def test_redact_text_and_fingerprint() -> None:
    """Key shapes are masked in free text; fingerprints give length and hash, not text."""
    assert "sk-or-v1-zzzzzzzzzz" not in redact_text("key sk-or-v1-zzzzzzzzzz here")
    fp = fingerprint("confidential prompt")
    assert fp["len"] == len("confidential prompt")
    assert len(fp["sha256"]) == 12
    assert "confidential" not in json.dumps(fp)


def test_unconfigured_library_logs_to_stderr_with_redaction() -> None:
    """Without configure_logging, warnings go to stderr (stdout is the app's), redacted."""
    import subprocess
    import sys

    code = (
        "from audit_core._logging import get_logger\n"
        "log = get_logger('t')\n"
        "log.info('quiet')\n"
        "log.warning('loud', authorization='Bearer sk-or-v1-abcdef0123456789')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == ""
    assert "loud" in out.stderr
    assert "quiet" not in out.stderr
    assert "sk-or-v1-abcdef0123456789" not in out.stderr
