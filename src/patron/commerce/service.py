"""Commerce commands: validate, write, keep the order-stat traits current, audit, record the
timeline, emit events. They flush and never commit (the adapter owns the unit of work).

Order-stat traits (``order_count``, ``total_spent``, ``first_order_at``, ``last_order_at``) are
recomputed with SQL aggregates over the customer's non-cancelled orders after every change, in the
same transaction, and published through ``patron.customers.set_traits(source="commerce")``.
``total_spent`` is in the business reporting currency: each order's total net of refunds, converted
at the FX rate in force on the order date (in the business time zone).

Refunds are per line and bounded by the line's quantity and by the line's share of the order total
(the order total — after the order discount, with tax and shipping — split over the lines in
proportion to their totals, so refunding every line refunds exactly the order total).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import String, Table, and_, bindparam, column, delete, or_, select, table, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from patron.commerce import events
from patron.commerce.contracts import (
    TRAIT_FIRST_ORDER_AT,
    TRAIT_LAST_ORDER_AT,
    TRAIT_ORDER_COUNT,
    TRAIT_TOTAL_SPENT,
    OrderInput,
    OrderLineInput,
    OrderRecord,
    ProductInput,
    ProductRecord,
    RefundLineInput,
    RefundRecord,
    SubscriptionInput,
    SubscriptionRecord,
    UpsertResult,
)
from patron.commerce.models import Order, OrderLine, Product, Refund, Subscription, order_snapshot
from patron.commerce.queries import (
    chunks,
    get_order,
    load_order,
    load_product,
    load_subscription,
    order_record,
    order_stats_for,
    product_record,
    refund_record,
    subscription_record,
)
from patron.commerce.rules import add_interval, prepare_product, refund_share, status_after_refund
from patron.core.audit import record_audit
from patron.core.bulk import insert_mappings
from patron.core.business import FxRate, Market, get_business
from patron.core.clock import ensure_aware, now
from patron.core.db import UTCDateTime
from patron.core.errors import Conflict, ValidationFailed
from patron.core.i18n import N_
from patron.core.ids import new_id
from patron.core.money import Money, parse_decimal, quantize
from patron.core.outbox import emit_event
from patron.customers import record_interaction, set_traits_bulk

# The customers table, read only to resolve references (by id or external id, following merges,
# refusing erased customers) — in one query per chunk for bulk imports.
_customers = table(
    "customers",
    column("id", String),
    column("external_id", String),
    column("merged_into_id", String),
    column("erased_at", UTCDateTime()),
)

TRAIT_SOURCE = "commerce"

_ORDERS = cast(Table, Order.__table__)
_LINES = cast(Table, OrderLine.__table__)
_REFUNDS = cast(Table, Refund.__table__)
_PRODUCTS = cast(Table, Product.__table__)
_SUBSCRIPTIONS = cast(Table, Subscription.__table__)


def _wire(money: Money) -> dict[str, str]:
    return money.to_wire()


def _when(at: datetime | None) -> datetime:
    return (at or now()).astimezone(UTC)


def _amount(value: Decimal, currency: str) -> str:
    return str(quantize(Decimal(value), currency))


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def _invalid(loc: list[str | int], msg: str, code: str) -> ValidationFailed:
    return ValidationFailed(msg, code=code, errors=[{"loc": loc, "msg": msg, "type": code}])


# --- references -----------------------------------------------------------------------------------


def _customer_rows(
    session: Session, *, ids: Sequence[str] = (), external_ids: Sequence[str] = ()
) -> tuple[dict[str, tuple[str, bool]], dict[str, str]]:
    """({given id: (current id, erased)}, {external id: given id}) — merged customers resolve to the
    customer they were merged into."""
    found: dict[str, tuple[str | None, bool]] = {}
    by_external: dict[str, str] = {}
    cols = (_customers.c.id, _customers.c.external_id, _customers.c.merged_into_id, _customers.c.erased_at)
    for part in chunks(list(dict.fromkeys(ids))):
        for cid, _, merged, erased in session.execute(select(*cols).where(_customers.c.id.in_(part))):
            found[cid] = (merged, erased is not None)
    for part in chunks(list(dict.fromkeys(external_ids))):
        for cid, ext, merged, erased in session.execute(
            select(*cols).where(_customers.c.external_id.in_(part))
        ):
            found[cid] = (merged, erased is not None)
            by_external[ext] = cid
    resolved: dict[str, tuple[str, bool]] = {}
    pending = {cid: cid for cid in found}
    for _ in range(5):  # merges are flattened by customers; follow a few hops to be safe
        targets = {m for cid, (m, _) in found.items() if m is not None and m not in found}
        for part in chunks(list(targets)):
            for cid, _, merged, erased in session.execute(select(*cols).where(_customers.c.id.in_(part))):
                found[cid] = (merged, erased is not None)
        if not targets:
            break
    for cid in pending:
        current, hops = cid, 0
        while found.get(current, (None, False))[0] is not None and hops < 10:
            current = found[current][0] or current
            hops += 1
        resolved[cid] = (current, found.get(current, (None, False))[1])
    return resolved, by_external


def _resolve_customer(session: Session, customer_id: str | None, external_id: str | None) -> str:
    if customer_id is None and external_id is None:
        raise _invalid(["customer_id"], "customer_id or customer_external_id is required", "missing")
    resolved, by_external = _customer_rows(
        session, ids=[customer_id] if customer_id else [], external_ids=[external_id] if external_id else []
    )
    given = customer_id if customer_id is not None else by_external.get(external_id or "")
    loc = "customer_id" if customer_id is not None else "customer_external_id"
    if given is None or given not in resolved:
        raise _invalid([loc], f"customer {customer_id or external_id!r} does not exist", "unknown_customer")
    current, erased = resolved[given]
    if erased:
        raise _invalid([loc], "the customer was erased", "customer_erased")
    return current


def _is_erased(session: Session, customer_id: str) -> bool:
    erased = session.scalar(select(_customers.c.erased_at).where(_customers.c.id == customer_id))
    return erased is not None


def _market_zones(session: Session) -> dict[str, str]:
    return {str(code): str(tz) for code, tz in session.execute(select(Market.code, Market.time_zone))}


class _Rates:
    """FX rates into the reporting currency, loaded once per currency (same rule as
    ``core.business.fx_rate``: the latest direct rate on or before the day, else the inverse)."""

    def __init__(self, session: Session) -> None:
        business = get_business(session)
        self.session = session
        self.target = business.reporting_currency
        self.zone = ZoneInfo(business.time_zone)
        self._series: dict[str, tuple[list[date], list[Decimal], list[date], list[Decimal]]] = {}

    def _load(self, currency: str) -> tuple[list[date], list[Decimal], list[date], list[Decimal]]:
        series = self._series.get(currency)
        if series is None:
            both = self.session.execute(
                select(FxRate.base, FxRate.valid_on, FxRate.rate)
                .where(
                    or_(
                        and_(FxRate.base == currency, FxRate.quote == self.target),
                        and_(FxRate.base == self.target, FxRate.quote == currency),
                    )
                )
                .order_by(FxRate.valid_on)
            ).all()
            direct = [(d, r) for base, d, r in both if base == currency]
            inverse = [(d, r) for base, d, r in both if base != currency]
            series = (
                [d for d, _ in direct],
                [Decimal(r) for _, r in direct],
                [d for d, _ in inverse],
                [Decimal(r) for _, r in inverse],
            )
            self._series[currency] = series
        return series

    def order_date(self, placed_at: datetime) -> date:
        return placed_at.astimezone(self.zone).date()

    def rate(self, currency: str, placed_at: datetime) -> Decimal | None:
        if currency == self.target:
            return Decimal(1)
        on = self.order_date(placed_at)
        d_dates, d_rates, i_dates, i_rates = self._load(currency)
        i = bisect.bisect_right(d_dates, on)
        if i:
            return d_rates[i - 1]
        j = bisect.bisect_right(i_dates, on)
        if j:
            return (Decimal(1) / i_rates[j - 1]).quantize(Decimal("1e-10"))
        return None

    def require(self, currency: str, placed_at: datetime) -> Decimal:
        rate = self.rate(currency, placed_at)
        if rate is None:
            on = self.order_date(placed_at).isoformat()
            raise _invalid(
                ["currency"],
                f"no FX rate {currency}->{self.target} on or before {on}: add one in the settings",
                "fx_rate_missing",
            )
        return rate


def _net_reporting(total: Decimal, refunded: Decimal, rate: Decimal, reporting: str) -> Decimal:
    return quantize((total - refunded) * rate, reporting)


# --- traits ---------------------------------------------------------------------------------------


def refresh_order_stats(
    session: Session, customer_ids: Sequence[str], *, reporting_currency: str | None = None
) -> None:
    """Recompute the order-stat traits of these customers from the orders table (SQL aggregates)
    and publish them. Orders valued in an older reporting currency are re-valued first. (The caller
    may pass the business's reporting currency when it has read it already.)"""
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return
    session.flush()
    reporting = reporting_currency or get_business(session).reporting_currency
    _revalue_stale(session, ids, reporting)
    rows: list[tuple[str, str, object]] = []
    for customer_id, stats in order_stats_for(session, ids, reporting_currency=reporting).items():
        rows += [
            (customer_id, TRAIT_ORDER_COUNT, stats.order_count),
            (customer_id, TRAIT_TOTAL_SPENT, stats.total_spent.amount),
            (customer_id, TRAIT_FIRST_ORDER_AT, stats.first_order_at),
            (customer_id, TRAIT_LAST_ORDER_AT, stats.last_order_at),
        ]
    set_traits_bulk(session, rows, source=TRAIT_SOURCE)


def _revalue_stale(session: Session, customer_ids: list[str], reporting: str) -> None:
    """Re-value orders recorded in an older reporting currency (after the business changed it)."""
    rates: _Rates | None = None
    changed = False
    for part in chunks(customer_ids):
        stale = session.execute(
            select(
                Order.id, Order.currency, Order.placed_at, Order.total_amount, Order.refunded_amount
            ).where(
                Order.customer_id.in_(part),
                Order.reporting_currency != reporting,
            )
        ).all()
        if not stale:
            continue
        rates = rates or _Rates(session)
        rows = []
        for order_id, currency, placed_at, total, refunded in stale:
            rate = rates.require(currency, placed_at)
            rows.append(
                {
                    "b_id": order_id,
                    "reporting_currency": rates.target,
                    "reporting_fx_rate": rate,
                    "reporting_net_amount": _net_reporting(total, refunded, rate, rates.target),
                }
            )
        session.execute(update(_ORDERS).where(_ORDERS.c.id == bindparam("b_id")), rows)
        changed = True
    if changed:
        session.expire_all()


# --- products -------------------------------------------------------------------------------------


def _product_values(data: ProductInput) -> dict[str, Any]:
    return {
        "sku": data.sku,
        "name": data.name,
        "category": data.category,
        "price_amount": data.price.amount,
        "currency": data.price.currency,
        "active": data.active,
    }


def create_product(session: Session, data: ProductInput, *, source: str = "api") -> ProductRecord:
    if session.scalar(select(Product.id).where(Product.sku == data.sku)) is not None:
        raise Conflict(f"a product with SKU {data.sku!r} exists", code="duplicate_sku")
    product = Product(**_product_values(data), source=source)
    session.add(product)
    session.flush()
    record_audit(session, "product.created", "product", product.id, new=_product_values(data))
    return product_record(product)


def update_product(
    session: Session, product_id: str, changes: Mapping[str, Any], *, expected_version: int | None = None
) -> ProductRecord:
    """Apply a partial change (``sku``, ``name``, ``category``, ``price``/``currency``, ``active``)."""
    product = load_product(session, product_id)
    if expected_version is not None and product.version != expected_version:
        raise Conflict("the product changed since you read it", code="concurrent_update")
    current: dict[str, Any] = {
        "sku": product.sku,
        "name": product.name,
        "category": product.category,
        "price": {"amount": product.price_amount, "currency": product.currency},
        "active": product.active,
    }
    merged = {**current, **dict(changes)}
    if "currency" in changes and "price" not in changes:
        merged["price"] = {"amount": product.price_amount, "currency": changes["currency"]}
    merged.pop("currency", None)
    data = prepare_product(merged)
    old = {k: getattr(product, k) for k in _product_values(data)}
    new = _product_values(data)
    if (
        data.sku != product.sku
        and session.scalar(select(Product.id).where(Product.sku == data.sku, Product.id != product.id))
        is not None
    ):
        raise Conflict(f"a product with SKU {data.sku!r} exists", code="duplicate_sku")
    for key, value in new.items():
        setattr(product, key, value)
    _flush(session)
    record_audit(session, "product.updated", "product", product.id, old=old, new=new)
    return product_record(product)


def delete_product(session: Session, product_id: str) -> None:
    """Delete a product; order lines keep their SKU, name and category."""
    product = load_product(session, product_id)
    old = _product_values_of(product)
    session.delete(product)
    session.flush()
    record_audit(session, "product.deleted", "product", product_id, old=old)


def _product_values_of(product: Product) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "category": product.category,
        "price_amount": product.price_amount,
        "currency": product.currency,
        "active": product.active,
    }


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict("the record was changed concurrently; retry", code="concurrent_update") from exc


# --- orders ---------------------------------------------------------------------------------------


def _line_products(
    session: Session, data: OrderInput
) -> list[tuple[str | None, str | None, str, str | None]]:
    """(product_id, sku, name, category) per line, linking products by id or SKU (the lines' SKUs
    looked up in one query)."""
    out: list[tuple[str | None, str | None, str, str | None]] = []
    skus = list(dict.fromkeys(ln.sku for ln in data.lines if ln.product_id is None and ln.sku is not None))
    by_sku: dict[str, Product] = {}
    for part in chunks(skus):
        by_sku.update((p.sku, p) for p in session.scalars(select(Product).where(Product.sku.in_(part))))
    for i, line in enumerate(data.lines):
        product: Product | None = None
        if line.product_id is not None:
            product = session.get(Product, line.product_id)
            if product is None:
                raise _invalid(
                    ["lines", i, "product_id"],
                    f"product {line.product_id!r} does not exist",
                    "unknown_product",
                )
        elif line.sku is not None:
            product = by_sku.get(line.sku)
        if product is None:
            out.append((None, line.sku, line.name, line.category))
        else:
            out.append(
                (
                    product.id,
                    line.sku or product.sku,
                    line.name or product.name,
                    line.category or product.category,
                )
            )
    return out


def _check_market(session: Session, code: str | None) -> None:
    if code is not None and session.scalar(select(Market.id).where(Market.code == code)) is None:
        raise _invalid(["market"], f"unknown market {code!r}", "unknown_market")


def _placed_payload(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "external_id": order.external_id,
        "customer_id": order.customer_id,
        "market": order.market_code,
        "channel": order.channel,
        "source": order.source,
        "placed_at": _iso(order.placed_at),
        "total": _wire(Money(order.total_amount, order.currency)),
        "subtotal": _amount(order.subtotal_amount, order.currency),
        "discount": _amount(order.discount_amount, order.currency),
        "content_hash": order.content_hash,
        "reporting_total": _wire(
            Money(
                _net_reporting(
                    order.total_amount, Decimal(0), order.reporting_fx_rate, order.reporting_currency
                ),
                order.reporting_currency,
            )
        ),
        "lines": [
            {
                "line_id": line.id,
                "sku": line.sku,
                "category": line.category,
                "quantity": line.quantity,
                "total": _amount(line.total_amount, order.currency),
            }
            for line in order.lines
        ],
    }


def _timeline(
    session: Session,
    order: Order,
    kind: str,
    summary: str,
    data: dict[str, Any],
    *,
    occurred_at: datetime | None = None,
    erased: bool | None = None,
) -> None:
    if _is_erased(session, order.customer_id) if erased is None else erased:
        return  # the orders of an erased customer stay; their timeline is gone
    record_interaction(
        session,
        order.customer_id,
        channel=order.channel,
        direction="inbound",
        kind=kind,
        summary=summary,
        data={"order_id": order.id, "external_id": order.external_id, **data},
        occurred_at=occurred_at,
        source=TRAIT_SOURCE,
    )


def place_order(
    session: Session,
    data: OrderInput,
    *,
    emit_events: bool = True,
    record_timeline: bool = True,
    live: bool | None = None,
) -> OrderRecord:
    """Record an order with its lines (emits ``order.placed``). ``live`` (default: ``emit_events``)
    says whether the order takes part in notices such as ``order.delayed``."""
    customer_id = _resolve_customer(session, data.customer_id, data.customer_external_id)
    if (
        data.external_id is not None
        and session.scalar(select(Order.id).where(Order.external_id == data.external_id)) is not None
    ):
        raise Conflict(f"an order with external id {data.external_id!r} exists", code="duplicate_order")
    _check_market(session, data.market_code)
    products = _line_products(session, data)
    placed_at = data.placed_at or now()
    rates = _Rates(session)
    rate = rates.require(data.currency, placed_at)
    order = Order(
        id=new_id(),
        external_id=data.external_id,
        customer_id=customer_id,
        market_code=data.market_code,
        channel=data.channel,
        currency=data.currency,
        subtotal_amount=data.subtotal,
        discount_amount=data.discount,
        tax_amount=data.tax,
        shipping_amount=data.shipping,
        total_amount=data.total,
        refunded_amount=Decimal(0),
        reporting_currency=rates.target,
        reporting_fx_rate=rate,
        reporting_net_amount=_net_reporting(data.total, Decimal(0), rate, rates.target),
        status=data.status,
        placed_at=placed_at,
        promised_delivery_date=data.promised_delivery_date,
        fulfilment_status=data.fulfilment_status,
        fulfilled_at=data.fulfilled_at
        or (data.delivered_at if data.fulfilment_status != "unfulfilled" else None),
        delivered_at=data.delivered_at,
        live=emit_events if live is None else live,
        source=data.source,
        content_hash=content_hash(data),
        cancelled_at=None,
    )
    order.lines = [
        OrderLine(
            id=new_id(),
            position=i,
            product_id=product_id,
            sku=sku,
            name=name,
            category=category,
            quantity=line.quantity,
            unit_price_amount=line.unit_price,
            discount_amount=line.discount,
            total_amount=line.total,
            refunded_quantity=0,
            refunded_amount=Decimal(0),
        )
        for i, (line, (product_id, sku, name, category)) in enumerate(zip(data.lines, products, strict=True))
    ]
    session.add(order)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict("the order conflicts with an existing one", code="duplicate_order") from exc
    record_audit(session, "order.placed", "order", order.id, new=order_snapshot(order))
    if record_timeline:
        _timeline(
            session,
            order,
            "order_placed",
            N_("Order placed"),
            {"total": _wire(Money(order.total_amount, order.currency))},
            occurred_at=placed_at,
            erased=False,  # _resolve_customer refuses erased customers
        )
    refresh_order_stats(session, [customer_id], reporting_currency=rates.target)
    if emit_events:
        emit_event(session, events.ORDER_PLACED, _placed_payload(order))
    return order_record(order)  # a new order has no refunds


def _change(
    session: Session,
    order: Order,
    action: str,
    kind: str,
    summary: str,
    event: str | None,
    payload: dict[str, Any],
    old: dict[str, Any],
    *,
    record_timeline: bool,
    refresh: bool,
) -> None:
    _flush(session)
    record_audit(session, action, "order", order.id, old=old, new=order_snapshot(order))
    if record_timeline:
        _timeline(session, order, kind, summary, payload)
    if refresh:
        refresh_order_stats(session, [order.customer_id])
    if event is not None:
        emit_event(session, event, {"order_id": order.id, "customer_id": order.customer_id, **payload})


def fulfil_order(
    session: Session,
    order_id: str,
    *,
    at: datetime | None = None,
    emit_events: bool = True,
    record_timeline: bool = True,
) -> OrderRecord:
    """Mark an order fulfilled (shipped or handed over); emits ``order.fulfilled``."""
    order = load_order(session, order_id)
    if order.status == "cancelled":
        raise Conflict("a cancelled order cannot be fulfilled", code="order_cancelled")
    if order.fulfilment_status != "unfulfilled":
        raise Conflict("the order is already fulfilled", code="order_already_fulfilled")
    old = order_snapshot(order)
    order.fulfilment_status = "fulfilled"
    order.fulfilled_at = _when(at)
    _change(
        session,
        order,
        "order.fulfilled",
        "order_fulfilled",
        N_("Order fulfilled"),
        events.ORDER_FULFILLED if emit_events else None,
        {"fulfilled_at": _iso(order.fulfilled_at)},
        old,
        record_timeline=record_timeline,
        refresh=False,
    )
    return get_order(session, order.id)


def mark_delivered(
    session: Session,
    order_id: str,
    *,
    at: datetime | None = None,
    emit_events: bool = True,
    record_timeline: bool = True,
) -> OrderRecord:
    """Mark an order delivered (also fulfilled if it was not); emits ``order.delivered``."""
    order = load_order(session, order_id)
    if order.status == "cancelled":
        raise Conflict("a cancelled order cannot be delivered", code="order_cancelled")
    if order.fulfilment_status == "delivered":
        raise Conflict("the order is already delivered", code="order_already_delivered")
    old = order_snapshot(order)
    when = _when(at)
    if when < order.placed_at:
        raise _invalid(["delivered_at"], "delivered_at is before the order was placed", "before_placed_at")
    order.fulfilment_status = "delivered"
    order.fulfilled_at = order.fulfilled_at or when
    order.delivered_at = when
    _change(
        session,
        order,
        "order.delivered",
        "order_delivered",
        N_("Order delivered"),
        events.ORDER_DELIVERED if emit_events else None,
        {"delivered_at": _iso(when)},
        old,
        record_timeline=record_timeline,
        refresh=False,
    )
    return get_order(session, order.id)


def cancel_order(
    session: Session,
    order_id: str,
    *,
    reason: str = "",
    emit_events: bool = True,
    record_timeline: bool = True,
) -> OrderRecord:
    """Cancel an order that is neither fulfilled nor refunded; it leaves the order-stat traits."""
    order = load_order(session, order_id)
    if order.status != "placed" or order.fulfilment_status != "unfulfilled":
        raise Conflict(
            f"an order that is {order.status} and {order.fulfilment_status} cannot be cancelled",
            code="order_not_cancellable",
        )
    old = order_snapshot(order)
    order.status = "cancelled"
    order.cancelled_at = now()
    _change(
        session,
        order,
        "order.cancelled",
        "order_cancelled",
        N_("Order cancelled"),
        events.ORDER_CANCELLED if emit_events else None,
        {"cancelled_at": _iso(order.cancelled_at), "reason": reason},
        old,
        record_timeline=record_timeline,
        refresh=True,
    )
    return get_order(session, order.id)


def line_refund_caps(order: Order) -> dict[str, Decimal]:
    """The most each line can refund: its share of the order total (see the module docstring)."""
    lines = list(order.lines)
    if not lines:
        return {}
    total = Money(order.total_amount, order.currency)
    weights: list[int | Decimal] = [Decimal(line.total_amount) for line in lines]
    if sum(weights) <= 0:
        weights = [line.quantity for line in lines]
    shares = total.allocate(weights) if total.amount > 0 else [Money.zero(order.currency)] * len(lines)
    return {line.id: share.amount for line, share in zip(lines, shares, strict=True)}


def refund_lines(
    session: Session,
    order_id: str,
    lines: Sequence[RefundLineInput],
    *,
    kind: str = "refund",
    reason: str = "",
    at: datetime | None = None,
    emit_events: bool = True,
    record_timeline: bool = True,
) -> list[RefundRecord]:
    """Refund (or record the return of) quantities of order lines; emits ``order.refunded``.

    Each line's refunded quantity is bounded by its quantity and its refunded amount by its share of
    the order total, with one conditional UPDATE per line (race-safe, never read-modify-write)."""
    if kind not in ("refund", "return"):
        raise _invalid(["kind"], "kind must be refund or return", "invalid_choice")
    if not lines:
        raise _invalid(["lines"], "name at least one line to refund", "missing")
    order = load_order(session, order_id)
    if order.status == "cancelled":
        raise Conflict("a cancelled order cannot be refunded", code="order_cancelled")
    by_id = {line.id: line for line in order.lines}
    caps = line_refund_caps(order)
    errors: list[dict[str, Any]] = []
    planned: dict[str, tuple[int, Decimal]] = {}
    items: list[tuple[OrderLine, int, Decimal]] = []
    for i, item in enumerate(lines):
        line = by_id.get(item.line_id)
        if line is None:
            errors.append(
                {"loc": ["lines", i, "line_id"], "msg": "not a line of this order", "type": "unknown_line"}
            )
            continue
        if isinstance(item.quantity, bool) or not isinstance(item.quantity, int) or item.quantity < 1:
            errors.append(
                {
                    "loc": ["lines", i, "quantity"],
                    "msg": "must be a whole number ≥ 1",
                    "type": "invalid_quantity",
                }
            )
            continue
        done_qty, done_amount = planned.get(line.id, (0, Decimal(0)))
        already_qty = line.refunded_quantity + done_qty
        already_amount = Decimal(line.refunded_amount) + done_amount
        if already_qty + item.quantity > line.quantity:
            errors.append(
                {
                    "loc": ["lines", i, "quantity"],
                    "msg": f"only {line.quantity - already_qty} of {line.quantity} can still be refunded",
                    "type": "refund_quantity_exceeded",
                }
            )
            continue
        cap = caps[line.id]
        if item.amount is None:
            amount = refund_share(
                line_total=cap,
                line_quantity=line.quantity,
                refunded_quantity=already_qty,
                refunded_amount=already_amount,
                quantity=item.quantity,
                currency=order.currency,
            )
        else:
            try:
                amount = quantize(parse_decimal(item.amount), order.currency)
            except ValidationFailed as exc:
                errors.append({"loc": ["lines", i, "amount"], "msg": exc.detail, "type": "invalid_amount"})
                continue
            if amount < 0:
                errors.append(
                    {"loc": ["lines", i, "amount"], "msg": "must not be negative", "type": "negative_amount"}
                )
                continue
        if already_amount + amount > cap:
            errors.append(
                {
                    "loc": ["lines", i, "amount"],
                    "msg": f"at most {cap - already_amount} {order.currency} can still be refunded",
                    "type": "refund_amount_exceeded",
                }
            )
            continue
        planned[line.id] = (done_qty + item.quantity, done_amount + amount)
        items.append((line, item.quantity, amount))
    if errors:
        codes = {e["type"] for e in errors}
        raise ValidationFailed(
            "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5]),
            code=errors[0]["type"] if len(codes) == 1 else "validation_failed",
            errors=errors,
        )
    when = _when(at)
    old = order_snapshot(order)
    table_ = _LINES
    for line_id, (qty, amount) in planned.items():
        result = session.execute(
            update(table_)
            .where(
                table_.c.id == line_id,
                table_.c.refunded_quantity + qty <= table_.c.quantity,
                table_.c.refunded_amount + amount <= caps[line_id],
            )
            .values(
                refunded_quantity=table_.c.refunded_quantity + qty,
                refunded_amount=table_.c.refunded_amount + amount,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("the line was refunded concurrently; retry", code="concurrent_update")
    created: list[Refund] = []
    for line, qty, amount in items:
        refund = Refund(
            id=new_id(),
            order_id=order.id,
            order_line_id=line.id,
            quantity=qty,
            amount=amount,
            currency=order.currency,
            reason=reason,
            kind=kind,
            refunded_at=when,
        )
        session.add(refund)
        created.append(refund)
    session.flush()
    for line in order.lines:
        session.refresh(line)
    refunded_total = sum((Decimal(line.refunded_amount) for line in order.lines), Decimal(0))
    order.refunded_amount = quantize(refunded_total, order.currency)
    order.status = status_after_refund([(line.quantity, line.refunded_quantity) for line in order.lines])
    order.reporting_net_amount = _net_reporting(
        order.total_amount, order.refunded_amount, order.reporting_fx_rate, order.reporting_currency
    )
    this_time = quantize(sum((r.amount for r in created), Decimal(0)), order.currency)
    payload = {
        "kind": kind,
        "reason": reason,
        "status": order.status,
        "refunded_at": _iso(when),
        "amount": _wire(Money(this_time, order.currency)),
        "lines": [
            {
                "refund_id": r.id,
                "line_id": r.order_line_id,
                "sku": by_id[r.order_line_id].sku,
                "quantity": r.quantity,
                "amount": _amount(r.amount, order.currency),
            }
            for r in created
        ],
    }
    summary = N_("Order refunded") if kind == "refund" else N_("Order items returned")
    _change(
        session,
        order,
        "order.refunded" if kind == "refund" else "order.returned",
        "order_refunded" if kind == "refund" else "order_returned",
        summary,
        events.ORDER_REFUNDED if emit_events else None,
        payload,
        old,
        record_timeline=record_timeline,
        refresh=True,
    )
    return [refund_record(r) for r in created]


def emit_delayed_orders(session: Session, at: datetime | None = None, *, batch: int = 500) -> int:
    """Emit ``order.delayed`` once per live order whose promised delivery date has passed in its
    market's time zone (the business time zone without a market) and that is not delivered.
    Returns how many orders were flagged."""
    when = _when(at)
    zones = _market_zones(session)
    default_zone = get_business(session).time_zone
    # no local date anywhere is later than UTC's date + 1 day: a coarse, indexable filter
    horizon = when.date() + timedelta(days=1)
    flagged = 0
    last_id = ""
    while True:
        rows = list(
            session.scalars(
                select(Order)
                .where(
                    Order.live.is_(True),
                    Order.delayed_notified_at.is_(None),
                    Order.promised_delivery_date.is_not(None),
                    Order.promised_delivery_date < horizon,
                    Order.delivered_at.is_(None),
                    Order.fulfilment_status != "delivered",
                    Order.status.in_(("placed", "partially_refunded")),
                    Order.id > last_id,
                )
                .order_by(Order.id)
                .limit(batch)
            )
        )
        if not rows:
            return flagged
        for order in rows:
            zone = ZoneInfo(zones.get(order.market_code or "", default_zone))
            local_today = when.astimezone(zone).date()
            promised = order.promised_delivery_date
            assert promised is not None
            if local_today <= promised:
                continue
            claimed = session.execute(
                update(_ORDERS)
                .where(_ORDERS.c.id == order.id, _ORDERS.c.delayed_notified_at.is_(None))
                .values(delayed_notified_at=when)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            days_late = (local_today - promised).days
            payload = {
                "order_id": order.id,
                "external_id": order.external_id,
                "customer_id": order.customer_id,
                "market": order.market_code,
                "promised_delivery_date": promised.isoformat(),
                "days_late": days_late,
            }
            record_audit(
                session,
                "order.delayed",
                "order",
                order.id,
                new={"delayed_notified_at": when, "days_late": days_late},
            )
            _timeline(
                session,
                order,
                "order_delayed",
                N_("Order delivery is late"),
                {"promised_delivery_date": promised.isoformat(), "days_late": days_late},
                occurred_at=when,
            )
            emit_event(session, events.ORDER_DELAYED, payload)
            flagged += 1
        last_id = rows[-1].id
        session.expire_all()


# --- subscriptions --------------------------------------------------------------------------------


def _subscription_snapshot(sub: Subscription) -> dict[str, Any]:
    return {
        "customer_id": sub.customer_id,
        "plan": sub.plan,
        "price_amount": sub.price_amount,
        "currency": sub.currency,
        "interval": sub.interval,
        "status": sub.status,
        "started_at": sub.started_at,
        "renews_at": sub.renews_at,
        "cancelled_at": sub.cancelled_at,
    }


def _subscription_timeline(session: Session, sub: Subscription, kind: str, summary: str) -> None:
    if _is_erased(session, sub.customer_id):
        return
    record_interaction(
        session,
        sub.customer_id,
        channel="web",
        direction="inbound",
        kind=kind,
        summary=summary,
        data={
            "subscription_id": sub.id,
            "plan": sub.plan,
            "price": _wire(Money(sub.price_amount, sub.currency)),
            "interval": sub.interval,
        },
        occurred_at=sub.cancelled_at if kind == "subscription_cancelled" else sub.started_at,
        source=TRAIT_SOURCE,
    )


def start_subscription(
    session: Session,
    data: SubscriptionInput,
    *,
    emit_events: bool = True,
    record_timeline: bool = True,
) -> SubscriptionRecord:
    """Start (or record) a subscription; emits ``subscription.started`` for an active one. The
    renewal defaults to one interval after the start."""
    customer_id = _resolve_customer(session, data.customer_id, data.customer_external_id)
    if (
        data.external_id is not None
        and session.scalar(select(Subscription.id).where(Subscription.external_id == data.external_id))
        is not None
    ):
        raise Conflict(
            f"a subscription with external id {data.external_id!r} exists", code="duplicate_subscription"
        )
    started = data.started_at or now()
    renews = data.renews_at
    if renews is None and data.status == "active":
        renews = add_interval(started, data.interval)
    sub = Subscription(
        id=new_id(),
        external_id=data.external_id,
        customer_id=customer_id,
        plan=data.plan,
        price_amount=data.price.amount,
        currency=data.price.currency,
        interval=data.interval,
        status=data.status,
        started_at=started,
        renews_at=renews,
        cancelled_at=data.cancelled_at,
        source=data.source,
    )
    session.add(sub)
    session.flush()
    record_audit(session, "subscription.started", "subscription", sub.id, new=_subscription_snapshot(sub))
    if record_timeline:
        _subscription_timeline(session, sub, "subscription_started", N_("Subscription started"))
    if emit_events and sub.status == "active":
        emit_event(
            session,
            events.SUBSCRIPTION_STARTED,
            {
                "subscription_id": sub.id,
                "customer_id": sub.customer_id,
                "plan": sub.plan,
                "price": _wire(Money(sub.price_amount, sub.currency)),
                "interval": sub.interval,
                "started_at": _iso(sub.started_at),
                "renews_at": _iso(sub.renews_at),
            },
        )
    return subscription_record(sub)


def cancel_subscription(
    session: Session,
    subscription_id: str,
    *,
    at: datetime | None = None,
    emit_events: bool = True,
    record_timeline: bool = True,
) -> SubscriptionRecord:
    """Cancel an active subscription (it no longer renews); emits ``subscription.cancelled``."""
    sub = load_subscription(session, subscription_id)
    if sub.status != "active":
        raise Conflict(f"the subscription is {sub.status}", code="subscription_not_active")
    old = _subscription_snapshot(sub)
    when = _when(at)
    if when < sub.started_at:
        raise _invalid(["cancelled_at"], "cancelled_at is before the start", "before_started_at")
    sub.status = "cancelled"
    sub.cancelled_at = when
    sub.renews_at = None
    _flush(session)
    record_audit(
        session, "subscription.cancelled", "subscription", sub.id, old=old, new=_subscription_snapshot(sub)
    )
    if record_timeline:
        _subscription_timeline(session, sub, "subscription_cancelled", N_("Subscription cancelled"))
    if emit_events:
        emit_event(
            session,
            events.SUBSCRIPTION_CANCELLED,
            {
                "subscription_id": sub.id,
                "customer_id": sub.customer_id,
                "plan": sub.plan,
                "cancelled_at": _iso(when),
            },
        )
    return subscription_record(sub)


#: renewals due longer ago than this are caught up silently (no event, no timeline entry): a
#: subscription imported with its history, or a worker that was down for days, must not send
#: "renewed" messages for periods long past
RENEWAL_NOTICE_WINDOW = timedelta(days=2)
_MAX_CATCH_UP = 600  # periods advanced per subscription per run (50 years of months)


def renew_due_subscriptions(session: Session, at: datetime | None = None, *, batch: int = 500) -> int:
    """Renew every active subscription whose renewal time has passed: ``renews_at`` moves on by its
    interval (counted from the start, so 31 January renews on 28/29 February, then 31 March) and
    ``subscription.renewed`` is emitted for each period with a timeline entry — for periods that
    began within :data:`RENEWAL_NOTICE_WINDOW`; older ones are caught up silently. Each
    subscription is claimed by a conditional update, so concurrent workers renew a period once.
    Returns the number of renewals notified."""
    when = _when(at)
    notified = 0
    last_id = ""
    while True:
        due = list(
            session.execute(
                select(
                    Subscription.id, Subscription.customer_id, Subscription.plan, Subscription.price_amount,
                    Subscription.currency, Subscription.interval, Subscription.started_at,
                    Subscription.renews_at,
                )
                .where(
                    Subscription.status == "active",
                    Subscription.renews_at.is_not(None),
                    Subscription.renews_at <= when,
                    Subscription.id > last_id,
                )
                .order_by(Subscription.id)
                .limit(batch)
            )
        )  # fmt: skip
        if not due:
            return notified
        for sub_id, customer_id, plan, price, currency, interval, started, renews in due:
            assert renews is not None  # filtered above
            started, renews = ensure_aware(started), ensure_aware(renews)
            periods: list[datetime] = []  # the renewal times that passed
            k, current = 0, renews
            while current <= when and len(periods) < _MAX_CATCH_UP:
                periods.append(current)
                k += 1
                current = add_interval(started, interval, _periods_between(started, renews, interval) + k)
            claimed = session.execute(
                update(_SUBSCRIPTIONS)
                .where(
                    _SUBSCRIPTIONS.c.id == sub_id,
                    _SUBSCRIPTIONS.c.status == "active",
                    _SUBSCRIPTIONS.c.renews_at == renews,
                )
                .values(renews_at=current, version=_SUBSCRIPTIONS.c.version + 1, updated_at=when)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another worker renewed it, or it changed meanwhile
            record_audit(
                session, "subscription.renewed", "subscription", sub_id,
                old={"renews_at": renews}, new={"renews_at": current, "periods": len(periods)},
            )  # fmt: skip
            erased = _is_erased(session, customer_id)
            for period_start in periods:
                if when - period_start > RENEWAL_NOTICE_WINDOW:
                    continue
                next_renewal = add_interval(
                    started, interval, _periods_between(started, period_start, interval) + 1
                )
                payload = {
                    "subscription_id": sub_id,
                    "customer_id": customer_id,
                    "plan": plan,
                    "price": _wire(Money(price, currency)),
                    "interval": interval,
                    "period_start": _iso(period_start),
                    "renews_at": _iso(next_renewal),
                }
                if not erased:
                    record_interaction(
                        session, customer_id, channel="web", direction="inbound", kind="subscription_renewed",
                        summary=N_("Subscription renewed"),
                        data={"subscription_id": sub_id, "plan": plan, "price": payload["price"]},
                        occurred_at=period_start, source=TRAIT_SOURCE,
                    )  # fmt: skip
                emit_event(session, events.SUBSCRIPTION_RENEWED, payload)
                notified += 1
        last_id = due[-1][0]
        session.expire_all()


def _periods_between(started: datetime, moment: datetime, interval: str) -> int:
    """How many whole intervals from ``started`` reach ``moment`` (``add_interval(started, n) <=
    moment``, the largest such n)."""
    months = (moment.year - started.year) * 12 + (moment.month - started.month)
    n = months // 12 if interval == "year" else months
    n = max(n, 0)
    while n > 0 and add_interval(started, interval, n) > moment:
        n -= 1
    while add_interval(started, interval, n + 1) <= moment:
        n += 1
    return n


# --- bulk (imports) -------------------------------------------------------------------------------


_ORDER_FIELDS = tuple(f.name for f in fields(OrderInput) if f.name != "lines")
_LINE_FIELDS = tuple(f.name for f in fields(OrderLineInput))


def content_hash(data: OrderInput) -> str:
    """A stable digest of an order input, so an idempotent re-import can skip unchanged rows."""
    parts = [str(getattr(data, name)) for name in _ORDER_FIELDS]
    for line in data.lines:
        parts.append("\x1e")
        parts.extend(str(getattr(line, name)) for name in _LINE_FIELDS)
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=32).hexdigest()


def _resolve_customers_bulk(
    session: Session, rows: Sequence[OrderInput | SubscriptionInput]
) -> tuple[dict[str, tuple[str, bool]], dict[str, str]]:
    ids = [r.customer_id for r in rows if r.customer_id is not None]
    externals = [
        r.customer_external_id for r in rows if r.customer_id is None and r.customer_external_id is not None
    ]
    return _customer_rows(session, ids=ids, external_ids=externals)


def _customer_for(
    row: OrderInput | SubscriptionInput, resolved: dict[str, tuple[str, bool]], by_external: dict[str, str]
) -> tuple[str | None, dict[str, Any] | None]:
    loc = "customer_id" if row.customer_id is not None else "customer_external_id"
    given = row.customer_id
    if given is None:
        given = by_external.get(row.customer_external_id or "")
    if given is None or given not in resolved:
        return None, {"loc": [loc], "msg": "no such customer", "type": "unknown_customer"}
    current, erased = resolved[given]
    if erased:
        return None, {"loc": [loc], "msg": "the customer was erased", "type": "customer_erased"}
    return current, None


def _repeated_in_batch(external_id: str | None, seen: set[str]) -> dict[str, Any] | None:
    """The error for an external id given twice in one bulk call (remembers it in ``seen``)."""
    if external_id is None:
        return None
    if external_id in seen:
        return {"loc": ["external_id"], "msg": "repeated in this batch", "type": "duplicate_external_id"}
    seen.add(external_id)
    return None


def upsert_orders_bulk(
    session: Session,
    orders: Sequence[OrderInput],
    *,
    emit_events: bool,
    record_timeline: bool = False,
    refresh_traits: bool = True,
) -> list[UpsertResult]:
    """Insert or update many orders by ``external_id`` with bulk statements (no per-row ORM flush).

    A row whose content is unchanged since the last import is ``unchanged``; a changed one is
    ``updated`` (header replaced, lines replaced) unless it has refunds (then ``rejected``,
    ``order_has_refunds``). Unknown customers, markets or products, a missing FX rate and a repeated
    external id in the same batch reject the row, with its errors. Audit: one entry per batch.
    With ``refresh_traits`` the customers' order-stat traits are recomputed at the end; pass
    ``False`` and call :func:`refresh_order_stats` once when importing many batches."""
    results: list[UpsertResult | None] = [None] * len(orders)
    resolved, by_external = _resolve_customers_bulk(session, orders)
    markets = set(_market_zones(session))
    rates = _Rates(session)
    at = now()

    skus = list({ln.sku for o in orders for ln in o.lines if ln.product_id is None and ln.sku is not None})
    product_by_sku: dict[str, tuple[str, str, str | None]] = {}
    for part in chunks(skus):
        for pid, sku, name, category in session.execute(
            select(Product.id, Product.sku, Product.name, Product.category).where(Product.sku.in_(part))
        ):
            product_by_sku[sku] = (pid, name, category)
    product_ids = list({ln.product_id for o in orders for ln in o.lines if ln.product_id is not None})
    known_products: dict[str, tuple[str, str, str | None]] = {}
    for part in chunks(product_ids):
        for pid, sku, name, category in session.execute(
            select(Product.id, Product.sku, Product.name, Product.category).where(Product.id.in_(part))
        ):
            known_products[pid] = (sku, name, category)

    externals = list({o.external_id for o in orders if o.external_id is not None})
    existing: dict[str, tuple[str, str | None, str]] = {}
    for part in chunks(externals):
        for oid, ext, digest, cid in session.execute(
            select(Order.id, Order.external_id, Order.content_hash, Order.customer_id).where(
                Order.external_id.in_(part)
            )
        ):
            existing[str(ext)] = (oid, digest, cid)
    with_refunds: set[str] = set()
    existing_ids = [v[0] for v in existing.values()]
    for part in chunks(existing_ids):
        with_refunds.update(session.scalars(select(Refund.order_id).where(Refund.order_id.in_(part))))

    new_orders: list[dict[str, Any]] = []
    updated_orders: list[dict[str, Any]] = []
    new_lines: list[dict[str, Any]] = []
    replaced_line_orders: list[str] = []
    touched_customers: list[str] = []
    placed_events: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    seen: set[str] = set()

    for index, data in enumerate(orders):
        errors: list[dict[str, Any]] = []
        customer_id, err = _customer_for(data, resolved, by_external)
        if err is not None:
            errors.append(err)
        if (repeated := _repeated_in_batch(data.external_id, seen)) is not None:
            errors.append(repeated)
        if data.market_code is not None and data.market_code not in markets:
            errors.append(
                {"loc": ["market"], "msg": f"unknown market {data.market_code!r}", "type": "unknown_market"}
            )
        placed_at = data.placed_at or at
        rate = rates.rate(data.currency, placed_at)
        if rate is None:
            errors.append(
                {
                    "loc": ["currency"],
                    "msg": f"no FX rate {data.currency}->{rates.target} on "
                    f"{rates.order_date(placed_at).isoformat()}",
                    "type": "fx_rate_missing",
                }
            )
        line_refs: list[tuple[str | None, str | None, str, str | None]] = []
        for i, line in enumerate(data.lines):
            if line.product_id is not None:
                found = known_products.get(line.product_id)
                if found is None:
                    errors.append(
                        {
                            "loc": ["lines", i, "product_id"],
                            "msg": "no such product",
                            "type": "unknown_product",
                        }
                    )
                    continue
                line_refs.append(
                    (line.product_id, line.sku or found[0], line.name or found[1], line.category or found[2])
                )
            elif line.sku is not None and line.sku in product_by_sku:
                pid, name, category = product_by_sku[line.sku]
                line_refs.append((pid, line.sku, line.name or name, line.category or category))
            else:
                line_refs.append((None, line.sku, line.name, line.category))
        digest = content_hash(data)
        prior = existing.get(data.external_id) if data.external_id is not None else None
        if prior is not None and not errors:
            if prior[1] == digest:
                results[index] = UpsertResult(index, data.external_id, prior[0], "unchanged")
                continue
            if prior[0] in with_refunds:
                errors.append(
                    {
                        "loc": ["external_id"],
                        "msg": "the order has refunds and cannot be replaced by an import",
                        "type": "order_has_refunds",
                    }
                )
        if errors:
            results[index] = UpsertResult(index, data.external_id, None, "rejected", tuple(errors))
            continue
        assert customer_id is not None
        assert rate is not None
        order_id = prior[0] if prior is not None else new_id()
        fulfilled_at = data.fulfilled_at or (
            data.delivered_at if data.fulfilment_status != "unfulfilled" else None
        )
        values: dict[str, Any] = {
            "external_id": data.external_id,
            "customer_id": customer_id,
            "market_code": data.market_code,
            "channel": data.channel,
            "currency": data.currency,
            "subtotal_amount": data.subtotal,
            "discount_amount": data.discount,
            "tax_amount": data.tax,
            "shipping_amount": data.shipping,
            "total_amount": data.total,
            "refunded_amount": Decimal(0),
            "reporting_currency": rates.target,
            "reporting_fx_rate": rate,
            "reporting_net_amount": _net_reporting(data.total, Decimal(0), rate, rates.target),
            "status": data.status,
            "placed_at": placed_at,
            "promised_delivery_date": data.promised_delivery_date,
            "fulfilment_status": data.fulfilment_status,
            "fulfilled_at": fulfilled_at,
            "delivered_at": data.delivered_at,
            "cancelled_at": None,
            "delayed_notified_at": None,
            "live": emit_events,
            "source": data.source,
            "content_hash": digest,
            "updated_at": at,
        }
        touched_customers.append(customer_id)
        if prior is None:
            values.update(id=order_id, version=1, created_at=at)
            new_orders.append(values)
            results[index] = UpsertResult(index, data.external_id, order_id, "created")
        else:
            values["b_id"] = order_id
            updated_orders.append(values)
            replaced_line_orders.append(order_id)
            touched_customers.append(prior[2])
            results[index] = UpsertResult(index, data.external_id, order_id, "updated")
        lines_here = []
        for i, (line, ref) in enumerate(zip(data.lines, line_refs, strict=True)):
            line_values: dict[str, Any] = {
                "id": new_id(),
                "order_id": order_id,
                "position": i,
                "product_id": ref[0],
                "sku": ref[1],
                "name": ref[2],
                "category": ref[3],
                "quantity": line.quantity,
                "unit_price_amount": line.unit_price,
                "discount_amount": line.discount,
                "total_amount": line.total,
                "refunded_quantity": 0,
                "refunded_amount": Decimal(0),
            }
            new_lines.append(line_values)
            lines_here.append(line_values)
        if prior is None:
            placed_events.append((values, lines_here))

    orders_table, lines_table = _ORDERS, _LINES
    insert_mappings(session, orders_table, new_orders)
    if updated_orders:
        for part in chunks(replaced_line_orders):
            session.execute(delete(lines_table).where(lines_table.c.order_id.in_(part)))
        session.execute(
            update(orders_table)
            .where(orders_table.c.id == bindparam("b_id"))
            .values(version=orders_table.c.version + 1),
            updated_orders,
        )
    insert_mappings(session, lines_table, new_lines)
    if new_orders or updated_orders:
        session.expire_all()
    for values, lines_here in placed_events:
        if record_timeline:
            record_interaction(
                session,
                values["customer_id"],
                channel=values["channel"],
                direction="inbound",
                kind="order_placed",
                summary=N_("Order placed"),
                data={
                    "order_id": values["id"],
                    "external_id": values["external_id"],
                    "total": _wire(Money(values["total_amount"], values["currency"])),
                },
                occurred_at=values["placed_at"],
                source="import",
            )
        if emit_events:
            emit_event(
                session,
                events.ORDER_PLACED,
                {
                    "order_id": values["id"],
                    "external_id": values["external_id"],
                    "customer_id": values["customer_id"],
                    "market": values["market_code"],
                    "channel": values["channel"],
                    "source": values["source"],
                    "placed_at": _iso(values["placed_at"]),
                    "total": _wire(Money(values["total_amount"], values["currency"])),
                    "reporting_total": _wire(Money(values["reporting_net_amount"], rates.target)),
                    "lines": [
                        {
                            "line_id": ln["id"],
                            "sku": ln["sku"],
                            "quantity": ln["quantity"],
                            "total": _amount(ln["total_amount"], values["currency"]),
                        }
                        for ln in lines_here
                    ],
                },
            )
    final = [r for r in results if r is not None]
    counts = _count_actions(final)
    if counts.get("created") or counts.get("updated"):
        record_audit(session, "orders.upserted", "order", None, new=counts)
    if refresh_traits and touched_customers:
        refresh_order_stats(session, touched_customers)
    return final


def _count_actions(results: Sequence[UpsertResult]) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    for r in results:
        counts[r.action] = counts.get(r.action, 0) + 1
    return counts


def upsert_products_bulk(session: Session, products: Sequence[ProductInput]) -> list[UpsertResult]:
    """Insert or update many products by SKU with bulk statements."""
    existing: dict[str, tuple[str, str, str | None, Decimal, str, bool]] = {}
    skus = list({p.sku for p in products})
    for part in chunks(skus):
        for row in session.execute(
            select(
                Product.sku,
                Product.id,
                Product.name,
                Product.category,
                Product.price_amount,
                Product.currency,
                Product.active,
            ).where(Product.sku.in_(part))
        ):
            existing[row[0]] = (row[1], row[2], row[3], Decimal(row[4]), row[5], bool(row[6]))
    at = now()
    results: list[UpsertResult] = []
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, data in enumerate(products):
        if data.sku in seen:
            results.append(
                UpsertResult(
                    index,
                    data.sku,
                    None,
                    "rejected",
                    ({"loc": ["sku"], "msg": "repeated in this batch", "type": "duplicate_sku"},),
                )
            )
            continue
        seen.add(data.sku)
        values = _product_values(data)
        prior = existing.get(data.sku)
        if prior is None:
            product_id = new_id()
            inserts.append(
                {
                    **values,
                    "id": product_id,
                    "source": "import",
                    "version": 1,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            results.append(UpsertResult(index, data.sku, product_id, "created"))
        elif prior[1:] == (data.name, data.category, data.price.amount, data.price.currency, data.active):
            results.append(UpsertResult(index, data.sku, prior[0], "unchanged"))
        else:
            updates.append({**values, "b_id": prior[0], "updated_at": at})
            results.append(UpsertResult(index, data.sku, prior[0], "updated"))
    table_ = _PRODUCTS
    if inserts:
        insert_mappings(session, table_, inserts)
    if updates:
        session.execute(
            update(table_).where(table_.c.id == bindparam("b_id")).values(version=table_.c.version + 1),
            updates,
        )
    counts = _count_actions(results)
    if inserts or updates:
        session.expire_all()
        record_audit(session, "products.upserted", "product", None, new=counts)
    return results


def upsert_subscriptions_bulk(
    session: Session,
    subscriptions: Sequence[SubscriptionInput],
    *,
    emit_events: bool,
    record_timeline: bool = False,
) -> list[UpsertResult]:
    """Insert or update many subscriptions by ``external_id`` (rows without one are inserted)."""
    resolved, by_external = _resolve_customers_bulk(session, subscriptions)
    externals = list({s.external_id for s in subscriptions if s.external_id is not None})
    existing: dict[str, str] = {}
    current: dict[str, dict[str, Any]] = {}
    compared = (
        "customer_id",
        "plan",
        "price_amount",
        "currency",
        "interval",
        "status",
        "started_at",
        "renews_at",
        "cancelled_at",
        "source",
    )
    for part in chunks(externals):
        for sub in session.scalars(select(Subscription).where(Subscription.external_id.in_(part))):
            assert sub.external_id is not None
            existing[sub.external_id] = sub.id
            current[sub.id] = {k: getattr(sub, k) for k in compared}
    at = now()
    results: list[UpsertResult] = []
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    started: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, data in enumerate(subscriptions):
        errors: list[dict[str, Any]] = []
        customer_id, err = _customer_for(data, resolved, by_external)
        if err is not None:
            errors.append(err)
        if (repeated := _repeated_in_batch(data.external_id, seen)) is not None:
            errors.append(repeated)
        if errors:
            results.append(UpsertResult(index, data.external_id, None, "rejected", tuple(errors)))
            continue
        started_at = data.started_at or at
        renews = data.renews_at
        if renews is None and data.status == "active":
            renews = add_interval(started_at, data.interval)
        values: dict[str, Any] = {
            "external_id": data.external_id,
            "customer_id": customer_id,
            "plan": data.plan,
            "price_amount": data.price.amount,
            "currency": data.price.currency,
            "interval": data.interval,
            "status": data.status,
            "started_at": started_at,
            "renews_at": renews,
            "cancelled_at": data.cancelled_at,
            "source": data.source,
            "updated_at": at,
        }
        prior = existing.get(data.external_id) if data.external_id is not None else None
        if prior is None:
            sid = new_id()
            values.update(id=sid, version=1, created_at=at)
            inserts.append(values)
            if data.status == "active":
                started.append(values)
            results.append(UpsertResult(index, data.external_id, sid, "created"))
        elif all(current[prior][k] == values[k] for k in compared):
            results.append(UpsertResult(index, data.external_id, prior, "unchanged"))
        else:
            values["b_id"] = prior
            updates.append(values)
            results.append(UpsertResult(index, data.external_id, prior, "updated"))
    table_ = _SUBSCRIPTIONS
    if inserts:
        insert_mappings(session, table_, inserts)
    if updates:
        session.execute(
            update(table_).where(table_.c.id == bindparam("b_id")).values(version=table_.c.version + 1),
            updates,
        )
    if inserts or updates:
        session.expire_all()
        record_audit(session, "subscriptions.upserted", "subscription", None, new=_count_actions(results))
    for values in inserts:
        if record_timeline:
            record_interaction(
                session,
                values["customer_id"],
                channel="web",
                direction="inbound",
                kind="subscription_started",
                summary=N_("Subscription started"),
                data={"subscription_id": values["id"], "plan": values["plan"]},
                occurred_at=values["started_at"],
                source="import",
            )
    if emit_events:
        for values in started:
            emit_event(
                session,
                events.SUBSCRIPTION_STARTED,
                {
                    "subscription_id": values["id"],
                    "customer_id": values["customer_id"],
                    "plan": values["plan"],
                    "price": _wire(Money(values["price_amount"], values["currency"])),
                    "interval": values["interval"],
                    "started_at": _iso(values["started_at"]),
                    "renews_at": _iso(values["renews_at"]),
                },
            )
    return results


def delete_orders_hard(session: Session, order_ids: Sequence[str]) -> int:
    """Delete orders with their lines and refunds (import undo); recomputes the traits of their
    customers. Returns how many orders were deleted."""
    ids = list(dict.fromkeys(order_ids))
    customers: set[str] = set()
    deleted = 0
    for part in chunks(ids):
        customers.update(session.scalars(select(Order.customer_id).where(Order.id.in_(part))))
        session.execute(delete(_REFUNDS).where(_REFUNDS.c.order_id.in_(part)))
        session.execute(delete(_LINES).where(_LINES.c.order_id.in_(part)))
        result = session.execute(delete(_ORDERS).where(_ORDERS.c.id.in_(part)))
        deleted += int(result.rowcount)  # type: ignore[attr-defined]
    session.expire_all()
    if deleted:
        record_audit(session, "orders.deleted", "order", None, new={"count": deleted})
        refresh_order_stats(session, sorted(customers))
    return deleted


def delete_products_hard(session: Session, product_ids: Sequence[str]) -> int:
    """Delete products (import undo); order lines keep their SKU and name."""
    deleted = 0
    table_ = _PRODUCTS
    for part in chunks(list(dict.fromkeys(product_ids))):
        session.execute(update(_LINES).where(_LINES.c.product_id.in_(part)).values(product_id=None))
        deleted += int(session.execute(delete(table_).where(table_.c.id.in_(part))).rowcount)  # type: ignore[attr-defined]
    session.expire_all()
    if deleted:
        record_audit(session, "products.deleted", "product", None, new={"count": deleted})
    return deleted


def delete_subscriptions_hard(session: Session, subscription_ids: Sequence[str]) -> int:
    """Delete subscriptions (import undo)."""
    deleted = 0
    table_ = _SUBSCRIPTIONS
    for part in chunks(list(dict.fromkeys(subscription_ids))):
        deleted += int(session.execute(delete(table_).where(table_.c.id.in_(part))).rowcount)  # type: ignore[attr-defined]
    session.expire_all()
    if deleted:
        record_audit(session, "subscriptions.deleted", "subscription", None, new={"count": deleted})
    return deleted
