"""Which warehouse the settings pick: production never audits the local sample data."""

from __future__ import annotations

import pytest

from audit_core import ConfigError, DatabricksClient, Settings


def test_production_without_a_databricks_host_is_a_config_error() -> None:
    """Silently auditing the shipped sample data in production would be worse than failing."""
    with pytest.raises(ConfigError, match="ENVIRONMENT=production needs DATABRICKS_HOST"):
        Settings.from_env({"ENVIRONMENT": "production"})


def test_production_check_names_no_secret() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"ENVIRONMENT": "production", "DATABRICKS_TOKEN": "dapi-hush-hush"})
    assert "dapi-hush-hush" not in str(info.value)


def test_development_without_a_host_is_the_local_warehouse() -> None:
    settings = Settings.from_env({"ENVIRONMENT": "development"})
    assert settings.warehouse_backend == "local"
    assert DatabricksClient.from_settings(settings).backend == "local"


@pytest.mark.parametrize(
    ("env", "backend"),
    [
        ({"AUDIT_WAREHOUSE": "local"}, "local"),
        ({"AUDIT_WAREHOUSE": "SPARK"}, "spark"),
        ({"ENVIRONMENT": "production", "AUDIT_WAREHOUSE": "local"}, "local"),  # said, not silent
        ({"ENVIRONMENT": "production", "AUDIT_WAREHOUSE": "spark"}, "spark"),
        (
            {
                "AUDIT_WAREHOUSE": "databricks",
                "DATABRICKS_HOST": "adb-1.azuredatabricks.net",
                "DATABRICKS_TOKEN": "dapi-x",
                "DATABRICKS_WAREHOUSE_ID": "abc",
            },
            "databricks",
        ),
    ],
)
def test_audit_warehouse_picks_the_backend(env: dict[str, str], backend: str) -> None:
    """Nothing is connected or started: each client is built and never used."""
    settings = Settings.from_env(env)
    assert settings.warehouse_backend == backend
    client = DatabricksClient.from_settings(settings, connect=lambda: None)
    assert client.backend == backend


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"AUDIT_WAREHOUSE": "duckdb"}, ["AUDIT_WAREHOUSE", "duckdb"]),
        ({"AUDIT_WAREHOUSE": "databricks"}, ["AUDIT_WAREHOUSE=databricks", "DATABRICKS_HOST"]),
        (
            {"AUDIT_WAREHOUSE": "databricks", "DATABRICKS_HOST": "h", "DATABRICKS_TOKEN": "t"},
            ["AUDIT_WAREHOUSE=databricks", "DATABRICKS_WAREHOUSE_ID"],
        ),
    ],
)
def test_a_bad_warehouse_choice_names_the_variable(env: dict[str, str], names: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    for name in names:
        assert name in str(info.value)
