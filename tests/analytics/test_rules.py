"""Pure rules: RFM scores and segments, periods; property tests with hypothesis."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from patron.analytics.rfm import SEGMENT_MAP, SEGMENTS, segment_of
from patron.analytics.tables import periods
from tests.analytics.support import analyse, write_csv


def test_segment_map_covers_the_grid_with_the_eleven_segments() -> None:
    assert sorted(SEGMENT_MAP) == [(r, fm) for r in range(1, 6) for fm in range(1, 6)]
    assert set(SEGMENT_MAP.values()) == set(SEGMENTS)
    assert len(SEGMENTS) == 11
    assert segment_of(5, 5, 5) == "Champions"
    assert segment_of(1, 1, 1) == "Lost"
    assert segment_of(1, 5, 4) == "Can't lose them"  # FM = ceil(9 / 2) = 5
    assert segment_of(5, 1, 2) == "Potential loyalists"  # FM = ceil(3 / 2) = 2


@given(
    first=st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 1, 1)),
    length=st.integers(min_value=0, max_value=800),
    period=st.sampled_from(["week", "month", "quarter", "year"]),
)
def test_periods_tile_the_window(first: date, length: int, period: str) -> None:
    as_of = first + timedelta(days=length)
    rows = periods(first, as_of, period)
    assert rows[0].start <= first <= rows[0].end
    assert rows[-1].end == as_of
    for a, b in itertools.pairwise(rows):
        assert b.start == a.end + timedelta(days=1)
    if period == "week":
        assert all(r.start.weekday() == 0 for r in rows)
    else:
        assert all(r.start.day == 1 for r in rows)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    spends=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=23),
)
def test_rfm_scores_are_ceil_of_five_rank_over_n(tmp_path: Path, spends: list[int]) -> None:
    # one order per customer on one day: R and F tie for everyone, so ids decide; M has ties too
    rows = [(f"c{i:02d}", "2024-01-01", str(s), str(i)) for i, s in enumerate(spends)]
    a = analyse(write_csv(tmp_path / "t.csv", rows), sections=("rfm",))
    n = len(spends)
    by_id = sorted(range(n), key=lambda i: f"c{i:02d}")
    by_m = sorted(range(n), key=lambda i: (spends[i], f"c{i:02d}"))
    expected_f = {by_id[k]: math.ceil(5 * (k + 1) / n) for k in range(n)}
    expected_m = {by_m[k]: math.ceil(5 * (k + 1) / n) for k in range(n)}
    seg_counts: dict[str, int] = {}
    for i in range(n):
        name = segment_of(expected_f[i], expected_f[i], expected_m[i])  # R ranks like F here
        seg_counts[name] = seg_counts.get(name, 0) + 1
    assert a.rfm is not None
    assert {k: v["customers"] for k, v in a.rfm["segments"].items() if v["customers"]} == seg_counts


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    purchases=st.lists(
        st.tuples(st.integers(min_value=0, max_value=5), st.integers(min_value=0, max_value=400)),
        min_size=1,
        max_size=40,
    ),
    inactivity=st.integers(min_value=31, max_value=200),
    period=st.sampled_from(["week", "month"]),
)
def test_linear_movements_equal_the_spell_period_join(
    tmp_path: Path, purchases: list[tuple[int, int]], inactivity: int, period: str
) -> None:
    from patron.analytics import AnalyzeOptions, Columns, engine, kpis, sources, tables
    from patron.analytics.runner import quiet_third_party

    start = date(2023, 1, 1)
    rows = [
        (f"c{c}", (start + timedelta(days=d)).isoformat(), "1", str(i)) for i, (c, d) in enumerate(purchases)
    ]
    path = write_csv(tmp_path / "p.csv", rows)
    with quiet_third_party(), engine.duckdb_backend(engine.EngineConfig()) as con:
        info = sources.load_file(con, str(path), AnalyzeOptions(columns=Columns(order="order")))
        assert info.first_day is not None
        assert info.last_day is not None
        o = tables.orders(con.table("patron_tx"), sources.day_number(info.last_day))
        c = tables.customers(o)
        grid = tables.periods(info.first_day, info.last_day, period)
        linear = kpis.movements_linear(kpis.boundaries(o, inactivity), c, grid, inactivity)
        assert linear == kpis.movements_joined(kpis.spells(o, inactivity), c, grid)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    purchases=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=6),
            st.integers(min_value=0, max_value=500),
            st.integers(min_value=0, max_value=300),
        ),
        min_size=1,
        max_size=30,
    ),
    inactivity=st.integers(min_value=31, max_value=400),
)
def test_kpi_invariants(tmp_path: Path, purchases: list[tuple[int, int, int]], inactivity: int) -> None:
    start = date(2022, 12, 20)
    rows = [
        (f"c{c}", (start + timedelta(days=d)).isoformat(), f"{cents / 100:.2f}", str(i))
        for i, (c, d, cents) in enumerate(purchases)
    ]
    a = analyse(write_csv(tmp_path / "k.csv", rows), inactivity_days=inactivity)
    k = a.kpis
    assert k is not None
    assert a.cohorts is not None
    customers = len({c for c, _, _ in purchases})
    assert k["customers"] == customers
    # every customer is new exactly once; months are never longer than the inactivity window here
    assert sum(m.N for m in k["by_period"]) == customers
    for m in k["by_period"]:
        assert m.S - m.lost + m.N + m.reactivated == m.E
        assert 0 <= m.lost <= m.S
    # the periods partition the orders and the revenue; the cohorts partition the customers
    assert sum(m.orders for m in k["by_period"]) == len(purchases)
    assert sum(m.revenue for m in k["by_period"]) == k["revenue"]
    assert sum(c.size for c in a.cohorts) == customers
    assert all(c.retention[0] == 1 for c in a.cohorts)
    assert a.rfm is not None
    assert sum(s["customers"] for s in a.rfm["segments"].values()) == customers
