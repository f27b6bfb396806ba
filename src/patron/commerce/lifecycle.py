"""The commerce customer lifecycle handler: merge, erase, export (run in the caller's transaction)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patron.commerce.contracts import (
    TRAIT_FIRST_ORDER_AT,
    TRAIT_LAST_ORDER_AT,
    TRAIT_ORDER_COUNT,
    TRAIT_TOTAL_SPENT,
    OrderRecord,
    SubscriptionRecord,
)
from patron.commerce.models import Order, Refund, Subscription
from patron.commerce.queries import iter_orders_for_export, subscription_record
from patron.commerce.service import TRAIT_SOURCE, refresh_order_stats
from patron.customers import set_traits


def _money(value: Any) -> dict[str, str]:
    return {"amount": str(value.amount), "currency": value.currency}


def order_to_json(order: OrderRecord) -> dict[str, Any]:
    return {
        "id": order.id,
        "external_id": order.external_id,
        "market": order.market_code,
        "channel": order.channel,
        "currency": order.currency,
        "subtotal": str(order.subtotal.amount),
        "discount": str(order.discount.amount),
        "tax": str(order.tax.amount),
        "shipping": str(order.shipping.amount),
        "total": str(order.total.amount),
        "refunded": str(order.refunded.amount),
        "status": order.status,
        "placed_at": order.placed_at.isoformat(),
        "promised_delivery_date": (
            order.promised_delivery_date.isoformat() if order.promised_delivery_date else None
        ),
        "fulfilment_status": order.fulfilment_status,
        "fulfilled_at": order.fulfilled_at.isoformat() if order.fulfilled_at else None,
        "delivered_at": order.delivered_at.isoformat() if order.delivered_at else None,
        "cancelled_at": order.cancelled_at.isoformat() if order.cancelled_at else None,
        "lines": [
            {
                "id": line.id,
                "sku": line.sku,
                "name": line.name,
                "category": line.category,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price.amount),
                "discount": str(line.discount.amount),
                "total": str(line.total.amount),
                "refunded_quantity": line.refunded_quantity,
                "refunded": str(line.refunded.amount),
            }
            for line in order.lines
        ],
        "refunds": [
            {
                "id": r.id,
                "line_id": r.order_line_id,
                "quantity": r.quantity,
                "amount": _money(r.amount),
                "kind": r.kind,
                "reason": r.reason,
                "refunded_at": r.refunded_at.isoformat(),
            }
            for r in order.refunds
        ],
    }


def subscription_to_json(sub: SubscriptionRecord) -> dict[str, Any]:
    return {
        "id": sub.id,
        "external_id": sub.external_id,
        "plan": sub.plan,
        "price": _money(sub.price),
        "interval": sub.interval,
        "status": sub.status,
        "started_at": sub.started_at.isoformat(),
        "renews_at": sub.renews_at.isoformat() if sub.renews_at else None,
        "cancelled_at": sub.cancelled_at.isoformat() if sub.cancelled_at else None,
    }


class CommerceLifecycle:
    """Orders and subscriptions follow a merge; erasure keeps them.

    Orders, lines, refunds and subscriptions are financial records that hold no personal data of
    their own — no names, emails, phones or addresses; only the customer id, amounts, SKUs and
    dates — so erasing a customer (which anonymises the customer row) leaves them as they are and
    the business's revenue figures stay correct. Refund reasons are staff notes about the order,
    not about the person; an erasure clears them anyway in case someone typed personal details.
    """

    name = "commerce"

    def merge(self, session: Session, *, source_id: str, target_id: str) -> None:
        session.flush()
        session.execute(update(Order).where(Order.customer_id == source_id).values(customer_id=target_id))
        session.execute(
            update(Subscription).where(Subscription.customer_id == source_id).values(customer_id=target_id)
        )
        session.expire_all()
        # the source keeps no order-stat traits; the target's are recomputed from all its orders
        set_traits(
            session,
            source_id,
            {
                TRAIT_ORDER_COUNT: None,
                TRAIT_TOTAL_SPENT: None,
                TRAIT_FIRST_ORDER_AT: None,
                TRAIT_LAST_ORDER_AT: None,
            },
            source=TRAIT_SOURCE,
        )
        refresh_order_stats(session, [target_id])

    def erase(self, session: Session, *, customer_id: str) -> None:
        order_ids = select(Order.id).where(Order.customer_id == customer_id)
        session.execute(
            update(Refund).where(Refund.order_id.in_(order_ids), Refund.reason != "").values(reason="")
        )
        session.expire_all()

    def export(self, session: Session, *, customer_id: str) -> dict[str, Any]:
        orders = [order_to_json(o) for o in iter_orders_for_export(session, customer_id=customer_id)]
        subs = session.scalars(
            select(Subscription)
            .where(Subscription.customer_id == customer_id)
            .order_by(Subscription.started_at, Subscription.id)
        )
        return {
            "orders": orders,
            "subscriptions": [subscription_to_json(subscription_record(s)) for s in subs],
        }
