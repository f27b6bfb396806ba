"""Loyalty tables: the programme and its per-market settings, one account per enrolled customer, the
append-only ledger with its lots, redemptions (pay with points), order earnings per line, earning
rules and reported events.

Invariants (checked by :func:`patron.loyalty.service.reconcile`):

- ``available`` = Σ ``loyalty_entries.points``; ``pending`` = Σ ``pending``; ``debt`` = Σ ``debt``;
  ``held`` = Σ ``held`` over the account's entries (the ledger is append-only);
- ``available`` = Σ ``loyalty_lots.remaining`` over the account's lots;
- every balance column is ≥ 0 (CHECK constraints back the conditional UPDATEs).
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
from sqlalchemy.orm import Mapped, mapped_column

from patron.core.db import Base, created_at_column, id_column, updated_at_column

AMOUNT = Numeric(20, 4)
POINT_VALUE = Numeric(20, 8)
FACTOR = Numeric(12, 4)

PROGRAMME_ID = 1


class LoyaltyProgramme(Base):
    """The one programme of the business (points are currency-agnostic)."""

    __tablename__ = "loyalty_programme"
    __table_args__ = (
        CheckConstraint("enrolment IN ('automatic','opt_in')", name="enrolment"),
        CheckConstraint("expiry_policy IN ('never','rolling','end_of_year')", name="expiry_policy"),
        CheckConstraint("pending_days >= 0", name="pending_days"),
        CheckConstraint("expiry_months >= 0", name="expiry_months"),
        CheckConstraint("tier_basis IN ('points','spend')", name="tier_basis"),
        CheckConstraint("tier_window IN ('rolling','calendar_year')", name="tier_window"),
        CheckConstraint("referral_trigger IN ('signup','first_purchase')", name="referral_trigger"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=PROGRAMME_ID)
    name: Mapped[str] = mapped_column(String(200), default="Rewards")
    enrolment: Mapped[str] = mapped_column(String(20), default="automatic")
    pending_days: Mapped[int] = mapped_column(Integer, default=14)
    expiry_policy: Mapped[str] = mapped_column(String(20), default="rolling")
    expiry_months: Mapped[int] = mapped_column(Integer, default=12)
    #: tiers qualify on points earned or on spend (reporting currency) within the window
    tier_basis: Mapped[str] = mapped_column(String(10), default="points")
    tier_window: Mapped[str] = mapped_column(String(20), default="rolling")
    tier_window_months: Mapped[int] = mapped_column(Integer, default=12)
    tier_grace_days: Mapped[int] = mapped_column(Integer, default=30)
    #: referrals: points to the referrer and to the referred customer, paid on sign-up or first purchase
    referral_referrer_points: Mapped[int] = mapped_column(Integer, default=0)
    referral_referred_points: Mapped[int] = mapped_column(Integer, default=0)
    referral_trigger: Mapped[str] = mapped_column(String(20), default="first_purchase")
    #: how many referrals one customer may be rewarded for (null: no cap)
    referral_cap: Mapped[int | None] = mapped_column(Integer, default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}


class LoyaltyTier(Base):
    """A tier: a stable ``code``, translated ``names`` ({language: name}), a ``rank`` (higher is
    better), the ``threshold`` (points, or spend in the reporting currency) and its benefits."""

    __tablename__ = "loyalty_tiers"
    __table_args__ = (
        CheckConstraint("threshold >= 0", name="threshold"),
        CheckConstraint("multiplier >= 0", name="multiplier"),
    )

    id: Mapped[str] = id_column()
    code: Mapped[str] = mapped_column(String(50), unique=True)
    rank: Mapped[int] = mapped_column(Integer, unique=True)
    names: Mapped[dict[str, Any]] = mapped_column(default=dict)
    threshold: Mapped[Decimal] = mapped_column(AMOUNT)
    multiplier: Mapped[Decimal] = mapped_column(FACTOR, default=Decimal(1))
    perks: Mapped[list[Any]] = mapped_column(default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}


class LoyaltyMarket(Base):
    """Per-market earning and valuation settings: ``earn_points`` per ``earn_spend_amount`` of the
    market's currency; one point is worth ``point_value_amount`` of that currency."""

    __tablename__ = "loyalty_markets"
    __table_args__ = (
        CheckConstraint("earn_base IN ('net','total')", name="earn_base"),
        CheckConstraint("earn_spend_amount > 0", name="earn_spend_positive"),
        CheckConstraint("earn_points >= 0", name="earn_points"),
        CheckConstraint("point_value_amount >= 0", name="point_value"),
    )

    id: Mapped[str] = id_column()
    market_code: Mapped[str] = mapped_column(String(20), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    earn_spend_amount: Mapped[Decimal] = mapped_column(AMOUNT)
    earn_points: Mapped[int] = mapped_column(Integer, default=1)
    earn_base: Mapped[str] = mapped_column(String(10), default="net")
    point_value_amount: Mapped[Decimal] = mapped_column(POINT_VALUE)
    cap_per_order: Mapped[int | None] = mapped_column(Integer, default=None)
    cap_per_day: Mapped[int | None] = mapped_column(Integer, default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}


class LoyaltyAccount(Base):
    """One per enrolled customer. Balances change only through one conditional UPDATE per ledger
    entry (see ``service._apply``), never read-modify-write."""

    __tablename__ = "loyalty_accounts"
    __table_args__ = (
        CheckConstraint("available >= 0", name="available_non_negative"),
        CheckConstraint("pending >= 0", name="pending_non_negative"),
        CheckConstraint("debt >= 0", name="debt_non_negative"),
        CheckConstraint("held >= 0", name="held_non_negative"),
        CheckConstraint("status IN ('active','merged','erased')", name="status"),
    )

    id: Mapped[str] = id_column()
    customer_id: Mapped[str] = mapped_column(String(36), ForeignKey("customers.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    available: Mapped[int] = mapped_column(Integer, default=0)
    pending: Mapped[int] = mapped_column(Integer, default=0)
    debt: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0)
    lifetime_earned: Mapped[int] = mapped_column(Integer, default=0)
    lifetime_redeemed: Mapped[int] = mapped_column(Integer, default=0)
    lifetime_expired: Mapped[int] = mapped_column(Integer, default=0)
    tier_code: Mapped[str | None] = mapped_column(String(50), default=None)
    tier_since: Mapped[datetime | None] = mapped_column(default=None)
    tier_review_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    tier_grace_until: Mapped[datetime | None] = mapped_column(default=None)
    card_number: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    merged_into_id: Mapped[str | None] = mapped_column(String(36), default=None)
    enrolled_at: Mapped[datetime] = created_at_column()
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class LoyaltyEntry(Base):
    """One ledger movement (append-only). ``points``, ``pending``, ``debt`` and ``held`` are the
    signed changes of the account's balances."""

    __tablename__ = "loyalty_entries"
    __table_args__ = (
        Index("ix_loyalty_entries_account", "account_id", "occurred_at", "id"),
        Index("ix_loyalty_entries_source", "source", "source_id"),
        CheckConstraint(
            "kind IN ('earn','vest','redeem','expire','adjust','reverse','hold','capture','release',"
            "'transfer','opening','forfeit','settle')",
            name="kind",
        ),
        CheckConstraint("source IN ('order','event','staff','import','system','redemption')", name="source"),
    )

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("loyalty_accounts.id"))
    kind: Mapped[str] = mapped_column(String(20))
    points: Mapped[int] = mapped_column(Integer, default=0)
    pending: Mapped[int] = mapped_column(Integer, default=0)
    debt: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[str | None] = mapped_column(String(100), default=None)
    actor: Mapped[str] = mapped_column(String(100), default="system")
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = created_at_column()
    created_at: Mapped[datetime] = created_at_column()


class LoyaltyLot(Base):
    """Points that became available together (one credit), consumed first-in-first-out."""

    __tablename__ = "loyalty_lots"
    __table_args__ = (
        Index("ix_loyalty_lots_account", "account_id", "earned_at", "id"),
        Index("ix_loyalty_lots_expiry", "expires_at"),
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining"),
    )

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("loyalty_accounts.id"))
    entry_id: Mapped[str] = mapped_column(String(36), ForeignKey("loyalty_entries.id"))
    points: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    earned_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    #: when a ``points.expiring`` notice covered this lot
    notified_at: Mapped[datetime | None] = mapped_column(default=None)


class LoyaltyLotUse(Base):
    """Which lots a debit consumed (so a released hold or a cancelled redemption restores them)."""

    __tablename__ = "loyalty_lot_uses"

    id: Mapped[str] = id_column()
    lot_id: Mapped[str] = mapped_column(String(36), ForeignKey("loyalty_lots.id"), index=True)
    entry_id: Mapped[str] = mapped_column(String(36), ForeignKey("loyalty_entries.id"), index=True)
    points: Mapped[int] = mapped_column(Integer)


class LoyaltyReward(Base):
    """A catalogue reward: what it is (``kind``), what it costs in points, stock, per-customer limit,
    availability by tier and market, translated names and descriptions."""

    __tablename__ = "loyalty_rewards"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('discount_fixed','discount_percent','free_product','free_shipping','gift','event',"
            "'content','custom')",
            name="kind",
        ),
        CheckConstraint("cost_points > 0", name="cost_positive"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_non_negative"),
    )

    id: Mapped[str] = id_column()
    kind: Mapped[str] = mapped_column(String(30))
    names: Mapped[dict[str, Any]] = mapped_column(default=dict)
    descriptions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cost_points: Mapped[int] = mapped_column(Integer)
    value_amount: Mapped[Decimal | None] = mapped_column(AMOUNT, default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    percent: Mapped[Decimal | None] = mapped_column(FACTOR, default=None)
    product_sku: Mapped[str | None] = mapped_column(String(100), default=None)
    stock: Mapped[int | None] = mapped_column(Integer, default=None)
    limit_per_customer: Mapped[int | None] = mapped_column(Integer, default=None)
    tiers: Mapped[list[Any]] = mapped_column(default=list)
    markets: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}


class LoyaltyRedemption(Base):
    """Points spent: paying with points (``kind='points'``: held, then captured or released) or a
    catalogue reward (``kind='reward'``: captured with a unique code, fulfilled, or cancelled with
    the points returned)."""

    __tablename__ = "loyalty_redemptions"
    __table_args__ = (
        Index("ix_loyalty_redemptions_account", "account_id", "created_at", "id"),
        CheckConstraint("status IN ('held','captured','released','cancelled')", name="status"),
        CheckConstraint("points > 0", name="points_positive"),
    )

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("loyalty_accounts.id"))
    kind: Mapped[str] = mapped_column(String(20), default="points")
    points: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    market_code: Mapped[str | None] = mapped_column(String(20), default=None)
    value_amount: Mapped[Decimal | None] = mapped_column(AMOUNT, default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    debit_entry_id: Mapped[str] = mapped_column(String(36), ForeignKey("loyalty_entries.id"))
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    reward_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("loyalty_rewards.id"), default=None, index=True
    )
    code: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    fulfilment_status: Mapped[str | None] = mapped_column(String(20), default=None)
    fulfilled_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class LoyaltyOrderEarning(Base):
    """What one order earns: pending on ``order.placed``, vested after fulfilment + pending period,
    reversed line by line on refunds."""

    __tablename__ = "loyalty_order_earnings"
    __table_args__ = (
        Index("ix_loyalty_order_earnings_due", "status", "vests_at"),
        Index("ix_loyalty_order_earnings_day", "account_id", "earn_day"),
        CheckConstraint("status IN ('pending','vested','reversed')", name="status"),
    )

    order_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("loyalty_accounts.id"))
    market_code: Mapped[str | None] = mapped_column(String(20), default=None)
    currency: Mapped[str] = mapped_column(String(3))
    earn_day: Mapped[date] = mapped_column(Date)
    points: Mapped[int] = mapped_column(Integer)
    reversed_points: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    placed_at: Mapped[datetime] = mapped_column()
    vests_at: Mapped[datetime | None] = mapped_column(default=None)
    vested_at: Mapped[datetime | None] = mapped_column(default=None)
    explanation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = created_at_column()


class LoyaltyOrderLine(Base):
    """The points one order line earned and how many were reversed by refunds/returns."""

    __tablename__ = "loyalty_order_lines"
    __table_args__ = (CheckConstraint("reversed_quantity <= quantity", name="reversed_quantity"),)

    order_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("loyalty_order_earnings.order_id"), primary_key=True
    )
    line_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    reversed_quantity: Mapped[int] = mapped_column(Integer, default=0)
    reversed_points: Mapped[int] = mapped_column(Integer, default=0)


class LoyaltyRule(Base):
    """An earning rule as data: a multiplier on order lines or a fixed bonus per event type,
    with conditions (see ``rules.RuleSpec``)."""

    __tablename__ = "loyalty_rules"
    __table_args__ = (
        CheckConstraint("kind IN ('multiplier','bonus')", name="kind"),
        CheckConstraint("multiplier >= 0", name="multiplier"),
    )

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    multiplier: Mapped[Decimal] = mapped_column(FACTOR, default=Decimal(1))
    points: Mapped[int] = mapped_column(Integer, default=0)
    event_type: Mapped[str | None] = mapped_column(String(100), default=None)
    conditions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    limit_per_customer: Mapped[int | None] = mapped_column(Integer, default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}


class LoyaltyRuleUse(Base):
    """How often a rule paid a customer's account (per-customer limits)."""

    __tablename__ = "loyalty_rule_uses"

    rule_id: Mapped[str] = mapped_column(String(36), ForeignKey("loyalty_rules.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("loyalty_accounts.id"), primary_key=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)


class LoyaltyEvent(Base):
    """A reported custom event (sign-up, birthday, review …): paid at most once per idempotency key."""

    __tablename__ = "loyalty_events"
    __table_args__ = (Index("ix_loyalty_events_account", "account_id", "occurred_at"),)

    id: Mapped[str] = id_column()
    account_id: Mapped[str] = mapped_column(String(36), ForeignKey("loyalty_accounts.id"))
    type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column()
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    points: Mapped[int] = mapped_column(Integer, default=0)
    explanation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = created_at_column()


class LoyaltyPromotion(Base):
    """A coupon campaign: the discount, who and where it applies, limits and stacking; its codes are
    :class:`LoyaltyCoupon` rows."""

    __tablename__ = "loyalty_promotions"
    __table_args__ = (
        CheckConstraint("discount_kind IN ('fixed','percent','free_shipping')", name="discount_kind"),
        CheckConstraint("usage IN ('single_use','multi_use')", name="usage"),
    )

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    discount_kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal | None] = mapped_column(AMOUNT, default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    percent: Mapped[Decimal | None] = mapped_column(FACTOR, default=None)
    #: {currency: "minimum order total"}; an order in a currency not listed has no minimum
    min_spend: Mapped[dict[str, Any]] = mapped_column(default=dict)
    markets: Mapped[list[Any]] = mapped_column(default=list)
    usage: Mapped[str] = mapped_column(String(20), default="single_use")
    max_redemptions: Mapped[int | None] = mapped_column(Integer, default=None)
    limit_per_customer: Mapped[int | None] = mapped_column(Integer, default=None)
    stackable: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}


class LoyaltyCoupon(Base):
    """One code of a promotion; ``redemptions`` changes only by a conditional UPDATE."""

    __tablename__ = "loyalty_coupons"
    __table_args__ = (
        Index("ix_loyalty_coupons_promotion", "promotion_id", "created_at", "id"),
        CheckConstraint("redemptions >= 0", name="redemptions"),
    )

    id: Mapped[str] = id_column()
    promotion_id: Mapped[str] = mapped_column(String(36), ForeignKey("loyalty_promotions.id"))
    code: Mapped[str] = mapped_column(String(40), unique=True)
    customer_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("customers.id"), default=None)
    redemptions: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = created_at_column()


class LoyaltyCouponUse(Base):
    """How often a customer redeemed a promotion's codes (per-customer limits, conditional UPDATE)."""

    __tablename__ = "loyalty_coupon_uses"

    promotion_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("loyalty_promotions.id"), primary_key=True
    )
    customer_id: Mapped[str] = mapped_column(String(36), ForeignKey("customers.id"), primary_key=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)


class LoyaltyCouponRedemption(Base):
    __tablename__ = "loyalty_coupon_redemptions"
    __table_args__ = (Index("ix_loyalty_coupon_redemptions_coupon", "coupon_id", "created_at"),)

    id: Mapped[str] = id_column()
    coupon_id: Mapped[str] = mapped_column(String(36), ForeignKey("loyalty_coupons.id"))
    customer_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("customers.id"), default=None)
    order_total: Mapped[Decimal] = mapped_column(AMOUNT)
    currency: Mapped[str] = mapped_column(String(3))
    discount: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    created_at: Mapped[datetime] = created_at_column()


class LoyaltyReferralCode(Base):
    """A customer's own referral code (for the link ``/r/{code}``)."""

    __tablename__ = "loyalty_referral_codes"

    customer_id: Mapped[str] = mapped_column(String(36), ForeignKey("customers.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = created_at_column()


class LoyaltyReferral(Base):
    """One referred customer (at most one referral each): pending until the trigger, then converted;
    or rejected (self-referral, cap reached) with the reason."""

    __tablename__ = "loyalty_referrals"
    __table_args__ = (
        Index("ix_loyalty_referrals_referrer", "referrer_id", "status"),
        Index("ix_loyalty_referrals_created", "created_at"),
        CheckConstraint("status IN ('pending','converted','rejected')", name="status"),
    )

    id: Mapped[str] = id_column()
    referrer_id: Mapped[str] = mapped_column(String(36), ForeignKey("customers.id"))
    referred_id: Mapped[str] = mapped_column(String(36), ForeignKey("customers.id"), unique=True)
    code: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    reason: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = created_at_column()
    converted_at: Mapped[datetime | None] = mapped_column(default=None)
