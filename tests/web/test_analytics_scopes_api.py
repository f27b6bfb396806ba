"""The analytics API per market and per segment: POST with a scope, list and filter runs by scope,
problem+json for a bad scope, one active run per scope."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from patron.analytics.runs import RunOptions, create_run
from patron.analytics.traits import analytics_traits
from patron.auth import Role
from patron.core.db import Database
from patron.customers import create_segment
from tests.analytics.test_run_scopes import seed_markets

PROBLEM = "application/problem+json"
RUNS = "/api/v1/analytics/runs"


def test_a_market_run_and_a_segment_run_through_the_api(
    client: TestClient, tokens: Any, database: Database
) -> None:
    seeded = seed_markets(database)
    with database.unit_of_work() as session:
        segment = create_segment(
            session,
            name="HU buyers",
            rules={"type": "field", "field": "given_name", "op": "in", "value": ["anna", "bela"]},
        )
    client.headers.update(tokens.headers(Role.ANALYST))
    vn = client.post(RUNS, json={"market": "VN", "sections": ["kpis", "rfm"]})
    assert vn.status_code == 202, vn.text
    assert (vn.json()["scope"], vn.json()["market"], vn.json()["segment_id"]) == ("market:VN", "VN", None)
    assert vn.json()["options"]["publish_traits"] is False
    seg = client.post(RUNS, json={"segment_id": segment.id, "sections": ["kpis"]})
    assert seg.status_code == 202, seg.text
    assert (seg.json()["scope"], seg.json()["segment_name"]) == (f"segment:{segment.id}", "HU buyers")

    body = client.get(f"{RUNS}/{vn.json()['id']}").json()
    assert body["status"] == "completed", body["error"]
    assert (body["results"]["customers"], body["results"]["orders"], body["traits_published"]) == (4, 7, 0)
    body = client.get(f"{RUNS}/{seg.json()['id']}").json()
    assert body["status"] == "completed", body["error"]
    assert (body["results"]["customers"], body["results"]["orders"]) == (2, 3)
    with database.unit_of_work(write=False) as session:
        assert analytics_traits(session, seeded["ids"]["an"]) == {}

    whole = client.post(RUNS, json={"sections": ["kpis"]})
    assert whole.status_code == 202
    assert whole.json()["scope"] == "all"
    assert [r["id"] for r in client.get(RUNS, params={"market": "VN"}).json()["items"]] == [vn.json()["id"]]
    assert [r["id"] for r in client.get(RUNS, params={"scope": "all"}).json()["items"]] == [
        whole.json()["id"]
    ]
    by_segment = client.get(RUNS, params={"segment_id": segment.id}).json()["items"]
    assert [r["id"] for r in by_segment] == [seg.json()["id"]]
    assert client.get(RUNS, params={"market": "HU"}).json()["items"] == []


def test_bad_scopes_are_problems(client: TestClient, tokens: Any, database: Database) -> None:
    seed_markets(database)
    client.headers.update(tokens.headers(Role.ANALYST))
    for body, code, loc in (
        ({"market": "XX"}, "invalid_analytics_scope", ["market"]),
        ({"segment_id": "no-such-segment"}, "invalid_analytics_scope", ["segment_id"]),
        ({"market": "VN", "publish_traits": True}, "invalid_analytics_options", ["publish_traits"]),
        ({"currency": "market"}, "invalid_analytics_options", ["currency"]),
    ):
        response = client.post(RUNS, json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == code
        assert response.json()["errors"][0]["loc"] == loc
    response = client.post(RUNS, json={"market": ""})
    assert (response.status_code, response.json()["code"]) == (422, "validation_failed")
    assert client.get(RUNS).json()["items"] == []


def test_one_active_run_per_scope(client: TestClient, tokens: Any, database: Database) -> None:
    seed_markets(database)
    with database.unit_of_work() as session:
        busy = create_run(session, RunOptions(market="VN"))  # queued, not executed
    client.headers.update(tokens.headers(Role.ANALYST))
    again = client.post(RUNS, json={"market": "VN"})
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    assert (again.json()["code"], again.json()["run_id"]) == ("analytics_run_in_progress", busy.id)
    other = client.post(RUNS, json={"market": "HU", "sections": ["kpis"]})
    assert other.status_code == 202, other.text
