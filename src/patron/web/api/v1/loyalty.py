"""Loyalty: programme and market settings, earning rules, accounts and their ledger, adjustments,
pay with points (hold → capture / release), reported events, simulation and reconciliation.

Points are JSON integers (strict: ``true`` or ``"5"`` are refused); money values are decimal strings
with their currency. Mutations honour ``Idempotency-Key`` twice over: the request layer replays the
stored response, and the ledger keeps the key (scoped to the caller) on the entry it wrote.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt
from sqlalchemy.orm import Session

from patron.auth import Perm, Principal
from patron.core.errors import ValidationFailed
from patron.core.i18n import current_language
from patron.core.money import parse_decimal, quantize
from patron.loyalty import (
    AccountView,
    EarningView,
    EntryView,
    MarketSettingsView,
    OrderShape,
    ProgrammeView,
    RedemptionView,
    RewardView,
    RuleView,
    TierView,
    adjust_points,
    cancel_redemption,
    capture_redemption,
    create_reward,
    create_rule,
    create_tier,
    delete_rule,
    delete_tier,
    enrol_customer,
    find_member,
    fulfil_redemption,
    get_account,
    get_programme,
    get_redemption,
    get_reward,
    get_rule,
    get_tier,
    liability,
    list_entries,
    list_market_settings,
    list_redemptions,
    list_rewards,
    list_rules,
    list_tiers,
    put_market_settings,
    reconcile,
    redeem_points,
    redeem_reward,
    referral_counts,
    referral_summary,
    release_redemption,
    report_event,
    reward_name,
    simulate_event,
    simulate_order,
    tier_name,
    tier_progress,
    update_programme,
    update_reward,
    update_rule,
    update_tier,
)
from patron.web.api.v1.fields import Amount, Cursor, Limit, Text
from patron.web.deps import DbSession, IfMatch, Requires, check_if_match, make_etag, set_etag
from patron.web.problems import problem_responses
from patron.web.routing import IDEMPOTENCY_HEADER, PatronRoute, read_only

router = APIRouter(route_class=PatronRoute, tags=["loyalty"], responses=problem_responses(401, 403, 422))


Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,99}$", examples=["signup"])]
MarketCode = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_-]+$")]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, description="retry-safe key (see docs/api.md)"),
]


def _plain(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent ("10000", "0.1")."""
    return format(value.normalize(), "f")


def _ledger_key(request: Request, principal: Principal) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    return None if key is None else f"{principal.scope}:{key}"


# --- programme and markets ----------------------------------------------------------------------------


class ProgrammeRead(BaseModel):
    name: str
    enrolment: Literal["automatic", "opt_in"]
    pending_days: int = Field(description="days after fulfilment before order points vest")
    expiry_policy: Literal["never", "rolling", "end_of_year"]
    expiry_months: int
    tier_basis: Literal["points", "spend"] = Field(description="tiers qualify on points earned or spend")
    tier_window: Literal["rolling", "calendar_year"]
    tier_window_months: int
    tier_grace_days: int = Field(description="days a member keeps a tier after a failed review")
    referral_referrer_points: int
    referral_referred_points: int
    referral_trigger: Literal["signup", "first_purchase"]
    referral_cap: int | None = Field(description="referrals one customer may be rewarded for (null: no cap)")
    version: int
    updated_at: datetime


class ProgrammeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text | None = Field(default=None, min_length=1, max_length=200)
    enrolment: Literal["automatic", "opt_in"] | None = None
    pending_days: StrictInt | None = Field(default=None, ge=0, le=3650)
    expiry_policy: Literal["never", "rolling", "end_of_year"] | None = None
    expiry_months: StrictInt | None = Field(default=None, ge=0, le=600)
    tier_basis: Literal["points", "spend"] | None = None
    tier_window: Literal["rolling", "calendar_year"] | None = None
    tier_window_months: StrictInt | None = Field(default=None, ge=0, le=120)
    tier_grace_days: StrictInt | None = Field(default=None, ge=0, le=3650)
    referral_referrer_points: StrictInt | None = Field(default=None, ge=0, le=1_000_000)
    referral_referred_points: StrictInt | None = Field(default=None, ge=0, le=1_000_000)
    referral_trigger: Literal["signup", "first_purchase"] | None = None
    referral_cap: StrictInt | None = Field(default=None, ge=0, le=1_000_000, description="null: no cap")


def _programme(view: ProgrammeView, response: Response) -> ProgrammeRead:
    set_etag(response, make_etag("loyalty-programme", view.version))
    return ProgrammeRead(**view.__dict__)


@router.get("/loyalty/programme", response_model=ProgrammeRead)
def get_programme_endpoint(
    response: Response, db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)
) -> ProgrammeRead:
    return _programme(get_programme(db), response)


@router.patch("/loyalty/programme", response_model=ProgrammeRead, responses=problem_responses(409, 412))
def update_programme_endpoint(
    body: ProgrammeUpdate,
    response: Response,
    db: DbSession,
    _: Principal = Requires(Perm.LOYALTY_WRITE),
    if_match: IfMatch = None,
) -> ProgrammeRead:
    current = get_programme(db)
    check_if_match(if_match, make_etag("loyalty-programme", current.version))
    changes = {
        k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k == "referral_cap"
    }
    return _programme(update_programme(db, **changes), response)


class MarketSettingsRead(BaseModel):
    market_code: str
    currency: str
    earn_spend_amount: str = Field(description="spend (in the market's currency) that earns earn_points")
    earn_points: int
    earn_base: Literal["net", "total"]
    point_value_amount: str = Field(description="what one point is worth in the market's currency")
    cap_per_order: int | None
    cap_per_day: int | None = Field(description="per customer per day in the market's time zone")
    version: int


class MarketSettingsWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    earn_spend_amount: Amount
    earn_points: StrictInt = Field(default=1, ge=0, le=1_000_000)
    earn_base: Literal["net", "total"] = "net"
    point_value_amount: Amount
    cap_per_order: StrictInt | None = Field(default=None, ge=0, le=1_000_000_000)
    cap_per_day: StrictInt | None = Field(default=None, ge=0, le=1_000_000_000)


def _market(view: MarketSettingsView) -> MarketSettingsRead:
    return MarketSettingsRead(
        **{
            **view.__dict__,
            "earn_spend_amount": _plain(view.earn_spend_amount),
            "point_value_amount": _plain(view.point_value_amount),
        }
    )


class MarketSettingsList(BaseModel):
    items: list[MarketSettingsRead]


@router.get("/loyalty/markets", response_model=MarketSettingsList)
def list_markets_endpoint(db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)) -> MarketSettingsList:
    return MarketSettingsList(items=[_market(v) for v in list_market_settings(db)])


@router.put(
    "/loyalty/markets/{market_code}", response_model=MarketSettingsRead, responses=problem_responses(404)
)
def put_market_endpoint(
    market_code: str, body: MarketSettingsWrite, db: DbSession, _: Principal = Requires(Perm.LOYALTY_WRITE)
) -> MarketSettingsRead:
    values = body.model_dump()
    return _market(
        put_market_settings(
            db,
            market_code,
            earn_spend_amount=parse_decimal(values.pop("earn_spend_amount")),
            point_value_amount=parse_decimal(values.pop("point_value_amount")),
            **values,
        )
    )


# --- rules ------------------------------------------------------------------------------------------


class RuleConditions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    categories: list[Text] | None = Field(default=None, max_length=500)
    skus: list[Text] | None = Field(default=None, max_length=500)
    tiers: list[Text] | None = Field(default=None, max_length=500)
    channels: list[Text] | None = Field(default=None, max_length=500)
    markets: list[Text] | None = Field(default=None, max_length=500)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = Field(default=None, description="exclusive")


class RuleWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=200)
    kind: Literal["multiplier", "bonus"]
    active: StrictBool = True
    multiplier: Amount = Field(default="1", description="for kind=multiplier")
    points: StrictInt = Field(default=0, ge=0, le=1_000_000, description="for kind=bonus")
    event_type: Slug | None = Field(
        default=None, description="for kind=bonus: the event type that pays it; 'order' pays per order"
    )
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    limit_per_customer: StrictInt | None = Field(default=None, ge=1, le=1_000_000)


class RuleRead(BaseModel):
    id: str
    name: str
    kind: str
    active: bool
    multiplier: str
    points: int
    event_type: str | None
    conditions: dict[str, Any]
    limit_per_customer: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class RuleList(BaseModel):
    items: list[RuleRead]


def _rule(view: RuleView, response: Response | None = None) -> RuleRead:
    if response is not None:
        set_etag(response, make_etag("loyalty-rule", view.id, view.version))
    return RuleRead(**{**view.__dict__, "multiplier": _plain(view.multiplier)})


def _rule_values(body: RuleWrite) -> dict[str, Any]:
    values = body.model_dump()
    values["conditions"] = body.conditions.model_dump(exclude_none=True)
    values["multiplier"] = Decimal(body.multiplier)
    return values


@router.get("/loyalty/rules", response_model=RuleList)
def list_rules_endpoint(db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)) -> RuleList:
    return RuleList(items=[_rule(r) for r in list_rules(db)])


@router.post("/loyalty/rules", response_model=RuleRead, status_code=status.HTTP_201_CREATED)
def create_rule_endpoint(
    body: RuleWrite, response: Response, db: DbSession, _: Principal = Requires(Perm.LOYALTY_WRITE)
) -> RuleRead:
    view = create_rule(db, _rule_values(body))
    response.headers["Location"] = f"/api/v1/loyalty/rules/{view.id}"
    return _rule(view, response)


@router.get("/loyalty/rules/{rule_id}", response_model=RuleRead, responses=problem_responses(404))
def get_rule_endpoint(
    rule_id: str, response: Response, db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)
) -> RuleRead:
    return _rule(get_rule(db, rule_id), response)


@router.put("/loyalty/rules/{rule_id}", response_model=RuleRead, responses=problem_responses(404, 409, 412))
def update_rule_endpoint(
    rule_id: str,
    body: RuleWrite,
    response: Response,
    db: DbSession,
    _: Principal = Requires(Perm.LOYALTY_WRITE),
    if_match: IfMatch = None,
) -> RuleRead:
    current = get_rule(db, rule_id)
    check_if_match(if_match, make_etag("loyalty-rule", current.id, current.version))
    return _rule(update_rule(db, rule_id, _rule_values(body)), response)


@router.delete(
    "/loyalty/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404, 412)
)
def delete_rule_endpoint(
    rule_id: str, db: DbSession, _: Principal = Requires(Perm.LOYALTY_WRITE), if_match: IfMatch = None
) -> Response:
    current = get_rule(db, rule_id)
    check_if_match(if_match, make_etag("loyalty-rule", current.id, current.version))
    delete_rule(db, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- tiers ------------------------------------------------------------------------------------------


class TierWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rank: StrictInt = Field(ge=0, le=1000, description="higher is better; unique")
    names: dict[Literal["en", "vi", "hu", "th"], Annotated[Text, Field(min_length=1, max_length=100)]] = (
        Field(min_length=1, description="the tier's name by language")
    )
    threshold: Amount = Field(description="points earned, or spend in the reporting currency, to qualify")
    multiplier: Amount = Field(default="1", description="earning multiplier for members of this tier")
    perks: list[Annotated[Text, Field(max_length=200)]] = Field(default_factory=list, max_length=50)


class TierCreate(TierWrite):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,49}$", description="stable code", examples=["gold"])


class TierDetail(BaseModel):
    id: str
    code: str
    rank: int
    names: dict[str, str]
    threshold: str
    multiplier: str
    perks: list[str]
    version: int


class TierList(BaseModel):
    items: list[TierDetail]


def _tier_detail(view: TierView, response: Response | None = None) -> TierDetail:
    if response is not None:
        set_etag(response, make_etag("loyalty-tier", view.id, view.version))
    return TierDetail(
        **{**view.__dict__, "threshold": _plain(view.threshold), "multiplier": _plain(view.multiplier)}
    )


@router.get("/loyalty/tiers", response_model=TierList)
def list_tiers_endpoint(db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)) -> TierList:
    return TierList(items=[_tier_detail(t) for t in list_tiers(db)])


@router.post(
    "/loyalty/tiers",
    response_model=TierDetail,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
)
def create_tier_endpoint(
    body: TierCreate, response: Response, db: DbSession, _: Principal = Requires(Perm.LOYALTY_WRITE)
) -> TierDetail:
    view = create_tier(db, body.model_dump())
    response.headers["Location"] = f"/api/v1/loyalty/tiers/{view.code}"
    return _tier_detail(view, response)


@router.get("/loyalty/tiers/{code}", response_model=TierDetail, responses=problem_responses(404))
def get_tier_endpoint(
    code: str, response: Response, db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)
) -> TierDetail:
    return _tier_detail(get_tier(db, code), response)


@router.put("/loyalty/tiers/{code}", response_model=TierDetail, responses=problem_responses(404, 409, 412))
def update_tier_endpoint(
    code: str,
    body: TierWrite,
    response: Response,
    db: DbSession,
    _: Principal = Requires(Perm.LOYALTY_WRITE),
    if_match: IfMatch = None,
) -> TierDetail:
    current = get_tier(db, code)
    check_if_match(if_match, make_etag("loyalty-tier", current.id, current.version))
    return _tier_detail(update_tier(db, code, body.model_dump()), response)


@router.delete(
    "/loyalty/tiers/{code}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404, 412)
)
def delete_tier_endpoint(
    code: str, db: DbSession, _: Principal = Requires(Perm.LOYALTY_WRITE), if_match: IfMatch = None
) -> Response:
    current = get_tier(db, code)
    check_if_match(if_match, make_etag("loyalty-tier", current.id, current.version))
    delete_tier(db, code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- accounts ---------------------------------------------------------------------------------------


class TierRead(BaseModel):
    code: str
    name: str


class TierProgressRead(BaseModel):
    basis: Literal["points", "spend"]
    value: str = Field(description="points earned, or spend in the reporting currency, in the window")
    next: TierRead | None
    remaining: str | None = Field(description='what is left to reach the next tier ("1200")')
    review_at: datetime | None
    grace_until: datetime | None


class AccountRead(BaseModel):
    customer_id: str
    account_id: str | None = Field(description="null until the first movement (automatic enrolment)")
    enrolled: bool
    status: str = Field(description="active, merged, erased or not_enrolled")
    available: int = Field(description="points that can be redeemed now")
    pending: int = Field(description="points earned by orders still in their return window")
    debt: int = Field(description="points owed after refunds of spent points; later earnings pay it first")
    held: int = Field(description="points reserved by pay-with-points holds")
    lifetime_earned: int
    lifetime_redeemed: int
    lifetime_expired: int
    tier: TierRead | None
    tier_progress: TierProgressRead
    card_number: str | None
    enrolled_at: datetime | None


def _tier(view: TierView | None) -> TierRead | None:
    return None if view is None else TierRead(code=view.code, name=tier_name(view, current_language.get()))


def _account(db: Session, view: AccountView) -> AccountRead:
    values = {k: v for k, v in view.__dict__.items() if k != "tier_code"}
    progress = tier_progress(db, view.customer_id)
    tier = _tier(progress.current)
    if tier is None and view.tier_code is not None:
        tier = TierRead(code=view.tier_code, name=view.tier_code)
    return AccountRead(
        **values,
        tier=tier,
        tier_progress=TierProgressRead(
            basis=progress.basis,
            value=_plain(progress.value),
            next=_tier(progress.next),
            remaining=None if progress.remaining is None else _plain(progress.remaining),
            review_at=progress.review_at,
            grace_until=progress.grace_until,
        ),
    )


@router.get(
    "/loyalty/accounts/{customer_id}", response_model=AccountRead, responses=problem_responses(404, 409)
)
def get_account_endpoint(
    customer_id: str, db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)
) -> AccountRead:
    return _account(db, get_account(db, customer_id))


@router.post(
    "/loyalty/accounts/{customer_id}/enrolment",
    response_model=AccountRead,
    responses=problem_responses(404, 409),
)
def enrol_endpoint(
    customer_id: str, db: DbSession, _: Principal = Requires(Perm.LOYALTY_OPERATE)
) -> AccountRead:
    return _account(db, enrol_customer(db, customer_id))


class EntryRead(BaseModel):
    id: str
    account_id: str
    kind: str
    points: int = Field(description="change of the available balance")
    pending: int
    debt: int
    held: int
    reason: str
    source: str
    source_id: str | None
    actor: str
    occurred_at: datetime
    data: dict[str, Any]


class EntryPage(BaseModel):
    items: list[EntryRead]
    next_cursor: str | None = None


def _entry(view: EntryView) -> EntryRead:
    return EntryRead(**{k: v for k, v in view.__dict__.items() if k != "replayed"})


@router.get(
    "/loyalty/accounts/{customer_id}/ledger", response_model=EntryPage, responses=problem_responses(404, 409)
)
def ledger_endpoint(
    customer_id: str,
    db: DbSession,
    _: Principal = Requires(Perm.LOYALTY_READ),
    cursor: Cursor = None,
    limit: Limit = None,
) -> EntryPage:
    page = list_entries(db, customer_id, cursor=cursor, limit=limit)
    return EntryPage(items=[_entry(e) for e in page.items], next_cursor=page.next_cursor)


class AdjustmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: StrictInt = Field(
        description="positive or negative, not zero", ge=-1_000_000_000, le=1_000_000_000
    )
    reason: Text = Field(min_length=1, max_length=500)


@router.post(
    "/loyalty/accounts/{customer_id}/adjustments",
    response_model=EntryRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409),
)
def adjust_endpoint(
    customer_id: str,
    body: AdjustmentCreate,
    request: Request,
    db: DbSession,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = Requires(Perm.LOYALTY_OPERATE),
) -> EntryRead:
    if body.points == 0:
        raise ValidationFailed(
            "points must not be zero",
            code="invalid_points",
            errors=[{"loc": ["body", "points"], "msg": "must not be zero", "type": "invalid_points"}],
        )
    entry = adjust_points(
        db, customer_id, body.points, reason=body.reason, key=_ledger_key(request, principal)
    )
    return _entry(entry)


class RedemptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: StrictInt | None = Field(default=None, ge=1, le=1_000_000_000, description="pay with points")
    reward_id: Text | None = Field(default=None, max_length=36, description="redeem a catalogue reward")
    hold: StrictBool = Field(
        default=False, description="pay with points: reserve them; capture or release the redemption later"
    )
    market: MarketCode | None = Field(
        default=None, description="values the points in this market's currency; a reward's market"
    )


class RedemptionRead(BaseModel):
    id: str
    customer_id: str
    kind: str
    points: int
    status: Literal["held", "captured", "released", "cancelled"]
    value: str | None = Field(description="the points' worth, or the reward's value, in currency")
    currency: str | None
    reward_id: str | None = None
    code: str | None = Field(default=None, description="the reward's unique code")
    fulfilment_status: Literal["pending", "fulfilled"] | None = None
    fulfilled_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class RedemptionList(BaseModel):
    items: list[RedemptionRead]


def _redemption(view: RedemptionView) -> RedemptionRead:
    value = None
    if view.value_amount is not None and view.currency is not None:
        value = str(quantize(view.value_amount, view.currency))
    return RedemptionRead(
        id=view.id,
        customer_id=view.customer_id,
        kind=view.kind,
        points=view.points,
        status=view.status,
        value=value,
        currency=view.currency,
        reward_id=view.reward_id,
        code=view.code,
        fulfilment_status=view.fulfilment_status,
        fulfilled_at=view.fulfilled_at,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


@router.post(
    "/loyalty/accounts/{customer_id}/redemptions",
    response_model=RedemptionRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409),
)
def redeem_endpoint(
    customer_id: str,
    body: RedemptionCreate,
    request: Request,
    db: DbSession,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = Requires(Perm.LOYALTY_OPERATE),
) -> RedemptionRead:
    if (body.points is None) == (body.reward_id is None) or (body.reward_id is not None and body.hold):
        raise ValidationFailed(
            "give either points (pay with points) or a reward_id",
            code="invalid_redemption",
            errors=[
                {"loc": ["body"], "msg": "exactly one of points, reward_id", "type": "invalid_redemption"}
            ],
        )
    key = _ledger_key(request, principal)
    if body.reward_id is not None:
        return _redemption(redeem_reward(db, customer_id, body.reward_id, market_code=body.market, key=key))
    assert body.points is not None
    view = redeem_points(db, customer_id, body.points, hold=body.hold, market_code=body.market, key=key)
    return _redemption(view)


@router.get(
    "/loyalty/accounts/{customer_id}/redemptions",
    response_model=RedemptionList,
    responses=problem_responses(404, 409),
)
def list_redemptions_endpoint(
    customer_id: str, db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ), limit: Limit = None
) -> RedemptionList:
    return RedemptionList(items=[_redemption(r) for r in list_redemptions(db, customer_id, limit=limit)])


@router.get(
    "/loyalty/redemptions/{redemption_id}", response_model=RedemptionRead, responses=problem_responses(404)
)
def get_redemption_endpoint(
    redemption_id: str, db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)
) -> RedemptionRead:
    return _redemption(get_redemption(db, redemption_id))


@router.post(
    "/loyalty/redemptions/{redemption_id}/capture",
    response_model=RedemptionRead,
    responses=problem_responses(404, 409),
)
def capture_endpoint(
    redemption_id: str, db: DbSession, _: Principal = Requires(Perm.LOYALTY_OPERATE)
) -> RedemptionRead:
    return _redemption(capture_redemption(db, redemption_id))


@router.post(
    "/loyalty/redemptions/{redemption_id}/release",
    response_model=RedemptionRead,
    responses=problem_responses(404, 409),
)
def release_endpoint(
    redemption_id: str, db: DbSession, _: Principal = Requires(Perm.LOYALTY_OPERATE)
) -> RedemptionRead:
    return _redemption(release_redemption(db, redemption_id))


@router.post(
    "/loyalty/redemptions/{redemption_id}/fulfil",
    response_model=RedemptionRead,
    responses=problem_responses(404, 409),
)
def fulfil_endpoint(
    redemption_id: str, db: DbSession, _: Principal = Requires(Perm.LOYALTY_OPERATE)
) -> RedemptionRead:
    return _redemption(fulfil_redemption(db, redemption_id))


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(default="", max_length=500)


@router.post(
    "/loyalty/redemptions/{redemption_id}/cancel",
    response_model=RedemptionRead,
    responses=problem_responses(404, 409),
)
def cancel_endpoint(
    redemption_id: str, body: CancelBody, db: DbSession, _: Principal = Requires(Perm.LOYALTY_OPERATE)
) -> RedemptionRead:
    return _redemption(cancel_redemption(db, redemption_id, reason=body.reason))


# --- rewards and member lookup ------------------------------------------------------------------------

RewardKind = Literal[
    "discount_fixed",
    "discount_percent",
    "free_product",
    "free_shipping",
    "gift",
    "event",
    "content",
    "custom",
]
Language = Literal["en", "vi", "hu", "th"]


class RewardWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: RewardKind
    names: dict[Language, Annotated[Text, Field(min_length=1, max_length=200)]] = Field(min_length=1)
    descriptions: dict[Language, Annotated[Text, Field(min_length=1, max_length=2000)]] = Field(
        default_factory=dict
    )
    cost_points: StrictInt = Field(ge=1, le=100_000_000)
    value_amount: Amount | None = Field(default=None, description="discount_fixed: the amount off")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    percent: Amount | None = Field(default=None, description="discount_percent: 0 < percent ≤ 100")
    product_sku: Text | None = Field(default=None, max_length=100, description="free_product: its SKU")
    stock: StrictInt | None = Field(default=None, ge=0, le=1_000_000_000, description="null: unlimited")
    limit_per_customer: StrictInt | None = Field(default=None, ge=1, le=1_000_000)
    tiers: list[Annotated[Text, Field(max_length=50)]] = Field(default_factory=list, max_length=50)
    markets: list[Annotated[Text, Field(max_length=20)]] = Field(default_factory=list, max_length=50)
    active: StrictBool = True


class RewardRead(BaseModel):
    id: str
    kind: str
    name: str = Field(description="in the caller's language")
    names: dict[str, str]
    descriptions: dict[str, str]
    cost_points: int
    value_amount: str | None
    currency: str | None
    percent: str | None
    product_sku: str | None
    stock: int | None
    limit_per_customer: int | None
    tiers: list[str]
    markets: list[str]
    active: bool
    version: int


class RewardList(BaseModel):
    items: list[RewardRead]


def _reward(view: RewardView, response: Response | None = None) -> RewardRead:
    if response is not None:
        set_etag(response, make_etag("loyalty-reward", view.id, view.version))
    values = dict(view.__dict__)
    values["value_amount"] = None if view.value_amount is None else _plain(view.value_amount)
    values["percent"] = None if view.percent is None else _plain(view.percent)
    return RewardRead(**values, name=reward_name(view, current_language.get()))


def _reward_values(body: RewardWrite) -> dict[str, Any]:
    return body.model_dump()


@router.get("/loyalty/rewards", response_model=RewardList, responses=problem_responses(404, 409))
def list_rewards_endpoint(
    db: DbSession,
    _: Principal = Requires(Perm.LOYALTY_READ),
    customer_id: Annotated[
        str | None, Query(max_length=36, description="only what this member may redeem")
    ] = None,
    market: Annotated[str | None, Query(max_length=20)] = None,
    include_inactive: bool = False,
) -> RewardList:
    views = list_rewards(db, customer_id=customer_id, market=market, include_inactive=include_inactive)
    return RewardList(items=[_reward(v) for v in views])


@router.post("/loyalty/rewards", response_model=RewardRead, status_code=status.HTTP_201_CREATED)
def create_reward_endpoint(
    body: RewardWrite, response: Response, db: DbSession, _: Principal = Requires(Perm.LOYALTY_WRITE)
) -> RewardRead:
    view = create_reward(db, _reward_values(body))
    response.headers["Location"] = f"/api/v1/loyalty/rewards/{view.id}"
    return _reward(view, response)


@router.get("/loyalty/rewards/{reward_id}", response_model=RewardRead, responses=problem_responses(404))
def get_reward_endpoint(
    reward_id: str, response: Response, db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)
) -> RewardRead:
    return _reward(get_reward(db, reward_id), response)


@router.put(
    "/loyalty/rewards/{reward_id}", response_model=RewardRead, responses=problem_responses(404, 409, 412)
)
def update_reward_endpoint(
    reward_id: str,
    body: RewardWrite,
    response: Response,
    db: DbSession,
    _: Principal = Requires(Perm.LOYALTY_WRITE),
    if_match: IfMatch = None,
) -> RewardRead:
    current = get_reward(db, reward_id)
    check_if_match(if_match, make_etag("loyalty-reward", current.id, current.version))
    return _reward(update_reward(db, reward_id, _reward_values(body)), response)


@router.get("/loyalty/members", response_model=AccountRead, responses=problem_responses(404, 409))
def find_member_endpoint(
    db: DbSession,
    _: Principal = Requires(Perm.LOYALTY_READ),
    card: Annotated[
        str | None, Query(max_length=200, description="member card number or its QR payload")
    ] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    country: Annotated[
        str | None, Query(pattern=r"^[A-Z]{2}$", description="for a national phone number")
    ] = None,
    external_id: Annotated[str | None, Query(max_length=200)] = None,
) -> AccountRead:
    view = find_member(db, card=card, email=email, phone=phone, country=country, external_id=external_id)
    return _account(db, view)


class ReferralRead(BaseModel):
    code: str
    link: str = Field(description="path of the landing link, relative to the customer portal")
    pending: int
    converted: int
    rejected: int


@router.post(
    "/loyalty/accounts/{customer_id}/referral-code",
    response_model=ReferralRead,
    responses=problem_responses(404, 409),
)
def referral_code_endpoint(
    customer_id: str, db: DbSession, _: Principal = Requires(Perm.LOYALTY_OPERATE)
) -> ReferralRead:
    """The customer's referral code and link (created on first call) and how their referrals went."""
    return ReferralRead(**referral_summary(db, customer_id).__dict__)


class ReferralCounts(BaseModel):
    pending: int
    converted: int
    rejected: int


@router.get("/loyalty/referrals/stats", response_model=ReferralCounts)
def referral_stats_endpoint(
    db: DbSession,
    since: Annotated[AwareDatetime, Query(description="customers referred from (inclusive)")],
    until: Annotated[AwareDatetime, Query(description="until (exclusive)")],
    _: Principal = Requires(Perm.LOYALTY_READ),
) -> ReferralCounts:
    return ReferralCounts(**referral_counts(db, since, until))


# --- events and simulation ----------------------------------------------------------------------------


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: Text = Field(min_length=1, max_length=36)
    type: Slug
    occurred_at: AwareDatetime
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="channel and market are used by rules"
    )


class EarningRead(BaseModel):
    points: int
    status: str = Field(description="credited, no_points or simulated")
    lines: dict[str, int] = Field(description="order line id → points (orders only)")
    explanation: list[dict[str, Any]]
    entry_id: str | None = None
    replayed: bool = False


def _earning(view: EarningView) -> EarningRead:
    return EarningRead(**view.__dict__)


@router.post(
    "/loyalty/events",
    response_model=EarningRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409),
)
def report_event_endpoint(
    body: EventCreate,
    request: Request,
    db: DbSession,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = Requires(Perm.LOYALTY_OPERATE),
) -> EarningRead:
    view = report_event(
        db,
        body.customer_id,
        body.type,
        occurred_at=body.occurred_at,
        attributes=body.attributes,
        key=request.headers.get(IDEMPOTENCY_HEADER),
    )
    return _earning(view)


class SimulatedLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Text | None = Field(default=None, max_length=36)
    sku: Text | None = Field(default=None, max_length=100)
    category: Text | None = Field(default=None, max_length=200)
    quantity: StrictInt = Field(default=1, ge=1, le=1_000_000)
    total: Amount


class SimulatedOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    market: MarketCode | None = None
    channel: Text | None = Field(default=None, max_length=20)
    placed_at: AwareDatetime | None = None
    discount: Amount = "0"
    tax: Amount = "0"
    shipping: Amount = "0"
    lines: list[SimulatedLine] = Field(min_length=1, max_length=500)


class SimulatedEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Slug
    occurred_at: AwareDatetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class SimulationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: Text | None = Field(default=None, max_length=36)
    order: SimulatedOrder | None = None
    event: SimulatedEvent | None = None


@router.post("/loyalty/simulate", response_model=EarningRead, responses=problem_responses(404))
@read_only
def simulate_endpoint(
    body: SimulationRequest, db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)
) -> EarningRead:
    from patron.core.clock import now

    if (body.order is None) == (body.event is None):
        raise ValidationFailed(
            "give either an order or an event",
            code="invalid_simulation",
            errors=[{"loc": ["body"], "msg": "exactly one of order, event", "type": "invalid_simulation"}],
        )
    if body.event is not None:
        ev = body.event
        return _earning(simulate_event(db, ev.type, ev.occurred_at or now(), ev.attributes, body.customer_id))
    order = body.order
    assert order is not None
    lines = tuple(
        (ln.id or f"line-{i + 1}", ln.sku, ln.category, ln.quantity, Decimal(ln.total))
        for i, ln in enumerate(order.lines)
    )
    subtotal = sum((Decimal(ln.total) for ln in order.lines), Decimal(0))
    shape = OrderShape(
        currency=order.currency,
        market_code=order.market,
        channel=order.channel,
        placed_at=order.placed_at or now(),
        net=subtotal - Decimal(order.discount),
        total=subtotal - Decimal(order.discount) + Decimal(order.tax) + Decimal(order.shipping),
        lines=lines,
    )
    return _earning(simulate_order(db, shape, body.customer_id))


# --- reconciliation -----------------------------------------------------------------------------------


class DriftRead(BaseModel):
    account_id: str
    customer_id: str
    field: str
    balance: int
    ledger: int


class ReconciliationRead(BaseModel):
    ok: bool
    accounts: int
    drift: list[DriftRead]


@router.get("/loyalty/reconciliation", response_model=ReconciliationRead)
def reconciliation_endpoint(db: DbSession, _: Principal = Requires(Perm.LOYALTY_READ)) -> ReconciliationRead:
    report = reconcile(db)
    return ReconciliationRead(
        ok=report.ok, accounts=report.accounts, drift=[DriftRead(**d.__dict__) for d in report.drift]
    )


# --- liability ----------------------------------------------------------------------------------------


class MarketLiabilityRead(BaseModel):
    market: str | None = Field(description="null: points of members without a home market")
    currency: str | None
    points: int
    value: str | None
    reporting_value: str | None


class LiabilityRead(BaseModel):
    as_of: datetime
    reporting_currency: str
    markets: list[MarketLiabilityRead]
    total_points: int
    total_reporting_value: str
    breakage_rate: str | None = Field(description="share of credited points that expired unredeemed")
    expected_breakage_points: int | None
    expected_breakage_value: str | None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@router.get("/loyalty/liability", response_model=LiabilityRead)
def liability_endpoint(
    db: DbSession,
    as_of: Annotated[AwareDatetime | None, Query(description="default: now")] = None,
    _: Principal = Requires(Perm.LOYALTY_READ),
) -> LiabilityRead:
    report = liability(db, as_of=as_of)
    return LiabilityRead(
        as_of=report.as_of,
        reporting_currency=report.reporting_currency,
        markets=[
            MarketLiabilityRead(
                market=m.market_code,
                currency=m.currency,
                points=m.points,
                value=_money(m.value),
                reporting_value=_money(m.reporting_value),
            )
            for m in report.markets
        ],
        total_points=report.total_points,
        total_reporting_value=str(report.total_reporting_value),
        breakage_rate=_money(report.breakage_rate),
        expected_breakage_points=report.expected_breakage_points,
        expected_breakage_value=_money(report.expected_breakage_value),
    )
