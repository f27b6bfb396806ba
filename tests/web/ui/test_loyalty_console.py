"""Loyalty configuration pages in the console: edit (a stale form is refused with 412), deactivate or
delete tiers, earning rules, rewards and promotions; promotion codes and their CSV; market earning
settings; the reconciliation; an authorisation matrix for every page and action."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, event, update

from patron.auth import Role
from patron.core.audit import list_audit
from patron.core.db import Database
from patron.core.i18n import gettext_for
from patron.customers import CustomerCreateInput, create_customer
from patron.loyalty import (
    adjust_points,
    create_promotion,
    create_reward,
    create_rule,
    create_tier,
    generate_coupons,
    get_account,
    get_market_settings,
    get_programme,
    get_promotion,
    get_reward,
    get_rule,
    list_rules,
    list_tiers,
    redeem_coupon,
    tier_name,
)
from patron.loyalty.models import LoyaltyProgramme
from tests.loyalty.conftest import setup_loyalty
from tests.web.ui.conftest import csrf_of, post_form

Console = Callable[[Role | str], TestClient]


def _speak(client: TestClient, language: str) -> None:
    """Choose the console language with the language switcher (a cookie on this browser)."""
    post_form(client, "/loyalty", "/language", {"language": language, "next": "/loyalty"})


_VERSION = re.compile(r'name="version" value="(\d+)"')


@pytest.fixture
def setup(database: Database) -> dict[str, str]:
    with database.unit_of_work() as s:
        setup_loyalty(s)
        create_tier(s, {"code": "silver", "rank": 1, "threshold": 100, "names": {"en": "Silver"}})
        create_tier(s, {"code": "gold", "rank": 2, "threshold": 500, "names": {"en": "Gold", "vi": "Vàng"}})
        customer = create_customer(
            s,
            CustomerCreateInput(first_name="Anna", last_name="Kovács", email="anna@example.hu", country="HU"),
        ).id
        adjust_points(s, customer, 40, reason="welcome")
        rule = create_rule(s, {"name": "Tea x2", "kind": "multiplier", "multiplier": "2"}).id
        reward = create_reward(
            s, {"kind": "gift", "names": {"en": "Tote bag"}, "cost_points": 300, "stock": 5}
        ).id
        promotion = create_promotion(
            s, {"name": "Songkran", "discount_kind": "percent", "percent": "10", "usage": "single_use"}
        ).id
        codes = sorted(generate_coupons(s, promotion, 3, prefix="SK"))
        redeem_coupon(s, codes[0], order_total=Decimal(500), currency="THB")
    return {"customer": customer, "rule": rule, "reward": reward, "promotion": promotion, "used": codes[0]}


def _post(client: TestClient, page_url: str, url: str, data: dict[str, str], *, version: bool = True):  # type: ignore[no-untyped-def]
    """Open the page, take its CSRF token and the version it shows, post ``data`` (no redirects)."""
    page = client.get(page_url)
    assert page.status_code == 200, page.text
    fields = {"csrf_token": csrf_of(page.text), **data}
    if version and "version" not in data:
        fields["version"] = _VERSION.search(page.text).group(1)  # type: ignore[union-attr]
    return client.post(url, data=fields, follow_redirects=False)


def _pages(ids: dict[str, str]) -> list[str]:
    return [
        "/loyalty/tiers/gold",
        f"/loyalty/rules/{ids['rule']}",
        f"/loyalty/rewards/{ids['reward']}",
        f"/loyalty/promotions/{ids['promotion']}",
        f"/loyalty/promotions/{ids['promotion']}/codes.csv",
        "/loyalty/markets/HU",
        "/loyalty/reconciliation?run=1",
    ]


def _actions(ids: dict[str, str]) -> list[tuple[str, str, dict[str, str]]]:
    """(page, action, data) of every configuration change, in an order that can all succeed."""
    return [
        ("/loyalty/tiers/gold", "/loyalty/tiers/gold", {"rank": "2", "threshold": "600", "name_en": "Gold"}),
        (
            f"/loyalty/rules/{ids['rule']}",
            f"/loyalty/rules/{ids['rule']}",
            {"name": "Tea x3", "kind": "multiplier", "multiplier": "3", "active": "on"},
        ),
        (f"/loyalty/rules/{ids['rule']}", f"/loyalty/rules/{ids['rule']}/active", {"active": "0"}),
        (
            f"/loyalty/rewards/{ids['reward']}",
            f"/loyalty/rewards/{ids['reward']}",
            {"kind": "gift", "name_en": "Tote", "cost_points": "250", "active": "on"},
        ),
        (f"/loyalty/rewards/{ids['reward']}", f"/loyalty/rewards/{ids['reward']}/active", {"active": "0"}),
        (
            f"/loyalty/promotions/{ids['promotion']}",
            f"/loyalty/promotions/{ids['promotion']}",
            {
                "name": "Songkran 2026",
                "discount_kind": "percent",
                "percent": "15",
                "usage": "single_use",
                "active": "on",
            },
        ),
        (
            f"/loyalty/promotions/{ids['promotion']}",
            f"/loyalty/promotions/{ids['promotion']}/active",
            {"active": "0"},
        ),
        (
            "/loyalty/markets/HU",
            "/loyalty/markets/HU",
            {"earn_points": "2", "earn_spend_amount": "100", "earn_base": "net", "point_value_amount": "1"},
        ),
        (f"/loyalty/rules/{ids['rule']}", f"/loyalty/rules/{ids['rule']}/delete", {}),
        ("/loyalty/tiers/silver", "/loyalty/tiers/silver/delete", {}),
    ]


def test_anonymous_visitors_are_sent_to_login(client: TestClient, setup: dict[str, str]) -> None:
    for url in _pages(setup):
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/login?next="), url
    for _, action, data in _actions(setup):
        response = client.post(action, data=data, follow_redirects=False)
        assert response.status_code == 303, action
        assert response.headers["location"].startswith("/login"), action


def test_viewer_reads_but_cannot_change(console: Console, setup: dict[str, str], database: Database) -> None:
    viewer = console(Role.VIEWER)
    for url in _pages(setup):
        page = viewer.get(url)
        assert page.status_code == 200, url
        assert "-edit-form" not in page.text, url
        assert 'id="market-form"' not in page.text, url
    for page_url, action, data in _actions(setup):
        refused = _post(viewer, page_url, action, data, version=False)
        assert refused.status_code == 403, action  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        assert [t.code for t in list_tiers(s)] == ["silver", "gold"]
        assert get_rule(s, setup["rule"]).name == "Tea x2"


@pytest.mark.parametrize("role", [Role.OWNER, Role.MARKETER])
def test_owner_and_marketer_change_everything(
    console: Console, setup: dict[str, str], database: Database, role: Role
) -> None:
    staff = console(role)
    for page_url, action, data in _actions(setup):
        done = _post(staff, page_url, action, data)
        assert done.status_code == 303, (action, done.text)  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        assert [t.code for t in list_tiers(s)] == ["gold"]
        assert list_rules(s) == []
        reward = get_reward(s, setup["reward"])
        assert (reward.names, reward.cost_points, reward.active) == ({"en": "Tote"}, 250, False)
        promotion = get_promotion(s, setup["promotion"])
        assert (promotion.name, promotion.percent, promotion.active) == ("Songkran 2026", Decimal(15), False)
        assert get_market_settings(s, "HU").earn_points == 2
        actions = {a.action for a in list_audit(s, limit=200)}
    assert actions >= {
        "loyalty.tier_updated",
        "loyalty.tier_deleted",
        "loyalty.rule_updated",
        "loyalty.rule_deleted",
        "loyalty.reward_updated",
        "loyalty.promotion_updated",
        "loyalty.market_settings",
    }


def test_tier_edit_translations_stale_form_and_delete(
    console: Console, setup: dict[str, str], database: Database
) -> None:
    owner = console(Role.OWNER)
    page = owner.get("/loyalty/tiers/gold")
    version = _VERSION.search(page.text).group(1)  # type: ignore[union-attr]
    csrf = csrf_of(page.text)
    form = {
        "csrf_token": csrf,
        "version": version,
        "rank": "2",
        "threshold": "500",
        "multiplier": "1.5",
        "name_en": "Gold",
        "name_vi": "Vàng",
        "name_hu": "Arany",
        "name_th": "ทอง",
        "perks": "Free shipping\nTasting events",
    }
    saved = owner.post("/loyalty/tiers/gold", data=form, follow_redirects=False)
    assert saved.headers["location"] == "/loyalty/tiers/gold?flash=tier_saved"
    with database.unit_of_work(write=False) as s:
        (gold,) = [t for t in list_tiers(s) if t.code == "gold"]
        assert (tier_name(gold, "th"), tier_name(gold, "hu"), gold.multiplier) == (
            "ทอง",
            "Arany",
            Decimal("1.5"),
        )
        assert gold.perks == ["Free shipping", "Tasting events"]
    # the same form again carries the old version: refused, nothing changes, the page says why
    stale = owner.post("/loyalty/tiers/gold", data={**form, "name_th": "โกลด์"}, follow_redirects=False)
    assert stale.status_code == 412
    assert "Someone else changed this record" in stale.text
    assert 'value="โกลด์"' in stale.text  # the user's input is kept
    with database.unit_of_work(write=False) as s:
        assert tier_name(next(t for t in list_tiers(s) if t.code == "gold"), "th") == "ทอง"
    # invalid input: field errors in the viewer's language
    bad = _post(
        owner, "/loyalty/tiers/gold", "/loyalty/tiers/gold", {"rank": "x", "threshold": "5", "name_en": "G"}
    )
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert "Enter a whole number." in bad.text  # type: ignore[attr-defined]
    duplicate = _post(
        owner, "/loyalty/tiers/gold", "/loyalty/tiers/gold", {"rank": "1", "threshold": "5", "name_en": "G"}
    )
    assert duplicate.status_code == 409  # type: ignore[attr-defined]
    assert "Another tier already has this code or rank." in duplicate.text  # type: ignore[attr-defined]
    _speak(owner, "vi")
    bad_vi = _post(
        owner,
        "/loyalty/tiers/gold",
        "/loyalty/tiers/gold",
        {"rank": "9999", "threshold": "5", "name_en": "G"},
    )
    assert bad_vi.status_code == 422  # type: ignore[attr-defined]
    out_of_range = gettext_for("vi")("This value is out of range.")
    assert out_of_range != "This value is out of range."
    assert out_of_range in bad_vi.text  # type: ignore[attr-defined]
    _speak(owner, "en")
    # a stale delete is refused too; a fresh one deletes and keeps the member's ledger
    stale_delete = owner.post(
        "/loyalty/tiers/gold/delete", data={"csrf_token": csrf, "version": version}, follow_redirects=False
    )
    assert stale_delete.status_code == 412
    deleted = _post(owner, "/loyalty/tiers/gold", "/loyalty/tiers/gold/delete", {})
    assert deleted.headers["location"] == "/loyalty?flash=tier_deleted#tiers"  # type: ignore[attr-defined]
    assert owner.get("/loyalty/tiers/gold").status_code == 404
    with database.unit_of_work(write=False) as s:
        assert [t.code for t in list_tiers(s)] == ["silver"]
        assert get_account(s, setup["customer"]).available == 40


def test_rule_edit_with_conditions_deactivate_and_refusals(
    console: Console, setup: dict[str, str], database: Database
) -> None:
    owner = console(Role.MARKETER)
    url = f"/loyalty/rules/{setup['rule']}"
    saved = _post(
        owner,
        url,
        url,
        {
            "name": "Double tea week",
            "kind": "multiplier",
            "multiplier": "2",
            "categories": "Tea, Gift sets",
            "markets": "VN",
            "tiers": "gold",
            "starts_on": "2026-04-01",
            "ends_on": "2026-04-08",
            "active": "on",
        },
    )
    assert saved.status_code == 303  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        rule = get_rule(s, setup["rule"])
    # dates are days in the business time zone (Budapest, UTC+2 in April)
    assert rule.conditions == {
        "categories": ["Gift sets", "Tea"],
        "markets": ["VN"],
        "tiers": ["gold"],
        "starts_at": "2026-03-31T22:00:00+00:00",
        "ends_at": "2026-04-07T22:00:00+00:00",
    }
    page = owner.get(url)
    assert 'value="2026-04-01"' in page.text
    assert 'value="2026-04-08"' in page.text
    backwards = _post(
        owner,
        url,
        url,
        {
            "name": "X",
            "kind": "multiplier",
            "multiplier": "2",
            "starts_on": "2026-05-01",
            "ends_on": "2026-04-01",
        },
    )
    assert backwards.status_code == 422  # type: ignore[attr-defined]
    assert "The end must be after the start." in backwards.text  # type: ignore[attr-defined]
    no_event = _post(owner, url, url, {"name": "Bonus", "kind": "bonus", "points": "50"})
    assert no_event.status_code == 422  # type: ignore[attr-defined]
    assert "A bonus needs an event type" in no_event.text  # type: ignore[attr-defined]
    off = _post(owner, url, f"{url}/active", {"active": "0"})
    assert off.status_code == 303  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        rule = get_rule(s, setup["rule"])
        assert (rule.active, rule.name, rule.conditions["markets"]) == (False, "Double tea week", ["VN"])
    assert "Inactive" in owner.get(url).text
    stale = owner.post(
        f"{url}/delete",
        data={"csrf_token": csrf_of(owner.get(url).text), "version": str(rule.version - 1)},
        follow_redirects=False,
    )
    assert stale.status_code == 412
    with database.unit_of_work(write=False) as s:
        assert get_rule(s, setup["rule"]).version == rule.version


def test_reward_edit_translations_availability_and_withdrawal(
    console: Console, setup: dict[str, str], database: Database
) -> None:
    owner = console(Role.OWNER)
    url = f"/loyalty/rewards/{setup['reward']}"
    saved = _post(
        owner,
        url,
        url,
        {
            "kind": "discount_fixed",
            "name_en": "50,000 VND voucher",
            "name_vi": "Phiếu mua hàng 50.000 ₫",
            "name_th": "บัตรกำนัล 50,000 ดอง",
            "description_vi": "Dùng cho đơn tiếp theo",
            "cost_points": "500",
            "stock": "10",
            "limit_per_customer": "2",
            "value_amount": "50000",
            "currency": "vnd",
            "markets": "VN",
            "tiers": "gold",
            "active": "on",
        },
    )
    assert saved.status_code == 303, saved.text  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        reward = get_reward(s, setup["reward"])
    assert (reward.kind, reward.value_amount, reward.currency, reward.stock) == (
        "discount_fixed",
        Decimal(50000),
        "VND",
        10,
    )
    assert reward.names["th"] == "บัตรกำนัล 50,000 ดอง"
    assert reward.descriptions == {"vi": "Dùng cho đơn tiếp theo"}
    assert (reward.markets, reward.tiers, reward.limit_per_customer) == (["VN"], ["gold"], 2)
    no_currency = _post(
        owner, url, url, {"kind": "discount_fixed", "name_en": "V", "cost_points": "5", "value_amount": "5"}
    )
    assert no_currency.status_code == 422  # type: ignore[attr-defined]
    assert "Enter a known currency code" in no_currency.text  # type: ignore[attr-defined]
    withdrawn = _post(owner, url, f"{url}/active", {"active": "0"})
    assert withdrawn.status_code == 303  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        reward = get_reward(s, setup["reward"])
    assert (reward.active, reward.names["th"], reward.stock) == (False, "บัตรกำนัล 50,000 ดอง", 10)
    again = _post(owner, url, f"{url}/active", {"active": "1"})
    assert again.status_code == 303  # type: ignore[attr-defined]
    stale = owner.post(
        f"{url}/active",
        data={"csrf_token": csrf_of(owner.get(url).text), "version": "1", "active": "0"},
        follow_redirects=False,
    )
    assert stale.status_code == 412
    with database.unit_of_work(write=False) as s:
        assert get_reward(s, setup["reward"]).active is True


def test_promotion_codes_csv_edit_and_stop(
    console: Console, setup: dict[str, str], database: Database
) -> None:
    marketer = console(Role.MARKETER)
    url = f"/loyalty/promotions/{setup['promotion']}"
    page = marketer.get(url)
    assert page.status_code == 200
    used_row = re.search(rf'<tr data-code="{setup["used"]}">(.*?)</tr>', page.text, re.S)
    assert used_row is not None
    assert "Used up" in used_row.group(1)
    assert page.text.count("Not used") == 2
    exported = marketer.get(f"{url}/codes.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["code", "redemptions", "status", "customer_id"]
    assert sorted((r[1], r[2]) for r in rows[1:]) == [("0", "unused"), ("0", "unused"), ("1", "used_up")]
    generated = _post(marketer, url, f"{url}/codes", {"count": "4", "prefix": "NEW"}, version=False)
    assert generated.status_code == 303  # type: ignore[attr-defined]
    assert len(list(csv.reader(io.StringIO(marketer.get(f"{url}/codes.csv").text)))) == 1 + 7
    saved = _post(
        marketer,
        url,
        url,
        {
            "name": "Songkran",
            "discount_kind": "fixed",
            "amount": "50",
            "currency": "THB",
            "min_spend": "THB 500\nVND 200000",
            "markets": "TH",
            "usage": "multi_use",
            "max_redemptions": "3",
            "limit_per_customer": "1",
            "starts_on": "2026-04-10",
            "expires_on": "2026-04-20",
            "stackable": "on",
            "active": "on",
        },
    )
    assert saved.status_code == 303, saved.text  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        promotion = get_promotion(s, setup["promotion"])
    assert (promotion.discount_kind, promotion.amount, promotion.currency) == ("fixed", Decimal(50), "THB")
    assert promotion.min_spend == {"THB": Decimal(500), "VND": Decimal(200000)}
    assert (promotion.usage, promotion.max_redemptions, promotion.stackable) == ("multi_use", 3, True)
    assert promotion.markets == ["TH"]
    bad = _post(
        marketer, url, url, {"name": "S", "discount_kind": "percent", "percent": "10", "min_spend": "lots"}
    )
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert "one currency and amount per line" in bad.text  # type: ignore[attr-defined]
    stopped = _post(marketer, url, f"{url}/active", {"active": "0"})
    assert stopped.status_code == 303  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        promotion = get_promotion(s, setup["promotion"])
    assert (promotion.active, promotion.min_spend["THB"]) == (False, Decimal(500))
    assert "Inactive" in marketer.get("/loyalty").text


def test_market_settings_stale_and_new_market(
    console: Console, setup: dict[str, str], database: Database
) -> None:
    owner = console(Role.OWNER)
    index = owner.get("/loyalty")
    assert 'href="/loyalty/markets/HU"' in index.text
    assert 'href="/loyalty/reconciliation"' in index.text
    page = owner.get("/loyalty/markets/HU")
    version = _VERSION.search(page.text).group(1)  # type: ignore[union-attr]
    data = {
        "csrf_token": csrf_of(page.text),
        "version": version,
        "earn_points": "1",
        "earn_spend_amount": "200",
        "earn_base": "total",
        "point_value_amount": "0.5",
        "cap_per_order": "500",
        "cap_per_day": "",
    }
    assert owner.post("/loyalty/markets/HU", data=data, follow_redirects=False).status_code == 303
    stale = owner.post(
        "/loyalty/markets/HU", data={**data, "earn_spend_amount": "300"}, follow_redirects=False
    )
    assert stale.status_code == 412
    with database.unit_of_work(write=False) as s:
        hu = get_market_settings(s, "HU")
    assert (hu.earn_spend_amount, hu.earn_base, hu.point_value_amount, hu.cap_per_order, hu.cap_per_day) == (
        Decimal(200),
        "total",
        Decimal("0.5"),
        500,
        None,
    )
    bad = _post(
        owner,
        "/loyalty/markets/HU",
        "/loyalty/markets/HU",
        {**{k: v for k, v in data.items() if k not in ("csrf_token", "version")}, "earn_spend_amount": "0"},
    )
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert owner.get("/loyalty/markets/XX").status_code == 404


def test_reconciliation_page(console: Console, setup: dict[str, str]) -> None:
    analyst = console(Role.ANALYST)
    before = analyst.get("/loyalty/reconciliation")
    assert before.status_code == 200
    assert 'id="reconciliation-result"' not in before.text
    ran = analyst.get("/loyalty/reconciliation?run=1")
    assert 'data-ok="true"' in ran.text
    assert "All 1 accounts agree with their ledger." in ran.text


def test_programme_settings_with_tiers_and_a_stale_form(
    console: Console, setup: dict[str, str], database: Database
) -> None:
    owner = console(Role.OWNER)
    page = owner.get("/loyalty")
    version = _VERSION.search(page.text).group(1)  # type: ignore[union-attr]
    form = {
        "csrf_token": csrf_of(page.text),
        "version": version,
        "enrolment": "automatic",
        "pending_days": "30",
        "expiry_policy": "end_of_year",
        "expiry_months": "12",
        "tier_basis": "spend",
        "tier_window": "calendar_year",
        "tier_window_months": "12",
        "tier_grace_days": "60",
    }
    assert owner.post("/loyalty", data=form, follow_redirects=False).status_code == 303
    stale = owner.post("/loyalty", data={**form, "pending_days": "1"}, follow_redirects=False)
    assert stale.status_code == 412
    assert "Someone else changed this record" in stale.text
    with database.unit_of_work(write=False) as s:
        programme = get_programme(s)
    assert (programme.pending_days, programme.expiry_policy, programme.tier_basis) == (
        30,
        "end_of_year",
        "spend",
    )
    assert (programme.tier_window, programme.tier_grace_days) == ("calendar_year", 60)
    bad = _post(
        owner, "/loyalty", "/loyalty", {**form, "tier_basis": "vibes"} | {"version": str(programme.version)}
    )
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert "Choose one of the options." in bad.text  # type: ignore[attr-defined]


def test_programme_save_that_loses_a_race_gets_the_412_page(
    console: Console, setup: dict[str, str], database: Database
) -> None:
    """Another transaction changes the programme between this request's read and its UPDATE: the 412
    page with the record's version, nothing of ours saved. On PostgreSQL that is a real concurrent
    commit; SQLite's write transactions begin IMMEDIATE, so there it cannot happen, and the change is
    made on the request's own connection at that moment (rolled back with the request's work)."""
    owner = console(Role.OWNER)
    page = owner.get("/loyalty")
    version = int(_VERSION.search(page.text).group(1))  # type: ignore[union-attr]
    with database.unit_of_work(write=False) as s:
        before = get_programme(s)
    table = LoyaltyProgramme.__table__
    concurrent = update(table).values(pending_days=9, version=table.c.version + 1)
    raced: list[bool] = []

    def meanwhile(_mapper: object, connection: Connection, _target: object) -> None:
        if raced:
            return
        raced.append(True)
        if database.dialect == "postgresql":
            with database.engine.begin() as other:
                other.execute(concurrent)
        else:
            connection.execute(concurrent)

    form = {
        "csrf_token": csrf_of(page.text),
        "version": str(version),
        "enrolment": "automatic",
        "pending_days": "30",
        "expiry_policy": "never",
        "expiry_months": "12",
    }
    event.listen(LoyaltyProgramme, "before_update", meanwhile)
    try:
        lost = owner.post("/loyalty", data=form, follow_redirects=False)
    finally:
        event.remove(LoyaltyProgramme, "before_update", meanwhile)
    assert raced == [True]
    assert lost.status_code == 412
    assert "Someone else changed this record" in lost.text
    assert 'value="30"' in lost.text  # the user's input is kept
    with database.unit_of_work(write=False) as s:
        programme = get_programme(s)
    assert f'name="version" value="{programme.version}"' in lost.text  # the record's version now
    if database.dialect == "postgresql":  # the concurrent change stands, ours was not written
        assert (programme.pending_days, programme.expiry_policy, programme.version) == (
            9,
            before.expiry_policy,
            version + 1,
        )
    else:
        assert programme == before


def test_programme_form_without_its_version_is_refused(
    console: Console, setup: dict[str, str], database: Database
) -> None:
    with database.unit_of_work(write=False) as s:
        before = get_programme(s)
    owner = console(Role.OWNER)
    refused = _post(owner, "/loyalty", "/loyalty", {"pending_days": "30"}, version=False)
    assert refused.status_code == 412  # type: ignore[attr-defined]
    assert "Someone else changed this record" in refused.text  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        assert get_programme(s) == before


def test_member_card_adjusts_once_on_double_submit(
    console: Console, setup: dict[str, str], database: Database
) -> None:
    marketer = console(Role.MARKETER)
    url = f"/loyalty/members/{setup['customer']}"
    page = marketer.get(url).text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = {"csrf_token": csrf_of(page), "idempotency_key": key, "points": "2500", "reason": "migration"}
    first = marketer.post(f"{url}/adjust", data=form, follow_redirects=False)
    second = marketer.post(f"{url}/adjust", data=form, follow_redirects=False)
    assert first.headers["location"] == second.headers["location"] == f"{url}?flash=points_adjusted"
    with database.unit_of_work(write=False) as s:
        assert get_account(s, setup["customer"]).available == 2540  # 40 + 2,500, once
    reused = marketer.post(f"{url}/adjust", data={**form, "reason": "another"}, follow_redirects=False)
    assert reused.status_code == 409
    assert "This form was already used. Reload the page and try again." in reused.text
    fresh = marketer.get(url).text
    assert re.search(r'name="idempotency_key" value="([^"]+)"', fresh).group(1) != key  # type: ignore[union-attr]
    ledger = fresh.split('id="ledger"')[1]
    assert '<td class="num">+2,500</td>' in ledger  # grouped as the language writes numbers
    _speak(marketer, "hu")
    ledger_hu = marketer.get(url).text.split('id="ledger"')[1]
    assert '<td class="num">+2\xa0500</td>' in ledger_hu
    with database.unit_of_work(write=False) as s:
        assert get_account(s, setup["customer"]).available == 2540
