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
