"""The customer portal in a real browser: open a portal link, see the balance in Vietnamese, redeem
a reward (double-click included), see the code; the copy button; switch to Thai."""

from __future__ import annotations

import re

import pytest

from patron.core.db import Database, get_engine
from patron.loyalty import adjust_points, create_reward, list_redemptions
from patron.portal import issue_portal_link
from tests.browser.conftest import shot
from tests.support import LiveServer

pytestmark = pytest.mark.browser


def test_open_a_portal_link_redeem_a_reward_and_see_the_code(
    page: object, live: tuple[LiveServer, dict[str, str]]
) -> None:
    server, people = live
    member = people["an"]
    db = Database(get_engine(server.database_url))
    with db.unit_of_work() as s:
        adjust_points(s, member, 1200, reason="browser test")
        reward = create_reward(
            s,
            {
                "kind": "discount_fixed",
                "names": {"en": "Tea voucher", "vi": "Phiếu uống trà"},
                "cost_points": 500,
                "value_amount": "50000",
                "currency": "VND",
            },
        )
        link = issue_portal_link(s, member)
    page.goto(link.url.replace("http://127.0.0.1:8000", ""))  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/portal$"))  # type: ignore[attr-defined]
    assert page.get_attribute("html", "lang") == "vi"  # type: ignore[attr-defined]
    assert page.inner_text("#available").strip() == "1.200"  # type: ignore[attr-defined]
    assert "điểm khả dụng" in page.inner_text("#balance")  # type: ignore[attr-defined]
    card = f'article[data-reward="{reward.id}"]'
    assert "50.000\xa0₫" in page.inner_text(card)  # type: ignore[attr-defined]
    shot(page, "portal-01-home-vi")

    page.dblclick(f"{card} button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/portal/redemptions/"))  # type: ignore[attr-defined]
    code = page.inner_text("#reward-code").strip()  # type: ignore[attr-defined]
    assert re.fullmatch(r"[2-9B-DF-HJ-NP-TV-Z]{4}-[2-9B-DF-HJ-NP-TV-Z]{4}-[2-9B-DF-HJ-NP-TV-Z]{4}", code)
    assert page.inner_text("#available").strip() == "700"  # type: ignore[attr-defined]
    shot(page, "portal-02-code-vi")
    with db.unit_of_work(write=False) as s:
        redemptions = list_redemptions(s, member)
    assert [r.code for r in redemptions] == [code]  # the double click redeemed once

    page.click("text=← Quay lại điểm của tôi")  # type: ignore[attr-defined]
    assert code in page.inner_text("#redeemed")  # type: ignore[attr-defined]
    # the copy button puts the referral link on the clipboard
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])  # type: ignore[attr-defined]
    referral_link = page.input_value("#referral-link")  # type: ignore[attr-defined]
    assert re.fullmatch(
        r"http://127\.0\.0\.1:8000/r/[2-9B-DF-HJ-NP-TV-Z]{4}-[2-9B-DF-HJ-NP-TV-Z]{4}", referral_link
    )
    page.click('button[data-copy="#referral-link"]')  # type: ignore[attr-defined]
    page.wait_for_selector('button[data-copy="#referral-link"]:has-text("Đã sao chép")')  # type: ignore[attr-defined]
    assert page.evaluate("navigator.clipboard.readText()") == referral_link  # type: ignore[attr-defined]
    page.click('.languages button[value="th"]')  # type: ignore[attr-defined]
    page.wait_for_selector('html[lang="th"]')  # type: ignore[attr-defined]
    assert "คะแนนที่ใช้ได้" in page.inner_text("#balance")  # type: ignore[attr-defined]
    shot(page, "portal-03-home-th")


def test_the_portal_fits_a_phone_screen(browser: object, live: tuple[LiveServer, dict[str, str]]) -> None:
    server, people = live
    member = people["somchai"]
    db = Database(get_engine(server.database_url))
    with db.unit_of_work() as s:
        adjust_points(s, member, 250, reason="browser test")
        link = issue_portal_link(s, member)
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=server.url, viewport={"width": 360, "height": 740}, locale="th-TH", is_mobile=True
    )
    try:
        phone = context.new_page()
        phone.set_default_timeout(15_000)
        phone.goto(link.url.replace("http://127.0.0.1:8000", ""))
        phone.wait_for_url(re.compile(r"/portal$"))
        assert phone.get_attribute("html", "lang") == "th"
        assert "คะแนนที่ใช้ได้" in phone.inner_text("#balance")
        # nothing wider than the screen: no sideways scrolling
        assert phone.evaluate("document.documentElement.scrollWidth") <= 360
        shot(phone, "portal-04-phone-th")
    finally:
        context.close()  # type: ignore[attr-defined]
