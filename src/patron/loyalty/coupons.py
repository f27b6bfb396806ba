"""Coupons and promo codes: promotions (the discount and its conditions), bulk generation of unique,
unguessable, readable codes, ``validate`` (a stable reason code for every refusal) and ``redeem``
(idempotent; a single-use code succeeds exactly once however many clients race for it: the code's
counter changes only by a conditional UPDATE)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.core.audit import record_audit
from patron.core.clock import now
from patron.core.errors import Conflict, NotFound, ValidationFailed
from patron.core.ids import new_id
from patron.core.money import currency_exponent, is_known_currency, parse_decimal, quantize
from patron.core.outbox import emit_event
from patron.core.pagination import Page, clamp_limit, decode_cursor, encode_cursor
from patron.loyalty import rules
from patron.loyalty.models import (
    LoyaltyCoupon,
    LoyaltyCouponRedemption,
    LoyaltyCouponUse,
    LoyaltyPromotion,
)
from patron.loyalty.rewards import new_code
from patron.loyalty.service import _current_customer

_COUPONS = cast(Table, LoyaltyCoupon.__table__)
_USES = cast(Table, LoyaltyCouponUse.__table__)
COUPON_REDEEMED = "coupon.redeemed"
MAX_GENERATE = 100_000


class PromotionNotFound(NotFound):
    code = "promotion_not_found"
    title = "Promotion not found"


class CouponRefused(Conflict):
    """A refused redemption: ``code`` is the stable reason (``used_up``, ``expired`` …)."""

    title = "The coupon cannot be used"


@dataclass(frozen=True)
class PromotionView:
    id: str
    name: str
    discount_kind: str
    amount: Decimal | None
    currency: str | None
    percent: Decimal | None
    min_spend: dict[str, Decimal]
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


@dataclass(frozen=True)
class CouponCheck:
    code: str
    valid: bool
    reason: str | None
    discount: dict[str, Any] | None
    promotion_id: str | None = None


@dataclass(frozen=True)
class CouponRedemptionView:
    id: str
    code: str
    promotion_id: str
    customer_id: str | None
    order_total: Decimal
    currency: str
    discount: dict[str, Any]
    created_at: datetime
    replayed: bool = False


def promotion_view(row: LoyaltyPromotion) -> PromotionView:
    return PromotionView(
        id=row.id,
        name=row.name,
        discount_kind=row.discount_kind,
        amount=None if row.amount is None else Decimal(row.amount),
        currency=row.currency,
        percent=None if row.percent is None else Decimal(row.percent),
        min_spend={str(k): Decimal(str(v)) for k, v in (row.min_spend or {}).items()},
        markets=[str(m) for m in row.markets or []],
        usage=row.usage,
        max_redemptions=row.max_redemptions,
        limit_per_customer=row.limit_per_customer,
        stackable=row.stackable,
        starts_at=row.starts_at,
        expires_at=row.expires_at,
        active=row.active,
        version=row.version,
        created_at=row.created_at,
    )


def _spec(view: PromotionView, owner_id: str | None) -> rules.CouponSpec:
    return rules.CouponSpec(
        discount_kind=view.discount_kind,
        amount=view.amount,
        currency=view.currency,
        percent=view.percent,
        min_spend=view.min_spend,
        markets=frozenset(view.markets),
        max_redemptions=view.max_redemptions,
        limit_per_customer=view.limit_per_customer,
        stackable=view.stackable,
        starts_at=view.starts_at,
        expires_at=view.expires_at,
        active=view.active,
        owner_id=owner_id,
    )


def _when(value: Any, loc: str, errors: list[dict[str, Any]]) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        errors.append({"loc": [loc], "msg": "an ISO 8601 date-time", "type": "invalid_datetime"})
        return None
    if parsed.tzinfo is None:
        errors.append({"loc": [loc], "msg": "needs a time zone offset", "type": "naive_datetime"})
        return None
    return parsed.astimezone(UTC)


def _validate(values: Mapping[str, Any]) -> dict[str, Any]:
    errors: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    name = values.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or "\x00" in name:
        errors.append({"loc": ["name"], "msg": "1 to 200 characters", "type": "invalid"})
    out["name"] = name.strip() if isinstance(name, str) else ""
    kind = values.get("discount_kind")
    if kind not in ("fixed", "percent", "free_shipping"):
        errors.append(
            {"loc": ["discount_kind"], "msg": "fixed, percent or free_shipping", "type": "invalid_choice"}
        )
    out["discount_kind"] = kind
    out["amount"] = out["currency"] = out["percent"] = None
    if kind == "fixed":
        currency = values.get("currency")
        if not isinstance(currency, str) or not is_known_currency(currency):
            errors.append(
                {"loc": ["currency"], "msg": "a fixed discount needs a currency", "type": "invalid_currency"}
            )
        else:
            out["currency"] = currency.upper()
            try:
                amount = quantize(parse_decimal(values.get("amount")), currency)
                if amount <= 0:
                    raise ValueError
                out["amount"] = amount
            except (ValidationFailed, ValueError):
                errors.append(
                    {"loc": ["amount"], "msg": "a positive decimal amount", "type": "invalid_amount"}
                )
    if kind == "percent":
        try:
            percent = parse_decimal(values.get("percent"))
            if not Decimal(0) < percent <= Decimal(100):
                raise ValueError
            out["percent"] = percent
        except (ValidationFailed, ValueError):
            errors.append({"loc": ["percent"], "msg": "from 0 (exclusive) to 100", "type": "out_of_range"})
    min_spend: dict[str, str] = {}
    raw_min = values.get("min_spend") or {}
    if not isinstance(raw_min, Mapping):
        errors.append({"loc": ["min_spend"], "msg": "{currency: amount}", "type": "invalid"})
        raw_min = {}
    for cur, amount in raw_min.items():
        try:
            if not isinstance(cur, str) or not is_known_currency(cur):
                raise ValueError
            value = quantize(parse_decimal(amount), cur)
            if value < 0:
                raise ValueError
            min_spend[cur.upper()] = str(value)
        except (ValidationFailed, ValueError):
            errors.append(
                {"loc": ["min_spend", str(cur)], "msg": "a currency and an amount ≥ 0", "type": "invalid"}
            )
    out["min_spend"] = min_spend
    markets = values.get("markets") or []
    if not isinstance(markets, list) or any(not isinstance(m, str) or not 0 < len(m) <= 20 for m in markets):
        errors.append({"loc": ["markets"], "msg": "a list of market codes", "type": "invalid_list"})
        markets = []
    out["markets"] = sorted(set(markets))
    usage = values.get("usage", "single_use")
    if usage not in ("single_use", "multi_use"):
        errors.append({"loc": ["usage"], "msg": "single_use or multi_use", "type": "invalid_choice"})
    out["usage"] = usage
    for key in ("max_redemptions", "limit_per_customer"):
        limit = values.get(key)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10**9
        ):
            errors.append({"loc": [key], "msg": "a whole number ≥ 1 or null", "type": "out_of_range"})
        out[key] = limit
    if usage == "single_use":
        out["max_redemptions"] = 1
    out["stackable"] = bool(values.get("stackable", False))
    out["starts_at"] = _when(values.get("starts_at"), "starts_at", errors)
    out["expires_at"] = _when(values.get("expires_at"), "expires_at", errors)
    if out["starts_at"] and out["expires_at"] and out["starts_at"] >= out["expires_at"]:
        errors.append({"loc": ["expires_at"], "msg": "must be after starts_at", "type": "invalid_window"})
    out["active"] = bool(values.get("active", True))
    if errors:
        raise ValidationFailed("invalid promotion", code="invalid_promotion", errors=errors)
    return out


def create_promotion(session: Session, values: Mapping[str, Any]) -> PromotionView:
    row = LoyaltyPromotion(id=new_id(), **_validate(values))
    session.add(row)
    session.flush()
    view = promotion_view(row)
    record_audit(session, "loyalty.promotion_created", "loyalty_promotion", row.id, new=view.__dict__)
    return view


def _promotion(session: Session, promotion_id: str) -> LoyaltyPromotion:
    row = session.get(LoyaltyPromotion, promotion_id) if len(promotion_id) <= 36 else None
    if row is None:
        raise PromotionNotFound(f"no promotion with id {promotion_id!r}")
    return row


def get_promotion(session: Session, promotion_id: str) -> PromotionView:
    return promotion_view(_promotion(session, promotion_id))


def list_promotions(session: Session) -> list[PromotionView]:
    rows = session.scalars(
        select(LoyaltyPromotion).order_by(LoyaltyPromotion.created_at.desc(), LoyaltyPromotion.id)
    )
    return [promotion_view(r) for r in rows]


def update_promotion(session: Session, promotion_id: str, values: Mapping[str, Any]) -> PromotionView:
    row = _promotion(session, promotion_id)
    old = promotion_view(row).__dict__
    for key, value in _validate(values).items():
        setattr(row, key, value)
    session.flush()
    view = promotion_view(row)
    record_audit(
        session, "loyalty.promotion_updated", "loyalty_promotion", row.id, old=old, new=view.__dict__
    )
    return view


def normalise_code(code: str) -> str:
    return "".join(code.split()).upper()


def generate_coupons(
    session: Session,
    promotion_id: str,
    count: int,
    *,
    prefix: str | None = None,
    customer_id: str | None = None,
) -> list[str]:
    """Create ``count`` new unique codes (``PREFIX-`` + 3 groups of 4 from the unambiguous alphabet)."""
    promotion = _promotion(session, promotion_id)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_GENERATE:
        raise ValidationFailed(
            f"count must be 1 to {MAX_GENERATE}",
            code="invalid_count",
            errors=[{"loc": ["count"], "msg": f"1 to {MAX_GENERATE}", "type": "out_of_range"}],
        )
    if prefix is not None and (not prefix.isalnum() or not prefix.isascii() or not 0 < len(prefix) <= 12):
        raise ValidationFailed(
            "a prefix is 1 to 12 letters or digits",
            code="invalid_prefix",
            errors=[{"loc": ["prefix"], "msg": "1 to 12 letters or digits", "type": "invalid"}],
        )
    owner = _current_customer(session, customer_id) if customer_id is not None else None
    made: list[str] = []
    stamp = now()
    while len(made) < count:
        want = min(count - len(made), 1000)
        batch = {(f"{prefix.upper()}-" if prefix else "") + new_code() for _ in range(want)}
        rows = [
            {
                "id": new_id(),
                "promotion_id": promotion.id,
                "code": code,
                "customer_id": owner,
                "redemptions": 0,
                "created_at": stamp,
            }
            for code in batch
        ]
        try:
            with session.begin_nested():
                session.execute(_COUPONS.insert(), rows)
        except IntegrityError:  # a code that exists already (about 1 in 10^17 per code): draw again
            continue
        made.extend(batch)
    record_audit(
        session,
        "loyalty.coupons_generated",
        "loyalty_promotion",
        promotion.id,
        new={"count": count, "prefix": prefix},
    )
    return made


def iter_coupons(session: Session, promotion_id: str) -> Iterator[tuple[str, int, str | None]]:
    """(code, redemptions, customer id) of a promotion's codes, oldest first (exports)."""
    _promotion(session, promotion_id)
    stmt = (
        select(_COUPONS.c.code, _COUPONS.c.redemptions, _COUPONS.c.customer_id)
        .where(_COUPONS.c.promotion_id == promotion_id)
        .order_by(_COUPONS.c.created_at, _COUPONS.c.id)
        .execution_options(yield_per=2000)
    )
    for code, redemptions, customer in session.execute(stmt):
        yield str(code), int(redemptions), None if customer is None else str(customer)


def list_coupons(
    session: Session, promotion_id: str, *, cursor: str | None = None, limit: int | None = None
) -> Page[tuple[str, int, str | None]]:
    _promotion(session, promotion_id)
    size = clamp_limit(limit)
    stmt = select(_COUPONS.c.code, _COUPONS.c.redemptions, _COUPONS.c.customer_id).where(
        _COUPONS.c.promotion_id == promotion_id
    )
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(_COUPONS.c.code > str(after[0]))
    rows = session.execute(stmt.order_by(_COUPONS.c.code).limit(size + 1)).all()
    items = [(str(c), int(r), None if o is None else str(o)) for c, r, o in rows[:size]]
    return Page(items, encode_cursor([items[-1][0]]) if len(rows) > size else None)


def _load(session: Session, code: str) -> tuple[LoyaltyCoupon, PromotionView] | None:
    coupon = session.scalar(
        select(LoyaltyCoupon).where(LoyaltyCoupon.code == code).execution_options(populate_existing=True)
    )
    if coupon is None:
        return None
    return coupon, promotion_view(_promotion(session, coupon.promotion_id))


def _customer_uses(session: Session, promotion_id: str, customer_id: str | None) -> int:
    if customer_id is None:
        return 0
    uses = session.scalar(
        select(_USES.c.uses).where(_USES.c.promotion_id == promotion_id, _USES.c.customer_id == customer_id)
    )
    return int(uses or 0)


def _check_order(order_total: Decimal, currency: str) -> None:
    errors = []
    if not is_known_currency(currency):
        errors.append(
            {"loc": ["currency"], "msg": f"unknown currency {currency!r}", "type": "invalid_currency"}
        )
    if not order_total.is_finite() or order_total < 0:
        errors.append({"loc": ["order_total"], "msg": "a decimal amount ≥ 0", "type": "invalid_amount"})
    if errors:
        raise ValidationFailed("invalid order", code="invalid_order", errors=errors)


def validate_coupon(
    session: Session,
    code: str,
    *,
    order_total: Decimal,
    currency: str,
    customer_id: str | None = None,
    market: str | None = None,
    applied_codes: Sequence[str] = (),
) -> CouponCheck:
    """Would the code apply to this order? ``valid`` with the discount, or a stable ``reason``."""
    _check_order(order_total, currency)
    currency = currency.upper()
    normal = normalise_code(code)
    customer = _current_customer(session, customer_id) if customer_id is not None else None
    found = _load(session, normal)
    if found is None:
        return CouponCheck(normal, False, "unknown_code", None)
    coupon, promotion = found
    others: list[bool] = []
    for other in applied_codes:
        loaded = _load(session, normalise_code(other))
        if loaded is not None and loaded[0].id != coupon.id:
            others.append(loaded[1].stackable)
    spec = _spec(promotion, coupon.customer_id)
    reason = rules.coupon_refusal(
        spec,
        redemptions=coupon.redemptions,
        order_total=order_total,
        currency=currency,
        at=now(),
        customer_id=customer,
        customer_uses=_customer_uses(session, promotion.id, customer),
        market=market,
        others_stackable=others,
    )
    if reason is not None:
        return CouponCheck(normal, False, reason, None, promotion.id)
    discount = rules.coupon_discount(spec, order_total, currency, currency_exponent(currency))
    return CouponCheck(normal, True, None, discount, promotion.id)


def _redemption_view(
    row: LoyaltyCouponRedemption, code: str, promotion_id: str, *, replayed: bool
) -> CouponRedemptionView:
    return CouponRedemptionView(
        id=row.id,
        code=code,
        promotion_id=promotion_id,
        customer_id=row.customer_id,
        order_total=Decimal(row.order_total),
        currency=row.currency,
        discount=dict(row.discount),
        created_at=row.created_at,
        replayed=replayed,
    )


def redeem_coupon(
    session: Session,
    code: str,
    *,
    order_total: Decimal,
    currency: str,
    customer_id: str | None = None,
    market: str | None = None,
    applied_codes: Sequence[str] = (),
    key: str | None = None,
) -> CouponRedemptionView:
    """Use the code on an order, once per idempotency key; refused with :class:`CouponRefused`
    (409, ``code`` = the reason) and nothing changed."""
    redemption_key = f"coupon:{key}" if key else f"coupon:{new_id()}"

    def replay() -> CouponRedemptionView | None:
        row = session.scalar(
            select(LoyaltyCouponRedemption).where(LoyaltyCouponRedemption.idempotency_key == redemption_key)
        )
        if row is None:
            return None
        coupon = session.get(LoyaltyCoupon, row.coupon_id)
        assert coupon is not None
        if coupon.code != normalise_code(code):
            raise Conflict("the idempotency key was used for another coupon", code="idempotency_key_reused")
        return _redemption_view(row, coupon.code, coupon.promotion_id, replayed=True)

    done = replay()
    if done is not None:
        return done
    check = validate_coupon(
        session,
        code,
        order_total=order_total,
        currency=currency,
        customer_id=customer_id,
        market=market,
        applied_codes=applied_codes,
    )
    if not check.valid:
        raise CouponRefused(f"the coupon cannot be used: {check.reason}", code=check.reason)
    found = _load(session, check.code)
    assert found is not None
    assert check.discount is not None
    coupon, promotion = found
    customer = _current_customer(session, customer_id) if customer_id is not None else None
    try:
        with session.begin_nested():
            counter = update(_COUPONS).where(_COUPONS.c.id == coupon.id)
            if promotion.max_redemptions is not None:
                counter = counter.where(_COUPONS.c.redemptions < promotion.max_redemptions)
            if int(session.execute(counter.values(redemptions=_COUPONS.c.redemptions + 1)).rowcount) != 1:  # type: ignore[attr-defined]
                raise CouponRefused("the coupon cannot be used: used_up", code="used_up")
            if customer is not None:
                if session.get(LoyaltyCouponUse, (promotion.id, customer)) is None:
                    try:
                        with session.begin_nested():
                            session.add(
                                LoyaltyCouponUse(promotion_id=promotion.id, customer_id=customer, uses=0)
                            )
                            session.flush()
                    except IntegrityError:
                        pass
                uses = update(_USES).where(
                    _USES.c.promotion_id == promotion.id, _USES.c.customer_id == customer
                )
                if promotion.limit_per_customer is not None:
                    uses = uses.where(_USES.c.uses < promotion.limit_per_customer)
                if int(session.execute(uses.values(uses=_USES.c.uses + 1)).rowcount) != 1:  # type: ignore[attr-defined]
                    raise CouponRefused(
                        "the coupon cannot be used: customer_limit_reached", code="customer_limit_reached"
                    )
            row = LoyaltyCouponRedemption(
                id=new_id(),
                coupon_id=coupon.id,
                customer_id=customer,
                order_total=order_total,
                currency=currency.upper(),
                discount=check.discount,
                idempotency_key=redemption_key,
            )
            session.add(row)
            session.flush()
            emit_event(
                session,
                COUPON_REDEEMED,
                {
                    "coupon_id": coupon.id,
                    "promotion_id": promotion.id,
                    "customer_id": customer,
                    "redemption_id": row.id,
                    "discount": check.discount,
                },
            )
    except IntegrityError:
        done = replay()
        if done is None:
            raise
        return done
    return _redemption_view(row, coupon.code, promotion.id, replayed=False)
