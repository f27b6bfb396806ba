"""The Analytics page per market and per segment: the scope selector, "Run now" for the chosen scope,
that scope's figures and report, and the markets side by side."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from patron.analytics.runs import get_run, list_runs
from patron.auth import Role
from patron.core.db import Database
from patron.customers import create_segment
from tests.analytics.test_run_scopes import seed_markets
from tests.web.ui.conftest import post_form

Console = Callable[[Role | str], TestClient]


def _cells(html: str, attribute: str, value: str) -> list[str]:
    row = re.search(rf'<tr {attribute}="{re.escape(value)}">(.*?)</tr>', html)
    assert row is not None, value
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))


def test_choose_a_market_run_it_and_compare_markets(console: Console, database: Database) -> None:
    seed_markets(database)
    with database.unit_of_work() as session:
        segment = create_segment(
            session,
            name="HU buyers",
            rules={"type": "field", "field": "given_name", "op": "in", "value": ["anna", "bela"]},
        )
    client = console(Role.ANALYST)
    page = client.get("/analytics").text
    assert '<option value="all" selected>All customers</option>' in page
    assert '<option value="market:VN">Market: Vietnam (VN)</option>' in page
    assert '<option value="market:HU">Market: Hungary (HU)</option>' in page
    assert f'<option value="segment:{segment.id}">Segment: HU buyers</option>' in page
    assert 'id="compare-markets"' not in page  # no market run yet

    response = post_form(client, "/analytics?scope=market:VN", "/analytics", {"scope": "market:VN"})
    assert response.status_code == 303  # type: ignore[attr-defined]
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert location == "/analytics?scope=market%3AVN&flash=analytics_queued"
    with database.unit_of_work(write=False) as session:
        (vn,) = list_runs(session)
    assert (vn.scope, vn.status) == ("market:VN", "completed")
    html = client.get(location).text
    assert '<option value="market:VN" selected>' in html
    assert 'data-scope="market:VN"' in html
    assert re.search(r"<dt>Customers</dt><dd>4</dd>", html)
    assert f'<iframe src="/analytics/runs/{vn.id}/report" sandbox="allow-scripts"' in html
    assert f'data-run="{vn.id}"' in html
    # the whole-database view has no completed run yet; its run list leaves the VN run out
    whole = client.get("/analytics").text
    assert "No completed analysis yet." in whole
    assert f'data-run="{vn.id}"' not in whole

    post_form(client, "/analytics", "/analytics", {"scope": "market:HU"})
    post_form(client, "/analytics", "/analytics", {"scope": f"segment:{segment.id}"})
    with database.unit_of_work(write=False) as session:
        runs = {r.scope: get_run(session, r.id) for r in list_runs(session)}
    assert {r.status for r in runs.values()} == {"completed"}
    html = client.get("/analytics").text
    assert 'id="compare-markets"' in html
    vn_results = runs["market:VN"].results
    assert vn_results is not None
    vn_row = _cells(html, "data-compare-market", "VN")
    hu_row = _cells(html, "data-compare-market", "HU")
    assert vn_row[2] == "4"
    assert hu_row[2] == "3"
    assert vn_row[5] == f"{vn_results['kpis']['repeat_purchase_rate'] * 100:.1f}%"  # 50.0%
    assert vn_row[6] == f"€{vn_results['kpis']['average_order_value']:,.2f}"
    assert hu_row[6] == "€17.50"  # (20 + 7.50 + 12.50 + 30) / 4 orders
    seg_page = client.get("/analytics", params={"scope": f"segment:{segment.id}"}).text
    assert "Segment: HU buyers" in seg_page
    assert re.search(r"<dt>Customers</dt><dd>2</dd>", seg_page)


def test_viewers_compare_but_cannot_run_and_bad_scopes_are_404(console: Console, database: Database) -> None:
    seed_markets(database)
    analyst = console(Role.ANALYST)
    post_form(analyst, "/analytics", "/analytics", {"scope": "market:HU"})
    viewer = console(Role.VIEWER)
    html = viewer.get("/analytics").text
    assert 'id="compare-markets"' in html
    assert 'id="run-now"' not in html
    assert viewer.get("/analytics", params={"scope": "bogus"}).status_code == 404
    refused = post_form(analyst, "/analytics", "/analytics", {"scope": "market:XX"})
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert "unknown market" in refused.text  # type: ignore[attr-defined]


def test_a_market_run_in_the_markets_currency(console: Console, database: Database) -> None:
    seed_markets(database)
    client = console(Role.ANALYST)
    page = client.get("/analytics", params={"scope": "market:VN"}).text
    assert '<option value="market">the market\'s currency (VND)</option>' in page
    assert '<option value="reporting" selected>the reporting currency (EUR)</option>' in page
    assert 'name="currency"' not in client.get("/analytics", params={"scope": "market:HU"}).text  # EUR
    assert 'name="currency"' not in client.get("/analytics").text
    response = post_form(client, "/analytics", "/analytics", {"scope": "market:VN", "currency": "market"})
    assert response.status_code == 303  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as session:
        (run,) = list_runs(session)
    assert (run.status, run.currency, run.options["currency"]) == ("completed", "VND", "market")
    html = client.get(response.headers["location"]).text  # type: ignore[attr-defined]
    assert re.search(r"<dt>Average order value</dt><dd>₫346,429</dd>", html)  # 2,425,000 / 7
    assert 'id="compare-markets"' not in html  # not comparable: no reporting-currency market run
