"""Customer lifecycle: merge moves accounts (or transfers balances, lots and pending earnings),
erase forfeits and anonymises, export includes the ledger."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.commerce import fulfil_order, place_order, prepare_order
from patron.core.clock import FrozenClock
from patron.customers import erase_customer, export_customer, merge_customers
from patron.loyalty import adjust_points, get_account, list_entries, reconcile, redeem_points, vest_due
from patron.loyalty.models import LoyaltyAccount, LoyaltyEntry, LoyaltyLot
from tests.commerce.conftest import new_customer
from tests.loyalty.conftest import deliver


def vn(session: Session, customer_id: str, amount: str) -> str:
    return place_order(
        session,
        prepare_order(
            {
                "customer_id": customer_id,
                "market": "VN",
                "currency": "VND",
                "placed_at": "2026-03-15T03:00:00+00:00",
                "lines": [{"sku": "TEA-1", "quantity": 1, "unit_price": amount}],
            }
        ),
    ).id


def test_merge_into_a_customer_without_an_account_moves_the_account(loyal: Session) -> None:
    source, target = new_customer(loyal), new_customer(loyal)
    adjust_points(loyal, source, 40, reason="goodwill")
    account_id = get_account(loyal, source).account_id
    merge_customers(loyal, source_id=source, target_id=target)
    moved = get_account(loyal, target)
    assert (moved.account_id, moved.available, moved.customer_id) == (account_id, 40, target)
    assert get_account(loyal, source).customer_id == target  # the merged id resolves to the target
    assert reconcile(loyal).ok


def test_merge_of_two_accounts_transfers_balances_lots_and_pending_earnings(
    loyal: Session, frozen_clock: FrozenClock
) -> None:
    source, target = new_customer(loyal), new_customer(loyal)
    adjust_points(loyal, source, 50, reason="goodwill")
    redeem_points(loyal, source, 10)
    order = vn(loyal, source, "200000")  # 20 pending points
    deliver(loyal)
    adjust_points(loyal, target, 5, reason="goodwill")
    held = redeem_points(loyal, target, 5, hold=True)
    merge_customers(loyal, source_id=source, target_id=target)
    deliver(loyal)
    merged = get_account(loyal, target)
    assert (merged.available, merged.pending, merged.held, merged.lifetime_redeemed) == (40, 20, 5, 10)
    src_row = loyal.scalars(select(LoyaltyAccount).where(LoyaltyAccount.customer_id == source)).one()
    assert (src_row.status, src_row.available, src_row.pending, src_row.merged_into_id) == (
        "merged",
        0,
        0,
        merged.account_id,
    )
    lots = loyal.scalars(select(LoyaltyLot.remaining).where(LoyaltyLot.account_id == merged.account_id)).all()
    assert sorted(lots) == [0, 40]
    # the source's pending order now vests into the target's account
    fulfil_order(loyal, order)
    deliver(loyal)
    frozen_clock.advance(timedelta(days=15))
    assert vest_due(loyal) == 20
    assert get_account(loyal, target).available == 60
    assert get_account(loyal, target).held == 5
    assert held.status == "held"
    assert reconcile(loyal).ok


def test_merge_settles_the_targets_debt_from_incoming_points(loyal: Session) -> None:
    source, target = new_customer(loyal), new_customer(loyal)
    adjust_points(loyal, source, 30, reason="goodwill")
    target_account = get_account(loyal, target)
    assert target_account.account_id is None
    adjust_points(loyal, target, 1, reason="open")
    account_id = get_account(loyal, target).account_id
    from patron.loyalty.service import _add_entry, _apply, _consume_lots, _Delta

    delta = _Delta(points=-1, debt=12)  # a refund of spent points left a debt of 12
    _apply(loyal, str(account_id), delta)
    entry = _add_entry(loyal, str(account_id), "reverse", delta, key="test-debt", source="order")
    _consume_lots(loyal, str(account_id), entry.id, 1)
    merge_customers(loyal, source_id=source, target_id=target)
    after = get_account(loyal, target)
    assert (after.available, after.debt) == (18, 0)
    assert reconcile(loyal).ok


def test_erase_forfeits_balances_and_anonymises(loyal: Session) -> None:
    customer = new_customer(loyal)
    adjust_points(loyal, customer, 70, reason="called about Anna's birthday")
    redeem_points(loyal, customer, 20, hold=True)
    vn(loyal, customer, "100000")
    deliver(loyal)
    erase_customer(loyal, customer)
    row = loyal.scalars(select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer)).one()
    assert (row.status, row.available, row.pending, row.held, row.debt, row.card_number) == (
        "erased",
        0,
        0,
        0,
        0,
        None,
    )
    reasons = loyal.scalars(select(LoyaltyEntry.reason).where(LoyaltyEntry.source == "staff")).all()
    assert reasons == [""]
    forfeit = loyal.scalars(select(LoyaltyEntry).where(LoyaltyEntry.kind == "forfeit")).one()
    assert (forfeit.points, forfeit.pending, forfeit.held) == (-50, -10, -20)
    assert reconcile(loyal).ok


def test_export_includes_the_ledger(loyal: Session, frozen_clock: FrozenClock) -> None:
    customer = new_customer(loyal)
    adjust_points(loyal, customer, 25, reason="goodwill")
    frozen_clock.advance(timedelta(minutes=1))
    redeem_points(loyal, customer, 5)
    data = export_customer(loyal, customer)["loyalty"]
    assert data["account"]["available"] == 20
    assert [(e["kind"], e["points"]) for e in data["entries"]] == [("adjust", 25), ("redeem", -5)]
    assert [(lot["points"], lot["remaining"]) for lot in data["lots"]] == [(25, 20)]
    assert [(r["points"], r["status"]) for r in data["redemptions"]] == [(5, "captured")]
    assert [e.kind for e in list_entries(loyal, customer).items] == ["redeem", "adjust"]
