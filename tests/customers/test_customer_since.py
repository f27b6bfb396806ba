"""Customers backfilled from another system keep the date they became customers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from patron.core.clock import FrozenClock
from patron.core.errors import ValidationFailed
from patron.customers import get_customer, prepare_customer, restore_customers, upsert_customers_bulk


def test_created_at_is_parsed_and_validated(frozen_clock: FrozenClock) -> None:
    assert prepare_customer({"external_id": "a", "created_at": "2024-05-01"}).created_at == datetime(
        2024, 5, 1, tzinfo=UTC
    )
    assert prepare_customer(
        {"external_id": "a", "created_at": "2024-05-01T09:30:00+07:00"}
    ).created_at == datetime(2024, 5, 1, 2, 30, tzinfo=UTC)
    assert prepare_customer({"external_id": "a"}).created_at is None
    for bad in ("2024-05-01T09:30:00", "yesterday", "2099-01-01"):
        with pytest.raises(ValidationFailed) as err:
            prepare_customer({"external_id": "a", "created_at": bad})
        assert [e["loc"] for e in err.value.errors] == [["created_at"]]


def test_bulk_upsert_keeps_the_given_date(session: Session, frozen_clock: FrozenClock) -> None:
    rows = [
        prepare_customer({"external_id": "old", "given_name": "An", "created_at": "2023-02-03"}),
        prepare_customer({"external_id": "new", "given_name": "Bé"}),
    ]
    old, new = upsert_customers_bulk(session, rows)
    assert get_customer(session, old.customer_id).created_at == datetime(2023, 2, 3, tzinfo=UTC)
    assert get_customer(session, new.customer_id).created_at == frozen_clock.now()
    # a later import without the column keeps it; with a blank it is not cleared
    upsert_customers_bulk(session, [prepare_customer({"external_id": "old", "created_at": ""})])
    assert get_customer(session, old.customer_id).created_at == datetime(2023, 2, 3, tzinfo=UTC)


def test_an_import_corrects_the_date_and_an_undo_restores_it(
    session: Session, frozen_clock: FrozenClock
) -> None:
    (first,) = upsert_customers_bulk(session, [prepare_customer({"external_id": "c1", "given_name": "An"})])
    assert get_customer(session, first.customer_id).created_at == frozen_clock.now()
    # the old system's "customer since", given later, corrects it: an update with the old value kept
    (fixed,) = upsert_customers_bulk(
        session, [prepare_customer({"external_id": "c1", "given_name": "An", "created_at": "2019-07-01"})]
    )
    assert fixed.action == "updated"
    assert fixed.before is not None
    assert fixed.before["created_at"] == frozen_clock.now().isoformat()
    assert get_customer(session, first.customer_id).created_at == datetime(2019, 7, 1, tzinfo=UTC)
    # the same date again changes nothing
    (again,) = upsert_customers_bulk(
        session, [prepare_customer({"external_id": "c1", "given_name": "An", "created_at": "2019-07-01"})]
    )
    assert again.action == "unchanged"
    # undo puts the earlier date back
    assert restore_customers(session, [fixed.before]) == 1
    assert get_customer(session, first.customer_id).created_at == frozen_clock.now()
