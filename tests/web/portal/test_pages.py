"""The portal through HTTP: opening a link, error pages, the member's page in four languages with
locale money and dates, the language switcher, history paging, redeeming (exactly once on a double
submit; refusals translated and changing nothing), CSRF."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from patron.commerce import OrderRecord, RefundLineInput, place_order, prepare_order, refund_lines
from patron.core.db import Database
from patron.core.i18n import gettext_for
from patron.customers import erase_customer
from patron.loyalty import (
    adjust_points,
    get_account,
    list_entries,
    list_redemptions,
    redeem_points,
    update_programme,
)
from patron.portal import revoke_portal_links
from tests.web.portal.conftest import (
    World,
    csrf_of,
    deliver_all,
    link_path,
    open_portal,
    redeem_forms,
    text_of,
)


def _balance(database: Database, customer_id: str) -> tuple[int, int, int]:
    with database.unit_of_work(write=False) as s:
        account = get_account(s, customer_id)
        return (
            account.available,
            len(list_redemptions(s, customer_id)),
            len(list_entries(s, customer_id, limit=200).items),
        )


def test_opening_a_link_starts_a_session_and_drops_the_token(
    client: TestClient, database: Database, world: World
) -> None:
    path = link_path(database, world.members["vi"])
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/portal"
    assert response.headers["referrer-policy"] == "no-referrer"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("patron_portal=")
    for attribute in ("HttpOnly", "Max-Age=3600", "Path=/portal", "SameSite=lax"):
        assert attribute in cookie
    assert "patron_session" not in cookie  # the staff session is another cookie
    page = client.get("/portal")
    assert page.status_code == 200
    assert "Xin chào, Văn An" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("language", "invalid", "expired"),
    [
        ("vi", "Liên kết này không hợp lệ", "Liên kết này đã hết hạn"),
        ("hu", "Ez a link nem érvényes", "Ez a link lejárt"),
        ("th", "ลิงก์นี้ใช้ไม่ได้", "ลิงก์นี้หมดอายุแล้ว"),
        ("en", "This link is not valid", "This link has expired"),
    ],
)
def test_bad_links_show_a_translated_page_without_details(
    client: TestClient, database: Database, world: World, language: str, invalid: str, expired: str
) -> None:
    headers = {"Accept-Language": language}
    forged = client.get(link_path(database, world.members["vi"])[:-2] + "xx", headers=headers)
    assert forged.status_code == 403
    assert invalid in forged.text
    assert "patron_portal=" not in forged.headers.get("set-cookie", "")
    for leak in ("signature", "BadSignature", "Traceback", world.members["vi"]):
        assert leak not in forged.text
    old = link_path(database, world.members["vi"], days=1)
    world.clock.advance(timedelta(days=1))
    gone = client.get(old, headers=headers)
    assert gone.status_code == 410
    assert expired in gone.text


def test_revoked_and_erased_links_are_gone(client: TestClient, database: Database, world: World) -> None:
    revoked, erased = world.members["vi"], world.members["hu"]
    revoked_link, erased_link = link_path(database, revoked), link_path(database, erased)
    open_portal(client, database, revoked)
    with database.unit_of_work() as s:
        revoke_portal_links(s, revoked)
        erase_customer(s, erased)
    assert client.get(revoked_link).status_code == 410
    assert client.get(erased_link).status_code == 410
    # the open session was revoked too
    ended = client.get("/portal", headers={"Accept-Language": "en"})
    assert ended.status_code == 401
    assert "your session has ended" in ended.text


EXPECTED = {
    # greeting, "points available", a reward's money value, expiry line, tier progress
    "vi": (
        "Xin chào, Văn An",
        "điểm khả dụng",
        "100.000\xa0₫",
        "800 điểm sẽ hết hạn vào 15 thg 4, 2026",
        "Còn 2.000 điểm nữa để lên hạng Vàng",
    ),
    "hu": (
        "Üdvözöljük, Anna!",
        "felhasználható pont",
        "5\xa0000\xa0Ft",
        "800 pont lejár: 2026. ápr. 15.",
        "Még 2\xa0000 pont a(z) Arany szintig",
    ),
    "th": (
        "สวัสดี คุณสมชาย",
        "คะแนนที่ใช้ได้",
        "฿150.50",
        "800 คะแนนจะหมดอายุในวันที่ 15 เม.ย. 2569",
        "อีก 2,000 คะแนนจะถึงระดับ ทอง",
    ),
    "en": (
        "Hello, John",
        "points available",
        "₫100,000",
        "800 points expire on 15 Apr 2026",
        "2,000 points to Gold",
    ),
}


@pytest.mark.parametrize("language", ["vi", "hu", "th", "en"])
def test_the_member_page_speaks_the_customers_language(
    client: TestClient, database: Database, world: World, language: str
) -> None:
    html = open_portal(client, database, world.members[language])
    text = text_of(html)
    greeting, available, money, expiry, progress = EXPECTED[language]
    assert f'<html lang="{language}">' in html
    assert greeting in text
    assert available in text
    assert money in text
    assert expiry in text
    assert progress in text
    assert '<span class="big" id="available">800</span>' in html


def test_thai_dates_use_the_buddhist_era_in_the_history(
    client: TestClient, database: Database, world: World
) -> None:
    open_portal(client, database, world.members["th"])
    text = text_of(client.get("/portal/history").text)
    assert "2569" in text
    assert "2026" not in text


def test_the_language_switcher_and_its_defaults(client: TestClient, database: Database, world: World) -> None:
    # the customer's language wins over the browser's
    html = open_portal(client, database, world.members["vi"])
    assert "Xin chào" in client.get("/portal", headers={"Accept-Language": "hu"}).text
    switched = client.post(
        "/portal-language",
        data={
            "language": "hu",
            "next": "/portal",
            "csrf_token": csrf_of(html.split('action="/portal-language"')[1]),
        },
        follow_redirects=False,
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/portal"
    assert "patron_portal_lang=hu" in switched.headers["set-cookie"]
    assert "Üdvözöljük, Văn An!" in client.get("/portal").text
    # an open redirect is not followed
    elsewhere = client.post(
        "/portal-language",
        data={
            "language": "th",
            "next": "https://evil.example/",
            "csrf_token": client.cookies["patron_portal_csrf"],
        },
        follow_redirects=False,
    )
    assert elsewhere.headers["location"] == "/portal"
    # without a session: the browser's language, else the business default
    anonymous = TestClient(client.app)
    assert (
        '<html lang="th">'
        in anonymous.get("/r/NOPE-NOPE", headers={"Accept-Language": "th-TH,th;q=0.9"}).text
    )
    assert '<html lang="en">' in anonymous.get("/r/NOPE-NOPE", headers={"Accept-Language": "de"}).text


def test_the_history_is_paged(client: TestClient, database: Database, world: World) -> None:
    with database.unit_of_work() as s:
        for i in range(24):
            world.clock.advance(timedelta(minutes=1))
            adjust_points(s, world.members["en"], 1, reason=f"goodwill {i}")
    open_portal(client, database, world.members["en"])
    first = client.get("/portal/history")
    assert first.text.count("<tr>") == 1 + 20  # the header row and 20 movements
    older = first.text.split('id="older"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = client.get(older)
    assert second.status_code == 200
    assert second.text.count("<tr>") == 1 + 5  # 24 goodwill points and the welcome points
    assert 'id="older"' not in second.text
    assert "goodwill" not in second.text  # staff reasons are not shown to customers
    assert client.get("/portal/history?cursor=garbage").status_code == 404


def test_redeeming_twice_with_the_same_form_redeems_once(
    client: TestClient, database: Database, world: World
) -> None:
    member = world.members["vi"]
    html = open_portal(client, database, member)
    csrf, key = redeem_forms(html)[world.rewards["voucher"]]
    url = f"/portal/rewards/{world.rewards['voucher']}/redeem"
    first = client.post(url, data={"csrf_token": csrf, "idempotency_key": key}, follow_redirects=False)
    second = client.post(url, data={"csrf_token": csrf, "idempotency_key": key}, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    available, redemptions, _ = _balance(database, member)
    assert (available, redemptions) == (500, 1)
    page = client.get(first.headers["location"])
    with database.unit_of_work(write=False) as s:
        code = list_redemptions(s, member)[0].code
    assert code is not None
    assert f'<code id="reward-code">{code}</code>' in page.text
    assert "Phiếu mua hàng" in page.text
    # a new form (new key) redeems again; the member's page lists both codes
    html = client.get("/portal").text
    csrf, key = redeem_forms(html)[world.rewards["voucher"]]
    assert (
        client.post(
            url, data={"csrf_token": csrf, "idempotency_key": key}, follow_redirects=False
        ).status_code
        == 303
    )
    assert _balance(database, member)[:2] == (200, 2)
    assert client.get("/portal").text.count('class="reward-code"') == 2


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("vi", "Bạn không đủ điểm để đổi quà này."),
        ("hu", "Nincs elég pontja ehhez a jutalomhoz."),
        ("th", "คุณมีคะแนนไม่พอสำหรับของรางวัลนี้"),
    ],
)
def test_too_few_points_is_refused_in_the_customers_language_and_changes_nothing(
    client: TestClient, database: Database, world: World, language: str, message: str
) -> None:
    member = world.members[language]
    html = open_portal(client, database, member)
    assert world.rewards["expensive"] not in redeem_forms(html)  # not offered as redeemable
    before = _balance(database, member)
    refused = client.post(
        f"/portal/rewards/{world.rewards['expensive']}/redeem",
        data={"csrf_token": csrf_of(html), "idempotency_key": "k" * 20},
        follow_redirects=False,
    )
    assert refused.status_code == 409
    assert message in refused.text
    assert _balance(database, member) == before


def test_forms_without_the_sessions_csrf_token_are_refused(
    client: TestClient, database: Database, world: World
) -> None:
    member = world.members["vi"]
    html = open_portal(client, database, member)
    _, key = redeem_forms(html)[world.rewards["voucher"]]
    url = f"/portal/rewards/{world.rewards['voucher']}/redeem"
    before = _balance(database, member)
    missing = client.post(url, data={"idempotency_key": key}, follow_redirects=False)
    wrong = client.post(url, data={"csrf_token": "x" * 40, "idempotency_key": key}, follow_redirects=False)
    # another session's token does not work in this one
    other = TestClient(client.app)
    other_html = open_portal(other, database, world.members["en"])
    borrowed = client.post(
        url, data={"csrf_token": csrf_of(other_html), "idempotency_key": key}, follow_redirects=False
    )
    for response in (missing, wrong, borrowed):
        assert response.status_code == 403
        assert "Biểu mẫu này đã hết hạn" in response.text
    assert _balance(database, member) == before


def test_rewards_are_filtered_by_market_tier_stock_and_limit(
    client: TestClient, database: Database, world: World
) -> None:
    rewards = world.rewards
    vi = redeem_forms(open_portal(client, database, world.members["vi"]))
    assert set(vi) == {rewards["voucher"], rewards["once"]}  # "expensive" is shown without a form
    hu = redeem_forms(open_portal(TestClient(client.app), database, world.members["hu"]))
    assert set(hu) == {rewards["voucher"], rewards["once"], rewards["huf"]}
    # after redeeming the once-only reward it is no longer offered
    csrf, key = vi[rewards["once"]]
    client.post(
        f"/portal/rewards/{rewards['once']}/redeem", data={"csrf_token": csrf, "idempotency_key": key}
    )
    assert set(redeem_forms(client.get("/portal").text)) == {rewards["voucher"]}
    # and a forced second attempt is refused with the translated reason
    again = client.post(
        f"/portal/rewards/{rewards['once']}/redeem",
        data={"csrf_token": csrf, "idempotency_key": "another-key-123"},
        follow_redirects=False,
    )
    assert again.status_code == 409
    assert "Quà này không còn dành cho bạn." in again.text


def test_a_redemption_of_another_customer_is_not_shown(
    client: TestClient, database: Database, world: World
) -> None:
    html = open_portal(client, database, world.members["vi"])
    csrf, key = redeem_forms(html)[world.rewards["voucher"]]
    done = client.post(
        f"/portal/rewards/{world.rewards['voucher']}/redeem",
        data={"csrf_token": csrf, "idempotency_key": key},
        follow_redirects=False,
    )
    other = TestClient(client.app)
    open_portal(other, database, world.members["en"])
    assert other.get(done.headers["location"]).status_code == 404


def test_signing_out_ends_the_session(client: TestClient, database: Database, world: World) -> None:
    html = open_portal(client, database, world.members["en"])
    out = client.post("/portal/logout", data={"csrf_token": csrf_of(html)}, follow_redirects=False)
    assert out.status_code == 303
    assert 'patron_portal=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert client.get("/portal").status_code == 401


def _order(session: Session, customer_id: str, **overrides: Any) -> OrderRecord:
    raw: dict[str, Any] = {
        "customer_id": customer_id,
        "market": "VN",
        "currency": "VND",
        "placed_at": "2026-03-20T03:00:00+00:00",
        "lines": [
            {"sku": "TEA-1", "name": "Trà xanh", "quantity": 2, "unit_price": "150000"},
            {"sku": "CUP-1", "name": "Cốc", "quantity": 1, "unit_price": "50000"},
        ],
    }
    raw.update(overrides)
    return place_order(session, prepare_order(raw))


def test_pending_points_and_points_owed_are_shown_and_explained(
    client: TestClient, database: Database, world: World
) -> None:
    pending_member, owing_member = world.members["vi"], world.members["hu"]
    with database.unit_of_work() as s:
        _order(s, pending_member)  # 350,000 VND: 35 points, pending until fulfilled
        order = _order(
            s, owing_member, fulfilment_status="fulfilled", fulfilled_at="2026-03-20T04:00:00+00:00"
        )
    deliver_all(database)
    with database.unit_of_work() as s:
        redeem_points(s, owing_member, 830)  # 800 + 35 vested: 5 left
        tea = next(line for line in order.lines if line.sku == "TEA-1")
        refund_lines(s, order.id, [RefundLineInput(tea.id, 2)])  # reverses 30: 5 available, 25 owed
    deliver_all(database)

    html = open_portal(client, database, pending_member)
    assert '<dd id="pending">35</dd>' in html
    assert gettext_for("vi")("Pending points") in html
    assert "Điểm chờ xác nhận sẽ khả dụng khi hết thời hạn đổi trả của đơn hàng." in html
    assert 'id="debt"' not in html

    html = open_portal(TestClient(client.app), database, owing_member)
    assert '<span class="big" id="available">0</span>' in html
    assert '<dd id="debt">25</dd>' in html
    assert gettext_for("hu")("Points owed") in html
    assert "A pont-tartozás egy visszaküldött vásárlásból ered" in html


def test_unknown_redemption_ids_are_not_found(client: TestClient, database: Database, world: World) -> None:
    open_portal(client, database, world.members["vi"])
    for bad in ("01a00000-0000-7000-8000-000000000000", "nope"):
        assert client.get(f"/portal/redemptions/{bad}").status_code == 404


def test_tier_progress_on_spend_is_money_in_the_reporting_currency(
    client: TestClient, database: Database, world: World
) -> None:
    with database.unit_of_work() as s:
        update_programme(s, tier_basis="spend")
    en = text_of(open_portal(client, database, world.members["en"]))
    assert "€2,000.00 more to spend to reach Gold" in en
    vi = text_of(open_portal(TestClient(client.app), database, world.members["vi"]))
    assert "Chi tiêu thêm 2.000,00\xa0€ để lên hạng Vàng" in vi
