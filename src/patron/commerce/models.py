"""Commerce tables: products, orders with lines, refunds per line, subscriptions.

Money columns are ``<name>_amount`` (``Numeric``) next to a ``currency`` column; amounts are stored
already quantized to the currency's minor unit (``patron.core.money.quantize``).

Orders carry their value in the business reporting currency (``reporting_currency``,
``reporting_fx_rate`` at the order date and ``reporting_net_amount`` = (total − refunded) × rate) so
the order-stat traits are SQL aggregates, kept current in the same transaction as each change.

Orders hold no personal data of their own (no names, addresses, emails): they reference the
customer by id, so erasing a customer anonymises the customer row and the orders stay as financial
records.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from patron.core.db import Base, created_at_column, id_column, updated_at_column

AMOUNT = Numeric(20, 4)
RATE = Numeric(24, 10)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (Index("ix_products_created", "created_at", "id"),)

    id: Mapped[str] = id_column()
    sku: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(200), default=None, index=True)
    price_amount: Mapped[Decimal] = mapped_column(AMOUNT)
    currency: Mapped[str] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(20), default="api")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_customer_placed", "customer_id", "placed_at", "id"),
        Index("ix_orders_placed", "placed_at", "id"),
        Index("ix_orders_delay_check", "live", "delayed_notified_at", "promised_delivery_date"),
        CheckConstraint("status IN ('placed','cancelled','refunded','partially_refunded')", name="status"),
        CheckConstraint("fulfilment_status IN ('unfulfilled','fulfilled','delivered')", name="fulfilment"),
        CheckConstraint("channel IN ('web','store','app','phone','marketplace')", name="channel"),
        CheckConstraint("source IN ('api','import','demo')", name="source"),
    )

    id: Mapped[str] = id_column()
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    customer_id: Mapped[str] = mapped_column(String(36), ForeignKey("customers.id"))
    market_code: Mapped[str | None] = mapped_column(String(20), default=None)
    channel: Mapped[str] = mapped_column(String(20), default="web")
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_amount: Mapped[Decimal] = mapped_column(AMOUNT)
    discount_amount: Mapped[Decimal] = mapped_column(AMOUNT, default=Decimal(0))
    tax_amount: Mapped[Decimal] = mapped_column(AMOUNT, default=Decimal(0))
    shipping_amount: Mapped[Decimal] = mapped_column(AMOUNT, default=Decimal(0))
    total_amount: Mapped[Decimal] = mapped_column(AMOUNT)
    refunded_amount: Mapped[Decimal] = mapped_column(AMOUNT, default=Decimal(0))
    reporting_currency: Mapped[str] = mapped_column(String(3))
    reporting_fx_rate: Mapped[Decimal] = mapped_column(RATE)
    reporting_net_amount: Mapped[Decimal] = mapped_column(AMOUNT)
    status: Mapped[str] = mapped_column(String(20), default="placed")
    placed_at: Mapped[datetime] = mapped_column()
    promised_delivery_date: Mapped[date | None] = mapped_column(Date, default=None)
    fulfilment_status: Mapped[str] = mapped_column(String(20), default="unfulfilled")
    fulfilled_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    delayed_notified_at: Mapped[datetime | None] = mapped_column(default=None)
    # live orders take part in notices (order.delayed); backfilled history does not
    live: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(20), default="api")
    content_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.position", lazy="selectin"
    )

    __mapper_args__ = {"version_id_col": version}


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        Index("ix_order_lines_order", "order_id", "position"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[str] = id_column()
    order_id: Mapped[str] = mapped_column(String(36), ForeignKey("orders.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    product_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("products.id", ondelete="SET NULL"), default=None, index=True
    )
    sku: Mapped[str | None] = mapped_column(String(100), default=None, index=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    category: Mapped[str | None] = mapped_column(String(200), default=None)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_amount: Mapped[Decimal] = mapped_column(AMOUNT)
    discount_amount: Mapped[Decimal] = mapped_column(AMOUNT, default=Decimal(0))
    total_amount: Mapped[Decimal] = mapped_column(AMOUNT)
    refunded_quantity: Mapped[int] = mapped_column(Integer, default=0)
    refunded_amount: Mapped[Decimal] = mapped_column(AMOUNT, default=Decimal(0))

    order: Mapped[Order] = relationship(back_populates="lines")


class Refund(Base):
    """One refunded (or returned) quantity of one order line."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("kind IN ('refund','return')", name="kind"),
        CheckConstraint("quantity >= 0", name="quantity_non_negative"),
    )

    id: Mapped[str] = id_column()
    order_id: Mapped[str] = mapped_column(String(36), ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    order_line_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("order_lines.id", ondelete="CASCADE"), index=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(AMOUNT)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(10), default="refund")
    refunded_at: Mapped[datetime] = created_at_column()
    created_at: Mapped[datetime] = created_at_column()


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        Index("ix_subscriptions_customer", "customer_id", "started_at", "id"),
        Index("ix_subscriptions_created", "created_at", "id"),
        CheckConstraint("status IN ('active','cancelled','expired')", name="status"),
        CheckConstraint("\"interval\" IN ('month','year')", name="interval"),
    )

    id: Mapped[str] = id_column()
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    customer_id: Mapped[str] = mapped_column(String(36), ForeignKey("customers.id"))
    plan: Mapped[str] = mapped_column(String(200))
    price_amount: Mapped[Decimal] = mapped_column(AMOUNT)
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[str] = mapped_column(String(10), default="month")
    status: Mapped[str] = mapped_column(String(20), default="active")
    started_at: Mapped[datetime] = mapped_column()
    renews_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    source: Mapped[str] = mapped_column(String(20), default="api")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}


def order_snapshot(order: Order) -> dict[str, Any]:
    """The audited fields of an order."""
    return {
        "status": order.status,
        "fulfilment_status": order.fulfilment_status,
        "total_amount": order.total_amount,
        "refunded_amount": order.refunded_amount,
        "currency": order.currency,
        "customer_id": order.customer_id,
        "fulfilled_at": order.fulfilled_at,
        "delivered_at": order.delivered_at,
        "cancelled_at": order.cancelled_at,
    }
