"""Loyalty reads: a customer's ledger (newest first, cursor pages) and redemptions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from patron.core.errors import ValidationFailed
from patron.core.pagination import Page, clamp_limit, decode_cursor, encode_cursor
from patron.loyalty.contracts import EntryView, RedemptionView
from patron.loyalty.models import LoyaltyAccount, LoyaltyEntry, LoyaltyRedemption
from patron.loyalty.service import _current_customer, entry_view, redemption_view


def _account_id(session: Session, customer_id: str) -> str | None:
    current = _current_customer(session, customer_id)
    return session.scalar(select(LoyaltyAccount.id).where(LoyaltyAccount.customer_id == current))


def list_entries(
    session: Session, customer_id: str, *, cursor: str | None = None, limit: int | None = None
) -> Page[EntryView]:
    """The customer's ledger, newest first (an account merged into this one keeps its own entries)."""
    size = clamp_limit(limit)
    account_id = _account_id(session, customer_id)
    if account_id is None:
        return Page([], None)
    stmt = select(LoyaltyEntry).where(LoyaltyEntry.account_id == account_id)
    after = decode_cursor(cursor)
    if after is not None:
        try:
            at, last_id = datetime.fromisoformat(str(after[0])), str(after[1])
        except (ValueError, IndexError) as exc:
            raise ValidationFailed("malformed cursor", code="invalid_cursor") from exc
        stmt = stmt.where(
            or_(
                LoyaltyEntry.occurred_at < at, and_(LoyaltyEntry.occurred_at == at, LoyaltyEntry.id < last_id)
            )
        )
    rows = list(
        session.scalars(
            stmt.order_by(LoyaltyEntry.occurred_at.desc(), LoyaltyEntry.id.desc()).limit(size + 1)
        )
    )
    next_cursor = None
    if len(rows) > size:
        last = rows[size - 1]
        next_cursor = encode_cursor([last.occurred_at.isoformat(), last.id])
    return Page([entry_view(e) for e in rows[:size]], next_cursor)


def list_redemptions(session: Session, customer_id: str, *, limit: int | None = None) -> list[RedemptionView]:
    size = clamp_limit(limit)
    account_id = _account_id(session, customer_id)
    if account_id is None:
        return []
    current = _current_customer(session, customer_id)
    rows = session.scalars(
        select(LoyaltyRedemption)
        .where(LoyaltyRedemption.account_id == account_id)
        .order_by(LoyaltyRedemption.created_at.desc(), LoyaltyRedemption.id.desc())
        .limit(size)
    )
    return [redemption_view(r, current) for r in rows]
