"""Console fixtures: staff users per role and TestClients logged in through the real login form."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from patron.auth import Role, create_user
from patron.core.db import Database

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "no csrf_token field on the page"
    return match.group(1)


def login(client: TestClient, email: str, password: str = PASSWORD) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def post_form(client: TestClient, page_url: str, url: str, data: dict[str, str]) -> object:
    """Open ``page_url``, take its CSRF token, and post ``data`` to ``url`` (no redirects followed)."""
    page = client.get(page_url)
    assert page.status_code == 200, page.text
    return client.post(url, data={**data, "csrf_token": csrf_of(page.text)}, follow_redirects=False)


@pytest.fixture
def staff(database: Database) -> Callable[[Role | str], str]:
    """``staff(role)`` creates (once) a user with that role and returns the email."""
    made: dict[str, str] = {}

    def make(role: Role | str = Role.OWNER) -> str:
        role = Role(role)
        if role.value not in made:
            with database.unit_of_work() as s:
                create_user(
                    s,
                    email=f"{role.value}.ui@example.com",
                    password=PASSWORD,
                    role=role,
                    name=role.value.title(),
                )
            made[role.value] = f"{role.value}.ui@example.com"
        return made[role.value]

    return make


@pytest.fixture
def console(app: object, staff: Callable[[Role | str], str]) -> Callable[[Role | str], TestClient]:
    """``console(role)``: a TestClient logged in as a staff user with that role."""
    clients: list[TestClient] = []

    def make(role: Role | str = Role.OWNER) -> TestClient:
        client = TestClient(app, raise_server_exceptions=True, base_url="http://testserver")  # type: ignore[arg-type]
        client.__enter__()
        clients.append(client)
        login(client, staff(role))
        return client

    yield make  # type: ignore[misc]
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def owner(console: Callable[[Role | str], TestClient]) -> TestClient:
    return console(Role.OWNER)
