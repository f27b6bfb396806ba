"""Business settings (reporting currency, time zone, week start, fiscal year), markets and dated
FX rates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, available_timezones

from babel import Locale, UnknownLocaleError
from sqlalchemy import Date, Integer, Numeric, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from patron.core.db import Base, created_at_column, id_column, updated_at_column
from patron.core.errors import Conflict, NotFound, ValidationFailed
from patron.core.money import Money, is_known_currency

SETTINGS_ID = 1


class BusinessSettings(Base):
    __tablename__ = "business_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=SETTINGS_ID)
    name: Mapped[str] = mapped_column(String(200), default="My business")
    reporting_currency: Mapped[str] = mapped_column(String(3), default="EUR")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    week_start: Mapped[int] = mapped_column(Integer, default=0)  # 0 = Monday
    fiscal_year_start_month: Mapped[int] = mapped_column(Integer, default=1)
    default_language: Mapped[str] = mapped_column(String(8), default="en")
    updated_at: Mapped[datetime] = updated_at_column()


class Market(Base):
    __tablename__ = "markets"

    id: Mapped[str] = id_column()
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    locale: Mapped[str] = mapped_column(String(16))
    time_zone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class FxRate(Base):
    """``rate`` = units of ``quote`` currency for one unit of ``base``, valid from ``valid_on``."""

    __tablename__ = "fx_rates"
    __table_args__ = (UniqueConstraint("base", "quote", "valid_on"),)

    id: Mapped[str] = id_column()
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    valid_on: Mapped[date] = mapped_column(Date)
    rate: Mapped[Decimal] = mapped_column(Numeric(24, 10))
    source: Mapped[str] = mapped_column(String(100), default="manual")
    created_at: Mapped[datetime] = created_at_column()


@dataclass(frozen=True)
class BusinessInfo:
    name: str
    reporting_currency: str
    time_zone: str
    week_start: int
    fiscal_year_start_month: int
    default_language: str


def validate_time_zone(tz: str) -> str:
    if tz not in _zones():
        raise ValidationFailed(f"unknown time zone {tz!r}", code="invalid_time_zone")
    return tz


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
        _ZONES.add("UTC")
    return _ZONES


def validate_currency(currency: str) -> str:
    if not is_known_currency(currency):
        raise ValidationFailed(f"unknown currency {currency!r}", code="invalid_currency")
    return currency.upper()


def validate_locale(locale: str) -> str:
    try:
        Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as exc:
        raise ValidationFailed(f"unknown locale {locale!r}", code="invalid_locale") from exc
    return locale


def get_business(session: Session) -> BusinessInfo:
    row = session.get(BusinessSettings, SETTINGS_ID)
    if row is None:
        return BusinessInfo("My business", "EUR", "UTC", 0, 1, "en")
    return BusinessInfo(
        row.name,
        row.reporting_currency,
        row.time_zone,
        row.week_start,
        row.fiscal_year_start_month,
        row.default_language,
    )


def update_business(session: Session, **changes: object) -> tuple[BusinessInfo, BusinessInfo]:
    """Apply changes; returns (old, new)."""
    old = get_business(session)
    row = session.get(BusinessSettings, SETTINGS_ID)
    if row is None:
        row = BusinessSettings(id=SETTINGS_ID)
        session.add(row)
    for key, value in changes.items():
        if value is None:
            continue
        if key == "reporting_currency":
            value = validate_currency(str(value))
        elif key == "time_zone":
            value = validate_time_zone(str(value))
        elif key == "week_start" and not (isinstance(value, int) and 0 <= value <= 6):
            raise ValidationFailed("week_start must be 0 (Monday) to 6 (Sunday)", code="invalid_week_start")
        elif key == "fiscal_year_start_month" and not (isinstance(value, int) and 1 <= value <= 12):
            raise ValidationFailed("fiscal_year_start_month must be 1..12", code="invalid_month")
        elif key not in {"name", "default_language", "week_start", "fiscal_year_start_month"}:
            raise ValidationFailed(f"unknown setting {key!r}", code="unknown_setting")
        setattr(row, key, value)
    session.flush()
    return old, get_business(session)


def list_markets(session: Session) -> list[Market]:
    return list(session.scalars(select(Market).order_by(Market.code)))


def get_market(session: Session, market_id_or_code: str) -> Market:
    market = session.get(Market, market_id_or_code) or session.scalar(
        select(Market).where(Market.code == market_id_or_code)
    )
    if market is None:
        raise NotFound(f"market {market_id_or_code!r} not found", code="market_not_found")
    return market


def create_market(
    session: Session, *, code: str, name: str, country: str, currency: str, locale: str, time_zone: str
) -> Market:
    if session.scalar(select(Market).where(Market.code == code)) is not None:
        raise Conflict(f"market {code!r} exists", code="duplicate_market")
    if len(country) != 2 or not country.isalpha():
        raise ValidationFailed("country must be an ISO 3166-1 alpha-2 code", code="invalid_country")
    market = Market(
        code=code,
        name=name,
        country=country.upper(),
        currency=validate_currency(currency),
        locale=validate_locale(locale),
        time_zone=validate_time_zone(time_zone),
    )
    session.add(market)
    session.flush()
    return market


def set_fx_rate(
    session: Session, *, base: str, quote: str, valid_on: date, rate: Decimal, source: str = "manual"
) -> FxRate:
    base, quote = validate_currency(base), validate_currency(quote)
    if rate <= 0:
        raise ValidationFailed("rate must be positive", code="invalid_rate")
    row = session.scalar(
        select(FxRate).where(FxRate.base == base, FxRate.quote == quote, FxRate.valid_on == valid_on)
    )
    if row is None:
        row = FxRate(base=base, quote=quote, valid_on=valid_on, rate=rate, source=source)
        session.add(row)
    else:
        row.rate, row.source = rate, source
    session.flush()
    return row


def list_fx_rates(session: Session, *, limit: int = 500) -> list[FxRate]:
    return list(
        session.scalars(
            select(FxRate).order_by(FxRate.valid_on.desc(), FxRate.base, FxRate.quote).limit(limit)
        )
    )


def fx_rate(session: Session, base: str, quote: str, on: date) -> Decimal:
    """The rate in force on ``on`` (latest ``valid_on`` ≤ on); inverse rates are used when needed."""
    base, quote = base.upper(), quote.upper()
    if base == quote:
        return Decimal(1)
    direct = session.scalar(
        select(FxRate.rate)
        .where(FxRate.base == base, FxRate.quote == quote, FxRate.valid_on <= on)
        .order_by(FxRate.valid_on.desc())
        .limit(1)
    )
    if direct is not None:
        return Decimal(direct)
    inverse = session.scalar(
        select(FxRate.rate)
        .where(FxRate.base == quote, FxRate.quote == base, FxRate.valid_on <= on)
        .order_by(FxRate.valid_on.desc())
        .limit(1)
    )
    if inverse is not None:
        return Decimal(1) / Decimal(inverse)
    raise NotFound(f"no FX rate {base}->{quote} on or before {on.isoformat()}", code="fx_rate_missing")


def to_reporting(session: Session, money: Money, on: date) -> Money:
    target = get_business(session).reporting_currency
    return money.convert(target, fx_rate(session, money.currency, target, on))


def business_zone(session: Session) -> ZoneInfo:
    return ZoneInfo(get_business(session).time_zone)
