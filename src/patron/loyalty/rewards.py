"""The rewards catalogue, redeeming a reward (a unique code; stock and per-customer limits enforced in
the same transaction as the points debit), fulfilment, cancellation (points and stock returned), and
member lookup at the till (phone, email, member card number or its QR payload, external id)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from patron.core.audit import record_audit
from patron.core.clock import now
from patron.core.errors import Conflict, NotFound, ValidationFailed
from patron.core.ids import new_id
from patron.core.money import is_known_currency, parse_decimal, quantize
from patron.core.outbox import emit_event
from patron.customers import find_customer_id_by_external_id, list_customers, normalise_phone
from patron.loyalty import events
from patron.loyalty.contracts import REWARD_KINDS, AccountView, RedemptionView
from patron.loyalty.models import LoyaltyAccount, LoyaltyRedemption, LoyaltyReward
from patron.loyalty.service import (
    _ACCOUNTS,
    _REDEMPTIONS,
    _add_entry,
    _apply,
    _check_key,
    _customer_of,
    _Delta,
    _keyed,
    _redemption,
    _restore_lots,
    _transition,
    debit,
    ensure_account,
    expire_due,
    find_entry,
    get_account,
    get_redemption,
    redemption_view,
    settle_debt,
)

_REWARDS = cast(Table, LoyaltyReward.__table__)
LANGUAGES = ("en", "vi", "hu", "th")
#: readable and unambiguous: no 0/O, 1/I/L; no vowels, so codes never spell words
CODE_ALPHABET = "23456789BCDFGHJKMNPQRSTVWXYZ"


def new_code(groups: int = 3, size: int = 4) -> str:
    """A random code like ``K7QM-4XTB-9HZD`` (28^12 ≈ 2^57 possibilities): unguessable, readable aloud."""
    return "-".join("".join(secrets.choice(CODE_ALPHABET) for _ in range(size)) for _ in range(groups))


class RewardNotFound(NotFound):
    code = "reward_not_found"
    title = "Reward not found"


class RewardUnavailable(Conflict):
    code = "reward_unavailable"
    title = "The reward cannot be redeemed"


class MemberNotFound(NotFound):
    code = "member_not_found"
    title = "No member matches"


@dataclass(frozen=True)
class RewardView:
    id: str
    kind: str
    names: dict[str, str]
    descriptions: dict[str, str]
    cost_points: int
    value_amount: Decimal | None
    currency: str | None
    percent: Decimal | None
    product_sku: str | None
    stock: int | None
    limit_per_customer: int | None
    tiers: list[str]
    markets: list[str]
    active: bool
    version: int


def reward_view(row: LoyaltyReward) -> RewardView:
    return RewardView(
        id=row.id,
        kind=row.kind,
        names={str(k): str(v) for k, v in (row.names or {}).items()},
        descriptions={str(k): str(v) for k, v in (row.descriptions or {}).items()},
        cost_points=row.cost_points,
        value_amount=None if row.value_amount is None else Decimal(row.value_amount),
        currency=row.currency,
        percent=None if row.percent is None else Decimal(row.percent),
        product_sku=row.product_sku,
        stock=row.stock,
        limit_per_customer=row.limit_per_customer,
        tiers=[str(t) for t in row.tiers or []],
        markets=[str(m) for m in row.markets or []],
        active=row.active,
        version=row.version,
    )


def reward_name(view: RewardView, language: str) -> str:
    return view.names.get(language) or view.names.get("en") or next(iter(view.names.values()), view.id)


def _translations(
    value: Any, loc: str, errors: list[dict[str, Any]], *, required: bool, top: int
) -> dict[str, str]:
    if value is None and not required:
        return {}
    if (
        not isinstance(value, Mapping)
        or (required and not value)
        or any(
            k not in LANGUAGES or not isinstance(v, str) or not 0 < len(v) <= top or "\x00" in v
            for k, v in value.items()
        )
    ):
        errors.append(
            {
                "loc": [loc],
                "msg": f"texts by language (en, vi, hu, th), up to {top} characters",
                "type": "invalid",
            }
        )
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _validate(values: Mapping[str, Any]) -> dict[str, Any]:
    errors: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    kind = values.get("kind")
    if kind not in REWARD_KINDS:
        errors.append({"loc": ["kind"], "msg": "one of " + ", ".join(REWARD_KINDS), "type": "invalid_choice"})
    out["kind"] = kind
    out["names"] = _translations(values.get("names"), "names", errors, required=True, top=200)
    out["descriptions"] = _translations(
        values.get("descriptions"), "descriptions", errors, required=False, top=2000
    )
    cost = values.get("cost_points")
    if isinstance(cost, bool) or not isinstance(cost, int) or not 0 < cost <= 100_000_000:
        errors.append(
            {"loc": ["cost_points"], "msg": "a whole number from 1 to 100,000,000", "type": "out_of_range"}
        )
    out["cost_points"] = cost
    for key in ("stock", "limit_per_customer"):
        value = values.get(key)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not (0 if key == "stock" else 1) <= value <= 1_000_000_000
        ):
            errors.append({"loc": [key], "msg": "a whole number or null", "type": "out_of_range"})
        out[key] = value
    currency = values.get("currency")
    amount = values.get("value_amount")
    out["currency"] = currency.upper() if isinstance(currency, str) else None
    out["value_amount"] = None
    if kind == "discount_fixed":
        if not isinstance(currency, str) or not is_known_currency(currency):
            errors.append(
                {"loc": ["currency"], "msg": "a fixed discount needs a currency", "type": "invalid_currency"}
            )
        try:
            parsed = parse_decimal(amount)
            if parsed <= 0:
                raise ValueError
            out["value_amount"] = (
                quantize(parsed, str(currency))
                if isinstance(currency, str) and is_known_currency(currency)
                else parsed
            )
        except (ValidationFailed, ValueError):
            errors.append(
                {"loc": ["value_amount"], "msg": "a positive decimal amount", "type": "invalid_amount"}
            )
    out["percent"] = None
    if kind == "discount_percent":
        try:
            percent = parse_decimal(values.get("percent"))
            if not Decimal(0) < percent <= Decimal(100):
                raise ValueError
            out["percent"] = percent
        except (ValidationFailed, ValueError):
            errors.append(
                {"loc": ["percent"], "msg": "a decimal from 0 (exclusive) to 100", "type": "out_of_range"}
            )
    sku = values.get("product_sku")
    if kind == "free_product" and (not isinstance(sku, str) or not 0 < len(sku) <= 100):
        errors.append({"loc": ["product_sku"], "msg": "a free product needs its SKU", "type": "missing"})
    out["product_sku"] = sku if isinstance(sku, str) else None
    for key in ("tiers", "markets"):
        value = values.get(key) or []
        if not isinstance(value, list) or any(not isinstance(v, str) or not 0 < len(v) <= 50 for v in value):
            errors.append({"loc": [key], "msg": "a list of codes", "type": "invalid_list"})
            value = []
        out[key] = sorted(set(value))
    out["active"] = bool(values.get("active", True))
    if errors:
        raise ValidationFailed("invalid reward", code="invalid_reward", errors=errors)
    return out


def create_reward(session: Session, values: Mapping[str, Any]) -> RewardView:
    row = LoyaltyReward(id=new_id(), **_validate(values))
    session.add(row)
    session.flush()
    view = reward_view(row)
    record_audit(session, "loyalty.reward_created", "loyalty_reward", row.id, new=view.__dict__)
    return view


def _row(session: Session, reward_id: str) -> LoyaltyReward:
    row = session.get(LoyaltyReward, reward_id, populate_existing=True) if len(reward_id) <= 36 else None
    if row is None:
        raise RewardNotFound(f"no reward with id {reward_id!r}")
    return row


def get_reward(session: Session, reward_id: str) -> RewardView:
    return reward_view(_row(session, reward_id))


def update_reward(session: Session, reward_id: str, values: Mapping[str, Any]) -> RewardView:
    row = _row(session, reward_id)
    old = reward_view(row).__dict__
    for key, value in _validate(values).items():
        setattr(row, key, value)
    session.flush()
    view = reward_view(row)
    record_audit(session, "loyalty.reward_updated", "loyalty_reward", row.id, old=old, new=view.__dict__)
    return view


def list_rewards(
    session: Session,
    *,
    customer_id: str | None = None,
    market: str | None = None,
    include_inactive: bool = False,
) -> list[RewardView]:
    """The catalogue; for a customer, only what they may redeem now (tier, market, stock, active)."""
    stmt = select(LoyaltyReward).order_by(LoyaltyReward.cost_points, LoyaltyReward.id)
    if not include_inactive or customer_id is not None:
        stmt = stmt.where(LoyaltyReward.active.is_(True))
    views = [reward_view(r) for r in session.scalars(stmt)]
    if customer_id is None:
        return views
    tier = get_account(session, customer_id).tier_code
    return [
        v
        for v in views
        if (not v.tiers or tier in v.tiers)
        and (not v.markets or market in v.markets)
        and (v.stock is None or v.stock > 0)
    ]


def _refuse(reason: str, detail: str) -> RewardUnavailable:
    return RewardUnavailable(detail, extra={"reason": reason})


def redeem_reward(
    session: Session,
    customer_id: str,
    reward_id: str,
    *,
    market_code: str | None = None,
    key: str | None = None,
) -> RedemptionView:
    """Spend a reward's cost in points and issue a unique code; refused with 409 ``insufficient_points``
    or ``reward_unavailable`` (``reason``: inactive, tier, market, out_of_stock, limit_reached)."""
    reward = _row(session, reward_id)
    account = ensure_account(session, customer_id)
    key = _check_key(f"redeem:{key}" if key else f"redeem:{new_id()}")
    existing = session.scalar(select(LoyaltyRedemption).where(LoyaltyRedemption.idempotency_key == key))
    if existing is not None:
        if existing.account_id != account.id or existing.reward_id != reward.id:
            raise Conflict(
                "the idempotency key was used for another redemption", code="idempotency_key_reused"
            )
        return redemption_view(existing, account.customer_id, replayed=True)
    if not reward.active:
        raise _refuse("inactive", "the reward is not available")
    if reward.tiers and account.tier_code not in reward.tiers:
        raise _refuse("tier", "the reward is for members of another tier")
    if reward.markets and market_code not in reward.markets:
        raise _refuse("market", "the reward is not available in this market")
    expire_due(session, account_id=account.id)
    cost = reward.cost_points

    def work() -> RedemptionView:
        entry = debit(session, account.id, cost, kind="redeem", key=key, source="redemption", redeemed=cost)
        if reward.limit_per_customer is not None:
            used = session.scalar(
                select(func.count())
                .select_from(_REDEMPTIONS)
                .where(
                    _REDEMPTIONS.c.account_id == account.id,
                    _REDEMPTIONS.c.reward_id == reward.id,
                    _REDEMPTIONS.c.status != "cancelled",
                )
            )
            if int(used or 0) >= reward.limit_per_customer:
                raise _refuse("limit_reached", "the customer has redeemed this reward as often as allowed")
        if reward.stock is not None:
            taken = session.execute(
                update(_REWARDS)
                .where(_REWARDS.c.id == reward.id, _REWARDS.c.stock > 0)
                .values(stock=_REWARDS.c.stock - 1)
            )
            if int(taken.rowcount) != 1:  # type: ignore[attr-defined]
                raise _refuse("out_of_stock", "the reward is out of stock")
        row = LoyaltyRedemption(
            id=new_id(),
            account_id=account.id,
            kind="reward",
            points=cost,
            status="captured",
            market_code=market_code,
            value_amount=reward.value_amount,
            currency=reward.currency,
            debit_entry_id=entry.id,
            idempotency_key=key,
            reward_id=reward.id,
            code=new_code(),
            fulfilment_status="pending",
        )
        session.add(row)
        session.flush()
        entry.source_id = row.id
        session.flush()
        emit_event(
            session,
            events.REWARD_REDEEMED,
            {
                "customer_id": account.customer_id,
                "account_id": account.id,
                "redemption_id": row.id,
                "reward_id": reward.id,
                "kind": reward.kind,
                "points": cost,
            },
        )
        return redemption_view(row, account.customer_id)

    def replay(_: Any) -> RedemptionView:
        row = session.scalar(select(LoyaltyRedemption).where(LoyaltyRedemption.idempotency_key == key))
        assert row is not None
        return redemption_view(row, account.customer_id, replayed=True)

    return _keyed(session, key, work, replay)


def fulfil_redemption(session: Session, redemption_id: str) -> RedemptionView:
    """Mark a reward handed over (idempotent)."""
    row, customer_id = _redemption(session, redemption_id)
    if row.kind != "reward" or row.status != "captured":
        raise Conflict(
            f"a {row.status} {row.kind} redemption cannot be fulfilled", code="invalid_redemption_state"
        )
    if row.fulfilment_status == "fulfilled":
        return redemption_view(row, customer_id, replayed=True)
    session.execute(
        update(_REDEMPTIONS)
        .where(_REDEMPTIONS.c.id == row.id, _REDEMPTIONS.c.fulfilment_status == "pending")
        .values(fulfilment_status="fulfilled", fulfilled_at=now(), updated_at=now())
    )
    record_audit(session, "loyalty.redemption_fulfilled", "loyalty_redemption", row.id)
    return get_redemption(session, row.id)


def cancel_redemption(session: Session, redemption_id: str, *, reason: str = "") -> RedemptionView:
    """Cancel a captured redemption that was not fulfilled: its points go back (to the lots they came
    from, debt first) and a reward's stock is restored."""
    row, customer_id = _redemption(session, redemption_id)
    key = f"cancel:{row.id}"
    if row.status == "cancelled" and find_entry(session, key) is not None:
        return redemption_view(row, customer_id, replayed=True)
    if row.status != "captured" or row.fulfilment_status == "fulfilled":
        raise Conflict(
            f"a {row.fulfilment_status or row.status} redemption cannot be cancelled",
            code="invalid_redemption_state",
        )

    def work() -> RedemptionView:
        _transition(session, row, "captured", "cancelled")
        delta = _Delta(points=row.points, redeemed=-row.points)
        if not _apply(session, row.account_id, delta):
            raise Conflict("the loyalty account is closed", code="loyalty_account_closed")
        entry = _add_entry(
            session,
            row.account_id,
            "release",
            delta,
            key=key,
            source="redemption",
            source_id=row.id,
            reason=reason or "redemption cancelled",
        )
        _restore_lots(session, row.debit_entry_id, entry.id)
        if row.reward_id is not None:
            session.execute(
                update(_REWARDS)
                .where(_REWARDS.c.id == row.reward_id, _REWARDS.c.stock.is_not(None))
                .values(stock=_REWARDS.c.stock + 1)
            )
        record_audit(
            session, "loyalty.redemption_cancelled", "loyalty_redemption", row.id, new={"reason": reason}
        )
        return get_redemption(session, row.id)

    result = _keyed(session, key, work, lambda _: get_redemption(session, row.id))
    expire_due(session, account_id=row.account_id)
    settle_debt(session, row.account_id, key=f"{key}:settle", reason="debt paid from returned points")
    return result


# --- member lookup ----------------------------------------------------------------------------------

CARD_DIGITS = re.compile(r"(\d{16})")


def find_member(
    session: Session,
    *,
    card: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    country: str | None = None,
    external_id: str | None = None,
) -> AccountView:
    """Look a member up by member card number (or the QR payload that carries it), email, phone
    (international, or national with ``country``) or external id. Exactly one match or 404."""
    customer_id: str | None = None
    if card:
        match = CARD_DIGITS.search(card)
        if match is not None:
            row = session.execute(
                select(_ACCOUNTS.c.customer_id, _ACCOUNTS.c.merged_into_id).where(
                    _ACCOUNTS.c.card_number == match.group(1)
                )
            ).first()
            if row is not None:
                customer_id = str(row[0])
                if row[1] is not None:
                    target = session.get(LoyaltyAccount, str(row[1]))
                    customer_id = target.customer_id if target is not None else customer_id
    elif external_id:
        customer_id = find_customer_id_by_external_id(session, external_id)
    elif email:
        wanted = email.strip().casefold()
        matches = [
            c.id
            for c in list_customers(session, q=email.strip(), limit=20).items
            if wanted in {e.casefold() for e in (c.email or "", *c.emails)}
        ]
        customer_id = matches[0] if len(matches) == 1 else None
    elif phone:
        try:
            e164 = normalise_phone(phone, country).e164
        except ValueError as exc:
            raise ValidationFailed(
                str(exc),
                code="invalid_phone",
                errors=[{"loc": ["phone"], "msg": str(exc), "type": "invalid_phone"}],
            ) from exc
        found = list_customers(session, q=e164, limit=20).items
        matches = [c.id for c in found if e164 in (c.phone, *c.phones)]
        customer_id = matches[0] if len(matches) == 1 else None
    else:
        raise ValidationFailed(
            "give a card, email, phone or external_id",
            code="missing_lookup",
            errors=[{"loc": ["query"], "msg": "card, email, phone or external_id", "type": "missing"}],
        )
    if customer_id is None:
        raise MemberNotFound("no member matches")
    return get_account(session, customer_id)


def customer_of_redemption(session: Session, redemption_id: str) -> str:
    row, _ = _redemption(session, redemption_id)
    return _customer_of(session, row.account_id)
