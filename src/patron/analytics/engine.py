"""Ibis backends for the analysis: DuckDB (default, embedded, memory-limited), PostgreSQL and PySpark.

The normalised transaction table (see :mod:`patron.analytics.sources`) is always built in DuckDB
first; the other engines receive it through Arrow and run the same Ibis expressions.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa

from patron.analytics.contracts import AnalysisError

ENGINES: tuple[str, ...] = ("duckdb", "postgres", "spark")
TX_TABLE = "patron_tx"
VIEWS_TABLE = "patron_views"


@dataclass(frozen=True)
class EngineConfig:
    name: str = "duckdb"
    memory_limit: str = "512MB"
    threads: int | None = None
    postgres_url: str | None = None


def default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@contextmanager
def duckdb_backend(config: EngineConfig) -> Iterator[Any]:
    """A DuckDB database in a private temporary directory (it spills there beyond the memory limit)."""
    with tempfile.TemporaryDirectory(prefix="patron-analyze-") as tmp:
        path = Path(tmp) / "analysis.duckdb"
        con = ibis.duckdb.connect(
            database=str(path),
            memory_limit=config.memory_limit,
            threads=config.threads or default_threads(),
            temp_directory=str(Path(tmp) / "spill"),
            preserve_insertion_order=True,
        )
        # return memory freed by finished queries to the system in the background (else the
        # allocator keeps it, and NumPy's arrays add up on top: the peak stays under 1 GiB at 10M rows)
        con.raw_sql("SET allocator_background_threads = true")
        try:
            yield con
        finally:
            con.disconnect()


_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


@contextmanager
def lowered_memory(con: Any, cap_mib: int) -> Iterator[None]:
    """DuckDB's memory limit at most ``cap_mib`` MiB while the block runs (NumPy's arrays need the room
    beside it; DuckDB spills beyond its limit), then as it was."""
    shown = str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
    number, _, unit = shown.partition(" ")
    try:
        current = float(number) * _UNITS[unit]
    except (KeyError, ValueError):
        current = float("inf")
    if current <= cap_mib * 2**20:
        yield
        return
    con.execute(f"SET memory_limit = '{cap_mib}MiB'")
    try:
        yield
    finally:
        con.execute(f"SET memory_limit = '{shown}'")


def postgres_url_for_ibis(url: str) -> str:
    """SQLAlchemy URLs (``postgresql+psycopg://``) to the form Ibis accepts (``postgres://``)."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgres://" + url[len(prefix) :]
    raise AnalysisError(f"not a PostgreSQL URL: {url}")


@contextmanager
def postgres_backend(url: str) -> Iterator[Any]:
    con = ibis.connect(postgres_url_for_ibis(url))
    try:
        yield con
    finally:
        con.disconnect()


_SPARK: Any = None


def spark_session() -> Any:
    """One local SparkSession per process (UTC session time zone, no UI, 127.0.0.1)."""
    global _SPARK
    if _SPARK is not None:
        return _SPARK
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise AnalysisError("the spark engine needs the optional extra: pip install 'patron[spark]'") from exc
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    warehouse = tempfile.mkdtemp(prefix="patron-spark-")
    _SPARK = (
        SparkSession.builder.master("local[2]")
        .appName("patron-analyze")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.warehouse.dir", warehouse)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.ansi.enabled", "false")
        .getOrCreate()
    )
    _SPARK.sparkContext.setLogLevel("ERROR")
    return _SPARK


@contextmanager
def spark_backend() -> Iterator[Any]:
    con = ibis.pyspark.connect(spark_session())
    yield con


def ship_views(con: Any, engine: str, table: pa.Table) -> Any:
    """Load the page views (customer_id, day, product) into a non-DuckDB engine."""
    if engine == "postgres":
        con.raw_sql(f"DROP TABLE IF EXISTS {VIEWS_TABLE}")
        con.raw_sql(
            f'CREATE TEMP TABLE {VIEWS_TABLE} (customer_id TEXT COLLATE "C", day INTEGER, product TEXT)'
        )
        con.insert(VIEWS_TABLE, table)
        return con.table(VIEWS_TABLE)
    frame = spark_session().createDataFrame(table)
    frame.createOrReplaceTempView(VIEWS_TABLE)
    return con.table(VIEWS_TABLE)


def ship_transactions(con: Any, engine: str, table: pa.Table) -> Any:
    """Load the normalised transactions into a non-DuckDB engine; returns the Ibis table."""
    if engine == "postgres":
        name = TX_TABLE
        con.raw_sql(f"DROP TABLE IF EXISTS {name}")
        con.raw_sql(
            f'CREATE TEMP TABLE {name} (customer_id TEXT COLLATE "C", '
            'order_id TEXT COLLATE "C", day INTEGER, amount NUMERIC(18, 4), '
            "market TEXT, product TEXT, quantity NUMERIC(18, 4), referred BOOLEAN, line_only BOOLEAN)"
        )
        con.insert(name, table)
        return con.table(name)
    if engine == "spark":
        frame = spark_session().createDataFrame(table)
        frame.createOrReplaceTempView(TX_TABLE)
        return con.table(TX_TABLE)
    raise AnalysisError(f"unknown engine {engine!r}")
