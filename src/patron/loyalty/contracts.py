"""Loyalty contracts: frozen views that cross the domain boundary (ORM rows never do)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

ENTRY_KINDS = (
    "earn",
    "vest",
    "redeem",
    "expire",
    "adjust",
    "reverse",
    "hold",
    "capture",
    "release",
    "transfer",
    "opening",
    "forfeit",
    "settle",
)
ENTRY_SOURCES = ("order", "event", "staff", "import", "system", "redemption")
REDEMPTION_STATUSES = ("held", "captured", "released", "cancelled")
REWARD_KINDS = (
    "discount_fixed",
    "discount_percent",
    "free_product",
    "free_shipping",
    "gift",
    "event",
    "content",
    "custom",
)

TRAIT_SOURCE = "loyalty"


@dataclass(frozen=True)
class ProgrammeView:
    name: str
    enrolment: str
    pending_days: int
    expiry_policy: str
    expiry_months: int
    tier_basis: str
    tier_window: str
    tier_window_months: int
    tier_grace_days: int
    referral_referrer_points: int
    referral_referred_points: int
    referral_trigger: str
    referral_cap: int | None
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class MarketSettingsView:
    market_code: str
    currency: str
    earn_spend_amount: Decimal
    earn_points: int
    earn_base: str
    point_value_amount: Decimal
    cap_per_order: int | None
    cap_per_day: int | None
    version: int


@dataclass(frozen=True)
class AccountView:
    """A customer's balances. ``enrolled`` is False for an opt-in programme's non-member (all zeros);
    an automatic programme's customer reads as enrolled with zeros before the first movement."""

    customer_id: str
    account_id: str | None
    enrolled: bool
    status: str
    available: int
    pending: int
    debt: int
    held: int
    lifetime_earned: int
    lifetime_redeemed: int
    lifetime_expired: int
    tier_code: str | None
    card_number: str | None
    enrolled_at: datetime | None


@dataclass(frozen=True)
class EntryView:
    id: str
    account_id: str
    kind: str
    points: int
    pending: int
    debt: int
    held: int
    reason: str
    source: str
    source_id: str | None
    actor: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False


@dataclass(frozen=True)
class RedemptionView:
    id: str
    account_id: str
    customer_id: str
    kind: str
    points: int
    status: str
    market_code: str | None
    value_amount: Decimal | None
    currency: str | None
    created_at: datetime
    updated_at: datetime
    replayed: bool = False
    reward_id: str | None = None
    code: str | None = None
    fulfilment_status: str | None = None
    fulfilled_at: datetime | None = None


@dataclass(frozen=True)
class Drift:
    """One account whose cached balance disagrees with its ledger (or its lots)."""

    account_id: str
    customer_id: str
    field: str
    balance: int
    ledger: int


@dataclass(frozen=True)
class Reconciliation:
    accounts: int
    drift: tuple[Drift, ...]

    @property
    def ok(self) -> bool:
        return not self.drift


@dataclass(frozen=True)
class RuleView:
    id: str
    name: str
    kind: str
    active: bool
    multiplier: Decimal
    points: int
    event_type: str | None
    conditions: dict[str, Any]
    limit_per_customer: int | None
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class EarningView:
    """What an order or event earned (or would earn: ``simulate``), and why."""

    points: int
    status: str
    lines: dict[str, int]
    explanation: list[dict[str, Any]]
    entry_id: str | None = None
    replayed: bool = False
