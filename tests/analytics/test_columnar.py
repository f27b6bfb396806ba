"""DuckDB's fast paths (per-customer NumPy figures, sparse recommendations) give exactly what the Ibis
expressions give: the same results JSON and the same scores, on data with ties, refunds, time zones,
several orders on a customer's first day, periods longer than the inactivity window, leap years,
duplicate product lines and customers without suggestions."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import sparse

from patron.analytics import AnalyzeOptions, Columns, results, scores
from patron.analytics.columnar import decimal_array, exact_sums
from patron.analytics.recommendations import Suggestions, _top
from patron.analytics.runner import file_loader, run
from tests.analytics.support import write_csv
from tests.analytics.test_engines import ROWS as PARITY_ROWS

HEADER = ("customer_id", "date", "amount", "order", "product")

# several orders on a first day (the first order is the lowest id as text: "10" < "9"), a refund
# netted on a later day, a customer first seen after the others' last purchase, repeat buyers
FIRST_DAY_ROWS = [
    ("a", "2023-01-05", "10.00", "9", "tea"),
    ("a", "2023-01-05", "7.50", "10", "cup"),
    ("a", "2023-01-05", "1.25", "10", "cup"),  # the same product twice in one order
    ("a", "2023-03-01", "4.00", "11", "tea"),
    ("a", "2023-03-02", "-1.00", "11", "tea"),  # a refund on a later day: its order's date stays
    ("b", "2023-01-05", "3.00", "20", "tea"),
    ("b", "2023-06-30", "3.00", "21", "cake"),
    ("b", "2024-02-29", "12.00", "22", "tea"),
    ("b", "2024-02-29", "2.00", "22", "cup"),
    ("c", "2023-02-01", "0", "30", "pot"),
    ("c", "2023-02-01", "5", "31", "pot"),
    ("c", "2024-03-15", "5", "32", "tea"),
    ("d", "2024-03-20", "8.88", "40", "cup"),
    ("d", "2024-03-20", "1.11", "41", "cup"),
    ("e", "2022-12-31", "2.00", "50", "cake"),
    ("é", "2023-07-01", "9.99", "60", "tea"),
    ("É", "2023-07-01", "9.99", "61", "cup"),
    ("z", "2023-07-01", "9.99", "62", "cake"),
]


def _both(path: Path, options: AnalyzeOptions) -> tuple[Any, Any]:
    out = []
    for fast in (True, False):
        analysis = run(file_loader(str(path)), options, want_scores=True, fast_paths=fast)
        # the fast paths really ran (and the Ibis ones when asked)
        assert ("customers" in analysis.timings) is fast
        if analysis.suggestions is not None:
            assert isinstance(analysis.suggestions, Suggestions) is fast
        data = results.to_dict(analysis)
        data.pop("timings_seconds")
        out.append((data, scores.table(analysis).to_pylist()))
    return out[0], out[1]


@pytest.mark.parametrize(
    ("period", "inactivity", "as_of"),
    [
        ("month", 45, None),  # every period shorter than the window: the linear method
        ("quarter", 30, None),  # longer periods: each customer's activity at both ends
        ("year", 365, date(2024, 3, 31)),  # the last 12 months span 29 February: 366 days > 365
        ("week", 7, None),
    ],
)
def test_fast_paths_match_ibis(tmp_path: Path, period: str, inactivity: int, as_of: date | None) -> None:
    path = write_csv(tmp_path / "t.csv", FIRST_DAY_ROWS, header=HEADER)
    options = AnalyzeOptions(
        columns=Columns(order="order", product="product"),
        period=period,  # type: ignore[arg-type]
        inactivity_days=inactivity,
        as_of=as_of,
        sections=("kpis", "cohorts", "rfm", "recommendations"),
    )
    fast, ibis_path = _both(path, options)
    assert fast == ibis_path
    # the hand-checkable parts: a's first order is "10" (7.50 + 1.25), not "9"
    first_revenue = fast[0]["kpis"]["new_vs_returning"]["first_order_revenue"]
    assert first_revenue == pytest.approx(8.75 + 3.00 + 0 + 8.88 + 2.00 + 9.99 * 3)


def test_fast_paths_match_ibis_on_the_parity_data(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", PARITY_ROWS)
    options = AnalyzeOptions(columns=Columns(order="order"), inactivity_days=45, timezone="UTC")
    fast, ibis_path = _both(path, options)
    assert fast == ibis_path


def test_fast_paths_match_ibis_without_an_order_column(tmp_path: Path) -> None:
    rows = [(c, d, a) for c, d, a, _, _ in FIRST_DAY_ROWS if not a.startswith("-")]
    path = write_csv(tmp_path / "t.csv", rows, header=("customer_id", "date", "amount"))
    fast, ibis_path = _both(path, AnalyzeOptions(sections=("kpis", "cohorts", "rfm")))
    assert fast == ibis_path


@pytest.fixture(scope="module")
def product_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.analytics.synthetic import generate

    folder = tmp_path_factory.mktemp("fast")
    base = generate(folder / "base.csv", customers=150, seed=5)
    rows = list(csv.reader(base.read_text().splitlines()))
    products = ("tea", "cup", "cake", "pot", "mug", "jam")
    with (folder / "log.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*rows[0], "product"])
        for i, row in enumerate(rows[1:]):
            writer.writerow([*row, products[(i * 5 + len(row[0])) % 6]])
            if i % 2 == 0:
                writer.writerow([row[0], row[1], "0.75", row[3], products[(i + 2) % 6]])
    return folder / "log.csv"


def test_everything_matches_on_a_synthetic_log(product_log: Path) -> None:
    options = AnalyzeOptions(columns=Columns(order="order", product="product"))
    fast, ibis_path = _both(product_log, options)
    assert set(fast[0]["models"]) == {"bg_nbd", "pareto_nbd", "gamma_gamma"}
    assert fast[0]["recommendations"]["customers_with_suggestions"] > 0
    assert fast == ibis_path


def test_everything_matches_with_a_calibration_period(product_log: Path) -> None:
    options = AnalyzeOptions(
        columns=Columns(order="order", product="product"), calibration_end=date(2024, 3, 31)
    )
    fast, ibis_path = _both(product_log, options)
    assert "holdout" in fast[0]
    assert fast == ibis_path


def test_top_n_is_the_sorted_order_with_ties_by_column() -> None:
    rng = np.random.default_rng(7)
    rows, cols = 300, 40
    dense = np.round(rng.random((rows, cols)), 1) * (rng.random((rows, cols)) < 0.3)  # many ties
    matrix = sparse.csr_matrix(dense)
    sizes = np.diff(matrix.indptr)
    has = np.flatnonzero(sizes)
    picked_rows, picked = _top(matrix, sizes, has, 5)
    expected_rows: list[int] = []
    expected: list[int] = []
    for r in has:
        nonzero = np.flatnonzero(dense[r])
        best = sorted(nonzero, key=lambda c: (-dense[r, c], c))[:5]
        expected_rows += [int(r)] * len(best)
        expected += [int(c) for c in best]
    assert picked_rows.tolist() == expected_rows
    assert picked.tolist() == expected


def test_exact_sums_and_decimals() -> None:
    values = np.array([2**52 + 1, 2**52 + 3, -(2**40) - 7, 12345, -1], dtype=np.int64)
    index = np.array([0, 0, 1, 1, 2])
    assert exact_sums(index, values, 4) == [2**53 + 4, -(2**40) + 12338, -1, 0]
    assert decimal_array(np.array([123456, -5, 0], dtype=np.int64)).to_pylist() == [
        __import__("decimal").Decimal("12.3456"),
        __import__("decimal").Decimal("-0.0005"),
        __import__("decimal").Decimal("0.0000"),
    ]


def test_suggestions_behave_like_a_dict() -> None:
    import pyarrow as pa

    found = Suggestions(pa.array(["a", "c"]), pa.array(["tea|cup", "cake"]))
    assert found == {"a": "tea|cup", "c": "cake"}
    assert found.get("b") is None
    assert found.aligned(pa.chunked_array([["a", "b", "c"]])).to_pylist() == ["tea|cup", None, "cake"]


def test_recommendations_alone_match(product_log: Path) -> None:
    """Without the per-customer step the recommendations number the customers themselves."""
    options = AnalyzeOptions(columns=Columns(order="order", product="product"), sections=("recommendations",))
    results_both = []
    for fast in (True, False):
        analysis = run(file_loader(str(product_log)), options, want_scores=True, fast_paths=fast)
        assert isinstance(analysis.suggestions, Suggestions) is fast
        assert analysis.recommendations is not None
        assert analysis.suggestions is not None
        results_both.append((analysis.recommendations, dict(analysis.suggestions)))
    assert results_both[0] == results_both[1]
    assert results_both[0][0]["replenishment"]
