"""The demo plan (pure): exact counts per country, local names, valid phones, currencies per market,
and determinism for a seed."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import phonenumbers
import pytest

from patron.core.money import quantize
from patron.customers import full_name
from patron.demo import DemoOptions, build_plan
from patron.demo.data import PEOPLE
from patron.demo.rules import local_price, mobile_number, romanise, split_counts

NOW = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
CURRENCY = {"VN": "VND", "HU": "HUF", "TH": "THB", "EU": "EUR", "US": "USD"}
THAI = re.compile(r"^[\u0e00-\u0e7f]+$")


@pytest.fixture(scope="module")
def plan():  # type: ignore[no-untyped-def]
    return build_plan(DemoOptions(customers=2000, years=2, seed=42), now=NOW)


def test_customers_per_country_are_exact(plan) -> None:  # type: ignore[no-untyped-def]
    counts = Counter(c.country for c in plan.customers)
    assert counts == {"VN": 700, "HU": 500, "TH": 500, "DE": 100, "AT": 40, "FR": 60, "US": 100}
    assert [c.external_id for c in plan.customers[:2]] == ["LL-C00001", "LL-C00002"]
    assert len({c.external_id for c in plan.customers}) == 2000


def test_split_counts_uses_largest_remainder() -> None:
    assert split_counts(10, [("a", 1), ("b", 1), ("c", 1)]) == {"a": 4, "b": 3, "c": 3}
    assert split_counts(7, [("VN", 35), ("HU", 25), ("TH", 25), ("US", 15)]) == {
        "VN": 2,
        "HU": 2,
        "TH": 2,
        "US": 1,
    }


def test_names_are_local_and_in_local_order(plan) -> None:  # type: ignore[no-untyped-def]
    vietnamese = [c for c in plan.customers if c.country == "VN"]
    vn_families = {name for name, _ in PEOPLE["VN"].family_names}
    for c in vietnamese:
        if c.duplicate_of is None:
            assert c.family_name in vn_families
            assert len(c.given_name.split()) == 2  # middle name + given name
    # Nguyễn is the most common Vietnamese family name
    assert Counter(c.family_name for c in vietnamese).most_common(1)[0][0] == "Nguyễn"
    first = vietnamese[0]
    assert full_name(first.given_name, first.family_name, first.language).split()[0] == first.family_name
    hungarians = [c for c in plan.customers if c.country == "HU" and c.language == "hu"]
    assert all(full_name(c.given_name, c.family_name, "hu").startswith(c.family_name) for c in hungarians)
    thai = [c for c in plan.customers if c.country == "TH"]
    assert all(THAI.match(c.given_name) and THAI.match(c.family_name) for c in thai)
    assert all(c.form_of_address == "คุณ" for c in thai)
    assert full_name("สมชาย", "ใจดี", "th") == "สมชาย ใจดี"
    assert {c.language for c in thai} == {"th"}
    assert {c.form_of_address for c in vietnamese} <= {"anh", "chị", "ông", "bà"}
    # Vietnamese-born customers living in Hungary keep Vietnamese names and language
    expats = [c for c in plan.customers if c.country == "HU" and c.attributes.get("born_in") == "VN"]
    assert expats
    assert all(c.language == "vi" and c.time_zone == "Europe/Budapest" for c in expats)


def test_diacritics_and_romanised_emails(plan) -> None:  # type: ignore[no-untyped-def]
    vietnamese = [c for c in plan.customers if c.country == "VN"]
    with_marks = [
        c
        for c in vietnamese
        if romanise(c.family_name + c.given_name, PEOPLE["VN"])
        != (c.family_name + c.given_name).lower().replace(" ", "")
    ]
    assert len(with_marks) > len(vietnamese) * 0.9
    for c in plan.customers:
        if c.email:
            local, domain = c.email.split("@")
            assert local.isascii(), c.email
            assert domain.lower().endswith(".example"), c.email
    assert romanise("Điền", PEOPLE["VN"]) == "dien"
    assert romanise("Kovács", PEOPLE["HU"]) == "kovacs"
    assert romanise("Müller", PEOPLE["DE"]) == "mueller"
    assert romanise("สมชาย", PEOPLE["TH"]) == "somchai"
    originals = [c.email.lower() for c in plan.customers if c.email and c.duplicate_of is None]
    assert len(originals) == len(set(originals))


def test_phones_are_valid_e164_for_the_country(plan) -> None:  # type: ignore[no-untyped-def]
    phones = [(c.country, c.phone) for c in plan.customers if c.phone]
    assert len(phones) > 1600
    for country, phone in phones:
        parsed = phonenumbers.parse(phone)
        assert phonenumbers.is_valid_number(parsed), phone
        assert phonenumbers.region_code_for_number(parsed) == country, phone
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == phone
    vn = [p for country, p in phones if country == "VN"]
    assert all(re.match(r"^\+84[35789]\d{8}$", p) for p in vn)
    hu = [p for country, p in phones if country == "HU"]
    assert all(re.match(r"^\+36(20|30|31|50|70)\d{7}$", p) for p in hu)
    th = [p for country, p in phones if country == "TH"]
    assert all(re.match(r"^\+66[689]\d{8}$", p) for p in th)


def test_generated_numbers_are_valid_for_many_draws() -> None:
    import random

    rng = random.Random(7)
    for country, table in PEOPLE.items():
        for _ in range(500):
            parsed = phonenumbers.parse(mobile_number(rng, table))
            assert phonenumbers.is_valid_number(parsed)
            assert phonenumbers.region_code_for_number(parsed) == country


def test_households_share_phones_and_duplicates_exist(plan) -> None:  # type: ignore[no-untyped-def]
    by_id = {c.external_id: c for c in plan.customers}
    members = [c for c in plan.customers if c.household_of]
    assert len(members) >= 40
    for c in members:
        head = by_id[c.household_of]
        assert c.phone == head.phone
        assert c.family_name == head.family_name
    duplicates = [c for c in plan.customers if c.duplicate_of]
    assert 5 <= len(duplicates) <= 60
    for c in duplicates:
        first = by_id[c.duplicate_of]
        same_email = (
            c.email is not None and first.email is not None and c.email.lower() == first.email.lower()
        )
        assert same_email or c.phone == first.phone


def test_orders_are_in_the_market_currency_and_add_up(plan) -> None:  # type: ignore[no-untyped-def]
    customers = {c.external_id: c for c in plan.customers}
    assert len(plan.orders) > 3000
    assert {o.currency for o in plan.orders} == {"VND", "HUF", "THB", "EUR", "USD"}
    for order in plan.orders:
        assert order.currency == CURRENCY[order.market]
        assert customers[order.customer_external_id].market == order.market
        subtotal = sum(
            (quantize(ln.unit_price * ln.quantity, order.currency) for ln in order.lines), Decimal(0)
        )
        assert order.subtotal == subtotal
        assert order.total == order.subtotal - order.discount + order.tax + order.shipping
        assert order.tax >= 0
        assert order.total > 0
        assert order.placed_at <= NOW
        assert order.placed_at >= customers[order.customer_external_id].signed_up_at
    vnd = [o for o in plan.orders if o.currency == "VND"]
    assert all(o.total == o.total.to_integral_value() for o in vnd)
    statuses = Counter(o.status for o in plan.orders)
    assert statuses["cancelled"] > 0
    assert sum(1 for o in plan.orders if o.refunds) > 50
    assert sum(1 for o in plan.orders if o.late) > 100
    repeat = Counter(o.customer_external_id for o in plan.orders)
    assert sum(1 for n in repeat.values() if n >= 2) > 500


def test_seasonality_shows_tet_and_christmas(plan) -> None:  # type: ignore[no-untyped-def]
    def per_month(market: str) -> Counter[int]:
        return Counter(o.placed_at.month for o in plan.orders if o.market == market)

    hu = per_month("HU")
    assert hu[12] > hu[7] * 1.5  # Christmas against high summer
    vn = per_month("VN")
    assert vn[1] + vn[2] > vn[4] + vn[5]  # Tết against spring


def test_local_prices_are_rounded_like_shop_prices() -> None:
    assert local_price(Decimal("9.90"), "VND", Decimal(27150)) == Decimal(270000)
    assert local_price(Decimal("4.50"), "VND", Decimal(27150)) == Decimal(120000)
    assert local_price(Decimal("3.00"), "VND", Decimal(27150)) == Decimal(81000)
    assert local_price(Decimal("9.90"), "HUF", Decimal("387.5")) == Decimal(3890)
    assert local_price(Decimal("9.90"), "THB", Decimal("37.8")) == Decimal(375)
    assert local_price(Decimal("9.90"), "USD", Decimal("1.085")) == Decimal("10.99")
    assert local_price(Decimal("9.90"), "EUR", Decimal(1)) == Decimal("9.90")


def test_fx_rates_cover_the_whole_period(plan) -> None:  # type: ignore[no-untyped-def]
    quotes = Counter(r.quote for r in plan.fx_rates)
    assert quotes == {"HUF": 25, "THB": 25, "USD": 25, "VND": 25}
    assert min(r.valid_on for r in plan.fx_rates) <= plan.start
    assert all(r.base == "EUR" and r.rate > 0 for r in plan.fx_rates)


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    options = DemoOptions(customers=300, seed=7)
    first = build_plan(options, now=NOW)
    again = build_plan(options, now=NOW)
    assert first == again
    other = build_plan(DemoOptions(customers=300, seed=8), now=NOW)
    assert [c.email for c in other.customers] != [c.email for c in first.customers]
    assert Counter(c.country for c in other.customers) == Counter(c.country for c in first.customers)


def test_subscriptions_consents_and_timeline(plan) -> None:  # type: ignore[no-untyped-def]
    assert len(plan.subscriptions) > 50
    for s in plan.subscriptions:
        assert s.interval in {"month", "year"}
        assert (s.status == "cancelled") == (s.cancelled_at is not None)
        assert s.status != "active" or (s.renews_at is not None and s.renews_at > NOW)
    assert {(c.purpose, c.channel) for c in plan.consents} >= {
        ("transactional", "email"),
        ("marketing", "email"),
        ("marketing", "zalo"),
        ("marketing", "line"),
    }
    assert any(c.status == "withdrawn" for c in plan.consents)
    assert all(c.recorded_at <= NOW for c in plan.consents)
    kinds = Counter(i.kind for i in plan.interactions)
    assert {"page_view", "complaint", "support_call"} <= set(kinds)
    vi = next(i for i in plan.interactions if i.kind == "store_visit" and i.summary.startswith("Ghé"))
    assert "cửa hàng" in vi.summary


def test_rejects_nonsense_options() -> None:
    with pytest.raises(ValueError, match="customers"):
        build_plan(DemoOptions(customers=0), now=NOW)
    with pytest.raises(ValueError, match="aware"):
        build_plan(DemoOptions(), now=datetime(2026, 1, 1))


def test_calls_about_an_order_come_after_it(plan) -> None:  # type: ignore[no-untyped-def]
    placed = {o.external_id: o.placed_at for o in plan.orders}
    about_orders = [
        i for i in plan.interactions if i.kind in ("support_call", "complaint") and "order" in i.data
    ]
    assert about_orders
    for interaction in about_orders:
        assert interaction.occurred_at >= placed[interaction.data["order"]], interaction
