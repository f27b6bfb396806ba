from __future__ import annotations

from fastapi.testclient import TestClient


def test_health_is_public(client: TestClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_missing_token_is_401_problem(client: TestClient) -> None:
    response = client.get("/api/v1/users")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "unauthenticated"
    assert body["status"] == 401


def test_bad_token_is_401(client: TestClient) -> None:
    response = client.get("/api/v1/users", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_viewer_cannot_create_users(client: TestClient, tokens) -> None:
    response = client.post(
        "/api/v1/users",
        json={"email": "x@example.com", "password": "0123456789ab", "role": "viewer"},
        headers=tokens.headers("viewer"),
    )
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_idempotent_post_replays(api: TestClient) -> None:
    body = {"email": "a@example.com", "password": "0123456789ab", "role": "viewer"}
    first = api.post("/api/v1/users", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201
    again = api.post("/api/v1/users", json=body, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = api.post("/api/v1/users", json={**body, "role": "agent"}, headers={"Idempotency-Key": "k1"})
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    users = api.get("/api/v1/users").json()["items"]
    assert [u["email"] for u in users].count("a@example.com") == 1


def test_audit_log_records_old_and_new_values(api: TestClient, tokens) -> None:
    created = api.post(
        "/api/v1/users", json={"email": "b@example.com", "password": "0123456789ab", "role": "viewer"}
    )
    user_id = created.json()["id"]
    assert api.patch(f"/api/v1/users/{user_id}", json={"role": "agent"}).status_code == 200
    entries = api.get("/api/v1/audit", params={"entity_type": "user", "entity_id": user_id}).json()["items"]
    assert [e["action"] for e in entries] == ["user.updated", "user.created"]
    assert entries[0]["old_values"] == {"role": "viewer"}
    assert entries[0]["new_values"] == {"role": "agent"}
    assert entries[0]["actor_label"] == "owner@example.com"
    assert api.get("/api/v1/audit", headers=tokens.headers("marketer")).status_code == 403


def test_unparseable_body_is_422_problem(api: TestClient) -> None:
    response = api.post(
        "/api/v1/users", content=b"\xff\xfe not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_body"
    assert response.json()["errors"][0]["loc"] == ["body"]


def test_replay_repeats_the_etag(api: TestClient) -> None:
    body = {"first_name": "An", "last_name": "Trần", "email": "an@example.vn", "country": "VN"}
    first = api.post("/api/v1/customers", json=body, headers={"Idempotency-Key": "an-1"})
    assert first.status_code == 201
    assert first.headers["ETag"]
    again = api.post("/api/v1/customers", json=body, headers={"Idempotency-Key": "an-1"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.json() == first.json()
