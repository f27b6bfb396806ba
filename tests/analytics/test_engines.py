"""The same KPIs, cohorts and RFM on DuckDB, PostgreSQL and Spark, on data with ties, time zones and
decimals (one Ibis expression per figure, run on every engine)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from patron.analytics import AnalyzeOptions, Columns, results
from patron.analytics.runner import file_loader, run
from tests.analytics.support import write_csv

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("PATRON_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

ROWS = [
    # ties: t1/t2/t3 have the same recency, frequency and spend; ids decide their rank
    ("t2", "2024-02-10", "19.99", "1"),
    ("t1", "2024-02-10", "19.99", "2"),
    ("t3", "2024-02-10T23:59:59+00:00", "19.99", "3"),
    # time zones: 2024-03-01T00:30+07:00 is 29 Feb in UTC
    ("z", "2024-03-01T00:30:00+07:00", "0.10", "4"),
    ("z", "2024-03-01T00:30:00+07:00", "0.20", "5"),
    ("z", "2024-05-15 12:00:00", "1000000.0001", "6"),
    # decimals that floats get wrong; a refund netted into its order
    ("d", "2023-12-31", "0.1", "7"),
    ("d", "2024-01-01", "0.2", "8"),
    ("d", "2024-01-02", "-0.1", "8"),
    ("é-ü", "2024-04-04", "33.33", "9"),
    ("É", "2024-04-04", "33.33", "10"),
    ("a", "2023-11-30", "5", "11"),
    ("a", "2024-06-01", "5", "12"),
    ("b", "2024-06-01", "0", "13"),
]


def _analyse(path: Path, engine: str, **extra: Any) -> dict[str, Any]:
    options = AnalyzeOptions(
        columns=Columns(order="order"),
        sections=("kpis", "cohorts", "rfm"),
        engine=engine,
        inactivity_days=45,
        timezone="UTC",
        **extra,
    )
    data = results.to_dict(run(file_loader(str(path)), options, postgres_url=PG_URL, want_scores=False))
    data.pop("timings_seconds")
    data["options"].pop("engine")
    return data


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("parity") / "log.csv", ROWS)


@pytest.fixture(scope="module")
def reference(log: Path) -> dict[str, Any]:
    return _analyse(log, "duckdb")


def test_duckdb_reference_figures(reference: dict[str, Any]) -> None:
    assert (reference["customers"], reference["orders"], reference["transactions"]) == (9, 13, 14)
    assert reference["kpis"]["revenue"] == 1000137.13  # 1000137.1301 shown with 2 places
    segments = {name: seg["customers"] for name, seg in reference["rfm"]["segments"].items()}
    assert sum(segments.values()) == 9


def _postgres_available() -> bool:
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except OperationalError:
        return False
    return True


def test_postgres_gives_identical_results(log: Path, reference: dict[str, Any]) -> None:
    if not _postgres_available():
        if IN_CI:
            pytest.fail("PostgreSQL is required under CI")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    assert _analyse(log, "postgres") == reference


def _require_spark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if IN_CI:
            pytest.fail("pyspark is required under CI (pip install 'patron[spark]')")
        pytest.skip("pyspark is not installed (the optional extra patron[spark])")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if IN_CI:
            pytest.fail("Java is required for Spark under CI")
        pytest.skip("Java is not installed")


@pytest.mark.spark
# py4j leaves its gateway sockets to the garbage collector (a ResourceWarning that is not ours)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_spark_gives_identical_results(log: Path, reference: dict[str, Any]) -> None:
    _require_spark()
    assert _analyse(log, "spark") == reference


@pytest.fixture(scope="module")
def product_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic log with a product per row: enough repeat buyers for every model."""
    import csv

    from tests.analytics.synthetic import generate

    folder = tmp_path_factory.mktemp("models")
    base = generate(folder / "base.csv", customers=120, seed=11)
    rows = list(csv.reader(base.read_text().splitlines()))
    products = ("tea", "cup", "cake", "pot")
    with (folder / "log.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*rows[0], "product"])
        for i, row in enumerate(rows[1:]):
            writer.writerow([*row, products[(i * 7 + len(row[0])) % 4]])
            if i % 3 == 0:  # a second line in every third order: baskets for "bought together"
                customer, day, _, order = row
                writer.writerow([customer, day, "0.50", order, products[(i + 1) % 4]])
    return folder / "log.csv"


def _everything(path: Path, engine: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from datetime import date

    from patron.analytics import scores

    options = AnalyzeOptions(
        columns=Columns(order="order", product="product"), engine=engine, calibration_end=date(2024, 3, 31)
    )
    analysis = run(file_loader(str(path)), options, postgres_url=PG_URL, want_scores=True)
    data = results.to_dict(analysis)
    data.pop("timings_seconds")
    data["options"].pop("engine")
    return data, scores.table(analysis).to_pylist()


@pytest.fixture(scope="module")
def everything_reference(product_log: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    data, rows = _everything(product_log, "duckdb")
    assert set(data["models"]) == {"bg_nbd", "pareto_nbd", "gamma_gamma"}
    assert data["recommendations"]["bought_together"]
    return data, rows


def test_postgres_models_scores_and_recommendations_match(
    product_log: Path, everything_reference: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    if not _postgres_available():
        if IN_CI:
            pytest.fail("PostgreSQL is required under CI")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    assert _everything(product_log, "postgres") == everything_reference


@pytest.mark.spark
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_spark_models_scores_and_recommendations_match(
    product_log: Path, everything_reference: tuple[dict[str, Any], list[dict[str, Any]]]
) -> None:
    _require_spark()
    assert _everything(product_log, "spark") == everything_reference
