"""Settings pages: business settings, markets, FX rates, users and API tokens."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select

from patron.auth import ApiToken, Role, User, resolve_token
from patron.core.business import get_business, list_fx_rates, list_markets
from patron.core.db import Database
from tests.web.ui.conftest import post_form

Console = Callable[[Role | str], TestClient]


def test_owner_sees_every_settings_page(owner: TestClient) -> None:
    for url, marker in (
        ("/settings", 'id="business-form"'),
        ("/settings/markets", 'id="market-form"'),
        ("/settings/fx-rates", 'id="fx-form"'),
        ("/settings/users", 'id="user-form"'),
        ("/tokens", 'id="token-form"'),
    ):
        page = owner.get(url)
        assert page.status_code == 200, url
        assert marker in page.text, url
        assert 'data-nav="/settings"' in page.text


def test_business_settings_are_saved(owner: TestClient, database: Database) -> None:
    response = post_form(
        owner,
        "/settings",
        "/settings",
        {
            "name": "Phở Hà Nội Ltd",
            "reporting_currency": "vnd",
            "time_zone": "Asia/Ho_Chi_Minh",
            "week_start": "6",
            "fiscal_year_start_month": "4",
            "default_language": "vi",
        },
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == "/settings?flash=saved"  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        info = get_business(s)
    assert (
        info.name,
        info.reporting_currency,
        info.time_zone,
        info.week_start,
        info.fiscal_year_start_month,
        info.default_language,
    ) == ("Phở Hà Nội Ltd", "VND", "Asia/Ho_Chi_Minh", 6, 4, "vi")
    page = owner.get("/settings?flash=saved")
    assert "Saved." in page.text
    assert 'value="Phở Hà Nội Ltd"' in page.text


def test_business_settings_errors_show_inline_and_change_nothing(
    owner: TestClient, database: Database
) -> None:
    response = post_form(
        owner,
        "/settings",
        "/settings",
        {
            "name": "X",
            "reporting_currency": "ZZZ",
            "time_zone": "Mars/Olympus",
            "week_start": "9",
            "fiscal_year_start_month": "1",
            "default_language": "en",
        },
    )
    assert response.status_code == 422  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    assert '<p class="field-error" data-error-for="week_start">Choose a value from the list.</p>' in text
    response = post_form(
        owner,
        "/settings",
        "/settings",
        {
            "name": "X",
            "reporting_currency": "ZZZ",
            "time_zone": "UTC",
            "week_start": "0",
            "fiscal_year_start_month": "1",
            "default_language": "en",
        },
    )
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert 'data-error-for="reporting_currency">unknown currency' in response.text  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        assert get_business(s).name == "My business"


def test_markets_are_created_and_validated(owner: TestClient, database: Database) -> None:
    market = {
        "code": "VN",
        "name": "Vietnam",
        "country": "vn",
        "currency": "VND",
        "locale": "vi_VN",
        "time_zone": "Asia/Ho_Chi_Minh",
    }
    response = post_form(owner, "/settings/markets", "/settings/markets", market)
    assert response.status_code == 303  # type: ignore[attr-defined]
    page = owner.get("/settings/markets")
    assert "<td>Vietnam</td>" in page.text
    duplicate = post_form(owner, "/settings/markets", "/settings/markets", market)
    assert duplicate.status_code == 422  # type: ignore[attr-defined]
    assert 'data-error-for="code">market &#39;VN&#39; exists' in duplicate.text  # type: ignore[attr-defined]
    missing = post_form(owner, "/settings/markets", "/settings/markets", {**market, "code": "", "name": ""})
    assert missing.status_code == 422  # type: ignore[attr-defined]
    assert missing.text.count("This field is required.") == 2  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        assert [(m.code, m.country) for m in list_markets(s)] == [("VN", "VN")]


def test_fx_rates_are_entered(owner: TestClient, database: Database) -> None:
    response = post_form(
        owner,
        "/settings/fx-rates",
        "/settings/fx-rates",
        {"base": "EUR", "quote": "HUF", "valid_on": "2026-03-01", "rate": "395,25"},
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    page = owner.get("/settings/fx-rates")
    assert "<td>1 Mar 2026</td>" in page.text
    assert "395.25" in page.text
    bad = post_form(
        owner,
        "/settings/fx-rates",
        "/settings/fx-rates",
        {"base": "EUR", "quote": "HUF", "valid_on": "01/03/2026", "rate": "-1"},
    )
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert "Enter a date as YYYY-MM-DD." in bad.text  # type: ignore[attr-defined]
    assert "Enter a positive number." in bad.text  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        assert [(r.base, r.quote, r.rate) for r in list_fx_rates(s)] == [("EUR", "HUF", Decimal("395.25"))]


def test_users_are_added_and_roles_changed(owner: TestClient, database: Database) -> None:
    response = post_form(
        owner,
        "/settings/users",
        "/settings/users",
        {
            "email": "lan@example.com",
            "name": "Trần Thị Lan",
            "role": "agent",
            "language": "vi",
            "password": "a long enough password",
        },
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        lan = s.scalars(select(User).where(User.email == "lan@example.com")).one()
        assert (lan.role, lan.language, lan.name) == ("agent", "vi", "Trần Thị Lan")
        lan_id = lan.id
    weak = post_form(
        owner,
        "/settings/users",
        "/settings/users",
        {"email": "x@example.com", "role": "viewer", "language": "en", "password": "short"},
    )
    assert weak.status_code == 422  # type: ignore[attr-defined]
    assert 'data-error-for="password">The password must have at least 10 characters.' in weak.text  # type: ignore[attr-defined]
    changed = post_form(owner, "/settings/users", f"/settings/users/{lan_id}", {"role": "marketer"})
    assert changed.status_code == 303  # type: ignore[attr-defined]
    disabled = post_form(owner, "/settings/users", f"/settings/users/{lan_id}", {"is_active": "0"})
    assert disabled.status_code == 303  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        lan = s.get(User, lan_id)
        assert lan is not None
        assert (lan.role, lan.is_active) == ("marketer", False)


def test_the_last_owner_cannot_be_disabled(owner: TestClient, database: Database) -> None:
    with database.unit_of_work() as s:
        me = s.scalars(select(User).where(User.role == "owner")).one()
        my_id = me.id
    response = post_form(owner, "/settings/users", f"/settings/users/{my_id}", {"is_active": "0"})
    assert response.status_code == 409  # type: ignore[attr-defined]
    assert "The business must keep at least one active owner." in response.text  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        me = s.get(User, my_id)
        assert me is not None
        assert me.is_active


def test_token_secret_is_shown_once_and_works_until_revoked(owner: TestClient, database: Database) -> None:
    response = post_form(
        owner, "/tokens", "/tokens", {"name": "shop sync", "role": "viewer", "expires_on": ""}
    )
    assert response.status_code == 200  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    start = text.index('id="token-secret">') + len('id="token-secret">')
    secret = text[start : text.index("</p>", start)]
    assert secret.startswith("ptn_")
    page = owner.get("/tokens")
    assert secret not in page.text
    assert 'data-token="shop sync"' in page.text
    with database.unit_of_work() as s:
        assert resolve_token(s, secret).role is Role.VIEWER
        token_id = s.scalars(select(ApiToken.id).where(ApiToken.name == "shop sync")).one()
    api = owner.get("/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 200
    revoked = post_form(owner, "/tokens", f"/tokens/{token_id}/revoke", {})
    assert revoked.status_code == 303  # type: ignore[attr-defined]
    assert owner.get("/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert "Revoked" in owner.get("/tokens").text


def test_token_with_bad_expiry_shows_inline_error(owner: TestClient) -> None:
    response = post_form(owner, "/tokens", "/tokens", {"name": "x", "role": "", "expires_on": "2000-01-01"})
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert 'data-error-for="expires_on">expires_at must be in the future' in response.text  # type: ignore[attr-defined]


def test_viewer_sees_settings_read_only_and_posts_are_refused(console: Console, database: Database) -> None:
    viewer = console(Role.VIEWER)
    page = viewer.get("/settings")
    assert page.status_code == 200
    assert 'id="business-form"' not in page.text
    assert "<dd>My business</dd>" in page.text
    assert 'id="market-form"' not in viewer.get("/settings/markets").text
    assert 'id="fx-form"' not in viewer.get("/settings/fx-rates").text
    assert 'href="/settings/users"' not in page.text
    assert 'data-nav="/tokens"' not in page.text
    assert viewer.get("/settings/users").status_code == 403
    refused = post_form(
        viewer,
        "/settings",
        "/settings/markets",
        {
            "code": "HU",
            "name": "Hungary",
            "country": "HU",
            "currency": "HUF",
            "locale": "hu_HU",
            "time_zone": "Europe/Budapest",
        },
    )
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert "Your role does not allow this action." in refused.text  # type: ignore[attr-defined]
    assert post_form(viewer, "/settings", "/tokens", {"name": "mine"}).status_code == 403  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        assert list_markets(s) == []


def test_agent_has_no_settings_but_manages_own_tokens(console: Console) -> None:
    agent = console(Role.AGENT)
    assert agent.get("/settings").status_code == 403
    page = agent.get("/tokens")
    assert page.status_code == 200
    assert 'data-nav="/settings"' not in page.text
    assert 'id="token-form"' in page.text
    # an agent cannot mint a token with more rights than its own
    response = post_form(agent, "/tokens", "/tokens", {"name": "x", "role": "owner"})
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert '<option value="owner"' not in page.text
