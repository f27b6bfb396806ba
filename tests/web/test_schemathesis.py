"""schemathesis against the served OpenAPI document, through a real uvicorn server with an owner token.

For every operation, generated requests (schema examples, boundary/negative coverage cases and
random fuzzing, bounded per operation) must get: no 5xx, only documented statuses, the documented
content type, and a body that matches the documented schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from patron.auth import Role
from patron.web.app import create_app
from tests.support import LiveServer, create_staff_token, fresh_database_url

pytestmark = pytest.mark.schemathesis

MAX_EXAMPLES = 25
RECURSIVE_MAX_EXAMPLES = 60
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _recursive_body_operations(spec: dict[str, Any]) -> list[str]:
    """operationIds whose request body refers to a recursive schema (e.g. segment rule trees)."""
    schemas = spec.get("components", {}).get("schemas", {})

    def refs(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
            return found.union(*(refs(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(refs(v) for v in node))
        return set()

    def cyclic(start: set[str]) -> bool:
        stack, path_sets = [(name, frozenset()) for name in start], set()
        while stack:
            name, seen = stack.pop()
            if name in seen:
                return True
            if (name, seen) in path_sets:
                continue
            path_sets.add((name, seen))
            stack.extend((child, seen | {name}) for child in refs(schemas.get(name, {})))
        return False

    return sorted(
        op["operationId"]
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "requestBody" in op and cyclic(refs(op["requestBody"]))
    )


SPEC = create_app("sqlite://", dispatch=False).openapi()
RECURSIVE = _recursive_body_operations(SPEC)
# The coverage phase enumerates boundary and negative values of every field; for a recursive body
# that is ~18,000 cases (and a minute of generation) per operation. Those operations get random
# fuzzing with more examples instead; every other operation gets all three phases.
CONFIG = schemathesis.Config.from_dict({
    "generation": {"max-examples": MAX_EXAMPLES},
    "operations": [
        {"include-operation-id": op_id, "phases": {"coverage": {"enabled": False}},
         "generation": {"max-examples": RECURSIVE_MAX_EXAMPLES}}
        for op_id in RECURSIVE
    ]
})  # fmt: skip

schema = schemathesis.openapi.from_dict(SPEC, config=CONFIG)


@dataclass(frozen=True)
class Target:
    url: str
    headers: dict[str, str]
    server: LiveServer


@pytest.fixture(scope="module")
def target(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    url = fresh_database_url(template_db, tmp_path_factory.mktemp("fuzz"), "fuzz.db")
    token = create_staff_token(url, Role.OWNER)
    log = tmp_path_factory.mktemp("fuzz-log") / "server.log"
    with LiveServer(url, workers=2, log_path=log) as server:
        served = httpx.get(f"{server.url}/api/v1/openapi.json").json()
        assert served == schema.raw_schema
        yield Target(server.url, {"Authorization": f"Bearer {token}"}, server)


@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: the first failing case is shown
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, target: Target) -> None:
    try:
        case.call_and_validate(base_url=target.url, headers=target.headers, checks=CHECKS)
    except Exception:
        tail = target.server.log()[-3000:]
        if "Traceback" in tail:
            print(f"--- server log ---\n{tail}")  # shown by pytest with the failure
        raise
