"""Fixes from the security review of the portal: settings checked at start-up, Secure cookies behind
https, no link in idempotency records, no token in logs or problem bodies (a failing portal request is
the translated 500 page), unknown portal addresses, revoking a merged id, the referral page's limit,
and failed console logins limited per (address, email) as well as per address."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select, text

from patron.auth import Role, create_user
from patron.core.audit import AuditEntry
from patron.core.db import Database
from patron.core.idempotency import IdempotencyRecord
from patron.core.ratelimit import RateLimitCounter
from patron.core.settings import Settings, reset_settings_cache
from patron.customers import CustomerCreateInput, create_customer, merge_customers
from patron.loyalty import referral_code_for
from patron.portal import key_version
from tests.conftest import Tokens
from tests.web.portal.conftest import World, csrf_of, link_path

PATRON = str(Path(sys.executable).with_name("patron"))


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.undo()
    reset_settings_cache()


# --- 4: settings are checked when they load ---------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("secret_key", "too-short"),
        ("rate_limit_portal_open", "ten/60"),
        ("rate_limit_signup", "10"),
        ("rate_limit_redeem", "5/0"),
        ("rate_limit_login", "-1/60"),
        ("rate_limit_login_email", "x"),
        ("rate_limit_portal_link", "1/x"),
        ("rate_limit_referral_page", "60"),
        ("portal_link_days", 0),
        ("portal_link_days", 367),
        ("portal_session_seconds", 0),
        ("public_url", "loyalty.example.vn"),
        ("public_url", "ftp://loyalty.example.vn"),
        ("public_url", "https://"),
    ],
)
def test_bad_settings_are_refused_when_they_load(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(**{field: value})
    assert field in str(refused.value)
    if field == "secret_key":
        assert "too-short" not in str(refused.value)  # a secret is never echoed


def test_good_settings_load() -> None:
    settings = Settings(
        secret_key="s" * 32,
        rate_limit_signup="",
        rate_limit_redeem="0/60",
        portal_link_days=366,
        portal_session_seconds=1,
        public_url="https://loyalty.example.vn",
    )
    assert settings.portal_link_days == 366


# --- 3: Secure cookies when the public address is https ----------------------------------------------


def test_portal_cookies_are_secure_when_the_public_url_is_https(
    client: TestClient, database: Database, world: World, settings_env: pytest.MonkeyPatch
) -> None:
    settings_env.setenv("PATRON_PUBLIC_URL", "https://loyalty.example.vn")
    settings_env.delenv("PATRON_COOKIE_SECURE", raising=False)
    reset_settings_cache()
    path = urlsplit(link_path(database, world.members["vi"])).path
    opened = client.get(path, follow_redirects=False)
    assert opened.status_code == 303
    cookie = opened.headers["set-cookie"]
    assert cookie.startswith("patron_portal=")
    assert "; secure" in cookie.lower()
    assert "httponly" in cookie.lower()
    landing = client.get("/r/ZZZZ-ZZZZ")  # the anonymous double-submit cookie too
    assert "; secure" in landing.headers["set-cookie"].lower()


def test_portal_cookies_are_not_secure_on_plain_http_by_default(
    client: TestClient, database: Database, world: World
) -> None:
    opened = client.get(link_path(database, world.members["vi"]), follow_redirects=False)
    assert "; secure" not in opened.headers["set-cookie"].lower()


# --- 5: a portal link never lands in the idempotency records ----------------------------------------


def test_an_idempotency_key_on_the_link_endpoint_is_ignored_and_nothing_is_stored(
    client: TestClient, tokens: Tokens, database: Database, world: World
) -> None:
    headers = {**tokens.headers(Role.MARKETER), "Idempotency-Key": "portal-link-key-1"}
    url = f"/api/v1/customers/{world.members['vi']}/portal-link"
    first = client.post(url, headers=headers)
    second = client.post(url, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert "idempotent-replayed" not in {k.lower() for k in second.headers}
    with database.unit_of_work(write=False) as s:
        assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
        issued = s.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "portal.link_issued")
        )
    assert issued == 2  # issued twice, not replayed
    # other endpoints still honour the key
    assert (
        client.post(
            "/api/v1/customers",
            json={"first_name": "Idem", "email": "idem@example.vn"},
            headers={**tokens.headers(Role.OWNER), "Idempotency-Key": "customer-key-1"},
        ).status_code
        == 201
    )
    with database.unit_of_work(write=False) as s:
        assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1


# --- 2: a failing portal request: the translated 500 page, no token in the log or the body -----------


def test_a_failing_link_open_answers_the_500_page_and_logs_no_token(
    client: TestClient, database: Database, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    path = link_path(database, world.members["vi"])
    token = path.removeprefix("/portal/t/")
    engine = database.engine
    with engine.begin() as conn:  # a real failure: the secrets table is gone
        conn.execute(text("ALTER TABLE app_secrets RENAME TO app_secrets_gone"))
    try:
        caplog.set_level(logging.INFO)
        response = client.get(path, headers={"Accept-Language": "vi"}, follow_redirects=False)
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE app_secrets_gone RENAME TO app_secrets"))
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "Đã xảy ra lỗi. Vui lòng thử lại sau." in response.text
    assert token not in response.text
    server_side = [r for r in caplog.records if not r.name.startswith("httpx")]  # not the test client's
    assert "unhandled error on portal page GET /portal/t/[redacted]" in [r.getMessage() for r in server_side]
    for record in server_side:
        assert token not in record.getMessage()
        assert token not in logging.Formatter().format(record)  # the traceback included


def test_unknown_portal_addresses_get_the_translated_404_page(client: TestClient, world: World) -> None:
    for path in ("/portal/nothing-here", "/portal/t/", "/portal/t/abc/extra", "/portal/logout"):
        response = client.get(path, headers={"Accept-Language": "vi"})
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert "Không tìm thấy trang" in response.text


def test_problem_bodies_and_logs_never_echo_a_link_token(client: TestClient, world: World) -> None:
    response = client.put("/portal/t/SECRET-TOKEN-VALUE")  # no such method: a problem+json 405
    assert response.status_code == 405
    assert response.json()["instance"] == "/portal/t/[redacted]"
    assert "SECRET-TOKEN-VALUE" not in response.text


# --- 11: revoking a merged-away id names the survivor ------------------------------------------------


def test_revoking_a_merged_away_id_answers_the_survivors_id(
    client: TestClient, tokens: Tokens, database: Database, world: World
) -> None:
    with database.unit_of_work() as s:
        source = create_customer(
            s, CustomerCreateInput(first_name="Old", last_name="Record", email="old@example.vn")
        ).id
        merge_customers(s, source_id=source, target_id=world.members["vi"])
    response = client.post(
        f"/api/v1/customers/{source}/portal-link/revoke", headers=tokens.headers(Role.MARKETER)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"customer_id": world.members["vi"], "key_version": 2}
    with database.unit_of_work(write=False) as s:
        assert key_version(s, world.members["vi"]) == 2


# --- 12: the referral page is rate limited too -------------------------------------------------------


def test_the_referral_page_is_rate_limited(
    client: TestClient, database: Database, world: World, settings_env: pytest.MonkeyPatch
) -> None:
    settings_env.setenv("PATRON_RATE_LIMIT_REFERRAL_PAGE", "2/60")
    reset_settings_cache()
    with database.unit_of_work() as s:
        code = referral_code_for(s, world.members["vi"])
    statuses = [client.get(f"/r/{code}", headers={"Accept-Language": "hu"}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert int(statuses[2].headers["retry-after"]) >= 1
    assert "Túl sok próbálkozás" in statuses[2].text
    assert "Văn An" not in statuses[2].text


# --- 1 and 8: failed console logins ------------------------------------------------------------------


def _login(client: TestClient, email: str, password: str) -> int:
    client.cookies.clear()
    csrf = csrf_of(client.get("/login").text)
    data = {"email": email, "password": password, "csrf_token": csrf}
    return client.post("/login", data=data, follow_redirects=False).status_code


def test_failures_on_one_email_do_not_lock_out_a_colleague_on_the_same_address(
    client: TestClient, database: Database, settings_env: pytest.MonkeyPatch
) -> None:
    settings_env.setenv("PATRON_RATE_LIMIT_LOGIN_EMAIL", "2/60")
    reset_settings_cache()
    with database.unit_of_work() as s:
        create_user(s, email="b@example.com", password="correct horse battery", role=Role.OWNER, name="B")
    assert [_login(client, "ghost@example.com", "guess") for _ in range(3)] == [401, 401, 429]
    assert _login(client, "GHOST@example.com", "guess") == 429  # the same email in other case
    assert _login(client, "b@example.com", "correct horse battery") == 303  # the colleague gets in


def test_successful_logins_give_their_hit_back(
    client: TestClient, database: Database, settings_env: pytest.MonkeyPatch
) -> None:
    settings_env.setenv("PATRON_RATE_LIMIT_LOGIN", "2/60")
    reset_settings_cache()
    with database.unit_of_work() as s:
        create_user(s, email="b@example.com", password="correct horse battery", role=Role.OWNER, name="B")
    assert [_login(client, "b@example.com", "correct horse battery") for _ in range(3)] == [303] * 3
    assert _login(client, "b@example.com", "wrong") == 401
    with database.unit_of_work(write=False) as s:
        counts = dict(s.execute(select(RateLimitCounter.key, RateLimitCounter.count)).all())
    assert counts == {"login:ip:testclient": 1, "login:ip-email:testclient:b@example.com": 1}


# --- 1: ``patron serve`` trusts no proxy unless told ------------------------------------------------


def test_serve_refuses_proxy_headers_without_trusted_proxies(db_url: str) -> None:
    env = {**os.environ, "PATRON_DATABASE_URL": db_url, "PATRON_CONFIG": os.devnull}
    env.pop("PATRON_FORWARDED_ALLOW_IPS", None)
    done = subprocess.run(
        [PATRON, "serve", "--proxy-headers", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "--forwarded-allow-ips" in done.stderr + done.stdout
