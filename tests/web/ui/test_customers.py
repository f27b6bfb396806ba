"""Customers list (search, filters, paging) and the customer 360 page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from patron.auth import Role
from patron.commerce import OrderInput, OrderLineInput, SubscriptionInput, place_order, start_subscription
from patron.core.business import set_fx_rate, update_business
from patron.core.db import Database
from patron.core.money import Money
from patron.customers import CustomerCreateInput, create_customer, get_consent, list_timeline, set_traits
from tests.web.ui.conftest import post_form

Console = Callable[[Role | str], TestClient]


@pytest.fixture
def people(database: Database) -> dict[str, str]:
    """Three customers: Nguyễn Văn An (VN), Kovács Anna (HU), สมชาย ใจดี (TH); An has an order and a plan."""
    with database.unit_of_work() as s:
        update_business(s, reporting_currency="EUR", time_zone="Asia/Ho_Chi_Minh")
        set_fx_rate(s, base="EUR", quote="VND", valid_on=date(2020, 1, 1), rate=Decimal("27000"))
        an = create_customer(
            s,
            CustomerCreateInput(
                first_name="Văn An",
                last_name="Nguyễn",
                form_of_address="anh",
                email="an.nguyen@example.vn",
                phone="0912 345 678",
                country="VN",
                language="vi",
                tags=("vip",),
                birthday="1990-05-17",
            ),
        )
        anna = create_customer(
            s,
            CustomerCreateInput(
                first_name="Anna",
                last_name="Kovács",
                email="anna@example.hu",
                phone="+36 30 123 4567",
                country="HU",
                language="hu",
            ),
        )
        somchai = create_customer(
            s,
            CustomerCreateInput(
                first_name="สมชาย", last_name="ใจดี", email="somchai@example.th", country="TH", language="th"
            ),
        )
        place_order(
            s,
            OrderInput(
                customer_id=an.id,
                currency="VND",
                subtotal=Decimal("1250000"),
                total=Decimal("1250000"),
                external_id="SO-1001",
                placed_at=datetime(2026, 3, 1, 3, 30, tzinfo=UTC),
                lines=(
                    OrderLineInput(
                        quantity=1,
                        unit_price=Decimal("1250000"),
                        total=Decimal("1250000"),
                        sku="PHO-1",
                        name="Phở kit",
                    ),
                ),
            ),
            emit_events=False,
        )
        start_subscription(
            s,
            SubscriptionInput(
                customer_id=an.id,
                plan="Coffee club",
                price=Money(Decimal("199000"), "VND"),
                started_at=datetime(2026, 1, 10, tzinfo=UTC),
            ),
            emit_events=False,
        )
        set_traits(s, an.id, {"churn_risk": Decimal("0.25")}, source="analytics")
    return {"an": an.id, "anna": anna.id, "somchai": somchai.id}


def test_list_shows_names_in_their_own_order(owner: TestClient, people: dict[str, str]) -> None:
    page = owner.get("/customers")
    assert page.status_code == 200
    assert f'<a href="/customers/{people["an"]}">Nguyễn Văn An</a>' in page.text
    assert f'<a href="/customers/{people["anna"]}">Kovács Anna</a>' in page.text
    assert f'<a href="/customers/{people["somchai"]}">สมชาย ใจดี</a>' in page.text
    assert 'class="active" aria-current="page">Customers</a>' in page.text


def test_search_is_accent_insensitive_and_filters_combine(owner: TestClient, people: dict[str, str]) -> None:
    found = owner.get("/customers", params={"q": "nguyen"})
    assert f'data-customer="{people["an"]}"' in found.text
    assert f'data-customer="{people["anna"]}"' not in found.text
    by_phone = owner.get("/customers", params={"q": "0912 345 678"})
    assert f'data-customer="{people["an"]}"' in by_phone.text
    hungarians = owner.get("/customers", params={"country": "hu"})
    assert f'data-customer="{people["anna"]}"' in hungarians.text
    assert f'data-customer="{people["an"]}"' not in hungarians.text
    thai = owner.get("/customers", params={"language": "th"})
    assert [people["somchai"]] == [cid for cid in people.values() if f'data-customer="{cid}"' in thai.text]
    vip = owner.get("/customers", params={"tag": "vip", "country": "VN"})
    assert f'data-customer="{people["an"]}"' in vip.text
    assert f'data-customer="{people["anna"]}"' not in vip.text
    nobody = owner.get("/customers", params={"q": "zzzz-nobody"})
    assert "No customers match." in nobody.text


def test_list_pages_with_a_cursor(owner: TestClient, database: Database) -> None:
    with database.unit_of_work() as s:
        for i in range(53):
            create_customer(
                s,
                CustomerCreateInput(
                    first_name=f"Person{i:02d}", last_name="Tóth", country="HU", language="hu"
                ),
            )
    first = owner.get("/customers", params={"country": "HU"})
    assert first.text.count("data-customer=") == 50
    marker = 'href="/customers?country=HU&amp;cursor='
    start = first.text.index(marker) + len('href="')
    next_url = first.text[start : first.text.index('"', start)].replace("&amp;", "&")
    second = owner.get(next_url)
    assert second.status_code == 200
    assert second.text.count("data-customer=") == 3
    assert 'rel="next"' not in second.text


def test_bad_cursor_shows_an_error_page(owner: TestClient) -> None:
    response = owner.get("/customers", params={"cursor": "%%%not-a-cursor"})
    assert response.status_code == 422
    assert "malformed cursor" in response.text


def test_customer_360_page(owner: TestClient, people: dict[str, str]) -> None:
    page = owner.get(f"/customers/{people['an']}")
    assert page.status_code == 200
    text = page.text
    assert '<h1 id="customer-name">Nguyễn Văn An</h1>' in text
    assert "Address as: anh An" in text
    assert "an.nguyen@example.vn" in text
    assert "+84912345678" in text
    assert "17 May 1990" in text
    assert 'data-consent="marketing:email"><span class="badge unknown">Unknown</span>' in text
    assert "churn_risk" in text
    assert "SO-1001" in text
    assert "₫1,250,000" in text or "1,250,000" in text
    assert "Coffee club" in text
    # times in the viewer's time zone (UTC for the test owner): placed 1 Mar 2026 03:30 UTC
    assert "1 Mar 2026, 03:30" in text


def test_customer_360_in_vietnamese_formats_money_and_dates(
    owner: TestClient, people: dict[str, str]
) -> None:
    post_form(owner, "/customers", "/language", {"language": "vi", "next": "/customers"})
    page = owner.get(f"/customers/{people['an']}")
    assert '<html lang="vi">' in page.text
    assert "1.250.000" in page.text  # vi_VN groups with dots, VND without decimals


def test_customer_360_in_thai_uses_buddhist_era(owner: TestClient, people: dict[str, str]) -> None:
    post_form(owner, "/customers", "/language", {"language": "th", "next": "/customers"})
    page = owner.get(f"/customers/{people['an']}")
    assert "2569" in page.text  # 2026 + 543
    assert "2533" in page.text  # birthday 1990 + 543


def test_unknown_customer_is_a_404_page(owner: TestClient) -> None:
    response = owner.get("/customers/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]


def test_add_note_appears_newest_first(owner: TestClient, people: dict[str, str], database: Database) -> None:
    url = f"/customers/{people['anna']}"
    response = post_form(owner, url, f"{url}/notes", {"summary": "Gọi lại vào thứ Hai"})
    assert response.status_code == 303  # type: ignore[attr-defined]
    post_form(owner, url, f"{url}/notes", {"summary": "Second note"})
    page = owner.get(url)
    assert page.text.index("Second note") < page.text.index("Gọi lại vào thứ Hai")
    with database.unit_of_work() as s:
        items = list_timeline(s, people["anna"]).items
    assert [(i.kind, i.summary, i.actor) for i in items] == [
        ("note", "Second note", "owner.ui@example.com"),
        ("note", "Gọi lại vào thứ Hai", "owner.ui@example.com"),
    ]
    empty = post_form(owner, url, f"{url}/notes", {"summary": "   "})
    assert empty.status_code == 422  # type: ignore[attr-defined]
    assert "Write a note first." in empty.text  # type: ignore[attr-defined]


def test_record_consent(console: Console, people: dict[str, str], database: Database) -> None:
    agent = console(Role.AGENT)
    url = f"/customers/{people['somchai']}"
    response = post_form(
        agent,
        url,
        f"{url}/consent",
        {
            "purpose": "marketing",
            "channel": "line",
            "status": "granted",
            "proof": "call #42",
            "expires_on": "",
        },
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    page = agent.get(url)
    assert 'data-consent="marketing:line"><span class="badge granted">Granted</span>' in page.text
    with database.unit_of_work() as s:
        states = {(c.purpose, c.channel): c.status for c in get_consent(s, people["somchai"]).current}
    assert states[("marketing", "line")] == "granted"
    assert states[("marketing", "email")] == "unknown"
    bad = post_form(
        agent,
        url,
        f"{url}/consent",
        {"purpose": "spam", "channel": "line", "status": "granted", "proof": "", "expires_on": ""},
    )
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert 'data-error-for="purpose"' in bad.text  # type: ignore[attr-defined]


def test_viewer_sees_no_forms_and_cannot_post(
    console: Console, people: dict[str, str], database: Database
) -> None:
    viewer = console(Role.VIEWER)
    url = f"/customers/{people['an']}"
    page = viewer.get(url)
    assert page.status_code == 200
    assert 'id="note-form"' not in page.text
    assert 'id="consent-form"' not in page.text
    response = post_form(viewer, url, f"{url}/notes", {"summary": "sneaky"})
    assert response.status_code == 403  # type: ignore[attr-defined]
    refused = post_form(
        viewer, url, f"{url}/consent", {"purpose": "marketing", "channel": "email", "status": "granted"}
    )
    assert refused.status_code == 403  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        assert list_timeline(s, people["an"]).items == [] or all(
            i.summary != "sneaky" for i in list_timeline(s, people["an"]).items
        )
        assert all(c.status == "unknown" for c in get_consent(s, people["an"]).current)


def test_anonymous_is_sent_to_login(client: TestClient, people: dict[str, str]) -> None:
    response = client.get(f"/customers/{people['an']}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/customers/{people['an']}"
