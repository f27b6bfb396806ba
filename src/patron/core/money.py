"""Money: a Decimal amount and an ISO 4217 currency, rounded per currency. Never float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Self

from babel.numbers import get_currency_precision

from patron.core.errors import ValidationFailed

# Minor units stored. ISO 4217 gives HUF two decimals (fillér are gone; HUF is *shown* whole),
# VND none.
_OVERRIDES: dict[str, int] = {"VND": 0, "HUF": 2}
# Digits shown to people; HUF is shown whole in every locale.
_DISPLAY_OVERRIDES: dict[str, int] = {"HUF": 0, "VND": 0}

ROUNDING = ROUND_HALF_UP


def currency_exponent(currency: str) -> int:
    code = currency.upper()
    if code in _OVERRIDES:
        return _OVERRIDES[code]
    return int(get_currency_precision(code))


def display_exponent(currency: str) -> int:
    code = currency.upper()
    return _DISPLAY_OVERRIDES.get(code, currency_exponent(code))


def is_known_currency(currency: str) -> bool:
    from babel.numbers import list_currencies

    return len(currency) == 3 and currency.upper() in list_currencies()


def quantize(amount: Decimal, currency: str, rounding: str = ROUNDING) -> Decimal:
    exp = currency_exponent(currency)
    return amount.quantize(Decimal(1).scaleb(-exp), rounding=rounding)


def parse_decimal(value: object) -> Decimal:
    """Parse an amount from a string/int/Decimal; floats are refused (they are not money)."""
    if isinstance(value, bool | float):
        raise ValidationFailed("amount must be a decimal string, not a float", code="invalid_amount")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValidationFailed(f"not a decimal amount: {value!r}", code="invalid_amount") from exc
    else:
        raise ValidationFailed(f"not a decimal amount: {value!r}", code="invalid_amount")
    if not result.is_finite():
        raise ValidationFailed("amount must be finite", code="invalid_amount")
    return result


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        code = self.currency.upper()
        if not is_known_currency(code):
            raise ValidationFailed(f"unknown currency {self.currency!r}", code="invalid_currency")
        object.__setattr__(self, "currency", code)
        object.__setattr__(self, "amount", quantize(parse_decimal(self.amount), code))

    @classmethod
    def of(cls, amount: object, currency: str) -> Self:
        return cls(parse_decimal(amount), currency)

    @classmethod
    def zero(cls, currency: str) -> Self:
        return cls(Decimal(0), currency)

    def _check(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValidationFailed(
                f"cannot combine {self.currency} with {other.currency}", code="currency_mismatch"
            )

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, float):
            raise TypeError("multiply money by int or Decimal, not float")
        return Money(self.amount * factor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._check(other)
        return self.amount <= other.amount

    def convert(self, currency: str, rate: Decimal) -> Money:
        """Convert with ``rate`` = units of ``currency`` per one unit of ``self.currency``."""
        return Money(self.amount * rate, currency)

    def allocate(self, weights: list[int | Decimal]) -> list[Money]:
        """Split into parts proportional to ``weights`` that add up exactly (largest remainder)."""
        if not weights or sum(weights) <= 0:
            raise ValidationFailed("weights must be positive", code="invalid_allocation")
        exp = currency_exponent(self.currency)
        unit = Decimal(1).scaleb(-exp)
        total = Decimal(sum(weights))
        raw = [self.amount * Decimal(w) / total for w in weights]
        floors = [r.quantize(unit, rounding="ROUND_FLOOR") for r in raw]
        remainder = int(((self.amount - sum(floors)) / unit).to_integral_value(ROUND_HALF_EVEN))
        order = sorted(range(len(raw)), key=lambda i: (floors[i] - raw[i], i))
        for i in order[:remainder]:
            floors[i] += unit
        return [Money(f, self.currency) for f in floors]

    def to_wire(self) -> dict[str, str]:
        return {"amount": str(self.amount), "currency": self.currency}

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
