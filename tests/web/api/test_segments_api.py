"""Segments through the HTTP API: CRUD with ETags, counts, members, live preview, 422s, 401/403."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from patron.auth import Role
from patron.core.clock import FrozenClock
from patron.core.db import Database
from tests.conftest import Tokens
from tests.customers.segment_factories import People, make_people

VN = {"type": "field", "field": "country", "op": "in", "value": ["VN", "TH"]}


@pytest.fixture
def people(database: Database, frozen_clock: FrozenClock) -> People:
    with database.unit_of_work() as session:
        return make_people(session)


def _create(
    api: TestClient, name: str = "Vietnam and Thailand", rules: dict[str, Any] = VN
) -> dict[str, Any]:
    response = api.post("/api/v1/segments", json={"name": name, "description": "SEA", "rules": rules})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_create_read_update_delete_with_etags(api: TestClient, people: People) -> None:
    created = _create(api)
    assert created["rules"] == VN
    assert created["name"] == "Vietnam and Thailand"
    read = api.get(f"/api/v1/segments/{created['id']}")
    assert read.status_code == 200
    etag = read.headers["ETag"]
    assert read.json() == created

    stale = api.patch(
        f"/api/v1/segments/{created['id']}", json={"name": "SEA"}, headers={"If-Match": 'W/"nope"'}
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "etag_mismatch"
    assert api.get(f"/api/v1/segments/{created['id']}").json()["name"] == "Vietnam and Thailand"

    new_rules = {"type": "not", "rule": VN}
    ok = api.patch(
        f"/api/v1/segments/{created['id']}",
        json={"name": "Elsewhere", "rules": new_rules},
        headers={"If-Match": etag},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["rules"] == new_rules
    assert ok.json()["version"] == created["version"] + 1
    assert ok.headers["ETag"] != etag

    listing = api.get("/api/v1/segments")
    assert [s["name"] for s in listing.json()["items"]] == ["Elsewhere"]

    gone = api.delete(f"/api/v1/segments/{created['id']}", headers={"If-Match": etag})
    assert gone.status_code == 412
    assert api.delete(f"/api/v1/segments/{created['id']}").status_code == 204
    missing = api.get(f"/api/v1/segments/{created['id']}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "segment_not_found"


def test_duplicate_name_conflicts(api: TestClient, people: People) -> None:
    _create(api)
    again = api.post("/api/v1/segments", json={"name": "Vietnam and Thailand", "rules": VN})
    assert again.status_code == 409
    assert again.json()["code"] == "segment_name_taken"
    assert len(api.get("/api/v1/segments").json()["items"]) == 1


def test_counts_by_customer_and_organisation(api: TestClient, people: People) -> None:
    segment = _create(api)
    count = api.get(f"/api/v1/segments/{segment['id']}/count")
    assert count.status_code == 200
    assert count.json() == {"segment_id": segment["id"], "by": "customer", "count": 3}
    by_org = api.get(f"/api/v1/segments/{segment['id']}/count", params={"by": "organisation"})
    assert by_org.json() == {"segment_id": segment["id"], "by": "organisation", "count": 1}
    assert api.get(f"/api/v1/segments/{segment['id']}/count", params={"by": "planet"}).status_code == 422


def test_members_are_paginated(api: TestClient, people: People) -> None:
    segment = _create(api, rules={"type": "and", "rules": []})
    names: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get(f"/api/v1/segments/{segment['id']}/members", params=params)
        assert page.status_code == 200
        names.extend(m["given_name"] for m in page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert names == ["Dóra", "Bình", "Chai", "Anh", "Eve"]
    first = api.get(f"/api/v1/segments/{segment['id']}/members", params={"limit": 1}).json()["items"][0]
    assert first == {
        "id": people.ids["dora"],
        "given_name": "Dóra",
        "family_name": "Kovács",
        "email": None,
        "phone": None,
        "country": "HU",
        "language": "hu",
        "organisation_id": people.beta,
        "created_at": "2024-05-05T00:00:00Z",
    }
    bad = api.get(f"/api/v1/segments/{segment['id']}/members", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422


def test_preview_gives_live_count_without_saving(api: TestClient, people: People) -> None:
    rules = {
        "type": "and",
        "rules": [
            {"type": "trait", "name": "total_spent", "op": "gte", "value": 1000000},
            {"type": "tag", "op": "has_any", "value": ["vip", "wholesale"]},
        ],
    }
    preview = api.post("/api/v1/segments/preview", json={"rules": rules, "sample_size": 5})
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["count"], body["organisations"]) == (2, 1)
    assert [m["given_name"] for m in body["sample"]] == ["Chai", "Anh"]
    assert api.get("/api/v1/segments").json()["items"] == []


@pytest.mark.parametrize(
    ("rules", "loc"),
    [
        ({"type": "field", "field": "country", "op": "gt", "value": "VN"}, ["body", "rules", "field"]),
        (
            {"type": "and", "rules": [VN, {"type": "trait", "name": "x", "op": "between", "value": [1]}]},
            ["body", "rules", "and", "rules", 1, "trait"],
        ),
        ({"type": "tag", "op": "has_all"}, ["body", "rules", "tag", "value"]),
        ({"type": "weird"}, ["body", "rules"]),
    ],
)
def test_invalid_rules_answer_422_locating_the_node(
    api: TestClient, people: People, rules: dict[str, Any], loc: list[Any]
) -> None:
    for response in (
        api.post("/api/v1/segments", json={"name": "Bad", "rules": rules}),
        api.post("/api/v1/segments/preview", json={"rules": rules}),
    ):
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["loc"] for e in response.json()["errors"]] == [loc]
    assert api.get("/api/v1/segments").json()["items"] == []


def test_too_deep_rules_answer_422(api: TestClient, people: People) -> None:
    rule: dict[str, Any] = VN
    for _ in range(12):
        rule = {"type": "not", "rule": rule}
    response = api.post("/api/v1/segments/preview", json={"rules": rule})
    assert response.status_code == 422
    assert "nested deeper than 12 levels" in response.json()["errors"][0]["msg"]


def test_authorisation_matrix(client: TestClient, tokens: Tokens, people: People) -> None:
    segment = _create_as(client, tokens)
    reads = [
        ("GET", "/api/v1/segments", None),
        ("GET", f"/api/v1/segments/{segment}", None),
        ("GET", f"/api/v1/segments/{segment}/count", None),
        ("GET", f"/api/v1/segments/{segment}/members", None),
        ("POST", "/api/v1/segments/preview", {"rules": VN}),
    ]
    writes = [
        ("POST", "/api/v1/segments", {"name": "New", "rules": VN}),
        ("PATCH", f"/api/v1/segments/{segment}", {"description": "changed"}),
    ]
    for method, url, body in reads + writes:
        assert client.request(method, url, json=body).status_code == 401, url
    for method, url, body in reads:
        assert (
            client.request(method, url, json=body, headers=tokens.headers(Role.VIEWER)).status_code == 200
        ), url
    for method, url, body in writes:
        response = client.request(method, url, json=body, headers=tokens.headers(Role.VIEWER))
        assert response.status_code == 403, url
        assert response.json()["code"] == "forbidden"
        response = client.request(method, url, json=body, headers=tokens.headers(Role.MARKETER))
        assert response.status_code in (200, 201), url
    deleted = client.delete(f"/api/v1/segments/{segment}", headers=tokens.headers(Role.AGENT))
    assert deleted.status_code == 403


def _create_as(client: TestClient, tokens: Tokens) -> str:
    response = client.post(
        "/api/v1/segments", json={"name": "Seed", "rules": VN}, headers=tokens.headers(Role.ADMIN)
    )
    assert response.status_code == 201
    return str(response.json()["id"])
