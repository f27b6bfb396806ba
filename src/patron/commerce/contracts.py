"""Commerce contracts: validated inputs and read records that cross the domain boundary.

Inputs are built (and validated) by ``prepare_order`` / ``prepare_product`` / ``prepare_subscription``
in :mod:`patron.commerce.rules`; amounts in them are already quantized to their currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from patron.core.money import Money

ORDER_STATUSES: tuple[str, ...] = ("placed", "cancelled", "refunded", "partially_refunded")
#: statuses an order may be given on input; the refund states follow from refunds
INPUT_ORDER_STATUSES: tuple[str, ...] = ("placed", "cancelled")
FULFILMENT_STATUSES: tuple[str, ...] = ("unfulfilled", "fulfilled", "delivered")
CHANNELS: tuple[str, ...] = ("web", "store", "app", "phone", "marketplace")
SOURCES: tuple[str, ...] = ("api", "import", "demo")
REFUND_KINDS: tuple[str, ...] = ("refund", "return")
INTERVALS: tuple[str, ...] = ("month", "year")
SUBSCRIPTION_STATUSES: tuple[str, ...] = ("active", "cancelled", "expired")

#: names of the order-stat traits published on the customer
TRAIT_ORDER_COUNT = "order_count"
TRAIT_TOTAL_SPENT = "total_spent"
TRAIT_FIRST_ORDER_AT = "first_order_at"
TRAIT_LAST_ORDER_AT = "last_order_at"


@dataclass(frozen=True, slots=True)
class ProductInput:
    sku: str
    name: str
    price: Money
    category: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class OrderLineInput:
    quantity: int
    unit_price: Decimal
    total: Decimal
    discount: Decimal = Decimal(0)
    sku: str | None = None
    name: str = ""
    category: str | None = None
    product_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderInput:
    """One order. ``customer_id`` or ``customer_external_id`` names the customer."""

    currency: str
    subtotal: Decimal
    total: Decimal
    lines: tuple[OrderLineInput, ...] = ()
    discount: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    shipping: Decimal = Decimal(0)
    customer_id: str | None = None
    customer_external_id: str | None = None
    external_id: str | None = None
    market_code: str | None = None
    channel: str = "web"
    status: str = "placed"
    placed_at: datetime | None = None
    promised_delivery_date: date | None = None
    fulfilment_status: str = "unfulfilled"
    fulfilled_at: datetime | None = None
    delivered_at: datetime | None = None
    source: str = "api"


@dataclass(frozen=True, slots=True)
class RefundLineInput:
    """Refund ``quantity`` units of one line; ``amount`` defaults to their share of the line total."""

    line_id: str
    quantity: int
    amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionInput:
    plan: str
    price: Money
    started_at: datetime | None = None
    interval: str = "month"
    renews_at: datetime | None = None
    cancelled_at: datetime | None = None
    status: str = "active"
    customer_id: str | None = None
    customer_external_id: str | None = None
    external_id: str | None = None
    source: str = "api"


@dataclass(frozen=True, slots=True)
class OrderState:
    """What an event handler checks of an order before acting on its event's payload: the status,
    the current customer column, the fulfilment time and the content hash (a payload that carries
    another hash describes an older version of the order)."""

    id: str
    customer_id: str
    status: str
    fulfilled_at: datetime | None
    content_hash: str | None


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """The outcome for one input row of a bulk upsert (``index`` is its position in the input)."""

    index: int
    key: str | None
    id: str | None
    action: str  # created | updated | unchanged | rejected
    errors: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ProductRecord:
    id: str
    sku: str
    name: str
    category: str | None
    price: Money
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RefundRecord:
    id: str
    order_line_id: str
    quantity: int
    amount: Money
    reason: str
    kind: str
    refunded_at: datetime


@dataclass(frozen=True, slots=True)
class OrderLineRecord:
    id: str
    position: int
    product_id: str | None
    sku: str | None
    name: str
    category: str | None
    quantity: int
    unit_price: Money
    discount: Money
    total: Money
    refunded_quantity: int
    refunded: Money


@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: str
    external_id: str | None
    customer_id: str
    market_code: str | None
    channel: str
    currency: str
    subtotal: Money
    discount: Money
    tax: Money
    shipping: Money
    total: Money
    refunded: Money
    reporting_net: Money
    status: str
    placed_at: datetime
    promised_delivery_date: date | None
    fulfilment_status: str
    fulfilled_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    delayed_notified_at: datetime | None
    source: str
    version: int
    created_at: datetime
    updated_at: datetime
    lines: tuple[OrderLineRecord, ...] = ()
    refunds: tuple[RefundRecord, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    id: str
    external_id: str | None
    customer_id: str
    plan: str
    price: Money
    interval: str
    status: str
    started_at: datetime
    renews_at: datetime | None
    cancelled_at: datetime | None
    source: str
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderStats:
    """The order-stat traits of one customer (``total_spent`` in the reporting currency)."""

    order_count: int
    total_spent: Money
    first_order_at: datetime | None
    last_order_at: datetime | None
