"""The ``loyalty-balances`` import target: opening balances (points, tier, expiry) for customers
coming from another loyalty system, through ``patron.loyalty``'s public functions. Rows are keyed by
the customer's external id; re-running a file changes nothing; undo takes the balances back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from patron import loyalty


class LoyaltyBalanceTarget:
    entity_type = "loyalty_entry"

    def prepare(self, raw: Mapping[str, Any]) -> loyalty.OpeningBalanceInput:
        return loyalty.prepare_opening_balance(raw)

    def upsert(self, session: Session, rows: Sequence[Any], *, emit_events: bool) -> list[Any]:
        from patron.imports.targets import Outcome

        results = loyalty.import_opening_balances(session, rows)
        return [Outcome(r.id, r.action, None, r.errors) for r in results]

    def delete(self, session: Session, ids: Sequence[str]) -> int:
        return loyalty.undo_opening_balances(session, ids)

    def restore(self, session: Session, snapshots: Sequence[Mapping[str, Any]]) -> int:
        return 0  # opening balances are only ever created, never updated
