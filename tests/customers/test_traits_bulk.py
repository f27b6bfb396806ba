"""set_traits_bulk: the set-wise variant of set_traits used by imports (order-stat refresh)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.core.clock import FrozenClock
from patron.core.errors import ValidationFailed
from patron.customers import (
    CustomerCreateInput,
    CustomerNotFound,
    create_customer,
    get_traits,
    merge_customers,
    set_traits,
    set_traits_bulk,
)
from patron.customers.models import Trait


def new(session: Session, name: str) -> str:
    return create_customer(session, CustomerCreateInput(first_name=name)).id


def snapshot(session: Session) -> set[tuple[object, ...]]:
    rows = session.execute(
        select(
            Trait.customer_id,
            Trait.name,
            Trait.value_type,
            Trait.value_text,
            Trait.value_number,
            Trait.source,
        )
    ).all()
    return {(r[0], r[1], r[2], r[3], None if r[4] is None else Decimal(r[4]), r[5]) for r in rows}


def test_bulk_writes_what_set_traits_writes(session: Session, frozen_clock: FrozenClock) -> None:
    a, b = new(session, "A"), new(session, "B")
    values: dict[str, object] = {
        "order_count": 3,
        "total_spent": Decimal("1234.56"),
        "vip": True,
        "tier": "gold",
        "first_order_on": date(2025, 1, 2),
        "last_order_at": datetime(2026, 3, 1, 8, tzinfo=UTC),
    }
    set_traits(session, a, values, source="commerce")
    set_traits_bulk(session, [(b, n, v) for n, v in values.items()], source="commerce")
    session.flush()
    rows = snapshot(session)
    assert {r[1:] for r in rows if r[0] == a} == {r[1:] for r in rows if r[0] == b}
    assert len(rows) == 12
    traits = get_traits(session, b)
    assert traits["total_spent"].value == Decimal("1234.56")
    assert traits["last_order_at"].value == datetime(2026, 3, 1, 8, tzinfo=UTC)


def test_bulk_updates_deletes_and_last_row_wins(session: Session, frozen_clock: FrozenClock) -> None:
    a, b = new(session, "A"), new(session, "B")
    set_traits_bulk(
        session, [(a, "order_count", 1), (a, "tier", "gold"), (b, "order_count", 2)], source="commerce"
    )
    set_traits_bulk(
        session,
        [(a, "order_count", 5), (a, "tier", None), (b, "order_count", 7), (b, "order_count", 8)],
        source="commerce",
    )
    assert {n: t.value for n, t in get_traits(session, a).items()} == {"order_count": 5}
    assert {n: t.value for n, t in get_traits(session, b).items()} == {"order_count": 8}


def test_bulk_follows_merges(session: Session, frozen_clock: FrozenClock) -> None:
    source, target = new(session, "S"), new(session, "T")
    merge_customers(session, source_id=source, target_id=target)
    set_traits_bulk(session, [(source, "order_count", 4), (target, "tier", "gold")], source="commerce")
    traits = get_traits(session, target)  # the merge itself refreshed the order stats of the target
    assert (traits["order_count"].value, traits["tier"].value) == (4, "gold")
    assert session.scalars(select(Trait.customer_id).where(Trait.customer_id == source)).all() == []


def test_bulk_validates_like_set_traits(session: Session, frozen_clock: FrozenClock) -> None:
    a = new(session, "A")
    with pytest.raises(ValidationFailed) as bad_name:
        set_traits_bulk(session, [(a, "Bad Name", 1)], source="x")
    assert bad_name.value.errors == [
        {"loc": ["traits", "Bad Name"], "msg": "a lower-case slug name", "type": "invalid"}
    ]
    with pytest.raises(ValidationFailed) as bad_value:
        set_traits_bulk(session, [(a, "ok", object()), (a, "nul", "a\x00b")], source="x")
    assert [e["loc"] for e in bad_value.value.errors] == [["traits", "ok"], ["traits", "nul"]]
    with pytest.raises(ValidationFailed):
        set_traits_bulk(session, [(a, "ok", 1)], source="")
    with pytest.raises(CustomerNotFound):
        set_traits_bulk(session, [(a, "ok", 1), ("missing", "ok", 1)], source="x")
    assert get_traits(session, a) == {}
    set_traits_bulk(session, [], source="x")
