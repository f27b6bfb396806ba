"""Rewards catalogue and redemption: unique codes, stock, per-customer limits, tier and market
availability, fulfilment, cancellation returning points and stock; member lookup."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from patron.core.clock import FrozenClock
from patron.core.errors import ValidationFailed
from patron.customers import CustomerCreateInput, create_customer
from patron.loyalty import (
    CODE_ALPHABET,
    InsufficientPoints,
    MemberNotFound,
    RewardUnavailable,
    adjust_points,
    cancel_redemption,
    create_reward,
    create_tier,
    find_member,
    fulfil_redemption,
    get_account,
    get_reward,
    list_rewards,
    new_code,
    reconcile,
    redeem_reward,
    reward_name,
)
from tests.commerce.conftest import new_customer

VOUCHER = {
    "kind": "discount_fixed",
    "cost_points": 100,
    "value_amount": "50000",
    "currency": "VND",
    "names": {"en": "50,000 VND voucher", "vi": "Phiếu giảm 50.000 ₫"},
    "stock": 2,
    "limit_per_customer": 1,
}


def test_codes_are_readable_and_unique() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in list(codes)[:50]:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4]
        assert set("".join(groups)) <= set(CODE_ALPHABET)
    assert not set("01OIL") & set(CODE_ALPHABET)


def test_redeem_a_reward_with_stock_and_limits(loyal: Session) -> None:
    reward = create_reward(loyal, VOUCHER)
    assert reward_name(reward, "vi") == "Phiếu giảm 50.000 ₫"
    assert reward_name(reward, "th") == "50,000 VND voucher"
    a, b, c = new_customer(loyal), new_customer(loyal), new_customer(loyal)
    for customer in (a, b, c):
        adjust_points(loyal, customer, 250, reason="opening")
    first = redeem_reward(loyal, a, reward.id, key="r-a")
    assert (first.status, first.points, first.fulfilment_status, first.value_amount, first.currency) == (
        "captured",
        100,
        "pending",
        50000,
        "VND",
    )
    assert first.code is not None
    assert redeem_reward(loyal, a, reward.id, key="r-a").id == first.id  # replay
    with pytest.raises(RewardUnavailable) as limit:
        redeem_reward(loyal, a, reward.id)
    assert (limit.value.code, limit.value.extra) == ("reward_unavailable", {"reason": "limit_reached"})
    assert get_account(loyal, a).available == 150  # the refused attempt changed nothing
    second = redeem_reward(loyal, b, reward.id)
    assert second.code != first.code
    with pytest.raises(RewardUnavailable) as stock:
        redeem_reward(loyal, c, reward.id)
    assert stock.value.extra == {"reason": "out_of_stock"}
    assert (get_account(loyal, c).available, get_reward(loyal, reward.id).stock) == (250, 0)
    assert list_rewards(loyal, customer_id=c) == []

    cancelled = cancel_redemption(loyal, second.id, reason="changed mind")
    assert cancelled.status == "cancelled"
    assert (get_account(loyal, b).available, get_account(loyal, b).lifetime_redeemed) == (250, 0)
    assert get_reward(loyal, reward.id).stock == 1
    assert cancel_redemption(loyal, second.id).replayed is True
    fulfilled = fulfil_redemption(loyal, first.id)
    assert fulfilled.fulfilment_status == "fulfilled"
    with pytest.raises(RewardUnavailable.__mro__[1]) as done:  # Conflict
        cancel_redemption(loyal, first.id)
    assert done.value.code == "invalid_redemption_state"
    assert reconcile(loyal).ok


def test_availability_by_tier_market_and_balance(loyal: Session) -> None:
    create_tier(loyal, {"code": "gold", "rank": 1, "threshold": 1000, "names": {"en": "Gold"}})
    gold_only = create_reward(
        loyal,
        {"kind": "free_shipping", "cost_points": 10, "names": {"en": "Free shipping"}, "tiers": ["gold"]},
    )
    hu_only = create_reward(
        loyal,
        {
            "kind": "discount_percent",
            "percent": "10",
            "cost_points": 10,
            "names": {"en": "10 %"},
            "markets": ["HU"],
        },
    )
    pricey = create_reward(loyal, {"kind": "gift", "cost_points": 500, "names": {"en": "Mug"}})
    customer = new_customer(loyal)
    adjust_points(loyal, customer, 100, reason="opening")
    with pytest.raises(RewardUnavailable) as tier:
        redeem_reward(loyal, customer, gold_only.id)
    assert tier.value.extra == {"reason": "tier"}
    with pytest.raises(RewardUnavailable) as market:
        redeem_reward(loyal, customer, hu_only.id, market_code="VN")
    assert market.value.extra == {"reason": "market"}
    assert redeem_reward(loyal, customer, hu_only.id, market_code="HU").status == "captured"
    with pytest.raises(InsufficientPoints):
        redeem_reward(loyal, customer, pricey.id)
    assert [r.id for r in list_rewards(loyal, customer_id=customer, market="HU")] == [hu_only.id, pricey.id]
    with pytest.raises(ValidationFailed) as bad:
        create_reward(loyal, {"kind": "discount_fixed", "cost_points": 0, "names": {}})
    assert {e["loc"][0] for e in bad.value.errors} == {"names", "cost_points", "currency", "value_amount"}


def test_cancelling_returns_points_to_their_lots(loyal: Session, frozen_clock: FrozenClock) -> None:
    reward = create_reward(loyal, {"kind": "gift", "cost_points": 30, "names": {"en": "Tote bag"}})
    customer = new_customer(loyal)
    adjust_points(loyal, customer, 20, reason="a")
    frozen_clock.advance(timedelta(days=1))
    adjust_points(loyal, customer, 20, reason="b")
    redemption = redeem_reward(loyal, customer, reward.id)
    cancel_redemption(loyal, redemption.id)
    assert get_account(loyal, customer).available == 40
    assert reconcile(loyal).ok


def test_member_lookup(loyal: Session) -> None:
    customer = create_customer(
        loyal,
        CustomerCreateInput(
            first_name="Anna",
            last_name="Kovács",
            email="Anna.Kovacs@example.hu",
            phones=["+36 30 123 4567"],
            external_id="SHOP-77",
            country="HU",
        ),
    ).id
    account = get_account(loyal, customer)
    adjust_points(loyal, customer, 5, reason="x")
    card = get_account(loyal, customer).card_number
    assert account.account_id is None
    assert card is not None
    assert find_member(loyal, card=card).customer_id == customer
    assert find_member(loyal, card=f"patron:card:{card}").customer_id == customer  # QR payload
    assert find_member(loyal, email="anna.kovacs@example.hu").customer_id == customer
    assert find_member(loyal, phone="06 30 123 4567", country="HU").customer_id == customer
    assert find_member(loyal, phone="+36301234567").customer_id == customer
    assert find_member(loyal, external_id="SHOP-77").customer_id == customer
    with pytest.raises(MemberNotFound):
        find_member(loyal, email="nobody@example.hu")
    with pytest.raises(MemberNotFound):
        find_member(loyal, card="9000000000000000")
    with pytest.raises(ValidationFailed):
        find_member(loyal)
