from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patron.core.errors import ValidationFailed
from patron.core.money import Money, currency_exponent, display_exponent, quantize

CURRENCIES = ["VND", "HUF", "THB", "EUR", "USD", "JPY"]
amounts = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False, places=6)


def test_exponents_per_currency() -> None:
    assert currency_exponent("VND") == 0
    assert currency_exponent("HUF") == 2
    assert display_exponent("HUF") == 0
    assert currency_exponent("THB") == 2
    assert currency_exponent("EUR") == 2
    assert currency_exponent("JPY") == 0


def test_rounding_half_up_per_currency() -> None:
    assert Money.of("10000.5", "VND").amount == Decimal("10001")
    assert Money.of("1.005", "EUR").amount == Decimal("1.01")
    assert Money.of("1.004", "EUR").amount == Decimal("1.00")
    assert Money.of("-2.5", "VND").amount == Decimal("-3")


def test_floats_and_bools_are_refused() -> None:
    with pytest.raises(ValidationFailed) as err:
        Money.of(1.5, "EUR")
    assert err.value.code == "invalid_amount"
    with pytest.raises(ValidationFailed):
        Money.of(True, "EUR")
    with pytest.raises(ValidationFailed) as err2:
        Money.of("abc", "EUR")
    assert err2.value.code == "invalid_amount"


def test_unknown_currency() -> None:
    with pytest.raises(ValidationFailed) as err:
        Money.of("1", "XYZ")
    assert err.value.code == "invalid_currency"


def test_mixing_currencies_is_refused() -> None:
    with pytest.raises(ValidationFailed) as err:
        Money.of("1", "EUR") + Money.of("1", "USD")
    assert err.value.code == "currency_mismatch"


def test_wire_format_is_decimal_string() -> None:
    assert Money.of("1234.5", "THB").to_wire() == {"amount": "1234.50", "currency": "THB"}
    assert Money.of("1234567", "VND").to_wire() == {"amount": "1234567", "currency": "VND"}


@given(amount=amounts, currency=st.sampled_from(CURRENCIES))
def test_quantized_amount_has_currency_digits(amount: Decimal, currency: str) -> None:
    money = Money(amount, currency)
    exponent = currency_exponent(currency)
    assert money.amount == quantize(money.amount, currency)
    assert -money.amount.as_tuple().exponent == exponent  # type: ignore[operator]
    assert abs(money.amount - amount) <= Decimal(1).scaleb(-exponent) / 2


@given(
    amount=amounts,
    currency=st.sampled_from(CURRENCIES),
    weights=st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=12),
)
def test_allocation_adds_up_exactly(amount: Decimal, currency: str, weights: list[int]) -> None:
    money = Money(amount, currency)
    parts = money.allocate(list(weights))
    assert sum((p.amount for p in parts), Decimal(0)) == money.amount
    assert all(p.currency == currency for p in parts)
    unit = Decimal(1).scaleb(-currency_exponent(currency))
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part.amount - money.amount * weight / total) < unit


@given(a=amounts, b=amounts, currency=st.sampled_from(CURRENCIES))
def test_addition_is_exact_after_rounding(a: Decimal, b: Decimal, currency: str) -> None:
    x, y = Money(a, currency), Money(b, currency)
    assert (x + y).amount == x.amount + y.amount
    assert (x + y - y) == x
