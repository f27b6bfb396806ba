"""``seed_demo`` and ``patron demo`` on a fresh database: what lands in the tables, through the
domains' public reads."""

from __future__ import annotations

import re
from collections import Counter

import phonenumbers
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from patron.commerce import list_orders
from patron.commerce.models import Order, Refund, Subscription
from patron.core.business import fx_rate, get_business, list_markets
from patron.core.clock import FrozenClock
from patron.core.db import Database
from patron.core.outbox import OutboxEvent
from patron.core.settings import reset_settings_cache
from patron.customers import (
    count_segment,
    display_name,
    list_customers,
    list_duplicates,
    list_organisations,
    list_segments,
    list_timeline,
)
from patron.customers.models import ConsentRecord, Customer, Interaction, Organisation
from patron.demo import DatabaseNotEmpty, DemoOptions, build_plan, seed_demo

CURRENCY = {"VN": "VND", "HU": "HUF", "TH": "THB", "DE": "EUR", "AT": "EUR", "FR": "EUR", "US": "USD"}
COUNTED = (Customer, Order, Refund, Subscription, ConsentRecord, Interaction, Organisation)
EXPECTED_300 = {"VN": 105, "HU": 75, "TH": 75, "DE": 15, "AT": 6, "FR": 9, "US": 15}


def _all_customers(session):  # type: ignore[no-untyped-def]
    items, cursor = [], None
    while True:
        page = list_customers(session, limit=200, cursor=cursor)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            return items


def _all_orders(session):  # type: ignore[no-untyped-def]
    items, cursor = [], None
    while True:
        page = list_orders(session, limit=200, cursor=cursor)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            return items


@pytest.fixture
def seeded(database: Database, frozen_clock: FrozenClock) -> Database:
    with database.unit_of_work() as session:
        summary = seed_demo(session, DemoOptions(customers=300, seed=42))
    assert summary.customers_by_country == dict(sorted(EXPECTED_300.items()))
    return database


def test_demo_fills_a_fresh_database(seeded: Database) -> None:
    with seeded.unit_of_work(write=False) as session:
        customers = _all_customers(session)
        assert Counter(c.country for c in customers) == EXPECTED_300
        business = get_business(session)
        assert (business.reporting_currency, business.time_zone) == ("EUR", "Europe/Budapest")
        markets = {m.code: (m.currency, m.locale, m.time_zone) for m in list_markets(session)}
        assert markets == {
            "VN": ("VND", "vi_VN", "Asia/Ho_Chi_Minh"),
            "HU": ("HUF", "hu_HU", "Europe/Budapest"),
            "TH": ("THB", "th_TH", "Asia/Bangkok"),
            "EU": ("EUR", "en_IE", "Europe/Berlin"),
            "US": ("USD", "en_US", "America/New_York"),
        }
        first_day = min(o.placed_at for o in _all_orders(session)).date()
        assert fx_rate(session, "EUR", "HUF", first_day) > 300


def test_names_phones_and_languages(seeded: Database) -> None:
    with seeded.unit_of_work(write=False) as session:
        customers = _all_customers(session)
    for c in customers:
        if c.phone:
            parsed = phonenumbers.parse(c.phone)
            assert phonenumbers.is_valid_number(parsed), c.phone
            assert phonenumbers.region_code_for_number(parsed) == c.country
        if c.language in {"vi", "hu"}:
            assert display_name(c) == f"{c.family_name} {c.given_name}"
        else:
            assert display_name(c) == f"{c.given_name} {c.family_name}"
    vn = [c for c in customers if c.country == "VN"]
    assert {c.language for c in vn} == {"vi"}
    assert {c.time_zone for c in vn} == {"Asia/Ho_Chi_Minh"}
    th = [c for c in customers if c.country == "TH"]
    assert all(re.fullmatch(r"[\u0e00-\u0e7f]+", c.given_name) for c in th)
    assert {c.language for c in th} == {"th"}
    assert all(c.salutation.startswith("คุณ") for c in th)


def test_database_holds_exactly_the_seeded_plan(seeded: Database, frozen_clock: FrozenClock) -> None:
    plan = build_plan(DemoOptions(customers=300, seed=42), now=frozen_clock.now())
    with seeded.unit_of_work(write=False) as session:
        customers = {c.external_id: c for c in _all_customers(session)}
        orders = {o.external_id: o for o in _all_orders(session)}
    expected = {
        c.external_id: (c.given_name, c.family_name, c.email, c.phone, c.country, c.birthday)
        for c in plan.customers
    }
    stored = {
        key: (c.given_name, c.family_name, c.email, c.phone, c.country, c.birthday)
        for key, c in customers.items()
    }
    assert stored == expected
    assert {k: (o.currency, o.total.amount) for k, o in orders.items()} == {
        o.external_id: (o.currency, o.total) for o in plan.orders
    }


def test_orders_use_the_market_currency(seeded: Database) -> None:
    with seeded.unit_of_work(write=False) as session:
        customers = {c.id: c for c in _all_customers(session)}
        orders = _all_orders(session)
    assert len(orders) > 400
    for order in orders:
        assert order.currency == CURRENCY[customers[order.customer_id].country]
        assert order.source == "demo"
    assert Counter(o.status for o in orders).keys() >= {"placed", "cancelled"}
    assert any(o.status in {"refunded", "partially_refunded"} for o in orders)


def test_backfill_emits_no_events_and_fills_the_rest(seeded: Database) -> None:
    with seeded.unit_of_work(write=False) as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
        segments = {s.name: s for s in list_segments(session, limit=50).items}
        assert len(segments) == 7
        assert count_segment(session, segments["VIP customers"]) > 0
        assert count_segment(session, segments["Vietnam: reachable on Zalo"]) > 0
        assert list_organisations(session, limit=50).items
        assert list_duplicates(session, limit=50).items
        order = next(o for o in _all_orders(session) if o.currency == "VND")
        kinds = {i.kind for i in list_timeline(session, order.customer_id, limit=200).items}
        assert "order_placed" in kinds


def test_refuses_a_non_empty_database_unless_forced(seeded: Database) -> None:
    with seeded.unit_of_work() as session, pytest.raises(DatabaseNotEmpty):
        seed_demo(session, DemoOptions(customers=300, seed=42))
    with seeded.unit_of_work(write=False) as session:
        before = {t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in COUNTED}
    with seeded.unit_of_work() as session:
        seed_demo(session, DemoOptions(customers=300, seed=42), force=True)
    with seeded.unit_of_work(write=False) as session:
        after = {t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in COUNTED}
        assert len(_all_customers(session)) == 300
        assert len(list_segments(session, limit=50).items) == 7
    assert after == before  # a forced re-run with the same seed upserts, it does not duplicate


def test_award_points_emits_order_events(database: Database, frozen_clock: FrozenClock) -> None:
    with database.unit_of_work() as session:
        summary = seed_demo(session, DemoOptions(customers=40, seed=3, award_points=True))
    with database.unit_of_work(write=False) as session:
        placed = session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.name == "order.placed")
        )
    assert placed == summary.orders


def test_cli_demo_runs_once(db_url: str, monkeypatch: pytest.MonkeyPatch, frozen_clock: FrozenClock) -> None:
    import patron.cli.demo_cmd  # noqa: F401 - registers the command
    from patron.cli.main import app

    monkeypatch.setenv("PATRON_DATABASE_URL", db_url)
    reset_settings_cache()
    try:
        runner = CliRunner()
        first = runner.invoke(app, ["demo", "--customers", "60", "--seed", "5"])
        assert first.exit_code == 0, first.output
        assert "customers: 60 (AT 1, DE 3, FR 2, HU 15, TH 15, US 3, VN 21)" in first.output
        second = runner.invoke(app, ["demo", "--customers", "60"])
        assert second.exit_code == 1
        assert "database_not_empty" in second.output
    finally:
        monkeypatch.delenv("PATRON_DATABASE_URL")
        reset_settings_cache()
