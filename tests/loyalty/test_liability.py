"""Liability per market (money and reporting currency) and breakage, against hand-computed values."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from patron.commerce import place_order, prepare_order
from patron.core.clock import FrozenClock
from patron.customers import CustomerCreateInput, create_customer
from patron.loyalty import adjust_points, expire_due, liability, redeem_points, update_programme
from tests.loyalty.conftest import deliver


def test_liability_and_breakage(loyal: Session, frozen_clock: FrozenClock) -> None:
    update_programme(loyal, expiry_policy="rolling", expiry_months=1)
    d = create_customer(loyal, CustomerCreateInput(first_name="D", email="d@example.com")).id
    adjust_points(loyal, d, 100, reason="history")
    redeem_points(loyal, d, 30)
    frozen_clock.advance(timedelta(days=40))  # 2026-04-24: D's lot expired
    assert expire_due(loyal) == 70
    empty = liability(loyal)
    assert (empty.total_points, empty.breakage_rate, empty.markets) == (0, Decimal("0.7000"), ())

    a = create_customer(loyal, CustomerCreateInput(first_name="A", email="a@example.com", country="HU")).id
    place_order(
        loyal,
        prepare_order(
            {
                "customer_id": a,
                "market": "VN",
                "currency": "VND",
                "placed_at": "2026-04-20T03:00:00+00:00",
                "lines": [{"sku": "TEA-1", "quantity": 1, "unit_price": "350000"}],
            }
        ),
    )
    deliver(loyal)
    adjust_points(loyal, a, 65, reason="goodwill")  # 35 pending + 65 available: home VN (its order)
    b = create_customer(loyal, CustomerCreateInput(first_name="B", email="b@example.com", country="HU")).id
    adjust_points(loyal, b, 400, reason="goodwill")  # no orders: home HU by country
    c = create_customer(loyal, CustomerCreateInput(first_name="C", email="c@example.com")).id
    adjust_points(loyal, c, 7, reason="goodwill")  # unassigned

    report = liability(loyal)
    assert report.reporting_currency == "EUR"
    rows = [(m.market_code, m.currency, m.points, m.value, m.reporting_value) for m in report.markets]
    assert rows == [
        ("HU", "HUF", 400, Decimal("400.00"), Decimal("1.00")),  # 400 × 1 HUF × 0.0025
        ("VN", "VND", 100, Decimal("10000"), Decimal("0.40")),  # 100 × 100 VND × 0.000040
        (None, None, 7, None, None),
    ]
    assert (report.total_points, report.total_reporting_value) == (507, Decimal("1.40"))
    assert (report.breakage_rate, report.expected_breakage_points, report.expected_breakage_value) == (
        Decimal("0.7000"),
        354,
        Decimal("0.98"),
    )
