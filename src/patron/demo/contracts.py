"""The demo plan: plain records the generator produces (pure, deterministic for a seed) before
anything touches the database, and the summary of a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class DemoOptions:
    customers: int = 2000
    years: int = 2
    seed: int = 42
    award_points: bool = False
    # set up the demo loyalty programme and replay members' ledgers from the order history
    loyalty: bool = True
    # how many customers joined the (opt-in) demo loyalty programme
    loyalty_members: int = 30


@dataclass(frozen=True)
class PlannedMarket:
    code: str
    name: str
    country: str
    currency: str
    locale: str
    time_zone: str


@dataclass(frozen=True)
class PlannedFxRate:
    base: str
    quote: str
    valid_on: date
    rate: Decimal


@dataclass(frozen=True)
class PlannedProduct:
    sku: str
    name: str
    category: str
    price: Decimal
    currency: str


@dataclass(frozen=True)
class PlannedOrganisation:
    external_id: str
    name: str
    industry: str
    size: str
    country: str


@dataclass
class PlannedCustomer:
    external_id: str
    market: str
    given_name: str
    family_name: str
    form_of_address: str | None
    email: str | None
    phone: str | None
    language: str
    preferred_channel: str | None
    time_zone: str
    country: str
    birthday: date | None
    signed_up_at: datetime
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    referral_code: str | None = None
    organisation_external_id: str | None = None
    organisation_role: str | None = None
    # set on the second record of a likely duplicate pair (same person registered twice)
    duplicate_of: str | None = None
    # set on family members who share the household phone
    household_of: str | None = None


@dataclass(frozen=True)
class PlannedLine:
    sku: str
    name: str
    category: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class PlannedRefund:
    line_index: int
    quantity: int
    reason: str
    kind: str
    refunded_at: datetime


@dataclass(frozen=True)
class PlannedOrder:
    external_id: str
    customer_external_id: str
    market: str
    currency: str
    channel: str
    placed_at: datetime
    lines: tuple[PlannedLine, ...]
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    shipping: Decimal
    total: Decimal
    status: str
    promised_delivery_date: date | None
    fulfilment_status: str
    fulfilled_at: datetime | None
    delivered_at: datetime | None
    refunds: tuple[PlannedRefund, ...] = ()

    @property
    def late(self) -> bool:
        """Delivered after the promised date, or still undelivered past it (as of ``delivered_at``)."""
        if self.promised_delivery_date is None or self.delivered_at is None:
            return False
        return self.delivered_at.date() > self.promised_delivery_date


@dataclass(frozen=True)
class PlannedSubscription:
    external_id: str
    customer_external_id: str
    plan: str
    interval: str
    price: Decimal
    currency: str
    started_at: datetime
    renews_at: datetime | None
    cancelled_at: datetime | None
    status: str


@dataclass(frozen=True)
class PlannedConsent:
    customer_external_id: str
    purpose: str
    channel: str
    status: str
    source: str
    proof: str
    recorded_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class PlannedInteraction:
    customer_external_id: str
    channel: str
    direction: str
    kind: str
    summary: str
    occurred_at: datetime
    actor: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedSegment:
    name: str
    description: str
    rules: dict[str, Any]


@dataclass
class DemoPlan:
    start: date
    end: date
    business_name: str
    reporting_currency: str
    time_zone: str
    markets: list[PlannedMarket]
    fx_rates: list[PlannedFxRate]
    products: list[PlannedProduct]
    organisations: list[PlannedOrganisation]
    customers: list[PlannedCustomer]
    orders: list[PlannedOrder]
    subscriptions: list[PlannedSubscription]
    consents: list[PlannedConsent]
    interactions: list[PlannedInteraction]
    segments: list[PlannedSegment]


@dataclass(frozen=True)
class DemoSummary:
    customers: int
    customers_by_country: dict[str, int]
    organisations: int
    products: int
    orders: int
    orders_by_currency: dict[str, int]
    refunds: int
    subscriptions: int
    consents: int
    interactions: int
    segments: int
    fx_rates: int
    seconds: float
    # the loyalty replay: members, reward and points redemptions, coupon uses, referrals, drift
    loyalty: dict[str, int | float] = field(default_factory=dict)
