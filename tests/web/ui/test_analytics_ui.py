"""The Analytics console page: runs, "Run now" (CSRF), headline KPIs per locale, RFM segments and the
report in a sandboxed frame; permissions."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from patron.analytics.runs import create_run, get_run, list_runs
from patron.auth import Role
from patron.core.db import Database
from tests.analytics.test_runs import seed_shop
from tests.web.ui.conftest import csrf_of, post_form

Console = Callable[[Role | str], TestClient]


def test_anonymous_visitors_are_sent_to_login(client: TestClient) -> None:
    response = client.get("/analytics", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/analytics"


def test_roles_without_analytics_are_refused(console: Console) -> None:
    agent = console(Role.AGENT)
    assert agent.get("/analytics").status_code == 403
    assert 'href="/analytics"' not in agent.get("/customers").text
    for role in (Role.VIEWER, Role.MARKETER):  # they read the results but may not start a run
        client = console(role)
        page = client.get("/analytics")
        assert page.status_code == 200, role
        assert 'href="/analytics"' in page.text, role
        refused = post_form(client, "/analytics", "/analytics", {})
        assert refused.status_code == 403, role  # type: ignore[attr-defined]


def test_run_now_runs_in_the_background_and_shows_the_figures(console: Console, database: Database) -> None:
    seed_shop(database, customers=30, seed=23)
    client = console(Role.ANALYST)
    empty = client.get("/analytics")
    assert empty.status_code == 200
    assert 'href="/analytics"' in empty.text  # the sidebar entry
    assert "No completed analysis yet." in empty.text
    assert "No runs yet." in empty.text
    # without the CSRF token nothing is queued
    refused = client.post("/analytics", data={}, follow_redirects=False)
    assert refused.status_code == 403
    with database.unit_of_work(write=False) as session:
        assert list_runs(session) == []
    response = post_form(client, "/analytics", "/analytics", {})
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == "/analytics?flash=analytics_queued"  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as session:
        (run,) = list_runs(session)
        results = get_run(session, run.id).results
    assert run.status == "completed", run.error
    assert run.actor_label == "analyst.ui@example.com"
    assert results is not None
    page = client.get("/analytics")
    html = page.text
    assert 'id="headline"' in html
    assert 'id="segments"' in html
    # every non-empty RFM segment appears with its count
    for name, seg in results["rfm"]["segments"].items():
        row = re.search(rf'<tr data-segment="{re.escape(name)}">(.*?)</tr>', html.replace("&#39;", "'"))
        assert row is not None, name
        assert f'<td class="num">{seg["customers"]}</td>' in row.group(1)
    assert f'<iframe src="/analytics/runs/{run.id}/report" sandbox="allow-scripts"' in html
    assert "Content-Security-Policy" in page.headers
    report = client.get(f"/analytics/runs/{run.id}/report")
    assert report.status_code == 200
    assert "sandbox allow-scripts" in report.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in report.headers["content-security-policy"]
    assert "Plotly.newPlot" in report.text
    assert f'data-run="{run.id}" data-status="completed"' in html


def test_figures_follow_the_viewers_language(console: Console, database: Database) -> None:
    seed_shop(database, customers=30, seed=23)
    client = console(Role.OWNER)
    post_form(client, "/analytics", "/analytics", {})
    with database.unit_of_work(write=False) as session:
        (run,) = list_runs(session)
        results = get_run(session, run.id).results
    assert results is not None
    aov = results["kpis"]["average_order_value"]
    repeat = results["kpis"]["repeat_purchase_rate"]
    english = client.get("/analytics").text
    assert f"€{aov:,.2f}" in english
    assert f"{repeat * 100:.1f}%" in english
    post_form(client, "/analytics", "/language", {"language": "hu", "next": "/analytics"})
    hungarian = client.get("/analytics").text
    hu_aov = f"{aov:,.2f}".replace(",", "\u00a0").replace(".", ",")
    assert f"{hu_aov}\u00a0EUR" in hungarian  # Hungarian writes the code after the amount
    assert f"{repeat * 100:.1f}".replace(".", ",") + "%" in hungarian
    assert '<tr data-segment="Champions"><td>Bajnokok</td>' in hungarian  # segment names are translated
    assert "Ismételt vásárlási arány" in hungarian  # Repeat purchase rate
    assert "Futtatás most" in hungarian  # Run now


def test_a_second_run_while_one_is_in_progress_is_a_conflict(console: Console, database: Database) -> None:
    client = console(Role.ADMIN)
    page = client.get("/analytics")
    with database.unit_of_work() as session:
        busy = create_run(session)
    response = client.post("/analytics", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert response.status_code == 409
    assert f"analytics run {busy.id} is still in progress" in response.text
    with database.unit_of_work(write=False) as session:
        assert [r.id for r in list_runs(session)] == [busy.id]


def test_a_failed_run_shows_its_error(console: Console, database: Database) -> None:
    client = console(Role.ANALYST)
    post_form(client, "/analytics", "/analytics", {})
    with database.unit_of_work(write=False) as session:
        (run,) = list_runs(session)
    html = client.get(f"/analytics?run={run.id}").text
    assert run.status == "failed"
    assert "the database has no orders of eligible customers" in html
    assert client.get(f"/analytics/runs/{run.id}/report").status_code == 404
    assert client.get("/analytics?run=nope").status_code == 404


def test_per_market_figures(console: Console, database: Database) -> None:
    from patron.commerce import place_order, prepare_order
    from patron.core.business import create_market

    ids = seed_shop(database, customers=20, seed=29)
    with database.unit_of_work() as session:
        create_market(
            session,
            code="HU",
            name="Hungary",
            country="HU",
            currency="EUR",
            locale="hu",
            time_zone="Europe/Budapest",
        )
        create_market(
            session,
            code="VN",
            name="Vietnam",
            country="VN",
            currency="EUR",
            locale="vi",
            time_zone="Asia/Ho_Chi_Minh",
        )
        for i, (market, amount) in enumerate((("HU", "10.00"), ("HU", "30.00"), ("VN", "5.50"))):
            place_order(
                session,
                prepare_order(
                    {
                        "customer_id": ids[i],
                        "currency": "EUR",
                        "market": market,
                        "placed_at": "2026-06-01T10:00:00+00:00",
                        "lines": [{"sku": "SKU-1", "name": "Tea", "quantity": 1, "unit_price": amount}],
                    }
                ),
                emit_events=False,
            )
    client = console(Role.ANALYST)
    post_form(client, "/analytics", "/analytics", {})
    html = client.get("/analytics").text
    assert 'id="markets"' in html
    hu = re.search(r'<tr data-market="HU">(.*?)</tr>', html)
    vn = re.search(r'<tr data-market="VN">(.*?)</tr>', html)
    assert hu is not None
    assert vn is not None
    assert hu.group(1) == (
        '<td>HU</td><td class="num">2</td><td class="num">2</td><td class="num">€40.00</td>'
        '<td class="num">€20.00</td>'
    )
    assert vn.group(1) == (
        '<td>VN</td><td class="num">1</td><td class="num">1</td><td class="num">€5.50</td>'
        '<td class="num">€5.50</td>'
    )
