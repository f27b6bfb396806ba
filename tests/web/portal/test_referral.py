"""The referral landing page ``/r/{code}``: the invitation (given name only), sign-up through the
customers API with attribution and its guards, consent proof, unknown codes, emails already known."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patron.core.db import Database
from patron.customers import get_consent, list_customers, list_timeline
from patron.loyalty import get_account, referral_code_for, referral_summary, update_programme
from tests.web.portal.conftest import World, csrf_of, deliver_all, text_of


@pytest.fixture
def code(database: Database, world: World) -> str:
    with database.unit_of_work() as s:
        update_programme(
            s, referral_trigger="signup", referral_referrer_points=100, referral_referred_points=50
        )
        return referral_code_for(s, world.members["vi"])


def _form(client: TestClient, url: str, **values: str) -> dict[str, str]:
    page = client.get(url)
    assert page.status_code == 200
    base = {
        "first_name": "Thị Lan",
        "last_name": "Trần",
        "email": "lan.tran@example.vn",
        "phone": "",
        "country": "VN",
        "language": "vi",
        "csrf_token": csrf_of(page.text),
    }
    return {**base, **values}


def _customers(database: Database) -> list[str]:
    with database.unit_of_work(write=False) as s:
        return [c.email or "" for c in list_customers(s, limit=100).items]


def test_the_invitation_shows_the_referrers_given_name_only(
    client: TestClient, database: Database, world: World, code: str
) -> None:
    page = client.get(f"/r/{code}", headers={"Accept-Language": "vi"})
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Văn An đã mời bạn" in text
    for private in ("Nguyễn", "an.nguyen@example.vn", "+84", world.members["vi"]):
        assert private not in page.text
    # lower case works too (codes are read aloud and typed)
    assert "Văn An" in client.get(f"/r/{code.lower()}").text


def test_signing_up_creates_the_referred_customer_with_consent_proof_and_opens_the_portal(
    client: TestClient, database: Database, world: World, code: str
) -> None:
    form = _form(client, f"/r/{code}", marketing="yes")
    response = client.post(
        f"/r/{code}", data=form, headers={"User-Agent": "PortalTest/1.0"}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/portal?welcome=1"
    assert "patron_portal=" in response.headers["set-cookie"]
    with database.unit_of_work(write=False) as s:
        new = next(c for c in list_customers(s, limit=100).items if c.email == "lan.tran@example.vn")
        assert (new.given_name, new.family_name, new.language, new.country) == ("Thị Lan", "Trần", "vi", "VN")
        assert new.referral_code == code
        consent = get_consent(s, new.id)
        marketing = [r for r in consent.history if r.purpose == "marketing"]
        assert [(r.channel, r.status, r.source) for r in marketing] == [("email", "granted", "portal")]
        proof = json.loads(marketing[0].proof or "{}")
        assert proof["ip"] == "testclient"
        assert proof["user_agent"] == "PortalTest/1.0"
        assert proof["text"] == "Send me offers and news by email. I can unsubscribe at any time."
        assert proof["language"] == "en"  # the page's language (the account's is "vi")
        assert proof["at"].startswith("2026-03-20T10:00:00")
    page = client.get(response.headers["location"])
    assert "Chào mừng bạn! Tài khoản của bạn đã sẵn sàng." in page.text
    assert "Xin chào, Thị Lan" in page.text
    # the referral is attributed by loyalty's own handler (customer.created), with its rewards
    deliver_all(database)
    with database.unit_of_work(write=False) as s:
        assert referral_summary(s, world.members["vi"]).converted == 1
        assert get_account(s, new.id).available == 50
        assert get_account(s, world.members["vi"]).available == 900


def test_the_consent_proof_keeps_the_wording_in_the_language_the_page_was_read_in(
    client: TestClient, database: Database, world: World, code: str
) -> None:
    client.headers["Accept-Language"] = "hu"
    page = client.get(f"/r/{code}")
    hungarian = "Kérek ajánlatokat és híreket e-mailben. Bármikor leiratkozhatok."
    assert hungarian in page.text
    form = _form(client, f"/r/{code}", marketing="yes", language="vi", email="lan.hu@example.vn")
    assert client.post(f"/r/{code}", data=form, follow_redirects=False).status_code == 303
    with database.unit_of_work(write=False) as s:
        new = next(c for c in list_customers(s, limit=100).items if c.email == "lan.hu@example.vn")
        assert new.language == "vi"  # the account's language: the dropdown
        marketing = [r for r in get_consent(s, new.id).history if r.purpose == "marketing"]
        proof = json.loads(marketing[0].proof or "{}")
        assert (proof["text"], proof["language"]) == (hungarian, "hu")  # what the visitor read


def test_without_the_consent_box_no_consent_is_recorded(
    client: TestClient, database: Database, world: World, code: str
) -> None:
    client.post(f"/r/{code}", data=_form(client, f"/r/{code}"), follow_redirects=False)
    with database.unit_of_work(write=False) as s:
        new = next(c for c in list_customers(s, limit=100).items if c.email == "lan.tran@example.vn")
        assert [r for r in get_consent(s, new.id).history if r.purpose == "marketing"] == []


def test_self_referral_by_the_same_phone_is_rejected_by_the_guard(
    client: TestClient, database: Database, world: World, code: str
) -> None:
    form = _form(client, f"/r/{code}", email="an.second@example.vn", phone="0912 345 678")
    assert client.post(f"/r/{code}", data=form, follow_redirects=False).status_code == 303
    deliver_all(database)
    with database.unit_of_work(write=False) as s:
        summary = referral_summary(s, world.members["vi"])
        assert (summary.pending, summary.converted, summary.rejected) == (0, 0, 1)
        assert get_account(s, world.members["vi"]).available == 800  # no referral points


def test_an_unknown_code_still_offers_sign_up_without_a_referral(
    client: TestClient, database: Database, world: World
) -> None:
    page = client.get("/r/ZZZZ-ZZZZ", headers={"Accept-Language": "hu"})
    assert page.status_code == 200
    assert "Ez a meghívólink nem érvényes, de szívesen látjuk Önt." in page.text
    form = _form(client, "/r/ZZZZ-ZZZZ", language="hu", country="HU", email="uj@example.hu")
    assert client.post("/r/ZZZZ-ZZZZ", data=form, follow_redirects=False).status_code == 303
    with database.unit_of_work(write=False) as s:
        new = next(c for c in list_customers(s, limit=100).items if c.email == "uj@example.hu")
        assert new.referral_code is None


def test_a_known_email_gets_a_neutral_page_no_session_and_no_duplicate(
    client: TestClient, database: Database, world: World, code: str
) -> None:
    before = _customers(database)
    form = _form(client, f"/r/{code}", email="ANNA.KOVACS@example.hu", first_name="Mallory", marketing="yes")
    response = client.post(f"/r/{code}", data=form, headers={"Accept-Language": "vi"}, follow_redirects=False)
    assert response.status_code == 200
    assert "Chúng tôi đã nhận được thông tin của bạn." in response.text
    assert "patron_portal=" not in response.headers.get("set-cookie", "")
    assert "Anna" not in response.text
    assert _customers(database) == before
    with database.unit_of_work(write=False) as s:
        # nothing of the existing customer changed but a note on their timeline for staff
        assert [r for r in get_consent(s, world.members["hu"]).history if r.purpose == "marketing"] == []
        kinds = [i.kind for i in list_timeline(s, world.members["hu"]).items]
        assert "portal.signup_repeated" in kinds
    assert client.get("/portal").status_code == 401


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "not-an-email", "Hãy nhập địa chỉ email hợp lệ."),
        ("first_name", "", "Hãy nhập tên của bạn."),
        ("phone", "12", "Hãy nhập số điện thoại hợp lệ, ví dụ +84 912 345 678."),
        ("country", "XX", "Hãy chọn quốc gia của bạn."),
    ],
)
def test_invalid_input_is_shown_in_the_form_language_and_creates_nothing(
    client: TestClient, database: Database, world: World, code: str, field: str, value: str, message: str
) -> None:
    before = _customers(database)
    form = _form(client, f"/r/{code}", **{field: value})
    response = client.post(f"/r/{code}", data=form, headers={"Accept-Language": "vi"})
    assert response.status_code == 422
    assert message in response.text
    assert f'value="{form["email"]}"' in response.text or field == "email"  # the form keeps the input
    assert _customers(database) == before


def test_sign_up_needs_the_forms_csrf_token(
    client: TestClient, database: Database, world: World, code: str
) -> None:
    before = _customers(database)
    form = _form(client, f"/r/{code}")
    del form["csrf_token"]
    assert client.post(f"/r/{code}", data=form).status_code == 403
    form["csrf_token"] = "forged-token-value"
    assert client.post(f"/r/{code}", data=form).status_code == 403
    fresh = TestClient(client.app)  # no double-submit cookie at all
    assert fresh.post(f"/r/{code}", data={**form, "csrf_token": ""}).status_code == 403
    assert _customers(database) == before
    with database.unit_of_work(write=False) as s:
        from patron.customers.models import Customer

        assert s.scalar(select(func.count()).select_from(Customer)) == len(before)
