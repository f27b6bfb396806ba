"""Per-customer summaries for the models, by hand: occasions, same-day orders, refunds, holdout."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from patron.analytics import AnalyzeOptions, Columns, engine, sources, summaries, tables
from patron.analytics.runner import quiet_third_party
from tests.analytics.support import write_csv

ROWS = [
    ("a", "2024-01-05", "10.00", "o1"),
    ("a", "2024-01-05", "5.00", "o2"),  # same day as o1: one occasion worth 15
    ("a", "2024-03-10", "20.00", "o3"),
    ("a", "2024-03-20", "30.00", "o6"),
    ("a", "2024-03-21", "-4.00", "o6"),  # refund netted into o6 (26), dated by its order
    ("b", "2024-02-01", "7.50", "o4"),
    ("c", "2024-03-31", "3", "o5"),
    ("late", "2024-05-01", "9", "o7"),  # after as_of: not a customer
]


def _fetch(path: Path, as_of: date, cutoff: date | None = None) -> summaries.Summary:
    with quiet_third_party(), engine.duckdb_backend(engine.EngineConfig()) as con:
        sources.load_file(con, str(path), AnalyzeOptions(columns=Columns(order="order")))
        o = tables.orders(con.table("patron_tx"), sources.day_number(as_of))
        occ = tables.occasions(o)
        return summaries.fetch(
            occ, sources.day_number(as_of), None if cutoff is None else sources.day_number(cutoff)
        )


def test_frequency_recency_t_and_monetary(tmp_path: Path) -> None:
    s = _fetch(write_csv(tmp_path / "t.csv", ROWS), date(2024, 4, 1))
    assert s.customer_id.to_pylist() == ["a", "b", "c"]
    # a: occasions 5 Jan, 10 Mar, 20 Mar → frequency 2, recency 75 days, T 87 days,
    # repeat spend (20 + 26) / 2 = 23
    assert s.frequency.tolist() == [2.0, 0.0, 0.0]
    assert s.recency_days.tolist() == [75.0, 0.0, 0.0]
    assert s.T_days.tolist() == [87.0, 60.0, 1.0]
    assert s.monetary.tolist() == [23.0, 0.0, 0.0]


def test_calibration_and_holdout(tmp_path: Path) -> None:
    s = _fetch(write_csv(tmp_path / "t.csv", ROWS), date(2024, 4, 1), cutoff=date(2024, 3, 15))
    # c is first seen after the calibration end: not in the holdout group
    assert s.customer_id.to_pylist() == ["a", "b"]
    assert s.frequency.tolist() == [1.0, 0.0]
    assert s.recency_days.tolist() == [65.0, 0.0]
    assert s.T_days.tolist() == [70.0, 43.0]
    assert s.holdout is not None
    assert np.array_equal(s.holdout, [1.0, 0.0])  # a's 20 Mar occasion
