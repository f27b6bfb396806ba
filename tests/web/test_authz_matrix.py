"""The authorisation matrix, built from the application itself: every /api/v1 route × (anonymous and
every role). The permission a route needs is read from its ``require_<perm>`` dependency (made by
``patron.web.deps.require``); which roles hold it comes from ``ROLE_PERMISSIONS``. So a new route is
covered without touching this file, and a route without any authentication fails unless it is listed
in ``PUBLIC`` on purpose.

Expectations: anonymous → 401 ``unauthenticated``; a role lacking the permission → 403 ``forbidden``;
a role holding it → neither 401 nor 403 (nor a server error) — typically 200, 404 for the made-up ids
or 422 for the empty body, which proves the request got past authorisation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patron.auth import Role
from patron.web.app import create_app
from tests.support import create_staff_token, fresh_database_url
from tests.support.routes import PUBLIC, Endpoint, collect_endpoints

PROBLEM = "application/problem+json"


ENDPOINTS = collect_endpoints(create_app("sqlite://", dispatch=False))
PROTECTED = [e for e in ENDPOINTS if (e.method, e.path) not in PUBLIC]
CALLERS: list[Role | None] = [None, *Role]
MATRIX = [
    pytest.param(endpoint, caller, id=f"{endpoint.label} [{caller.value if caller else 'anonymous'}]")
    for endpoint in PROTECTED
    for caller in CALLERS
]


@dataclass(frozen=True)
class Matrix:
    client: TestClient
    tokens: dict[Role, str]

    def headers(self, caller: Role | None) -> dict[str, str]:
        return {} if caller is None else {"Authorization": f"Bearer {self.tokens[caller]}"}


@pytest.fixture(scope="module")
def matrix(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    """One database and one staff user with a token per role, shared by the module (the requests
    made with the right role change at most a made-up id's nothing)."""
    url = fresh_database_url(template_db, tmp_path_factory.mktemp("authz"), "authz.db")
    tokens = {role: create_staff_token(url, role) for role in Role}
    with TestClient(create_app(url, dispatch=False), raise_server_exceptions=False) as client:
        yield Matrix(client, tokens)


def _call(client: TestClient, endpoint: Endpoint, headers: dict[str, str]) -> Any:
    kwargs: dict[str, Any] = {"headers": headers}
    if endpoint.method in {"POST", "PUT", "PATCH"}:
        kwargs["json"] = {}
    return client.request(endpoint.method, endpoint.url(), **kwargs)


def test_the_matrix_covers_the_api() -> None:
    labels = {e.label for e in ENDPOINTS}
    assert {"GET /api/v1/users", "POST /api/v1/users", "DELETE /api/v1/tokens/{token_id}"} <= labels
    assert len(PROTECTED) == len(ENDPOINTS) - len(PUBLIC)
    assert {(e.method, e.path) for e in ENDPOINTS} >= PUBLIC, "a PUBLIC entry names no route"


def test_every_route_requires_authentication_unless_listed_public() -> None:
    unprotected = sorted(e.label for e in PROTECTED if not e.authenticated)
    assert unprotected == []


def test_the_owner_may_call_everything() -> None:
    assert [e.label for e in PROTECTED if not e.allows(Role.OWNER)] == []


@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC))
def test_public_routes_answer_anonymously(matrix: Matrix, method: str, path: str) -> None:
    response = matrix.client.request(method, path)
    assert response.status_code == 200


@pytest.mark.parametrize(("endpoint", "caller"), MATRIX)
def test_authorisation(matrix: Matrix, endpoint: Endpoint, caller: Role | None) -> None:
    response = _call(matrix.client, endpoint, matrix.headers(caller))
    if caller is None:
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "unauthenticated"
        assert response.headers["www-authenticate"] == "Bearer"
    elif not endpoint.allows(caller):
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "forbidden"
    else:
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500, response.text


def test_a_bad_token_is_401_everywhere(matrix: Matrix) -> None:
    wrong = {"Authorization": "Bearer not-a-real-token"}
    statuses = {e.label: _call(matrix.client, e, wrong).status_code for e in PROTECTED}
    assert set(statuses.values()) == {401}, statuses
