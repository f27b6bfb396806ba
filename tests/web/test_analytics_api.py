"""The analytics API: runs started with 202 and executed in the background, their results JSON and
HTML report, pages of runs, problem+json errors and the authorisation of every route."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patron.analytics.runs import AnalyticsRun, create_run
from patron.analytics.traits import TRAIT_NAMES, analytics_traits
from patron.auth import Role
from patron.core.db import Database
from tests.analytics.test_runs import seed_shop

PROBLEM = "application/problem+json"
RUNS = "/api/v1/analytics/runs"


def _count_runs(database: Database) -> int:
    with database.unit_of_work(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(AnalyticsRun)) or 0)


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), (Role.VIEWER, 403), (Role.AGENT, 403), (Role.MARKETER, 403), (Role.ANALYST, 202)],
)
def test_who_may_start_a_run(
    client: TestClient, tokens: Any, database: Database, role: Role | None, expected: int
) -> None:
    headers = {} if role is None else tokens.headers(role)
    response = client.post(RUNS, json={"sections": ["kpis"]}, headers=headers)
    assert response.status_code == expected, response.text
    if expected == 202:
        assert response.json()["status"] == "queued"
        assert response.json()["actor_label"] == "analyst@example.com"
        assert _count_runs(database) == 1
    else:
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == ("unauthenticated" if role is None else "forbidden")
        assert _count_runs(database) == 0


@pytest.mark.parametrize("path", [RUNS, f"{RUNS}/x", f"{RUNS}/x/report"])
def test_reading_needs_the_analytics_permission(client: TestClient, tokens: Any, path: str) -> None:
    assert client.get(path).status_code == 401
    response = client.get(path, headers=tokens.headers(Role.AGENT))
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")
    for role in (Role.VIEWER, Role.MARKETER, Role.ANALYST):  # results are for everyone who reads
        assert client.get(path, headers=tokens.headers(role)).status_code == (200 if path == RUNS else 404)


def test_a_run_through_the_api(client: TestClient, tokens: Any, database: Database) -> None:
    ids = seed_shop(database, customers=30, seed=21)
    client.headers.update(tokens.headers(Role.ANALYST))
    started = client.post(RUNS, json={"language": "hu", "horizon_months": 6})
    assert started.status_code == 202, started.text
    run = started.json()
    assert (run["status"], run["trigger"], run["has_report"]) == ("queued", "manual", False)
    assert run["options"]["language"] == "hu"
    assert run["options"]["horizon_months"] == 6
    # TestClient runs the background task before returning: the run is complete now
    got = client.get(f"{RUNS}/{run['id']}")
    assert got.status_code == 200
    body = got.json()
    assert body["status"] == "completed", body["error"]
    assert (body["customers"], body["currency"], body["traits_published"]) == (30, "EUR", 30)
    assert body["has_report"] is True
    results = body["results"]
    assert results["customers"] == 30
    assert results["as_of"] == body["as_of"]
    assert set(results["kpis"]) >= {"retention_rate", "churn_rate", "repeat_purchase_rate", "clv_simple"}
    assert sum(s["customers"] for s in results["rfm"]["segments"].values()) == 30
    assert set(results["models"]) == {"bg_nbd", "pareto_nbd", "gamma_gamma"}
    assert got.headers["etag"]
    report = client.get(f"{RUNS}/{run['id']}/report")
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/html")
    assert "sandbox allow-scripts" in report.headers["content-security-policy"]
    assert '<html lang="hu">' in report.text
    with database.unit_of_work(write=False) as session:
        assert set(analytics_traits(session, ids[0])) == set(TRAIT_NAMES)
    page = client.get(RUNS).json()
    assert [r["id"] for r in page["items"]] == [run["id"]]
    assert "results" not in page["items"][0]
    assert page["next_cursor"] is None


def test_a_failed_run_reads_as_failed(client: TestClient, tokens: Any) -> None:
    client.headers.update(tokens.headers(Role.ANALYST))
    run = client.post(RUNS).json()
    body = client.get(f"{RUNS}/{run['id']}").json()
    assert (body["status"], body["error"], body["results"]) == (
        "failed",
        "the database has no orders of eligible customers",
        None,
    )
    report = client.get(f"{RUNS}/{run['id']}/report")
    assert report.status_code == 404
    assert report.headers["content-type"] == PROBLEM
    assert report.json()["code"] == "analytics_report_not_available"


def test_errors_are_problems_and_create_nothing(client: TestClient, tokens: Any, database: Database) -> None:
    client.headers.update(tokens.headers(Role.ANALYST))
    cases = [
        ({"period": "fortnight"}, "validation_failed"),
        ({"models": ["arima"]}, "validation_failed"),
        ({"publish_traits": "yes"}, "validation_failed"),
        ({"unknown": 1}, "validation_failed"),
        ({"as_of": "2025-03-01", "calibration_end": "2025-03-01"}, "invalid_analytics_options"),
    ]
    for body, code in cases:
        response = client.post(RUNS, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == code, body
    assert _count_runs(database) == 0
    missing = client.get(f"{RUNS}/no-such-run")
    assert (missing.status_code, missing.json()["code"]) == (404, "analytics_run_not_found")
    bad_cursor = client.get(RUNS, params={"cursor": "bm90LWpzb24"})
    assert (bad_cursor.status_code, bad_cursor.json()["code"]) == (422, "invalid_cursor")


def test_one_run_at_a_time_and_idempotent_retries(
    client: TestClient, tokens: Any, database: Database
) -> None:
    client.headers.update(tokens.headers(Role.ANALYST))
    with database.unit_of_work() as session:
        busy = create_run(session)
    conflict = client.post(RUNS, json={})
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == PROBLEM
    assert conflict.json()["code"] == "analytics_run_in_progress"
    assert _count_runs(database) == 1
    with database.unit_of_work() as session:
        row = session.get(AnalyticsRun, busy.id)
        assert row is not None
        row.status, row.active = "failed", None  # as a finished run leaves it
    key = {"Idempotency-Key": "run-once-1"}
    first = client.post(RUNS, json={"sections": ["kpis"]}, headers=key)
    again = client.post(RUNS, json={"sections": ["kpis"]}, headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert _count_runs(database) == 2


def test_runs_page_with_cursor_and_status_filter(client: TestClient, tokens: Any, database: Database) -> None:
    client.headers.update(tokens.headers(Role.ANALYST))
    made = [client.post(RUNS, json={"sections": ["kpis"]}).json()["id"] for _ in range(3)]
    first = client.get(RUNS, params={"limit": 2}).json()
    assert [r["id"] for r in first["items"]] == [made[2], made[1]]
    second = client.get(RUNS, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in second["items"]] == [made[0]]
    assert second["next_cursor"] is None
    assert client.get(RUNS, params={"status": "completed"}).json()["items"] == []
    assert len(client.get(RUNS, params={"status": "failed"}).json()["items"]) == 3
