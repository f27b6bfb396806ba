"""Organisations and contacts through the HTTP API."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from patron.auth import Role
from patron.core.audit import AuditEntry
from patron.core.clock import FrozenClock
from patron.core.db import Database
from tests.conftest import Tokens
from tests.customers.segment_factories import make_customer

ACME = {
    "name": "Công ty Ánh Dương",
    "external_id": "crm-42",
    "industry": "retail",
    "size": "51-200",
    "country": "VN",
    "attributes": {"tax_code": "0312345678", "note": "ưu tiên"},
}


@pytest.fixture
def customers(database: Database, frozen_clock: FrozenClock) -> dict[str, str]:
    with database.unit_of_work() as session:
        return {
            "lan": make_customer(
                session, "Lan", family="Phạm", email="lan@example.com", created="2026-01-01T00:00:00+00:00"
            ).id,
            "somchai": make_customer(session, "Somchai", created="2026-01-02T00:00:00+00:00").id,
        }


def _create(api: TestClient, body: dict[str, Any] = ACME) -> dict[str, Any]:
    response = api.post("/api/v1/organisations", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/api/v1/organisations/{response.json()['id']}"
    result: dict[str, Any] = response.json()
    return result


def test_crud_with_etags_and_audit(api: TestClient, database: Database) -> None:
    me = api.get("/api/v1/users/me").json()["id"]
    org = _create(api, {**ACME, "account_owner_id": me})
    assert {k: org[k] for k in ACME} == ACME
    assert org["account_owner_id"] == me
    read = api.get(f"/api/v1/organisations/{org['id']}")
    assert read.status_code == 200
    assert read.json() == org
    etag = read.headers["ETag"]

    stale = api.patch(
        f"/api/v1/organisations/{org['id']}", json={"size": "1000+"}, headers={"If-Match": 'W/"x"'}
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "etag_mismatch"
    assert api.get(f"/api/v1/organisations/{org['id']}").json()["size"] == "51-200"

    patched = api.patch(
        f"/api/v1/organisations/{org['id']}",
        json={"size": "1000+", "industry": None},
        headers={"If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["size"], patched.json()["industry"], patched.json()["name"]) == (
        "1000+",
        None,
        ACME["name"],
    )
    assert patched.headers["ETag"] != etag

    with database.unit_of_work(write=False) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "organisation.updated")).one()
        assert (entry.old_values, entry.new_values) == (
            {"size": "51-200", "industry": "retail"},
            {"size": "1000+", "industry": None},
        )
        assert entry.actor == f"user:{me}"

    assert api.delete(f"/api/v1/organisations/{org['id']}", headers={"If-Match": etag}).status_code == 412
    assert api.delete(f"/api/v1/organisations/{org['id']}").status_code == 204
    missing = api.get(f"/api/v1/organisations/{org['id']}")
    assert (missing.status_code, missing.json()["code"]) == (404, "organisation_not_found")


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": ""}, ["body", "name"]),
        ({"name": "X", "size": "2-5"}, ["body", "size"]),
        ({"name": "X", "country": "Vietnam"}, ["body", "country"]),
        ({"name": "X", "colour": "red"}, ["body", "colour"]),
        ({"name": "X", "attributes": {"a": "nul\u0000"}}, ["body", "attributes"]),
        ({"name": "X", "account_owner_id": "00000000-0000-0000-0000-000000000000"}, ["account_owner_id"]),
    ],
)
def test_invalid_input_answers_422(api: TestClient, body: dict[str, Any], loc: list[str]) -> None:
    response = api.post("/api/v1/organisations", json=body)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [loc]
    assert api.get("/api/v1/organisations").json()["items"] == []


def test_duplicate_external_id_conflicts(api: TestClient) -> None:
    _create(api)
    again = api.post("/api/v1/organisations", json={"name": "Other", "external_id": "crm-42"})
    assert (again.status_code, again.json()["code"]) == (409, "duplicate_external_id")


def test_list_search_and_pages(api: TestClient) -> None:
    for name in ["Công ty Ánh Dương", "Điện Máy Xanh", "Beta Kft"]:
        _create(api, {"name": name})
    found = api.get("/api/v1/organisations", params={"q": "dien may"}).json()
    assert [o["name"] for o in found["items"]] == ["Điện Máy Xanh"]
    first = api.get("/api/v1/organisations", params={"limit": 2}).json()
    assert [o["name"] for o in first["items"]] == ["Beta Kft", "Công ty Ánh Dương"]
    rest = api.get("/api/v1/organisations", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert ([o["name"] for o in rest["items"]], rest["next_cursor"]) == (["Điện Máy Xanh"], None)
    assert api.get("/api/v1/organisations", params={"limit": 500}).status_code == 422


def test_contacts(api: TestClient, customers: dict[str, str]) -> None:
    org = _create(api)
    added = api.post(
        f"/api/v1/organisations/{org['id']}/contacts",
        json={"customer_id": customers["lan"], "role": "Kế toán trưởng"},
    )
    assert added.status_code == 201, added.text
    assert added.json() == {
        "customer_id": customers["lan"],
        "organisation_id": org["id"],
        "role": "Kế toán trưởng",
        "given_name": "Lan",
        "family_name": "Phạm",
        "email": "lan@example.com",
        "phone": None,
        "created_at": "2026-01-01T00:00:00Z",
    }
    assert (
        api.post(
            f"/api/v1/organisations/{org['id']}/contacts", json={"customer_id": customers["somchai"]}
        ).status_code
        == 201
    )
    listed = api.get(f"/api/v1/organisations/{org['id']}/contacts").json()
    assert [(c["given_name"], c["role"]) for c in listed["items"]] == [
        ("Lan", "Kế toán trưởng"),
        ("Somchai", None),
    ]
    page = api.get(f"/api/v1/organisations/{org['id']}/contacts", params={"limit": 1}).json()
    assert [c["given_name"] for c in page["items"]] == ["Lan"]
    rest = api.get(
        f"/api/v1/organisations/{org['id']}/contacts", params={"limit": 1, "cursor": page["next_cursor"]}
    ).json()
    assert ([c["given_name"] for c in rest["items"]], rest["next_cursor"]) == (["Somchai"], None)

    unknown = api.post(
        f"/api/v1/organisations/{org['id']}/contacts",
        json={"customer_id": "00000000-0000-0000-0000-000000000000"},
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "customer_not_found")

    assert api.delete(f"/api/v1/organisations/{org['id']}/contacts/{customers['lan']}").status_code == 204
    again = api.delete(f"/api/v1/organisations/{org['id']}/contacts/{customers['lan']}")
    assert (again.status_code, again.json()["code"]) == (404, "contact_not_found")
    listed = api.get(f"/api/v1/organisations/{org['id']}/contacts").json()
    assert [c["given_name"] for c in listed["items"]] == ["Somchai"]

    # deleting the organisation leaves the customer in place, unlinked
    assert api.delete(f"/api/v1/organisations/{org['id']}").status_code == 204
    assert api.get(f"/api/v1/organisations/{org['id']}/contacts").status_code == 404


def test_authorisation_matrix(client: TestClient, tokens: Tokens, customers: dict[str, str]) -> None:
    created = client.post("/api/v1/organisations", json={"name": "Seed"}, headers=tokens.headers(Role.ADMIN))
    assert created.status_code == 201
    org = created.json()["id"]
    reads = [
        ("GET", "/api/v1/organisations", None),
        ("GET", f"/api/v1/organisations/{org}", None),
        ("GET", f"/api/v1/organisations/{org}/contacts", None),
    ]
    writes = [
        ("POST", "/api/v1/organisations", {"name": "New"}),
        ("PATCH", f"/api/v1/organisations/{org}", {"industry": "retail"}),
        ("POST", f"/api/v1/organisations/{org}/contacts", {"customer_id": customers["lan"]}),
        ("DELETE", f"/api/v1/organisations/{org}/contacts/{customers['lan']}", None),
    ]
    for method, url, body in reads + writes:
        response = client.request(method, url, json=body)
        assert (response.status_code, response.json()["code"]) == (401, "unauthenticated"), url
    for method, url, body in reads:
        for role in (Role.VIEWER, Role.AGENT, Role.ANALYST):
            assert client.request(method, url, json=body, headers=tokens.headers(role)).status_code == 200
    for method, url, body in writes:
        for role in (Role.VIEWER, Role.AGENT, Role.ANALYST):
            response = client.request(method, url, json=body, headers=tokens.headers(role))
            assert (response.status_code, response.json()["code"]) == (403, "forbidden"), (url, role)
        response = client.request(method, url, json=body, headers=tokens.headers(Role.MARKETER))
        assert response.status_code in (200, 201, 204), url


def test_erasing_a_contact_keeps_the_organisation(api: TestClient) -> None:
    org = _create(api)
    created = api.post(
        "/api/v1/customers", json={"first_name": "Hoa", "last_name": "Lê", "email": "hoa@example.vn"}
    )
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]
    added = api.post(
        f"/api/v1/organisations/{org['id']}/contacts", json={"customer_id": customer_id, "role": "CTO"}
    )
    assert added.status_code == 201
    assert api.delete(f"/api/v1/customers/{customer_id}").status_code == 204
    kept = api.get(f"/api/v1/organisations/{org['id']}")
    assert kept.status_code == 200
    assert kept.json()["name"] == ACME["name"]
    assert api.get(f"/api/v1/organisations/{org['id']}/contacts").json() == {"items": [], "next_cursor": None}
    again = api.post(f"/api/v1/organisations/{org['id']}/contacts", json={"customer_id": customer_id})
    assert (again.status_code, again.json()["code"]) == (404, "customer_not_found")
