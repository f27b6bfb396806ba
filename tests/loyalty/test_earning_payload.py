"""``order.placed`` earns from the event's payload when it carries the amounts, lines and the order's
content hash (no reload of the order); the result equals earning from the order itself, and a payload
that describes an older version of the order (another content hash) is not used."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patron.commerce import OrderRecord, place_order, prepare_order
from patron.commerce.models import Order, OrderLine
from patron.core.outbox import OutboxEvent
from patron.loyalty import create_rule, get_account, reconcile
from patron.loyalty.earning import payload_shape
from patron.loyalty.models import LoyaltyOrderEarning, LoyaltyOrderLine
from tests.loyalty.conftest import deliver

MARKETS = {"VN": ("VND", 20_000, 400_000), "HU": ("HUF", 500, 30_000), "TH": ("THB", 50, 2_000)}


def _order(session: Session, member: str, rng: np.random.Generator) -> dict[str, Any]:
    market = ("VN", "HU", "TH")[int(rng.integers(3))]
    currency, low, high = MARKETS[market]
    lines = [
        {
            "sku": f"SKU-{j}",
            "name": f"Item {j}",
            "category": ("tea", "cups", None)[int(rng.integers(3))],
            "quantity": int(rng.integers(1, 4)),
            "unit_price": str(int(rng.integers(low, high)) // 10 * 10),
        }
        for j in range(int(rng.integers(1, 5)))
    ]
    raw = {
        "customer_id": member,
        "market": market,
        "currency": currency,
        "channel": ("web", "store")[int(rng.integers(2))],
        "placed_at": "2026-03-15T03:00:00+00:00",
        "lines": [{k: v for k, v in ln.items() if v is not None} for ln in lines],
    }
    subtotal = sum(Decimal(ln["unit_price"]) * ln["quantity"] for ln in lines)
    raw["discount"] = str((subtotal * Decimal(int(rng.integers(0, 30))) / 100).quantize(Decimal(10)))
    return raw


def _earning(session: Session, order: OrderRecord) -> tuple[int, list[int], list[str]]:
    row = session.get(LoyaltyOrderEarning, order.id, populate_existing=True)
    assert row is not None
    by_line = {
        r.line_id: r.points
        for r in session.scalars(select(LoyaltyOrderLine).where(LoyaltyOrderLine.order_id == order.id))
    }
    reasons = [r["code"] for r in row.explanation["reasons"]]
    return row.points, [by_line[ln.id] for ln in order.lines], reasons


def _strip_payload(session: Session, order_id: str) -> None:
    """Make the event look like one written before the payload carried what earning needs."""
    for event in session.scalars(select(OutboxEvent).where(OutboxEvent.name == "order.placed")):
        if event.payload["order_id"] == order_id:
            payload = {
                k: v for k, v in event.payload.items() if k not in ("subtotal", "discount", "content_hash")
            }
            payload["lines"] = [{k: v for k, v in ln.items() if k != "category"} for ln in payload["lines"]]
            event.payload = payload
    session.flush()


def test_earning_from_the_payload_equals_earning_from_the_order(loyal: Session, member: str) -> None:
    create_rule(
        loyal,
        {"name": "Tea ×2", "kind": "multiplier", "multiplier": "2", "conditions": {"categories": ["tea"]}},
    )
    create_rule(
        loyal,
        {
            "name": "Store ×1.5",
            "kind": "multiplier",
            "multiplier": "1.5",
            "conditions": {"channels": ["store"]},
        },
    )
    rng = np.random.default_rng(7)
    compared = 0
    for _ in range(12):
        raw = _order(loyal, member, rng)
        from_payload = place_order(loyal, prepare_order(raw))
        from_order = place_order(loyal, prepare_order(raw))
        _strip_payload(loyal, from_order.id)
        placed = loyal.scalars(select(OutboxEvent).where(OutboxEvent.name == "order.placed"))
        payloads = {e.payload["order_id"]: e.payload for e in placed}
        assert payload_shape(payloads[from_order.id]) is None  # earns from the order
        assert payload_shape(payloads[from_payload.id]) is not None  # earns from its payload
        assert payloads[from_payload.id]["content_hash"] == loyal.get(Order, from_payload.id).content_hash  # type: ignore[union-attr]
        deliver(loyal)
        a, b = _earning(loyal, from_payload), _earning(loyal, from_order)
        assert a == b
        compared += a[0] > 0
    assert compared >= 10  # the orders really earned something
    assert reconcile(loyal).ok


def test_a_payload_of_an_older_version_of_the_order_is_not_used(loyal: Session, member: str) -> None:
    raw = {
        "customer_id": member,
        "market": "VN",
        "currency": "VND",
        "placed_at": "2026-03-15T03:00:00+00:00",
        "lines": [
            {"sku": "TEA-1", "name": "Trà", "category": "tea", "quantity": 2, "unit_price": "150000"},
            {"sku": "CUP-1", "name": "Cốc", "category": "cups", "quantity": 1, "unit_price": "55000"},
        ],
    }
    order = place_order(loyal, prepare_order(raw))  # 355,000 VND → 35 points by its payload
    first = order.lines[0]
    # the order changes before its event is handled (as a re-import with other content would do)
    loyal.execute(update(OrderLine).where(OrderLine.id == first.id).values(total_amount=Decimal(500000)))
    loyal.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(subtotal_amount=Decimal(555000), total_amount=Decimal(555000), content_hash="f" * 64)
    )
    deliver(loyal)
    assert _earning(loyal, order)[0] == 55  # from the order as it is now, not from the payload
    assert get_account(loyal, member).pending == 55


def test_payload_shape_needs_every_field() -> None:
    payload: dict[str, Any] = {
        "order_id": "o",
        "market": "HU",
        "channel": "web",
        "placed_at": "2026-03-15T03:00:00+00:00",
        "total": {"amount": "1200", "currency": "HUF"},
        "subtotal": "1000",
        "discount": "100",
        "lines": [{"line_id": "l1", "sku": "A", "category": None, "quantity": 2, "total": "1000"}],
    }
    shape = payload_shape(payload)
    assert shape is not None
    assert (shape.currency, shape.net, shape.total, shape.lines) == (
        "HUF",
        Decimal(900),
        Decimal(1200),
        (("l1", "A", None, 2, Decimal(1000)),),
    )
    for broken in (
        {**payload, "subtotal": None},
        {**payload, "placed_at": "2026-03-15T03:00:00"},  # naive
        {k: v for k, v in payload.items() if k != "discount"},
        {**payload, "lines": [{"line_id": "l1", "sku": "A", "quantity": 2, "total": "1000"}]},
        {**payload, "total": "1200"},
    ):
        assert payload_shape(broken) is None
