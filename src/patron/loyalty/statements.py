"""Reads for a member's own statement (the customer portal): points that expire soon with their
dates, how often the member redeemed each reward (per-customer limits), and whose referral code a
code is (for the referral landing page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.core.clock import now
from patron.core.errors import PatronError
from patron.loyalty.models import LoyaltyLot, LoyaltyRedemption, LoyaltyReferralCode
from patron.loyalty.queries import _account_id
from patron.loyalty.service import EXPIRING_DAYS, _current_customer


@dataclass(frozen=True)
class ExpiringPoints:
    """``points`` of one lot (or several with the same expiry instant) that expire at ``expires_at``."""

    expires_at: datetime
    points: int


def expiring_points_of(
    session: Session, customer_id: str, *, within_days: int = EXPIRING_DAYS
) -> list[ExpiringPoints]:
    """Points still available that expire within ``within_days``, soonest first. Lots already past
    their expiry are left out: they are expired (never redeemable), even before the job has run."""
    account_id = _account_id(session, customer_id)
    if account_id is None:
        return []
    at = now()
    rows = session.execute(
        select(LoyaltyLot.expires_at, func.sum(LoyaltyLot.remaining))
        .where(
            LoyaltyLot.account_id == account_id,
            LoyaltyLot.remaining > 0,
            LoyaltyLot.expires_at.is_not(None),
            LoyaltyLot.expires_at > at,
            LoyaltyLot.expires_at <= at + timedelta(days=within_days),
        )
        .group_by(LoyaltyLot.expires_at)
        .order_by(LoyaltyLot.expires_at)
    ).all()
    return [ExpiringPoints(expires_at=row[0], points=int(row[1])) for row in rows if row[0] is not None]


def reward_use_counts(session: Session, customer_id: str) -> dict[str, int]:
    """Redemptions of each reward by the member that count against a per-customer limit (all but
    cancelled ones), by reward id."""
    account_id = _account_id(session, customer_id)
    if account_id is None:
        return {}
    rows = session.execute(
        select(LoyaltyRedemption.reward_id, func.count())
        .where(
            LoyaltyRedemption.account_id == account_id,
            LoyaltyRedemption.reward_id.is_not(None),
            LoyaltyRedemption.status != "cancelled",
        )
        .group_by(LoyaltyRedemption.reward_id)
    ).all()
    return {str(reward_id): int(n) for reward_id, n in rows}


def referrer_of_code(session: Session, code: str) -> str | None:
    """The customer who owns the referral ``code`` now (merges followed); None for an unknown code
    or an erased referrer."""
    normalised = code.strip().upper()
    if not normalised or len(normalised) > 40:
        return None
    owner = session.scalar(
        select(LoyaltyReferralCode.customer_id).where(LoyaltyReferralCode.code == normalised)
    )
    if owner is None:
        return None
    try:
        return _current_customer(session, str(owner))
    except PatronError:  # an erased referrer: the code leads nowhere
        return None


__all__ = ["ExpiringPoints", "expiring_points_of", "referrer_of_code", "reward_use_counts"]
