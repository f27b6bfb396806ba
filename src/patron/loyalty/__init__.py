"""Loyalty: points ledger, earning rules, tiers, rewards, referrals and coupons.

Reacts to ``customer.created`` (automatic enrolment) and to ``order.placed`` / ``order.fulfilled`` /
``order.refunded`` / ``order.cancelled`` through the outbox; reads orders through
``patron.commerce``'s public surface. See docs/loyalty.md for the rules, rounding, debt and expiry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from patron.core.db import Database
from patron.core.lifecycle import lifecycle as lifecycle_registry
from patron.core.outbox import DomainEvent, registry
from patron.loyalty import events
from patron.loyalty.contracts import (
    ENTRY_KINDS,
    ENTRY_SOURCES,
    REDEMPTION_STATUSES,
    AccountView,
    Drift,
    EarningView,
    EntryView,
    MarketSettingsView,
    ProgrammeView,
    Reconciliation,
    RedemptionView,
    RuleView,
)
from patron.loyalty.coupons import (
    CouponCheck,
    CouponRedemptionView,
    CouponRefused,
    PromotionNotFound,
    PromotionView,
    create_promotion,
    generate_coupons,
    get_promotion,
    iter_coupons,
    list_coupons,
    list_promotions,
    redeem_coupon,
    update_promotion,
    validate_coupon,
)
from patron.loyalty.earning import (
    OrderShape,
    create_rule,
    delete_rule,
    get_rule,
    list_rules,
    on_order_cancelled,
    on_order_fulfilled,
    on_order_placed,
    on_order_refunded,
    report_event,
    simulate_event,
    simulate_order,
    update_rule,
    vest,
    vest_due,
)
from patron.loyalty.errors import (
    AccountClosed,
    AccountNotFound,
    IdempotencyKeyReused,
    InsufficientPoints,
    MarketNotConfigured,
    NotEnrolled,
    RedemptionNotFound,
    RedemptionState,
    RuleNotFound,
)
from patron.loyalty.lifecycle import LoyaltyLifecycle
from patron.loyalty.opening import (
    OpeningBalanceInput,
    OpeningResult,
    import_opening_balances,
    prepare_opening_balance,
    undo_opening_balances,
)
from patron.loyalty.queries import list_entries, list_redemptions
from patron.loyalty.referrals import (
    REFERRAL_CONVERTED,
    ReferralSummary,
    ReferralView,
    attribute_referral,
    convert_referral,
    on_customer_created_referral,
    on_first_purchase,
    referral_code_for,
    referral_counts,
    referral_summary,
)
from patron.loyalty.reports import LiabilityReport, MarketLiability, liability
from patron.loyalty.rewards import (
    CODE_ALPHABET,
    MemberNotFound,
    RewardNotFound,
    RewardUnavailable,
    RewardView,
    cancel_redemption,
    create_reward,
    find_member,
    fulfil_redemption,
    get_reward,
    list_rewards,
    new_code,
    redeem_reward,
    reward_name,
    update_reward,
)
from patron.loyalty.service import (
    adjust_points,
    capture_redemption,
    enrol_customer,
    expire_due,
    get_account,
    get_market_settings,
    get_programme,
    get_redemption,
    list_market_settings,
    notify_expiring,
    put_market_settings,
    reconcile,
    redeem_points,
    release_redemption,
    update_programme,
)
from patron.loyalty.statements import (
    ExpiringPoints,
    expiring_points_of,
    referrer_of_code,
    reward_use_counts,
)
from patron.loyalty.tiers import (
    TierNotFound,
    TierProgress,
    TierView,
    create_tier,
    delete_tier,
    evaluate_tier,
    get_tier,
    list_tiers,
    review_tiers,
    tier_name,
    tier_progress,
    update_tier,
)

log = logging.getLogger("patron.loyalty")

#: how often the worker vests due order points and expires due lots (seconds)
LEDGER_JOBS_INTERVAL = 300.0
#: how often the worker proves balances equal the ledger (seconds)
RECONCILE_INTERVAL = 3600.0


def on_customer_created(session: Session, event: DomainEvent) -> None:
    """Automatic enrolment: every new customer gets an account (opt-in programmes wait)."""
    from patron.loyalty.service import _programme_row

    if _programme_row(session).enrolment != "automatic":
        return
    enrol_customer(session, str(event.payload["customer_id"]))


def register() -> None:
    """Register the loyalty event handlers and lifecycle handler."""
    registry.register("customer.created", on_customer_created, key="loyalty.enrol")
    registry.register("customer.created", on_customer_created_referral, key="loyalty.referral")
    registry.register("order.placed", on_first_purchase, key="loyalty.referral_first_purchase")
    registry.register("order.placed", on_order_placed, key="loyalty.order_placed")
    registry.register("order.fulfilled", on_order_fulfilled, key="loyalty.order_fulfilled")
    registry.register("order.refunded", on_order_refunded, key="loyalty.order_refunded")
    registry.register("order.cancelled", on_order_cancelled, key="loyalty.order_cancelled")
    lifecycle_registry.register(LoyaltyLifecycle())


def scheduled_jobs(db: Database) -> list[tuple[float, Callable[[], None]]]:
    """Jobs for the worker: ``(interval in seconds, job)``."""

    def ledger() -> None:
        with db.unit_of_work() as session:
            vest_due(session)
        with db.unit_of_work() as session:
            expire_due(session)
        with db.unit_of_work() as session:
            notify_expiring(session)
        with db.unit_of_work() as session:
            review_tiers(session)

    def check() -> None:
        with db.unit_of_work(write=False) as session:
            report = reconcile(session)
        for drift in report.drift:
            log.error(
                "loyalty ledger drift: account %s %s balance %s ledger %s",
                drift.account_id,
                drift.field,
                drift.balance,
                drift.ledger,
            )

    return [(LEDGER_JOBS_INTERVAL, ledger), (RECONCILE_INTERVAL, check)]


__all__ = [
    "CODE_ALPHABET",
    "ENTRY_KINDS",
    "ENTRY_SOURCES",
    "LEDGER_JOBS_INTERVAL",
    "RECONCILE_INTERVAL",
    "REDEMPTION_STATUSES",
    "REFERRAL_CONVERTED",
    "AccountClosed",
    "AccountNotFound",
    "AccountView",
    "CouponCheck",
    "CouponRedemptionView",
    "CouponRefused",
    "Drift",
    "EarningView",
    "EntryView",
    "ExpiringPoints",
    "IdempotencyKeyReused",
    "InsufficientPoints",
    "LiabilityReport",
    "LoyaltyLifecycle",
    "MarketLiability",
    "MarketNotConfigured",
    "MarketSettingsView",
    "MemberNotFound",
    "NotEnrolled",
    "OpeningBalanceInput",
    "OpeningResult",
    "OrderShape",
    "ProgrammeView",
    "PromotionNotFound",
    "PromotionView",
    "Reconciliation",
    "RedemptionNotFound",
    "RedemptionState",
    "RedemptionView",
    "ReferralSummary",
    "ReferralView",
    "RewardNotFound",
    "RewardUnavailable",
    "RewardView",
    "RuleNotFound",
    "RuleView",
    "TierNotFound",
    "TierProgress",
    "TierView",
    "adjust_points",
    "attribute_referral",
    "cancel_redemption",
    "capture_redemption",
    "convert_referral",
    "create_promotion",
    "create_reward",
    "create_rule",
    "create_tier",
    "delete_rule",
    "delete_tier",
    "enrol_customer",
    "evaluate_tier",
    "events",
    "expire_due",
    "expiring_points_of",
    "find_member",
    "fulfil_redemption",
    "generate_coupons",
    "get_account",
    "get_market_settings",
    "get_programme",
    "get_promotion",
    "get_redemption",
    "get_reward",
    "get_rule",
    "get_tier",
    "import_opening_balances",
    "iter_coupons",
    "liability",
    "list_coupons",
    "list_entries",
    "list_market_settings",
    "list_promotions",
    "list_redemptions",
    "list_rewards",
    "list_rules",
    "list_tiers",
    "new_code",
    "notify_expiring",
    "on_customer_created",
    "on_customer_created_referral",
    "on_first_purchase",
    "on_order_cancelled",
    "on_order_fulfilled",
    "on_order_placed",
    "on_order_refunded",
    "prepare_opening_balance",
    "put_market_settings",
    "reconcile",
    "redeem_coupon",
    "redeem_points",
    "redeem_reward",
    "referral_code_for",
    "referral_counts",
    "referral_summary",
    "referrer_of_code",
    "register",
    "release_redemption",
    "report_event",
    "review_tiers",
    "reward_name",
    "reward_use_counts",
    "scheduled_jobs",
    "simulate_event",
    "simulate_order",
    "tier_name",
    "tier_progress",
    "undo_opening_balances",
    "update_programme",
    "update_promotion",
    "update_reward",
    "update_rule",
    "update_tier",
    "validate_coupon",
    "vest",
    "vest_due",
]
