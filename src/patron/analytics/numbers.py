"""Exact ratios and JSON-safe numbers: Decimal inside, never NaN outside (None where undefined)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from patron.core.money import currency_exponent

RATE_PLACES = Decimal("0.000001")


def ratio(numerator: int | Decimal, denominator: int | Decimal) -> Decimal | None:
    """numerator / denominator, or None when the denominator is zero (the figure is undefined)."""
    if denominator == 0:
        return None
    return Decimal(numerator) / Decimal(denominator)


def rate(value: Decimal | float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    return float(value.quantize(RATE_PLACES))


def money(value: Decimal | None, currency: str | None) -> float | None:
    if value is None:
        return None
    places = currency_exponent(currency) if currency else 2
    return float(value.quantize(Decimal(1).scaleb(-places)))


def finite(value: Any) -> float | None:
    """A float for JSON, or None for NaN/inf/None."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def money_from_float(value: float, currency: str | None) -> float | None:
    """A model's float amount rounded like money, or None when it is not finite."""
    if not math.isfinite(value):
        return None
    return money(Decimal(repr(float(value))), currency)
