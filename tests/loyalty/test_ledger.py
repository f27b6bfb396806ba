"""The ledger: accounts, credits and debits through one conditional UPDATE, FIFO lots, debt, expiry,
pay with points (hold → capture / release), idempotency keys and reconciliation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patron.core.audit import AuditEntry
from patron.core.clock import FrozenClock
from patron.core.outbox import OutboxEvent
from patron.loyalty import (
    IdempotencyKeyReused,
    InsufficientPoints,
    NotEnrolled,
    RedemptionState,
    adjust_points,
    capture_redemption,
    enrol_customer,
    expire_due,
    get_account,
    list_entries,
    reconcile,
    redeem_points,
    release_redemption,
    update_programme,
)
from patron.loyalty.models import LoyaltyAccount, LoyaltyEntry, LoyaltyLot
from tests.commerce.conftest import new_customer
from tests.loyalty.conftest import deliver


def lots(session: Session, customer_id: str) -> list[tuple[int, int]]:
    rows = session.execute(
        select(LoyaltyLot.points, LoyaltyLot.remaining)
        .join(LoyaltyAccount, LoyaltyAccount.id == LoyaltyLot.account_id)
        .where(LoyaltyAccount.customer_id == customer_id)
        .order_by(LoyaltyLot.earned_at, LoyaltyLot.id)
    ).all()
    return [(int(p), int(r)) for p, r in rows]


def balances(session: Session, customer_id: str) -> tuple[int, int, int, int]:
    a = get_account(session, customer_id)
    return a.available, a.pending, a.debt, a.held


def test_a_new_customer_reads_as_an_enrolled_zero_account(loyal: Session, member: str) -> None:
    account = get_account(loyal, member)
    assert (account.enrolled, account.account_id, account.available, account.pending, account.debt) == (
        True,
        None,
        0,
        0,
        0,
    )
    assert account.lifetime_earned == 0
    assert account.tier_code is None


def test_opt_in_programme_needs_enrolment(loyal: Session) -> None:
    update_programme(loyal, enrolment="opt_in")
    customer = new_customer(loyal)
    assert get_account(loyal, customer).enrolled is False
    with pytest.raises(NotEnrolled) as err:
        adjust_points(loyal, customer, 10, reason="welcome")
    assert err.value.code == "not_enrolled"
    assert loyal.scalar(select(LoyaltyAccount.id).where(LoyaltyAccount.customer_id == customer)) is None
    view = enrol_customer(loyal, customer)
    again = enrol_customer(loyal, customer)
    assert view.account_id == again.account_id
    assert view.card_number is not None
    assert len(view.card_number) == 16
    adjust_points(loyal, customer, 10, reason="welcome")
    assert get_account(loyal, customer).available == 10


def test_adjustments_credit_a_lot_and_debit_fifo(
    loyal: Session, member: str, frozen_clock: FrozenClock
) -> None:
    adjust_points(loyal, member, 100, reason="goodwill")
    frozen_clock.advance(timedelta(days=1))
    adjust_points(loyal, member, 50, reason="survey")
    assert lots(loyal, member) == [(100, 100), (50, 50)]
    redeem_points(loyal, member, 120)
    assert lots(loyal, member) == [(100, 0), (50, 30)]
    assert balances(loyal, member) == (30, 0, 0, 0)
    account = get_account(loyal, member)
    assert (account.lifetime_redeemed, account.lifetime_earned) == (120, 0)  # adjustments are not earnings
    lot = loyal.scalars(select(LoyaltyLot).order_by(LoyaltyLot.earned_at)).first()
    assert lot is not None
    assert lot.expires_at == datetime(2027, 3, 15, 10, 0, tzinfo=UTC)  # rolling 12 months
    audits = loyal.scalars(select(AuditEntry).where(AuditEntry.action == "loyalty.points_adjusted")).all()
    assert sorted(((a.old_values, a.new_values) for a in audits), key=lambda pair: str(pair[0])) == [
        ({"available": 0}, {"available": 100, "points": 100, "reason": "goodwill"}),
        ({"available": 100}, {"available": 150, "points": 50, "reason": "survey"}),
    ]


def test_a_debit_beyond_the_balance_is_refused_and_changes_nothing(loyal: Session, member: str) -> None:
    adjust_points(loyal, member, 40, reason="goodwill")
    entries_before = loyal.scalar(select(LoyaltyEntry.id).order_by(LoyaltyEntry.id.desc()))
    with pytest.raises(InsufficientPoints) as err:
        redeem_points(loyal, member, 41)
    assert err.value.code == "insufficient_points"
    assert err.value.extra == {"available": 40, "required": 41}
    with pytest.raises(InsufficientPoints):
        adjust_points(loyal, member, -41, reason="correction")
    assert balances(loyal, member) == (40, 0, 0, 0)
    assert lots(loyal, member) == [(40, 40)]
    assert loyal.scalar(select(LoyaltyEntry.id).order_by(LoyaltyEntry.id.desc())) == entries_before
    assert reconcile(loyal).ok


def test_idempotency_keys_replay_and_refuse_reuse(loyal: Session, member: str) -> None:
    first = adjust_points(loyal, member, 25, reason="goodwill", key="k-1")
    again = adjust_points(loyal, member, 25, reason="goodwill", key="k-1")
    assert (again.id, again.replayed, first.replayed) == (first.id, True, False)
    assert balances(loyal, member) == (25, 0, 0, 0)
    with pytest.raises(IdempotencyKeyReused):
        adjust_points(loyal, member, 25, reason="other", key="k-1")
    r1 = redeem_points(loyal, member, 10, key="r-1")
    r2 = redeem_points(loyal, member, 10, key="r-1")
    assert (r2.id, r2.replayed) == (r1.id, True)
    assert balances(loyal, member) == (15, 0, 0, 0)
    with pytest.raises(IdempotencyKeyReused):
        redeem_points(loyal, member, 11, key="r-1")


def test_hold_capture_and_release(loyal: Session, member: str, frozen_clock: FrozenClock) -> None:
    adjust_points(loyal, member, 60, reason="goodwill")
    frozen_clock.advance(timedelta(days=1))
    adjust_points(loyal, member, 40, reason="goodwill")
    held = redeem_points(loyal, member, 70, hold=True, market_code="VN")
    assert (held.status, held.value_amount, held.currency) == ("held", 7000, "VND")
    assert balances(loyal, member) == (30, 0, 0, 70)
    captured = capture_redemption(loyal, held.id)
    assert captured.status == "captured"
    assert balances(loyal, member) == (30, 0, 0, 0)
    assert capture_redemption(loyal, held.id).replayed is True
    with pytest.raises(RedemptionState):
        release_redemption(loyal, held.id)

    second = redeem_points(loyal, member, 25, hold=True)
    assert lots(loyal, member) == [(60, 0), (40, 5)]
    released = release_redemption(loyal, second.id)
    assert released.status == "released"
    assert balances(loyal, member) == (30, 0, 0, 0)
    assert lots(loyal, member) == [(60, 0), (40, 30)]  # back to the lot it came from
    assert get_account(loyal, member).lifetime_redeemed == 70
    assert reconcile(loyal).ok


def test_expired_points_are_never_redeemable(loyal: Session, member: str, frozen_clock: FrozenClock) -> None:
    update_programme(loyal, expiry_policy="rolling", expiry_months=1)
    adjust_points(loyal, member, 30, reason="goodwill")
    frozen_clock.advance(timedelta(days=20))
    adjust_points(loyal, member, 20, reason="goodwill")
    frozen_clock.advance(timedelta(days=12))  # the first lot expired (2026-04-15), the job has not run
    assert get_account(loyal, member).available == 50
    with pytest.raises(InsufficientPoints):
        redeem_points(loyal, member, 21)
    assert balances(loyal, member) == (20, 0, 0, 0)  # redemption expired the due lot first
    assert expire_due(loyal) == 0  # nothing left to expire
    frozen_clock.advance(timedelta(days=30))
    assert expire_due(loyal) == 20
    assert expire_due(loyal) == 0
    account = get_account(loyal, member)
    assert (account.available, account.lifetime_expired) == (0, 50)
    expired = loyal.scalars(select(OutboxEvent).where(OutboxEvent.name == "points.expired")).all()
    assert sorted(e.payload["points"] for e in expired) == [20, 30]
    kinds = [e.kind for e in list_entries(loyal, member).items]
    assert kinds == ["expire", "expire", "adjust", "adjust"]
    assert reconcile(loyal).ok


def test_release_after_the_lot_expired_expires_the_returned_points(
    loyal: Session, member: str, frozen_clock: FrozenClock
) -> None:
    update_programme(loyal, expiry_policy="rolling", expiry_months=1)
    adjust_points(loyal, member, 30, reason="goodwill")
    held = redeem_points(loyal, member, 30, hold=True)
    frozen_clock.advance(timedelta(days=40))
    release_redemption(loyal, held.id)
    assert balances(loyal, member) == (0, 0, 0, 0)
    assert get_account(loyal, member).lifetime_expired == 30
    assert reconcile(loyal).ok


def test_reconcile_reports_drift(loyal: Session, member: str) -> None:
    adjust_points(loyal, member, 10, reason="goodwill")
    report = reconcile(loyal)
    assert (report.ok, report.accounts) == (True, 1)
    loyal.execute(update(LoyaltyAccount).values(available=LoyaltyAccount.available + 5))
    report = reconcile(loyal)
    assert [(d.customer_id, d.field, d.balance, d.ledger) for d in report.drift] == [
        (member, "available", 15, 10),
        (member, "lots", 15, 10),
    ]


def test_the_ledger_lists_newest_first_in_pages(
    loyal: Session, member: str, frozen_clock: FrozenClock
) -> None:
    for i in range(5):
        adjust_points(loyal, member, i + 1, reason=f"r{i}")
        frozen_clock.advance(timedelta(minutes=1))
    page = list_entries(loyal, member, limit=2)
    assert [e.points for e in page.items] == [5, 4]
    page2 = list_entries(loyal, member, limit=2, cursor=page.next_cursor)
    page3 = list_entries(loyal, member, limit=2, cursor=page2.next_cursor)
    assert [e.points for e in page2.items + page3.items] == [3, 2, 1]
    assert page3.next_cursor is None


def test_customer_created_enrols_automatically(loyal: Session) -> None:
    customer = new_customer(loyal)
    deliver(loyal, "customer.created")
    row = loyal.scalars(select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer)).one()
    assert (row.status, row.available) == ("active", 0)
    enrolled = loyal.scalars(select(OutboxEvent).where(OutboxEvent.name == "loyalty.enrolled")).all()
    assert [e.payload for e in enrolled][-1] == {"customer_id": customer, "account_id": row.id}
    update_programme(loyal, enrolment="opt_in")
    other = new_customer(loyal)
    deliver(loyal, "customer.created")
    assert loyal.scalar(select(LoyaltyAccount.id).where(LoyaltyAccount.customer_id == other)) is None
