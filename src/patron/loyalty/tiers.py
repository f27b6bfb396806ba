"""Tiers: configuration, qualification (points earned or spend in the reporting currency within a
rolling window or the calendar year), instant upgrades, downgrades only at review with a grace
period, progress, ``tier.changed``. The decisions are pure (:func:`patron.loyalty.rules.tier_decision`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.orm import Session

from patron.commerce import list_orders
from patron.core.audit import record_audit
from patron.core.business import business_zone
from patron.core.clock import now
from patron.core.errors import Conflict, NotFound, ValidationFailed
from patron.core.ids import new_id
from patron.core.money import parse_decimal
from patron.core.outbox import emit_event
from patron.loyalty import events, rules
from patron.loyalty.models import LoyaltyAccount, LoyaltyEntry, LoyaltyTier
from patron.loyalty.service import _ACCOUNTS, _programme_row, memoised, publish_account

TIER_CODE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,49}$")
LANGUAGES = ("en", "vi", "hu", "th")
_ENTRIES = cast(Table, LoyaltyEntry.__table__)


@dataclass(frozen=True)
class TierView:
    id: str
    code: str
    rank: int
    names: dict[str, str]
    threshold: Decimal
    multiplier: Decimal
    perks: list[str]
    version: int


@dataclass(frozen=True)
class TierProgress:
    basis: str
    value: Decimal
    current: TierView | None
    next: TierView | None
    remaining: Decimal | None
    review_at: datetime | None
    grace_until: datetime | None


class TierNotFound(NotFound):
    code = "loyalty_tier_not_found"
    title = "Loyalty tier not found"


def tier_view(row: LoyaltyTier) -> TierView:
    return TierView(
        id=row.id,
        code=row.code,
        rank=row.rank,
        names={str(k): str(v) for k, v in (row.names or {}).items()},
        threshold=Decimal(row.threshold),
        multiplier=Decimal(row.multiplier),
        perks=[str(p) for p in (row.perks or [])],
        version=row.version,
    )


def tier_name(view: TierView, language: str) -> str:
    """The tier's name in ``language``, else English, else its code."""
    return view.names.get(language) or view.names.get("en") or view.code


def list_tiers(session: Session) -> list[TierView]:
    return [tier_view(t) for t in session.scalars(select(LoyaltyTier).order_by(LoyaltyTier.rank))]


def _row(session: Session, code: str) -> LoyaltyTier:
    row = session.scalar(select(LoyaltyTier).where(LoyaltyTier.code == code)) if len(code) <= 50 else None
    if row is None:
        raise TierNotFound(f"no loyalty tier {code!r}")
    return row


def get_tier(session: Session, code: str) -> TierView:
    return tier_view(_row(session, code))


def _validate(values: Mapping[str, Any], *, code_required: bool) -> dict[str, Any]:
    errors: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    if code_required:
        code = values.get("code")
        if not isinstance(code, str) or not TIER_CODE.match(code):
            errors.append(
                {"loc": ["code"], "msg": "a lower-case slug of up to 50 characters", "type": "invalid"}
            )
        out["code"] = code
    rank = values.get("rank")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank <= 1000:
        errors.append({"loc": ["rank"], "msg": "a whole number from 0 to 1000", "type": "out_of_range"})
    out["rank"] = rank
    names = values.get("names") or {}
    if (
        not isinstance(names, Mapping)
        or not names
        or any(
            k not in LANGUAGES or not isinstance(v, str) or not 0 < len(v) <= 100 for k, v in names.items()
        )
    ):
        errors.append(
            {
                "loc": ["names"],
                "msg": "names by language (en, vi, hu, th), 1 to 100 characters",
                "type": "invalid",
            }
        )
    out["names"] = dict(names) if isinstance(names, Mapping) else {}
    for key, default, top in (
        ("threshold", Decimal(0), Decimal(10**12)),
        ("multiplier", Decimal(1), Decimal(100)),
    ):
        try:
            value = parse_decimal(values.get(key, default))
            if not Decimal(0) <= value <= top:
                raise ValueError
            out[key] = value
        except (ValidationFailed, ValueError):
            errors.append({"loc": [key], "msg": f"a decimal from 0 to {top}", "type": "out_of_range"})
    perks = values.get("perks") or []
    if (
        not isinstance(perks, list)
        or len(perks) > 50
        or any(not isinstance(p, str) or len(p) > 200 for p in perks)
    ):
        errors.append({"loc": ["perks"], "msg": "up to 50 texts", "type": "invalid"})
    out["perks"] = list(perks) if isinstance(perks, list) else []
    if errors:
        raise ValidationFailed("invalid loyalty tier", code="invalid_tier", errors=errors)
    return out


def _conflicts(session: Session, data: Mapping[str, Any], exclude_id: str | None = None) -> None:
    stmt = select(LoyaltyTier.id).where(
        or_(LoyaltyTier.rank == data["rank"], LoyaltyTier.code == data.get("code", "\x01"))
    )
    if exclude_id is not None:
        stmt = stmt.where(LoyaltyTier.id != exclude_id)
    if session.scalar(stmt) is not None:
        raise Conflict("another tier has this code or rank", code="duplicate_tier")


def create_tier(session: Session, values: Mapping[str, Any]) -> TierView:
    data = _validate(values, code_required=True)
    _conflicts(session, data)
    row = LoyaltyTier(id=new_id(), **data)
    session.add(row)
    session.flush()
    view = tier_view(row)
    record_audit(session, "loyalty.tier_created", "loyalty_tier", row.id, new=view.__dict__)
    return view


def update_tier(session: Session, code: str, values: Mapping[str, Any]) -> TierView:
    row = _row(session, code)
    old = tier_view(row).__dict__
    data = _validate(values, code_required=False)
    _conflicts(session, data, exclude_id=row.id)
    for key, value in data.items():
        setattr(row, key, value)
    session.flush()
    view = tier_view(row)
    record_audit(session, "loyalty.tier_updated", "loyalty_tier", row.id, old=old, new=view.__dict__)
    return view


def delete_tier(session: Session, code: str) -> None:
    """Delete a tier; its members are re-evaluated at once (they keep the tier they now reach)."""
    row = _row(session, code)
    old = tier_view(row).__dict__
    members = session.scalars(select(_ACCOUNTS.c.id).where(_ACCOUNTS.c.tier_code == code)).all()
    session.delete(row)
    session.flush()
    record_audit(session, "loyalty.tier_deleted", "loyalty_tier", row.id, old=old)
    for account_id in members:
        evaluate_tier(session, str(account_id), review=True)


# --- qualification ----------------------------------------------------------------------------------


def _specs(views: list[TierView]) -> list[rules.TierSpec]:
    return [rules.TierSpec(v.code, v.rank, v.threshold) for v in views]


def qualifying_value(session: Session, account: LoyaltyAccount, start: datetime, end: datetime) -> Decimal:
    """Points earned (vested order points and event bonuses, less reversals) or net spend in the
    reporting currency (non-cancelled orders, refunds deducted) between ``start`` and ``end``."""
    programme = _programme_row(session)
    if programme.tier_basis == "points":
        total = session.scalar(
            select(func.coalesce(func.sum(_ENTRIES.c.points - _ENTRIES.c.debt), 0)).where(
                _ENTRIES.c.account_id == account.id,
                _ENTRIES.c.source.in_(("order", "event")),
                _ENTRIES.c.kind.in_(("vest", "earn", "reverse")),
                _ENTRIES.c.occurred_at >= start,
                _ENTRIES.c.occurred_at <= end,
            )
        )
        return Decimal(int(total or 0))
    spend = Decimal(0)
    cursor = None
    while True:
        page = list_orders(
            session,
            customer_id=account.customer_id,
            placed_after=start,
            placed_before=end,
            cursor=cursor,
            limit=200,
        )
        spend += sum((o.reporting_net.amount for o in page.items if o.status != "cancelled"), Decimal(0))
        if page.next_cursor is None:
            return spend
        cursor = page.next_cursor


def evaluate_tier(
    session: Session, account_id: str, *, at: datetime | None = None, review: bool = False
) -> str:
    """Upgrade at once when a higher tier is reached; at a review (``review=True``) keep, start the
    grace period, or downgrade. Returns the decision (``upgrade``, ``keep``, ``grace``, ``downgrade``,
    ``none``)."""
    when = at or now()
    account = session.get(LoyaltyAccount, account_id, populate_existing=True)
    if account is None or account.status != "active":
        return "none"
    views = list_tiers(session)
    if not views and account.tier_code is None:
        return "none"
    programme = _programme_row(session)
    zone = str(business_zone(session))
    # Python end bound includes the instant itself (entries written now count)
    start = rules.window_start(when, programme.tier_window, programme.tier_window_months, zone)
    value = qualifying_value(session, account, start, when + timedelta(microseconds=1))
    grace_over = account.tier_grace_until is not None and account.tier_grace_until <= when
    decision, code = rules.tier_decision(
        _specs(views),
        account.tier_code,
        value,
        review=review or grace_over,
        grace_pending=programme.tier_grace_days > 0,
        grace_over=grace_over,
    )
    review_at = rules.next_review(when, programme.tier_window, programme.tier_window_months, zone)
    t = _ACCOUNTS
    if decision in ("upgrade", "downgrade") and code != account.tier_code:
        old = account.tier_code
        session.execute(
            update(t)
            .where(t.c.id == account.id)
            .values(
                tier_code=code,
                tier_since=when,
                tier_review_at=None if code is None else review_at,
                tier_grace_until=None,
            )
        )
        emit_event(
            session,
            events.TIER_CHANGED,
            {
                "customer_id": account.customer_id,
                "account_id": account.id,
                "from": old,
                "to": code,
                "direction": decision,
                "qualifying_value": str(value),
            },
        )
        record_audit(
            session,
            "loyalty.tier_changed",
            "loyalty_account",
            account.id,
            old={"tier": old},
            new={"tier": code},
        )
        publish_account(session, account.id, timeline=("tier_changed", {"from": old, "to": code}))
    elif decision == "keep":
        session.execute(
            update(t).where(t.c.id == account.id).values(tier_review_at=review_at, tier_grace_until=None)
        )
    elif decision == "grace" and account.tier_grace_until is None:
        grace = when + timedelta(days=programme.tier_grace_days)
        session.execute(update(t).where(t.c.id == account.id).values(tier_grace_until=grace))
    session.expire(account)
    return decision


def review_tiers(session: Session, *, at: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """The review job: every member whose review date or grace period has come."""
    when = at or now()
    due = session.scalars(
        select(_ACCOUNTS.c.id)
        .where(
            _ACCOUNTS.c.status == "active",
            _ACCOUNTS.c.tier_code.is_not(None),
            or_(
                and_(_ACCOUNTS.c.tier_review_at <= when, _ACCOUNTS.c.tier_grace_until.is_(None)),
                _ACCOUNTS.c.tier_grace_until <= when,
            ),
        )
        .order_by(_ACCOUNTS.c.id)
        .limit(batch)
    ).all()
    counts: dict[str, int] = {}
    for account_id in due:
        decision = evaluate_tier(session, str(account_id), at=when, review=True)
        counts[decision] = counts.get(decision, 0) + 1
    return counts


def tier_multiplier_specs(session: Session) -> list[rules.RuleSpec]:
    """Tier benefits as multiplier rules (a member of a tier earns ``multiplier`` × on orders)."""
    return list(memoised(session, ("tier_specs",), lambda: _tier_multiplier_specs(session)))


def _tier_multiplier_specs(session: Session) -> list[rules.RuleSpec]:
    return [
        rules.RuleSpec(
            id=f"tier:{v.code}",
            name=f"tier {v.code}",
            kind="multiplier",
            multiplier=v.multiplier,
            tiers=frozenset({v.code}),
        )
        for v in list_tiers(session)
        if v.multiplier != 1
    ]


def tier_progress(session: Session, customer_id: str) -> TierProgress:
    """Where a member stands: the qualifying value so far, the current and next tier, what is left."""
    from patron.loyalty.service import _account_row, _current_customer

    current_id = _current_customer(session, customer_id)
    account = _account_row(session, current_id)
    views = list_tiers(session)
    programme = _programme_row(session)
    value = Decimal(0)
    if account is not None:
        when = now()
        start = rules.window_start(
            when, programme.tier_window, programme.tier_window_months, str(business_zone(session))
        )
        value = qualifying_value(session, account, start, when + timedelta(microseconds=1))
    by_code = {v.code: v for v in views}
    current = by_code.get(account.tier_code) if account is not None and account.tier_code else None
    nxt_spec = rules.next_tier(
        _specs(views),
        None if current is None else rules.TierSpec(current.code, current.rank, current.threshold),
    )
    nxt = None if nxt_spec is None else by_code[nxt_spec.code]
    return TierProgress(
        basis=programme.tier_basis,
        value=value,
        current=current,
        next=nxt,
        remaining=None if nxt is None else max(nxt.threshold - value, Decimal(0)),
        review_at=None if account is None else account.tier_review_at,
        grace_until=None if account is None else account.tier_grace_until,
    )
