"""Liability and breakage (definitions and worked examples in docs/loyalty.md).

- **Outstanding points** of an active account: available + pending + held (debt is not netted).
- Each account belongs to a **home market**: the market of its most recent order earning, else the
  market whose country is the customer's country, else it is *unassigned*.
- **Liability** per market: outstanding points × the market's point value, in the market's currency
  and in the reporting currency (FX rate on the as-of date, business time zone). Unassigned points and
  markets without loyalty settings are reported as points without a value.
- **Breakage rate** (history): over every lot whose expiry has passed by the as-of date, the points
  that expired unredeemed ÷ the points credited. **Expected breakage**: outstanding points × rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import String, Table, column, func, select, table
from sqlalchemy.orm import Session

from patron.core.business import Market, business_zone, fx_rate, get_business
from patron.core.clock import now
from patron.core.errors import PatronError
from patron.core.money import quantize
from patron.loyalty.models import (
    LoyaltyAccount,
    LoyaltyEntry,
    LoyaltyLot,
    LoyaltyLotUse,
    LoyaltyMarket,
    LoyaltyOrderEarning,
)

_ACCOUNTS = cast(Table, LoyaltyAccount.__table__)
_EARNINGS = cast(Table, LoyaltyOrderEarning.__table__)
_LOTS = cast(Table, LoyaltyLot.__table__)
_USES = cast(Table, LoyaltyLotUse.__table__)
_ENTRIES = cast(Table, LoyaltyEntry.__table__)
# the customers table, read only for the customer's country (as commerce reads it)
_customers = table("customers", column("id", String), column("country", String))


@dataclass(frozen=True)
class MarketLiability:
    market_code: str | None  # None: unassigned
    currency: str | None
    points: int
    value: Decimal | None
    reporting_value: Decimal | None


@dataclass(frozen=True)
class LiabilityReport:
    as_of: datetime
    reporting_currency: str
    markets: tuple[MarketLiability, ...]
    total_points: int
    total_reporting_value: Decimal
    breakage_rate: Decimal | None
    expected_breakage_points: int | None
    expected_breakage_value: Decimal | None


def home_markets(session: Session) -> dict[str, tuple[str | None, int]]:
    """{account id: (home market code or None, outstanding points)} for active accounts with points."""
    latest = (
        select(_EARNINGS.c.market_code)
        .where(_EARNINGS.c.account_id == _ACCOUNTS.c.id, _EARNINGS.c.market_code.is_not(None))
        .order_by(_EARNINGS.c.placed_at.desc())
        .limit(1)
        .correlate(_ACCOUNTS)
        .scalar_subquery()
    )
    by_country = (
        select(Market.code)
        .where(Market.country == _customers.c.country)
        .order_by(Market.code)
        .limit(1)
        .correlate(_customers)
        .scalar_subquery()
    )
    outstanding = _ACCOUNTS.c.available + _ACCOUNTS.c.pending + _ACCOUNTS.c.held
    rows = session.execute(
        select(_ACCOUNTS.c.id, func.coalesce(latest, by_country), outstanding)
        .select_from(_ACCOUNTS.join(_customers, _customers.c.id == _ACCOUNTS.c.customer_id))
        .where(_ACCOUNTS.c.status == "active", outstanding > 0)
    ).all()
    return {str(a): (None if m is None else str(m), int(p)) for a, m, p in rows}


def breakage_rate(session: Session, as_of: datetime) -> tuple[int, int]:
    """(points credited, points expired unredeemed) over lots whose expiry has passed by ``as_of``."""
    credited = session.scalar(
        select(func.coalesce(func.sum(_LOTS.c.points), 0)).where(
            _LOTS.c.expires_at.is_not(None), _LOTS.c.expires_at <= as_of
        )
    )
    expired = session.scalar(
        select(func.coalesce(func.sum(_USES.c.points), 0))
        .select_from(
            _USES.join(_LOTS, _LOTS.c.id == _USES.c.lot_id).join(_ENTRIES, _ENTRIES.c.id == _USES.c.entry_id)
        )
        .where(_LOTS.c.expires_at.is_not(None), _LOTS.c.expires_at <= as_of, _ENTRIES.c.kind == "expire")
    )
    return int(credited or 0), int(expired or 0)


def liability(session: Session, *, as_of: datetime | None = None) -> LiabilityReport:
    when = as_of or now()
    business = get_business(session)
    on = when.astimezone(business_zone(session)).date()
    settings = {
        str(m.market_code): (m.currency, Decimal(m.point_value_amount))
        for m in session.scalars(select(LoyaltyMarket))
    }
    points_by_market: dict[str | None, int] = {}
    for market, points in home_markets(session).values():
        points_by_market[market] = points_by_market.get(market, 0) + points
    rows: list[MarketLiability] = []
    total_reporting = Decimal(0)
    for market in sorted(points_by_market, key=lambda m: (m is None, m or "")):
        points = points_by_market[market]
        setting = settings.get(market) if market is not None else None
        if setting is None:
            rows.append(MarketLiability(market, None, points, None, None))
            continue
        currency, per_point = setting
        value = quantize(Decimal(points) * per_point, currency)
        try:
            rate = fx_rate(session, currency, business.reporting_currency, on)
            reporting = quantize(value * rate, business.reporting_currency)
        except PatronError:
            reporting = None
        if reporting is not None:
            total_reporting += reporting
        rows.append(MarketLiability(market, currency, points, value, reporting))
    credited, expired = breakage_rate(session, when)
    rate_value = None if credited == 0 else (Decimal(expired) / Decimal(credited)).quantize(Decimal("0.0001"))
    total_points = sum(points_by_market.values())
    expected_points = None if rate_value is None else int(Decimal(total_points) * rate_value)
    expected_value = (
        None if rate_value is None else quantize(total_reporting * rate_value, business.reporting_currency)
    )
    return LiabilityReport(
        as_of=when,
        reporting_currency=business.reporting_currency,
        markets=tuple(rows),
        total_points=total_points,
        total_reporting_value=quantize(total_reporting, business.reporting_currency),
        breakage_rate=rate_value,
        expected_breakage_points=expected_points,
        expected_breakage_value=expected_value,
    )
