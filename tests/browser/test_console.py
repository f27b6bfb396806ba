"""The staff console in a real browser: log in, switch to Thai and Vietnamese, search a customer,
open the customer 360 page, build a segment with a live count and save it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from patron.core.i18n import gettext_for
from tests.browser.conftest import OWNER_EMAIL, OWNER_PASSWORD, shot
from tests.support import LiveServer

pytestmark = pytest.mark.browser


def log_in(page: object) -> None:
    page.goto("/customers")  # type: ignore[attr-defined]
    assert "/login?next=/customers" in page.url  # type: ignore[attr-defined]
    page.fill('input[name="email"]', OWNER_EMAIL)  # type: ignore[attr-defined]
    page.fill('input[name="password"]', OWNER_PASSWORD)  # type: ignore[attr-defined]
    page.click('form[action="/login"] button[type="submit"]')  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/customers$"))  # type: ignore[attr-defined]


def switch_language(page: object, code: str) -> None:
    page.click(f'.language-switcher button[value="{code}"]')  # type: ignore[attr-defined]
    page.wait_for_selector(f'html[lang="{code}"]')  # type: ignore[attr-defined]


def nav_label(page: object, key: str) -> str:
    return str(page.inner_text(f'.sidebar a[data-nav="{key}"]')).strip()  # type: ignore[attr-defined]


def test_login_rejects_a_wrong_password(page: object) -> None:
    page.goto("/login")  # type: ignore[attr-defined]
    page.fill('input[name="email"]', OWNER_EMAIL)  # type: ignore[attr-defined]
    page.fill('input[name="password"]', "not the password")  # type: ignore[attr-defined]
    page.click('form[action="/login"] button[type="submit"]')  # type: ignore[attr-defined]
    assert page.inner_text(".error").strip() == "Wrong email or password."  # type: ignore[attr-defined]
    shot(page, "01-login-failed")


def test_languages_thai_and_vietnamese(page: object) -> None:
    log_in(page)
    assert nav_label(page, "/customers") == "Customers"
    shot(page, "02-customers-en")

    switch_language(page, "th")
    assert "/customers" in page.url  # type: ignore[attr-defined]
    thai = gettext_for("th")("Customers")
    assert nav_label(page, "/customers") == thai
    if thai != "Customers":  # the catalog has it: the label is Thai script
        assert re.search(r"[\u0E00-\u0E7F]", thai)
    shot(page, "03-customers-th")

    switch_language(page, "vi")
    assert nav_label(page, "/customers") == gettext_for("vi")("Customers")
    shot(page, "04-customers-vi")

    switch_language(page, "en")
    assert nav_label(page, "/customers") == "Customers"


def test_search_and_customer_360(page: object, live: tuple[LiveServer, dict[str, str]]) -> None:
    people = live[1]
    log_in(page)
    page.fill('#customer-search input[name="q"]', "nguyen")  # type: ignore[attr-defined]
    page.click('#customer-search button[type="submit"]')  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"q=nguyen"))  # type: ignore[attr-defined]
    rows = page.locator("#customers tbody tr[data-customer]")  # type: ignore[attr-defined]
    assert rows.count() == 1
    assert rows.first.get_attribute("data-customer") == people["an"]
    shot(page, "05-search-nguyen")

    page.fill('#customer-search input[name="q"]', "dien")  # type: ignore[attr-defined]
    page.click('#customer-search button[type="submit"]')  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"q=dien"))  # type: ignore[attr-defined]
    assert (
        page.locator("#customers tbody tr[data-customer]").first.get_attribute("data-customer")
        == people["dien"]
    )  # type: ignore[attr-defined]

    page.goto("/customers?q=nguyen")  # type: ignore[attr-defined]
    page.click("#customers tbody a")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(rf"/customers/{people['an']}$"))  # type: ignore[attr-defined]
    assert page.inner_text("#customer-name").strip() == "Nguyễn Văn An"  # type: ignore[attr-defined]
    page.fill('#note-form textarea[name="summary"]', "Khách hàng thân thiết, gọi lại thứ Hai")  # type: ignore[attr-defined]
    page.click('#note-form button[type="submit"]')  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"flash=note_added"))  # type: ignore[attr-defined]
    assert "Khách hàng thân thiết, gọi lại thứ Hai" in page.inner_text(".timeline")  # type: ignore[attr-defined]
    shot(page, "06-customer-360")

    page.goto(f"/customers/{people['somchai']}")  # type: ignore[attr-defined]
    switch_language(page, "th")
    assert page.inner_text("#customer-name").strip() == "สมชาย ใจดี"  # type: ignore[attr-defined]
    shot(page, "07-customer-360-th")
    switch_language(page, "en")


def test_segment_builder_live_count(page: object) -> None:
    log_in(page)
    page.goto("/segments/new")  # type: ignore[attr-defined]
    count = page.locator("#live-count")  # type: ignore[attr-defined]
    assert count.inner_text() == "6"
    page.click("#segment-builder .add-condition")  # type: ignore[attr-defined]
    condition = page.locator("#segment-builder .rule-condition").first  # type: ignore[attr-defined]
    condition.locator("input.rule-value").fill("VN")
    expect(count).to_have_attribute("data-count", "3")
    assert count.inner_text() == "3"

    # a nested OR group: tag vip, or country HU
    page.click("#segment-builder .add-group")  # type: ignore[attr-defined]
    inner = page.locator("#segment-builder .rule-group .rule-group").first  # type: ignore[attr-defined]
    inner.locator(".rule-group-head select").select_option("or")
    inner.locator(".add-condition").click()
    leaf = inner.locator(".rule-condition").first
    leaf.locator("select").first.select_option("tag")
    leaf = inner.locator(".rule-condition").first
    leaf.locator("input.rule-value").fill("vip")
    expect(count).to_have_attribute("data-count", "1")
    assert count.inner_text() == "1"
    sample = page.inner_text("#live-sample")  # type: ignore[attr-defined]
    assert "Nguyễn Văn An" in sample

    # NOT: everyone in Vietnam who is not a VIP
    inner.locator(".rule-group-head select").select_option("not")
    expect(count).to_have_attribute("data-count", "2")
    shot(page, "08-segment-builder")

    page.fill('input[name="name"]', "Vietnam, not VIP")  # type: ignore[attr-defined]
    page.click("#save-segment")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r"/segments/[0-9a-f-]+\?flash=saved"))  # type: ignore[attr-defined]
    assert page.locator("#live-count").inner_text() == "2"  # type: ignore[attr-defined]
    page.goto("/segments")  # type: ignore[attr-defined]
    row = page.locator('#segments tr[data-segment="Vietnam, not VIP"]')  # type: ignore[attr-defined]
    assert row.locator("td.num").inner_text() == "2"
    shot(page, "09-segments")
