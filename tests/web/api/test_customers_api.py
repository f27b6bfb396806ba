"""/api/v1/customers through HTTP: CRUD, search, duplicates, merge, erasure, export, timeline, consent,
traits — with the 401/403/404/409/412/422 answers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from patron.auth import Role

API = "/api/v1/customers"
PROBLEM = "application/problem+json"


def create(api: TestClient, **body: Any) -> dict[str, Any]:
    response = api.post(API, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    return body


AN = {
    "first_name": "Văn An",
    "last_name": "Nguyễn",
    "email": "an@example.vn",
    "phone": "0912 345 678",
    "language": "vi",
    "time_zone": "Asia/Ho_Chi_Minh",
    "country": "VN",
    "birthday": "1990-05-17",
    "referral_code": "FRIEND-42",
}


def test_create_and_read(api: TestClient, frozen_clock: object) -> None:
    response = api.post(API, json={**AN, "form_of_address": "anh", "tags": ["vip"], "external_id": "crm-1"})
    assert response.status_code == 201
    body = response.json()
    assert isinstance(body["id"], str)
    assert response.headers["Location"] == f"{API}/{body['id']}"
    assert body == {
        "id": body["id"],
        "external_id": "crm-1",
        "first_name": "Văn An",
        "last_name": "Nguyễn",
        "display_name": "Nguyễn Văn An",
        "salutation": "anh An",
        "form_of_address": "anh",
        "email": "an@example.vn",
        "emails": [],
        "phone": "+84912345678",
        "phones": [],
        "language": "vi",
        "preferred_channel": None,
        "time_zone": "Asia/Ho_Chi_Minh",
        "country": "VN",
        "birthday": "1990-05-17",
        "tags": ["vip"],
        "attributes": {},
        "referral_code": "FRIEND-42",
        "organisation_id": None,
        "organisation_role": None,
        "is_test": False,
        "erased_at": None,
        "merged_into_id": None,
        "merged_at": None,
        "version": 1,
        "created_at": "2026-03-15T10:00:00Z",
        "updated_at": "2026-03-15T10:00:00Z",
    }
    read = api.get(f"{API}/{body['id']}")
    assert read.status_code == 200
    assert read.json() == body
    assert read.headers["ETag"] == response.headers["ETag"]


def test_minimal_create_and_defaults(api: TestClient) -> None:
    body = create(api, first_name="Anna", last_name="Kovács", country="HU")
    assert (body["display_name"], body["language"], body["time_zone"]) == (
        "Kovács Anna",
        "hu",
        "Europe/Budapest",
    )
    body = create(api)
    assert (body["display_name"], body["language"], body["time_zone"]) == ("", "en", "UTC")


def test_create_validation_errors(api: TestClient) -> None:
    body = problem(api.post(API, json={"first_name": "A", "phone": "0912 345 678"}), 422, "invalid_customer")
    assert body["errors"] == [
        {
            "loc": ["phone"],
            "msg": "a national phone number needs the customer's country",
            "type": "invalid_phone",
        }
    ]
    body = problem(
        api.post(API, json={"email": "nope", "time_zone": "Mars/Base", "country": "XX"}),
        422,
        "invalid_customer",
    )
    assert sorted(e["loc"][0] for e in body["errors"]) == ["country", "email", "time_zone"]
    body = problem(api.post(API, json={"first_name": "A", "nickname": "x"}), 422, "validation_failed")
    assert body["errors"][0]["loc"] == ["body", "nickname"]
    problem(api.post(API, json={"language": "de"}), 422, "validation_failed")
    problem(api.post(API, json={"is_test": "yes"}), 422, "validation_failed")
    problem(api.post(API, json={"birthday": "17/05/1990"}), 422, "validation_failed")
    problem(api.post(API, json={"first_name": "A\u0000"}), 422, "invalid_customer")
    assert api.get(API).json()["items"] == []


def test_duplicate_email_409_unless_allowed(api: TestClient) -> None:
    first = create(api, **AN)
    body = problem(api.post(API, json={"first_name": "X", "email": "AN@EXAMPLE.VN"}), 409, "duplicate_email")
    assert body["customer_id"] == first["id"]
    second = api.post(API, json={"first_name": "X", "email": "AN@EXAMPLE.VN", "allow_duplicate_email": True})
    assert second.status_code == 201
    third = api.post(f"{API}?allow_duplicate_email=true", json={"first_name": "Y", "email": "an@example.vn"})
    assert third.status_code == 201
    dupes = api.get(f"{API}/duplicates")
    assert dupes.status_code == 200
    ids = sorted([first["id"], second.json()["id"], third.json()["id"]])
    assert dupes.json() == {
        "items": [
            {"customer_ids": [ids[0], ids[1]], "reasons": ["same_email"]},
            {"customer_ids": [ids[0], ids[2]], "reasons": ["same_email"]},
            {"customer_ids": [ids[1], ids[2]], "reasons": ["same_email"]},
        ],
        "next_cursor": None,
    }
    create(api, external_id="e-1")
    problem(api.post(API, json={"external_id": "e-1"}), 409, "duplicate_external_id")


def test_search_through_the_api(api: TestClient) -> None:
    an = create(api, **AN)
    dien = create(api, first_name="Thị Điền", last_name="Trần", country="VN")
    create(api, first_name="Anna", last_name="Kovács", country="HU", email="anna@example.hu")
    for q, expected in (
        ("nguyen", [an["id"]]),
        ("dien", [dien["id"]]),
        ("0912 345 678", [an["id"]]),
        ("+84 912 345 678", [an["id"]]),
        ("ĐIỀN", [dien["id"]]),
    ):
        response = api.get(API, params={"q": q})
        assert response.status_code == 200
        assert [c["id"] for c in response.json()["items"]] == expected, q
        assert response.json()["next_cursor"] is None
    page = api.get(API, params={"limit": 2}).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    rest = api.get(API, params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    assert [c["id"] for c in api.get(API, params={"country": "hu"}).json()["items"]] != []
    problem(api.get(API, params={"limit": 0}), 422, "validation_failed")
    problem(api.get(API, params={"limit": 201}), 422, "validation_failed")
    problem(api.get(API, params={"cursor": "!!!"}), 422, "invalid_cursor")


def test_get_unknown_is_404(api: TestClient) -> None:
    missing = "01a00000-0000-7000-8000-000000000000"
    for method, path in (
        ("GET", f"{API}/{missing}"),
        ("GET", f"{API}/{missing}/timeline"),
        ("GET", f"{API}/{missing}/consent"),
        ("GET", f"{API}/{missing}/traits"),
        ("GET", f"{API}/{missing}/export"),
        ("DELETE", f"{API}/{missing}"),
    ):
        problem(api.request(method, path), 404, "customer_not_found")
    problem(api.patch(f"{API}/{missing}", json={"first_name": "x"}), 404, "customer_not_found")


def test_patch_with_etags(api: TestClient) -> None:
    body = create(api, **AN)
    url = f"{API}/{body['id']}"
    etag = api.get(url).headers["ETag"]
    changed = api.patch(url, json={"last_name": "Lê", "tags": ["vip"]}, headers={"If-Match": etag})
    assert changed.status_code == 200
    assert (changed.json()["display_name"], changed.json()["tags"], changed.json()["version"]) == (
        "Lê Văn An",
        ["vip"],
        2,
    )
    assert changed.headers["ETag"] != etag
    stale = api.patch(url, json={"last_name": "Phạm"}, headers={"If-Match": etag})
    problem(stale, 412, "etag_mismatch")
    assert api.get(url).json()["last_name"] == "Lê"
    # null clears; no If-Match is allowed
    cleared = api.patch(url, json={"email": None, "birthday": None})
    assert (cleared.json()["email"], cleared.json()["birthday"]) == (None, None)
    problem(api.patch(url, json={"time_zone": "Nowhere"}), 422, "invalid_customer")
    problem(api.patch(url, json={"unknown": 1}), 422, "validation_failed")
    other = create(api, email="taken@example.com")
    problem(api.patch(url, json={"email": "TAKEN@example.com"}), 409, "duplicate_email")
    assert (
        api.patch(f"{url}?allow_duplicate_email=true", json={"email": "TAKEN@example.com"}).status_code == 200
    )
    assert other["id"] != body["id"]


def test_timeline(api: TestClient) -> None:
    cid = create(api, **AN)["id"]
    url = f"{API}/{cid}/timeline"
    for i in range(3):
        response = api.post(
            url,
            json={
                "channel": "web",
                "direction": "inbound",
                "kind": "page_view",
                "summary": f"/p{i}",
                "data": {"url": f"/p{i}"},
                "occurred_at": f"2026-03-0{i + 1}T08:00:00+07:00",
            },
        )
        assert response.status_code == 201, response.text
    created = response.json()
    assert created["occurred_at"] == "2026-03-03T01:00:00Z"
    assert created["actor"].startswith("user:")
    assert created["source"] == "api"
    first = api.get(url, params={"limit": 2}).json()
    assert [i["summary"] for i in first["items"]] == ["/p2", "/p1"]
    second = api.get(url, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [i["summary"] for i in second["items"]] == ["/p0"]
    assert second["next_cursor"] is None
    bad = problem(
        api.post(url, json={"channel": "Web!", "direction": "inbound", "kind": "x"}),
        422,
        "invalid_interaction",
    )
    assert [e["loc"] for e in bad["errors"]] == [["channel"]]
    problem(api.post(url, json={"channel": "web", "direction": "up", "kind": "x"}), 422, "validation_failed")
    problem(
        api.post(
            url,
            json={"channel": "web", "direction": "inbound", "kind": "x", "occurred_at": "2026-03-01T08:00"},
        ),
        422,
        "invalid_interaction",
    )


def test_consent(api: TestClient) -> None:
    cid = create(api, **AN)["id"]
    url = f"{API}/{cid}/consent"
    granted = api.post(
        url,
        json={
            "purpose": "marketing",
            "channel": "zalo",
            "status": "granted",
            "source": "signup_form",
            "proof": "form v3",
            "expires_at": "2027-01-01T00:00:00Z",
        },
    )
    assert granted.status_code == 201
    assert granted.json()["status"] == "granted"
    withdrawn = api.post(
        url, json={"purpose": "marketing", "channel": "sms", "status": "withdrawn", "source": "stop"}
    )
    assert withdrawn.status_code == 201
    ledger = api.get(url).json()
    assert ledger["customer_id"] == cid
    current = {(s["purpose"], s["channel"]): s["status"] for s in ledger["current"]}
    assert len(current) == 18
    assert current[("marketing", "zalo")] == "granted"
    assert current[("marketing", "sms")] == "withdrawn"
    assert current[("transactional", "email")] == "unknown"
    assert [r["channel"] for r in ledger["history"]] == ["sms", "zalo"]
    problem(
        api.post(url, json={"purpose": "spam", "channel": "sms", "status": "granted", "source": "x"}),
        422,
        "validation_failed",
    )
    problem(
        api.post(
            url,
            json={
                "purpose": "marketing",
                "channel": "sms",
                "status": "granted",
                "source": "x",
                "recorded_at": "2099-01-01T00:00:00Z",
            },
        ),
        422,
        "invalid_consent",
    )


def test_traits(api: TestClient) -> None:
    cid = create(api, **AN)["id"]
    url = f"{API}/{cid}/traits"
    assert api.get(url).json() == {"customer_id": cid, "traits": {}}
    put = api.put(
        url, json={"source": "crm", "traits": {"tier": "gold", "score": 12.5, "visits": 3, "vip": True}}
    )
    assert put.status_code == 200, put.text
    traits = put.json()["traits"]
    assert {n: (t["value"], t["value_type"], t["source"]) for n, t in traits.items()} == {
        "tier": ("gold", "text", "crm"),
        "score": ("12.5", "number", "crm"),
        "visits": (3, "number", "crm"),
        "vip": (True, "bool", "crm"),
    }
    again = api.put(url, json={"source": "crm", "traits": {"tier": None}}).json()["traits"]
    assert sorted(again) == ["score", "vip", "visits"]
    problem(api.put(url, json={"source": "crm", "traits": {"Bad Name": 1}}), 422, "invalid_traits")
    problem(api.put(url, json={"traits": {"a": 1}}), 422, "validation_failed")


def test_merge_and_erase(api: TestClient) -> None:
    target = create(api, **AN)
    source = create(
        api, first_name="An", last_name="Nguyen", email="an2@example.vn", country="VN", phone="0987 654 321"
    )
    api.post(
        f"{API}/{source['id']}/timeline", json={"channel": "web", "direction": "inbound", "kind": "page_view"}
    )
    merged = api.post(f"{API}/{target['id']}/merge", json={"source_id": source["id"]})
    assert merged.status_code == 200, merged.text
    assert merged.json()["emails"] == ["an2@example.vn"]
    assert merged.json()["phones"] == ["+84987654321"]
    assert len(api.get(f"{API}/{target['id']}/timeline").json()["items"]) == 1
    assert api.get(f"{API}/{source['id']}").json()["merged_into_id"] == target["id"]
    problem(api.post(f"{API}/{target['id']}/merge", json={"source_id": source["id"]}), 409, "customer_merged")
    problem(api.patch(f"{API}/{source['id']}", json={"first_name": "x"}), 409, "customer_merged")
    problem(api.post(f"{API}/{target['id']}/merge", json={"source_id": target["id"]}), 422, "merge_into_self")
    problem(api.post(f"{API}/{target['id']}/merge", json={}), 422, "validation_failed")
    problem(
        api.post(f"{API}/{target['id']}/merge", json={"source_id": "01a00000-0000-7000-8000-000000000000"}),
        404,
        "customer_not_found",
    )

    exported = api.get(f"{API}/{target['id']}/export")
    assert exported.status_code == 200
    assert exported.json()["customers"]["merged_from"] == [source["id"]]
    assert exported.json()["customers"]["profile"]["display_name"] == "Nguyễn Văn An"

    erased = api.delete(f"{API}/{target['id']}")
    assert erased.status_code == 204
    assert erased.content == b""
    after = api.get(f"{API}/{target['id']}").json()
    assert (after["display_name"], after["email"], after["emails"], after["phone"]) == ("", None, [], None)
    assert after["erased_at"] is not None
    assert api.get(API, params={"q": "nguyen"}).json()["items"] == []
    assert api.delete(f"{API}/{target['id']}").status_code == 204
    problem(api.patch(f"{API}/{target['id']}", json={"first_name": "x"}), 409, "customer_erased")
    problem(
        api.post(
            f"{API}/{target['id']}/timeline", json={"channel": "web", "direction": "inbound", "kind": "x"}
        ),
        409,
        "customer_erased",
    )


def test_idempotent_create(api: TestClient) -> None:
    first = api.post(API, json=AN, headers={"Idempotency-Key": "c-1"})
    again = api.post(API, json=AN, headers={"Idempotency-Key": "c-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert len(api.get(API).json()["items"]) == 1


@pytest.mark.parametrize(
    ("role", "method", "path", "status"),
    [
        (Role.VIEWER, "GET", "", 200),
        (Role.VIEWER, "POST", "", 403),
        (Role.VIEWER, "DELETE", "/{id}", 403),
        (Role.VIEWER, "GET", "/{id}/export", 403),
        (Role.VIEWER, "PUT", "/{id}/traits", 403),
        (Role.AGENT, "POST", "/{id}/timeline", 201),
        (Role.AGENT, "POST", "/{id}/consent", 201),
        (Role.AGENT, "PATCH", "/{id}", 403),
        (Role.AGENT, "POST", "/{id}/merge", 403),
        (Role.MARKETER, "DELETE", "/{id}", 403),
        (Role.MARKETER, "PUT", "/{id}/traits", 200),
        (Role.ANALYST, "GET", "/{id}/export", 200),
        (Role.ADMIN, "DELETE", "/{id}", 204),
    ],
)
def test_permissions(
    client: TestClient, tokens: Any, role: Role, method: str, path: str, status: int
) -> None:
    owner = tokens.headers(Role.OWNER)
    cid = client.post(API, json={"first_name": "A"}, headers=owner).json()["id"]
    bodies = {
        "POST": {"first_name": "B"},
        "/{id}/timeline": {"channel": "phone", "direction": "inbound", "kind": "call", "summary": "asked"},
        "/{id}/consent": {"purpose": "marketing", "channel": "email", "status": "granted", "source": "call"},
        "/{id}/traits": {"source": "crm", "traits": {"tier": "gold"}},
        "/{id}/merge": {"source_id": cid},
        "/{id}": {"first_name": "C"},
    }
    body = bodies.get(path) or (bodies["POST"] if method == "POST" else None)
    response = client.request(method, API + path.format(id=cid), json=body, headers=tokens.headers(role))
    if status == 403:
        problem(response, 403, "forbidden")
    else:
        assert response.status_code == status, response.text
    anonymous = client.request(method, API + path.format(id=cid), json=body)
    problem(anonymous, 401, "unauthenticated")
    bad_token = client.request(
        method, API + path.format(id=cid), json=body, headers={"Authorization": "Bearer x"}
    )
    assert bad_token.status_code == 401


def test_openapi_documents_every_status(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    expected = {
        ("/api/v1/customers", "get"): {"200", "401", "403", "422"},
        ("/api/v1/customers", "post"): {"201", "401", "403", "409", "422"},
        ("/api/v1/customers/{customer_id}", "patch"): {"200", "401", "403", "404", "409", "412", "422"},
        ("/api/v1/customers/{customer_id}", "delete"): {"204", "401", "403", "404", "422"},
        ("/api/v1/customers/{customer_id}/merge", "post"): {"200", "401", "403", "404", "409", "422"},
        ("/api/v1/customers/{customer_id}/timeline", "post"): {"201", "401", "403", "404", "409", "422"},
    }
    for (path, method), statuses in expected.items():
        assert set(spec["paths"][path][method]["responses"]) == statuses, (path, method)
