"""Organisations and contacts through the domain functions."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.auth import Role, create_user
from patron.core.audit import AuditEntry
from patron.core.clock import FrozenClock
from patron.core.errors import Conflict, NotFound, ValidationFailed
from patron.customers import (
    OrganisationLifecycle,
    add_contact,
    count_contacts,
    create_organisation,
    delete_organisation,
    get_organisation,
    list_contacts,
    list_organisations,
    remove_contact,
    update_organisation,
)
from patron.customers.models import Customer
from tests.customers.segment_factories import make_customer


def test_create_validates_and_normalises(session: Session, frozen_clock: FrozenClock) -> None:
    owner = create_user(session, email="am@example.com", password="correct horse battery", role=Role.MARKETER)
    org = create_organisation(
        session,
        name="  Công ty Ánh Dương ",
        industry="retail",
        size="11-50",
        country="vn",
        account_owner_id=owner.id,
        attributes={"tier": "key"},
    )
    assert (org.name, org.name_folded, org.country, org.size) == (
        "Công ty Ánh Dương",
        "cong ty anh duong",
        "VN",
        "11-50",
    )
    assert get_organisation(session, org.id) is org
    with pytest.raises(ValidationFailed) as err:
        create_organisation(session, name="X", size="2-5")
    assert (err.value.code, err.value.errors[0]["loc"]) == ("invalid_size_band", ["size"])
    with pytest.raises(ValidationFailed) as err:
        create_organisation(session, name="X", account_owner_id="00000000-0000-0000-0000-000000000000")
    assert err.value.code == "account_owner_not_found"
    with pytest.raises(ValidationFailed) as err:
        create_organisation(session, name="   ")
    assert err.value.code == "invalid_organisation_name"
    with pytest.raises(ValidationFailed) as err:
        create_organisation(session, name="X", country="VNM")
    assert err.value.code == "invalid_country"
    assert len(list_organisations(session).items) == 1


def test_external_id_is_unique(session: Session) -> None:
    create_organisation(session, name="A", external_id="crm-1")
    with pytest.raises(Conflict) as err:
        create_organisation(session, name="B", external_id="crm-1")
    assert err.value.code == "duplicate_external_id"
    other = create_organisation(session, name="C", external_id="crm-2")
    with pytest.raises(Conflict):
        update_organisation(session, other, external_id="crm-1")
    assert [o.name for o in list_organisations(session).items] == ["A", "C"]


def test_search_is_accent_insensitive_and_paged(session: Session) -> None:
    for name in ["Công ty Ánh Dương", "Điện Máy Xanh", "Beta Kft", "บริษัท สยาม", "Anh Quốc Ltd"]:
        create_organisation(session, name=name)
    assert [o.name for o in list_organisations(session, q="anh").items] == [
        "Anh Quốc Ltd",
        "Công ty Ánh Dương",
        "Điện Máy Xanh",
    ]
    assert [o.name for o in list_organisations(session, q="ÁNH dương").items] == ["Công ty Ánh Dương"]
    assert [o.name for o in list_organisations(session, q="DIEN may").items] == ["Điện Máy Xanh"]
    assert [o.name for o in list_organisations(session, q="สยาม").items] == ["บริษัท สยาม"]
    assert list_organisations(session, q="100%").items == []
    names = []
    cursor = None
    while True:
        page = list_organisations(session, limit=2, cursor=cursor)
        names += [o.name for o in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert names == ["Anh Quốc Ltd", "Beta Kft", "Công ty Ánh Dương", "Điện Máy Xanh", "บริษัท สยาม"]


def test_update_is_audited_with_old_and_new_values(session: Session) -> None:
    org = create_organisation(session, name="Acme", industry="retail")
    version = org.version
    update_organisation(session, org, name="Acme Việt Nam", industry=None, size="51-200")
    assert (org.name, org.name_folded, org.industry, org.size) == (
        "Acme Việt Nam",
        "acme viet nam",
        None,
        "51-200",
    )
    assert org.version == version + 1
    entries = list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity_id == org.id)
            .order_by(AuditEntry.occurred_at, AuditEntry.action)
        )
    )
    assert [e.action for e in entries] == ["organisation.created", "organisation.updated"]
    assert entries[1].old_values == {"name": "Acme", "industry": "retail", "size": None}
    assert entries[1].new_values == {"name": "Acme Việt Nam", "industry": None, "size": "51-200"}


def test_contacts_link_customers_with_a_role(session: Session, frozen_clock: FrozenClock) -> None:
    acme = create_organisation(session, name="Acme")
    beta = create_organisation(session, name="Beta")
    lan = make_customer(session, "Lan", created="2026-01-01T00:00:00+00:00", email="lan@example.com")
    minh = make_customer(session, "Minh", created="2026-01-02T00:00:00+00:00")
    gone = make_customer(session, "Gone", created="2026-01-03T00:00:00+00:00")
    contact = add_contact(session, acme, lan.id, role="Purchasing manager")
    assert (contact.customer_id, contact.organisation_id, contact.role, contact.email) == (
        lan.id,
        acme.id,
        "Purchasing manager",
        "lan@example.com",
    )
    add_contact(session, acme, minh.id)
    add_contact(session, acme, gone.id, role="CFO")
    gone.erased_at = frozen_clock.now()
    session.flush()
    assert [c.customer_id for c in list_contacts(session, acme).items] == [lan.id, minh.id]
    assert count_contacts(session, acme) == 2
    first = list_contacts(session, acme, limit=1)
    assert [c.customer_id for c in list_contacts(session, acme, cursor=first.next_cursor).items] == [minh.id]

    add_contact(session, beta, minh.id, role="Owner")  # moves
    assert [c.customer_id for c in list_contacts(session, acme).items] == [lan.id]
    assert [(c.customer_id, c.role) for c in list_contacts(session, beta).items] == [(minh.id, "Owner")]

    with pytest.raises(NotFound) as err:
        remove_contact(session, acme, minh.id)
    assert err.value.code == "contact_not_found"
    remove_contact(session, acme, lan.id)
    assert (lan.organisation_id, lan.organisation_role) == (None, None)
    with pytest.raises(NotFound) as err:
        add_contact(session, acme, "00000000-0000-0000-0000-000000000000")
    assert err.value.code == "customer_not_found"
    with pytest.raises(NotFound):
        add_contact(session, acme, gone.id)


def test_deleting_an_organisation_keeps_its_contacts_as_customers(session: Session) -> None:
    acme = create_organisation(session, name="Acme")
    lan = make_customer(session, "Lan")
    add_contact(session, acme, lan.id, role="Buyer")
    delete_organisation(session, acme)
    session.expire_all()
    customer = session.get(Customer, lan.id)
    assert customer is not None
    assert (customer.organisation_id, customer.organisation_role) == (None, None)
    with pytest.raises(NotFound) as err:
        get_organisation(session, acme.id)
    assert err.value.code == "organisation_not_found"


def test_lifecycle_erase_unlinks_but_keeps_the_organisation(session: Session) -> None:
    acme = create_organisation(session, name="Acme")
    lan = make_customer(session, "Lan")
    add_contact(session, acme, lan.id, role="Buyer")
    handler = OrganisationLifecycle()
    assert handler.export(session, customer_id=lan.id) == {
        "organisation": {"id": acme.id, "name": "Acme", "role": "Buyer"}
    }
    handler.erase(session, customer_id=lan.id)
    assert (lan.organisation_id, lan.organisation_role) == (None, None)
    assert get_organisation(session, acme.id).name == "Acme"


def test_lifecycle_merge_keeps_the_targets_link_or_takes_the_sources(session: Session) -> None:
    acme = create_organisation(session, name="Acme")
    beta = create_organisation(session, name="Beta")
    source = make_customer(session, "Source")
    target = make_customer(session, "Target")
    add_contact(session, acme, source.id, role="Buyer")
    OrganisationLifecycle().merge(session, source_id=source.id, target_id=target.id)
    assert (target.organisation_id, target.organisation_role) == (acme.id, "Buyer")
    assert source.organisation_id is None
    other = make_customer(session, "Other")
    add_contact(session, beta, other.id, role="CEO")
    OrganisationLifecycle().merge(session, source_id=other.id, target_id=target.id)
    assert (target.organisation_id, target.organisation_role) == (acme.id, "Buyer")
