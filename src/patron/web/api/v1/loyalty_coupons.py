"""Coupons and promo codes: promotions and their generated codes (``/loyalty/promotions``), and the
checkout endpoints ``POST /coupons/validate`` (200 with ``valid``/``reason``/``discount``) and
``POST /coupons/redeem`` (201, or 409 problem+json whose ``code`` is the refusal reason; idempotent
with ``Idempotency-Key``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from patron.auth import Perm, Principal
from patron.loyalty import (
    CouponCheck,
    CouponRedemptionView,
    PromotionView,
    create_promotion,
    generate_coupons,
    get_promotion,
    iter_coupons,
    list_coupons,
    list_promotions,
    redeem_coupon,
    update_promotion,
    validate_coupon,
)
from patron.web.api.v1.fields import Amount, Text
from patron.web.deps import DbSession, IfMatch, Requires, check_if_match, make_etag, set_etag
from patron.web.problems import problem_responses
from patron.web.routing import IDEMPOTENCY_HEADER, PatronRoute, read_only

router = APIRouter(route_class=PatronRoute, tags=["coupons"], responses=problem_responses(401, 403, 422))


Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code", examples=["VND"])]


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


class PromotionWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=200)
    discount_kind: Literal["fixed", "percent", "free_shipping"]
    amount: Amount | None = Field(default=None, description="fixed: the amount off, in currency")
    currency: Currency | None = None
    percent: Amount | None = Field(default=None, description="percent: 0 < percent ≤ 100")
    min_spend: dict[Currency, Amount] = Field(
        default_factory=dict, description="minimum order total per currency"
    )
    markets: list[Annotated[Text, Field(max_length=20)]] = Field(default_factory=list, max_length=50)
    usage: Literal["single_use", "multi_use"] = "single_use"
    max_redemptions: StrictInt | None = Field(default=None, ge=1, le=10**9, description="multi_use: per code")
    limit_per_customer: StrictInt | None = Field(default=None, ge=1, le=10**9)
    stackable: StrictBool = Field(default=False, description="may be combined with other stackable codes")
    starts_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    active: StrictBool = True


class PromotionRead(BaseModel):
    id: str
    name: str
    discount_kind: str
    amount: str | None
    currency: str | None
    percent: str | None
    min_spend: dict[str, str]
    markets: list[str]
    usage: str
    max_redemptions: int | None
    limit_per_customer: int | None
    stackable: bool
    starts_at: datetime | None
    expires_at: datetime | None
    active: bool
    version: int
    created_at: datetime


class PromotionList(BaseModel):
    items: list[PromotionRead]


def _promotion(view: PromotionView, response: Response | None = None) -> PromotionRead:
    if response is not None:
        set_etag(response, make_etag("promotion", view.id, view.version))
    values: dict[str, Any] = dict(view.__dict__)
    values["amount"] = None if view.amount is None else _plain(view.amount)
    values["percent"] = None if view.percent is None else _plain(view.percent)
    values["min_spend"] = {k: _plain(v) for k, v in view.min_spend.items()}
    return PromotionRead(**values)


@router.get("/loyalty/promotions", response_model=PromotionList)
def list_promotions_endpoint(db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)) -> PromotionList:
    return PromotionList(items=[_promotion(p) for p in list_promotions(db)])


@router.post("/loyalty/promotions", response_model=PromotionRead, status_code=status.HTTP_201_CREATED)
def create_promotion_endpoint(
    body: PromotionWrite, response: Response, db: DbSession, _: Principal = Requires(Perm.LOYALTY_WRITE)
) -> PromotionRead:
    view = create_promotion(db, body.model_dump())
    response.headers["Location"] = f"/api/v1/loyalty/promotions/{view.id}"
    return _promotion(view, response)


@router.get(
    "/loyalty/promotions/{promotion_id}", response_model=PromotionRead, responses=problem_responses(404)
)
def get_promotion_endpoint(
    promotion_id: str, response: Response, db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)
) -> PromotionRead:
    return _promotion(get_promotion(db, promotion_id), response)


@router.put(
    "/loyalty/promotions/{promotion_id}",
    response_model=PromotionRead,
    responses=problem_responses(404, 409, 412),
)
def update_promotion_endpoint(
    promotion_id: str,
    body: PromotionWrite,
    response: Response,
    db: DbSession,
    _: Principal = Requires(Perm.LOYALTY_WRITE),
    if_match: IfMatch = None,
) -> PromotionRead:
    current = get_promotion(db, promotion_id)
    check_if_match(if_match, make_etag("promotion", current.id, current.version))
    return _promotion(update_promotion(db, promotion_id, body.model_dump()), response)


class GenerateCodes(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: StrictInt = Field(ge=1, le=100_000)
    prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,12}$")
    customer_id: Text | None = Field(
        default=None, max_length=36, description="personal codes for one customer"
    )


class GeneratedCodes(BaseModel):
    generated: int
    codes: list[str]


@router.post(
    "/loyalty/promotions/{promotion_id}/codes",
    response_model=GeneratedCodes,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409),
)
def generate_codes_endpoint(
    promotion_id: str, body: GenerateCodes, db: DbSession, _: Principal = Requires(Perm.LOYALTY_WRITE)
) -> GeneratedCodes:
    codes = generate_coupons(db, promotion_id, body.count, prefix=body.prefix, customer_id=body.customer_id)
    return GeneratedCodes(generated=len(codes), codes=sorted(codes))


class CouponRead(BaseModel):
    code: str
    redemptions: int
    customer_id: str | None


class CouponPage(BaseModel):
    items: list[CouponRead]
    next_cursor: str | None = None


@router.get(
    "/loyalty/promotions/{promotion_id}/codes", response_model=CouponPage, responses=problem_responses(404)
)
def list_codes_endpoint(
    promotion_id: str,
    db: DbSession,
    _: Principal = Requires(Perm.LOYALTY_READ),
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
) -> CouponPage:
    page = list_coupons(db, promotion_id, cursor=cursor, limit=limit)
    return CouponPage(
        items=[CouponRead(code=c, redemptions=r, customer_id=o) for c, r, o in page.items],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/loyalty/promotions/{promotion_id}/codes.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "the codes as CSV"},
        **problem_responses(404),
    },
)
def export_codes_endpoint(
    promotion_id: str, db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)
) -> StreamingResponse:
    rows = list(iter_coupons(db, promotion_id))

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["code", "redemptions", "customer_id"])
        for code, redemptions, customer in rows:
            writer.writerow([code, redemptions, customer or ""])
        yield buffer.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="coupons-{promotion_id}.csv"'},
    )


# --- checkout -------------------------------------------------------------------------------------------


class CouponOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Text = Field(min_length=1, max_length=60)
    customer_id: Text | None = Field(default=None, max_length=36)
    order_total: Amount
    currency: Currency
    market: Text | None = Field(default=None, max_length=20)
    applied_codes: list[Annotated[Text, Field(max_length=60)]] = Field(
        default_factory=list, max_length=20, description="codes already on the order (stacking)"
    )


class CouponValidation(BaseModel):
    valid: bool
    reason: str | None = Field(
        description="unknown_code, inactive, not_started, expired, wrong_market, not_for_customer, "
        "currency_mismatch, min_spend_not_met, not_stackable, used_up, customer_required, "
        "customer_limit_reached"
    )
    discount: dict[str, Any] | None


class CouponRedemptionRead(BaseModel):
    id: str
    code: str
    promotion_id: str
    customer_id: str | None
    order_total: str
    currency: str
    discount: dict[str, Any]
    created_at: datetime


def _check(check: CouponCheck) -> CouponValidation:
    return CouponValidation(valid=check.valid, reason=check.reason, discount=check.discount)


def _redemption(view: CouponRedemptionView) -> CouponRedemptionRead:
    return CouponRedemptionRead(
        id=view.id,
        code=view.code,
        promotion_id=view.promotion_id,
        customer_id=view.customer_id,
        order_total=_plain(view.order_total),
        currency=view.currency,
        discount=view.discount,
        created_at=view.created_at,
    )


@router.post("/coupons/validate", response_model=CouponValidation, responses=problem_responses(404, 409))
@read_only
def validate_endpoint(
    body: CouponOrder, db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)
) -> CouponValidation:
    check = validate_coupon(
        db,
        body.code,
        order_total=Decimal(body.order_total),
        currency=body.currency,
        customer_id=body.customer_id,
        market=body.market,
        applied_codes=body.applied_codes,
    )
    return _check(check)


@router.post(
    "/coupons/redeem",
    response_model=CouponRedemptionRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409),
)
def redeem_endpoint(
    body: CouponOrder, request: Request, db: DbSession, principal: Principal = Requires(Perm.LOYALTY_OPERATE)
) -> CouponRedemptionRead:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    view = redeem_coupon(
        db,
        body.code,
        order_total=Decimal(body.order_total),
        currency=body.currency,
        customer_id=body.customer_id,
        market=body.market,
        applied_codes=body.applied_codes,
        key=None if key is None else f"{principal.scope}:{key}",
    )
    return _redemption(view)
