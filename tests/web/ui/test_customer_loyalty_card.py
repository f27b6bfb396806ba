"""The loyalty card on the customer 360 page: balances, tier progress in the viewer's language,
points expiring within 30 days with their date, the last movements, and the staff actions (adjust,
redeem a reward exactly once however often the form is sent) with their permissions."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from patron.auth import Role
from patron.commerce import place_order
from patron.core.clock import FrozenClock, now, use_clock
from patron.core.db import Database
from patron.core.i18n import gettext_for
from patron.customers import CustomerCreateInput, create_customer
from patron.loyalty import (
    adjust_points,
    create_reward,
    create_rule,
    create_tier,
    expiring_points_of,
    get_account,
    list_redemptions,
    report_event,
    update_programme,
)
from tests.commerce.conftest import order_input
from tests.loyalty.conftest import deliver, setup_loyalty
from tests.web.ui.conftest import csrf_of, post_form

Console = Callable[[Role | str], TestClient]


def _speak(client: TestClient, language: str) -> None:
    """Choose the console language with the language switcher (a cookie on this browser)."""
    post_form(client, "/loyalty", "/language", {"language": language, "next": "/loyalty"})


def _dd(html: str, element_id: str) -> str:
    match = re.search(rf'<dd id="{element_id}">(.*?)</dd>', html, re.S)
    assert match is not None, element_id
    return re.sub(r"<[^>]+>", " ", match.group(1)).strip()


@pytest.fixture
def anna(database: Database) -> dict[str, str]:
    """A member with 150 bonus points (Silver at 100; Gold at 1,500), 40 points that expire within
    30 days, and 62 points pending from an order still in its return window."""
    with database.unit_of_work() as s:
        setup_loyalty(s)
        create_tier(s, {"code": "silver", "rank": 1, "threshold": 100, "names": {"en": "Silver"}})
        create_tier(
            s,
            {
                "code": "gold",
                "rank": 2,
                "threshold": 1500,
                "names": {"en": "Gold", "vi": "Vàng", "hu": "Arany", "th": "โกลด์"},
            },
        )
        create_rule(s, {"name": "Review", "kind": "bonus", "points": 150, "event_type": "review"})
        customer = create_customer(
            s,
            CustomerCreateInput(first_name="Anna", last_name="Kovács", email="anna@example.hu", country="HU"),
        ).id
        with use_clock(FrozenClock(now() - timedelta(days=350))):
            adjust_points(s, customer, 40, reason="goodwill")  # its lot expires in about 15 days
        report_event(s, customer, "review", occurred_at=now() - timedelta(hours=1))
        order = order_input(
            customer,
            currency="HUF",
            placed_at=(now() - timedelta(minutes=5)).isoformat(),
            lines=[
                {"sku": "TEA-1", "name": "Green tea", "quantity": 2, "unit_price": "2500"},
                {"sku": "CUP-1", "name": "Cup", "quantity": 1, "unit_price": "1200"},
            ],
        )
        place_order(s, order, emit_events=True)
        deliver(s, "order.placed")
        tote = create_reward(
            s, {"kind": "gift", "names": {"en": "Tote bag", "th": "กระเป๋าผ้า"}, "cost_points": 100}
        ).id
        create_reward(s, {"kind": "gift", "names": {"en": "Espresso machine"}, "cost_points": 5000})
    return {"customer": customer, "tote": tote}


def test_card_shows_balances_tier_progress_and_expiry(console: Console, anna: dict[str, str]) -> None:
    page = console(Role.AGENT).get(f"/customers/{anna['customer']}")
    assert page.status_code == 200
    html = page.text
    assert _dd(html, "loyalty-available") == "190"
    assert _dd(html, "loyalty-pending") == "62"
    assert _dd(html, "loyalty-debt") == "0"
    assert _dd(html, "loyalty-tier") == "Silver"
    assert _dd(html, "loyalty-progress") == "1,350 points to Gold"
    assert "40 points on" in _dd(html, "loyalty-expiring")
    assert f'href="/loyalty/members/{anna["customer"]}"' in html
    kinds = re.findall(r'<tr data-entry="(\w+)">', html)
    assert kinds == ["earn", "earn", "adjust"]  # the order (pending), the review bonus, the goodwill
    assert "{# portal-link" not in html  # the template comment stays a comment
    # an agent reads but may not change points: no forms, and posting is refused
    assert 'id="card-adjust-form"' not in html
    assert 'id="card-redeem-form"' not in html


def test_progress_and_dates_in_vietnamese_and_thai(
    console: Console, anna: dict[str, str], database: Database
) -> None:
    viewer = console(Role.VIEWER)
    _speak(viewer, "vi")
    vi = viewer.get(f"/customers/{anna['customer']}").text
    expected_vi = gettext_for("vi")("%(points)s points to %(tier)s") % {"points": "1.350", "tier": "Vàng"}
    assert expected_vi != "1.350 points to Vàng"  # the catalog translates it
    assert _dd(vi, "loyalty-progress") == expected_vi
    _speak(viewer, "th")
    th = viewer.get(f"/customers/{anna['customer']}").text
    expected_th = gettext_for("th")("%(points)s points to %(tier)s") % {"points": "1,350", "tier": "โกลด์"}
    assert expected_th != "1,350 points to โกลด์"
    assert _dd(th, "loyalty-progress") == expected_th
    with database.unit_of_work(write=False) as s:
        (lot,) = expiring_points_of(s, anna["customer"], within_days=30)
    assert str(lot.expires_at.year + 543) in _dd(th, "loyalty-expiring")  # Buddhist era
    assert str(lot.expires_at.year + 543) not in _dd(vi, "loyalty-expiring")


def test_staff_redeem_exactly_once_on_double_submit(
    console: Console, anna: dict[str, str], database: Database
) -> None:
    marketer = console(Role.MARKETER)
    url = f"/customers/{anna['customer']}"
    page = marketer.get(url)
    options = re.findall(
        r'<option value="([^"]+)">([^<]+)</option>',
        page.text.split('id="card-redeem-form"')[1].split("</form>")[0],
    )
    assert [rid for rid, _ in options] == [anna["tote"]]  # the 5,000-point machine is out of reach
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    form = {"csrf_token": csrf_of(page.text), "idempotency_key": key, "reward_id": anna["tote"]}
    first = marketer.post(f"{url}/loyalty/redeem", data=form, follow_redirects=False)
    second = marketer.post(f"{url}/loyalty/redeem", data=form, follow_redirects=False)
    assert first.headers["location"] == second.headers["location"] == f"{url}?flash=reward_redeemed#loyalty"
    with database.unit_of_work(write=False) as s:
        assert get_account(s, anna["customer"]).available == 90
        (redemption,) = list_redemptions(s, anna["customer"])
    assert redemption.reward_id == anna["tote"]
    after = marketer.get(url).text
    assert redemption.code in _dd(after, "loyalty-codes")
    # a fresh form draws a new key, so a second redemption is a new one: refused, the points are short
    fresh = marketer.get(url).text
    assert re.search(r'name="idempotency_key" value="([^"]+)"', fresh).group(1) != key  # type: ignore[union-attr]
    assert "No reward is available for this customer's points now." in fresh
    short = marketer.post(
        f"{url}/loyalty/redeem",
        data={"csrf_token": csrf_of(fresh), "idempotency_key": "another-key", "reward_id": anna["tote"]},
        follow_redirects=False,
    )
    assert short.status_code == 409
    assert "The customer does not have enough points." in short.text
    with database.unit_of_work(write=False) as s:
        assert len(list_redemptions(s, anna["customer"])) == 1
        assert get_account(s, anna["customer"]).available == 90


def test_adjust_from_the_card_and_permissions(
    console: Console, anna: dict[str, str], database: Database
) -> None:
    owner = console(Role.OWNER)
    url = f"/customers/{anna['customer']}"
    done = post_form(owner, url, f"{url}/loyalty/adjust", {"points": "-30", "reason": "duplicate bonus"})
    assert done.headers["location"] == f"{url}?flash=card_points_adjusted#loyalty"  # type: ignore[attr-defined]
    too_much = post_form(owner, url, f"{url}/loyalty/adjust", {"points": "-5000", "reason": "oops"})
    assert too_much.status_code == 409  # type: ignore[attr-defined]
    assert 'id="loyalty"' in too_much.text  # type: ignore[attr-defined]
    not_a_number = post_form(owner, url, f"{url}/loyalty/adjust", {"points": "ten", "reason": "x"})
    assert not_a_number.status_code == 422  # type: ignore[attr-defined]
    assert "Enter a whole number." in not_a_number.text  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        assert get_account(s, anna["customer"]).available == 160
    agent = console(Role.AGENT)
    for action, data in (
        ("adjust", {"points": "5", "reason": "x"}),
        ("redeem", {"reward_id": anna["tote"], "idempotency_key": "k"}),
    ):
        refused = post_form(agent, url, f"{url}/loyalty/{action}", data)
        assert refused.status_code == 403, action  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        assert get_account(s, anna["customer"]).available == 160
        assert list_redemptions(s, anna["customer"]) == []


def test_opt_in_programme_and_anonymous(
    client: TestClient, console: Console, anna: dict[str, str], database: Database
) -> None:
    with database.unit_of_work() as s:
        update_programme(s, enrolment="opt_in")
        other = create_customer(s, CustomerCreateInput(first_name="Béla", last_name="Nagy", country="HU")).id
    page = console(Role.OWNER).get(f"/customers/{other}")
    assert 'id="loyalty-not-enrolled"' in page.text
    assert 'id="card-redeem-form"' not in page.text
    for action in ("adjust", "redeem"):
        response = client.post(f"/customers/{other}/loyalty/{action}", data={}, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")


def test_portal_link_actions_on_the_card(console: Console, anna: dict[str, str]) -> None:
    """Staff who may operate loyalty see the portal-link actions under the card and can issue a link
    from them; an agent sees neither the card's actions nor the portal link."""
    owner = console(Role.OWNER)
    url = f"/customers/{anna['customer']}"
    page = owner.get(url)
    assert 'id="portal-link"' in page.text
    assert f'action="/customers/{anna["customer"]}/portal-link"' in page.text
    issued = post_form(owner, url, f"{url}/portal-link", {})
    assert issued.status_code == 200  # type: ignore[attr-defined]
    link = re.search(r'id="portal-link-url" value="([^"]+)"', issued.text)  # type: ignore[attr-defined]
    assert link is not None
    assert "/portal/t/" in link.group(1)
    assert 'id="portal-link"' not in console(Role.AGENT).get(url).text


def _form_key(html: str, form_id: str) -> str:
    form = html.split(f'id="{form_id}"')[1].split("</form>")[0]
    match = re.search(r'name="idempotency_key" value="([^"]+)"', form)
    assert match is not None, form_id
    return match.group(1)


def test_staff_adjust_exactly_once_on_double_submit(
    console: Console, anna: dict[str, str], database: Database
) -> None:
    """The adjustment form carries a key drawn with the page: sent twice, it adjusts once; sent again
    with other values it is refused; another user's form with the same key value is their own."""
    marketer = console(Role.MARKETER)
    url = f"/customers/{anna['customer']}"
    page = marketer.get(url).text
    key = _form_key(page, "card-adjust-form")
    assert key != _form_key(page, "card-redeem-form")
    form = {"csrf_token": csrf_of(page), "idempotency_key": key, "points": "25", "reason": "late delivery"}
    first = marketer.post(f"{url}/loyalty/adjust", data=form, follow_redirects=False)
    second = marketer.post(f"{url}/loyalty/adjust", data=form, follow_redirects=False)
    assert (first.status_code, second.status_code) == (303, 303)
    assert (
        first.headers["location"] == second.headers["location"] == f"{url}?flash=card_points_adjusted#loyalty"
    )
    with database.unit_of_work(write=False) as s:
        assert get_account(s, anna["customer"]).available == 215  # 190 + 25, once
    reused = marketer.post(
        f"{url}/loyalty/adjust", data={**form, "reason": "something else"}, follow_redirects=False
    )
    assert reused.status_code == 409
    assert "This form was already used. Reload the page and try again." in reused.text
    assert _form_key(marketer.get(url).text, "card-adjust-form") != key  # a fresh form, a new key
    # keys are scoped to the user: the owner's form with the same key value is a new adjustment
    owner = console(Role.OWNER)
    owner_page = owner.get(url).text
    again = owner.post(
        f"{url}/loyalty/adjust", data={**form, "csrf_token": csrf_of(owner_page)}, follow_redirects=False
    )
    assert again.status_code == 303
    with database.unit_of_work(write=False) as s:
        assert get_account(s, anna["customer"]).available == 240
    too_long = post_form(
        owner, url, f"{url}/loyalty/adjust", {"idempotency_key": "k" * 101, "points": "5", "reason": "x"}
    )
    assert too_long.status_code == 422  # type: ignore[attr-defined]
    assert "This form has expired." in too_long.text  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        assert get_account(s, anna["customer"]).available == 240


def test_redeem_keys_are_scoped_to_the_user(
    console: Console, anna: dict[str, str], database: Database
) -> None:
    """Two staff members whose forms happen to carry the same key value redeem twice, not once."""
    with database.unit_of_work() as s:
        adjust_points(s, anna["customer"], 100, reason="top-up")  # 290: two totes at 100
    url = f"/customers/{anna['customer']}"
    for role in (Role.MARKETER, Role.OWNER):
        done = post_form(
            console(role),
            url,
            f"{url}/loyalty/redeem",
            {"idempotency_key": "same", "reward_id": anna["tote"]},
        )
        assert done.headers["location"] == f"{url}?flash=reward_redeemed#loyalty", role  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        assert len(list_redemptions(s, anna["customer"])) == 2
        assert get_account(s, anna["customer"]).available == 90


def test_card_movements_use_the_locale_number_format(
    console: Console, anna: dict[str, str], database: Database
) -> None:
    with database.unit_of_work() as s:
        adjust_points(s, anna["customer"], 2500, reason="migration")
        adjust_points(s, anna["customer"], -1200, reason="correction")
    viewer = console(Role.VIEWER)
    url = f"/customers/{anna['customer']}"

    def movements(html: str) -> list[str]:
        table = html.split('id="loyalty-entries"')[1].split("</table>")[0]
        return [
            re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r'<td class="num">(.*?)</td>', table)
        ]

    assert movements(viewer.get(url).text)[:2] == ["-1,200", ""]
    assert movements(viewer.get(url).text)[2:4] == ["+2,500", ""]
    _speak(viewer, "vi")
    assert movements(viewer.get(url).text)[:4] == ["-1.200", "", "+2.500", ""]
