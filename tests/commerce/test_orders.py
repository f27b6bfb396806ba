"""Orders through the public commerce functions: totals, rounding, events in the outbox, traits
kept current (with FX), refunds per line, cancellation, the delayed-order job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from patron.commerce import (
    OrderRecord,
    RefundLineInput,
    cancel_order,
    emit_delayed_orders,
    fulfil_order,
    get_order,
    get_order_stats,
    mark_delivered,
    place_order,
    prepare_subscription,
    refund_lines,
    start_subscription,
)
from patron.core.audit import list_audit
from patron.core.business import update_business
from patron.core.clock import FrozenClock
from patron.core.errors import Conflict, NotFound, ValidationFailed
from patron.core.money import Money
from patron.customers import list_timeline
from tests.commerce.conftest import events, new_customer, order_input, traits

Place = Callable[..., OrderRecord]


def test_place_order_writes_order_event_audit_timeline_and_traits(
    biz: Session, customer: str, place: Place, frozen_clock: FrozenClock
) -> None:
    order = place(customer, external_id="WEB-1", market="HU", channel="web", shipping="4.50", tax="0")
    assert order.subtotal == Money(Decimal("25.50"), "EUR")
    assert order.total == Money(Decimal("30.00"), "EUR")
    assert [(line.sku, line.quantity, str(line.total.amount)) for line in order.lines] == [
        ("TEA-1", 2, "20.00"),
        ("CUP-1", 1, "5.50"),
    ]
    assert order.status == "placed"
    assert order.fulfilment_status == "unfulfilled"
    assert order.placed_at == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)

    placed = events(biz, "order.placed")
    assert len(placed) == 1
    payload = placed[0].payload
    assert payload["order_id"] == order.id
    assert payload["customer_id"] == customer
    assert payload["total"] == {"amount": "30.00", "currency": "EUR"}
    assert payload["reporting_total"] == {"amount": "30.00", "currency": "EUR"}
    assert [(ln["sku"], ln["quantity"], ln["total"]) for ln in payload["lines"]] == [
        ("TEA-1", 2, "20.00"),
        ("CUP-1", 1, "5.50"),
    ]

    audit = list_audit(biz, entity_type="order", entity_id=order.id)
    assert [a.action for a in audit] == ["order.placed"]
    timeline = list_timeline(biz, customer).items
    assert [(t.kind, t.data["order_id"]) for t in timeline if t.kind.startswith("order")] == [
        ("order_placed", order.id)
    ]

    assert traits(biz, customer) == {
        "order_count": 1,
        "total_spent": Decimal("30.00"),
        "first_order_at": datetime(2026, 3, 10, 9, 0, tzinfo=UTC),
        "last_order_at": datetime(2026, 3, 10, 9, 0, tzinfo=UTC),
    }


def test_traits_convert_each_order_at_its_date_and_net_refunds(
    biz: Session, customer: str, place: Place
) -> None:
    eur = place(customer)  # 25.50 EUR on 2026-03-10
    # 3 × 150,000.4 VND → unit price rounds to 150,000 (VND has no minor unit); + 30,000 shipping
    vnd = place(
        customer,
        currency="VND",
        market="VN",
        placed_at="2026-02-15T03:00:00+07:00",
        shipping="30000",
        lines=[{"sku": "PHO", "name": "Phở kit", "quantity": 3, "unit_price": "150000.4"}],
    )
    assert vnd.lines[0].unit_price == Money(Decimal("150000"), "VND")
    assert vnd.total.amount == Decimal("480000")
    # 480,000 VND × 0.000036 (the rate in force on 15 Feb) = 17.28 EUR
    assert vnd.reporting_net == Money(Decimal("17.28"), "EUR")
    stats = get_order_stats(biz, customer)
    assert stats.order_count == 2
    assert stats.total_spent == Money(Decimal("42.78"), "EUR")
    assert traits(biz, customer)["total_spent"] == Decimal("42.78")
    assert traits(biz, customer)["first_order_at"] == datetime(2026, 2, 14, 20, 0, tzinfo=UTC)
    assert traits(biz, customer)["last_order_at"] == datetime(2026, 3, 10, 9, 0, tzinfo=UTC)

    tea = eur.lines[0]
    refunds = refund_lines(biz, eur.id, [RefundLineInput(tea.id, 1)], reason="broken")
    assert [(r.quantity, r.amount) for r in refunds] == [(1, Money(Decimal("10.00"), "EUR"))]
    assert traits(biz, customer)["order_count"] == 2
    assert traits(biz, customer)["total_spent"] == Decimal("32.78")  # 15.50 + 17.28


def test_order_date_is_taken_in_the_business_time_zone(biz: Session, customer: str, place: Place) -> None:
    # 23:30 UTC on 28 Feb is 00:30 on 1 March in Budapest: the March rate (0.000040) applies
    order = place(
        customer,
        currency="VND",
        placed_at="2026-02-28T23:30:00+00:00",
        lines=[{"sku": "X", "quantity": 1, "unit_price": "1000000"}],
    )
    assert order.reporting_net == Money(Decimal("40.00"), "EUR")


def test_inverse_fx_rate_is_used(biz: Session, customer: str, place: Place) -> None:
    order = place(customer, currency="USD", lines=[{"sku": "X", "quantity": 1, "unit_price": "100"}])
    assert order.reporting_net == Money(Decimal("80.00"), "EUR")  # 1 EUR = 1.25 USD


def test_missing_fx_rate_is_a_clear_422_and_writes_nothing(biz: Session, customer: str, place: Place) -> None:
    with pytest.raises(ValidationFailed) as info:
        place(customer, currency="THB", lines=[{"sku": "X", "quantity": 1, "unit_price": "100"}])
    assert info.value.code == "fx_rate_missing"
    assert info.value.errors[0]["loc"] == ["currency"]
    assert events(biz) == [e for e in events(biz) if e.name != "order.placed"]
    assert traits(biz, customer) == {}


def test_reporting_currency_change_revalues_orders_on_refresh(
    biz: Session, customer: str, place: Place
) -> None:
    from patron.commerce import refresh_order_stats
    from patron.core.business import set_fx_rate

    place(customer, currency="HUF", lines=[{"sku": "X", "quantity": 1, "unit_price": "10000"}])
    assert traits(biz, customer)["total_spent"] == Decimal("25.00")
    update_business(biz, reporting_currency="USD")
    set_fx_rate(biz, base="HUF", quote="USD", valid_on=datetime(2026, 1, 1).date(), rate=Decimal("0.0030"))
    refresh_order_stats(biz, [customer])
    assert traits(biz, customer)["total_spent"] == Decimal("30.00")


def test_unknown_customer_and_market_are_rejected(biz: Session, customer: str, place: Place) -> None:
    with pytest.raises(ValidationFailed) as info:
        place("00000000-0000-7000-8000-000000000000")
    assert info.value.code == "unknown_customer"
    with pytest.raises(ValidationFailed) as info:
        place(customer, market="XX")
    assert info.value.code == "unknown_market"
    assert events(biz, "order.placed") == []


def test_duplicate_external_id_is_a_conflict(biz: Session, customer: str, place: Place) -> None:
    place(customer, external_id="A-1")
    with pytest.raises(Conflict) as info:
        place(customer, external_id="A-1")
    assert info.value.code == "duplicate_order"


def test_backfill_emits_no_event(biz: Session, customer: str, place: Place) -> None:
    place(customer, emit_events=False, source="import")
    assert events(biz, "order.placed") == []
    assert traits(biz, customer)["order_count"] == 1


def test_refunds_are_bounded_per_line_by_quantity(biz: Session, customer: str, place: Place) -> None:
    order = place(customer)
    tea, cup = order.lines
    refund_lines(biz, order.id, [RefundLineInput(tea.id, 1)])
    with pytest.raises(ValidationFailed) as info:
        refund_lines(biz, order.id, [RefundLineInput(tea.id, 2)])
    assert info.value.code == "refund_quantity_exceeded"
    assert info.value.errors[0]["loc"] == ["lines", 0, "quantity"]
    # two items on the same line in one request add up
    with pytest.raises(ValidationFailed) as info:
        refund_lines(biz, order.id, [RefundLineInput(cup.id, 1), RefundLineInput(cup.id, 1)])
    assert info.value.code == "refund_quantity_exceeded"
    assert info.value.errors[0]["loc"] == ["lines", 1, "quantity"]
    current = get_order(biz, order.id)
    assert current.status == "partially_refunded"
    assert [(line.refunded_quantity, line.refunded.amount) for line in current.lines] == [
        (1, Decimal("10.00")),
        (0, Decimal("0.00")),
    ]
    assert len(events(biz, "order.refunded")) == 1

    refund_lines(biz, order.id, [RefundLineInput(tea.id, 1), RefundLineInput(cup.id, 1)], kind="return")
    final = get_order(biz, order.id)
    assert final.status == "refunded"
    assert final.refunded == Money(Decimal("25.50"), "EUR")
    assert final.reporting_net == Money(Decimal("0.00"), "EUR")
    assert [r.kind for r in final.refunds] == ["refund", "return", "return"]
    assert traits(biz, customer)["total_spent"] == Decimal("0.00")
    assert traits(biz, customer)["order_count"] == 1
    last = events(biz, "order.refunded")[-1].payload
    assert last["status"] == "refunded"
    assert last["amount"] == {"amount": "15.50", "currency": "EUR"}
    assert [(ln["sku"], ln["quantity"], ln["amount"]) for ln in last["lines"]] == [
        ("TEA-1", 1, "10.00"),
        ("CUP-1", 1, "5.50"),
    ]


def test_refund_shares_cover_discount_tax_and_shipping(biz: Session, customer: str, place: Place) -> None:
    # subtotal 30.00, order discount 3.00, shipping 4.00 → total 31.00, split 2:1 over the lines
    order = place(
        customer,
        discount="3",
        shipping="4",
        lines=[
            {"sku": "A", "quantity": 3, "unit_price": "6.666666"},  # 6.67 → 20.01
            {"sku": "B", "quantity": 1, "unit_price": "9.99"},
        ],
    )
    assert order.subtotal.amount == Decimal("30.00")
    assert order.total.amount == Decimal("31.00")
    a, b = order.lines
    first = refund_lines(biz, order.id, [RefundLineInput(a.id, 1)])
    rest = refund_lines(biz, order.id, [RefundLineInput(a.id, 2), RefundLineInput(b.id, 1)])
    amounts = [r.amount.amount for r in first + rest]
    assert sum(amounts) == Decimal("31.00")
    assert amounts[0] == Decimal("6.89")  # floor(20.68 / 3)
    assert amounts[1] == Decimal("13.79")  # the rest of line A's share 20.68
    assert amounts[2] == Decimal("10.32")
    with pytest.raises(ValidationFailed) as info:
        refund_lines(biz, order.id, [RefundLineInput(b.id, 1)])
    assert info.value.code == "refund_quantity_exceeded"


def test_refund_amount_is_bounded_and_unknown_lines_rejected(
    biz: Session, customer: str, place: Place
) -> None:
    order = place(customer)
    tea = order.lines[0]
    with pytest.raises(ValidationFailed) as info:
        refund_lines(biz, order.id, [RefundLineInput(tea.id, 1, Decimal("20.01"))])
    assert info.value.code == "refund_amount_exceeded"
    with pytest.raises(ValidationFailed) as info:
        refund_lines(biz, order.id, [RefundLineInput("nope", 1)])
    assert info.value.code == "unknown_line"
    refunds = refund_lines(biz, order.id, [RefundLineInput(tea.id, 1, Decimal("12.345"))])
    assert refunds[0].amount == Money(Decimal("12.35"), "EUR")  # quantized half-up
    assert get_order(biz, order.id).lines[0].refunded.amount == Decimal("12.35")


def test_fulfil_deliver_cancel_transitions(
    biz: Session, customer: str, place: Place, frozen_clock: FrozenClock
) -> None:
    order = place(customer)
    fulfilled = fulfil_order(biz, order.id)
    assert fulfilled.fulfilment_status == "fulfilled"
    assert fulfilled.fulfilled_at == frozen_clock.now()
    with pytest.raises(Conflict) as info:
        fulfil_order(biz, order.id)
    assert info.value.code == "order_already_fulfilled"
    with pytest.raises(Conflict) as info:
        cancel_order(biz, order.id)
    assert info.value.code == "order_not_cancellable"
    delivered = mark_delivered(biz, order.id)
    assert delivered.fulfilment_status == "delivered"
    assert delivered.delivered_at == frozen_clock.now()
    with pytest.raises(Conflict) as info:
        mark_delivered(biz, order.id)
    assert info.value.code == "order_already_delivered"
    assert [e.name for e in events(biz) if e.name.startswith("order.")] == [
        "order.placed",
        "order.fulfilled",
        "order.delivered",
    ]
    kinds = [t.kind for t in list_timeline(biz, customer).items]
    assert {"order_placed", "order_fulfilled", "order_delivered"} <= set(kinds)

    other = place(customer, external_id="C-2")
    assert traits(biz, customer)["order_count"] == 2
    cancelled = cancel_order(biz, other.id, reason="changed mind")
    assert cancelled.status == "cancelled"
    assert traits(biz, customer)["order_count"] == 1
    assert traits(biz, customer)["total_spent"] == Decimal("25.50")
    with pytest.raises(Conflict) as info:
        refund_lines(biz, other.id, [RefundLineInput(other.lines[0].id, 1)])
    assert info.value.code == "order_cancelled"
    with pytest.raises(Conflict):
        fulfil_order(biz, other.id)
    assert events(biz, "order.cancelled")[0].payload["reason"] == "changed mind"
    with pytest.raises(NotFound) as nf:
        fulfil_order(biz, "missing")
    assert nf.value.code == "order_not_found"


def test_cancelling_the_only_order_clears_first_and_last(biz: Session, customer: str, place: Place) -> None:
    order = place(customer)
    cancel_order(biz, order.id)
    assert traits(biz, customer) == {"order_count": 0, "total_spent": Decimal("0.00")}


def test_delayed_job_emits_once_in_the_market_time_zone(biz: Session, customer: str, place: Place) -> None:
    vn = place(customer, external_id="VN-1", market="VN", promised_delivery_date="2026-03-14")
    hu = place(customer, external_id="HU-1", market="HU", promised_delivery_date="2026-03-14")
    no_market = place(customer, external_id="NM-1", promised_delivery_date="2026-03-14")
    delivered = place(customer, external_id="D-1", market="VN", promised_delivery_date="2026-03-13")
    mark_delivered(biz, delivered.id, at=datetime(2026, 3, 14, tzinfo=UTC))
    backfill = place(
        customer,
        external_id="B-1",
        market="VN",
        promised_delivery_date="2026-03-01",
        emit_events=False,
        source="import",
    )
    assert backfill.id

    # 16:59 UTC = 23:59 on the 14th in Ho Chi Minh City: not late yet
    assert emit_delayed_orders(biz, datetime(2026, 3, 14, 16, 59, tzinfo=UTC)) == 0
    # 17:00 UTC = 00:00 on the 15th in Vietnam, 18:00 on the 14th in Budapest
    assert emit_delayed_orders(biz, datetime(2026, 3, 14, 17, 0, tzinfo=UTC)) == 1
    delayed = events(biz, "order.delayed")
    assert [e.payload["order_id"] for e in delayed] == [vn.id]
    assert delayed[0].payload["days_late"] == 1
    assert delayed[0].payload["promised_delivery_date"] == "2026-03-14"
    # again: nothing new
    assert emit_delayed_orders(biz, datetime(2026, 3, 14, 18, 0, tzinfo=UTC)) == 0
    # 23:00 UTC = 00:00 on the 15th in Budapest (CET, UTC+1): the HU order and the one without a
    # market (business time zone Budapest) are late now
    assert emit_delayed_orders(biz, datetime(2026, 3, 14, 23, 0, tzinfo=UTC)) == 2
    assert sorted(e.payload["order_id"] for e in events(biz, "order.delayed")) == sorted(
        [vn.id, hu.id, no_market.id]
    )
    assert emit_delayed_orders(biz, datetime(2026, 3, 20, tzinfo=UTC)) == 0
    assert get_order(biz, vn.id).delayed_notified_at == datetime(2026, 3, 14, 17, 0, tzinfo=UTC)
    assert "order_delayed" in [t.kind for t in list_timeline(biz, customer).items]


def test_place_order_for_a_merged_customer_lands_on_the_target(biz: Session, place: Place) -> None:
    from patron.customers import merge_customers

    source, target = new_customer(biz), new_customer(biz)
    merge_customers(biz, source_id=source, target_id=target)
    order = place(source)
    assert order.customer_id == target
    assert traits(biz, target)["order_count"] == 1


def test_placed_at_defaults_to_now(biz: Session, customer: str, frozen_clock: FrozenClock) -> None:
    data = order_input(customer, placed_at=None)
    order = place_order(biz, data)
    assert order.placed_at == frozen_clock.now()


def test_event_and_order_commit_or_roll_back_together(database: object) -> None:
    from sqlalchemy import func, select

    from patron.commerce.models import Order
    from patron.core.db import Database
    from patron.core.outbox import OutboxEvent
    from tests.commerce.conftest import setup_business

    assert isinstance(database, Database)
    with database.unit_of_work() as s:
        setup_business(s)
        customer_id = new_customer(s)

    class Boom(Exception):
        pass

    def place_then_fail() -> None:
        with database.unit_of_work() as s:
            place_order(s, order_input(customer_id))
            assert [e.name for e in events(s, "order.placed")] == ["order.placed"]
            raise Boom

    with pytest.raises(Boom):
        place_then_fail()
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0
        assert (
            s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.name == "order.placed"))
            == 0
        )
        place_order(s, order_input(customer_id))
    with database.unit_of_work(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1
        assert (
            s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.name == "order.placed"))
            == 1
        )
        assert traits(s, customer_id)["order_count"] == 1


def test_scheduled_job_runs_in_its_own_unit_of_work(database: object) -> None:
    from patron.commerce import DELAYED_ORDERS_INTERVAL, scheduled_jobs
    from patron.core.clock import use_clock
    from patron.core.db import Database
    from tests.commerce.conftest import setup_business

    assert isinstance(database, Database)
    with database.unit_of_work() as s:
        setup_business(s)
        customer_id = new_customer(s)
        place_order(s, order_input(customer_id, market="VN", promised_delivery_date="2026-03-01"))
        start_subscription(
            s,
            prepare_subscription(
                {"customer_id": customer_id, "plan": "Box", "price": "10", "currency": "EUR",
                 "started_at": "2026-02-14T09:00:00Z"}
            ),
        )  # fmt: skip
    jobs = scheduled_jobs(database)
    assert [seconds for seconds, _ in jobs] == [DELAYED_ORDERS_INTERVAL, DELAYED_ORDERS_INTERVAL]
    with use_clock(FrozenClock(datetime(2026, 3, 15, tzinfo=UTC))):
        for _, job in jobs * 2:  # each job twice: the second run finds nothing more to do
            job()
    with database.unit_of_work(write=False) as s:
        assert [e.payload["days_late"] for e in events(s, "order.delayed")] == [14]
        assert [e.payload["period_start"] for e in events(s, "subscription.renewed")] == [
            "2026-03-14T09:00:00+00:00"
        ]
