"""Staff side: the API (authorisation matrix, audit, revoke, rate limit), the console action and its
partial, the CLI, and the rate limit on failed console logins."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from patron.auth import Role, create_user
from patron.core.audit import AuditEntry
from patron.core.db import Database
from patron.core.settings import reset_settings_cache
from tests.conftest import Tokens
from tests.web.portal.conftest import World, csrf_of

PATRON = str(Path(sys.executable).with_name("patron"))
PROBLEM = "application/problem+json"


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.undo()
    reset_settings_cache()


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (None, 401),
        (Role.VIEWER, 403),
        (Role.ANALYST, 403),
        (Role.AGENT, 403),
        (Role.MARKETER, 201),
        (Role.ADMIN, 201),
        (Role.OWNER, 201),
    ],
)
def test_who_may_issue_a_portal_link(
    client: TestClient, tokens: Tokens, database: Database, world: World, role: Role | None, status: int
) -> None:
    headers = {} if role is None else tokens.headers(role)
    response = client.post(f"/api/v1/customers/{world.members['vi']}/portal-link", headers=headers)
    assert response.status_code == status, response.text
    if status != 201:
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == ("unauthenticated" if status == 401 else "forbidden")
        return
    body = response.json()
    assert set(body) == {"customer_id", "url", "expires_at"}
    assert body["customer_id"] == world.members["vi"]
    assert body["expires_at"] == "2026-04-19T10:00:00Z"
    assert body["url"].startswith("http://127.0.0.1:8000/portal/t/")
    opened = client.get(body["url"].removeprefix("http://127.0.0.1:8000"), follow_redirects=False)
    assert opened.status_code == 303
    with database.unit_of_work(write=False) as s:
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "portal.link_issued")).all()
        assert [a.entity_id for a in audit] == [world.members["vi"]]
        assert audit[0].actor.startswith("user:")


def test_revoke_voids_issued_links_and_needs_the_same_permission(
    client: TestClient, tokens: Tokens, world: World
) -> None:
    member = world.members["vi"]
    url = client.post(
        f"/api/v1/customers/{member}/portal-link", headers=tokens.headers(Role.MARKETER)
    ).json()["url"]
    path = url.removeprefix("http://127.0.0.1:8000")
    assert client.post(f"/api/v1/customers/{member}/portal-link/revoke").status_code == 401
    assert (
        client.post(
            f"/api/v1/customers/{member}/portal-link/revoke", headers=tokens.headers(Role.VIEWER)
        ).status_code
        == 403
    )
    revoked = client.post(
        f"/api/v1/customers/{member}/portal-link/revoke", headers=tokens.headers(Role.MARKETER)
    )
    assert revoked.status_code == 200
    assert revoked.json() == {"customer_id": member, "key_version": 2}
    assert client.get(path).status_code == 410


def test_issuing_validates_days_and_the_customer(client: TestClient, tokens: Tokens, world: World) -> None:
    headers = tokens.headers(Role.OWNER)
    member = world.members["hu"]
    assert (
        client.post(f"/api/v1/customers/{member}/portal-link", json={"days": 2}, headers=headers).json()[
            "expires_at"
        ]
        == "2026-03-22T10:00:00Z"
    )
    for bad in ({"days": 0}, {"days": 400}, {"days": "3"}, {"hours": 3}):
        response = client.post(f"/api/v1/customers/{member}/portal-link", json=bad, headers=headers)
        assert response.status_code == 422, bad
    missing = client.post(
        "/api/v1/customers/01a00000-0000-7000-8000-000000000000/portal-link", headers=headers
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "customer_not_found")


def test_issuing_is_rate_limited_per_staff_user(
    client: TestClient, tokens: Tokens, world: World, settings_env: pytest.MonkeyPatch
) -> None:
    settings_env.setenv("PATRON_RATE_LIMIT_PORTAL_LINK", "2/60")
    reset_settings_cache()
    url = f"/api/v1/customers/{world.members['vi']}/portal-link"
    statuses = [client.post(url, headers=tokens.headers(Role.MARKETER)).status_code for _ in range(2)]
    refused = client.post(url, headers=tokens.headers(Role.MARKETER))
    assert statuses == [201, 201]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert client.post(url, headers=tokens.headers(Role.OWNER)).status_code == 201  # another user


def _console_login(client: TestClient, database: Database, role: Role) -> None:
    email = f"{role.value}.portal@example.com"
    with database.unit_of_work() as s:
        create_user(s, email=email, password="correct horse battery", role=role, name=role.value)
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": "correct horse battery", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303


def test_the_console_action_shows_the_link_to_copy(
    client: TestClient, database: Database, world: World
) -> None:
    member = world.members["th"]
    _console_login(client, database, Role.MARKETER)
    csrf = csrf_of(client.get("/customers").text)
    page = client.post(f"/customers/{member}/portal-link", data={"csrf_token": csrf})
    assert page.status_code == 200
    url = re.search(r'id="portal-link-url" value="([^"]+)"', page.text)
    assert url is not None
    assert 'data-copy="#portal-link-url"' in page.text
    assert f'action="/customers/{member}/portal-link/revoke"' in page.text
    assert (
        client.get(url.group(1).removeprefix("http://127.0.0.1:8000"), follow_redirects=False).status_code
        == 303
    )
    revoked = client.post(f"/customers/{member}/portal-link/revoke", data={"csrf_token": csrf})
    assert revoked.status_code == 200
    assert "All portal links of this customer were revoked." in revoked.text
    assert client.get(url.group(1).removeprefix("http://127.0.0.1:8000")).status_code == 410
    # without the CSRF token: refused
    assert client.post(f"/customers/{member}/portal-link", data={}).status_code == 403


def test_the_console_action_needs_loyalty_operate(
    client: TestClient, database: Database, world: World
) -> None:
    _console_login(client, database, Role.VIEWER)
    csrf = csrf_of(client.get("/customers").text)
    response = client.post(f"/customers/{world.members['th']}/portal-link", data={"csrf_token": csrf})
    assert response.status_code == 403
    assert "portal-link-url" not in response.text


def test_the_cli_prints_a_working_link(
    db_url: str, database: Database, world: World, client: TestClient
) -> None:
    env = {**os.environ, "PATRON_DATABASE_URL": db_url, "PATRON_PUBLIC_URL": "https://loyalty.example.vn/"}
    done = subprocess.run(
        [PATRON, "portal", "link", world.members["vi"], "--days", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith("https://loyalty.example.vn/portal/t/")
    assert "valid until" in done.stderr
    assert (
        client.get(url.removeprefix("https://loyalty.example.vn"), follow_redirects=False).status_code == 303
    )
    revoke = subprocess.run(
        [PATRON, "portal", "revoke", world.members["vi"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert revoke.returncode == 0, revoke.stderr
    assert client.get(url.removeprefix("https://loyalty.example.vn")).status_code == 410
    unknown = subprocess.run(
        [PATRON, "portal", "link", "nobody"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert unknown.returncode == 1
    assert "customer_not_found" in unknown.stderr


def test_failed_console_logins_are_rate_limited_per_address(
    client: TestClient, database: Database, settings_env: pytest.MonkeyPatch
) -> None:
    settings_env.setenv("PATRON_RATE_LIMIT_LOGIN", "3/60")
    reset_settings_cache()
    with database.unit_of_work() as s:
        create_user(s, email="a@example.com", password="correct horse battery", role=Role.OWNER, name="A")
        create_user(s, email="b@example.com", password="correct horse battery", role=Role.OWNER, name="B")
    csrf = csrf_of(client.get("/login").text)
    # failures spread over two accounts (each stays below its own lockout)
    for email in ("a@example.com", "b@example.com", "a@example.com"):
        assert (
            client.post("/login", data={"email": email, "password": "wrong", "csrf_token": csrf}).status_code
            == 401
        )
    blocked = client.post(
        "/login",
        data={"email": "b@example.com", "password": "correct horse battery", "csrf_token": csrf},
        headers={"Accept-Language": "hu"},
    )
    assert blocked.status_code == 429
    assert "Túl sok sikertelen bejelentkezés érkezett a hálózatáról." in blocked.text
    assert int(blocked.headers["retry-after"]) >= 1
    assert "patron_session" not in blocked.headers.get("set-cookie", "")
