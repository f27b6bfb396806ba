"""What each kind of import writes to, through the owning domain's public functions only:
validate one raw row (``prepare``), upsert many by their external id, and for undo delete what a
batch created and restore what it updated."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from patron import commerce, customers
from patron.core.errors import Conflict, NotFound
from patron.imports.loyalty_balances import LoyaltyBalanceTarget
from patron.imports.mapping import ImportKind


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the upsert did with one record: ``created``, ``updated``, ``unchanged`` or ``rejected``
    (with the domain's ``errors``); ``before`` is the domain's snapshot of an updated record."""

    id: str | None
    action: str
    before: dict[str, Any] | None = None
    errors: tuple[dict[str, Any], ...] = field(default=())


class ImportTarget(Protocol):
    entity_type: str

    def prepare(self, raw: Mapping[str, Any]) -> Any: ...

    def upsert(self, session: Session, rows: Sequence[Any], *, emit_events: bool) -> list[Outcome]: ...

    def delete(self, session: Session, ids: Sequence[str]) -> int: ...

    def restore(self, session: Session, snapshots: Sequence[Mapping[str, Any]]) -> int: ...


class CustomerTarget:
    entity_type = "customer"

    def prepare(self, raw: Mapping[str, Any]) -> customers.PreparedCustomer:
        return customers.prepare_customer(raw)

    def upsert(
        self, session: Session, rows: Sequence[customers.PreparedCustomer], *, emit_events: bool
    ) -> list[Outcome]:
        results = customers.upsert_customers_bulk(session, rows, live=emit_events)
        return [Outcome(r.customer_id, r.action, r.before) for r in results]

    def delete(self, session: Session, ids: Sequence[str]) -> int:
        return customers.delete_customers_hard(session, ids)

    def restore(self, session: Session, snapshots: Sequence[Mapping[str, Any]]) -> int:
        return customers.restore_customers(session, snapshots)


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def order_snapshot(order: commerce.OrderRecord) -> dict[str, Any]:
    """An order as a raw mapping that :func:`commerce.prepare_order` accepts (JSON-serialisable)."""
    return {
        "id": order.id, "external_id": order.external_id, "customer_id": order.customer_id,
        "market": order.market_code, "channel": order.channel, "currency": order.currency,
        "status": order.status, "fulfilment_status": order.fulfilment_status, "source": order.source,
        "placed_at": _iso(order.placed_at), "fulfilled_at": _iso(order.fulfilled_at),
        "delivered_at": _iso(order.delivered_at),
        "promised_delivery_date": _iso(order.promised_delivery_date),
        "subtotal": str(order.subtotal.amount), "discount": str(order.discount.amount),
        "tax": str(order.tax.amount), "shipping": str(order.shipping.amount),
        "total": str(order.total.amount),
        "lines": [
            {"quantity": ln.quantity, "unit_price": str(ln.unit_price.amount),
             "discount": str(ln.discount.amount), "total": str(ln.total.amount), "sku": ln.sku,
             "name": ln.name, "category": ln.category, "product_id": ln.product_id}
            for ln in order.lines
        ],
    }  # fmt: skip


def product_snapshot(product: commerce.ProductRecord) -> dict[str, Any]:
    return {
        "id": product.id, "sku": product.sku, "name": product.name, "category": product.category,
        "active": product.active, "price": str(product.price.amount), "currency": product.price.currency,
    }  # fmt: skip


def subscription_snapshot(sub: commerce.SubscriptionRecord) -> dict[str, Any]:
    return {
        "id": sub.id, "external_id": sub.external_id, "customer_id": sub.customer_id, "plan": sub.plan,
        "price": str(sub.price.amount), "currency": sub.price.currency, "interval": sub.interval,
        "status": sub.status, "source": sub.source, "started_at": _iso(sub.started_at),
        "renews_at": _iso(sub.renews_at), "cancelled_at": _iso(sub.cancelled_at),
    }  # fmt: skip


class _CommerceTarget(ABC):
    """Commerce upserts report no before-state, so it is read through the public ``get_*`` queries:
    the upsert runs in a savepoint; when it updated something, the savepoint is rolled back, the
    records it would update are snapshotted and the upsert runs again (a first import, which only
    creates, and a re-run, which changes nothing, run once). An undo puts a snapshot back through
    the same ``prepare_*`` and bulk upsert, so the domain's rules and traits apply."""

    entity_type = ""

    @abstractmethod
    def _upsert(
        self, session: Session, rows: Sequence[Any], emit_events: bool
    ) -> list[commerce.UpsertResult]:
        """The domain's bulk upsert for this kind."""

    @abstractmethod
    def _snapshot(self, session: Session, entity_id: str) -> dict[str, Any]:
        """The record as a JSON-serialisable dict (raises NotFound when it is gone)."""

    @abstractmethod
    def _prepare(self, raw: Mapping[str, Any]) -> Any:
        """The domain's pure per-row validation for this kind."""

    def _exists(self, session: Session, entity_id: str) -> bool:
        try:
            self._snapshot(session, entity_id)
        except NotFound:
            return False
        return True

    def prepare(self, raw: Mapping[str, Any]) -> Any:
        return self._prepare(raw)

    def upsert(self, session: Session, rows: Sequence[Any], *, emit_events: bool) -> list[Outcome]:
        savepoint = session.begin_nested()
        results = self._upsert(session, rows, emit_events)
        updated = [r.id for r in results if r.action == "updated" and r.id is not None]
        befores: dict[str, dict[str, Any]] = {}
        if updated:
            savepoint.rollback()
            befores = {entity_id: self._snapshot(session, entity_id) for entity_id in updated}
            results = self._upsert(session, rows, emit_events)
        else:
            savepoint.commit()
        return [
            Outcome(r.id, r.action, befores.get(r.id) if r.id else None, tuple(r.errors))
            for r in sorted(results, key=lambda r: r.index)
        ]

    def restore(self, session: Session, snapshots: Sequence[Mapping[str, Any]]) -> int:
        rows = [self._prepare(snap) for snap in snapshots if self._exists(session, str(snap["id"]))]
        if not rows:
            return 0
        results = self._upsert(session, rows, False)
        failed = [r for r in results if r.action == "rejected"]
        if failed:
            raise Conflict(
                f"cannot restore {self.entity_type} {failed[0].key}: "
                + "; ".join(str(e.get("msg")) for e in failed[0].errors),
                code="import_restore_failed",
            )
        return len(rows)


class OrderTarget(_CommerceTarget):
    entity_type = "order"

    def _prepare(self, raw: Mapping[str, Any]) -> commerce.OrderInput:
        return commerce.prepare_order(raw)

    def _upsert(
        self, session: Session, rows: Sequence[Any], emit_events: bool
    ) -> list[commerce.UpsertResult]:
        return commerce.upsert_orders_bulk(session, rows, emit_events=emit_events)

    def _snapshot(self, session: Session, entity_id: str) -> dict[str, Any]:
        return order_snapshot(commerce.get_order(session, entity_id))

    def delete(self, session: Session, ids: Sequence[str]) -> int:
        return commerce.delete_orders_hard(session, ids)


class ProductTarget(_CommerceTarget):
    entity_type = "product"

    def _prepare(self, raw: Mapping[str, Any]) -> commerce.ProductInput:
        return commerce.prepare_product(raw)

    def _upsert(
        self, session: Session, rows: Sequence[Any], emit_events: bool
    ) -> list[commerce.UpsertResult]:
        return commerce.upsert_products_bulk(session, rows)

    def _snapshot(self, session: Session, entity_id: str) -> dict[str, Any]:
        return product_snapshot(commerce.get_product(session, entity_id))

    def delete(self, session: Session, ids: Sequence[str]) -> int:
        return commerce.delete_products_hard(session, ids)


class SubscriptionTarget(_CommerceTarget):
    entity_type = "subscription"

    def _prepare(self, raw: Mapping[str, Any]) -> commerce.SubscriptionInput:
        return commerce.prepare_subscription(raw)

    def _upsert(
        self, session: Session, rows: Sequence[Any], emit_events: bool
    ) -> list[commerce.UpsertResult]:
        return commerce.upsert_subscriptions_bulk(session, rows, emit_events=emit_events)

    def _snapshot(self, session: Session, entity_id: str) -> dict[str, Any]:
        return subscription_snapshot(commerce.get_subscription(session, entity_id))

    def delete(self, session: Session, ids: Sequence[str]) -> int:
        return commerce.delete_subscriptions_hard(session, ids)


_TARGETS: dict[ImportKind, ImportTarget] = {
    ImportKind.CUSTOMERS: CustomerTarget(),
    ImportKind.ORDERS: OrderTarget(),
    ImportKind.PRODUCTS: ProductTarget(),
    ImportKind.SUBSCRIPTIONS: SubscriptionTarget(),
    ImportKind.LOYALTY_BALANCES: LoyaltyBalanceTarget(),
}


def target_for(kind: ImportKind) -> ImportTarget:
    return _TARGETS[kind]
