"""Commerce: products, orders with lines, refunds and returns per line, subscriptions.

Keeps the order-stat traits (``order_count``, ``total_spent`` in the reporting currency,
``first_order_at``, ``last_order_at``) current on the customer in the same transaction as each
order change, and emits ``order.*`` / ``subscription.*`` events through the outbox.
"""

from __future__ import annotations

from collections.abc import Callable

from patron.commerce import events
from patron.commerce.contracts import (
    CHANNELS,
    FULFILMENT_STATUSES,
    INTERVALS,
    ORDER_STATUSES,
    REFUND_KINDS,
    SOURCES,
    SUBSCRIPTION_STATUSES,
    OrderInput,
    OrderLineInput,
    OrderLineRecord,
    OrderRecord,
    OrderState,
    OrderStats,
    ProductInput,
    ProductRecord,
    RefundLineInput,
    RefundRecord,
    SubscriptionInput,
    SubscriptionRecord,
    UpsertResult,
)
from patron.commerce.export_rows import ORDER_EXPORT_COLUMNS, iter_order_export_rows, order_export_row
from patron.commerce.lifecycle import CommerceLifecycle, order_to_json, subscription_to_json
from patron.commerce.queries import (
    get_order,
    get_order_state,
    get_order_stats,
    get_product,
    get_subscription,
    iter_orders_for_export,
    list_orders,
    list_products,
    list_subscriptions,
    order_stats_for,
)
from patron.commerce.rules import prepare_order, prepare_product, prepare_subscription
from patron.commerce.service import (
    cancel_order,
    cancel_subscription,
    create_product,
    delete_orders_hard,
    delete_product,
    delete_products_hard,
    delete_subscriptions_hard,
    emit_delayed_orders,
    fulfil_order,
    mark_delivered,
    place_order,
    refresh_order_stats,
    refund_lines,
    renew_due_subscriptions,
    start_subscription,
    update_product,
    upsert_orders_bulk,
    upsert_products_bulk,
    upsert_subscriptions_bulk,
)
from patron.core.clock import now
from patron.core.db import Database
from patron.core.lifecycle import lifecycle

#: how often the worker looks for orders whose promised delivery date has passed, and for
#: subscriptions due to renew (seconds)
DELAYED_ORDERS_INTERVAL = 300.0


def register() -> None:
    """Register the commerce lifecycle handler (commerce reacts to no other domain's events)."""
    lifecycle.register(CommerceLifecycle())


def scheduled_jobs(db: Database) -> list[tuple[float, Callable[[], None]]]:
    """Jobs for the worker: ``(interval in seconds, job)``."""

    def delayed_orders() -> None:
        with db.unit_of_work() as session:
            emit_delayed_orders(session, now())

    def renewals() -> None:
        with db.unit_of_work() as session:
            renew_due_subscriptions(session, now())

    return [(DELAYED_ORDERS_INTERVAL, delayed_orders), (DELAYED_ORDERS_INTERVAL, renewals)]


__all__ = [
    "CHANNELS",
    "DELAYED_ORDERS_INTERVAL",
    "FULFILMENT_STATUSES",
    "INTERVALS",
    "ORDER_EXPORT_COLUMNS",
    "ORDER_STATUSES",
    "REFUND_KINDS",
    "SOURCES",
    "SUBSCRIPTION_STATUSES",
    "CommerceLifecycle",
    "OrderInput",
    "OrderLineInput",
    "OrderLineRecord",
    "OrderRecord",
    "OrderState",
    "OrderStats",
    "ProductInput",
    "ProductRecord",
    "RefundLineInput",
    "RefundRecord",
    "SubscriptionInput",
    "SubscriptionRecord",
    "UpsertResult",
    "cancel_order",
    "cancel_subscription",
    "create_product",
    "delete_orders_hard",
    "delete_product",
    "delete_products_hard",
    "delete_subscriptions_hard",
    "emit_delayed_orders",
    "events",
    "fulfil_order",
    "get_order",
    "get_order_state",
    "get_order_stats",
    "get_product",
    "get_subscription",
    "iter_order_export_rows",
    "iter_orders_for_export",
    "list_orders",
    "list_products",
    "list_subscriptions",
    "mark_delivered",
    "order_export_row",
    "order_stats_for",
    "order_to_json",
    "place_order",
    "prepare_order",
    "prepare_product",
    "prepare_subscription",
    "refresh_order_stats",
    "refund_lines",
    "register",
    "renew_due_subscriptions",
    "scheduled_jobs",
    "start_subscription",
    "subscription_to_json",
    "update_product",
    "upsert_orders_bulk",
    "upsert_products_bulk",
    "upsert_subscriptions_bulk",
]
