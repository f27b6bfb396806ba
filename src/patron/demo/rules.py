"""Pure rules of the demo generator: phone numbers, email addresses, local shelf prices, order
seasonality. No I/O; every random choice comes from the caller's seeded ``random.Random``."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import TypeVar

from patron.demo.data.calendar import MONTH_WEIGHTS, season_boost
from patron.demo.data.people import PeopleTable

_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
_SPECIAL = str.maketrans({"đ": "d", "Đ": "D"})

T = TypeVar("T")


def pick(rng: random.Random, weighted: Sequence[tuple[T, int]]) -> T:
    """One value from (value, weight) pairs."""
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted], k=1)[0]


def split_counts(total: int, shares: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Split ``total`` by integer shares with the largest-remainder method (exact, deterministic)."""
    weight = sum(s for _, s in shares)
    raw = [(key, total * share / weight) for key, share in shares]
    counts = {key: int(value) for key, value in raw}
    left = total - sum(counts.values())
    by_remainder = sorted(raw, key=lambda kv: (-(kv[1] - int(kv[1])), kv[0]))
    for key, _ in by_remainder[:left]:
        counts[key] += 1
    return counts


def mobile_number(rng: random.Random, table: PeopleTable) -> str:
    """A valid mobile number in E.164 for the table's country."""
    prefix = rng.choice(table.mobile_prefixes)
    if table.country == "US":
        # NXX exchange: first digit 2-9, never N11, and not the fictional 555
        while True:
            exchange = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
            if exchange[1:] != "11" and exchange != "555":
                break
        rest = f"{rng.randrange(10_000):04d}"
        return f"+{table.calling_code}{prefix}{exchange}{rest}"
    first = str(rng.randint(1, 9))
    rest = "".join(str(rng.randint(0, 9)) for _ in range(table.subscriber_digits - 1))
    return f"+{table.calling_code}{prefix}{first}{rest}"


def romanise(name: str, table: PeopleTable) -> str:
    """Latin lower-case letters for an email address: diacritics dropped (đ→d), German umlauts
    spelt out, Thai names through the table's romanisation."""
    if name in table.romanised:
        return table.romanised[name]
    if table.country in {"DE", "AT"}:
        name = name.translate(_GERMAN)
    decomposed = unicodedata.normalize("NFKD", name.translate(_SPECIAL))
    ascii_only = "".join(ch for ch in decomposed if ch.isascii() and (ch.isalnum() or ch in " -"))
    return ascii_only.lower().replace(" ", "").replace("-", "")


def email_local_part(rng: random.Random, given: str, family: str, birth_year: int | None) -> str:
    """Patterns people choose for themselves (``mai.nguyen``, ``kovacsanna85``, ``somchai_j``)."""
    year = str(birth_year % 100).zfill(2) if birth_year else str(rng.randint(1, 99))
    patterns = (
        f"{given}.{family}",
        f"{family}.{given}",
        f"{family}{given}",
        f"{given}{family}{year}",
        f"{given}_{family[:1]}",
        f"{given}.{family}{rng.randint(1, 9)}",
        f"{given}{year}",
    )
    return rng.choices(patterns, weights=(30, 15, 15, 20, 8, 7, 5), k=1)[0]


def local_price(price_eur: Decimal, currency: str, rate: Decimal) -> Decimal:
    """The shelf price in a market: converted, then rounded the way local shops price things
    (VND to thousands, HUF ending in 90, THB in fives, USD ending in .99, EUR as is)."""
    raw = price_eur * rate
    if currency == "EUR":
        return price_eur
    if currency == "VND":
        step = Decimal(1000) if raw < 100_000 else Decimal(5000)
        return (raw / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
    if currency == "HUF":
        hundreds = (raw / 100).quantize(Decimal(1), rounding=ROUND_CEILING)
        return hundreds * 100 - 10
    if currency == "THB":
        return (raw / 5).quantize(Decimal(1), rounding=ROUND_CEILING) * 5
    if currency == "USD":
        return raw.quantize(Decimal(1), rounding=ROUND_CEILING) - Decimal("0.01")
    return raw.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def day_weight(market: str, day: date) -> float:
    """Relative order intensity of a day in a market: month weight × special-day boost."""
    months = MONTH_WEIGHTS[market]
    return months[day.month - 1] / 10 * season_boost(market, day)
