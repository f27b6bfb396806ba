"""Referrals: a code (and link ``/r/{code}``) per customer; attribution from the ``referral_code``
given at customer creation; guards against self-referral (same customer, email or phone) and the
per-referrer cap; points to the referrer and/or the referred customer on sign-up or on the first
purchase; ``referral.converted``; counts for the referral-rate KPI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.core.clock import now
from patron.core.outbox import DomainEvent, emit_event
from patron.customers import CustomerView, get_customer
from patron.loyalty.errors import AccountClosed, NotEnrolled
from patron.loyalty.models import LoyaltyReferral, LoyaltyReferralCode
from patron.loyalty.rewards import new_code
from patron.loyalty.service import _current_customer, _programme_row, credit, ensure_account, find_entry

REFERRAL_CONVERTED = "referral.converted"
_REFERRALS = cast(Table, LoyaltyReferral.__table__)


@dataclass(frozen=True)
class ReferralView:
    id: str
    referrer_id: str
    referred_id: str
    code: str
    status: str
    reason: str | None
    created_at: datetime
    converted_at: datetime | None


@dataclass(frozen=True)
class ReferralSummary:
    code: str
    link: str
    pending: int
    converted: int
    rejected: int


def referral_view(row: LoyaltyReferral) -> ReferralView:
    return ReferralView(
        id=row.id,
        referrer_id=row.referrer_id,
        referred_id=row.referred_id,
        code=row.code,
        status=row.status,
        reason=row.reason,
        created_at=row.created_at,
        converted_at=row.converted_at,
    )


def referral_code_for(session: Session, customer_id: str) -> str:
    """The customer's referral code, created on first use."""
    current = _current_customer(session, customer_id)
    found = session.scalar(select(LoyaltyReferralCode.code).where(LoyaltyReferralCode.customer_id == current))
    if found is not None:
        return str(found)
    for _ in range(5):
        code = new_code(groups=2)
        try:
            with session.begin_nested():
                session.add(LoyaltyReferralCode(customer_id=current, code=code))
                session.flush()
            return code
        except IntegrityError:
            found = session.scalar(
                select(LoyaltyReferralCode.code).where(LoyaltyReferralCode.customer_id == current)
            )
            if found is not None:
                return str(found)
    raise RuntimeError("could not draw a unique referral code")  # pragma: no cover


def referral_summary(session: Session, customer_id: str) -> ReferralSummary:
    current = _current_customer(session, customer_id)
    code = referral_code_for(session, current)
    counts: dict[str, int] = {
        str(status): int(n)
        for status, n in session.execute(
            select(_REFERRALS.c.status, func.count())
            .where(_REFERRALS.c.referrer_id == current)
            .group_by(_REFERRALS.c.status)
        ).all()
    }
    return ReferralSummary(
        code=code,
        link=f"/r/{code}",
        pending=int(counts.get("pending", 0)),
        converted=int(counts.get("converted", 0)),
        rejected=int(counts.get("rejected", 0)),
    )


def _contacts(view: CustomerView) -> set[str]:
    emails = {e.casefold() for e in (view.email, *view.emails) if e}
    phones = {p for p in (view.phone, *view.phones) if p}
    return emails | phones


def attribute_referral(session: Session, referred_id: str, code: str) -> ReferralView | None:
    """Record that ``referred_id`` came through ``code``; None for an unknown code. Idempotent: a
    customer is referred at most once."""
    existing = session.scalar(select(LoyaltyReferral).where(LoyaltyReferral.referred_id == referred_id))
    if existing is not None:
        return referral_view(existing)
    owner = session.scalar(
        select(LoyaltyReferralCode.customer_id).where(LoyaltyReferralCode.code == code.strip().upper())
    )
    if owner is None:
        return None
    referrer_id = _current_customer(session, str(owner))
    programme = _programme_row(session)
    status, reason = "pending", None
    if referrer_id == referred_id or _contacts(get_customer(session, referrer_id)) & _contacts(
        get_customer(session, referred_id)
    ):
        status, reason = "rejected", "self_referral"
    elif programme.referral_cap is not None:
        taken = session.scalar(
            select(func.count()).where(
                _REFERRALS.c.referrer_id == referrer_id, _REFERRALS.c.status.in_(("pending", "converted"))
            )
        )
        if int(taken or 0) >= programme.referral_cap:
            status, reason = "rejected", "cap_reached"
    row = LoyaltyReferral(
        referrer_id=referrer_id,
        referred_id=referred_id,
        code=code.strip().upper(),
        status=status,
        reason=reason,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        again = session.scalar(select(LoyaltyReferral).where(LoyaltyReferral.referred_id == referred_id))
        assert again is not None
        return referral_view(again)
    if status == "pending" and programme.referral_trigger == "signup":
        convert_referral(session, row.id)
        session.refresh(row)
    return referral_view(row)


def convert_referral(session: Session, referral_id: str) -> bool:
    """Pay the referral's rewards once (pending → converted). False when it was not pending."""
    result = session.execute(
        update(_REFERRALS)
        .where(_REFERRALS.c.id == referral_id, _REFERRALS.c.status == "pending")
        .values(status="converted", converted_at=now())
    )
    if int(result.rowcount) != 1:  # type: ignore[attr-defined]
        return False
    row = session.get(LoyaltyReferral, referral_id, populate_existing=True)
    assert row is not None
    programme = _programme_row(session)
    paid: dict[str, int] = {}
    for role, customer, points in (
        ("referrer", row.referrer_id, programme.referral_referrer_points),
        ("referred", row.referred_id, programme.referral_referred_points),
    ):
        key = f"referral:{row.id}:{role}"
        if points <= 0 or find_entry(session, key) is not None:
            continue
        try:
            account = ensure_account(session, customer)
        except (NotEnrolled, AccountClosed):
            continue
        credit(
            session,
            account.id,
            points,
            kind="earn",
            key=key,
            source="event",
            source_id=row.id,
            reason=f"referral ({role})",
        )
        paid[role] = points
    emit_event(
        session,
        REFERRAL_CONVERTED,
        {
            "referral_id": row.id,
            "referrer_id": row.referrer_id,
            "referred_id": row.referred_id,
            "points": paid,
        },
    )
    return True


def on_customer_created_referral(session: Session, event: DomainEvent) -> None:
    view = get_customer(session, str(event.payload["customer_id"]))
    if view.referral_code:
        attribute_referral(session, view.id, view.referral_code)


def on_first_purchase(session: Session, event: DomainEvent) -> None:
    """A pending referral converts on the referred customer's first (live) order."""
    if event.payload.get("live") is False or _programme_row(session).referral_trigger != "first_purchase":
        return
    customer_id = str(event.payload["customer_id"])
    pending = session.scalar(
        select(_REFERRALS.c.id).where(
            _REFERRALS.c.referred_id == customer_id, _REFERRALS.c.status == "pending"
        )
    )
    if pending is not None:
        convert_referral(session, str(pending))


def referral_counts(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Referred customers who joined in [start, end) by status (for the referral-rate KPI:
    referred new customers / all new customers)."""
    rows = session.execute(
        select(_REFERRALS.c.status, func.count())
        .where(_REFERRALS.c.created_at >= start, _REFERRALS.c.created_at < end)
        .group_by(_REFERRALS.c.status)
    ).all()
    counts = {"pending": 0, "converted": 0, "rejected": 0}
    counts.update({str(s): int(n) for s, n in rows})
    return counts
