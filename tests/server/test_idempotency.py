"""Idempotency keys through HTTP against two uvicorn worker processes: concurrent duplicates of one
POST create exactly one resource and every caller gets the original status and body."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import func, select

from patron.auth import Role, User
from patron.core.db import Database, get_engine
from patron.core.idempotency import IdempotencyRecord
from tests.server.conftest import Live
from tests.support import concurrently, create_staff_token

N = 20


def _count(live: Live, stmt: object) -> int:
    db = Database(get_engine(live.database_url))
    with db.unit_of_work(write=False) as session:
        return int(session.scalar(stmt))  # type: ignore[call-overload]


def _users_with_email(live: Live, email: str) -> int:
    return _count(live, select(func.count()).select_from(User).where(User.email == email))


def test_twenty_concurrent_posts_with_one_key_create_one_user(live: Live) -> None:
    key = f"create-user-{uuid.uuid4()}"
    body = {"email": "same-key@example.com", "password": "0123456789ab", "role": "viewer", "name": "Lan"}

    def post(_: int) -> tuple[int, bytes, str | None, str]:
        with live.client() as client:
            r = client.post("/api/v1/users", json=body, headers={"Idempotency-Key": key})
            return r.status_code, r.content, r.headers.get("Idempotent-Replayed"), r.headers["content-type"]

    results = concurrently(N, post)

    assert [status for status, *_ in results] == [201] * N
    bodies = {content for _, content, _, _ in results}
    assert len(bodies) == 1, bodies
    assert {ctype for *_, ctype in results} == {"application/json"}
    replayed = sorted((flag or "original") for _, _, flag, _ in results)
    assert replayed == ["original"] + ["true"] * (N - 1)
    assert _users_with_email(live, "same-key@example.com") == 1
    assert (
        _count(live, select(func.count()).select_from(IdempotencyRecord).where(IdempotencyRecord.key == key))
        == 1
    )
    with live.client() as client:
        listed = [
            u for u in client.get("/api/v1/users").json()["items"] if u["email"] == "same-key@example.com"
        ]
    assert len(listed) == 1
    assert listed[0]["id"] == json.loads(bodies.pop())["id"]


def test_concurrent_posts_with_one_key_and_different_bodies(live: Live) -> None:
    """Whichever body commits first wins; the same body replays, the other answers 422."""
    key = f"mixed-{uuid.uuid4()}"
    bodies = [
        {"email": "mixed-a@example.com", "password": "0123456789ab", "role": "viewer"},
        {"email": "mixed-b@example.com", "password": "0123456789ab", "role": "viewer"},
    ]

    def post(i: int) -> tuple[int, int, dict[str, object]]:
        with live.client() as client:
            r = client.post("/api/v1/users", json=bodies[i % 2], headers={"Idempotency-Key": key})
            return i % 2, r.status_code, r.json()

    results = concurrently(N, post)

    winners = {which for which, status, _ in results if status == 201}
    assert len(winners) == 1, results
    winner = winners.pop()
    loser = 1 - winner
    for which, status, payload in results:
        if which == winner:
            assert status == 201
            assert payload["email"] == bodies[winner]["email"]
        else:
            assert status == 422
            assert payload["code"] == "idempotency_key_reused"
    assert len({str(p["id"]) for w, s, p in results if s == 201}) == 1
    assert _users_with_email(live, str(bodies[winner]["email"])) == 1
    assert _users_with_email(live, str(bodies[loser]["email"])) == 0


def test_keys_are_scoped_per_token(live: Live) -> None:
    other = create_staff_token(live.database_url, Role.ADMIN, email="scoped-admin@example.com")
    key = f"scoped-{uuid.uuid4()}"
    tokens = [live.owner_token, other]

    def post(i: int) -> tuple[int, int, str]:
        body = {"email": f"scoped-{i % 2}@example.com", "password": "0123456789ab", "role": "viewer"}
        with live.client() as client:
            r = client.post(
                "/api/v1/users",
                json=body,
                headers={"Idempotency-Key": key, "Authorization": f"Bearer {tokens[i % 2]}"},
            )
            return i % 2, r.status_code, r.json()["id"]

    results = concurrently(10, post)

    assert [status for _, status, _ in results] == [201] * 10
    ids = {which: {user_id for w, _, user_id in results if w == which} for which in (0, 1)}
    assert len(ids[0]) == 1
    assert len(ids[1]) == 1
    assert ids[0] != ids[1]
    assert _users_with_email(live, "scoped-0@example.com") == 1
    assert _users_with_email(live, "scoped-1@example.com") == 1


def test_failed_request_is_not_stored(live: Live) -> None:
    """An error response is not kept: the key may be retried once the request is fixed."""
    key = f"retry-{uuid.uuid4()}"
    with live.client() as client:
        bad = client.post(
            "/api/v1/users",
            json={"email": "retry@example.com", "password": "short", "role": "viewer"},
            headers={"Idempotency-Key": key},
        )
        assert bad.status_code == 422
        good = client.post(
            "/api/v1/users",
            json={"email": "retry@example.com", "password": "0123456789ab", "role": "viewer"},
            headers={"Idempotency-Key": key},
        )
    # the key was bound to nothing, so a corrected body under the same key is a new request
    assert good.status_code == 201
    assert "Idempotent-Replayed" not in good.headers
    assert _users_with_email(live, "retry@example.com") == 1
