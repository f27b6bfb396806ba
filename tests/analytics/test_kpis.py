"""KPIs against small literal logs computed by hand (docs/metrics.md has the same worked example)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from patron.analytics import AnalysisError, Columns, results
from tests.analytics.support import analyse, movement_rows, write_csv

# a: two orders on 5 Jan (same day), one on 10 Mar; b: one order on 1 Feb refunded in part on 3 Feb;
# c: 31 Mar 23:30 in New York = 1 Apr UTC.
MIXED = [
    ("a", "2024-01-05", "10.00", "o1"),
    ("a", "2024-01-05", "5.00", "o2"),
    ("a", "2024-03-10", "20.00", "o3"),
    ("b", "2024-02-01", "7.50", "o4"),
    ("b", "2024-02-03", "-2.50", "o4"),
    ("c", "2024-03-31T23:30:00-05:00", "3", "o5"),
]


def test_movements_with_reactivation_refund_and_time_zone(tmp_path: Path) -> None:
    a = analyse(write_csv(tmp_path / "t.csv", MIXED), timezone="UTC", inactivity_days=30)
    assert a.as_of == date(2024, 4, 1)
    # (start, S, E, N, lost, reactivated, orders, revenue)
    assert movement_rows(a) == [
        ("2024-01-01", 0, 1, 1, 0, 0, 2, "15.0000"),
        ("2024-02-01", 1, 1, 1, 1, 0, 1, "5.0000"),
        ("2024-03-01", 1, 1, 0, 1, 1, 1, "20.0000"),
        ("2024-04-01", 1, 2, 1, 0, 0, 1, "3.0000"),
    ]
    for m in a.kpis["by_period"]:  # type: ignore[index]
        assert m.S - m.lost + m.N + m.reactivated == m.E
    k = a.kpis
    assert k is not None
    assert (k["customers"], k["orders"], k["transactions"]) == (3, 5, 6)
    assert k["revenue"] == Decimal("43.0000")
    assert k["average_order_value"] == Decimal("8.6")
    assert k["repeat_purchase_rate"] == Decimal(1) / Decimal(3)
    assert k["purchase_frequency"] == Decimal(5) / Decimal(3)
    nvr = k["new_vs_returning"]
    assert (nvr["first_orders"], nvr["repeat_orders"]) == (3, 2)
    # first orders: a's o1 (10), b's o4 (7.50 − 2.50), c's o5 (3) → 18 / 3
    assert nvr["first_order_value"] == Decimal(6)
    assert nvr["repeat_order_value"] == Decimal("12.5")


def test_timezone_moves_the_date(tmp_path: Path) -> None:
    a = analyse(write_csv(tmp_path / "t.csv", MIXED), timezone="America/Los_Angeles", inactivity_days=30)
    # 1 Apr 04:30 UTC is 31 Mar 21:30 in Los Angeles (PDT); plain dates stay as they are
    assert a.as_of == date(2024, 3, 31)
    assert [row[0] for row in movement_rows(a)] == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert movement_rows(a)[-1] == ("2024-03-01", 1, 2, 1, 1, 1, 2, "23.0000")


def test_one_customer(tmp_path: Path) -> None:
    a = analyse(write_csv(tmp_path / "t.csv", [("solo", "2024-05-02", "12.34", "x")]))
    k = a.kpis
    assert k is not None
    assert (k["customers"], k["orders"], k["repeat_customers"]) == (1, 1, 0)
    assert k["repeat_purchase_rate"] == 0
    assert k["retention_rate"] is None
    assert k["churn_rate"] is None
    assert k["clv_simple"] is None
    assert movement_rows(a) == [("2024-05-01", 0, 1, 1, 0, 0, 1, "12.3400")]
    assert a.cohorts is not None
    assert [(c.label, c.size, c.retention) for c in a.cohorts] == [("2024-05", 1, [Decimal(1)])]
    assert a.rfm is not None
    assert a.rfm["segments"]["Champions"]["customers"] == 1  # n = 1: every score is ceil(5·1/1) = 5
    data = results.to_dict(a)
    assert data["kpis"]["retention_rate"] is None
    assert "NaN" not in results.dumps(data)


def test_no_repeat_buyers(tmp_path: Path) -> None:
    rows = [("a", "2024-01-10", "10", "1"), ("b", "2024-02-10", "20", "2"), ("c", "2024-03-10", "30", "3")]
    k = analyse(write_csv(tmp_path / "t.csv", rows)).kpis
    assert k is not None
    assert k["repeat_purchase_rate"] == 0
    assert k["new_vs_returning"]["repeat_order_value"] is None
    assert k["new_vs_returning"]["repeat_to_first_ratio"] is None
    assert k["purchase_frequency"] == 1


def test_orders_without_order_column_are_rows(tmp_path: Path) -> None:
    rows = [("a", "2024-01-05", "10"), ("a", "2024-01-05", "5"), ("b", "2024-01-06", "0")]
    path = write_csv(tmp_path / "t.csv", rows, header=("customer_id", "date", "amount"))
    k = analyse(path, order=False).kpis
    assert k is not None
    assert (k["customers"], k["orders"]) == (2, 3)  # zero amounts are valid orders
    assert k["revenue"] == Decimal(15)


def test_customers_first_seen_after_as_of_are_left_out(tmp_path: Path) -> None:
    rows = [
        ("a", "2024-01-05", "10", "1"),
        ("a", "2024-02-05", "10", "2"),
        ("late", "2024-03-01", "99", "3"),
        ("a", "2024-03-02", "10", "4"),
    ]
    a = analyse(write_csv(tmp_path / "t.csv", rows), as_of=date(2024, 2, 29))
    k = a.kpis
    assert k is not None
    assert (k["customers"], k["orders"], k["transactions"]) == (1, 2, 2)
    assert k["revenue"] == Decimal(20)
    assert a.rfm is not None
    assert a.rfm["customers"] == 1


def test_last_twelve_months_churn_and_simple_clv(tmp_path: Path) -> None:
    # inactivity 365: a, b active at the start of the 12 months (bought in 2022); a buys again
    rows = [
        ("a", "2022-06-01", "100", "1"),
        ("b", "2022-07-01", "50", "2"),
        ("a", "2023-03-01", "100", "3"),
        ("c", "2023-05-01", "40", "4"),
    ]
    a = analyse(write_csv(tmp_path / "t.csv", rows), as_of=date(2023, 6, 30))
    k = a.kpis
    assert k is not None
    year = k["last_twelve_months"]
    assert (year.start, year.end) == (date(2022, 7, 1), date(2023, 6, 30))
    # S: active on 30 Jun 2022 → a only (b's first order is 1 Jul 2022, inside the year: new)
    assert (year.S, year.E, year.N, year.lost, year.reactivated) == (1, 3, 2, 0, 0)
    assert k["churn_rate"] == 0
    assert k["lifespan_years"] is None
    assert k["clv_simple"] is None
    assert k["annual_net_churn"] == Decimal(1 - 3) / Decimal(1 + 2)


def test_annual_churn_gives_lifespan(tmp_path: Path) -> None:
    rows = [("a", "2022-01-10", "100", "1"), ("b", "2022-01-20", "100", "2"), ("b", "2022-12-01", "100", "3")]
    a = analyse(write_csv(tmp_path / "t.csv", rows), as_of=date(2023, 6, 30))
    k = a.kpis
    assert k is not None
    year = k["last_twelve_months"]
    assert (year.S, year.E, year.lost) == (2, 1, 1)  # a lapses on 10 Jan 2023; b stays active
    assert k["churn_rate"] == Decimal("0.5")
    assert k["lifespan_years"] == 2
    aov, per_year = Decimal(100), k["purchase_frequency_per_year"]
    assert k["clv_simple"] == aov * per_year * 2
    assert k["clv_revenue_lifespan"] == k["revenue_per_customer_per_year"] * 2


@pytest.mark.parametrize("period", ["week", "quarter", "year"])
def test_other_periods_partition_the_orders(tmp_path: Path, period: str) -> None:
    a = analyse(write_csv(tmp_path / "t.csv", MIXED), period=period, inactivity_days=30)
    rows = movement_rows(a)
    assert sum(r[6] for r in rows) == 5
    assert sum(Decimal(r[7]) for r in rows) == Decimal(43)
    if period == "week":
        assert rows[0][0] == "2024-01-01"  # weeks start on Monday
        assert date.fromisoformat(rows[1][0]).weekday() == 0


def test_several_currencies_are_converted_with_patrons_dated_rates(tmp_path: Path, db_url: str) -> None:
    from patron.analytics import AnalyzeOptions, Columns, analyze
    from patron.core.business import set_fx_rate, update_business
    from patron.core.db import get_database

    with get_database(db_url).unit_of_work() as session:
        update_business(session, reporting_currency="EUR")
        set_fx_rate(session, base="VND", quote="EUR", valid_on=date(2024, 1, 1), rate=Decimal("0.000036"))
        set_fx_rate(session, base="VND", quote="EUR", valid_on=date(2024, 3, 1), rate=Decimal("0.000040"))
        set_fx_rate(session, base="EUR", quote="USD", valid_on=date(2024, 1, 1), rate=Decimal("1.25"))
    rows = [
        ("a", "2024-02-01", "1000000", "1", "VND"),  # 36 EUR (rate of 1 Jan)
        ("a", "2024-03-05", "1000000", "2", "VND"),  # 40 EUR (rate of 1 Mar)
        ("b", "2024-03-06", "10", "3", "USD"),  # 8 EUR (inverse of EUR→USD)
        ("c", "2024-03-07", "5.55", "4", "EUR"),
    ]
    path = write_csv(tmp_path / "fx.csv", rows, header=("customer_id", "date", "amount", "order", "currency"))
    options = AnalyzeOptions(columns=Columns(order="order", currency="currency"), sections=("kpis",))
    a = analyze(str(path), options=options, database_url=db_url)
    assert a.currency == "EUR"
    assert a.kpis is not None
    assert a.kpis["revenue"] == Decimal("89.55")

    early = [("a", "2023-12-31", "1000000", "1", "VND"), ("c", "2024-03-07", "5.55", "4", "EUR")]
    path = write_csv(
        tmp_path / "early.csv", early, header=("customer_id", "date", "amount", "order", "currency")
    )
    with pytest.raises(AnalysisError, match="row 1, column 'currency': 'VND': no FX rate"):
        analyze(str(path), options=options, database_url=db_url)


def test_docs_simple_clv_example(tmp_path: Path) -> None:
    rows = [("a", "2022-01-10", "100", "1"), ("b", "2022-01-20", "100", "2"), ("b", "2022-12-01", "100", "3")]
    data = results.to_dict(analyse(write_csv(tmp_path / "t.csv", rows), as_of=date(2023, 6, 30)))
    assert data["kpis"]["clv_simple"] == 204.05  # docs/metrics.md, "Simple customer lifetime value"
    assert data["kpis"]["lifespan_years"] == 2.0


def test_markets_and_referrals(tmp_path: Path) -> None:
    rows = [
        ("a", "2024-01-05", "10", "1", "VN", "yes"),
        ("a", "2024-01-06", "20", "2", "VN", "yes"),
        ("b", "2024-01-07", "5", "3", "HU", ""),
        ("c", "2024-01-08", "7", "4", "", "0"),
    ]
    path = write_csv(
        tmp_path / "m.csv", rows, header=("customer_id", "date", "amount", "order", "market", "referred")
    )
    columns = Columns(order="order", market="market", referred="referred")
    data = results.to_dict(analyse(path, columns=columns, sections=("kpis",)))
    assert data["kpis"]["by_market"] == {
        "HU": {"customers": 1, "orders": 1, "revenue": 5.0, "average_order_value": 5.0},
        "VN": {"customers": 1, "orders": 2, "revenue": 30.0, "average_order_value": 15.0},
    }
    assert data["kpis"]["referral_rate"] == 0.333333  # a of a, b, c
