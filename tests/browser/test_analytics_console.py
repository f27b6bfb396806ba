"""The Analytics page in a real browser: run the analysis of all customers, switch the scope to a
market, run it and read that market's key figures, compare the markets side by side, and see the
report's charts drawn in the sandboxed frame."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from patron.analytics.runs import get_run, list_runs
from patron.auth import Role, create_user
from patron.core.db import Database, dispose_engines, get_engine
from tests.browser.conftest import OWNER_EMAIL, OWNER_PASSWORD, _require_chromium, shot
from tests.support import LiveServer, fresh_database_url
from tests.worker.bulk import bulk_shop

pytestmark = pytest.mark.browser

RUN_DEADLINE_S = 180.0


@pytest.fixture(scope="module")
def live(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """Its own server: a shop of 400 customers in the markets VN and HU."""
    _require_chromium()
    url = fresh_database_url(template_db, tmp_path_factory.mktemp("browser-analytics"), "analytics.db")
    db = Database(get_engine(url))
    with db.unit_of_work() as session:
        create_user(session, email=OWNER_EMAIL, password=OWNER_PASSWORD, role=Role.OWNER, name="Owner")
    bulk_shop(db, customers=400, seed=8)
    dispose_engines()
    with LiveServer(url, workers=1) as server:
        yield server, url


def _wait_for_run(url: str, scope: str) -> None:
    db = Database(get_engine(url))
    deadline = time.monotonic() + RUN_DEADLINE_S
    while True:
        with db.unit_of_work(write=False) as session:
            runs = list_runs(session, scope=scope)
        if runs and runs[0].done:
            assert runs[0].status == "completed", runs[0].error
            return
        assert time.monotonic() < deadline, f"the {scope} run did not finish"
        time.sleep(0.5)


def test_switch_to_a_market_and_compare_markets(page: object, live: tuple[LiveServer, str]) -> None:
    _, url = live
    page.goto("/analytics")  # type: ignore[attr-defined]
    page.fill('input[name="email"]', OWNER_EMAIL)  # type: ignore[attr-defined]
    page.fill('input[name="password"]', OWNER_PASSWORD)  # type: ignore[attr-defined]
    page.click('form[action="/login"] button[type="submit"]')  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/analytics$"))  # type: ignore[attr-defined]

    page.click("#run-now button")  # type: ignore[attr-defined]
    _wait_for_run(url, "all")
    page.goto("/analytics")  # type: ignore[attr-defined]
    expect(page.locator("#headline h2")).to_contain_text("Key figures as of")  # type: ignore[attr-defined]

    # switch the scope to Vietnam: the page follows the select, without a run yet
    page.select_option("#scope-select", "market:VN")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"scope=market%3AVN"))  # type: ignore[attr-defined]
    expect(page.locator("#headline")).to_contain_text("No completed analysis of this market")  # type: ignore[attr-defined]
    page.click("#run-now button")  # type: ignore[attr-defined]
    _wait_for_run(url, "market:VN")
    page.reload()  # type: ignore[attr-defined]
    db = Database(get_engine(url))
    with db.unit_of_work(write=False) as session:
        (vn,) = list_runs(session, scope="market:VN")
        results = get_run(session, vn.id).results
    assert results is not None
    facts = page.locator("#headline dl.facts")  # type: ignore[attr-defined]
    expect(page.locator('#headline [data-scope="market:VN"]')).to_have_text(re.compile("Market: VN"))
    customers = facts.locator("dt", has_text=re.compile(r"^Customers$")).locator(
        "xpath=following-sibling::dd[1]"
    )
    expect(customers).to_have_text(f"{results['customers']:,}")
    aov = facts.locator("dt", has_text="Average order value").locator("xpath=following-sibling::dd[1]")
    expect(aov).to_have_text(f"€{results['kpis']['average_order_value']:,.2f}")
    # the report's charts, drawn by its own scripts inside the sandboxed frame
    page.locator("#report iframe").scroll_into_view_if_needed()  # type: ignore[attr-defined]
    frame = page.frame_locator("#report iframe")  # type: ignore[attr-defined]
    expect(frame.locator("div.chart.js-plotly-plot svg.main-svg").first).to_be_visible(timeout=30_000)
    document = page.locator("#report iframe").element_handle().content_frame()  # type: ignore[attr-defined]
    assert "/report" in document.url
    document.wait_for_load_state("load", timeout=30_000)  # the whole report parsed, its scripts run
    charts = frame.locator("div.chart").count()
    assert charts >= 4  # KPI trend, cohort heat map, RFM map, CLV distribution …
    expect(frame.locator("div.chart.js-plotly-plot")).to_have_count(charts)  # every one drawn
    shot(page, "20-analytics-market-vn")

    # Hungary too, then all markets side by side on the page of all customers
    page.select_option("#scope-select", "market:HU")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"scope=market%3AHU"))  # type: ignore[attr-defined]
    page.click("#run-now button")  # type: ignore[attr-defined]
    _wait_for_run(url, "market:HU")
    page.select_option("#scope-select", "all")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"scope=all"))  # type: ignore[attr-defined]
    table = page.locator("#compare-markets table")  # type: ignore[attr-defined]
    expect(table.locator("tbody tr")).to_have_count(2)
    vn_row = table.locator('tr[data-compare-market="VN"] td')
    expect(vn_row.nth(2)).to_have_text(f"{results['customers']:,}")
    expect(vn_row.nth(5)).to_have_text(f"{results['kpis']['repeat_purchase_rate'] * 100:.1f}%")
    expect(table.locator('tr[data-compare-market="HU"] td').nth(2)).not_to_have_text("")
    shot(page, "21-analytics-markets-side-by-side")
