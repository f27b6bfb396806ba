"""Segment rules compiled to SQL: exact member sets for every operator, on SQLite and PostgreSQL.

The customers are created once per module (through the customers service) in a database of this
module's own; every test reads them in its own rolled-back session with the clock frozen.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.core.clock import FrozenClock, use_clock
from patron.core.db import Database, make_engine
from patron.core.errors import ValidationFailed
from patron.customers import count_matching, list_matching, preview_segment, segment_customer_ids
from patron.customers.models import Customer
from tests.conftest import PG_URL, _truncate_all
from tests.customers.segment_factories import People, make_people

LIVE = {"anh", "binh", "chai", "dora", "eve"}
NOW = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)  # the frozen_clock fixture's time


@pytest.fixture(scope="module")
def shared(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, People]]:
    if PG_URL:
        _truncate_all(template_db)
        url = template_db
    else:
        path: Path = tmp_path_factory.mktemp("segments") / "patron.db"
        shutil.copyfile(template_db, path)
        url = f"sqlite:///{path}"
    engine = make_engine(url)
    database = Database(engine)
    with use_clock(FrozenClock(NOW)), database.unit_of_work() as session:
        people = make_people(session)
    yield database, people
    engine.dispose()


@pytest.fixture
def session(shared: tuple[Database, People], frozen_clock: FrozenClock) -> Iterator[Session]:
    s = shared[0].session(write=False)
    try:
        yield s
    finally:
        s.rollback()
        s.close()


@pytest.fixture
def people(shared: tuple[Database, People]) -> People:
    return shared[1]


def F(field: str, op: str, value: Any = None) -> dict[str, Any]:
    rule = {"type": "field", "field": field, "op": op}
    return rule if value is None else {**rule, "value": value}


def T(name: str, op: str, value: Any = None) -> dict[str, Any]:
    rule = {"type": "trait", "name": name, "op": op}
    return rule if value is None else {**rule, "value": value}


def members(session: Session, people: People, rules: dict[str, Any]) -> set[str]:
    ids = list(session.scalars(segment_customer_ids(session, rules)))
    found = people.names(ids)
    assert count_matching(session, rules) == len(found)
    return found


CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("country eq", F("country", "eq", "VN"), {"anh", "binh"}),
    ("country ne keeps missing", F("country", "ne", "VN"), {"chai", "dora", "eve"}),
    ("country in", F("country", "in", ["VN", "TH"]), {"anh", "binh", "chai"}),
    ("country not_in", F("country", "not_in", ["VN", "TH"]), {"dora", "eve"}),
    ("country exists", F("country", "exists"), {"anh", "binh", "chai", "dora"}),
    ("country not_exists", F("country", "not_exists"), {"eve"}),
    ("language", F("language", "eq", "vi"), {"anh", "binh"}),
    ("channel", F("preferred_channel", "eq", "zalo"), {"anh"}),
    ("email contains", F("email", "contains", "EXAMPLE.com"), {"anh", "eve"}),
    ("given starts_with", F("given_name", "starts_with", "d"), {"dora"}),
    ("birthday month", F("birthday_month", "eq", 3), {"anh", "chai"}),
    ("birthday month between", F("birthday_month", "between", [3, 7]), {"anh", "binh", "chai"}),
    ("birthday month gt", F("birthday_month", "gt", 3), {"binh"}),
    ("birthday day lte", F("birthday_day", "lte", 20), {"anh", "binh"}),
    ("birthday exists", F("birthday", "exists"), {"anh", "binh", "chai"}),
    ("birthday before", F("birthday", "lt", "1990-03-02"), {"binh"}),
    ("birthday on", F("birthday", "eq", "1990-03-02"), {"anh"}),
    ("created last 30 days", F("created_at", "within_last_days", 30), {"anh", "chai", "eve"}),
    ("created older than 90 days", F("created_at", "older_than_days", 90), {"binh", "dora"}),
    ("created since date", F("created_at", "gte", "2026-03-01"), {"anh", "eve"}),
    ("created before, with offset", F("created_at", "lt", "2026-02-20T06:00:00+07:00"), {"binh", "dora"}),
    (
        "created between",
        F("created_at", "between", ["2025-01-01", "2026-03-10T08:00:00Z"]),
        {"anh", "binh", "chai"},
    ),
    ("organisation_id field", F("organisation_id", "exists"), {"anh", "chai", "dora"}),
    ("role", F("organisation_role", "eq", "CEO"), {"dora"}),
    ("tag has (exact case)", {"type": "tag", "op": "has", "value": "vip"}, {"anh", "binh"}),
    ("tag has_any", {"type": "tag", "op": "has_any", "value": ["vip", "wholesale"]}, {"anh", "binh", "chai"}),
    ("tag has_all", {"type": "tag", "op": "has_all", "value": ["vip", "wholesale"]}, {"anh"}),
    ("tag has_all repeated", {"type": "tag", "op": "has_all", "value": ["vip", "vip"]}, {"anh", "binh"}),
    (
        "tag has none",
        {"type": "not", "rule": {"type": "tag", "op": "has_any", "value": ["vip", "wholesale"]}},
        {"dora", "eve"},
    ),
    ("trait gte (numbers as numbers)", T("total_spent", "gte", 1000000), {"anh", "chai"}),
    ("trait gt", T("total_spent", "gt", 1000000), {"anh"}),
    ("trait lt", T("total_spent", "lt", 1000000), {"binh", "eve"}),
    ("trait lte decimal", T("total_spent", "lte", 999999.5), {"binh", "eve"}),
    ("trait eq number", T("total_spent", "eq", 1000000), {"chai"}),
    ("trait between", T("total_spent", "between", [20, 1000000]), {"binh", "chai", "eve"}),
    ("trait eq text", T("tier", "eq", "gold"), {"anh"}),
    ("trait ne text keeps missing", T("tier", "ne", "gold"), {"binh", "chai", "dora", "eve"}),
    ("trait in", T("tier", "in", ["gold", "silver"]), {"anh", "binh"}),
    ("trait not_in", T("tier", "not_in", ["gold"]), {"binh", "chai", "dora", "eve"}),
    ("trait exists", T("total_spent", "exists"), {"anh", "binh", "chai", "eve"}),
    ("trait not_exists", T("total_spent", "not_exists"), {"dora"}),
    ("trait older than", T("last_order_at", "older_than_days", 90), {"binh"}),
    ("trait within last", T("last_order_at", "within_last_days", 30), {"anh"}),
    ("trait date compare", T("last_order_at", "gte", "2026-01-01"), {"anh"}),
    ("trait bool", T("newsletter", "eq", True), {"eve"}),
    ("trait bool ne", T("newsletter", "ne", True), {"anh", "binh", "chai", "dora"}),
    ("consent in force", {"type": "consent", "purpose": "marketing", "channel": "email"}, {"anh", "dora"}),
    ("consent expired", {"type": "consent", "purpose": "marketing", "channel": "sms"}, set()),
    ("organisation exists", {"type": "organisation", "op": "exists"}, {"anh", "chai", "dora"}),
    ("organisation not_exists", {"type": "organisation", "op": "not_exists"}, {"binh", "eve"}),
    (
        "organisation industry",
        {"type": "organisation", "field": "industry", "op": "eq", "value": "retail"},
        {"anh", "chai"},
    ),
    (
        "organisation industry ne",
        {"type": "organisation", "field": "industry", "op": "ne", "value": "retail"},
        {"binh", "dora", "eve"},
    ),
    (
        "organisation name folded",
        {"type": "organisation", "field": "name", "op": "contains", "value": "anh duong"},
        {"anh", "chai"},
    ),
    (
        "organisation size in",
        {"type": "organisation", "field": "size", "op": "in", "value": ["1-10"]},
        {"dora"},
    ),
    ("and of nothing", {"type": "and", "rules": []}, LIVE),
    ("or of nothing", {"type": "or", "rules": []}, set()),
    ("not of nothing", {"type": "not", "rule": {"type": "or", "rules": []}}, LIVE),
    (
        "nested and/not",
        {
            "type": "and",
            "rules": [
                F("country", "in", ["VN", "TH"]),
                {"type": "not", "rule": {"type": "tag", "op": "has", "value": "wholesale"}},
            ],
        },
        {"binh"},
    ),
    (
        "nested or/and",
        {
            "type": "or",
            "rules": [
                {"type": "and", "rules": [F("country", "eq", "VN"), T("total_spent", "gte", 1000000)]},
                {"type": "consent", "purpose": "marketing", "channel": "email"},
            ],
        },
        {"anh", "dora"},
    ),
    (
        "double not",
        {"type": "not", "rule": {"type": "not", "rule": F("country", "eq", "VN")}},
        {"anh", "binh"},
    ),
    (
        "not over a missing value is the complement",
        {"type": "not", "rule": F("country", "eq", "TH")},
        {"anh", "binh", "dora", "eve"},
    ),
    ("test customers when asked", F("is_test", "eq", True), {"tom"}),
    ("not test", F("is_test", "eq", False), LIVE),
]


@pytest.mark.parametrize(("rules", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_rule_matches_exact_members(
    session: Session, people: People, rules: dict[str, Any], expected: set[str]
) -> None:
    assert members(session, people, rules) == expected


def test_erased_merged_and_test_customers_never_match_by_default(session: Session, people: People) -> None:
    rows = {c.id: c for c in session.scalars(select(Customer).where(Customer.country == "VN"))}
    erin, mia, tom = rows[people.ids["erin"]], rows[people.ids["mia"]], rows[people.ids["tom"]]
    assert erin.erased_at is not None
    assert mia.merged_into_id == people.ids["anh"]
    assert (tom.is_test, tom.tags) == (True, ["vip"])
    assert members(session, people, F("country", "eq", "VN")) == {"anh", "binh"}
    assert members(session, people, {"type": "tag", "op": "has", "value": "vip"}) == {"anh", "binh"}
    assert members(session, people, {"type": "and", "rules": []}) == LIVE
    assert members(session, people, F("is_test", "eq", True)) == {"tom"}


def test_count_by_organisation(session: Session, people: People) -> None:
    assert count_matching(session, F("country", "in", ["VN", "TH"]), by="organisation") == 1
    assert (
        count_matching(
            session, {"type": "consent", "purpose": "marketing", "channel": "email"}, by="organisation"
        )
        == 2
    )
    assert count_matching(session, {"type": "and", "rules": []}, by="organisation") == 2
    assert count_matching(session, F("country", "eq", "HU"), by="organisation") == 1
    assert count_matching(session, F("language", "eq", "en"), by="organisation") == 0


def test_members_are_paged_by_creation_then_id(session: Session, people: People) -> None:
    everyone = {"type": "and", "rules": []}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = list_matching(session, everyone, cursor=cursor, limit=2)
        seen.extend(m.id for m in page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 3
    assert [people.names([i]).pop() for i in seen] == ["dora", "binh", "chai", "anh", "eve"]


def test_malformed_member_cursor_is_rejected(session: Session, people: People) -> None:
    with pytest.raises(ValidationFailed) as err:
        list_matching(session, {"type": "and", "rules": []}, cursor="bm9wZQ")
    assert err.value.code == "invalid_cursor"


def test_preview_counts_and_samples(session: Session, people: People) -> None:
    preview = preview_segment(session, F("country", "in", ["VN", "TH", "HU"]), sample_size=2)
    assert (preview.count, preview.organisations) == (4, 2)
    assert [m.given_name for m in preview.sample] == ["Dóra", "Bình"]
