"""Earning from orders: pending on order.placed, vesting after fulfilment + the pending period,
reversal line by line on refunds (debt when the points were spent), cancellation, caps, rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.commerce import (
    OrderRecord,
    RefundLineInput,
    cancel_order,
    fulfil_order,
    place_order,
    prepare_order,
    refund_lines,
)
from patron.core.clock import FrozenClock
from patron.core.outbox import DomainEvent, OutboxEvent
from patron.loyalty import (
    adjust_points,
    create_rule,
    get_account,
    on_order_placed,
    on_order_refunded,
    put_market_settings,
    reconcile,
    redeem_points,
    update_programme,
    vest_due,
)
from patron.loyalty.models import LoyaltyEntry, LoyaltyOrderEarning, LoyaltyOrderLine
from tests.loyalty.conftest import deliver


def vn_order(customer_id: str, **overrides: Any) -> OrderRecord:
    raw: dict[str, Any] = {
        "customer_id": customer_id,
        "market": "VN",
        "currency": "VND",
        "channel": "web",
        "placed_at": "2026-03-15T03:00:00+00:00",
        "discount": "5000",
        "tax": "10000",
        "shipping": "20000",
        "lines": [
            {"sku": "TEA-1", "name": "Trà xanh", "category": "tea", "quantity": 2, "unit_price": "150000"},
            {"sku": "CUP-1", "name": "Cốc", "category": "cups", "quantity": 1, "unit_price": "55000"},
        ],
    }
    raw.update(overrides)
    return raw_order(raw)


_session: dict[str, Session] = {}


def raw_order(raw: dict[str, Any]) -> OrderRecord:
    return place_order(_session["s"], prepare_order(raw))


@pytest.fixture(autouse=True)
def _bind(loyal: Session) -> None:
    _session["s"] = loyal


def balances(session: Session, customer_id: str) -> tuple[int, int, int]:
    a = get_account(session, customer_id)
    return a.available, a.pending, a.debt


def line_points(session: Session, order_id: str) -> list[tuple[int, int, int]]:
    rows = session.scalars(
        select(LoyaltyOrderLine)
        .where(LoyaltyOrderLine.order_id == order_id)
        .order_by(LoyaltyOrderLine.quantity.desc())
    ).all()
    return [(r.points, r.reversed_quantity, r.reversed_points) for r in rows]


def test_an_order_earns_pending_points_on_its_net_value(loyal: Session, member: str) -> None:
    order = vn_order(member)
    deliver(loyal)
    # net of discount, tax and shipping: 355,000 − 5,000 = 350,000 VND → 35 points (1 per 10,000)
    assert balances(loyal, member) == (0, 35, 0)
    # split over lines by their exact points (29.577… and 5.422…), largest remainder
    assert line_points(loyal, order.id) == [(30, 0, 0), (5, 0, 0)]
    earning = loyal.get(LoyaltyOrderEarning, order.id)
    assert earning is not None
    assert (earning.status, earning.vests_at) == ("pending", None)
    assert earning.explanation["reasons"][0] == {
        "code": "base_rate",
        "spend": "10000.0000",
        "points": 1,
        "exact": "35.0000",
        "rounded_down": 35,
    }
    deliver(loyal)  # nothing new; a second delivery of the same order earns nothing more
    on_order_placed(loyal, DomainEvent("again", "order.placed", {"order_id": order.id}, order.placed_at))
    assert balances(loyal, member) == (0, 35, 0)


def test_points_vest_after_fulfilment_plus_the_pending_period(
    loyal: Session, member: str, frozen_clock: FrozenClock
) -> None:
    order = vn_order(member)
    deliver(loyal)
    fulfil_order(loyal, order.id)  # at the frozen clock: 2026-03-15 10:00 UTC
    deliver(loyal)
    earning = loyal.get(LoyaltyOrderEarning, order.id)
    assert earning is not None
    assert earning.vests_at == datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
    frozen_clock.advance(timedelta(days=13))
    assert vest_due(loyal) == 0
    frozen_clock.advance(timedelta(days=1))
    assert vest_due(loyal) == 35
    assert vest_due(loyal) == 0
    account = get_account(loyal, member)
    assert (account.available, account.pending, account.lifetime_earned) == (35, 0, 35)
    earned = loyal.scalars(select(OutboxEvent).where(OutboxEvent.name == "points.earned")).all()
    assert [(e.payload["points"], e.payload["source"], e.payload["source_id"]) for e in earned] == [
        (35, "order", order.id)
    ]
    assert reconcile(loyal).ok


def test_with_no_pending_period_points_vest_on_fulfilment(loyal: Session, member: str) -> None:
    update_programme(loyal, pending_days=0)
    order = vn_order(member, fulfilment_status="fulfilled", fulfilled_at="2026-03-15T04:00:00+00:00")
    deliver(loyal)
    assert balances(loyal, member) == (35, 0, 0)
    assert loyal.get(LoyaltyOrderEarning, order.id).status == "vested"  # type: ignore[union-attr]


def test_a_refund_before_vesting_reduces_pending_line_by_line(
    loyal: Session, member: str, frozen_clock: FrozenClock
) -> None:
    order = vn_order(member)
    deliver(loyal)
    tea = next(line for line in order.lines if line.sku == "TEA-1")
    refund_lines(loyal, order.id, [RefundLineInput(tea.id, 1)])
    deliver(loyal)
    # the kept tea earns floor(30 × 1/2) = 15: 15 reversed
    assert balances(loyal, member) == (0, 20, 0)
    assert line_points(loyal, order.id) == [(30, 1, 15), (5, 0, 0)]
    fulfil_order(loyal, order.id)
    deliver(loyal)
    frozen_clock.advance(timedelta(days=15))
    assert vest_due(loyal) == 20
    assert balances(loyal, member) == (20, 0, 0)
    assert reconcile(loyal).ok


def test_a_refund_of_spent_points_becomes_debt_that_later_earnings_pay_first(
    loyal: Session, member: str, frozen_clock: FrozenClock
) -> None:
    update_programme(loyal, pending_days=0)
    order = vn_order(member, fulfilment_status="fulfilled", fulfilled_at="2026-03-15T04:00:00+00:00")
    deliver(loyal)
    redeem_points(loyal, member, 30)
    assert balances(loyal, member) == (5, 0, 0)
    tea = next(line for line in order.lines if line.sku == "TEA-1")
    refund_lines(loyal, order.id, [RefundLineInput(tea.id, 2)])
    deliver(loyal)
    assert balances(loyal, member) == (0, 0, 25)  # 30 reversed: 5 available taken, 25 owed
    reverse = loyal.scalars(select(LoyaltyEntry).where(LoyaltyEntry.kind == "reverse")).one()
    assert (reverse.points, reverse.debt) == (-5, 25)
    adjust_points(loyal, member, 10, reason="goodwill")
    assert balances(loyal, member) == (0, 0, 15)
    vn_order(
        member,
        placed_at="2026-03-15T05:00:00+00:00",
        fulfilment_status="fulfilled",
        fulfilled_at="2026-03-15T06:00:00+00:00",
    )
    deliver(loyal)
    assert balances(loyal, member) == (20, 0, 0)  # 35 earned: 15 paid the debt
    assert reconcile(loyal).ok
    # the refund event delivered again changes nothing
    event = loyal.scalars(select(OutboxEvent).where(OutboxEvent.name == "order.refunded")).one()
    on_order_refunded(loyal, DomainEvent(event.id, event.name, event.payload, event.occurred_at))
    assert balances(loyal, member) == (20, 0, 0)


def test_cancelling_an_order_reverses_its_pending_points(
    loyal: Session, member: str, frozen_clock: FrozenClock
) -> None:
    order = vn_order(member)
    deliver(loyal)
    cancel_order(loyal, order.id)
    deliver(loyal)
    assert balances(loyal, member) == (0, 0, 0)
    assert loyal.get(LoyaltyOrderEarning, order.id).status == "reversed"  # type: ignore[union-attr]
    frozen_clock.advance(timedelta(days=60))
    assert vest_due(loyal) == 0
    assert reconcile(loyal).ok


def test_orders_without_events_or_flagged_backfill_earn_nothing(loyal: Session, member: str) -> None:
    place_order(
        loyal,
        prepare_order(
            {
                "customer_id": member,
                "market": "VN",
                "currency": "VND",
                "placed_at": "2026-03-01T03:00:00+00:00",
                "lines": [{"sku": "TEA-1", "quantity": 1, "unit_price": "100000"}],
            }
        ),
        emit_events=False,
    )
    order = vn_order(member)
    on_order_placed(
        loyal, DomainEvent("x", "order.placed", {"order_id": order.id, "live": False}, order.placed_at)
    )
    assert balances(loyal, member) == (0, 0, 0)
    assert loyal.scalar(select(LoyaltyOrderEarning.order_id)) is None


def test_caps_per_order_and_per_day_in_the_market_time_zone(loyal: Session, member: str) -> None:
    put_market_settings(
        loyal,
        "HU",
        earn_spend_amount=Decimal(100),
        point_value_amount=Decimal(1),
        cap_per_order=40,
        cap_per_day=50,
    )

    def hu(at: str, amount: str) -> OrderRecord:
        return raw_order(
            {
                "customer_id": member,
                "market": "HU",
                "currency": "HUF",
                "placed_at": at,
                "lines": [{"sku": "PAP-1", "quantity": 1, "unit_price": amount}],
            }
        )

    hu("2026-03-10T08:00:00+00:00", "6000")  # 60 → capped at 40 per order
    hu("2026-03-10T22:30:00+00:00", "3000")  # 23:30 in Budapest: same day, only 10 left
    hu("2026-03-10T23:30:00+00:00", "3000")  # 00:30 on the 11th in Budapest: a new day
    deliver(loyal)
    earned = loyal.scalars(select(LoyaltyOrderEarning.points).order_by(LoyaltyOrderEarning.placed_at)).all()
    assert earned == [40, 10, 30]
    reasons = loyal.scalars(
        select(LoyaltyOrderEarning.explanation).order_by(LoyaltyOrderEarning.placed_at)
    ).all()
    assert [r["code"] for r in reasons[0]["reasons"]] == ["base_rate", "cap_per_order"]
    assert [r["code"] for r in reasons[1]["reasons"]] == ["base_rate", "cap_per_day"]


def test_rules_multiply_by_category_channel_and_window_and_add_order_bonuses(
    loyal: Session, member: str
) -> None:
    create_rule(
        loyal,
        {
            "name": "Tea double",
            "kind": "multiplier",
            "multiplier": "2",
            "conditions": {"categories": ["tea"]},
        },
    )
    create_rule(
        loyal,
        {
            "name": "App week",
            "kind": "multiplier",
            "multiplier": "1.5",
            "conditions": {
                "channels": ["app"],
                "starts_at": "2026-03-14T00:00:00+07:00",
                "ends_at": "2026-03-21T00:00:00+07:00",
            },
        },
    )
    create_rule(
        loyal,
        {
            "name": "First order",
            "kind": "bonus",
            "event_type": "order",
            "points": 50,
            "limit_per_customer": 1,
        },
    )
    create_rule(
        loyal, {"name": "Inactive", "kind": "bonus", "event_type": "order", "points": 999, "active": False}
    )
    first = vn_order(member, channel="app")
    second = vn_order(member, channel="web", placed_at="2026-03-16T03:00:00+00:00")
    third = vn_order(member, channel="app", placed_at="2026-03-22T03:00:00+00:00")
    deliver(loyal)
    points = {o: loyal.get(LoyaltyOrderEarning, o).points for o in (first.id, second.id, third.id)}  # type: ignore[union-attr]
    # exact points: tea 29.577… × 2 = 59.15…, cups 5.42…; app week × 1.5 on everything
    assert points[first.id] == int((Decimal("29.57746478") * 2 + Decimal("5.42253521")) * Decimal("1.5")) + 50
    assert points[second.id] == 64  # 59.15 + 5.42 = 64.57 → 64; the bonus was used
    assert points[third.id] == 64  # the window ended


def test_per_order_rounding_is_down_once(loyal: Session, member: str) -> None:
    order = raw_order(
        {
            "customer_id": member,
            "market": "TH",
            "currency": "THB",
            "placed_at": "2026-03-15T03:00:00+00:00",
            "lines": [
                {"sku": "A", "quantity": 1, "unit_price": "15.90"},
                {"sku": "B", "quantity": 1, "unit_price": "15.90"},
            ],
        }
    )
    deliver(loyal)
    # 31.80 THB → 3.18 → 3 points (per line it would have been 1 + 1 = 2)
    assert loyal.get(LoyaltyOrderEarning, order.id).points == 3  # type: ignore[union-attr]
    assert sorted(p for p, _, _ in line_points(loyal, order.id)) == [1, 2]
