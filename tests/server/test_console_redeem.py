"""The customer page's "Redeem a reward" form sent many times at once (a double click, a retrying
browser) through two server worker processes: the idempotency key drawn when the page was rendered
makes it one redemption, debited once."""

from __future__ import annotations

import re

import httpx
import pytest

from patron.auth import Role, create_user
from patron.core.db import Database, get_engine
from patron.customers import CustomerCreateInput, create_customer
from patron.loyalty import adjust_points, create_reward, get_account, list_redemptions
from tests.loyalty.conftest import setup_loyalty
from tests.server.conftest import Live
from tests.support import concurrently
from tests.web.ui.conftest import PASSWORD, csrf_of

SENDS = 12


@pytest.fixture(scope="module")
def member(live: Live) -> dict[str, str]:
    db = Database(get_engine(live.database_url))
    with db.unit_of_work() as s:
        setup_loyalty(s)
        create_user(s, email="counter@example.com", password=PASSWORD, role=Role.MARKETER, name="Counter")
        customer = create_customer(
            s,
            CustomerCreateInput(first_name="Anna", last_name="Kovács", email="anna@example.hu", country="HU"),
        ).id
        adjust_points(s, customer, 1000, reason="welcome")
        reward = create_reward(s, {"kind": "gift", "names": {"en": "Tote bag"}, "cost_points": 300}).id
    return {"customer": customer, "reward": reward}


def _logged_in(live: Live) -> httpx.Cookies:
    with httpx.Client(base_url=live.url, timeout=60.0) as client:
        page = client.get("/login")
        done = client.post(
            "/login",
            data={"email": "counter@example.com", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        )
        assert done.status_code == 303, done.text
        return client.cookies


def test_one_form_sent_many_times_at_once_redeems_once(live: Live, member: dict[str, str]) -> None:
    cookies = _logged_in(live)
    url = f"/customers/{member['customer']}"
    with httpx.Client(base_url=live.url, cookies=cookies, timeout=60.0) as client:
        page = client.get(url)
    assert page.status_code == 200
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    form = {"csrf_token": csrf_of(page.text), "idempotency_key": key, "reward_id": member["reward"]}

    def send(_: int) -> tuple[int, str]:
        with httpx.Client(base_url=live.url, cookies=cookies, timeout=60.0) as client:
            response = client.post(f"{url}/loyalty/redeem", data=form)
            return response.status_code, response.headers.get("location", "")

    results = concurrently(SENDS, send)
    assert results == [(303, f"{url}?flash=reward_redeemed#loyalty")] * SENDS
    db = Database(get_engine(live.database_url))
    with db.unit_of_work(write=False) as s:
        (redemption,) = list_redemptions(s, member["customer"])
        assert redemption.points == 300
        assert get_account(s, member["customer"]).available == 700
