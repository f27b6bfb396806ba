"""Console login, logout, session expiry, lockout, CSRF and the language switcher."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from patron.auth import Role, User
from patron.core.clock import FrozenClock
from patron.core.db import Database
from patron.core.settings import get_settings
from patron.web.security import SESSION_COOKIE
from tests.web.ui.conftest import PASSWORD, csrf_of, login, post_form


def _set_cookie_headers(response: object) -> list[str]:
    return response.headers.get_list("set-cookie")  # type: ignore[attr-defined]


def test_anonymous_pages_redirect_to_login(client: TestClient) -> None:
    for url in ("/", "/settings", "/settings/users", "/tokens"):
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 303
        expected = "/login" if url == "/" else f"/login?next={url}"
        assert response.headers["location"] == expected


def test_anonymous_post_redirects_to_login_and_changes_nothing(client: TestClient) -> None:
    response = client.post("/settings", data={"name": "Hacked"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_login_page_renders_form_with_csrf_cookie(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    token = csrf_of(page.text)
    assert client.cookies.get("patron_csrf") == token
    assert 'name="password"' in page.text


def test_good_password_logs_in_with_a_secure_session_cookie(
    client: TestClient, staff: Callable[[Role | str], str]
) -> None:
    email = staff(Role.OWNER)
    page = client.get("/login?next=/settings/markets")
    assert 'name="next" value="/settings/markets"' in page.text
    response = client.post(
        "/login",
        data={
            "email": email.upper(),
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "/settings/markets",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/settings/markets"
    session_cookie = next(h for h in _set_cookie_headers(response) if h.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=lax" in session_cookie
    assert f"Max-Age={get_settings().session_max_age_seconds}" in session_cookie
    assert "Secure" not in session_cookie  # PATRON_COOKIE_SECURE is off in tests
    assert client.get("/", follow_redirects=False).headers["location"] == "/customers"
    markets = client.get("/settings/markets")
    assert markets.status_code == 200
    assert email in markets.text


def test_next_is_only_followed_to_local_paths(client: TestClient, staff: Callable[[Role | str], str]) -> None:
    email = staff(Role.OWNER)
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "email": email,
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "https://evil.example/steal",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_wrong_password_is_refused_with_a_message(
    client: TestClient, staff: Callable[[Role | str], str]
) -> None:
    email = staff(Role.OWNER)
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": "wrong password!", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert "Wrong email or password." in response.text
    assert f'value="{email}"' in response.text
    assert not any(h.startswith(f"{SESSION_COOKIE}=") for h in _set_cookie_headers(response))
    assert client.get("/settings", follow_redirects=False).status_code == 303


def test_unknown_email_gets_the_same_message(client: TestClient) -> None:
    page = client.get("/login")
    response = client.post(
        "/login", data={"email": "nobody@example.com", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 401
    assert "Wrong email or password." in response.text


def test_repeated_failures_lock_the_account(
    client: TestClient, staff: Callable[[Role | str], str], database: Database
) -> None:
    email = staff(Role.OWNER)
    limit = get_settings().login_max_failures
    for _ in range(limit):
        page = client.get("/login")
        response = client.post(
            "/login", data={"email": email, "password": "wrong password!", "csrf_token": csrf_of(page.text)}
        )
        assert response.status_code == 401
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 429
    assert "Too many failed logins: this account is locked for a while. Try again later." in response.text
    assert not any(h.startswith(f"{SESSION_COOKIE}=") for h in _set_cookie_headers(response))
    with database.unit_of_work() as s:
        user = s.scalars(select(User).where(User.email == email)).one()
        assert user.locked_until is not None


def test_login_without_csrf_token_is_forbidden(
    client: TestClient, staff: Callable[[Role | str], str]
) -> None:
    email = staff(Role.OWNER)
    client.get("/login")
    response = client.post("/login", data={"email": email, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403
    assert "Your form expired or did not come from this site." in response.text
    assert not any(h.startswith(f"{SESSION_COOKIE}=") for h in _set_cookie_headers(response))


def test_login_with_a_token_not_matching_the_cookie_is_forbidden(
    client: TestClient, staff: Callable[[Role | str], str]
) -> None:
    email = staff(Role.OWNER)
    client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": "forged-token-value"},
        follow_redirects=False,
    )
    assert response.status_code == 403


def test_form_post_without_session_csrf_token_is_forbidden(owner: TestClient, database: Database) -> None:
    response = owner.post(
        "/settings",
        data={
            "name": "Changed",
            "reporting_currency": "USD",
            "time_zone": "UTC",
            "week_start": "0",
            "fiscal_year_start_month": "1",
            "default_language": "en",
        },
    )
    assert response.status_code == 403
    assert "Your form expired" in response.text
    assert "My business" in owner.get("/settings").text


def test_logout_ends_the_session(owner: TestClient) -> None:
    secret = owner.cookies.get(SESSION_COOKIE)
    assert secret
    response = post_form(owner, "/settings", "/logout", {})
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == "/login"  # type: ignore[attr-defined]
    # even a replayed cookie no longer works
    owner.cookies.set(SESSION_COOKIE, secret)
    assert owner.get("/settings", follow_redirects=False).headers["location"] == "/login?next=/settings"


def test_expired_session_redirects_to_login_with_next(frozen_clock: FrozenClock, owner: TestClient) -> None:
    assert owner.get("/settings/users").status_code == 200
    frozen_clock.advance(timedelta(seconds=get_settings().session_max_age_seconds + 1))
    response = owner.get("/settings/users?x=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/settings/users%3Fx%3D1"
    page = owner.get(response.headers["location"])
    assert "Your session has expired. Please log in again." in page.text


def test_language_switch_sets_cookie_and_user_language(
    owner: TestClient, staff: Callable[[Role | str], str], database: Database
) -> None:
    response = post_form(owner, "/settings", "/language", {"language": "th", "next": "/settings/markets"})
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == "/settings/markets"  # type: ignore[attr-defined]
    assert owner.cookies.get("patron_lang") == "th"
    page = owner.get("/settings/markets")
    assert '<html lang="th">' in page.text
    with database.unit_of_work() as s:
        assert s.scalars(select(User.language).where(User.email == staff(Role.OWNER))).one() == "th"


def test_user_language_applies_on_a_new_browser(
    owner: TestClient, app: object, staff: Callable[[Role | str], str]
) -> None:
    post_form(owner, "/settings", "/language", {"language": "vi", "next": "/settings"})
    with TestClient(app) as other:  # type: ignore[arg-type]
        login(other, staff(Role.OWNER))
        assert other.cookies.get("patron_lang") == "vi"
        assert '<html lang="vi">' in other.get("/settings").text


def test_anonymous_language_switch_uses_the_login_csrf_cookie(client: TestClient) -> None:
    page = client.get("/login")
    response = client.post(
        "/language",
        data={"language": "hu", "next": "/login", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert '<html lang="hu">' in client.get("/login").text
    forged = client.post("/language", data={"language": "th", "next": "/login"}, follow_redirects=False)
    assert forged.status_code == 403


def test_accept_language_is_the_fallback(client: TestClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "hu-HU,hu;q=0.9,en;q=0.5"})
    assert '<html lang="hu">' in page.text


def test_unknown_language_is_ignored(owner: TestClient) -> None:
    response = post_form(owner, "/settings", "/language", {"language": "xx", "next": "/settings"})
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert owner.cookies.get("patron_lang") == "en"
