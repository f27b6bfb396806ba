"""Rate limits across processes: ``patron serve`` with two worker processes shares one counter per
client in the database, so the limit holds however the requests are spread over the workers. The
access log of the same server shows no portal link token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from patron.core.db import Database, dispose_engines, get_engine
from patron.core.ratelimit import RateLimitCounter
from patron.customers import CustomerCreateInput, create_customer, list_customers
from patron.loyalty import adjust_points, create_reward, get_account, list_redemptions, referral_code_for
from patron.portal import issue_portal_link
from tests.support import LiveServer, fresh_database_url
from tests.support.concurrency import concurrently
from tests.support.live_server import STAFF_PASSWORD, create_staff_token

pytestmark = pytest.mark.server

OPEN_LIMIT = 8
SIGNUP_LIMIT = 8
LOGIN_LIMIT = 5


@dataclass(frozen=True)
class Seed:
    database_url: str
    code: str
    member: str
    reward: str
    link_path: str


@pytest.fixture(scope="module")
def server(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Seed]]:
    url = fresh_database_url(template_db, tmp_path_factory.mktemp("portal-live"))
    db = Database(get_engine(url))
    with db.unit_of_work() as s:
        referrer = create_customer(
            s, CustomerCreateInput(first_name="An", last_name="Lê", email="an@example.vn")
        )
        code = referral_code_for(s, referrer.id)
        member = create_customer(
            s, CustomerCreateInput(first_name="Lan", last_name="Trần", email="lan@example.vn")
        )
        adjust_points(s, member.id, 1000, reason="seed")
        reward = create_reward(s, {"kind": "gift", "names": {"en": "Mug"}, "cost_points": 300})
        link = issue_portal_link(s, member.id)
    seed = Seed(url, code, member.id, reward.id, link.url.removeprefix("http://127.0.0.1:8000"))
    dispose_engines()
    env = {
        # an hour-long window: a burst of a few seconds never straddles two windows in practice
        "PATRON_RATE_LIMIT_PORTAL_OPEN": f"{OPEN_LIMIT}/3600",
        "PATRON_RATE_LIMIT_SIGNUP": f"{SIGNUP_LIMIT}/3600",
        "PATRON_RATE_LIMIT_LOGIN_EMAIL": f"{LOGIN_LIMIT}/3600",
    }
    log = tmp_path_factory.mktemp("portal-live-log") / "server.log"
    # the shipped ``patron serve`` (with uvicorn's access log on)
    with LiveServer(url, workers=2, command="serve", env=env, log_path=log) as live:
        assert len(live.worker_pids()) == 2, live.log()
        yield live, seed
        text = live.log()
    assert "Traceback" not in text, text
    # link tokens never reach the access log
    assert "/portal/t/[redacted]" in text
    assert "forged-token" not in text


def test_a_double_submit_across_two_workers_redeems_once(server: tuple[LiveServer, Seed]) -> None:
    live, seed = server
    with httpx.Client(base_url=live.url, timeout=60.0) as opener:
        assert opener.get(seed.link_path).status_code == 303  # to /portal, with the session cookie
        page = opener.get("/portal").text
        cookies = dict(opener.cookies.items())
    form = re.search(
        rf'action="/portal/rewards/{seed.reward}/redeem"[^>]*>\s*'
        r'<input type="hidden" name="csrf_token" value="([^"]+)">\s*'
        r'<input type="hidden" name="idempotency_key" value="([^"]+)">',
        page,
    )
    assert form is not None
    data = {"csrf_token": form.group(1), "idempotency_key": form.group(2)}

    def submit(_: int) -> httpx.Response:
        with httpx.Client(base_url=live.url, timeout=60.0, cookies=cookies) as client:
            return client.post(f"/portal/rewards/{seed.reward}/redeem", data=data)

    responses = concurrently(6, submit)
    assert {r.status_code for r in responses} == {303}
    assert len({r.headers["location"] for r in responses}) == 1
    db = Database(get_engine(seed.database_url))
    with db.unit_of_work(write=False) as s:
        assert len(list_redemptions(s, seed.member)) == 1
        assert get_account(s, seed.member).available == 700


def test_opening_links_is_limited_across_two_workers(server: tuple[LiveServer, Seed]) -> None:
    live, seed = server
    db = Database(get_engine(seed.database_url))
    with db.unit_of_work(write=False) as s:  # links opened by the other tests of this module count too
        used = s.scalar(
            select(RateLimitCounter.count).where(RateLimitCounter.key == "portal_open:ip:127.0.0.1")
        )
    left = OPEN_LIMIT - int(used or 0)
    assert left > 0

    def open_forged(i: int) -> httpx.Response:
        # a client (and connection) of its own per request, so the requests spread over both workers
        with httpx.Client(base_url=live.url, timeout=60.0) as client:
            return client.get(f"/portal/t/forged-token-{i}", headers={"Accept-Language": "vi"})

    responses = concurrently(20, open_forged)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [403] * left + [429] * (20 - left)
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert "Bạn đã thử quá nhiều lần trong thời gian ngắn." in refused.text
    assert refused.headers["content-type"].startswith("text/html")


def _join(live: LiveServer, code: str, email: str) -> int:
    with httpx.Client(base_url=live.url, timeout=60.0) as client:
        page = client.get(f"/r/{code}")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match is not None
        data = {"first_name": "Friend", "email": email, "language": "en", "csrf_token": match.group(1)}
        return client.post(f"/r/{code}", data=data).status_code


def _used(seed: Seed, key: str) -> int:
    db = Database(get_engine(seed.database_url))
    with db.unit_of_work(write=False) as s:
        return int(s.scalar(select(RateLimitCounter.count).where(RateLimitCounter.key == key)) or 0)


def test_a_double_submitted_sign_up_creates_one_customer(server: tuple[LiveServer, Seed]) -> None:
    live, seed = server
    statuses = sorted(concurrently(5, lambda _: _join(live, seed.code, "twice@example.vn")))
    # one new customer (into the portal: 303); the others see the neutral page of a known email (200)
    assert statuses == [200, 200, 200, 200, 303]
    db = Database(get_engine(seed.database_url))
    with db.unit_of_work(write=False) as s:
        assert (
            len([c for c in list_customers(s, q="twice@example.vn").items if c.email == "twice@example.vn"])
            == 1
        )


def test_sign_ups_are_limited_across_two_workers(server: tuple[LiveServer, Seed]) -> None:
    live, seed = server
    code = seed.code
    left = SIGNUP_LIMIT - _used(seed, "signup:ip:127.0.0.1")
    assert left > 0

    def join(i: int) -> int:
        with httpx.Client(base_url=live.url, timeout=60.0) as client:
            page = client.get(f"/r/{code}")
            match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert match is not None
            response = client.post(
                f"/r/{code}",
                data={
                    "first_name": f"Friend {i}",
                    "last_name": "",
                    "email": f"friend{i}@example.vn",
                    "phone": "",
                    "country": "",
                    "language": "en",
                    "csrf_token": match.group(1),
                },
            )
            return response.status_code

    statuses = sorted(concurrently(left + 3, join))
    assert statuses.count(429) == 3
    assert statuses.count(303) == left  # each redirected into its new portal


def _login(base_url: str, email: str, password: str, headers: dict[str, str] | None = None) -> int:
    with httpx.Client(base_url=base_url, timeout=60.0, headers=headers or {}) as client:
        page = client.get("/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match is not None, page.text
        data = {"email": email, "password": password, "csrf_token": match.group(1)}
        return client.post("/login", data=data).status_code


def test_concurrent_failed_logins_cannot_slip_past_the_limit(server: tuple[LiveServer, Seed]) -> None:
    """The hit is counted (one atomic upsert) before the password is checked: twelve simultaneous
    guesses on two workers get exactly the limit's worth of answers (a peek-then-count would let
    several through on PostgreSQL)."""
    live, _ = server
    statuses = sorted(concurrently(12, lambda _: _login(live.url, "nobody@example.com", "guess")))
    assert statuses == [401] * LOGIN_LIMIT + [429] * (12 - LOGIN_LIMIT)


def test_forwarded_for_from_an_untrusted_peer_is_ignored(server: tuple[LiveServer, Seed]) -> None:
    """``patron serve`` trusts no proxy by default: a client cannot pick its own address (and so its
    own rate-limit counter) with X-Forwarded-For."""
    live, seed = server
    before = _used(seed, "referral_page:ip:127.0.0.1")
    with httpx.Client(base_url=live.url, timeout=60.0) as client:
        for _ in range(2):
            response = client.get(f"/r/{seed.code}", headers={"X-Forwarded-For": "203.0.113.9"})
            assert response.status_code == 200
    assert _used(seed, "referral_page:ip:127.0.0.1") == before + 2
    db = Database(get_engine(seed.database_url))
    with db.unit_of_work(write=False) as s:
        keys = s.scalars(select(RateLimitCounter.key)).all()
    assert not [k for k in keys if "203.0.113.9" in k]


def test_behind_a_trusted_proxy_each_client_is_counted_on_its_own_address(
    server: tuple[LiveServer, Seed], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With ``PATRON_FORWARDED_ALLOW_IPS`` naming the proxy, the limits key on the forwarded client
    address: one client's failed logins do not lock out a colleague behind the same proxy."""
    _, seed = server
    create_staff_token(seed.database_url, "admin", email="staff@example.com")
    env = {"PATRON_FORWARDED_ALLOW_IPS": "127.0.0.1", "PATRON_RATE_LIMIT_LOGIN": "2/3600"}
    log = tmp_path_factory.mktemp("portal-proxy-log") / "server.log"
    proxy_before = _used(seed, "login:ip:127.0.0.1")
    with LiveServer(seed.database_url, workers=1, command="serve", env=env, log_path=log) as proxied:
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        colleague = {"X-Forwarded-For": "198.51.100.7"}
        failures = [_login(proxied.url, f"guess{i}@example.com", "guess", attacker) for i in range(3)]
        assert failures == [401, 401, 429]
        assert _login(proxied.url, "staff@example.com", STAFF_PASSWORD, colleague) == 303
        assert _used(seed, "login:ip:203.0.113.9") == 3
        assert _used(seed, "login:ip:198.51.100.7") == 0  # given back: the login succeeded
        assert _used(seed, "login:ip:127.0.0.1") == proxy_before  # the proxy's address is not the client
