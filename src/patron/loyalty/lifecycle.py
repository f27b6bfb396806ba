"""The loyalty customer lifecycle handler: merge, erase, export (run in the caller's transaction).

- **Merge**: if only the source has an account, the account moves to the target customer as it is.
  If both have one, the source's balances move to the target with a pair of ``transfer`` entries (the
  ledger stays append-only and each account's balance still equals its ledger sum), the source's lots
  (with their original expiry dates), pending order earnings, redemptions, events and rule uses move
  to the target account, and the source account is closed (``merged``). If the target then holds both
  debt and available points, a further ``transfer`` entry settles the debt from the available points.
- **Erase**: the account's balances are forfeited with one ``forfeit`` entry (lots emptied, held
  redemptions cancelled, pending earnings reversed), staff-written reasons and event attributes are
  blanked, the card number is removed and the account is closed (``erased``). Amounts, times and
  ids stay, so the liability and breakage history remain consistent.
- **Export**: the account, its ledger, lots, redemptions and reported events.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from patron.customers import set_traits
from patron.loyalty.contracts import TRAIT_SOURCE
from patron.loyalty.models import (
    LoyaltyAccount,
    LoyaltyEntry,
    LoyaltyEvent,
    LoyaltyLot,
    LoyaltyLotUse,
    LoyaltyOrderEarning,
    LoyaltyRedemption,
    LoyaltyRuleUse,
)
from patron.loyalty.service import (
    _ACCOUNTS,
    _LOTS,
    TRAIT_BALANCE,
    TRAIT_EXPIRING,
    TRAIT_TIER,
    _add_entry,
    _apply,
    _Delta,
    account_view,
    entry_view,
    publish_account,
    settle_debt,
)

_ENTRIES = cast(Table, LoyaltyEntry.__table__)


def _account(session: Session, customer_id: str) -> LoyaltyAccount | None:
    return session.scalar(
        select(LoyaltyAccount)
        .where(LoyaltyAccount.customer_id == customer_id)
        .execution_options(populate_existing=True)
    )


def _balances(session: Session, account_id: str) -> tuple[int, int, int, int]:
    row = session.execute(
        select(_ACCOUNTS.c.available, _ACCOUNTS.c.pending, _ACCOUNTS.c.debt, _ACCOUNTS.c.held).where(
            _ACCOUNTS.c.id == account_id
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def _clear_traits(session: Session, customer_id: str) -> None:
    set_traits(
        session,
        customer_id,
        {TRAIT_TIER: None, TRAIT_BALANCE: None, TRAIT_EXPIRING: None},
        source=TRAIT_SOURCE,
    )


class LoyaltyLifecycle:
    name = "loyalty"

    def merge(self, session: Session, *, source_id: str, target_id: str) -> None:
        session.flush()
        source = _account(session, source_id)
        if source is None:
            return
        target = _account(session, target_id)
        if target is None:
            session.execute(
                update(_ACCOUNTS).where(_ACCOUNTS.c.id == source.id).values(customer_id=target_id)
            )
            session.expire_all()
            publish_account(session, source.id)
            return
        _clear_traits(session, source_id)
        for account_id in sorted((source.id, target.id)):  # lock both rows in a fixed order
            _apply(session, account_id, _Delta(), allow_closed=True)
        a, p, d, h = _balances(session, source.id)
        key = f"merge:{source.id}:{target.id}"
        out = _Delta(points=-a, pending=-p, debt=-d, held=-h)
        inn = _Delta(points=a, pending=p, debt=d, held=h)
        data = {"from_account_id": source.id, "to_account_id": target.id}
        _apply(session, source.id, out, allow_closed=True)
        _add_entry(
            session,
            source.id,
            "transfer",
            out,
            key=f"{key}:out",
            source="system",
            reason="merged",
            data=data,
            quiet=True,
        )
        _apply(session, target.id, inn, allow_closed=True)
        _add_entry(
            session,
            target.id,
            "transfer",
            inn,
            key=f"{key}:in",
            source="system",
            reason="merged",
            data=data,
            quiet=True,
        )
        for model in (LoyaltyLot, LoyaltyOrderEarning, LoyaltyRedemption, LoyaltyEvent):
            table = cast(Table, model.__table__)
            session.execute(update(table).where(table.c.account_id == source.id).values(account_id=target.id))
        uses = session.scalars(select(LoyaltyRuleUse).where(LoyaltyRuleUse.account_id == source.id)).all()
        for use in uses:
            mine = session.get(LoyaltyRuleUse, (use.rule_id, target.id))
            if mine is None:
                session.add(LoyaltyRuleUse(rule_id=use.rule_id, account_id=target.id, uses=use.uses))
            else:
                mine.uses += use.uses
            session.delete(use)
        t = _ACCOUNTS
        session.execute(
            update(t)
            .where(t.c.id == target.id)
            .values(
                lifetime_earned=t.c.lifetime_earned + source.lifetime_earned,
                lifetime_redeemed=t.c.lifetime_redeemed + source.lifetime_redeemed,
                lifetime_expired=t.c.lifetime_expired + source.lifetime_expired,
            )
        )
        session.execute(
            update(t).where(t.c.id == source.id).values(status="merged", merged_into_id=target.id)
        )
        session.flush()
        settle_debt(session, target.id, key=f"{key}:settle", reason="debt settled after merge")
        publish_account(session, target.id)
        session.expire_all()

    def erase(self, session: Session, *, customer_id: str) -> None:
        account = _account(session, customer_id)
        if account is None:
            return
        _apply(session, account.id, _Delta(), allow_closed=True)
        a, p, d, h = _balances(session, account.id)
        if a or p or d or h:
            delta = _Delta(points=-a, pending=-p, debt=-d, held=-h)
            _apply(session, account.id, delta, allow_closed=True)
            entry = _add_entry(
                session,
                account.id,
                "forfeit",
                delta,
                key=f"erase:{account.id}",
                source="system",
                reason="customer erased",
                quiet=True,
            )
            lots = session.execute(
                select(_LOTS.c.id, _LOTS.c.remaining).where(
                    _LOTS.c.account_id == account.id, _LOTS.c.remaining > 0
                )
            ).all()
            for lot_id, remaining in lots:
                session.add(LoyaltyLotUse(lot_id=lot_id, entry_id=entry.id, points=int(remaining)))
            session.execute(update(_LOTS).where(_LOTS.c.account_id == account.id).values(remaining=0))
        r = cast(Table, LoyaltyRedemption.__table__)
        session.execute(
            update(r).where(r.c.account_id == account.id, r.c.status == "held").values(status="cancelled")
        )
        o = cast(Table, LoyaltyOrderEarning.__table__)
        session.execute(
            update(o).where(o.c.account_id == account.id, o.c.status == "pending").values(status="reversed")
        )
        session.execute(
            update(_ENTRIES)
            .where(_ENTRIES.c.account_id == account.id, _ENTRIES.c.source == "staff")
            .values(reason="")
        )
        ev = cast(Table, LoyaltyEvent.__table__)
        session.execute(update(ev).where(ev.c.account_id == account.id).values(attributes={}))
        session.execute(
            update(_ACCOUNTS).where(_ACCOUNTS.c.id == account.id).values(status="erased", card_number=None)
        )
        _clear_traits(session, customer_id)
        session.flush()
        session.expire_all()

    def export(self, session: Session, *, customer_id: str) -> dict[str, Any]:
        account = _account(session, customer_id)
        if account is None:
            return {"account": None, "entries": [], "lots": [], "redemptions": [], "events": []}
        view = account_view(account)
        entries = session.scalars(
            select(LoyaltyEntry)
            .where(LoyaltyEntry.account_id == account.id)
            .order_by(LoyaltyEntry.occurred_at, LoyaltyEntry.id)
        )
        lots = session.scalars(
            select(LoyaltyLot)
            .where(LoyaltyLot.account_id == account.id)
            .order_by(LoyaltyLot.earned_at, LoyaltyLot.id)
        )
        redemptions = session.scalars(
            select(LoyaltyRedemption)
            .where(LoyaltyRedemption.account_id == account.id)
            .order_by(LoyaltyRedemption.created_at, LoyaltyRedemption.id)
        )
        events = session.scalars(
            select(LoyaltyEvent)
            .where(LoyaltyEvent.account_id == account.id)
            .order_by(LoyaltyEvent.occurred_at)
        )
        return {
            "account": {
                **{k: v for k, v in view.__dict__.items() if k not in ("enrolled_at",)},
                "enrolled_at": view.enrolled_at.isoformat() if view.enrolled_at else None,
            },
            "entries": [
                {
                    **{
                        k: v
                        for k, v in entry_view(e).__dict__.items()
                        if k not in ("occurred_at", "replayed")
                    },
                    "occurred_at": e.occurred_at.isoformat(),
                }
                for e in entries
            ],
            "lots": [
                {
                    "id": lot.id,
                    "points": lot.points,
                    "remaining": lot.remaining,
                    "earned_at": lot.earned_at.isoformat(),
                    "expires_at": lot.expires_at.isoformat() if lot.expires_at else None,
                }
                for lot in lots
            ],
            "redemptions": [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "points": r.points,
                    "status": r.status,
                    "value": None if r.value_amount is None else str(r.value_amount),
                    "currency": r.currency,
                    "created_at": r.created_at.isoformat(),
                }
                for r in redemptions
            ],
            "events": [
                {"id": ev.id, "type": ev.type, "occurred_at": ev.occurred_at.isoformat(), "points": ev.points}
                for ev in events
            ],
        }
