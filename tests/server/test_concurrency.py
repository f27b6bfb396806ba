"""Concurrent writes through HTTP against two uvicorn worker processes: on SQLite, writers start
with ``BEGIN IMMEDIATE`` so none fails with "database is locked"; reads run alongside."""

from __future__ import annotations

from sqlalchemy import func, select

from patron.auth import User
from patron.core.db import Database, get_engine
from tests.server.conftest import Live
from tests.support import concurrently

WRITERS = 40
READERS = 20


def test_many_concurrent_creates_and_reads_all_succeed(live: Live) -> None:
    def call(i: int) -> tuple[str, int, str]:
        with live.client() as client:
            if i < WRITERS:
                r = client.post(
                    "/api/v1/users",
                    json={"email": f"burst-{i}@example.com", "password": "0123456789ab", "role": "viewer"},
                )
                return "write", r.status_code, r.text
            r = client.get("/api/v1/users")
            return "read", r.status_code, r.text

    results = concurrently(WRITERS + READERS, call)

    failures = [(kind, status, body) for kind, status, body in results if status not in (200, 201)]
    assert failures == []
    assert [status for kind, status, _ in results if kind == "write"] == [201] * WRITERS
    assert not any("locked" in body.lower() for _, _, body in results)
    db = Database(get_engine(live.database_url))
    with db.unit_of_work(write=False) as session:
        emails = set(session.scalars(select(User.email).where(User.email.like("burst-%"))))
        assert emails == {f"burst-{i}@example.com" for i in range(WRITERS)}
        assert session.scalar(select(func.count()).select_from(User)) == WRITERS + 1  # + the owner


def test_concurrent_token_creation_and_revocation(live: Live) -> None:
    """Tokens created concurrently all work at once, in both worker processes."""

    def create(i: int) -> tuple[int, dict[str, str]]:
        with live.client() as client:
            r = client.post("/api/v1/tokens", json={"name": f"burst token {i}", "role": "viewer"})
            return r.status_code, r.json()

    created = concurrently(20, create)
    assert [status for status, _ in created] == [201] * 20
    secrets = [body["token"] for _, body in created]
    assert len(set(secrets)) == 20

    def use(i: int) -> int:
        with live.client() as client:
            return client.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer {secrets[i]}"}
            ).status_code

    assert concurrently(20, use) == [200] * 20

    def revoke(i: int) -> int:
        with live.client() as client:
            return client.delete(f"/api/v1/tokens/{created[i][1]['id']}").status_code

    assert concurrently(20, revoke) == [204] * 20
    assert concurrently(20, use) == [401] * 20
