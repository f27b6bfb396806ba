"""Commerce domain events (written to the outbox in the same transaction as the change).

Payloads carry ids, amounts as decimal strings with their currency, and ISO 8601 timestamps:

- ``order.placed``: order_id, external_id, customer_id, market, channel, source, placed_at, total
  ({amount, currency}), reporting_total ({amount, currency}), lines [{line_id, sku, quantity, total}]
- ``order.fulfilled``: order_id, customer_id, fulfilled_at
- ``order.delivered``: order_id, customer_id, delivered_at
- ``order.refunded``: order_id, customer_id, kind, reason, status, amount ({amount, currency}),
  lines [{refund_id, line_id, sku, quantity, amount}]
- ``order.cancelled``: order_id, customer_id, cancelled_at
- ``order.delayed``: order_id, external_id, customer_id, market, promised_delivery_date, days_late
- ``subscription.started``: subscription_id, customer_id, plan, price, interval, started_at, renews_at
- ``subscription.cancelled``: subscription_id, customer_id, plan, cancelled_at
- ``subscription.renewed``: subscription_id, customer_id, plan, price, interval, period_start (the
  renewal time that passed), renews_at (the next one)
"""

from __future__ import annotations

ORDER_PLACED = "order.placed"
ORDER_FULFILLED = "order.fulfilled"
ORDER_DELIVERED = "order.delivered"
ORDER_REFUNDED = "order.refunded"
ORDER_CANCELLED = "order.cancelled"
ORDER_DELAYED = "order.delayed"
SUBSCRIPTION_STARTED = "subscription.started"
SUBSCRIPTION_CANCELLED = "subscription.cancelled"
SUBSCRIPTION_RENEWED = "subscription.renewed"

ALL_EVENTS: tuple[str, ...] = (
    ORDER_PLACED,
    ORDER_FULFILLED,
    ORDER_DELIVERED,
    ORDER_REFUNDED,
    ORDER_CANCELLED,
    ORDER_DELAYED,
    SUBSCRIPTION_STARTED,
    SUBSCRIPTION_CANCELLED,
    SUBSCRIPTION_RENEWED,
)
