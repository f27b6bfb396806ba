"""Business settings, markets and FX rates."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from patron.auth import Perm, Principal
from patron.core.audit import record_audit
from patron.core.business import (
    create_market,
    get_business,
    get_market,
    list_fx_rates,
    list_markets,
    set_fx_rate,
    update_business,
)
from patron.web.deps import DbSession, Requires
from patron.web.problems import problem_responses
from patron.web.routing import PatronRoute

router = APIRouter(route_class=PatronRoute, tags=["settings"], responses=problem_responses(401, 403, 422))


class BusinessRead(BaseModel):
    name: str
    reporting_currency: str
    time_zone: str
    week_start: int
    fiscal_year_start_month: int
    default_language: str


class BusinessUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    reporting_currency: str | None = Field(default=None, min_length=3, max_length=3)
    time_zone: str | None = Field(default=None, max_length=64)
    week_start: int | None = Field(default=None, ge=0, le=6)
    fiscal_year_start_month: int | None = Field(default=None, ge=1, le=12)
    default_language: str | None = Field(default=None, pattern="^(en|vi|hu|th)$")


class MarketRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    code: str
    name: str
    country: str
    currency: str
    locale: str
    time_zone: str
    created_at: datetime


class MarketCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=100)
    country: str = Field(min_length=2, max_length=2)
    currency: str = Field(min_length=3, max_length=3)
    locale: str = Field(min_length=2, max_length=16)
    time_zone: str = Field(min_length=1, max_length=64)


class MarketPage(BaseModel):
    items: list[MarketRead]
    next_cursor: str | None = None


class FxRateRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    base: str
    quote: str
    valid_on: date
    rate: Decimal
    source: str


class FxRateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base: str = Field(min_length=3, max_length=3)
    quote: str = Field(min_length=3, max_length=3)
    valid_on: date
    rate: Decimal = Field(gt=0, max_digits=24, decimal_places=10)
    source: str = Field(default="manual", max_length=100)


class FxRatePage(BaseModel):
    items: list[FxRateRead]
    next_cursor: str | None = None


@router.get("/settings/business", response_model=BusinessRead)
def read_business(db: DbSession, _: Principal = Requires(Perm.SETTINGS_READ)) -> BusinessRead:
    return BusinessRead(**get_business(db).__dict__)


@router.patch("/settings/business", response_model=BusinessRead)
def patch_business(
    body: BusinessUpdate, db: DbSession, _: Principal = Requires(Perm.SETTINGS_WRITE)
) -> BusinessRead:
    old, new = update_business(db, **body.model_dump(exclude_unset=True))
    record_audit(db, "business.updated", "business", None, old=old.__dict__, new=new.__dict__)
    return BusinessRead(**new.__dict__)


@router.get("/markets", response_model=MarketPage)
def list_markets_endpoint(db: DbSession, _: Principal = Requires(Perm.SETTINGS_READ)) -> MarketPage:
    return MarketPage(items=[MarketRead.model_validate(m) for m in list_markets(db)])


@router.post(
    "/markets",
    response_model=MarketRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
)
def create_market_endpoint(
    body: MarketCreate, db: DbSession, _: Principal = Requires(Perm.SETTINGS_WRITE)
) -> MarketRead:
    market = create_market(db, **body.model_dump())
    record_audit(db, "market.created", "market", market.id, new=body.model_dump())
    return MarketRead.model_validate(market)


@router.get("/markets/{market}", response_model=MarketRead, responses=problem_responses(404))
def get_market_endpoint(
    market: str, db: DbSession, _: Principal = Requires(Perm.SETTINGS_READ)
) -> MarketRead:
    return MarketRead.model_validate(get_market(db, market))


@router.get("/fx-rates", response_model=FxRatePage)
def list_fx(db: DbSession, _: Principal = Requires(Perm.SETTINGS_READ)) -> FxRatePage:
    return FxRatePage(items=[FxRateRead.model_validate(r) for r in list_fx_rates(db)])


@router.post("/fx-rates", response_model=FxRateRead, status_code=status.HTTP_201_CREATED)
def create_fx(body: FxRateCreate, db: DbSession, _: Principal = Requires(Perm.SETTINGS_WRITE)) -> FxRateRead:
    row = set_fx_rate(
        db, base=body.base, quote=body.quote, valid_on=body.valid_on, rate=body.rate, source=body.source
    )
    record_audit(db, "fx_rate.set", "fx_rate", row.id, new=body.model_dump())
    return FxRateRead.model_validate(row)
