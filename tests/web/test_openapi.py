"""The OpenAPI document: every response by status, no catch-all, errors as problem+json.

Which routes need authentication or a permission is read from the routes themselves (see
``test_authz_matrix``), so the documentation is checked against what the code enforces.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from patron.web.app import create_app
from tests.support.routes import PUBLIC, Endpoint, collect_endpoints

PROBLEM = "application/problem+json"
METHODS = {"get", "post", "put", "patch", "delete"}


APP = create_app("sqlite://", dispatch=False)
SPEC: dict[str, Any] = APP.openapi()
ENDPOINTS = collect_endpoints(APP)
OPERATIONS = [
    (method.upper(), path, op)
    for path, item in SPEC["paths"].items()
    for method, op in item.items()
    if method in METHODS
]
BY_LABEL = {f"{m} {p}": op for m, p, op in OPERATIONS}


def _ids(values: list[Any]) -> list[str]:
    return [f"{m} {p}" for m, p, _ in values]


def test_served_document_is_the_application_schema(client: TestClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json() == SPEC
    assert SPEC["openapi"].startswith("3.")


def test_every_api_route_is_documented() -> None:
    documented = set(BY_LABEL)
    assert {e.label for e in ENDPOINTS} == documented


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=_ids(OPERATIONS))
def test_no_catch_all_response(method: str, path: str, op: dict[str, Any]) -> None:
    assert "default" not in op["responses"]
    assert all(code.isdigit() and len(code) == 3 for code in op["responses"]), op["responses"]


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=_ids(OPERATIONS))
def test_one_success_status_with_a_schema(method: str, path: str, op: dict[str, Any]) -> None:
    successes = [c for c in op["responses"] if c.startswith("2")]
    assert len(successes) == 1, successes
    (code,) = successes
    if code != "204":
        content = op["responses"][code].get("content", {})
        assert content, f"{method} {path}: {code} has no content"
        assert all("schema" in media for media in content.values())
        schema = next(iter(content.values()))["schema"]
        assert schema != {}, f"{method} {path}: {code} has an empty (any) schema"


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=_ids(OPERATIONS))
def test_errors_are_documented_as_problem_json(method: str, path: str, op: dict[str, Any]) -> None:
    for code, response in op["responses"].items():
        if int(code) < 400:
            continue
        content = response.get("content", {})
        assert list(content) == [PROBLEM], f"{method} {path} {code}: {list(content)}"
        ref = content[PROBLEM]["schema"]["$ref"]
        expected = "ValidationProblem" if code == "422" else "Problem"
        assert ref == f"#/components/schemas/{expected}", f"{method} {path} {code}"


def _endpoint(method: str, path: str) -> Endpoint:
    matches = [e for e in ENDPOINTS if e.method == method and e.path == path]
    assert len(matches) == 1
    return matches[0]


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=_ids(OPERATIONS))
def test_auth_statuses_match_the_route(method: str, path: str, op: dict[str, Any]) -> None:
    endpoint = _endpoint(method, path)
    codes = set(op["responses"])
    if (method, path) in PUBLIC:
        assert not codes & {"401", "403"}
        return
    assert "401" in codes
    if endpoint.perms:
        assert "403" in codes


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=_ids(OPERATIONS))
def test_input_errors_are_documented(method: str, path: str, op: dict[str, Any]) -> None:
    codes = set(op["responses"])
    if op.get("parameters") or op.get("requestBody"):
        assert "422" in codes
    # an unreadable body (not JSON, not UTF-8) is a 422 problem too, so 400 is never answered
    assert "400" not in codes
    if any(p["in"] == "path" for p in op.get("parameters", [])):
        assert "404" in codes, f"{method} {path} has path parameters but no documented 404"
    if any(p["in"] == "header" and p["name"].lower() == "if-match" for p in op.get("parameters", [])):
        assert "412" in codes


def test_fastapis_default_validation_schema_is_not_used() -> None:
    schemas = SPEC["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert {"Problem", "ValidationProblem"} <= set(schemas)


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for _, _, op in OPERATIONS]
    assert len(ids) == len(set(ids))
