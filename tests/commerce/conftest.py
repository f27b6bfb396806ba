"""Commerce test fixtures: a business reporting in EUR (Budapest time), markets VN/HU/TH with FX
rates, and customers created through the customers API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.commerce import OrderInput, OrderRecord, place_order, prepare_order
from patron.core.business import create_market, set_fx_rate, update_business
from patron.core.outbox import OutboxEvent
from patron.customers import CustomerCreateInput, create_customer, get_traits


def setup_business(session: Session) -> None:
    update_business(session, reporting_currency="EUR", time_zone="Europe/Budapest")
    create_market(
        session,
        code="VN",
        name="Vietnam",
        country="VN",
        currency="VND",
        locale="vi_VN",
        time_zone="Asia/Ho_Chi_Minh",
    )
    create_market(
        session,
        code="HU",
        name="Hungary",
        country="HU",
        currency="HUF",
        locale="hu_HU",
        time_zone="Europe/Budapest",
    )
    create_market(
        session,
        code="TH",
        name="Thailand",
        country="TH",
        currency="THB",
        locale="th_TH",
        time_zone="Asia/Bangkok",
    )
    # 1 VND = 0.000036 EUR from 2026-01-01, 0.000040 from 2026-03-01
    set_fx_rate(session, base="VND", quote="EUR", valid_on=date(2026, 1, 1), rate=Decimal("0.000036"))
    set_fx_rate(session, base="VND", quote="EUR", valid_on=date(2026, 3, 1), rate=Decimal("0.000040"))
    set_fx_rate(session, base="HUF", quote="EUR", valid_on=date(2026, 1, 1), rate=Decimal("0.0025"))
    # only the inverse for USD: 1 EUR = 1.25 USD
    set_fx_rate(session, base="EUR", quote="USD", valid_on=date(2026, 1, 1), rate=Decimal("1.25"))


@pytest.fixture
def biz(session: Session) -> Session:
    setup_business(session)
    return session


_counter = {"n": 0}


def new_customer(session: Session, **extra: Any) -> str:
    _counter["n"] += 1
    data = CustomerCreateInput(
        first_name="An", last_name="Nguyễn", email=f"c{_counter['n']}@example.com", **extra
    )
    return create_customer(session, data).id


@pytest.fixture
def customer(biz: Session) -> str:
    return new_customer(biz)


def order_input(customer_id: str, **overrides: Any) -> OrderInput:
    raw: dict[str, Any] = {
        "customer_id": customer_id,
        "currency": "EUR",
        "placed_at": "2026-03-10T09:00:00+00:00",
        "lines": [
            {"sku": "TEA-1", "name": "Green tea", "quantity": 2, "unit_price": "10.00"},
            {"sku": "CUP-1", "name": "Cup", "quantity": 1, "unit_price": "5.50"},
        ],
    }
    raw.update(overrides)
    return prepare_order(raw)


@pytest.fixture
def place(biz: Session) -> Callable[..., OrderRecord]:
    def _place(customer_id: str, *, emit_events: bool = True, **overrides: Any) -> OrderRecord:
        return place_order(biz, order_input(customer_id, **overrides), emit_events=emit_events)

    return _place


def traits(session: Session, customer_id: str) -> dict[str, Any]:
    return {name: t.value for name, t in get_traits(session, customer_id).items()}


def events(session: Session, name: str | None = None) -> list[OutboxEvent]:
    stmt = select(OutboxEvent).order_by(OutboxEvent.occurred_at, OutboxEvent.id)
    if name is not None:
        stmt = stmt.where(OutboxEvent.name == name)
    return list(session.scalars(stmt))


def count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)
