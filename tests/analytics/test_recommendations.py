"""Bought together, per-customer suggestions and replenishment on a literal log computed by hand."""

from __future__ import annotations

from pathlib import Path

from patron.analytics import AnalyzeOptions, Columns
from patron.analytics.runner import file_loader, run
from tests.analytics.support import write_csv

ROWS = [
    ("a", "2024-01-01", "10", "o1", "tea"),
    ("a", "2024-01-01", "5", "o1", "cup"),
    ("b", "2024-01-02", "10", "o2", "tea"),
    ("b", "2024-01-02", "5", "o2", "cup"),
    ("c", "2024-01-03", "10", "o3", "tea"),
    ("c", "2024-01-03", "3", "o3", "cake"),
    ("a", "2024-01-11", "10", "o4", "tea"),
    ("c", "2024-01-23", "10", "o5", "tea"),
]


def test_recommendations_by_hand(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ROWS, header=("customer_id", "date", "amount", "order", "product"))
    options = AnalyzeOptions(
        columns=Columns(order="order", product="product"), sections=("rfm", "recommendations")
    )
    a = run(file_loader(str(path)), options, want_scores=True)
    r = a.recommendations
    assert r is not None
    assert r["orders_with_products"] == 5
    # tea is in 5 orders, cup in 2, both together in 2; (tea, cake) together once: below the minimum
    assert r["bought_together"] == [
        {"product": "cup", "with": "tea", "orders": 2, "confidence": 1.0, "lift": 1.0},
        {"product": "tea", "with": "cup", "orders": 2, "confidence": 0.4, "lift": 1.0},
    ]
    # a: 1 → 11 Jan (10 days); c: 3 → 23 Jan (20 days)
    assert r["replenishment"] == [
        {"product": "tea", "customers": 2, "repeat_purchases": 2, "mean_days_between": 15.0}
    ]
    # only c lacks a product related to what they bought: cup (confidence tea → cup = 0.4)
    assert r["customers_with_suggestions"] == 1
    assert a.suggestions == {"c": "cup"}


def test_no_product_values_is_a_message(tmp_path: Path) -> None:
    rows = [("a", "2024-01-01", "10", "o1", "")]
    path = write_csv(tmp_path / "t.csv", rows, header=("customer_id", "date", "amount", "order", "product"))
    options = AnalyzeOptions(columns=Columns(order="order", product="product"), sections=("recommendations",))
    a = run(file_loader(str(path)), options)
    assert a.recommendations is None
    assert a.messages == ["recommendations need product values: the product column is empty"]
