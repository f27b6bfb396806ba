"""Shopping seasons per market: month weights and the dates that move sales (Tết, Songkran,
Mid-Autumn, Christmas, Black Friday, the 11.11 and 12.12 marketplace days)."""

from __future__ import annotations

from datetime import date

# Lunar New Year (Tết) — the first day of the lunar year
LUNAR_NEW_YEAR: dict[int, date] = {
    2020: date(2020, 1, 25),
    2021: date(2021, 2, 12),
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
    2031: date(2031, 1, 23),
    2032: date(2032, 2, 11),
}

# Mid-Autumn festival (Tết Trung thu, 15th day of the 8th lunar month): mooncake season before it
MID_AUTUMN: dict[int, date] = {
    2020: date(2020, 10, 1),
    2021: date(2021, 9, 21),
    2022: date(2022, 9, 10),
    2023: date(2023, 9, 29),
    2024: date(2024, 9, 17),
    2025: date(2025, 10, 6),
    2026: date(2026, 9, 25),
    2027: date(2027, 9, 15),
    2028: date(2028, 10, 3),
    2029: date(2029, 9, 22),
    2030: date(2030, 9, 12),
    2031: date(2031, 10, 1),
    2032: date(2032, 9, 19),
}

# relative weight of each month (January first) per market
MONTH_WEIGHTS: dict[str, tuple[int, ...]] = {
    "VN": (14, 12, 8, 8, 9, 9, 8, 8, 11, 10, 12, 13),
    "HU": (8, 9, 9, 9, 9, 7, 6, 7, 9, 10, 13, 18),
    "TH": (10, 9, 10, 13, 9, 8, 8, 8, 9, 9, 12, 14),
    "EU": (8, 8, 9, 9, 9, 8, 7, 7, 9, 10, 13, 18),
    "US": (8, 8, 9, 9, 9, 8, 8, 8, 9, 10, 14, 17),
}


def _black_friday(year: int) -> date:
    """The day after the fourth Thursday of November."""
    first = date(year, 11, 1)
    thursday = 1 + (3 - first.weekday()) % 7
    return date(year, 11, thursday + 21 + 1)


def season_boost(market: str, day: date) -> float:
    """A multiplier (≥ 1) for special shopping days in a market."""
    boost = 1.0
    if market == "VN":
        for new_year in (LUNAR_NEW_YEAR.get(day.year), LUNAR_NEW_YEAR.get(day.year + 1)):
            if new_year is not None and 0 <= (new_year - day).days <= 21:
                boost *= 2.6
        mid = MID_AUTUMN.get(day.year)
        if mid is not None and 0 <= (mid - day).days <= 20:
            boost *= 1.6
    if market == "TH" and day.month == 4 and 5 <= day.day <= 15:
        boost *= 1.8  # Songkran
    if market in {"VN", "TH"} and (day.month, day.day) in {(11, 11), (12, 12), (9, 9), (10, 10)}:
        boost *= 3.0  # marketplace double days
    if market in {"HU", "EU", "US"}:
        friday = _black_friday(day.year)
        if 0 <= (day - friday).days <= 3:
            boost *= 3.0  # Black Friday to Cyber Monday
        if day.month == 12 and 1 <= day.day <= 20:
            boost *= 1.5
        if day.month == 12 and day.day >= 24:
            boost *= 0.4
    return boost
