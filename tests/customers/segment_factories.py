"""Customers, organisations and consent for segment, organisation and export tests.

Customers are created through the customers service (``create_customer``, ``set_traits``,
``record_consent``, ``erase_customer``, ``merge_customers``) with the clock set to the wanted creation
time, so every row is what the real code writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from patron.core.clock import FrozenClock, use_clock
from patron.core.text import fold
from patron.customers import (
    CustomerCreateInput,
    create_customer,
    erase_customer,
    merge_customers,
    record_consent,
    set_traits,
)
from patron.customers.models import Customer, Organisation


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def make_customer(
    session: Session,
    given: str,
    *,
    family: str = "",
    created: str = "2026-01-01T00:00:00+00:00",
    traits: dict[str, Any] | None = None,
    **fields: Any,
) -> Customer:
    with use_clock(FrozenClock(at(created))):
        view = create_customer(
            session,
            CustomerCreateInput(first_name=given, last_name=family, **fields),
            allow_duplicate_email=True,
        )
        if traits:
            set_traits(session, view.id, traits, source="test")
    customer = session.get(Customer, view.id)
    assert customer is not None
    return customer


def make_consent(
    session: Session,
    customer: Customer,
    purpose: str,
    channel: str,
    status: str,
    recorded: str,
    expires: str | None = None,
) -> None:
    with use_clock(FrozenClock(at(recorded))):
        record_consent(
            session,
            customer.id,
            purpose=purpose,
            channel=channel,
            status=status,
            source="test",
            recorded_at=at(recorded),
            expires_at=at(expires) if expires else None,
        )


def make_organisation(session: Session, name: str, **columns: Any) -> Organisation:
    org = Organisation(name=name, name_folded=fold(name), **columns)
    session.add(org)
    session.flush()
    return org


@dataclass
class People:
    """Five live customers plus a test, an erased and a merged one (who never match by default)."""

    ids: dict[str, str] = field(default_factory=dict)
    acme: str = ""
    beta: str = ""

    def names(self, ids: set[str] | list[str]) -> set[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return {by_id[i] for i in ids}


def make_people(session: Session) -> People:
    people = People()
    acme = make_organisation(session, "Công ty Ánh Dương", industry="retail", size="11-50", country="VN")
    beta = make_organisation(session, "Beta Kft", industry="software", size="1-10", country="HU")
    people.acme, people.beta = acme.id, beta.id
    anh = make_customer(
        session,
        "Anh",
        family="Nguyễn",
        email="anh@example.com",
        country="VN",
        language="vi",
        time_zone="Asia/Ho_Chi_Minh",
        birthday=date(1990, 3, 2),
        tags=("vip", "wholesale"),
        preferred_channel="zalo",
        created="2026-03-10T08:00:00+00:00",
        organisation_id=acme.id,
        organisation_role="buyer",
    )
    # merged and erased customers first, so the merge (which recomputes the order-stat traits of the
    # survivor from its orders) happens before anh's traits are set
    erin = make_customer(session, "Erin", country="VN", tags=("vip",), created="2026-03-01T00:00:00+00:00")
    mia = make_customer(session, "Mia", country="VN", tags=("vip",), created="2026-03-01T00:00:00+00:00")
    with use_clock(FrozenClock(at("2026-03-10T08:00:00+00:00"))):
        erase_customer(session, erin.id)
        merge_customers(session, source_id=mia.id, target_id=anh.id)
        set_traits(
            session,
            anh.id,
            {"total_spent": 1500000, "tier": "gold", "last_order_at": at("2026-03-01T00:00:00+00:00")},
            source="test",
        )
    binh = make_customer(
        session,
        "Bình",
        family="Trần",
        country="VN",
        language="vi",
        birthday=date(1985, 7, 20),
        tags=("vip",),
        created="2025-12-01T00:00:00+00:00",
        traits={"total_spent": 999999.5, "tier": "silver", "last_order_at": at("2025-10-01T00:00:00+00:00")},
    )
    chai = make_customer(
        session,
        "Chai",
        family="Srisuk",
        country="TH",
        language="th",
        birthday=date(1992, 3, 30),
        tags=("wholesale",),
        created="2026-02-20T00:00:00+00:00",
        organisation_id=acme.id,
        traits={"total_spent": 1000000},
    )
    dora = make_customer(
        session,
        "Dóra",
        family="Kovács",
        country="HU",
        language="hu",
        tags=(),
        created="2024-05-05T00:00:00+00:00",
        organisation_id=beta.id,
        organisation_role="CEO",
    )
    eve = make_customer(
        session,
        "Eve",
        email="eve@example.com",
        language="en",
        tags=("VIP",),
        created="2026-03-15T09:00:00+00:00",
        traits={"total_spent": 20, "newsletter": True},
    )
    tom = make_customer(
        session,
        "Tom",
        country="VN",
        is_test=True,
        tags=("vip",),
        created="2026-03-01T00:00:00+00:00",
        traits={"total_spent": 5000000},
    )
    make_consent(session, anh, "marketing", "email", "granted", "2026-01-01T00:00:00+00:00")
    make_consent(session, binh, "marketing", "email", "granted", "2026-01-01T00:00:00+00:00")
    make_consent(session, binh, "marketing", "email", "withdrawn", "2026-02-01T00:00:00+00:00")
    make_consent(
        session,
        chai,
        "marketing",
        "sms",
        "granted",
        "2026-01-01T00:00:00+00:00",
        expires="2026-03-01T00:00:00+00:00",
    )
    make_consent(
        session,
        dora,
        "marketing",
        "email",
        "granted",
        "2026-01-01T00:00:00+00:00",
        expires="2027-01-01T00:00:00+00:00",
    )
    make_consent(session, eve, "marketing", "email", "granted", "2026-04-01T00:00:00+00:00")  # after "now"
    for name, customer in [
        ("anh", anh),
        ("binh", binh),
        ("chai", chai),
        ("dora", dora),
        ("eve", eve),
        ("tom", tom),
        ("erin", erin),
        ("mia", mia),
    ]:
        people.ids[name] = customer.id
    return people
