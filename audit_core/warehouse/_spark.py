"""The Spark backend: Databricks SQL on Apache Spark, in-process or over Spark Connect.

Spark is the engine under Databricks SQL, so this backend answers exactly as Databricks
does (ANSI mode on, session time zone UTC); it is also the reference the local DuckDB
backend is proved against (``tests/parity``). A local session loads the fixture tables
with their declared types; a Spark Connect server (``sc://host:port``) queries the tables
it already has.

The session is made once and shared by every worker thread (a SparkSession is
thread-safe); each statement runs under a job tag of its own, so cancelling one
(``interruptTag``) leaves the others running.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import tempfile
import threading
import warnings
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from audit_core._logging import get_logger
from audit_core.errors import ConfigError, QueryError
from audit_core.fixtures import SUFFIXES, TableSpec, default_dir, load_manifest
from audit_core.retry import Transient

_log = get_logger("audit_core.warehouse")

# One small, quiet, loopback-only local session: the UI, shuffle partitions and the
# driver's address are what make a local Spark slow to start or reachable from outside.
LOCAL_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "1",
    "spark.driver.memory": "512m",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
# Databricks SQL semantics on a session we did not build (Spark Connect).
SESSION_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
}
_QUIET_LOGGERS = ("SQLQueryContextLogger", "py4j", "pyspark")


def _import_pyspark() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyspark warns about pandas versions on import
            import pyspark.sql
    except ImportError:
        raise ConfigError(
            "the Spark backend needs pyspark: pip install 'audit-core[spark]'"
        ) from None
    return pyspark.sql


def _quiet_python_loggers() -> None:
    import logging

    # pyspark logs every failed statement with its JVM stack; the caller gets a QueryError.
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def local_session(
    *, master: str = "local[1]", warehouse_dir: Path | None = None, **conf: str
) -> Any:
    """A local SparkSession with Databricks SQL semantics (``conf`` overrides any key)."""
    sql = _import_pyspark()
    warehouse = warehouse_dir or Path(tempfile.mkdtemp(prefix="audit-spark-"))
    builder = sql.SparkSession.builder.master(master).appName("audit-core")
    settings = {
        **LOCAL_CONF,
        "spark.sql.warehouse.dir": warehouse.as_posix(),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={warehouse.as_posix()}",
        **conf,
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            spark = builder.getOrCreate()
        except Exception as exc:  # JVM missing, port in use, ...
            raise ConfigError(f"cannot start local Spark: {exc}") from None
    spark.sparkContext.setLogLevel("OFF")
    _quiet_python_loggers()
    return spark


def connect_session(url: str) -> Any:
    """A Spark Connect session to ``url`` (``sc://host:port``) with Databricks semantics."""
    sql = _import_pyspark()
    if not url.startswith("sc://"):
        raise ConfigError(f"a Spark Connect URL starts with sc://, got {url.split(':')[0]}:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            spark = sql.SparkSession.builder.remote(url).getOrCreate()
        except Exception as exc:
            raise ConfigError(f"cannot reach Spark Connect at {url}: {exc}") from None
    for key, value in SESSION_CONF.items():
        spark.conf.set(key, value)
    _quiet_python_loggers()
    return spark


# fixtures ---------------------------------------------------------------------------


def _converter(declared: str) -> Any:
    kind = declared.strip().upper().split("(", 1)[0]
    if kind == "DECIMAL":
        return Decimal
    if kind == "TIMESTAMP":
        return lambda v: datetime.fromisoformat(v) if isinstance(v, str) else v
    if kind == "DATE":
        return lambda v: date.fromisoformat(v[:10]) if isinstance(v, str) else v
    if kind in ("INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT"):
        return int
    if kind in ("DOUBLE", "FLOAT"):
        return float
    if kind == "STRING":
        return lambda v: v if isinstance(v, str) else json.dumps(v)
    return lambda v: v


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_table(path).to_pylist())
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ndjson":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = json.loads(text)
    if not isinstance(rows, list):
        raise ConfigError(f"fixture {path} is not a JSON array of objects")
    return rows


def load_fixtures(spark: Any, fixtures_dir: Path | None = None) -> dict[str, int]:
    """Create each manifest table in Spark with its declared types; row count by table."""
    directory = fixtures_dir or default_dir()
    loaded: dict[str, int] = {}
    for spec in load_manifest(directory).values():
        path = next((p for s in SUFFIXES if (p := directory / f"{spec.file}{s}").is_file()), None)
        if path is None:
            continue
        loaded[spec.name] = _create_table(spark, spec, _read_rows(path))
    if not loaded:
        raise ConfigError(f"no fixture files in {directory}")
    _log.info("audit_core.warehouse.fixtures_loaded", path=str(directory), tables=loaded)
    return loaded


def _create_table(spark: Any, spec: TableSpec, rows: list[dict[str, Any]]) -> int:
    convert = {col: _converter(t) for col, t in spec.columns.items()}
    values = [
        tuple(None if (v := row.get(col)) is None else convert[col](v) for col in spec.columns)
        for row in rows
    ]
    schema = ", ".join(f"`{c}` {t}" for c, t in spec.columns.items())
    if "." in spec.name:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{spec.name.split('.')[0]}`")
    frame = spark.createDataFrame(values, schema=schema)
    frame.write.mode("overwrite").saveAsTable(_quoted(spec.name))
    return len(values)


def _quoted(name: str) -> str:
    return ".".join(f"`{part}`" for part in name.split("."))


# the backend ------------------------------------------------------------------------


class SparkBackend:
    """Runs Databricks SQL on a SparkSession made on first use by ``session_factory``."""

    name = "spark"

    def __init__(
        self,
        session_factory: Any,
        *,
        fixtures_dir: Path | None = None,
        load_fixtures: bool = False,
        stop_on_shutdown: bool = True,
    ) -> None:
        self._factory = session_factory
        self.fixtures_dir = fixtures_dir
        self.load_fixtures = load_fixtures
        self.stop_on_shutdown = stop_on_shutdown
        self.tables: dict[str, int] = {}
        self._spark: Any = None
        self._lock = threading.Lock()
        self._tags = itertools.count()

    def session(self) -> Any:
        with self._lock:
            if self._spark is None:
                spark = self._factory()
                if self.load_fixtures:
                    self.tables = load_fixtures(spark, self.fixtures_dir)
                self._spark = spark
            return self._spark

    # connections (called on worker threads) ------------------------------------------

    def connect(self) -> Any:
        return _SparkConn(self.session(), f"audit-core-{next(self._tags)}")

    def run(
        self, conn: Any, sql: str, params: dict[str, Any] | None, want: str, native: bool = False
    ) -> Any:
        spark = conn.spark
        tag = conn.new_tag()
        spark.addTag(tag)
        try:
            frame = spark.sql(sql, args=dict(params) if params else None)
            if want == "none":
                frame.collect()
                return None
            return frame.toArrow()
        except Exception as exc:
            raise self.map_error(exc, sql) from None
        finally:
            with contextlib.suppress(Exception):
                spark.removeTag(tag)

    def run_many(self, conn: Any, sql: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:  # Spark has no transactions: each row is its own statement
            self.run(conn, sql, row, "none")

    def cancel(self, conn: Any) -> None:
        if conn.tag is not None:
            conn.spark.interruptTag(conn.tag)

    def close(self, conn: Any) -> None:
        conn.tag = None

    def shutdown(self) -> None:
        with self._lock:
            if self._spark is not None and self.stop_on_shutdown:
                with contextlib.suppress(Exception):
                    self._spark.stop()
            self._spark = None

    # errors --------------------------------------------------------------------------

    def classify(self, exc: BaseException) -> Transient | None:
        return None  # Spark's own client retries its transport; SQL errors are final

    @staticmethod
    def map_error(exc: Exception, sql: str) -> Exception:
        if isinstance(exc, QueryError):
            return exc
        condition = None
        with contextlib.suppress(Exception):
            condition = exc.getCondition()  # type: ignore[attr-defined]
        message = str(exc).strip().split("\n", 1)[0]
        if (condition and "INTERRUPTED" in condition) or "cancel" in message.lower():
            return QueryError("query was cancelled", sql=sql)
        return QueryError(f"{condition or type(exc).__name__}: {message}", sql=sql)


class _SparkConn:
    """A worker thread's handle: the shared session and the tag of its current statement."""

    __slots__ = ("prefix", "seq", "spark", "tag")

    def __init__(self, spark: Any, prefix: str) -> None:
        self.spark = spark
        self.prefix = prefix
        self.seq = itertools.count()
        self.tag: str | None = None

    def new_tag(self) -> str:
        self.tag = f"{self.prefix}-{next(self.seq)}"
        return self.tag
