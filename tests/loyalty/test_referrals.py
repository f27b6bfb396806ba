"""Referrals: codes and links, attribution from referral_code at customer creation, self-referral
and cap guards, rewards on sign-up or first purchase, referral.converted, counts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.commerce import place_order, prepare_order
from patron.core.clock import FrozenClock
from patron.core.outbox import OutboxEvent
from patron.customers import CustomerCreateInput, create_customer
from patron.loyalty import get_account, reconcile, referral_counts, referral_summary, update_programme
from patron.loyalty.models import LoyaltyReferral
from tests.loyalty.conftest import deliver


def person(session: Session, email: str, code: str | None = None, phone: str | None = None) -> str:
    return create_customer(
        session,
        CustomerCreateInput(
            first_name="Bình",
            last_name="Trần",
            email=email,
            referral_code=code,
            phones=[phone] if phone else [],
        ),
    ).id


def status_of(session: Session, referred: str) -> tuple[str, str | None]:
    row = session.scalars(select(LoyaltyReferral).where(LoyaltyReferral.referred_id == referred)).one()
    return row.status, row.reason


def test_first_purchase_pays_both_once(loyal: Session) -> None:
    update_programme(loyal, referral_referrer_points=200, referral_referred_points=50)
    referrer = person(loyal, "an@example.vn")
    summary = referral_summary(loyal, referrer)
    assert (summary.link, len(summary.code)) == (f"/r/{summary.code}", 9)
    friend = person(loyal, "binh@example.vn", code=summary.code.lower())
    deliver(loyal)
    assert status_of(loyal, friend) == ("pending", None)
    assert get_account(loyal, referrer).available == 0
    for hour in (3, 4):  # the first purchase converts; the second changes nothing
        place_order(
            loyal,
            prepare_order(
                {
                    "customer_id": friend,
                    "market": "VN",
                    "currency": "VND",
                    "placed_at": f"2026-03-15T0{hour}:00:00+00:00",
                    "lines": [{"sku": "TEA-1", "quantity": 1, "unit_price": "100000"}],
                }
            ),
        )
        deliver(loyal)
    assert status_of(loyal, friend) == ("converted", None)
    assert (get_account(loyal, referrer).available, get_account(loyal, friend).available) == (200, 50)
    converted = loyal.scalars(select(OutboxEvent).where(OutboxEvent.name == "referral.converted")).all()
    assert [e.payload["points"] for e in converted] == [{"referrer": 200, "referred": 50}]
    assert referral_summary(loyal, referrer).converted == 1
    assert reconcile(loyal).ok


def test_signup_trigger_self_referral_and_cap(loyal: Session, frozen_clock: FrozenClock) -> None:
    update_programme(loyal, referral_referrer_points=100, referral_trigger="signup", referral_cap=1)
    referrer = person(loyal, "kovacs@example.hu", phone="+36301234567")
    code = referral_summary(loyal, referrer).code
    same_phone = person(loyal, "other@example.hu", code=code, phone="+36 30 123 4567")
    first = person(loyal, "first@example.hu", code=code)
    second = person(loyal, "second@example.hu", code=code)
    unknown = person(loyal, "third@example.hu", code="NOPE-NOPE")
    deliver(loyal)
    assert status_of(loyal, same_phone) == ("rejected", "self_referral")
    assert status_of(loyal, first) == ("converted", None)
    assert status_of(loyal, second) == ("rejected", "cap_reached")
    assert loyal.scalar(select(LoyaltyReferral.id).where(LoyaltyReferral.referred_id == unknown)) is None
    assert get_account(loyal, referrer).available == 100
    now = frozen_clock.now()
    assert referral_counts(loyal, now - timedelta(days=1), now + timedelta(days=1)) == {
        "pending": 0,
        "converted": 1,
        "rejected": 2,
    }
