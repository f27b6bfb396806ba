"""Every console page: 200 for the owner, a login redirect for anonymous visitors, the sidebar per role."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from patron.auth import Role
from patron.web.ui.base import nav_entries

Console = Callable[[Role | str], TestClient]

PAGES = (
    "/customers",
    "/organisations",
    "/segments",
    "/segments/new",
    "/imports",
    "/settings",
    "/settings/markets",
    "/settings/fx-rates",
    "/settings/users",
    "/tokens",
)


@pytest.mark.parametrize("url", PAGES)
def test_page_renders_for_the_owner(owner: TestClient, url: str) -> None:
    response = owner.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert '<meta name="csrf-token" content="' in response.text
    assert 'action="/logout"' in response.text


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitor_is_sent_to_login(client: TestClient, url: str) -> None:
    response = client.get(url, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={url}"


def test_console_routes_stay_out_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert not [p for p in paths if not p.startswith("/api/")]


EXPECTED_NAV = {
    Role.OWNER: ["/customers", "/organisations", "/segments", "/imports", "/settings", "/tokens"],
    Role.ADMIN: ["/customers", "/organisations", "/segments", "/imports", "/settings", "/tokens"],
    Role.MARKETER: ["/customers", "/organisations", "/segments", "/imports", "/settings", "/tokens"],
    Role.AGENT: ["/customers", "/organisations", "/segments", "/tokens"],
    Role.ANALYST: ["/customers", "/organisations", "/segments", "/settings", "/tokens"],
    Role.VIEWER: ["/customers", "/organisations", "/segments", "/settings"],
}


@pytest.mark.parametrize("role", list(Role))
def test_sidebar_shows_only_what_the_role_may_open(console: Console, role: Role) -> None:
    client = console(role)
    page = client.get("/customers")
    shown = [url for url in EXPECTED_NAV[Role.OWNER] if f'data-nav="{url}"' in page.text]
    assert shown == EXPECTED_NAV[role]
    for url in EXPECTED_NAV[Role.OWNER]:
        expected = 200 if url in EXPECTED_NAV[role] else 403
        assert client.get(url).status_code == expected, (role, url)


def test_nav_registry_orders_sections_and_entries() -> None:
    from patron.auth import Principal

    owner = Principal(user_id="u", email="o@example.com", role=Role.OWNER, via="session")
    assert [(e.section, e.url) for e in nav_entries(owner)] == [
        ("people", "/customers"),
        ("people", "/organisations"),
        ("people", "/segments"),
        ("engage", "/loyalty"),
        ("engage", "/loyalty/liability"),
        ("data", "/imports"),
        ("data", "/analytics"),
        ("admin", "/settings"),
        ("admin", "/tokens"),
    ]
    assert nav_entries(None) == []
