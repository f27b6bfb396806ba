"""Tiers (instant upgrade, downgrade only at review after a grace period, benefits, progress,
tier.changed), traits, timeline entries and points.expiring notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.commerce import place_order, prepare_order
from patron.core.clock import FrozenClock
from patron.core.errors import Conflict
from patron.core.outbox import OutboxEvent
from patron.customers import CustomerErased, erase_customer, list_timeline
from patron.loyalty import (
    adjust_points,
    create_rule,
    create_tier,
    delete_tier,
    get_account,
    notify_expiring,
    reconcile,
    report_event,
    review_tiers,
    tier_name,
    tier_progress,
    update_programme,
)
from patron.loyalty.models import LoyaltyAccount, LoyaltyOrderEarning
from tests.commerce.conftest import new_customer, traits
from tests.loyalty.conftest import deliver


def setup_tiers(session: Session) -> None:
    create_tier(
        session,
        {
            "code": "silver",
            "rank": 1,
            "threshold": 100,
            "names": {"en": "Silver", "vi": "Bạc", "hu": "Ezüst", "th": "เงิน"},
        },
    )
    create_tier(
        session,
        {
            "code": "gold",
            "rank": 2,
            "threshold": 500,
            "multiplier": "1.5",
            "names": {"en": "Gold", "vi": "Vàng", "hu": "Arany", "th": "ทอง"},
            "perks": ["free shipping"],
        },
    )
    create_rule(session, {"name": "Review", "kind": "bonus", "event_type": "review", "points": 60})


def review(session: Session, customer_id: str, at: datetime) -> Any:
    return report_event(session, customer_id, "review", occurred_at=at)


def tier_events(session: Session) -> list[tuple[Any, Any, Any]]:
    rows = session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.name == "tier.changed")
        .order_by(OutboxEvent.occurred_at, OutboxEvent.id)
    )
    return [(e.payload["from"], e.payload["to"], e.payload["direction"]) for e in rows]


def test_upgrade_is_instant_and_downgrade_waits_for_review_and_grace(
    loyal: Session, member: str, frozen_clock: FrozenClock
) -> None:
    setup_tiers(loyal)
    start = frozen_clock.now()
    review(loyal, member, start)
    assert get_account(loyal, member).tier_code is None
    progress = tier_progress(loyal, member)
    assert (progress.value, progress.next.code if progress.next else None, progress.remaining) == (
        Decimal(60),
        "silver",
        Decimal(40),
    )
    review(loyal, member, start + timedelta(seconds=1))
    assert get_account(loyal, member).tier_code == "silver"  # 120 ≥ 100: at once
    assert tier_events(loyal) == [(None, "silver", "upgrade")]
    progress = tier_progress(loyal, member)
    assert (progress.current.code if progress.current else None, progress.remaining) == (
        "silver",
        Decimal(380),
    )
    assert progress.review_at == datetime(2027, 3, 15, 10, 0, tzinfo=UTC)
    assert traits(loyal, member)["tier"] == "silver"

    frozen_clock.advance(timedelta(days=364))
    assert review_tiers(loyal) == {}  # not due yet
    frozen_clock.advance(timedelta(days=2))  # review: nothing earned in the last 12 months
    assert review_tiers(loyal) == {"grace": 1}
    assert get_account(loyal, member).tier_code == "silver"
    frozen_clock.advance(timedelta(days=29))
    assert review_tiers(loyal) == {}
    frozen_clock.advance(timedelta(days=2))
    assert review_tiers(loyal) == {"downgrade": 1}
    assert get_account(loyal, member).tier_code is None
    assert tier_events(loyal)[-1] == ("silver", None, "downgrade")
    assert traits(loyal, member).get("tier") is None


def test_a_member_still_qualified_at_review_keeps_the_tier(
    loyal: Session, member: str, frozen_clock: FrozenClock
) -> None:
    setup_tiers(loyal)
    review(loyal, member, frozen_clock.now())
    review(loyal, member, frozen_clock.now() + timedelta(seconds=1))
    frozen_clock.advance(timedelta(days=300))
    review(loyal, member, frozen_clock.now())
    review(loyal, member, frozen_clock.now() + timedelta(seconds=1))
    frozen_clock.advance(timedelta(days=66))
    assert review_tiers(loyal) == {"keep": 1}
    account = get_account(loyal, member)
    assert account.tier_code == "silver"
    assert tier_progress(loyal, member).review_at == frozen_clock.now().replace(year=2028)


def test_tier_benefits_multiply_order_points_and_names_are_translated(
    loyal: Session, member: str, frozen_clock: FrozenClock
) -> None:
    setup_tiers(loyal)
    adjust_points(loyal, member, 1, reason="open")
    for i in range(9):  # 540 points → gold
        review(loyal, member, frozen_clock.now() + timedelta(seconds=i))
    assert get_account(loyal, member).tier_code == "gold"
    assert tier_events(loyal) == [(None, "silver", "upgrade"), ("silver", "gold", "upgrade")]
    order = place_order(
        loyal,
        prepare_order(
            {
                "customer_id": member,
                "market": "VN",
                "currency": "VND",
                "placed_at": "2026-03-15T11:00:00+00:00",
                "lines": [{"sku": "TEA-1", "quantity": 1, "unit_price": "200000"}],
            }
        ),
    )
    deliver(loyal)
    assert loyal.get(LoyaltyOrderEarning, order.id).points == 30  # type: ignore[union-attr]  # 20 × 1.5
    progress = tier_progress(loyal, member)
    assert progress.next is None
    assert progress.current is not None
    assert [tier_name(progress.current, lang) for lang in ("en", "vi", "hu", "th", "de")] == [
        "Gold",
        "Vàng",
        "Arany",
        "ทอง",
        "Gold",
    ]
    delete_tier(loyal, "gold")
    assert get_account(loyal, member).tier_code == "silver"


def test_spend_basis_upgrades_on_the_order(loyal: Session, member: str) -> None:
    update_programme(loyal, tier_basis="spend")
    create_tier(loyal, {"code": "vip", "rank": 1, "threshold": "20", "names": {"en": "VIP"}})
    with pytest.raises(Conflict):
        create_tier(loyal, {"code": "vip2", "rank": 1, "threshold": "30", "names": {"en": "VIP 2"}})
    place_order(
        loyal,
        prepare_order(
            {
                "customer_id": member,
                "market": "VN",
                "currency": "VND",
                "placed_at": "2026-03-15T03:00:00+00:00",
                "lines": [{"sku": "TEA-1", "quantity": 1, "unit_price": "400000"}],
            }
        ),
    )
    deliver(loyal)
    assert get_account(loyal, member).tier_code is None  # 400,000 VND = 16 EUR
    place_order(
        loyal,
        prepare_order(
            {
                "customer_id": member,
                "market": "VN",
                "currency": "VND",
                "placed_at": "2026-03-15T04:00:00+00:00",
                "lines": [{"sku": "TEA-1", "quantity": 1, "unit_price": "200000"}],
            }
        ),
    )
    deliver(loyal)
    assert get_account(loyal, member).tier_code == "vip"  # 24 EUR
    assert tier_progress(loyal, member).value == Decimal("24.0000")


def test_calendar_year_window(loyal: Session, member: str, frozen_clock: FrozenClock) -> None:
    setup_tiers(loyal)
    update_programme(loyal, tier_window="calendar_year", tier_grace_days=0)
    review(loyal, member, frozen_clock.now())
    review(loyal, member, frozen_clock.now() + timedelta(seconds=1))
    assert tier_progress(loyal, member).review_at == datetime(
        2027, 12, 31, 23, 0, tzinfo=UTC
    )  # 1 Jan 2028, Budapest
    frozen_clock.set(datetime(2028, 1, 1, 0, 0, tzinfo=UTC))
    assert review_tiers(loyal) == {"downgrade": 1}  # nothing earned in 2027, no grace


def test_traits_and_timeline_follow_every_movement(
    loyal: Session, member: str, frozen_clock: FrozenClock
) -> None:
    update_programme(loyal, expiry_months=1)
    adjust_points(loyal, member, 40, reason="goodwill")
    assert {k: v for k, v in traits(loyal, member).items() if k.startswith("points") or k == "tier"} == {
        "points_balance": 40,
        "points_expiring_30d": 0,
    }
    frozen_clock.advance(timedelta(days=5))
    assert notify_expiring(loyal) == 1  # the lot expires on 15 April: within 30 days now
    assert notify_expiring(loyal) == 0  # announced once
    notices = loyal.scalars(select(OutboxEvent).where(OutboxEvent.name == "points.expiring")).all()
    assert [(n.payload["points"], n.payload["expires_at"]) for n in notices] == [
        (40, "2026-04-15T10:00:00+00:00")
    ]
    assert traits(loyal, member)["points_expiring_30d"] == 40
    timeline = [
        (i.kind, i.summary, i.data["points"])
        for i in list_timeline(loyal, member).items
        if i.kind.startswith("loyalty.")
    ]
    assert timeline == [("loyalty.adjust", "Points adjusted", 40)]
    assert reconcile(loyal).ok


def test_an_erased_customer_has_no_loyalty_traits_left(loyal: Session) -> None:
    customer = new_customer(loyal)
    adjust_points(loyal, customer, 10, reason="x")
    erase_customer(loyal, customer)
    with pytest.raises(CustomerErased):
        get_account(loyal, customer)
    row = loyal.scalars(select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer)).one()
    assert (row.status, row.available) == ("erased", 0)
    assert not any(k.startswith("points") for k in traits(loyal, customer))
