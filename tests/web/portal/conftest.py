"""Portal fixtures: the loyalty test business (markets VN/HU/TH, rolling 1-month expiry), members in
each language with points, a small rewards catalogue, and helpers that open a portal link through
the real HTTP route and read forms off the pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from patron.core.clock import FrozenClock, use_clock
from patron.core.db import Database
from patron.core.outbox import OutboxEvent, _deliver, registry
from patron.customers import CustomerCreateInput, create_customer
from patron.loyalty import adjust_points, create_reward, create_tier, update_programme
from patron.portal import issue_portal_link
from tests.loyalty.conftest import setup_loyalty

START = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_KEY = re.compile(
    r'action="/portal/rewards/([^"/]+)/redeem"[^>]*>\s*'
    r'<input type="hidden" name="csrf_token" value="([^"]+)">\s*'
    r'<input type="hidden" name="idempotency_key" value="([^"]+)">'
)


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "no csrf_token field on the page"
    return match.group(1)


def redeem_forms(html: str) -> dict[str, tuple[str, str]]:
    """reward id → (csrf token, idempotency key) of each redeem form on the page."""
    return {m.group(1): (m.group(2), m.group(3)) for m in _KEY.finditer(html)}


def text_of(html: str) -> str:
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html))  # keeps no-break spaces


@dataclass
class World:
    members: dict[str, str]  # language → customer id
    rewards: dict[str, str]  # name → reward id
    clock: FrozenClock


def deliver_all(database: Database) -> int:
    """Deliver pending outbox events to the registered handlers (as the worker does)."""
    with database.unit_of_work() as s:
        rows = list(
            s.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.dispatched_at.is_(None))
                .order_by(OutboxEvent.occurred_at)
            )
        )
        for row in rows:
            _deliver(s, row, registry)
        assert [(r.name, r.last_error) for r in rows if r.last_error] == []
        return len(rows)


PEOPLE = {
    "vi": ("Văn An", "Nguyễn", "an.nguyen@example.vn", "VN", "0912 345 678"),
    "hu": ("Anna", "Kovács", "anna.kovacs@example.hu", "HU", None),
    "th": ("สมชาย", "ใจดี", "somchai@example.th", "TH", None),
    "en": ("John", "Smith", "john@example.com", "VN", None),
}


@pytest.fixture
def world(database: Database) -> Iterator[World]:
    with use_clock(FrozenClock(START)) as clock:
        with database.unit_of_work() as s:
            setup_loyalty(s)
            update_programme(s, expiry_policy="rolling", expiry_months=1, pending_days=0)
            create_tier(
                s,
                {
                    "code": "gold",
                    "rank": 1,
                    "names": {"en": "Gold", "vi": "Vàng", "hu": "Arany", "th": "ทอง"},
                    "threshold": "2000",
                },
            )
            members = {}
            for lang, (first, last, email, country, phone) in PEOPLE.items():
                members[lang] = create_customer(
                    s,
                    CustomerCreateInput(
                        first_name=first,
                        last_name=last,
                        email=email,
                        country=country,
                        language=lang,
                        phone=phone,
                    ),
                ).id
                adjust_points(s, members[lang], 800, reason="welcome")
            rewards = {
                "voucher": create_reward(
                    s,
                    {
                        "kind": "discount_fixed",
                        "names": {
                            "en": "Shop voucher",
                            "vi": "Phiếu mua hàng",
                            "hu": "Vásárlási utalvány",
                            "th": "บัตรกำนัล",
                        },
                        "cost_points": 300,
                        "value_amount": "100000",
                        "currency": "VND",
                    },
                ).id,
                "huf": create_reward(
                    s,
                    {
                        "kind": "discount_fixed",
                        "names": {"en": "Budapest voucher", "hu": "Budapesti utalvány"},
                        "cost_points": 100,
                        "value_amount": "5000",
                        "currency": "HUF",
                        "markets": ["HU"],
                    },
                ).id,
                "thb": create_reward(
                    s,
                    {
                        "kind": "discount_fixed",
                        "names": {"en": "Bangkok voucher", "th": "บัตรกำนัลกรุงเทพ"},
                        "cost_points": 100,
                        "value_amount": "150.50",
                        "currency": "THB",
                        "markets": ["TH"],
                    },
                ).id,
                "gold_only": create_reward(
                    s, {"kind": "gift", "names": {"en": "Gold gift"}, "cost_points": 10, "tiers": ["gold"]}
                ).id,
                "sold_out": create_reward(
                    s, {"kind": "gift", "names": {"en": "Sold-out mug"}, "cost_points": 10, "stock": 0}
                ).id,
                "once": create_reward(
                    s,
                    {
                        "kind": "gift",
                        "names": {"en": "Welcome tote"},
                        "cost_points": 50,
                        "limit_per_customer": 1,
                    },
                ).id,
                "expensive": create_reward(
                    s,
                    {
                        "kind": "gift",
                        "names": {"en": "Bicycle", "vi": "Xe đạp", "hu": "Kerékpár", "th": "จักรยาน"},
                        "cost_points": 5000,
                    },
                ).id,
            }
        clock.advance(timedelta(days=5))  # the welcome lots (expiring 15 April) now expire within 30 days
        yield World(members, rewards, clock)


def link_path(database: Database, customer_id: str, **kwargs: int) -> str:
    with database.unit_of_work() as s:
        link = issue_portal_link(s, customer_id, **kwargs)
    return link.url.removeprefix("http://127.0.0.1:8000")


def open_portal(client: TestClient, database: Database, customer_id: str) -> str:
    """Open a fresh portal link; returns the portal page's HTML."""
    response = client.get(link_path(database, customer_id), follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/portal"
    page = client.get("/portal")
    assert page.status_code == 200, page.text
    return page.text
