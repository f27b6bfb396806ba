"""Loyalty console pages: programme settings, member card with ledger and adjustment, member lookup,
liability report; permissions per role."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from patron.auth import Role, create_user
from patron.core.db import Database
from patron.customers import CustomerCreateInput, create_customer
from patron.loyalty import (
    adjust_points,
    create_tier,
    get_account,
    get_programme,
    iter_coupons,
    list_promotions,
    list_rewards,
    list_rules,
    list_tiers,
)
from tests.loyalty.conftest import setup_loyalty
from tests.web.ui.conftest import PASSWORD, login, post_form

Console = Callable[[Role | str], TestClient]


@pytest.fixture
def console(app: object, database: Database) -> Iterator[Console]:
    clients: list[TestClient] = []

    def make(role: Role | str = Role.OWNER) -> TestClient:
        role = Role(role)
        with database.unit_of_work() as s:
            create_user(
                s, email=f"{role.value}.loyalty@example.com", password=PASSWORD, role=role, name=role.value
            )
        client = TestClient(app, raise_server_exceptions=True, base_url="http://testserver")  # type: ignore[arg-type]
        client.__enter__()
        clients.append(client)
        login(client, f"{role.value}.loyalty@example.com")
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def member(database: Database) -> str:
    with database.unit_of_work() as s:
        setup_loyalty(s)
        create_tier(s, {"code": "gold", "rank": 1, "threshold": 100, "names": {"en": "Gold", "vi": "Vàng"}})
        customer = create_customer(
            s,
            CustomerCreateInput(first_name="Anna", last_name="Kovács", email="anna@example.hu", country="HU"),
        ).id
        adjust_points(s, customer, 40, reason="welcome")
    return customer


def test_programme_page_and_settings(console: Console, member: str, database: Database) -> None:
    owner = console(Role.OWNER)
    page = owner.get("/loyalty")
    assert page.status_code == 200
    assert 'id="programme-form"' in page.text
    assert "Gold" in page.text
    assert "/loyalty/liability" in page.text  # in the navigation
    version = re.search(r'name="version" value="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    response = post_form(
        owner,
        "/loyalty",
        "/loyalty",
        {
            "enrolment": "opt_in",
            "pending_days": "7",
            "expiry_policy": "rolling",
            "expiry_months": "24",
            "version": version,
        },
    )
    assert response.headers["location"] == "/loyalty?flash=loyalty_saved"  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        programme = get_programme(s)
        assert (programme.enrolment, programme.pending_days, programme.expiry_months) == ("opt_in", 7, 24)
    bad = post_form(
        owner,
        "/loyalty",
        "/loyalty",
        {
            "enrolment": "opt_in",
            "pending_days": "lots",
            "expiry_policy": "rolling",
            "expiry_months": "24",
            "version": str(programme.version),
        },
    )
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert "Enter a whole number." in bad.text  # type: ignore[attr-defined]
    viewer = console(Role.VIEWER)
    read_only = viewer.get("/loyalty")
    assert (read_only.status_code, 'id="programme-form"' in read_only.text) == (200, False)


def test_member_card_lookup_and_adjustment(console: Console, member: str, database: Database) -> None:
    marketer = console(Role.MARKETER)
    found = marketer.get("/loyalty/members", params={"q": "ANNA@example.hu"}, follow_redirects=False)
    assert found.headers["location"] == f"/loyalty/members/{member}"
    card = marketer.get(f"/loyalty/members/{member}")
    assert card.status_code == 200
    assert '<dd id="available">40</dd>' in card.text
    assert "welcome" in card.text
    done = post_form(
        marketer,
        f"/loyalty/members/{member}",
        f"/loyalty/members/{member}/adjust",
        {"points": "-15", "reason": "duplicate bonus"},
    )
    assert done.headers["location"] == f"/loyalty/members/{member}?flash=points_adjusted"  # type: ignore[attr-defined]
    too_much = post_form(
        marketer,
        f"/loyalty/members/{member}",
        f"/loyalty/members/{member}/adjust",
        {"points": "-500", "reason": "oops"},
    )
    assert too_much.status_code == 409  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        assert get_account(s, member).available == 25
    missing = marketer.get("/loyalty/members", params={"q": "nobody@example.hu"})
    assert missing.status_code == 404
    agent = console(Role.AGENT)
    assert agent.get(f"/loyalty/members/{member}").status_code == 200
    assert 'id="adjust-form"' not in agent.get(f"/loyalty/members/{member}").text
    refused = post_form(
        agent,
        f"/loyalty/members/{member}",
        f"/loyalty/members/{member}/adjust",
        {"points": "5", "reason": "x"},
    )
    assert refused.status_code == 403  # type: ignore[attr-defined]


def test_liability_page(console: Console, member: str) -> None:
    page = console(Role.ANALYST).get("/loyalty/liability")
    assert page.status_code == 200
    assert ">40<" in page.text  # Anna's 40 points, home market HU by country


def test_anonymous_visitors_are_sent_to_login(client: TestClient) -> None:
    response = client.get("/loyalty", follow_redirects=False)
    assert response.status_code in (302, 303)
    assert response.headers["location"].startswith("/login")


def test_configuration_forms(console: Console, member: str, database: Database) -> None:
    owner = console(Role.OWNER)
    tier = post_form(
        owner,
        "/loyalty",
        "/loyalty/tiers",
        {
            "code": "silver",
            "rank": "0",
            "name_en": "Silver",
            "name_th": "เงิน",
            "threshold": "50",
            "multiplier": "1.2",
        },
    )
    assert tier.headers["location"] == "/loyalty?flash=tier_created#tiers"  # type: ignore[attr-defined]
    rule = post_form(
        owner,
        "/loyalty",
        "/loyalty/rules",
        {"name": "Tea x2", "kind": "multiplier", "multiplier": "2", "categories": "tea, coffee"},
    )
    assert rule.status_code == 303  # type: ignore[attr-defined]
    reward = post_form(
        owner,
        "/loyalty",
        "/loyalty/rewards",
        {"kind": "gift", "name": "Tote bag", "cost_points": "300", "stock": "20"},
    )
    assert reward.status_code == 303  # type: ignore[attr-defined]
    promo = post_form(
        owner,
        "/loyalty",
        "/loyalty/promotions",
        {"name": "Songkran", "discount_kind": "percent", "percent": "10", "usage": "single_use"},
    )
    assert promo.status_code == 303  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        tiers = [t.code for t in list_tiers(s)]
        rules = [(r.name, r.conditions) for r in list_rules(s)]
        rewards = [(r.kind, r.cost_points, r.stock) for r in list_rewards(s)]
        (promotion,) = list_promotions(s)
    assert tiers == ["silver", "gold"]
    assert rules == [("Tea x2", {"categories": ["coffee", "tea"]})]
    assert rewards == [("gift", 300, 20)]
    codes = post_form(
        owner, "/loyalty", f"/loyalty/promotions/{promotion.id}/codes", {"count": "12", "prefix": "SK"}
    )
    assert codes.status_code == 303  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        assert len(list(iter_coupons(s, promotion.id))) == 12
    bad = post_form(
        owner,
        "/loyalty",
        "/loyalty/tiers",
        {"code": "Bad Code", "rank": "5", "name_en": "X", "threshold": "1"},
    )
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert "code" in bad.text  # type: ignore[attr-defined]
    duplicate = post_form(
        owner, "/loyalty", "/loyalty/tiers", {"code": "silver", "rank": "9", "name_en": "S", "threshold": "1"}
    )
    assert duplicate.status_code == 409  # type: ignore[attr-defined]
    page = owner.get("/loyalty")
    assert all(name in page.text for name in ("Silver", "Tea x2", "Tote bag", "Songkran"))
    viewer = console(Role.VIEWER)
    assert 'id="tier-form"' not in viewer.get("/loyalty").text
    refused = post_form(
        viewer, "/loyalty", "/loyalty/tiers", {"code": "x", "rank": "7", "name_en": "X", "threshold": "1"}
    )
    assert refused.status_code == 403  # type: ignore[attr-defined]
