"""Opening balances for a business leaving another loyalty system: points (with their own expiry
date, or the programme's policy), the member's tier, once per customer and balance id. Imported
through ``patron loyalty import-balances FILE`` (the imports layer's ``loyalty-balances`` target:
dry runs, rejects, undo)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from patron.core.business import business_zone
from patron.core.errors import PatronError, ValidationFailed
from patron.core.ids import new_id
from patron.customers import find_customer_id_by_external_id, get_customer
from patron.loyalty.models import LoyaltyEntry, LoyaltyLot, LoyaltyLotUse
from patron.loyalty.service import (
    _ACCOUNTS,
    _LOTS,
    _add_entry,
    _apply,
    _Delta,
    _programme_row,
    credit,
    ensure_account,
    find_entry,
    settle_debt,
)
from patron.loyalty.tiers import list_tiers


@dataclass(frozen=True)
class OpeningBalanceInput:
    customer_external_id: str | None
    customer_id: str | None
    points: int
    external_id: str | None = None
    tier: str | None = None
    expires_on: date | None = None  # the points are valid through this day (business time zone)
    earned_at: datetime | None = None


@dataclass(frozen=True)
class OpeningResult:
    id: str | None
    action: str  # created | unchanged | rejected
    errors: tuple[dict[str, Any], ...] = ()


def _when(value: Any, loc: str, errors: list[dict[str, Any]]) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(0), tzinfo=UTC)
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            errors.append({"loc": [loc], "msg": "a date or date-time", "type": "invalid_datetime"})
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _day(value: Any, errors: list[dict[str, Any]]) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        errors.append({"loc": ["expires_on"], "msg": "a date (YYYY-MM-DD)", "type": "invalid_date"})
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def prepare_opening_balance(raw: Mapping[str, Any]) -> OpeningBalanceInput:
    """Validate one row: a customer (``customer_external_id`` or ``customer_id``), whole ``points``
    ≥ 0, optional ``tier`` code, ``expires_on`` (the last valid day) and ``earned_at``, optional
    balance ``external_id``."""
    errors: list[dict[str, Any]] = []
    customer_external_id = _text(raw.get("customer_external_id"))
    customer_id = _text(raw.get("customer_id"))
    if customer_external_id is None and customer_id is None:
        errors.append({"loc": ["customer_external_id"], "msg": "which customer", "type": "missing"})
    points = raw.get("points")
    if isinstance(points, str) and points.strip().lstrip("-").isdigit():
        points = int(points.strip())
    if isinstance(points, bool) or not isinstance(points, int) or not 0 <= points <= 1_000_000_000:
        errors.append(
            {"loc": ["points"], "msg": "a whole number from 0 to 1,000,000,000", "type": "invalid_points"}
        )
        points = 0
    expires_on = _day(raw.get("expires_on"), errors)
    earned_at = _when(raw.get("earned_at"), "earned_at", errors)
    tier = _text(raw.get("tier"))
    if errors:
        raise ValidationFailed("invalid opening balance", code="invalid_opening_balance", errors=errors)
    return OpeningBalanceInput(
        customer_external_id=customer_external_id,
        customer_id=customer_id,
        points=points,
        external_id=_text(raw.get("external_id")),
        tier=tier.lower() if tier else None,
        expires_on=expires_on,
        earned_at=earned_at,
    )


def _customer(session: Session, row: OpeningBalanceInput) -> str | None:
    if row.customer_id is not None:
        try:
            return get_customer(session, row.customer_id).id
        except PatronError:
            return None
    return find_customer_id_by_external_id(session, row.customer_external_id or "")


def import_opening_balances(session: Session, rows: Sequence[OpeningBalanceInput]) -> list[OpeningResult]:
    """Credit each row's points as an ``opening`` entry (source ``import``; the debt rule applies)
    with its own lot expiry, and set the tier. Once per (customer, balance id): a re-run is
    ``unchanged``. Nothing is emitted as an earning (no ``points.earned``)."""
    tiers = {t.code for t in list_tiers(session)}
    out: list[OpeningResult] = []
    for row in rows:
        customer = _customer(session, row)
        if customer is None:
            out.append(
                OpeningResult(
                    None,
                    "rejected",
                    (
                        {
                            "loc": ["customer_external_id"],
                            "msg": "no such customer",
                            "type": "unknown_customer",
                        },
                    ),
                )
            )
            continue
        if row.tier is not None and row.tier not in tiers:
            out.append(
                OpeningResult(
                    None,
                    "rejected",
                    ({"loc": ["tier"], "msg": f"no tier {row.tier!r}", "type": "unknown_tier"},),
                )
            )
            continue
        key = f"opening:{customer}:{row.external_id or ''}"
        existing = find_entry(session, key)
        if existing is not None:
            out.append(OpeningResult(existing.id, "unchanged"))
            continue
        try:
            account = ensure_account(session, customer, enrol=True)
        except PatronError as exc:
            out.append(OpeningResult(None, "rejected", ({"loc": [], "msg": exc.detail, "type": exc.code},)))
            continue
        with session.begin_nested():
            if row.points > 0:
                entry = credit(
                    session,
                    account.id,
                    row.points,
                    kind="opening",
                    key=key,
                    source="import",
                    source_id=row.external_id,
                    reason="opening balance",
                    earned=False,
                    occurred_at=row.earned_at,
                )
                if row.expires_on is not None:  # valid through that day: expires at the next midnight
                    zone = business_zone(session)
                    expires = datetime.combine(row.expires_on + timedelta(days=1), time(0), tzinfo=zone)
                    session.execute(
                        update(_LOTS)
                        .where(_LOTS.c.entry_id == entry.id)
                        .values(expires_at=expires.astimezone(UTC))
                    )
            else:
                entry = _add_entry(
                    session,
                    account.id,
                    "opening",
                    _Delta(),
                    key=key,
                    source="import",
                    source_id=row.external_id,
                    reason="opening balance",
                )
            if row.tier is not None:
                _set_tier(session, account.id, row.tier)
        out.append(OpeningResult(entry.id, "created"))
    return out


def _set_tier(session: Session, account_id: str, code: str) -> None:
    from patron.core.clock import now
    from patron.loyalty import rules

    programme = _programme_row(session)
    review = rules.next_review(
        now(), programme.tier_window, programme.tier_window_months, str(business_zone(session))
    )
    session.execute(
        update(_ACCOUNTS)
        .where(_ACCOUNTS.c.id == account_id)
        .values(tier_code=code, tier_since=now(), tier_review_at=review, tier_grace_until=None)
    )


def undo_opening_balances(session: Session, entry_ids: Sequence[str]) -> int:
    """Take imported opening balances back (undo of an import batch): what is left of each opening
    lot is removed; points already spent become debt. The ledger keeps both entries."""
    undone = 0
    for entry_id in entry_ids:
        entry = session.get(LoyaltyEntry, entry_id)
        if entry is None or entry.kind != "opening":
            continue
        key = f"undo:{entry.id}"
        if find_entry(session, key) is not None:
            continue
        _apply(session, entry.account_id, _Delta(), allow_closed=True)  # lock the account first
        lot = session.scalar(select(LoyaltyLot).where(LoyaltyLot.entry_id == entry.id))
        credited = entry.points + (-entry.debt)
        remaining = lot.remaining if lot is not None else 0
        # what is left of the lot goes; what was spent (or paid an earlier debt) comes back as debt
        delta = _Delta(points=-remaining, debt=max(credited - remaining, 0))
        _apply(session, entry.account_id, delta, allow_closed=True)
        undo = _add_entry(
            session,
            entry.account_id,
            "reverse",
            delta,
            key=key,
            source="import",
            source_id=entry.source_id,
            reason="import undone",
            data={"undone_entry_id": entry.id},
        )
        if lot is not None and remaining:
            session.execute(update(_LOTS).where(_LOTS.c.id == lot.id).values(remaining=0))
            session.add(LoyaltyLotUse(id=new_id(), lot_id=lot.id, entry_id=undo.id, points=remaining))
            session.flush()
        settle_debt(session, entry.account_id, key=f"{key}:settle", reason="debt paid from available points")
        undone += 1
    return undone
