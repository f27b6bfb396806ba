"""The demo's loyalty programme: set up through the loyalty commands, members' ledgers replayed from
the order history at the times things happened, and a clean reconciliation afterwards."""

from __future__ import annotations

import logging
import time
from collections import Counter
from decimal import Decimal

from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from patron.core.clock import FrozenClock, ensure_aware
from patron.core.db import Database, new_id
from patron.core.outbox import OutboxEvent, emit_event
from patron.demo import DemoOptions, seed_demo
from patron.loyalty import (
    get_account,
    get_programme,
    list_entries,
    list_market_settings,
    list_promotions,
    list_rewards,
    list_rules,
    list_tiers,
    reconcile,
    referral_counts,
    reward_name,
    tier_name,
)
from patron.loyalty.models import LoyaltyAccount, LoyaltyCoupon, LoyaltyEntry, LoyaltyLot

log = logging.getLogger("tests.demo")


def test_demo_loyalty_programme_and_ledgers(database: Database, frozen_clock: FrozenClock) -> None:
    started = time.perf_counter()
    with database.unit_of_work() as session:
        summary = seed_demo(session, DemoOptions())  # the default demo: 2,000 customers, 2 years
    seconds = time.perf_counter() - started
    log.warning(
        "patron demo with loyalty: %.1f s in all, loyalty replay %.1f s (%s)",
        seconds,
        summary.loyalty["seconds"],
        summary.loyalty,
    )
    assert summary.loyalty["members"] == DemoOptions().loyalty_members
    assert summary.loyalty["drift"] == 0

    with database.unit_of_work(write=False) as s:
        programme = get_programme(s)
        assert (programme.enrolment, programme.pending_days, programme.expiry_policy) == (
            "opt_in",
            14,
            "rolling",
        )
        assert programme.expiry_months == 12
        earning = {m.market_code: (m.earn_points, m.earn_spend_amount) for m in list_market_settings(s)}
        assert earning == {
            "EU": (1, Decimal(1)),
            "HU": (1, Decimal(100)),
            "TH": (1, Decimal(10)),
            "US": (1, Decimal(1)),
            "VN": (1, Decimal(10000)),
        }
        tiers = list_tiers(s)
        assert [t.code for t in tiers] == ["member", "silver", "gold"]
        assert [tier_name(t, "th") for t in tiers] == ["สมาชิก", "ซิลเวอร์", "โกลด์"]
        assert [tier_name(t, "vi") for t in tiers] == ["Thành viên", "Bạc", "Vàng"]
        assert [tier_name(t, "hu") for t in tiers] == ["Tag", "Ezüst", "Arany"]
        assert {r.name for r in list_rules(s)} >= {"Double points week", "Welcome bonus", "Birthday bonus"}
        rewards = list_rewards(s)
        assert {r.kind for r in rewards} >= {"discount_fixed", "discount_percent", "free_shipping", "gift"}
        assert any(r.tiers == ["gold"] for r in rewards)
        assert all(reward_name(r, "th") != reward_name(r, "en") for r in rewards)
        assert [p.name for p in list_promotions(s)] == ["Welcome 10 %"]
        used = s.scalar(select(func.count()).select_from(LoyaltyCoupon).where(LoyaltyCoupon.redemptions > 0))
        assert used == summary.loyalty["coupon_redemptions"] > 0

        # balances == ledger sums, for every account, computed here from the entries themselves
        sums = {
            row[0]: tuple(int(v) for v in row[1:])
            for row in s.execute(
                select(
                    LoyaltyEntry.account_id,
                    func.sum(LoyaltyEntry.points),
                    func.sum(LoyaltyEntry.pending),
                    func.sum(LoyaltyEntry.debt),
                    func.sum(LoyaltyEntry.held),
                ).group_by(LoyaltyEntry.account_id)
            )
        }
        accounts = list(s.scalars(select(LoyaltyAccount)))
        assert len(accounts) == summary.loyalty["members"]
        for account in accounts:
            view = get_account(s, account.customer_id)
            ledger = sums.get(account.id, (0, 0, 0, 0))
            assert (view.available, view.pending, view.debt, view.held) == ledger, account.customer_id
            lots = s.scalar(
                select(func.coalesce(func.sum(LoyaltyLot.remaining), 0)).where(
                    LoyaltyLot.account_id == account.id
                )
            )
            assert view.available == int(lots)
        assert reconcile(s).ok

        tiers_held = Counter(a.tier_code for a in accounts)
        for code in ("member", "silver", "gold"):
            assert tiers_held[code] > 0, code

        kinds = Counter(
            dict(s.execute(select(LoyaltyEntry.kind, func.count()).group_by(LoyaltyEntry.kind)).all())
        )
        for kind in ("earn", "vest", "redeem", "expire", "reverse"):
            assert kinds[kind] > 0, kind
        assert sum(1 for a in accounts if a.debt > 0) >= 1  # the debt case
        # history has its dates: the oldest movement is more than a year old
        oldest = s.scalar(select(func.min(LoyaltyEntry.occurred_at)))
        assert oldest is not None
        assert (frozen_clock.now() - ensure_aware(oldest)).days > 365
        member = next(a for a in accounts if a.tier_code == "gold")
        assert len(list_entries(s, member.customer_id, limit=200).items) > 5
        referrals = referral_counts(s, oldest, frozen_clock.now())
        assert referrals["converted"] + referrals["pending"] > 0
        # history is not announced: no loyalty notification waits in the outbox
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 0


def test_demo_withdraws_only_the_outbox_rows_it_queued(database: Database, frozen_clock: FrozenClock) -> None:
    """Loyalty events queued before the demo (more than a driver's bound-parameter limit of them) and
    one a live server commits while the demo replays its ledgers (PostgreSQL; SQLite lets one writer
    at a time) stay in the outbox; the replay's own notifications are withdrawn."""
    before = [new_id() for _ in range(70_000)]
    with database.unit_of_work() as session:
        session.execute(
            insert(OutboxEvent),
            [{"id": i, "name": "points.earned", "payload": {"customer_id": "x"}} for i in before],
        )
    concurrent: list[str] = []

    def live_server_commits(_: Session, instance: object) -> None:
        if isinstance(instance, OutboxEvent) and instance.name == "loyalty.enrolled" and not concurrent:
            with database.unit_of_work() as other:
                concurrent.append(emit_event(other, "points.earned", {"customer_id": "live"}))

    with database.unit_of_work() as session:
        if database.dialect == "postgresql":
            event.listen(session, "pending_to_persistent", live_server_commits)
        summary = seed_demo(session, DemoOptions(customers=300, seed=42))
    assert summary.loyalty["members"] == 10
    assert len(concurrent) == (1 if database.dialect == "postgresql" else 0)
    with database.unit_of_work(write=False) as s:
        left = set(s.scalars(select(OutboxEvent.id)))
    assert left == {*before, *concurrent}
