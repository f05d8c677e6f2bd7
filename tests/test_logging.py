"""Logging: the host's logging is left alone; audit-core's own events are redacted."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from audit_core import configure_logging, get_logger
from audit_core._logging import fingerprint, redact_text, reset_logging
from audit_core.testing import capture_logs


@pytest.fixture
def json_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("json", "DEBUG", stream=stream)
    yield stream
    reset_logging()


def test_json_lines_redact_secret_keys_and_bearer_values(json_stream: io.StringIO) -> None:
    """Secret-named keys, bearer strings and URL passwords never reach a JSON line."""
    log = get_logger("audit_core.t")
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
    assert event["logger_name"] == "audit_core.t"
    for secret in ("abcdefghijkl", "abc.def.ghi", "sometoken123", "pw123", "hunter2"):
        assert secret not in line
    assert event["headers"]["x"] == 1


def test_level_filters(json_stream: io.StringIO) -> None:
    """Events below the configured level are dropped."""
    configure_logging("json", "WARNING", stream=json_stream)
    get_logger("audit_core.t").info("audit_core.quiet")
    get_logger("audit_core.t").warning("audit_core.loud")
    assert "quiet" not in json_stream.getvalue()
    assert "loud" in json_stream.getvalue()


def test_exceptions_are_rendered_and_redacted(json_stream: io.StringIO) -> None:
    """exc_info becomes a redacted traceback field, never a raw secret."""
    try:
        raise RuntimeError("failed with Bearer tok3nvalue99")
    except RuntimeError:
        get_logger("audit_core.t").exception("audit_core.boom")
    event = json.loads(json_stream.getvalue())
    assert "RuntimeError" in event["exception"]
    assert "tok3nvalue99" not in json_stream.getvalue()


def test_capture_logs_sees_every_level_redacted() -> None:
    """The test helper captures events below the stdlib level, after redaction."""
    with capture_logs() as logs:
        get_logger("audit_core.t").debug("audit_core.low", token="abc")
    assert logs == [
        {
            "event": "audit_core.low",
            "token": "***",
            "log_level": "debug",
            "logger_name": "audit_core.t",
        }
    ]


def test_redact_text_and_fingerprint() -> None:
    """Key shapes are masked in free text; fingerprints give length and hash, not text."""
    assert "sk-or-v1-zzzzzzzzzz" not in redact_text("key sk-or-v1-zzzzzzzzzz here")
    fp = fingerprint("confidential prompt")
    assert fp["len"] == len("confidential prompt")
    assert len(fp["sha256"]) == 12
    assert "confidential" not in json.dumps(fp)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )


def test_unconfigured_library_warnings_reach_stderr_redacted() -> None:
    """With no logging set up anywhere, warnings reach stderr (stdlib's last resort), redacted."""
    out = _run(
        "from audit_core._logging import get_logger\n"
        "log = get_logger('audit_core.t')\n"
        "log.info('quiet')\n"
        "log.warning('loud', authorization='Bearer sk-or-v1-abcdef0123456789')\n"
    )
    assert out.stdout == ""
    assert "loud" in out.stderr
    assert "quiet" not in out.stderr
    assert "sk-or-v1-abcdef0123456789" not in out.stderr


HOST_APP = """
import asyncio, io, json, logging, sys
import structlog

# The host's own set-up, made before audit_core is imported.
root_stream = io.StringIO()
logging.basicConfig(stream=root_stream, level=logging.INFO, format="%(name)s|%(message)s")
events = []
def keep(logger, name, event_dict):
    events.append(dict(event_dict))
    raise structlog.DropEvent
structlog.configure(processors=[keep], cache_logger_on_first_use=False)
before = structlog.get_config()

import audit_core
from audit_core import AsyncLLMClient, AsyncStateStore, DatabricksClient, AuditTrail, get_logger
from audit_core.testing import FakeOpenRouter

async def use_everything():
    async with FakeOpenRouter() as server:
        async with AsyncLLMClient("sk-or-v1-secretkey0000000", base_url=server.url) as llm:
            await llm.complete("hello")
    async with AsyncStateStore.from_url("memory://") as store:
        await store.save("r1", {"a": 1})
    async with DatabricksClient.local() as wh:
        await wh.query("SELECT 1 AS x")
    get_logger("audit_core.t").warning(
        "audit_core.secret_test", api_key="sk-or-v1-secretkey0000000", note="Bearer abcdefgh123"
    )

asyncio.run(use_everything())
structlog.get_logger("host").info("host.event", n=1)
logging.getLogger("host.std").info("host std line")
assert structlog.get_config() == before, "audit_core changed the host's structlog config"
print(json.dumps({"events": events, "root": root_stream.getvalue()}))
"""


def test_host_logging_is_unchanged_by_importing_and_using_every_client() -> None:
    """A host's structlog chain and stdlib root keep working; our events stay redacted."""
    out = _run(HOST_APP)
    result = json.loads(out.stdout)
    assert result["events"] == [{"n": 1, "event": "host.event"}]
    root = result["root"]
    assert "host.std|host std line" in root
    # Our warning went through the host's stdlib handlers, redacted.
    assert "audit_core.t|audit_core.secret_test" in root
    assert "secretkey0000000" not in root + out.stderr
    assert "abcdefgh123" not in root + out.stderr


def test_host_structlog_defaults_survive_import() -> None:
    """A host that never configured structlog keeps structlog's defaults (info on stdout)."""
    out = _run(
        "import audit_core.retry, audit_core.llm, audit_core.state, audit_core.warehouse\n"
        "from audit_core import get_logger\n"
        "get_logger('audit_core.t').warning('audit_core.x')\n"
        "import structlog\n"
        "structlog.get_logger().info('host.default', n=1)\n"
    )
    assert "host.default" in out.stdout
