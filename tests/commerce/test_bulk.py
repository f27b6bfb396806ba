"""Bulk upserts for the importer, trait refresh, hard deletes for undo."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from patron.commerce import (
    RefundLineInput,
    delete_orders_hard,
    delete_products_hard,
    delete_subscriptions_hard,
    get_order,
    list_orders,
    prepare_order,
    prepare_product,
    prepare_subscription,
    refresh_order_stats,
    refund_lines,
    upsert_orders_bulk,
    upsert_products_bulk,
    upsert_subscriptions_bulk,
)
from patron.commerce.models import Order, OrderLine
from patron.customers import CustomerCreateInput, create_customer
from tests.commerce.conftest import count, events, traits


def _row(ext: str, customer_ext: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "external_id": ext,
        "customer_external_id": customer_ext,
        "currency": "HUF",
        "market": "HU",
        "placed_at": "2026-02-01T10:00:00+01:00",
        "source": "import",
        "lines": [
            {"sku": "TEA-1", "quantity": 2, "unit_price": "2000"},
            {"sku": "NEW", "name": "Unknown", "quantity": 1, "unit_price": "1000"},
        ],
    }
    row.update(extra)
    return row


def test_upsert_orders_bulk_creates_skips_updates_and_rejects(biz: Session) -> None:
    a = create_customer(biz, CustomerCreateInput(first_name="A", external_id="CA", email="a@x.hu")).id
    b = create_customer(biz, CustomerCreateInput(first_name="B", external_id="CB", email="b@x.hu")).id
    upsert_products_bulk(
        biz,
        [
            prepare_product(
                {"sku": "TEA-1", "name": "Tea", "price": "2000", "currency": "HUF", "category": "drinks"}
            )
        ],
    )
    rows = [
        prepare_order(_row("O-1", "CA")),
        prepare_order(_row("O-2", "CB", currency="THB")),
        prepare_order(_row("O-3", "NOPE")),
        prepare_order(_row("O-1", "CB")),
        prepare_order(_row("O-4", "CB", market="ZZ")),
    ]
    results = upsert_orders_bulk(biz, rows, emit_events=False)
    assert [(r.index, r.key, r.action) for r in results] == [
        (0, "O-1", "created"),
        (1, "O-2", "rejected"),
        (2, "O-3", "rejected"),
        (3, "O-1", "rejected"),
        (4, "O-4", "rejected"),
    ]
    assert [e["type"] for e in results[1].errors] == ["fx_rate_missing"]
    assert [e["type"] for e in results[2].errors] == ["unknown_customer"]
    assert [e["type"] for e in results[3].errors] == ["duplicate_external_id"]
    assert [e["type"] for e in results[4].errors] == ["unknown_market"]
    order = get_order(biz, results[0].id or "")
    assert order.customer_id == a
    assert order.total.amount == Decimal("5000.00")
    assert order.reporting_net.amount == Decimal("12.50")  # 5000 HUF × 0.0025
    assert [(ln.sku, ln.product_id is not None, ln.name, ln.category) for ln in order.lines] == [
        ("TEA-1", True, "Tea", "drinks"),
        ("NEW", False, "Unknown", None),
    ]
    assert events(biz, "order.placed") == []  # backfill
    assert traits(biz, a) == {
        "order_count": 1,
        "total_spent": Decimal("12.50"),
        "first_order_at": datetime(2026, 2, 1, 9, 0, tzinfo=UTC),
        "last_order_at": datetime(2026, 2, 1, 9, 0, tzinfo=UTC),
    }

    # the same rows again: unchanged; a changed row moves to another customer and replaces its lines
    again = upsert_orders_bulk(biz, [prepare_order(_row("O-1", "CA"))], emit_events=False)
    assert [r.action for r in again] == ["unchanged"]
    changed = upsert_orders_bulk(
        biz,
        [prepare_order(_row("O-1", "CB", lines=[{"sku": "X", "quantity": 1, "unit_price": "800"}]))],
        emit_events=False,
    )
    assert [(r.action, r.id) for r in changed] == [("updated", order.id)]
    updated = get_order(biz, order.id)
    assert updated.customer_id == b
    assert [ln.sku for ln in updated.lines] == ["X"]
    assert updated.version == 2
    assert count(biz, OrderLine) == 1
    assert traits(biz, a) == {"order_count": 0, "total_spent": Decimal("0.00")}
    assert traits(biz, b)["total_spent"] == Decimal("2.00")

    # refunded orders are not replaced by a re-import
    refund_lines(biz, order.id, [RefundLineInput(updated.lines[0].id, 1)])
    blocked = upsert_orders_bulk(biz, [prepare_order(_row("O-1", "CB"))], emit_events=False)
    assert [e["type"] for e in blocked[0].errors] == ["order_has_refunds"]


def test_live_bulk_import_emits_events(biz: Session) -> None:
    create_customer(biz, CustomerCreateInput(first_name="A", external_id="CA", email="a@x.hu"))
    results = upsert_orders_bulk(biz, [prepare_order(_row("L-1", "CA"))], emit_events=True)
    placed = events(biz, "order.placed")
    assert [e.payload["order_id"] for e in placed] == [results[0].id]
    assert placed[0].payload["total"] == {"amount": "5000.00", "currency": "HUF"}
    assert placed[0].payload["lines"][0]["total"] == "4000.00"


def test_many_orders_in_one_batch_and_refresh(biz: Session) -> None:
    ids = [
        create_customer(
            biz, CustomerCreateInput(first_name=f"C{i}", external_id=f"C{i}", email=f"c{i}@x.vn")
        ).id
        for i in range(5)
    ]
    rows = [
        prepare_order(
            {
                "external_id": f"B-{n}",
                "customer_external_id": f"C{n % 5}",
                "currency": "VND",
                "placed_at": f"2026-01-{1 + n % 28:02d}T12:00:00+07:00",
                "source": "import",
                "lines": [{"sku": f"S{k}", "quantity": 1 + k, "unit_price": "25000"} for k in range(3)],
            }
        )
        for n in range(300)
    ]
    results = upsert_orders_bulk(biz, rows, emit_events=False, refresh_traits=False)
    assert {r.action for r in results} == {"created"}
    assert count(biz, Order) == 300
    assert count(biz, OrderLine) == 900
    assert traits(biz, ids[0]) == {}  # not refreshed yet
    refresh_order_stats(biz, ids)
    # each customer: 60 orders × 150,000 VND × 0.000036 = 5.40 EUR each
    assert traits(biz, ids[0])["order_count"] == 60
    assert traits(biz, ids[0])["total_spent"] == Decimal("324.00")
    assert traits(biz, ids[0])["first_order_at"] == datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
    assert traits(biz, ids[0])["last_order_at"] == datetime(2026, 1, 28, 5, 0, tzinfo=UTC)

    page = list_orders(biz, customer_id=ids[1], limit=50)
    assert len(page.items) == 50
    assert page.next_cursor is not None
    rest = list_orders(biz, customer_id=ids[1], cursor=page.next_cursor, limit=50)
    assert len(rest.items) == 10
    assert rest.next_cursor is None
    seen = [o.id for o in page.items + rest.items]
    assert len(set(seen)) == 60

    deleted = delete_orders_hard(biz, [r.id or "" for r in results[:100]])
    assert deleted == 100
    assert count(biz, Order) == 200
    assert count(biz, OrderLine) == 600
    assert traits(biz, ids[0])["order_count"] == 40


def test_products_and_subscriptions_bulk(biz: Session) -> None:
    first = upsert_products_bulk(
        biz,
        [
            prepare_product({"sku": "P1", "name": "One", "price": "10", "currency": "EUR"}),
            prepare_product({"sku": "P2", "name": "Two", "price": "20", "currency": "EUR"}),
            prepare_product({"sku": "P1", "name": "Dup", "price": "10", "currency": "EUR"}),
        ],
    )
    assert [r.action for r in first] == ["created", "created", "rejected"]
    second = upsert_products_bulk(
        biz,
        [
            prepare_product({"sku": "P1", "name": "One", "price": "10.00", "currency": "EUR"}),
            prepare_product({"sku": "P2", "name": "Two v2", "price": "20", "currency": "EUR"}),
        ],
    )
    assert [r.action for r in second] == ["unchanged", "updated"]
    assert delete_products_hard(biz, [first[0].id or ""]) == 1

    create_customer(biz, CustomerCreateInput(first_name="A", external_id="CA", email="a@x.hu"))
    subs = [
        prepare_subscription(
            {
                "external_id": "S1",
                "customer_external_id": "CA",
                "plan": "Gold",
                "price": "9.90",
                "currency": "EUR",
                "started_at": "2026-01-31T00:00:00Z",
            }
        )
    ]
    created = upsert_subscriptions_bulk(biz, subs, emit_events=True)
    assert [r.action for r in created] == ["created"]
    assert [e.payload["renews_at"] for e in events(biz, "subscription.started")] == [
        "2026-02-28T00:00:00+00:00"
    ]
    assert [r.action for r in upsert_subscriptions_bulk(biz, subs, emit_events=True)] == ["unchanged"]
    assert len(events(biz, "subscription.started")) == 1
    changed = [
        prepare_subscription(
            {
                "external_id": "S1",
                "customer_external_id": "CA",
                "plan": "Gold",
                "price": "9.90",
                "currency": "EUR",
                "status": "cancelled",
                "started_at": "2026-01-31T00:00:00Z",
                "cancelled_at": "2026-02-10T00:00:00Z",
            }
        )
    ]
    assert [r.action for r in upsert_subscriptions_bulk(biz, changed, emit_events=False)] == ["updated"]
    assert delete_subscriptions_hard(biz, [created[0].id or ""]) == 1
