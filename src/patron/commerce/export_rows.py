"""Order export rows (one row per order) for the CSV/Excel exports of the web API and the CLI.

Amounts are decimals in the order's currency (``currency`` column); ``reporting_net`` is the total
less refunds in the business's reporting currency (``reporting_currency`` column).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from patron.commerce.contracts import OrderRecord
from patron.commerce.queries import iter_orders_for_export

ORDER_EXPORT_COLUMNS: tuple[str, ...] = (
    "id",
    "external_id",
    "customer_id",
    "market_code",
    "channel",
    "status",
    "currency",
    "subtotal",
    "discount",
    "tax",
    "shipping",
    "total",
    "refunded",
    "reporting_net",
    "reporting_currency",
    "line_count",
    "item_count",
    "placed_at",
    "promised_delivery_date",
    "fulfilment_status",
    "fulfilled_at",
    "delivered_at",
    "cancelled_at",
    "source",
    "created_at",
)


def order_export_row(order: OrderRecord) -> list[Any]:
    return [
        order.id,
        order.external_id,
        order.customer_id,
        order.market_code,
        order.channel,
        order.status,
        order.currency,
        order.subtotal.amount,
        order.discount.amount,
        order.tax.amount,
        order.shipping.amount,
        order.total.amount,
        order.refunded.amount,
        order.reporting_net.amount,
        order.reporting_net.currency,
        len(order.lines),
        sum(line.quantity for line in order.lines),
        order.placed_at,
        order.promised_delivery_date,
        order.fulfilment_status,
        order.fulfilled_at,
        order.delivered_at,
        order.cancelled_at,
        order.source,
        order.created_at,
    ]


def iter_order_export_rows(session: Session, *, batch_size: int = 1000) -> Iterator[list[Any]]:
    """Every order, oldest first, read in keyset batches."""
    for order in iter_orders_for_export(session, batch_size=batch_size):
        yield order_export_row(order)
