"""Settings.from_env: defaults, every documented error, and redaction."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from audit_core import ConfigError, Settings


def test_defaults_need_nothing() -> None:
    """An empty environment gives the documented embedded defaults."""
    s = Settings.from_env({})
    assert s.environment == "development"
    assert s.warehouse_backend == "local"
    assert s.redis_url == "memory://"
    assert s.llm_base_url == "https://openrouter.ai/api/v1"
    assert s.default_model == "openai/gpt-4o-mini"
    assert s.escalation_model == "anthropic/claude-3.5-haiku"
    assert s.llm_max_concurrency == 16
    assert s.llm_budget_usd is None
    assert s.state_ttl_s == 86400
    assert s.log_format == "console"
    assert s.openrouter_api_key is None


def test_reads_every_variable() -> None:
    """Each variable of the API table lands in its field."""
    s = Settings.from_env(
        {
            "ENVIRONMENT": "production",
            "DATABRICKS_HOST": "https://adb-1.azuredatabricks.net/",
            "DATABRICKS_WAREHOUSE_ID": "abc123",
            "DATABRICKS_TOKEN": "dapi0123456789abcdef0123",
            "AUDIT_FIXTURES_DIR": "/tmp/fx",
            "OPENROUTER_API_KEY": "sk-or-v1-secret",
            "AUDIT_LLM_BASE_URL": "http://127.0.0.1:8000/v1/",
            "GPT4O_MINI_MODEL": "m/cheap",
            "AUDIT_LLM_ESCALATION_MODEL": "m/smart",
            "AUDIT_LLM_MAX_CONCURRENCY": "4",
            "AUDIT_LLM_BUDGET_USD": "12.50",
            "REDIS_HOST": "cache.internal:6380",
            "REDIS_DB": "2",
            "AUDIT_STATE_TTL_S": "60",
        }
    )
    assert s.warehouse_backend == "databricks"
    assert s.databricks_host == "adb-1.azuredatabricks.net"
    assert s.fixtures_dir == Path("/tmp/fx")
    assert s.llm_base_url == "http://127.0.0.1:8000/v1"
    assert (s.default_model, s.escalation_model) == ("m/cheap", "m/smart")
    assert s.llm_max_concurrency == 4
    assert s.llm_budget_usd == Decimal("12.50")
    assert s.redis_url == "redis://cache.internal:6380/2"
    assert s.state_ttl_s == 60
    assert s.log_format == "json"


def test_host_without_production_stays_local() -> None:
    """A Databricks host in development still uses the local warehouse."""
    s = Settings.from_env({"DATABRICKS_HOST": "h", "DATABRICKS_TOKEN": "t"})
    assert s.warehouse_backend == "local"


def test_redis_url_wins_over_host() -> None:
    """REDIS_URL, when set, is used as given."""
    s = Settings.from_env({"REDIS_URL": "rediss://u:pw@h:1/0", "REDIS_HOST": "x:1"})
    assert s.redis_url == "rediss://u:pw@h:1/0"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"REDIS_HOST": "localhost"}, ["REDIS_HOST", "port"]),
        ({"REDIS_HOST": "localhost:abc"}, ["REDIS_HOST", "port"]),
        ({"REDIS_HOST": "localhost:6379", "REDIS_DB": "abc"}, ["REDIS_DB", "integer"]),
        ({"REDIS_HOST": "localhost:6379", "REDIS_DB": "-1"}, ["REDIS_DB"]),
        ({"REDIS_URL": "http://x"}, ["REDIS_URL"]),
        ({"AUDIT_LLM_BUDGET_USD": "-1"}, ["AUDIT_LLM_BUDGET_USD", "negative"]),
        ({"AUDIT_LLM_BUDGET_USD": "lots"}, ["AUDIT_LLM_BUDGET_USD", "number"]),
        ({"AUDIT_LLM_BUDGET_USD": "NaN"}, ["AUDIT_LLM_BUDGET_USD"]),
        ({"ENVIRONMENT": "staging"}, ["ENVIRONMENT", "staging"]),
        ({"AUDIT_LLM_MAX_CONCURRENCY": "0"}, ["AUDIT_LLM_MAX_CONCURRENCY"]),
        ({"AUDIT_STATE_TTL_S": "soon"}, ["AUDIT_STATE_TTL_S"]),
        ({"AUDIT_LOG_FORMAT": "xml"}, ["AUDIT_LOG_FORMAT"]),
        ({"AUDIT_LLM_BASE_URL": "ftp://x"}, ["AUDIT_LLM_BASE_URL"]),
        (
            {"ENVIRONMENT": "production", "DATABRICKS_HOST": "h"},
            ["DATABRICKS_TOKEN", "DATABRICKS_WAREHOUSE_ID"],
        ),
        (
            {"ENVIRONMENT": "production", "DATABRICKS_HOST": "h", "DATABRICKS_TOKEN": "dapisecret"},
            ["DATABRICKS_WAREHOUSE_ID"],
        ),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], names: list[str]) -> None:
    """Each invalid value raises ConfigError naming the variable and the problem."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    for name in names:
        assert name in str(info.value)


def test_missing_token_error_does_not_leak_other_secret() -> None:
    """The production check names what is missing, never a secret that is present."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {
                "ENVIRONMENT": "production",
                "DATABRICKS_HOST": "h",
                "DATABRICKS_TOKEN": "dapi-very-secret",
            }
        )
    assert "dapi-very-secret" not in str(info.value)


def test_repr_masks_secrets() -> None:
    """repr shows secrets and URL passwords as '***'."""
    s = Settings.from_env(
        {
            "OPENROUTER_API_KEY": "sk-or-v1-topsecret",
            "DATABRICKS_TOKEN": "dapi-topsecret",
            "REDIS_URL": "redis://user:hunter2@redis:6379/0",
        }
    )
    text = repr(s)
    assert "topsecret" not in text
    assert "hunter2" not in text
    assert "openrouter_api_key='***'" in text
    assert "redis://user:***@redis:6379/0" in text
    assert "hunter2" not in str(s.redacted())


def test_trail_key_is_a_secret_and_rule_folders_are_a_path_list() -> None:
    """AUDIT_TRAIL_KEY never shows in repr or the redacted view; AUDIT_RULES_DIR splits."""
    import os
    from pathlib import Path

    settings = Settings.from_env(
        {"AUDIT_TRAIL_KEY": "k3y-material-xyz", "AUDIT_RULES_DIR": f"a{os.pathsep}b"}
    )
    assert settings.trail_key == "k3y-material-xyz"
    assert "k3y-material-xyz" not in repr(settings)
    assert "k3y-material-xyz" not in str(settings.redacted())
    assert settings.rules_dirs == (Path("a"), Path("b"))
    assert Settings.from_env({}).rules_dirs == ()


def test_spark_remote_is_a_spark_connect_url() -> None:
    assert Settings.from_env({"AUDIT_SPARK_REMOTE": "sc://127.0.0.1:15002"}).spark_remote == (
        "sc://127.0.0.1:15002"
    )
    with pytest.raises(ConfigError, match="AUDIT_SPARK_REMOTE"):
        Settings.from_env({"AUDIT_SPARK_REMOTE": "http://x"})
