"""Loyalty in the console, in a real browser: edit a tier's Thai name on its page, then see it on
the customer 360 page's loyalty card in Thai (with the tier progress in Thai digits' grouping)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from patron.core.clock import now
from patron.core.db import Database, dispose_engines, get_engine
from patron.core.i18n import gettext_for
from patron.loyalty import create_rule, create_tier, report_event
from tests.browser.conftest import shot
from tests.browser.test_console import log_in, switch_language
from tests.loyalty.conftest import setup_loyalty
from tests.support import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def somchai(live: tuple[LiveServer, dict[str, str]]) -> str:
    """Somchai earns a 150-point review bonus: Silver (100), 1,350 points short of Gold (1,500)."""
    server, people = live
    db = Database(get_engine(server.database_url))
    with db.unit_of_work() as s:
        setup_loyalty(s)
        create_tier(s, {"code": "silver", "rank": 1, "threshold": 100, "names": {"en": "Silver"}})
        create_tier(s, {"code": "gold", "rank": 2, "threshold": 1500, "names": {"en": "Gold", "th": "โกลด์"}})
        create_rule(s, {"name": "Review", "kind": "bonus", "points": 150, "event_type": "review"})
        report_event(s, people["somchai"], "review", occurred_at=now() - timedelta(hours=1))
    dispose_engines()
    return people["somchai"]


def test_edit_a_tier_thai_name_and_see_it_on_the_customer_card(page: object, somchai: str) -> None:
    log_in(page)
    page.goto("/loyalty")  # type: ignore[attr-defined]
    page.click('#tiers a[href="/loyalty/tiers/silver"]')  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/loyalty/tiers/silver$"))  # type: ignore[attr-defined]
    page.fill('#tier-edit-form input[name="name_th"]', "ระดับเงิน")  # type: ignore[attr-defined]
    page.fill('#tier-edit-form input[name="name_vi"]', "Bạc")  # type: ignore[attr-defined]
    page.click('#tier-edit-form button[type="submit"]')  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/loyalty/tiers/silver\?flash=tier_saved$"))  # type: ignore[attr-defined]
    expect(page.locator(".flash")).to_contain_text("Tier saved.")  # type: ignore[attr-defined]
    shot(page, "loyalty-01-tier-saved")

    page.goto(f"/customers/{somchai}")  # type: ignore[attr-defined]
    expect(page.locator("#loyalty-tier")).to_have_text("Silver")  # type: ignore[attr-defined]
    switch_language(page, "th")
    expect(page.locator("#loyalty-tier")).to_have_text("ระดับเงิน")  # type: ignore[attr-defined]
    progress = gettext_for("th")("%(points)s points to %(tier)s") % {"points": "1,350", "tier": "โกลด์"}
    expect(page.locator("#loyalty-progress")).to_have_text(progress)  # type: ignore[attr-defined]
    expect(page.locator("#loyalty-available")).to_have_text("150")  # type: ignore[attr-defined]
    shot(page, "loyalty-02-customer-card-th")

    # a stale second tab: the same form, opened before the save, is refused with the 412 page
    page.goto("/loyalty/tiers/silver")  # type: ignore[attr-defined]
    page.evaluate(  # type: ignore[attr-defined]
        "document.querySelector('#tier-edit-form input[name=version]').value = '1'"
    )
    page.fill('#tier-edit-form input[name="name_th"]', "ซิลเวอร์")  # type: ignore[attr-defined]
    page.click('#tier-edit-form button[type="submit"]')  # type: ignore[attr-defined]
    expect(page.locator("#tier-edit-form .error")).to_contain_text(  # type: ignore[attr-defined]
        gettext_for("th")(
            "Someone else changed this record after you opened it. The form shows your changes and "
            "the record's new version: check them and save again to overwrite, or reload the page."
        )
    )
    page.goto(f"/customers/{somchai}")  # type: ignore[attr-defined]
    expect(page.locator("#loyalty-tier")).to_have_text("ระดับเงิน")  # type: ignore[attr-defined]
