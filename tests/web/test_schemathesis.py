"""schemathesis against the served OpenAPI document, through a real uvicorn server with an owner token.

For every operation, generated requests (schema examples, boundary/negative coverage cases and
random fuzzing, bounded per operation) must get: no 5xx, only documented statuses, the documented
content type, and a body that matches the documented schema.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from patron.auth import Role
from patron.web.app import create_app
from tests.support import LiveServer, create_staff_token, fresh_database_url

pytestmark = pytest.mark.schemathesis

MAX_EXAMPLES = 10
# The coverage phase enumerates boundary and negative values of every field; for recursive bodies
# (segment rule trees) that is ~18,000 cases per operation. Past this many per operation, only every
# COVERAGE_STRIDE-th coverage case is sent, so each operation stays within seconds.
COVERAGE_BUDGET = 400
COVERAGE_STRIDE = 25
_coverage_seen: Counter[str] = Counter()
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_dict(create_app("sqlite://", dispatch=False).openapi())


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
    max_examples=MAX_EXAMPLES,
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
    if case.meta is not None and case.meta.phase.name == TestPhase.COVERAGE:
        seen = _coverage_seen[case.operation.label]
        _coverage_seen[case.operation.label] += 1
        if seen >= COVERAGE_BUDGET and seen % COVERAGE_STRIDE:
            return
    try:
        case.call_and_validate(base_url=target.url, headers=target.headers, checks=CHECKS)
    except Exception:
        tail = target.server.log()[-3000:]
        if "Traceback" in tail:
            print(f"--- server log ---\n{tail}")  # shown by pytest with the failure
        raise
