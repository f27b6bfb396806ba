"""Coupons: generation (unique, readable), validate with a stable reason for every refusal,
redeem once per key, single-use, multi-use, per-customer limits, minimum spend, expiry, market,
stacking; pure refusal rules property-tested."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from patron.core.clock import FrozenClock
from patron.loyalty import (
    CODE_ALPHABET,
    CouponRefused,
    create_promotion,
    generate_coupons,
    iter_coupons,
    redeem_coupon,
    rules,
    validate_coupon,
)
from tests.commerce.conftest import new_customer

VND = "VND"


def promo(session: Session, **values: object) -> str:
    base: dict[str, object] = {"name": "Tết", "discount_kind": "fixed", "amount": "50000", "currency": VND}
    base.update(values)
    return create_promotion(session, base).id


def test_generation_makes_unique_readable_codes(loyal: Session) -> None:
    promotion = promo(loyal)
    codes = generate_coupons(loyal, promotion, 500, prefix="tet")
    assert len(set(codes)) == 500
    for code in codes:
        prefix, *groups = code.split("-")
        assert prefix == "TET"
        assert [len(g) for g in groups] == [4, 4, 4]
        assert set("".join(groups)) <= set(CODE_ALPHABET)
    assert sorted(c for c, _, _ in iter_coupons(loyal, promotion)) == sorted(codes)


def test_a_single_use_code_is_redeemed_once(loyal: Session) -> None:
    (code,) = generate_coupons(loyal, promo(loyal), 1)
    check = validate_coupon(loyal, code.lower(), order_total=Decimal(200000), currency=VND)
    assert (check.valid, check.reason, check.discount) == (
        True,
        None,
        {"type": "fixed", "amount": "50000", "currency": VND},
    )
    first = redeem_coupon(loyal, code, order_total=Decimal(200000), currency=VND, key="order-1")
    assert redeem_coupon(loyal, code, order_total=Decimal(200000), currency=VND, key="order-1").id == first.id
    with pytest.raises(CouponRefused) as refused:
        redeem_coupon(loyal, code, order_total=Decimal(200000), currency=VND, key="order-2")
    assert (refused.value.code, refused.value.status) == ("used_up", 409)
    assert validate_coupon(loyal, code, order_total=Decimal(1), currency=VND).reason == "used_up"
    assert validate_coupon(loyal, "NOPE-NOPE", order_total=Decimal(1), currency=VND).reason == "unknown_code"


def test_refusal_reasons(loyal: Session, frozen_clock: FrozenClock) -> None:
    start = frozen_clock.now()
    windowed = generate_coupons(
        loyal,
        promo(
            loyal,
            starts_at=(start + timedelta(days=1)).isoformat(),
            expires_at=(start + timedelta(days=2)).isoformat(),
            min_spend={VND: "300000"},
            markets=["VN"],
        ),
        1,
    )[0]

    def reason(code: str, total: str = "400000", currency: str = VND, **kw: object) -> str | None:
        return validate_coupon(loyal, code, order_total=Decimal(total), currency=currency, **kw).reason  # type: ignore[arg-type]

    assert reason(windowed, market="VN") == "not_started"
    frozen_clock.advance(timedelta(days=1))
    assert reason(windowed, market="HU") == "wrong_market"
    assert reason(windowed, market="VN", currency="HUF") == "currency_mismatch"
    assert reason(windowed, total="299999", market="VN") == "min_spend_not_met"
    assert reason(windowed, market="VN") is None
    frozen_clock.advance(timedelta(days=1))
    assert reason(windowed, market="VN") == "expired"
    inactive = generate_coupons(loyal, promo(loyal, active=False), 1)[0]
    assert reason(inactive) == "inactive"
    customer, other = new_customer(loyal), new_customer(loyal)
    personal = generate_coupons(loyal, promo(loyal), 1, customer_id=customer)[0]
    assert reason(personal, customer_id=other) == "not_for_customer"
    assert reason(personal, customer_id=customer) is None


def test_multi_use_with_per_customer_limit_and_stacking(loyal: Session) -> None:
    shared = generate_coupons(
        loyal,
        promo(
            loyal,
            discount_kind="percent",
            percent="10",
            usage="multi_use",
            max_redemptions=3,
            limit_per_customer=1,
            stackable=True,
        ),
        1,
    )[0]
    exclusive = generate_coupons(loyal, promo(loyal), 1)[0]
    shipping = generate_coupons(
        loyal, promo(loyal, discount_kind="free_shipping", stackable=True, usage="multi_use"), 1
    )[0]
    a, b, c, d = (new_customer(loyal) for _ in range(4))
    assert (
        validate_coupon(loyal, shared, order_total=Decimal("123457"), currency=VND).reason
        == "customer_required"
    )
    check = validate_coupon(loyal, shared, order_total=Decimal("123457"), currency=VND, customer_id=a)
    assert check.discount == {"type": "percent", "percent": "10", "amount": "12346", "currency": VND}
    redeem_coupon(loyal, shared, order_total=Decimal(100), currency=VND, customer_id=a)
    with pytest.raises(CouponRefused) as again:
        redeem_coupon(loyal, shared, order_total=Decimal(100), currency=VND, customer_id=a)
    assert again.value.code == "customer_limit_reached"
    redeem_coupon(loyal, shared, order_total=Decimal(100), currency=VND, customer_id=b)
    redeem_coupon(loyal, shared, order_total=Decimal(100), currency=VND, customer_id=c)
    assert (
        validate_coupon(loyal, shared, order_total=Decimal(100), currency=VND, customer_id=d).reason
        == "used_up"
    )
    assert (
        validate_coupon(
            loyal, shipping, order_total=Decimal(1), currency=VND, applied_codes=[exclusive]
        ).reason
        == "not_stackable"
    )
    assert (
        validate_coupon(
            loyal, exclusive, order_total=Decimal(1), currency=VND, applied_codes=[shipping]
        ).reason
        == "not_stackable"
    )
    ok = validate_coupon(
        loyal, shipping, order_total=Decimal(1), currency=VND, applied_codes=[shared, shipping]
    )
    assert (ok.valid, ok.discount) == (True, {"type": "free_shipping"})


AT = datetime(2026, 3, 15, tzinfo=UTC)


@given(
    st.integers(0, 5),
    st.integers(1, 5),
    st.integers(0, 5),
    st.integers(1, 3),
    st.decimals(min_value=0, max_value=10**7, places=0),
    st.decimals(min_value=0, max_value=10**7, places=0),
)
def test_refusals_follow_the_limits(
    redemptions: int, max_redemptions: int, uses: int, limit: int, total: Decimal, minimum: Decimal
) -> None:
    spec = rules.CouponSpec(
        "fixed",
        amount=Decimal(100),
        currency=VND,
        max_redemptions=max_redemptions,
        limit_per_customer=limit,
        min_spend={VND: minimum},
    )
    reason = rules.coupon_refusal(
        spec,
        redemptions=redemptions,
        order_total=total,
        currency=VND,
        at=AT,
        customer_id="c",
        customer_uses=uses,
    )
    expected = (
        "min_spend_not_met"
        if total < minimum
        else "used_up"
        if redemptions >= max_redemptions
        else "customer_limit_reached"
        if uses >= limit
        else None
    )
    assert reason == expected
    if reason is None:
        discount = rules.coupon_discount(spec, total, VND, 0)
        assert Decimal(discount["amount"]) == min(Decimal(100), total)
