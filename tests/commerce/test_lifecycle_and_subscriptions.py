"""The commerce lifecycle handler (merge, erase, export through the customers API) and
subscriptions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from patron.commerce import (
    OrderRecord,
    RefundLineInput,
    cancel_subscription,
    get_order,
    get_subscription,
    list_orders,
    list_subscriptions,
    prepare_subscription,
    refund_lines,
    renew_due_subscriptions,
    start_subscription,
)
from patron.core.clock import FrozenClock
from patron.core.errors import Conflict, ValidationFailed
from patron.customers import erase_customer, export_customer, list_timeline, merge_customers
from tests.commerce.conftest import events, new_customer, traits

Place = Callable[..., OrderRecord]


def _subscribe(session: Session, customer_id: str, **extra: object) -> str:
    raw: dict[str, object] = {
        "customer_id": customer_id,
        "plan": "Tea club",
        "price": "199000",
        "currency": "VND",
        "started_at": "2026-01-31T02:00:00Z",
    }
    raw.update(extra)
    return start_subscription(session, prepare_subscription(raw)).id


def test_merge_moves_orders_and_subscriptions_and_recomputes_traits(biz: Session, place: Place) -> None:
    source, target = new_customer(biz), new_customer(biz)
    place(source, external_id="S-1", placed_at="2026-01-05T10:00:00Z")
    place(
        target,
        external_id="T-1",
        placed_at="2026-03-01T10:00:00Z",
        currency="HUF",
        lines=[{"sku": "X", "quantity": 1, "unit_price": "4000"}],
    )
    sub = _subscribe(biz, source)
    merge_customers(biz, source_id=source, target_id=target)
    assert {o.external_id for o in list_orders(biz, customer_id=target).items} == {"S-1", "T-1"}
    assert list_orders(biz, customer_id=source).items == []
    assert [s.id for s in list_subscriptions(biz, customer_id=target).items] == [sub]
    assert traits(biz, target) == {
        "order_count": 2,
        "total_spent": Decimal("35.50"),  # 25.50 EUR + 4000 HUF × 0.0025
        "first_order_at": datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
        "last_order_at": datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
    }


def test_erase_keeps_orders_and_clears_refund_notes(biz: Session, customer: str, place: Place) -> None:
    order = place(customer)
    refund_lines(biz, order.id, [RefundLineInput(order.lines[0].id, 1)], reason="Call Mrs Lan at 0912345678")
    erase_customer(biz, customer)
    kept = get_order(biz, order.id)
    assert kept.total.amount == Decimal("25.50")
    assert kept.customer_id == customer
    assert [r.reason for r in kept.refunds] == [""]
    assert traits(biz, customer)["total_spent"] == Decimal("15.50")
    # the financial record can still change after erasure (no timeline entry for an erased person)
    refund_lines(biz, order.id, [RefundLineInput(order.lines[1].id, 1)])
    assert traits(biz, customer)["total_spent"] == Decimal("10.00")
    with pytest.raises(ValidationFailed) as info:
        place(customer, external_id="AFTER")
    assert info.value.code == "customer_erased"


def test_export_returns_orders_lines_refunds_and_subscriptions(
    biz: Session, customer: str, place: Place
) -> None:
    order = place(customer, external_id="E-1")
    refund_lines(biz, order.id, [RefundLineInput(order.lines[1].id, 1)], kind="return", reason="too small")
    sub = _subscribe(biz, customer)
    exported = export_customer(biz, customer)["commerce"]
    assert [o["external_id"] for o in exported["orders"]] == ["E-1"]
    first = exported["orders"][0]
    assert first["total"] == "25.50"
    assert first["status"] == "partially_refunded"
    assert [(ln["sku"], ln["quantity"], ln["refunded_quantity"]) for ln in first["lines"]] == [
        ("TEA-1", 2, 0),
        ("CUP-1", 1, 1),
    ]
    assert [(r["kind"], r["amount"], r["reason"]) for r in first["refunds"]] == [
        ("return", {"amount": "5.50", "currency": "EUR"}, "too small")
    ]
    assert [(s["id"], s["price"], s["interval"]) for s in exported["subscriptions"]] == [
        (sub, {"amount": "199000", "currency": "VND"}, "month")
    ]


def test_subscription_start_and_cancel(biz: Session, customer: str, frozen_clock: FrozenClock) -> None:
    sub_id = _subscribe(biz, customer, interval="month")
    started = events(biz, "subscription.started")
    assert [e.payload["subscription_id"] for e in started] == [sub_id]
    assert started[0].payload["price"] == {"amount": "199000", "currency": "VND"}
    assert started[0].payload["renews_at"] == "2026-02-28T02:00:00+00:00"
    cancelled = cancel_subscription(biz, sub_id)
    assert cancelled.status == "cancelled"
    assert cancelled.cancelled_at == frozen_clock.now()
    assert cancelled.renews_at is None
    assert [e.payload["cancelled_at"] for e in events(biz, "subscription.cancelled")] == [
        frozen_clock.now().isoformat()
    ]
    with pytest.raises(Conflict) as info:
        cancel_subscription(biz, sub_id)
    assert info.value.code == "subscription_not_active"
    kinds = [t.kind for t in list_timeline(biz, customer).items]
    assert "subscription_started" in kinds
    assert "subscription_cancelled" in kinds
    _subscribe(biz, customer, external_id="X")
    with pytest.raises(Conflict) as dup:
        _subscribe(biz, customer, external_id="X")
    assert dup.value.code == "duplicate_subscription"


def test_due_subscriptions_renew_from_their_start_once_per_period(biz: Session, customer: str) -> None:
    sub_id = _subscribe(biz, customer, interval="month")  # 31 January: renews 28 February
    other = _subscribe(biz, customer, interval="year")
    cancelled = _subscribe(biz, customer)
    cancel_subscription(biz, cancelled, at=datetime(2026, 2, 1, tzinfo=UTC))
    assert renew_due_subscriptions(biz, datetime(2026, 2, 28, 1, 59, tzinfo=UTC)) == 0
    assert renew_due_subscriptions(biz, datetime(2026, 2, 28, 2, 0, tzinfo=UTC)) == 1
    renewed = events(biz, "subscription.renewed")
    assert [
        (e.payload["subscription_id"], e.payload["period_start"], e.payload["renews_at"]) for e in renewed
    ] == [
        (sub_id, "2026-02-28T02:00:00+00:00", "2026-03-31T02:00:00+00:00")  # from the start: the 31st again
    ]
    assert renewed[0].payload["price"] == {"amount": "199000", "currency": "VND"}
    assert get_subscription(biz, sub_id).renews_at == datetime(2026, 3, 31, 2, 0, tzinfo=UTC)
    # run again at the same time: nothing more; the yearly and the cancelled one are untouched
    assert renew_due_subscriptions(biz, datetime(2026, 3, 1, tzinfo=UTC)) == 0
    assert get_subscription(biz, other).renews_at == datetime(2027, 1, 31, 2, 0, tzinfo=UTC)
    assert get_subscription(biz, cancelled).renews_at is None
    timeline = [t for t in list_timeline(biz, customer).items if t.kind == "subscription_renewed"]
    assert [t.occurred_at for t in timeline] == [datetime(2026, 2, 28, 2, 0, tzinfo=UTC)]


def test_renewals_long_past_are_caught_up_silently(biz: Session, customer: str) -> None:
    """A worker down since February, or a subscription imported with its history: the periods that
    began more than two days ago advance without "renewed" messages; the latest one is notified."""
    sub_id = _subscribe(biz, customer, interval="month")
    before = len(events(biz))
    assert renew_due_subscriptions(biz, datetime(2026, 6, 1, 3, 0, tzinfo=UTC)) == 1  # 31 May only
    renewed = events(biz, "subscription.renewed")
    assert [e.payload["period_start"] for e in renewed] == ["2026-05-31T02:00:00+00:00"]
    assert len(events(biz)) == before + 1
    assert get_subscription(biz, sub_id).renews_at == datetime(2026, 6, 30, 2, 0, tzinfo=UTC)
    assert renew_due_subscriptions(biz, datetime(2026, 9, 5, tzinfo=UTC)) == 0  # 30 June … 31 Aug: long past
    assert get_subscription(biz, sub_id).renews_at == datetime(2026, 9, 30, 2, 0, tzinfo=UTC)
