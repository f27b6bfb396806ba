"""Loyalty test fixtures: the commerce test business (EUR reporting, Budapest time, markets VN/HU/TH
with FX rates), loyalty settings per market, customers created through the customers API, and a
helper that delivers outbox events to the registered handlers like the worker does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.core.business import set_fx_rate
from patron.core.outbox import EventRegistry, OutboxEvent, _deliver, registry
from patron.loyalty import put_market_settings, update_programme
from tests.commerce.conftest import new_customer, setup_business


def setup_loyalty(session: Session, **programme: Any) -> None:
    setup_business(session)
    set_fx_rate(session, base="THB", quote="EUR", valid_on=date(2026, 1, 1), rate=Decimal("0.026"))
    update_programme(session, pending_days=14, expiry_policy="rolling", expiry_months=12, **programme)
    # 1 point per 10,000 VND, per 100 HUF, per 10 THB; a point is worth 100 VND / 1 HUF / 0.10 THB
    put_market_settings(
        session, "VN", earn_spend_amount=Decimal(10000), earn_points=1, point_value_amount=Decimal(100)
    )
    put_market_settings(
        session, "HU", earn_spend_amount=Decimal(100), earn_points=1, point_value_amount=Decimal(1)
    )
    put_market_settings(
        session, "TH", earn_spend_amount=Decimal(10), earn_points=1, point_value_amount=Decimal("0.10")
    )


@pytest.fixture
def loyal(session: Session) -> Session:
    setup_loyalty(session)
    return session


@pytest.fixture
def member(loyal: Session) -> str:
    return new_customer(loyal)


def deliver(session: Session, name: str | None = None, events: EventRegistry | None = None) -> int:
    """Deliver the session's undelivered outbox events (optionally only ``name``) to the handlers,
    in the session's transaction (as the dispatcher does, each handler in a savepoint)."""
    stmt = (
        select(OutboxEvent)
        .where(OutboxEvent.dispatched_at.is_(None))
        .order_by(OutboxEvent.occurred_at, OutboxEvent.id)
    )
    if name is not None:
        stmt = stmt.where(OutboxEvent.name == name)
    rows = list(session.scalars(stmt))
    for row in rows:
        _deliver(session, row, events or registry)
    session.flush()
    failed = [(r.name, r.last_error) for r in rows if r.last_error]
    assert failed == []
    return len(rows)


Customer = Callable[..., str]
