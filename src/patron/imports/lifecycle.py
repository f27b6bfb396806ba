"""The imports' part of a customer's lifecycle.

An undo must never delete, resurrect or overwrite a customer that was merged away or erased: on
merge and erase the batches forget that customer (its before-snapshots hold personal data, which
erasure must not leave behind). Export lists the batches that created or changed the customer."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from patron.imports.service import customer_batches, forget_customer


class ImportsLifecycle:
    name = "imports"

    def merge(self, session: Session, *, source_id: str, target_id: str) -> None:
        forget_customer(session, source_id)
        forget_customer(session, target_id)

    def erase(self, session: Session, *, customer_id: str) -> None:
        forget_customer(session, customer_id)

    def export(self, session: Session, *, customer_id: str) -> dict[str, Any]:
        return {"import_batches": customer_batches(session, customer_id)}
