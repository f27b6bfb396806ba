"""Commerce reads: ``get_*`` (exactly one or raise), ``list_*`` (cursor pages), export iterators and
the per-customer order statistics."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from patron.commerce.contracts import (
    ORDER_STATUSES,
    SUBSCRIPTION_STATUSES,
    OrderLineRecord,
    OrderRecord,
    OrderState,
    OrderStats,
    ProductRecord,
    RefundRecord,
    SubscriptionRecord,
)
from patron.commerce.models import Order, OrderLine, Product, Refund, Subscription
from patron.core.business import get_business
from patron.core.errors import NotFound, ValidationFailed
from patron.core.money import Money, quantize
from patron.core.pagination import Page, clamp_limit, decode_cursor, encode_cursor

_IN_CHUNK = 500


def chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _money(amount: Decimal, currency: str) -> Money:
    return Money(Decimal(amount), currency)


def product_record(product: Product) -> ProductRecord:
    return ProductRecord(
        id=product.id,
        sku=product.sku,
        name=product.name,
        category=product.category,
        price=_money(product.price_amount, product.currency),
        active=product.active,
        version=product.version,
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


def refund_record(refund: Refund) -> RefundRecord:
    return RefundRecord(
        id=refund.id,
        order_line_id=refund.order_line_id,
        quantity=refund.quantity,
        amount=_money(refund.amount, refund.currency),
        reason=refund.reason,
        kind=refund.kind,
        refunded_at=refund.refunded_at,
    )


def _line_record(line: OrderLine, currency: str) -> OrderLineRecord:
    return OrderLineRecord(
        id=line.id,
        position=line.position,
        product_id=line.product_id,
        sku=line.sku,
        name=line.name,
        category=line.category,
        quantity=line.quantity,
        unit_price=_money(line.unit_price_amount, currency),
        discount=_money(line.discount_amount, currency),
        total=_money(line.total_amount, currency),
        refunded_quantity=line.refunded_quantity,
        refunded=_money(line.refunded_amount, currency),
    )


def order_record(order: Order, refunds: Sequence[Refund] = ()) -> OrderRecord:
    c = order.currency
    return OrderRecord(
        id=order.id,
        external_id=order.external_id,
        customer_id=order.customer_id,
        market_code=order.market_code,
        channel=order.channel,
        currency=c,
        subtotal=_money(order.subtotal_amount, c),
        discount=_money(order.discount_amount, c),
        tax=_money(order.tax_amount, c),
        shipping=_money(order.shipping_amount, c),
        total=_money(order.total_amount, c),
        refunded=_money(order.refunded_amount, c),
        reporting_net=_money(order.reporting_net_amount, order.reporting_currency),
        status=order.status,
        placed_at=order.placed_at,
        promised_delivery_date=order.promised_delivery_date,
        fulfilment_status=order.fulfilment_status,
        fulfilled_at=order.fulfilled_at,
        delivered_at=order.delivered_at,
        cancelled_at=order.cancelled_at,
        delayed_notified_at=order.delayed_notified_at,
        source=order.source,
        version=order.version,
        created_at=order.created_at,
        updated_at=order.updated_at,
        lines=tuple(_line_record(line, c) for line in order.lines),
        refunds=tuple(refund_record(r) for r in refunds),
    )


def subscription_record(sub: Subscription) -> SubscriptionRecord:
    return SubscriptionRecord(
        id=sub.id,
        external_id=sub.external_id,
        customer_id=sub.customer_id,
        plan=sub.plan,
        price=_money(sub.price_amount, sub.currency),
        interval=sub.interval,
        status=sub.status,
        started_at=sub.started_at,
        renews_at=sub.renews_at,
        cancelled_at=sub.cancelled_at,
        source=sub.source,
        version=sub.version,
        created_at=sub.created_at,
        updated_at=sub.updated_at,
    )


# --- products -------------------------------------------------------------------------------------


def load_product(session: Session, product_id: str) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound(f"product {product_id!r} not found", code="product_not_found")
    return product


def get_product(session: Session, product_id: str) -> ProductRecord:
    return product_record(load_product(session, product_id))


def list_products(
    session: Session,
    *,
    category: str | None = None,
    active: bool | None = None,
    sku: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Page[ProductRecord]:
    """Products ordered by SKU."""
    size = clamp_limit(limit)
    stmt = select(Product).order_by(Product.sku).limit(size + 1)
    if category is not None:
        stmt = stmt.where(Product.category == category)
    if active is not None:
        stmt = stmt.where(Product.active.is_(active))
    if sku is not None:
        stmt = stmt.where(Product.sku == sku)
    after = decode_cursor(cursor)
    if after is not None:
        if len(after) != 1 or not isinstance(after[0], str):
            raise ValidationFailed("malformed cursor", code="invalid_cursor")
        stmt = stmt.where(Product.sku > after[0])
    rows = list(session.scalars(stmt))
    next_cursor = encode_cursor([rows[size - 1].sku]) if len(rows) > size else None
    return Page([product_record(p) for p in rows[:size]], next_cursor)


# --- orders ---------------------------------------------------------------------------------------


def load_order(session: Session, order_id: str) -> Order:
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(f"order {order_id!r} not found", code="order_not_found")
    return order


def _refunds_by_order(session: Session, order_ids: Sequence[str]) -> dict[str, list[Refund]]:
    out: dict[str, list[Refund]] = {}
    for part in chunks(list(order_ids)):
        stmt = select(Refund).where(Refund.order_id.in_(part)).order_by(Refund.refunded_at, Refund.id)
        for refund in session.scalars(stmt):
            out.setdefault(refund.order_id, []).append(refund)
    return out


def get_order_state(session: Session, order_id: str) -> OrderState:
    """An order's status, customer, fulfilment time and content hash in one light query (event
    handlers that take the rest from the event's payload)."""
    row = session.execute(
        select(Order.customer_id, Order.status, Order.fulfilled_at, Order.content_hash).where(
            Order.id == order_id
        )
    ).first()
    if row is None:
        raise NotFound(f"order {order_id!r} not found", code="order_not_found")
    return OrderState(order_id, str(row[0]), str(row[1]), row[2], row[3])


def get_order(session: Session, order_id: str) -> OrderRecord:
    order = load_order(session, order_id)
    return order_record(order, _refunds_by_order(session, [order.id]).get(order.id, []))


def _order_filters(
    stmt: Select[Any],
    *,
    customer_id: str | None,
    status: str | None,
    placed_after: datetime | None,
    placed_before: datetime | None,
) -> Select[Any]:
    if customer_id is not None:
        stmt = stmt.where(Order.customer_id == customer_id)
    if status is not None:
        if status not in ORDER_STATUSES:
            raise ValidationFailed(
                "status must be one of " + ", ".join(ORDER_STATUSES),
                code="invalid_status",
                errors=[{"loc": ["query", "status"], "msg": "unknown status", "type": "invalid_status"}],
            )
        stmt = stmt.where(Order.status == status)
    if placed_after is not None:
        stmt = stmt.where(Order.placed_at >= placed_after)
    if placed_before is not None:
        stmt = stmt.where(Order.placed_at < placed_before)
    return stmt


def _keyset(after: list[Any] | None) -> tuple[datetime, str] | None:
    if after is None:
        return None
    try:
        at, last_id = after
        return datetime.fromisoformat(at), str(last_id)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed("malformed cursor", code="invalid_cursor") from exc


def list_orders(
    session: Session,
    *,
    customer_id: str | None = None,
    status: str | None = None,
    placed_after: datetime | None = None,
    placed_before: datetime | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Page[OrderRecord]:
    """Orders, newest first (``placed_at`` then id, descending); ``placed_after`` is inclusive,
    ``placed_before`` exclusive."""
    size = clamp_limit(limit)
    stmt = (
        _order_filters(
            select(Order),
            customer_id=customer_id,
            status=status,
            placed_after=placed_after,
            placed_before=placed_before,
        )
        .order_by(Order.placed_at.desc(), Order.id.desc())
        .limit(size + 1)
    )
    key = _keyset(decode_cursor(cursor))
    if key is not None:
        stmt = stmt.where(or_(Order.placed_at < key[0], and_(Order.placed_at == key[0], Order.id < key[1])))
    rows = list(session.scalars(stmt))
    page = rows[:size]
    next_cursor = None
    if len(rows) > size:
        last = page[-1]
        next_cursor = encode_cursor([last.placed_at.isoformat(), last.id])
    refunds = _refunds_by_order(session, [o.id for o in page])
    return Page([order_record(o, refunds.get(o.id, [])) for o in page], next_cursor)


def iter_orders_for_export(
    session: Session,
    *,
    customer_id: str | None = None,
    status: str | None = None,
    placed_after: datetime | None = None,
    placed_before: datetime | None = None,
    batch_size: int = 1000,
) -> Iterator[OrderRecord]:
    """Every matching order with lines and refunds, oldest first, read in keyset batches."""
    key: tuple[datetime, str] | None = None
    while True:
        stmt = (
            _order_filters(
                select(Order),
                customer_id=customer_id,
                status=status,
                placed_after=placed_after,
                placed_before=placed_before,
            )
            .order_by(Order.placed_at, Order.id)
            .limit(batch_size)
        )
        if key is not None:
            stmt = stmt.where(
                or_(Order.placed_at > key[0], and_(Order.placed_at == key[0], Order.id > key[1]))
            )
        rows = list(session.scalars(stmt))
        if not rows:
            return
        refunds = _refunds_by_order(session, [o.id for o in rows])
        for order in rows:
            yield order_record(order, refunds.get(order.id, []))
        key = (rows[-1].placed_at, rows[-1].id)
        if len(rows) < batch_size:
            return


# --- subscriptions --------------------------------------------------------------------------------


def load_subscription(session: Session, subscription_id: str) -> Subscription:
    sub = session.get(Subscription, subscription_id)
    if sub is None:
        raise NotFound(f"subscription {subscription_id!r} not found", code="subscription_not_found")
    return sub


def get_subscription(session: Session, subscription_id: str) -> SubscriptionRecord:
    return subscription_record(load_subscription(session, subscription_id))


def list_subscriptions(
    session: Session,
    *,
    customer_id: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Page[SubscriptionRecord]:
    """Subscriptions, newest start first."""
    size = clamp_limit(limit)
    stmt = select(Subscription).order_by(Subscription.started_at.desc(), Subscription.id.desc())
    if customer_id is not None:
        stmt = stmt.where(Subscription.customer_id == customer_id)
    if status is not None:
        if status not in SUBSCRIPTION_STATUSES:
            raise ValidationFailed(
                "status must be one of " + ", ".join(SUBSCRIPTION_STATUSES),
                code="invalid_status",
                errors=[{"loc": ["query", "status"], "msg": "unknown status", "type": "invalid_status"}],
            )
        stmt = stmt.where(Subscription.status == status)
    key = _keyset(decode_cursor(cursor))
    if key is not None:
        stmt = stmt.where(
            or_(
                Subscription.started_at < key[0],
                and_(Subscription.started_at == key[0], Subscription.id < key[1]),
            )
        )
    rows = list(session.scalars(stmt.limit(size + 1)))
    page = rows[:size]
    next_cursor = None
    if len(rows) > size:
        next_cursor = encode_cursor([page[-1].started_at.isoformat(), page[-1].id])
    return Page([subscription_record(s) for s in page], next_cursor)


# --- order statistics -----------------------------------------------------------------------------


def order_stats_for(
    session: Session, customer_ids: Sequence[str], *, reporting_currency: str | None = None
) -> dict[str, OrderStats]:
    """Order count, net spend in the reporting currency, first and last order per customer, from
    SQL aggregates over non-cancelled orders. Customers without orders get zeros. (The caller may
    pass the business's reporting currency when it has read it already.)"""
    reporting = reporting_currency or get_business(session).reporting_currency
    out: dict[str, OrderStats] = {
        cid: OrderStats(0, Money.zero(reporting), None, None) for cid in customer_ids
    }
    for part in chunks(list(dict.fromkeys(customer_ids))):
        stmt = (
            select(
                Order.customer_id,
                func.count(Order.id),
                func.sum(Order.reporting_net_amount),
                func.min(Order.placed_at),
                func.max(Order.placed_at),
            )
            .where(Order.customer_id.in_(part), Order.status != "cancelled")
            .group_by(Order.customer_id)
        )
        for cid, count, spent, first, last in session.execute(stmt):
            amount = quantize(Decimal(spent or 0), reporting)
            out[cid] = OrderStats(int(count), Money(amount, reporting), first, last)
    return out


def get_order_stats(session: Session, customer_id: str) -> OrderStats:
    return order_stats_for(session, [customer_id])[customer_id]
