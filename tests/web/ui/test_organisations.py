"""Organisations list and detail with contacts."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from patron.auth import Role
from patron.core.db import Database
from patron.customers import CustomerCreateInput, create_customer, get_organisation, list_organisations
from tests.web.ui.conftest import post_form

Console = Callable[[Role | str], TestClient]


def _org_id(database: Database, name: str) -> str:
    with database.unit_of_work() as s:
        return next(o.id for o in list_organisations(s).items if o.name == name)


def test_create_edit_and_link_contacts(owner: TestClient, database: Database) -> None:
    response = post_form(
        owner,
        "/organisations",
        "/organisations",
        {"name": "Công ty Cà phê Đà Lạt", "industry": "coffee", "size": "11-50", "country": "vn"},
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    org_id = _org_id(database, "Công ty Cà phê Đà Lạt")
    assert response.headers["location"] == f"/organisations/{org_id}?flash=created"  # type: ignore[attr-defined]
    listing = owner.get("/organisations", params={"q": "ca phe da lat"})
    assert f'<a href="/organisations/{org_id}">Công ty Cà phê Đà Lạt</a>' in listing.text
    with database.unit_of_work() as s:
        lan = create_customer(
            s,
            CustomerCreateInput(
                first_name="Thị Lan", last_name="Trần", language="vi", email="lan@dalat.vn", country="VN"
            ),
        )
    url = f"/organisations/{org_id}"
    linked = post_form(owner, url, f"{url}/contacts", {"customer_id": lan.id, "role": "Buyer"})
    assert linked.status_code == 303  # type: ignore[attr-defined]
    page = owner.get(url)
    assert f'<a href="/customers/{lan.id}">' in page.text
    assert "<td>Buyer</td>" in page.text
    edited = post_form(
        owner,
        url,
        url,
        {"name": "Cà phê Đà Lạt JSC", "industry": "coffee", "size": "51-200", "country": "VN"},
    )
    assert edited.status_code == 303  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        org = get_organisation(s, org_id)
        assert (org.name, org.size, org.country) == ("Cà phê Đà Lạt JSC", "51-200", "VN")
    customer_page = owner.get(f"/customers/{lan.id}")
    assert f'<a href="/organisations/{org_id}">Cà phê Đà Lạt JSC</a> · Buyer' in customer_page.text
    removed = post_form(owner, url, f"{url}/contacts/{lan.id}/remove", {})
    assert removed.status_code == 303  # type: ignore[attr-defined]
    assert "No contacts yet." in owner.get(url).text


def test_validation_errors_show_inline(owner: TestClient, database: Database) -> None:
    response = post_form(owner, "/organisations", "/organisations", {"name": "", "country": "Vietnam"})
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert 'data-error-for="name"' in response.text  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        assert list_organisations(s).items == []
    post_form(owner, "/organisations", "/organisations", {"name": "Kovács Kft.", "country": "HU"})
    org_id = _org_id(database, "Kovács Kft.")
    bad = post_form(
        owner,
        f"/organisations/{org_id}",
        f"/organisations/{org_id}/contacts",
        {"customer_id": "no-such-customer"},
    )
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert 'data-error-for="customer_id"' in bad.text or 'class="error"' in bad.text  # type: ignore[attr-defined]


def test_delete_organisation(owner: TestClient, database: Database) -> None:
    post_form(owner, "/organisations", "/organisations", {"name": "บริษัท ไทย จำกัด", "country": "TH"})
    org_id = _org_id(database, "บริษัท ไทย จำกัด")
    response = post_form(owner, f"/organisations/{org_id}", f"/organisations/{org_id}/delete", {})
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert owner.get(f"/organisations/{org_id}").status_code == 404


def test_agent_reads_but_cannot_change(console: Console, owner: TestClient, database: Database) -> None:
    post_form(owner, "/organisations", "/organisations", {"name": "Read Only Ltd"})
    org_id = _org_id(database, "Read Only Ltd")
    agent = console(Role.AGENT)
    page = agent.get(f"/organisations/{org_id}")
    assert page.status_code == 200
    assert 'id="organisation-form"' not in page.text
    assert 'id="contact-form"' not in page.text
    assert 'id="organisation-form"' not in agent.get("/organisations").text
    refused = post_form(agent, "/organisations", "/organisations", {"name": "Agent Org"})
    assert refused.status_code == 403  # type: ignore[attr-defined]
    refused_delete = post_form(agent, "/organisations", f"/organisations/{org_id}/delete", {})
    assert refused_delete.status_code == 403  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        assert [o.name for o in list_organisations(s).items] == ["Read Only Ltd"]
