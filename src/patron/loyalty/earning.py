"""Earning: rules as data, order events (pending on ``order.placed``, vesting after fulfilment plus the
pending period, reversal line by line on ``order.refunded``, all on ``order.cancelled``), reported
custom events, and simulation. The arithmetic lives in :mod:`patron.loyalty.rules` (pure).

Event handlers are idempotent with respect to the event: each writes a ledger entry whose
idempotency key names the order and the event, and returns early when it exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.commerce import OrderRecord, get_order, get_order_state
from patron.core.audit import record_audit
from patron.core.business import Market, business_zone
from patron.core.clock import now
from patron.core.errors import NotFound, ValidationFailed
from patron.core.ids import new_id
from patron.core.money import Money, parse_decimal
from patron.core.outbox import DomainEvent
from patron.customers import CustomerErased
from patron.loyalty import rules
from patron.loyalty.contracts import EarningView, MarketSettingsView, RuleView
from patron.loyalty.errors import AccountClosed, NotEnrolled, RuleNotFound
from patron.loyalty.models import (
    LoyaltyAccount,
    LoyaltyEvent,
    LoyaltyOrderEarning,
    LoyaltyOrderLine,
    LoyaltyRule,
    LoyaltyRuleUse,
)
from patron.loyalty.service import (
    _ACCOUNTS,
    _add_entry,
    _apply,
    _balances,
    _consume_lots,
    _Delta,
    _programme_row,
    credit,
    ensure_account,
    find_entry,
    memoised,
    settings_for,
)
from patron.loyalty.tiers import evaluate_tier, tier_multiplier_specs

_EARNINGS = cast(Table, LoyaltyOrderEarning.__table__)
_LINES = cast(Table, LoyaltyOrderLine.__table__)
_USES = cast(Table, LoyaltyRuleUse.__table__)

EVENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,99}$")


def _invalid(loc: list[str | int], msg: str, code: str) -> ValidationFailed:
    return ValidationFailed(msg, code=code, errors=[{"loc": loc, "msg": msg, "type": code}])


# --- rules as data ----------------------------------------------------------------------------------


def rule_view(row: LoyaltyRule) -> RuleView:
    return RuleView(
        id=row.id,
        name=row.name,
        kind=row.kind,
        active=row.active,
        multiplier=Decimal(row.multiplier),
        points=row.points,
        event_type=row.event_type,
        conditions=dict(row.conditions or {}),
        limit_per_customer=row.limit_per_customer,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _parse_when(value: Any, loc: str, errors: list[dict[str, Any]]) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            errors.append(
                {"loc": ["conditions", loc], "msg": "an ISO 8601 date-time", "type": "invalid_datetime"}
            )
            return None
    else:
        errors.append(
            {"loc": ["conditions", loc], "msg": "an ISO 8601 date-time", "type": "invalid_datetime"}
        )
        return None
    if parsed.tzinfo is None:
        errors.append(
            {"loc": ["conditions", loc], "msg": "needs a time zone offset", "type": "naive_datetime"}
        )
        return None
    return parsed.astimezone(UTC)


def _clean_conditions(conditions: Mapping[str, Any], errors: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in conditions.items():
        if key not in rules.CONDITION_KEYS:
            errors.append(
                {"loc": ["conditions", key], "msg": "not a known condition", "type": "unknown_condition"}
            )
            continue
        if key in ("starts_at", "ends_at"):
            parsed = _parse_when(value, key, errors)
            if parsed is not None:
                out[key] = parsed.isoformat()
            continue
        if (
            not isinstance(value, list)
            or len(value) > 500
            or not all(isinstance(v, str) and 0 < len(v) <= 200 and "\x00" not in v for v in value)
        ):
            errors.append(
                {"loc": ["conditions", key], "msg": "a list of up to 500 names", "type": "invalid_list"}
            )
            continue
        out[key] = sorted(set(value))
    if "starts_at" in out and "ends_at" in out and out["starts_at"] >= out["ends_at"]:
        errors.append(
            {"loc": ["conditions", "ends_at"], "msg": "must be after starts_at", "type": "invalid_window"}
        )
    return out


def _validate_rule(values: Mapping[str, Any]) -> dict[str, Any]:
    errors: list[dict[str, Any]] = []
    name = values.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or "\x00" in name:
        errors.append({"loc": ["name"], "msg": "1 to 200 characters", "type": "invalid"})
    kind = values.get("kind")
    if kind not in rules.RULE_KINDS:
        errors.append({"loc": ["kind"], "msg": "multiplier or bonus", "type": "invalid_choice"})
    multiplier = values.get("multiplier", Decimal(1))
    try:
        multiplier = parse_decimal(multiplier)
        if not Decimal(0) <= multiplier <= Decimal(100):
            raise ValueError
    except (ValidationFailed, ValueError):
        errors.append({"loc": ["multiplier"], "msg": "a decimal from 0 to 100", "type": "out_of_range"})
    points = values.get("points", 0)
    if isinstance(points, bool) or not isinstance(points, int) or not 0 <= points <= 1_000_000:
        errors.append(
            {"loc": ["points"], "msg": "a whole number from 0 to 1,000,000", "type": "out_of_range"}
        )
    event_type = values.get("event_type")
    if kind == "bonus" and (not isinstance(event_type, str) or not EVENT_TYPE.match(event_type)):
        errors.append(
            {"loc": ["event_type"], "msg": "a bonus needs an event type slug", "type": "invalid_event_type"}
        )
    if kind == "multiplier" and event_type is not None:
        errors.append(
            {"loc": ["event_type"], "msg": "multipliers apply to orders only", "type": "invalid_event_type"}
        )
    limit = values.get("limit_per_customer")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1_000_000
    ):
        errors.append(
            {"loc": ["limit_per_customer"], "msg": "a whole number ≥ 1 or null", "type": "out_of_range"}
        )
    conditions = values.get("conditions") or {}
    if not isinstance(conditions, Mapping):
        errors.append({"loc": ["conditions"], "msg": "an object", "type": "invalid"})
        conditions = {}
    cleaned = _clean_conditions(conditions, errors)
    if errors:
        raise ValidationFailed("invalid loyalty rule", code="invalid_rule", errors=errors)
    return {
        "name": str(name).strip(),
        "kind": kind,
        "multiplier": multiplier,
        "points": points,
        "event_type": event_type,
        "limit_per_customer": limit,
        "conditions": cleaned,
        "active": bool(values.get("active", True)),
    }


def create_rule(session: Session, values: Mapping[str, Any]) -> RuleView:
    data = _validate_rule(values)
    row = LoyaltyRule(id=new_id(), **data)
    session.add(row)
    session.flush()
    view = rule_view(row)
    record_audit(session, "loyalty.rule_created", "loyalty_rule", row.id, new=_audit(view))
    return view


def _audit(view: RuleView) -> dict[str, Any]:
    return {k: v for k, v in view.__dict__.items() if k not in ("created_at", "updated_at", "version")}


def _rule_row(session: Session, rule_id: str) -> LoyaltyRule:
    row = session.get(LoyaltyRule, rule_id) if len(rule_id) <= 36 else None
    if row is None:
        raise RuleNotFound(f"no loyalty rule with id {rule_id!r}")
    return row


def get_rule(session: Session, rule_id: str) -> RuleView:
    return rule_view(_rule_row(session, rule_id))


def list_rules(session: Session) -> list[RuleView]:
    return [
        rule_view(r)
        for r in session.scalars(select(LoyaltyRule).order_by(LoyaltyRule.created_at, LoyaltyRule.id))
    ]


def update_rule(session: Session, rule_id: str, values: Mapping[str, Any]) -> RuleView:
    """Replace a rule's definition (all fields, as on creation)."""
    row = _rule_row(session, rule_id)
    old = _audit(rule_view(row))
    data = _validate_rule(values)
    for key, value in data.items():
        setattr(row, key, value)
    session.flush()
    view = rule_view(row)
    record_audit(session, "loyalty.rule_updated", "loyalty_rule", row.id, old=old, new=_audit(view))
    return view


def delete_rule(session: Session, rule_id: str) -> None:
    row = _rule_row(session, rule_id)
    old = _audit(rule_view(row))
    session.execute(delete(LoyaltyRuleUse).where(LoyaltyRuleUse.rule_id == row.id))
    session.delete(row)
    session.flush()
    record_audit(session, "loyalty.rule_deleted", "loyalty_rule", rule_id, old=old)


def _when(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def rule_spec(view: RuleView) -> rules.RuleSpec:
    c = view.conditions
    return rules.RuleSpec(
        id=view.id,
        name=view.name,
        kind=view.kind,
        multiplier=view.multiplier,
        points=view.points,
        event_type=view.event_type,
        categories=frozenset(c.get("categories", ())),
        skus=frozenset(c.get("skus", ())),
        tiers=frozenset(c.get("tiers", ())),
        channels=frozenset(c.get("channels", ())),
        markets=frozenset(c.get("markets", ())),
        starts_at=_when(c.get("starts_at")),
        ends_at=_when(c.get("ends_at")),
        limit_per_customer=view.limit_per_customer,
    )


def active_specs(session: Session) -> list[rules.RuleSpec]:
    return list(memoised(session, ("active_specs",), lambda: _active_specs(session)))


def _active_specs(session: Session) -> list[rules.RuleSpec]:
    rows = session.scalars(
        select(LoyaltyRule)
        .where(LoyaltyRule.active.is_(True))
        .order_by(LoyaltyRule.created_at, LoyaltyRule.id)
    )
    return [rule_spec(rule_view(r)) for r in rows]


def _rule_uses(session: Session, account_id: str | None) -> dict[str, int]:
    if account_id is None:
        return {}
    return {
        str(rid): int(n)
        for rid, n in session.execute(
            select(_USES.c.rule_id, _USES.c.uses).where(_USES.c.account_id == account_id)
        )
    }


def _count_uses(
    session: Session, account_id: str, rule_ids: Sequence[str], limits: Mapping[str, int | None]
) -> None:
    for rule_id in rule_ids:
        if session.get(LoyaltyRuleUse, (rule_id, account_id)) is None:
            try:
                with session.begin_nested():
                    session.add(LoyaltyRuleUse(rule_id=rule_id, account_id=account_id, uses=0))
                    session.flush()
            except IntegrityError:
                pass
        stmt = update(_USES).where(_USES.c.rule_id == rule_id, _USES.c.account_id == account_id)
        limit = limits.get(rule_id)
        if limit is not None:
            stmt = stmt.where(_USES.c.uses < limit)
        result = session.execute(stmt.values(uses=_USES.c.uses + 1))
        if int(result.rowcount) != 1:  # type: ignore[attr-defined]
            raise ValidationFailed(
                "a rule's per-customer limit was reached concurrently", code="rule_limit_reached"
            )


# --- orders -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderShape:
    """What earning needs of an order (a real one or a simulated one)."""

    currency: str
    market_code: str | None
    channel: str | None
    placed_at: datetime
    net: Decimal  # subtotal − discount
    total: Decimal
    lines: tuple[tuple[str, str | None, str | None, int, Decimal], ...]  # id, sku, category, quantity, total


def payload_shape(payload: Mapping[str, Any]) -> OrderShape | None:
    """The shape from an ``order.placed`` payload, or ``None`` when the payload lacks a field earning
    needs (events written before the payload carried them, or by a path that does not add them)."""
    try:
        lines = payload["lines"]
        if not isinstance(lines, list) or any(
            not isinstance(ln, dict) or "category" not in ln for ln in lines
        ):
            return None
        placed_at = datetime.fromisoformat(str(payload["placed_at"]))
        if placed_at.tzinfo is None:
            return None
        return OrderShape(
            currency=str(payload["total"]["currency"]),
            market_code=payload.get("market"),
            channel=payload.get("channel"),
            placed_at=placed_at,
            net=Decimal(str(payload["subtotal"])) - Decimal(str(payload["discount"])),
            total=Decimal(str(payload["total"]["amount"])),
            lines=tuple(
                (
                    str(ln["line_id"]),
                    ln.get("sku"),
                    ln.get("category"),
                    int(ln["quantity"]),
                    Decimal(str(ln["total"])),
                )
                for ln in lines
            ),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


def order_shape(order: OrderRecord) -> OrderShape:
    return OrderShape(
        currency=order.currency,
        market_code=order.market_code,
        channel=order.channel,
        placed_at=order.placed_at,
        net=order.subtotal.amount - order.discount.amount,
        total=order.total.amount,
        lines=tuple((ln.id, ln.sku, ln.category, ln.quantity, ln.total.amount) for ln in order.lines),
    )


def line_inputs(shape: OrderShape, base: str) -> list[rules.LineInput]:
    """Each line's share of the earn base (net of discounts, tax and shipping by default; or the
    order total), split in proportion to the line totals so the shares add up exactly."""
    amount = max(shape.net if base == "net" else shape.total, Decimal(0))
    weights = [max(total, Decimal(0)) for *_, total in shape.lines]
    if shape.lines and sum(weights, Decimal(0)) > 0:
        shares = [m.amount for m in Money(amount, shape.currency).allocate(list[int | Decimal](weights))]
    else:
        shares = [Decimal(0)] * len(shape.lines)
    return [
        rules.LineInput(line_id=lid, sku=sku, category=cat, quantity=qty, base=share)
        for (lid, sku, cat, qty, _), share in zip(shape.lines, shares, strict=True)
    ]


def _market_zone(session: Session, market_code: str | None) -> ZoneInfo:
    return memoised(session, ("zone", market_code), lambda: _load_market_zone(session, market_code))


def _load_market_zone(session: Session, market_code: str | None) -> ZoneInfo:
    if market_code is not None:
        tz = session.scalar(select(Market.time_zone).where(Market.code == market_code))
        if tz:
            return ZoneInfo(str(tz))
    return business_zone(session)


def _earned_on(session: Session, account_id: str, day: date) -> int:
    value = session.scalar(
        select(func.coalesce(func.sum(_EARNINGS.c.points), 0)).where(
            _EARNINGS.c.account_id == account_id, _EARNINGS.c.earn_day == day
        )
    )
    return int(value or 0)


def compute_order(
    session: Session, shape: OrderShape, settings: MarketSettingsView, account: LoyaltyAccount | None
) -> tuple[rules.Earning, date]:
    day = shape.placed_at.astimezone(_market_zone(session, settings.market_code)).date()
    rate = rules.EarnRate(
        spend=settings.earn_spend_amount,
        points=settings.earn_points,
        cap_per_order=settings.cap_per_order,
        cap_per_day=settings.cap_per_day,
    )
    specs = active_specs(session) + tier_multiplier_specs(session)
    # what a cap per day and per-customer rule limits depend on (read only when they apply)
    daily = account is not None and settings.cap_per_day is not None
    limited = account is not None and any(s.limit_per_customer is not None for s in specs)
    earning = rules.order_points(
        line_inputs(shape, settings.earn_base),
        rate,
        specs,
        tier=None if account is None else account.tier_code,
        channel=shape.channel,
        market=settings.market_code,
        at=shape.placed_at,
        earned_today=_earned_on(session, account.id, day) if daily and account is not None else 0,
        rule_uses=_rule_uses(session, account.id if limited and account is not None else None),
    )
    return earning, day


def _lock(session: Session, account_id: str) -> None:
    """Take the account's row lock (a no-op update) before reading what a guard depends on."""
    _apply(session, account_id, _Delta(), allow_closed=True)


def on_order_placed(session: Session, event: DomainEvent) -> None:
    """Earn pending points for a live order (backfill — events flagged ``live: false`` — earns nothing).

    The order's amounts and lines come from the event's payload when it carries them and the order's
    content hash still matches (the order was not re-imported with other content since); otherwise
    from the order itself. Status, customer and fulfilment are always read from the order."""
    payload = event.payload
    if payload.get("live") is False:
        return
    order_id = str(payload["order_id"])
    if session.scalar(select(_EARNINGS.c.order_id).where(_EARNINGS.c.order_id == order_id)) is not None:
        return
    state = get_order_state(session, order_id)
    if state.status == "cancelled":
        return
    shape = (
        payload_shape(payload)
        if state.content_hash and payload.get("content_hash") == state.content_hash
        else None
    )
    if shape is None:
        shape = order_shape(get_order(session, order_id))
    settings = settings_for(session, shape.market_code, shape.currency)
    if settings is None:
        return
    try:
        account = ensure_account(session, state.customer_id)
    except (NotEnrolled, AccountClosed, CustomerErased):
        return
    specs = active_specs(session)
    if settings.cap_per_day is not None or any(s.limit_per_customer is not None for s in specs):
        _lock(session, account.id)  # before reading what the caps and limits depend on
    earning, day = compute_order(session, shape, settings, account)
    row = LoyaltyOrderEarning(
        order_id=order_id,
        account_id=account.id,
        market_code=settings.market_code,
        currency=shape.currency,
        earn_day=day,
        points=earning.points,
        status="pending",
        placed_at=shape.placed_at,
        explanation={"reasons": earning.explanation()},
    )
    session.add(row)
    session.flush()
    if shape.lines:
        session.execute(
            _LINES.insert(),
            [
                {
                    "order_id": order_id,
                    "line_id": line_id,
                    "quantity": quantity,
                    "points": earning.lines.get(line_id, 0),
                    "reversed_quantity": 0,
                    "reversed_points": 0,
                }
                for line_id, _, _, quantity, _ in shape.lines
            ],
        )
    if earning.points > 0:
        delta = _Delta(pending=earning.points)
        _apply(session, account.id, delta)
        _add_entry(
            session,
            account.id,
            "earn",
            delta,
            key=f"order:{order_id}:earn",
            source="order",
            source_id=order_id,
            reason="order placed",
            data={"explanation": earning.explanation()},
            occurred_at=shape.placed_at,
        )
    if earning.bonus_rule_ids:
        limits = {s.id: s.limit_per_customer for s in specs}
        _count_uses(session, account.id, earning.bonus_rule_ids, limits)
    session.flush()
    if state.fulfilled_at is not None:
        _schedule_vest(session, row, state.fulfilled_at)
    if _programme_row(session).tier_basis == "spend":
        evaluate_tier(session, account.id)


def _schedule_vest(session: Session, row: LoyaltyOrderEarning, fulfilled_at: datetime) -> None:
    if row.status != "pending" or row.vests_at is not None:
        return
    row.vests_at = fulfilled_at + timedelta(days=_programme_row(session).pending_days)
    session.flush()
    if row.vests_at <= now():
        vest(session, row.order_id)


def on_order_fulfilled(session: Session, event: DomainEvent) -> None:
    order_id = str(event.payload["order_id"])
    row = session.get(LoyaltyOrderEarning, order_id)
    if row is None:
        return
    raw = event.payload.get("fulfilled_at")
    fulfilled_at = datetime.fromisoformat(raw) if isinstance(raw, str) else event.occurred_at
    _schedule_vest(session, row, fulfilled_at)


def vest(session: Session, order_id: str) -> int:
    """Move an order's remaining pending points to the available balance (debt first). Returns them."""
    row = session.get(LoyaltyOrderEarning, order_id, populate_existing=True)
    if row is None or row.status != "pending":
        return 0
    key = f"order:{order_id}:vest"
    if find_entry(session, key) is not None:
        return 0
    result = session.execute(
        update(_EARNINGS)
        .where(_EARNINGS.c.order_id == order_id, _EARNINGS.c.status == "pending")
        .values(status="vested", vested_at=now())
    )
    if int(result.rowcount) != 1:  # type: ignore[attr-defined]
        return 0
    remaining = row.points - row.reversed_points
    if remaining > 0:
        credit(
            session,
            row.account_id,
            remaining,
            kind="vest",
            key=key,
            source="order",
            source_id=order_id,
            reason="order vested",
            pending=-remaining,
        )
        evaluate_tier(session, row.account_id)
    session.expire(row)
    return max(remaining, 0)


def vest_due(session: Session, *, at: datetime | None = None, batch: int = 500) -> int:
    """Vest every pending order earning whose pending period has passed. Returns the points vested."""
    when = at or now()
    due = session.scalars(
        select(_EARNINGS.c.order_id)
        .where(
            _EARNINGS.c.status == "pending", _EARNINGS.c.vests_at.is_not(None), _EARNINGS.c.vests_at <= when
        )
        .order_by(_EARNINGS.c.vests_at)
        .limit(batch)
    ).all()
    return sum(vest(session, str(order_id)) for order_id in due)


def _reverse(
    session: Session, row: LoyaltyOrderEarning, points: int, *, key: str, reason: str, data: dict[str, Any]
) -> None:
    """Take ``points`` of an order's earning back: from pending if not vested yet; else from the
    available balance, and whatever was already spent becomes debt."""
    account_id = row.account_id
    if row.status == "pending":
        delta = _Delta(pending=-points)
        _apply(session, account_id, delta, allow_closed=True)
        _add_entry(
            session,
            account_id,
            "reverse",
            delta,
            key=key,
            source="order",
            source_id=row.order_id,
            reason=reason,
            data=data,
        )
    else:
        for _ in range(20):
            available, _, _ = _balances(session, account_id)
            take = min(available, points)
            delta = _Delta(points=-take, debt=points - take)
            if _apply(session, account_id, delta, expect_available=available, allow_closed=True):
                break
        else:  # pragma: no cover - the row lock makes this unreachable
            raise RuntimeError("could not reverse points")
        entry = _add_entry(
            session,
            account_id,
            "reverse",
            delta,
            key=key,
            source="order",
            source_id=row.order_id,
            reason=reason,
            data=data,
        )
        if take:
            _consume_lots(session, account_id, entry.id, take)
    new_reversed = row.reversed_points + points
    values: dict[str, Any] = {"reversed_points": new_reversed}
    if row.status == "pending" and new_reversed >= row.points:
        values["status"] = "reversed"
    session.execute(update(_EARNINGS).where(_EARNINGS.c.order_id == row.order_id).values(**values))
    session.expire(row)


def _reverse_lines(session: Session, order_id: str, quantities: Mapping[str, int] | None) -> int:
    """Mark refunded quantities on the order's lines; ``None`` means everything left. Returns points."""
    total = 0
    for line in session.scalars(select(LoyaltyOrderLine).where(LoyaltyOrderLine.order_id == order_id)).all():
        left = line.quantity - line.reversed_quantity
        qty = left if quantities is None else min(quantities.get(line.line_id, 0), left)
        if qty <= 0:
            continue
        points = rules.reversal(line.points, line.quantity, line.reversed_quantity, qty)
        result = session.execute(
            update(_LINES)
            .where(
                _LINES.c.order_id == order_id,
                _LINES.c.line_id == line.line_id,
                _LINES.c.reversed_quantity + qty <= _LINES.c.quantity,
            )
            .values(
                reversed_quantity=_LINES.c.reversed_quantity + qty,
                reversed_points=_LINES.c.reversed_points + points,
            )
        )
        if int(result.rowcount) == 1:  # type: ignore[attr-defined]
            total += points
        session.expire(line)
    return total


def on_order_refunded(session: Session, event: DomainEvent) -> None:
    """Reverse the points of the refunded (or returned) quantities, line by line."""
    order_id = str(event.payload["order_id"])
    key = f"order:{order_id}:refund:{event.id}"
    row = session.get(LoyaltyOrderEarning, order_id, populate_existing=True)
    if row is None or find_entry(session, key) is not None:
        return
    _lock(session, row.account_id)
    quantities: dict[str, int] = {}
    for line in event.payload.get("lines", []):
        quantities[str(line["line_id"])] = quantities.get(str(line["line_id"]), 0) + int(line["quantity"])
    points = _reverse_lines(session, order_id, quantities)
    _reverse(session, row, points, key=key, reason="order refunded", data={"lines": quantities})


def on_order_cancelled(session: Session, event: DomainEvent) -> None:
    order_id = str(event.payload["order_id"])
    key = f"order:{order_id}:cancel"
    row = session.get(LoyaltyOrderEarning, order_id, populate_existing=True)
    if row is None or find_entry(session, key) is not None:
        return
    _lock(session, row.account_id)
    points = _reverse_lines(session, order_id, None)
    _reverse(session, row, points, key=key, reason="order cancelled", data={})


# --- reported events ----------------------------------------------------------------------------------


def has_nul(value: object) -> bool:
    """NUL characters anywhere in a JSON value (PostgreSQL cannot store them)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


def _check_event(event_type: str, occurred_at: datetime, attributes: Mapping[str, Any]) -> None:
    errors = []
    if not isinstance(event_type, str) or not EVENT_TYPE.match(event_type):
        errors.append(
            {
                "loc": ["type"],
                "msg": "a lower-case slug of up to 100 characters",
                "type": "invalid_event_type",
            }
        )
    if occurred_at.tzinfo is None:
        errors.append({"loc": ["occurred_at"], "msg": "needs a time zone offset", "type": "naive_datetime"})
    if not isinstance(attributes, Mapping):
        errors.append({"loc": ["attributes"], "msg": "an object", "type": "invalid"})
    elif has_nul(dict(attributes)):
        errors.append(
            {"loc": ["attributes"], "msg": "must not contain NUL characters", "type": "invalid_text"}
        )
    if errors:
        raise ValidationFailed("invalid loyalty event", code="invalid_event", errors=errors)


def _event_view(row: LoyaltyEvent, entry_id: str | None, *, replayed: bool) -> EarningView:
    return EarningView(
        points=row.points,
        status="credited" if row.points else "no_points",
        lines={},
        explanation=list((row.explanation or {}).get("reasons", [])),
        entry_id=entry_id,
        replayed=replayed,
    )


def report_event(
    session: Session,
    customer_id: str,
    event_type: str,
    *,
    occurred_at: datetime,
    attributes: Mapping[str, Any] | None = None,
    key: str | None = None,
) -> EarningView:
    """Report a custom event (sign-up, birthday, review …): pays the matching bonus rules once per
    idempotency key — the caller's, or (customer, type, occurred_at) — however often it is reported."""
    attrs = dict(attributes or {})
    _check_event(event_type, occurred_at, attrs)
    account = ensure_account(session, customer_id)
    event_key = (
        f"event:{key}"
        if key
        else f"event:{account.customer_id}:{event_type}:{occurred_at.astimezone(UTC).isoformat()}"
    )
    if len(event_key) > 300:
        raise _invalid(["idempotency_key"], "at most 280 characters", "invalid_idempotency_key")

    def existing() -> EarningView | None:
        row = session.scalar(select(LoyaltyEvent).where(LoyaltyEvent.idempotency_key == event_key))
        if row is None:
            return None
        if row.account_id != account.id or row.type != event_type:
            raise ValidationFailed(
                "the idempotency key was used for another event", code="idempotency_key_reused"
            )
        entry = find_entry(session, event_key)
        return _event_view(row, None if entry is None else entry.id, replayed=True)

    found = existing()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            _lock(session, account.id)
            specs = active_specs(session)
            channel = attrs.get("channel") if isinstance(attrs.get("channel"), str) else None
            market = attrs.get("market") if isinstance(attrs.get("market"), str) else None
            earning = rules.event_points(
                event_type,
                specs,
                tier=account.tier_code,
                channel=channel,
                market=market,
                at=occurred_at,
                rule_uses=_rule_uses(session, account.id),
            )
            row = LoyaltyEvent(
                id=new_id(),
                account_id=account.id,
                type=event_type,
                occurred_at=occurred_at,
                attributes=attrs,
                idempotency_key=event_key,
                points=earning.points,
                explanation={"reasons": earning.explanation()},
            )
            session.add(row)
            session.flush()
            entry_id = None
            if earning.points > 0:
                entry = credit(
                    session,
                    account.id,
                    earning.points,
                    kind="earn",
                    key=event_key,
                    source="event",
                    source_id=row.id,
                    reason=event_type,
                    data={"explanation": earning.explanation()},
                )
                entry_id = entry.id
                evaluate_tier(session, account.id)
            _count_uses(
                session, account.id, earning.bonus_rule_ids, {s.id: s.limit_per_customer for s in specs}
            )
            return _event_view(row, entry_id, replayed=False)
    except IntegrityError:
        found = existing()
        if found is None:
            raise
        return found


# --- simulation ---------------------------------------------------------------------------------------


def simulate_order(session: Session, shape: OrderShape, customer_id: str | None = None) -> EarningView:
    """What an order would earn and why (nothing is written)."""
    settings = settings_for(session, shape.market_code, shape.currency)
    if settings is None:
        raise NotFound(
            f"no loyalty settings for market {shape.market_code!r} or currency {shape.currency}",
            code="loyalty_market_not_configured",
        )
    account = None
    if customer_id is not None:
        account = session.scalar(select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id))
    earning, _ = compute_order(session, shape, settings, account)
    return EarningView(
        points=earning.points, status="simulated", lines=earning.lines, explanation=earning.explanation()
    )


def simulate_event(
    session: Session,
    event_type: str,
    occurred_at: datetime,
    attributes: Mapping[str, Any],
    customer_id: str | None,
) -> EarningView:
    _check_event(event_type, occurred_at, attributes)
    account = None
    if customer_id is not None:
        account = session.scalar(select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id))
    channel = attributes.get("channel") if isinstance(attributes.get("channel"), str) else None
    market = attributes.get("market") if isinstance(attributes.get("market"), str) else None
    earning = rules.event_points(
        event_type,
        active_specs(session),
        tier=None if account is None else account.tier_code,
        channel=channel,
        market=market,
        at=occurred_at,
        rule_uses=_rule_uses(session, None if account is None else account.id),
    )
    return EarningView(points=earning.points, status="simulated", lines={}, explanation=earning.explanation())


def account_ids_for(session: Session, customer_ids: Sequence[str]) -> dict[str, str]:
    rows = session.execute(
        select(_ACCOUNTS.c.customer_id, _ACCOUNTS.c.id).where(_ACCOUNTS.c.customer_id.in_(list(customer_ids)))
    )
    return {str(c): str(a) for c, a in rows}
