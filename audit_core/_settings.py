"""`Settings`: the one place that reads the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from audit_core import _constants as C
from audit_core.errors import ConfigError

__all__ = ["Settings", "redact_url", "resolve_settings"]

_SECRET_FIELDS = frozenset({"databricks_token", "openrouter_api_key", "trail_key"})
_URL_FIELDS = frozenset({"redis_url"})
_REDIS_SCHEMES = ("redis", "rediss", "unix", "memory")
WarehouseBackend = Literal["local", "databricks", "spark"]
_WAREHOUSES: dict[str, WarehouseBackend] = {
    "local": "local",
    "databricks": "databricks",
    "spark": "spark",
}


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}").geturl()


@dataclass(frozen=True, repr=False, kw_only=True)
class Settings:
    """Configuration read from the environment; see the table in the README.

    Secrets (``databricks_token``, ``openrouter_api_key``, ``trail_key``, a password
    inside ``redis_url``) are shown as ``'***'`` by ``repr``.
    """

    environment: Literal["development", "production"] = "development"
    databricks_host: str | None = None
    databricks_warehouse_id: str | None = None
    databricks_token: str | None = None
    fixtures_dir: Path | None = None
    openrouter_api_key: str | None = None
    llm_base_url: str = C.DEFAULT_LLM_BASE_URL
    default_model: str = C.DEFAULT_MODEL
    escalation_model: str = C.DEFAULT_ESCALATION_MODEL
    llm_max_concurrency: int = C.DEFAULT_LLM_MAX_CONCURRENCY
    llm_budget_usd: Decimal | None = None
    redis_url: str = C.DEFAULT_REDIS_URL
    state_ttl_s: int = C.DEFAULT_STATE_TTL_S
    state_buffer: Path | None = None
    log_format: Literal["console", "json"] = "console"
    warehouse: WarehouseBackend | None = None
    trail_key: str | None = None
    rules_dirs: tuple[Path, ...] = ()
    spark_remote: str | None = None

    @property
    def warehouse_backend(self) -> WarehouseBackend:
        """``AUDIT_WAREHOUSE`` when set; else ``"databricks"`` in production, local DuckDB."""
        if self.warehouse is not None:
            return self.warehouse
        if self.environment == "production" and self.databricks_host:
            return "databricks"
        return "local"

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS and value:
                shown.append(f"{f.name}='***'")
            elif f.name in _URL_FIELDS:
                shown.append(f"{f.name}={redact_url(value)!r}")
            else:
                shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def redacted(self) -> dict[str, str | None]:
        """Every setting as text, secrets shown as ``'***'`` (for ``doctor`` output)."""
        out: dict[str, str | None] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                out[f.name] = None
            elif f.name in _SECRET_FIELDS:
                out[f.name] = "***"
            elif f.name in _URL_FIELDS:
                out[f.name] = redact_url(str(value))
            else:
                out[f.name] = str(value)
        return out

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``).

        Raises ``ConfigError`` naming the variable for any invalid value.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            if value is None:
                return None
            value = value.strip()
            return value or None

        environment = (get("ENVIRONMENT") or "development").lower()
        if environment not in ("development", "production"):
            raise ConfigError(
                f"ENVIRONMENT must be 'development' or 'production', got {environment!r}"
            )

        host = get("DATABRICKS_HOST")
        warehouse_id = get("DATABRICKS_WAREHOUSE_ID")
        token = get("DATABRICKS_TOKEN")
        warehouse = _warehouse(get("AUDIT_WAREHOUSE"), environment, host, token, warehouse_id)
        if host:
            host = re.sub(r"^https?://", "", host).rstrip("/")

        fixtures = get("AUDIT_FIXTURES_DIR")
        fixtures_dir = Path(fixtures).expanduser() if fixtures else None

        base_url = get("AUDIT_LLM_BASE_URL") or C.DEFAULT_LLM_BASE_URL
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigError("AUDIT_LLM_BASE_URL must be an http:// or https:// URL")

        concurrency = _int(get("AUDIT_LLM_MAX_CONCURRENCY"), "AUDIT_LLM_MAX_CONCURRENCY")
        if concurrency is not None and concurrency < 1:
            raise ConfigError(f"AUDIT_LLM_MAX_CONCURRENCY must be >= 1, got {concurrency}")

        budget = _decimal(get("AUDIT_LLM_BUDGET_USD"), "AUDIT_LLM_BUDGET_USD")
        if budget is not None and budget < 0:
            raise ConfigError(f"AUDIT_LLM_BUDGET_USD must not be negative, got {budget}")

        ttl = _int(get("AUDIT_STATE_TTL_S"), "AUDIT_STATE_TTL_S")
        if ttl is not None and ttl < 1:
            raise ConfigError(f"AUDIT_STATE_TTL_S must be a positive number of seconds, got {ttl}")

        redis_url = _redis_url(get("REDIS_URL"), get("REDIS_HOST"), get("REDIS_DB"))
        state_buffer = get("AUDIT_STATE_BUFFER")
        rules = tuple(
            Path(p).expanduser() for p in (get("AUDIT_RULES_DIR") or "").split(os.pathsep) if p
        )

        log_format = (get("AUDIT_LOG_FORMAT") or "").lower() or (
            "json" if environment == "production" else "console"
        )
        if log_format not in ("console", "json"):
            raise ConfigError(f"AUDIT_LOG_FORMAT must be 'console' or 'json', got {log_format!r}")

        return cls(
            environment=environment,  # type: ignore[arg-type]
            databricks_host=host,
            databricks_warehouse_id=warehouse_id,
            databricks_token=token,
            fixtures_dir=fixtures_dir,
            openrouter_api_key=get("OPENROUTER_API_KEY"),
            llm_base_url=base_url.rstrip("/"),
            default_model=get("GPT4O_MINI_MODEL") or C.DEFAULT_MODEL,
            escalation_model=get("AUDIT_LLM_ESCALATION_MODEL") or C.DEFAULT_ESCALATION_MODEL,
            llm_max_concurrency=concurrency or C.DEFAULT_LLM_MAX_CONCURRENCY,
            llm_budget_usd=budget,
            redis_url=redis_url,
            state_ttl_s=ttl or C.DEFAULT_STATE_TTL_S,
            state_buffer=Path(state_buffer).expanduser() if state_buffer else None,
            log_format=log_format,  # type: ignore[arg-type]
            warehouse=warehouse,
            trail_key=get("AUDIT_TRAIL_KEY"),
            rules_dirs=rules,
            spark_remote=_spark_remote(get("AUDIT_SPARK_REMOTE")),
        )


def _spark_remote(url: str | None) -> str | None:
    if url is not None and not url.startswith("sc://"):
        raise ConfigError(
            f"AUDIT_SPARK_REMOTE must be a Spark Connect URL (sc://host:port), got {url!r}"
        )
    return url


def resolve_settings(settings: Settings | None) -> Settings:
    """``settings``, or ``Settings.from_env()`` when none is given (every ``from_settings``)."""
    return Settings.from_env() if settings is None else settings


def _warehouse(
    chosen: str | None,
    environment: str,
    host: str | None,
    token: str | None,
    warehouse_id: str | None,
) -> WarehouseBackend | None:
    """``AUDIT_WAREHOUSE``, checked. Databricks (chosen, or implied by production) needs
    its host, token and warehouse id: production never silently audits local samples."""
    warehouse = _WAREHOUSES.get(chosen.lower()) if chosen else None
    if chosen and warehouse is None:
        raise ConfigError(
            f"AUDIT_WAREHOUSE must be one of {', '.join(_WAREHOUSES)}, got {chosen!r}"
        )
    if warehouse is None and environment == "production":
        if not host:
            raise ConfigError(
                "ENVIRONMENT=production needs DATABRICKS_HOST (with DATABRICKS_TOKEN and "
                "DATABRICKS_WAREHOUSE_ID), or AUDIT_WAREHOUSE=local|spark to say otherwise; "
                "production never silently audits the local sample data"
            )
        why = "ENVIRONMENT=production with DATABRICKS_HOST set"
    elif warehouse == "databricks":
        why = "AUDIT_WAREHOUSE=databricks"
    else:
        return warehouse
    named = {
        "DATABRICKS_HOST": host,
        "DATABRICKS_TOKEN": token,
        "DATABRICKS_WAREHOUSE_ID": warehouse_id,
    }
    missing = [name for name, value in named.items() if not value]
    if missing:
        raise ConfigError(f"{why} also needs " + " and ".join(missing))
    return warehouse


def _int(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _decimal(raw: str | None, name: str) -> Decimal | None:
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value.is_finite():
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    return value


def _redis_url(url: str | None, host: str | None, db: str | None) -> str:
    if url:
        scheme = urlsplit(url).scheme
        if scheme not in _REDIS_SCHEMES:
            raise ConfigError(
                f"REDIS_URL must start with one of {', '.join(s + '://' for s in _REDIS_SCHEMES)}"
                f"; got scheme {scheme!r}"
            )
        return url
    db_num = _int(db, "REDIS_DB")
    if db_num is not None and db_num < 0:
        raise ConfigError(f"REDIS_DB must be >= 0, got {db_num}")
    if not host:
        if db is not None:
            raise ConfigError("REDIS_DB is set but neither REDIS_URL nor REDIS_HOST is")
        return C.DEFAULT_REDIS_URL
    name, sep, port = host.rpartition(":")
    if not sep or not name:
        raise ConfigError(f"REDIS_HOST must be 'host:port', got {host!r} (no port)")
    try:
        port_num = int(port)
    except ValueError:
        raise ConfigError(f"REDIS_HOST port must be an integer, got {port!r}") from None
    if not 0 < port_num < 65536:
        raise ConfigError(f"REDIS_HOST port must be 1-65535, got {port_num}")
    return f"redis://{name}:{port_num}/{db_num or 0}"
