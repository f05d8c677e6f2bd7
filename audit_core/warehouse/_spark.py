"""The Spark backend: Databricks SQL on Apache Spark, in-process or over Spark Connect.

Spark is the engine under Databricks SQL, so this backend answers exactly as Databricks
does (ANSI mode on, session time zone UTC); it is also the reference the local DuckDB
backend is proved against (``tests/parity``). A local session loads the same tables the
local backend builds from the fixtures (same rows, same types); a Spark Connect server
(``sc://host:port``) queries the tables it already has, or is loaded the same way.

The session is made once and shared by every worker thread (a SparkSession is
thread-safe); each statement runs under a job tag of its own, so cancelling one
(``interruptTag``) leaves the others running.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audit_core._logging import get_logger
from audit_core.errors import ConfigError, DatabricksConnectionError, QueryError
from audit_core.fixtures import default_dir

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
    spark.sparkContext.setLogLevel("ERROR")  # the JVM we started: no INFO/WARN chatter
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
    return spark


# fixtures ---------------------------------------------------------------------------


def load_fixtures(spark: Any, fixtures_dir: Path | None = None) -> dict[str, int]:
    """Create in Spark the tables the local backend builds from ``fixtures_dir``.

    The rows travel as Arrow from the local loader itself, so both engines hold the same
    values with the same types by construction (DECIMAL(18,2) stays DECIMAL(18,2), a
    TIMESTAMP stays a TIMESTAMP, a code like ``"4816"`` stays a STRING).
    """
    from audit_core.warehouse._local import LocalBackend

    local = LocalBackend(fixtures_dir or default_dir())
    conn = local.connect()
    try:
        loaded = {}
        for name in sorted(local.tables):
            table = conn.sql("SELECT * FROM " + _quoted(name, '"')).to_arrow_table()
            if "." in name:
                spark.sql("CREATE DATABASE IF NOT EXISTS " + _quoted(name.split(".")[0], "`"))
            frame = spark.createDataFrame(table)
            frame.write.mode("overwrite").saveAsTable(_quoted(name, "`"))
            loaded[name] = table.num_rows
    finally:
        conn.close()
        local.shutdown()
    _log.info("audit_core.warehouse.fixtures_loaded", path=str(local.fixtures_dir), tables=loaded)
    return loaded


def _quoted(name: str, quote: str) -> str:
    """``gold.x`` as ``"gold"."x"`` (or with backticks); a quote inside is doubled."""
    return ".".join(quote + part.replace(quote, quote * 2) + quote for part in name.split("."))


# the backend ------------------------------------------------------------------------

_TRANSPORT = ("Grpc", "Connection", "Unavailable", "Py4JNetworkError")


def spark_backend(
    remote: str | None = None,
    *,
    fixtures_dir: Path | None = None,
    load_fixtures: bool | None = None,
    master: str = "local[1]",
) -> SparkBackend:
    """Local Spark (``remote=None``) or Spark Connect (``remote="sc://host:port"``).

    A local session loads the fixture tables (``load_fixtures`` defaults to true); a
    Spark Connect server answers from the tables it has (defaults to false).
    """
    if remote is None:
        load = True if load_fixtures is None else load_fixtures
        return SparkBackend(
            lambda: local_session(master=master),
            fixtures_dir=fixtures_dir,
            load_fixtures=load,
            owns_session=None,
        )
    url = remote
    return SparkBackend(
        lambda: connect_session(url),
        fixtures_dir=fixtures_dir,
        load_fixtures=bool(load_fixtures),
        owns_session=False,
    )


class SparkBackend:
    """Runs Databricks SQL on one SparkSession, made on first use by ``session_factory``.

    Every worker thread shares the session (it is thread-safe); each statement runs
    under a job tag of its own, so cancelling it (``interruptTag``) stops only it.
    """

    name = "spark"

    def __init__(
        self,
        session_factory: Callable[[], Any],
        *,
        fixtures_dir: Path | None = None,
        load_fixtures: bool = False,
        owns_session: bool | None = True,
    ) -> None:
        self._factory = session_factory
        self.fixtures_dir = fixtures_dir
        self.load_fixtures = load_fixtures
        self.owns_session = owns_session
        self.tables: dict[str, int] = {}
        self._spark: Any = None
        self._lock = threading.Lock()
        self._tags = itertools.count()

    def session(self) -> Any:
        """The SparkSession, started (and loaded with the fixtures) on first use."""
        with self._lock:
            if self._spark is None:
                if self.owns_session is None:  # a local session another client runs stays up
                    self.owns_session = _active_session() is None
                spark = self._factory()
                if self.load_fixtures:
                    self.tables = load_fixtures(spark, self.fixtures_dir)
                self._spark = spark
            return self._spark

    # connections (called on worker threads) ------------------------------------------

    def connect(self) -> Any:
        try:
            spark = self.session()
        except ConfigError:
            raise
        except Exception as exc:
            raise DatabricksConnectionError(
                f"cannot start Spark: {type(exc).__name__}", before_send=True
            ) from None
        return _SparkConn(spark, f"audit-core-{next(self._tags)}")

    def run(
        self, conn: Any, sql: str, params: dict[str, Any] | None, want: str, native: bool = False
    ) -> Any:
        spark = conn.spark
        tag = conn.start()
        try:
            spark.addTag(tag)
            conn.interruptible()
            frame = spark.sql(sql, args=dict(params) if params else None)
            if want == "none":
                rows = frame.collect()
                return _affected(frame.columns, rows)
            return frame.toArrow()
        except Exception as exc:
            raise self.map_error(exc, sql, conn) from None
        finally:
            conn.finish()
            with contextlib.suppress(Exception):
                spark.removeTag(tag)

    def run_many(self, conn: Any, sql: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:  # Spark SQL has no multi-statement transactions
            self.run(conn, sql, row, "none")

    def cancel(self, conn: Any) -> None:
        tag = conn.tag
        if tag is not None:
            conn.cancelled = True
            conn.spark.interruptTag(tag)

    def close(self, conn: Any) -> None:
        conn.tag = None

    def shutdown(self) -> None:
        with self._lock:
            if self._spark is not None and self.owns_session:
                with contextlib.suppress(Exception):
                    self._spark.stop()
            self._spark = None

    # errors --------------------------------------------------------------------------

    @staticmethod
    def map_error(exc: Exception, sql: str, conn: Any = None) -> Exception:
        """A `QueryError` naming Spark's error class; transport failures are transient."""
        if isinstance(exc, (QueryError, DatabricksConnectionError)):
            return exc
        names = {klass.__name__ for klass in type(exc).__mro__}
        condition = None
        with contextlib.suppress(Exception):
            condition = exc.getCondition()  # type: ignore[attr-defined]
        message = str(exc).strip().split("\n", 1)[0]
        if conn is not None and conn.cancelled:
            return QueryError("query was cancelled", sql=sql)
        if condition is None and any(t in n for n in names for t in _TRANSPORT):
            return DatabricksConnectionError(f"Spark is unreachable: {message}", sql=sql)
        return QueryError(f"{condition or type(exc).__name__}: {message}", sql=sql)


def _active_session() -> Any:
    """The process's running SparkContext, if any (getActiveSession is per thread)."""
    _import_pyspark()
    import pyspark

    return getattr(pyspark.SparkContext, "_active_spark_context", None)


class _SparkConn:
    """A worker thread's handle: the shared session and its statement's tag."""

    __slots__ = ("cancelled", "prefix", "seq", "spark", "tag")

    def __init__(self, spark: Any, prefix: str) -> None:
        self.spark = spark
        self.prefix = prefix
        self.seq = itertools.count()
        self.tag: str | None = None
        self.cancelled = False

    def start(self) -> str:
        self.cancelled = False
        self.tag = f"{self.prefix}-{next(self.seq)}"
        return self.tag

    def finish(self) -> None:
        self.tag = None

    def interruptible(self) -> None:
        """Let a cancel kill the running tasks, not only stop scheduling new ones."""
        context = getattr(self.spark, "sparkContext", None)  # absent on Spark Connect
        if context is not None:
            with contextlib.suppress(Exception):
                context.setInterruptOnCancel(True)


def _affected(columns: list[str], rows: list[Any]) -> int | None:
    """``num_affected_rows`` when the statement reports it (DML on Delta), else None."""
    if rows and "num_affected_rows" in columns:
        value = rows[0][columns.index("num_affected_rows")]
        return int(value) if value is not None else None
    return None
