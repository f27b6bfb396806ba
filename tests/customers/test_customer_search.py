"""Customer search: accent/case folding, phones, relevance, pagination, filters — and the index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from patron.core.clock import FrozenClock
from patron.customers import (
    CustomerCreateInput,
    create_customer,
    erase_customer,
    list_customers,
    merge_customers,
    update_customer,
)
from patron.customers import queries as queries_module
from patron.customers.models import Customer
from patron.customers.queries import TIERS, match_statement, search_statement
from patron.customers.rules import read_query


def make(session: Session, first: str, last: str, **kw: object) -> str:
    data = CustomerCreateInput(first_name=first, last_name=last, **kw)  # type: ignore[arg-type]
    return create_customer(session, data, allow_duplicate_email=True).id


def names(session: Session, q: str, **kw: object) -> list[str]:
    return [c.display_name for c in list_customers(session, q=q, **kw).items]  # type: ignore[arg-type]


@pytest.fixture
def people(session: Session) -> dict[str, str]:
    return {
        "an": make(session, "Văn An", "Nguyễn", email="an@example.vn", phone="0912 345 678", country="VN"),
        "dien": make(session, "Thị Điền", "Trần", country="VN", phone="+84 28 3822 1234"),
        "anna": make(session, "Anna", "Kovács", email="KOVACS.Anna@Example.hu", country="HU"),
        "somchai": make(session, "สมชาย", "ใจดี", country="TH", phone="081 234 5678"),
        "jane": make(session, "Jane", "Nguyen-Smith", email="jane@example.com", language="en"),
    }


def test_accent_and_case_insensitive(session: Session, people: dict[str, str]) -> None:
    assert names(session, "nguyen") == ["Nguyễn Văn An", "Jane Nguyen-Smith"]
    assert names(session, "NGUYỄN") == ["Nguyễn Văn An", "Jane Nguyen-Smith"]
    assert names(session, "dien") == ["Trần Thị Điền"]
    assert names(session, "Điền") == ["Trần Thị Điền"]
    assert names(session, "kovacs") == ["Kovács Anna"]
    assert names(session, "van an") == ["Nguyễn Văn An"]
    assert names(session, "nguyen van an") == ["Nguyễn Văn An"]
    assert names(session, "สมชาย") == ["สมชาย ใจดี"]
    assert names(session, "zzz") == []


def test_emails_and_phones(session: Session, people: dict[str, str]) -> None:
    assert names(session, "kovacs.anna@example") == ["Kovács Anna"]
    assert names(session, "EXAMPLE.HU") == ["Kovács Anna"]
    assert names(session, "0912 345 678") == ["Nguyễn Văn An"]
    assert names(session, "+84 912 345 678") == ["Nguyễn Văn An"]
    assert names(session, "84912345678") == ["Nguyễn Văn An"]
    assert names(session, "912 345") == ["Nguyễn Văn An"]
    assert names(session, "345 678") == ["Nguyễn Văn An", "สมชาย ใจดี"]  # 0812345678 too
    assert names(session, "028 3822 1234") == ["Trần Thị Điền"]
    assert names(session, "0812345678") == ["สมชาย ใจดี"]


def test_extra_emails_and_phones_are_searchable(session: Session, people: dict[str, str]) -> None:
    update_customer(session, people["anna"], {"emails": ["anna@work.example"], "phones": ["+36 30 123 4567"]})
    assert names(session, "anna@work") == ["Kovács Anna"]
    assert names(session, "06 30 123 4567") == ["Kovács Anna"]
    update_customer(session, people["anna"], {"emails": [], "last_name": "Szabó"})
    assert names(session, "anna@work") == []
    assert names(session, "kovacs anna") == []
    assert names(session, "kovacs.anna@") == ["Szabó Anna"]  # the email stays
    assert names(session, "szabo") == ["Szabó Anna"]


def test_short_queries_match_prefixes(session: Session, people: dict[str, str]) -> None:
    assert names(session, "ng") == ["Nguyễn Văn An", "Jane Nguyen-Smith"]  # family name prefix
    assert names(session, "ja") == ["Jane Nguyen-Smith"]  # given name or email prefix
    assert names(session, "ko") == ["Kovács Anna"]  # email prefix "kovacs.anna@…"
    assert names(session, "x") == []


def test_relevance_exact_then_prefix_then_substring(session: Session) -> None:
    sub = make(session, "Blanka", "Horváth", language="hu")
    prefix_word = make(session, "Thị Lan", "Hoàng", language="vi")
    prefix = make(session, "Lanh", "Phạm", language="vi")
    exact = make(session, "Lan", "Trần", language="vi")
    page = list_customers(session, q="lan")
    got = [c.id for c in page.items]
    assert got == [exact, *sorted([prefix_word, prefix]), sub]


def test_cursor_pagination_with_and_without_query(session: Session) -> None:
    ids = [make(session, f"Người {i}", "Lê", country="VN") for i in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        page = list_customers(session, q="le", limit=3, cursor=cursor)
        seen += [c.id for c in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(ids)
    seen = []
    cursor = None
    for _ in range(5):
        page = list_customers(session, q="nguoi", limit=2, cursor=cursor)
        seen += [c.id for c in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(ids)
    # without a query: newest first
    first = list_customers(session, limit=4)
    second = list_customers(session, limit=4, cursor=first.next_cursor)
    assert [c.id for c in first.items + second.items] == sorted(ids, reverse=True)
    assert second.next_cursor is None


def test_filters(session: Session, frozen_clock: FrozenClock) -> None:
    early = make(session, "An", "Lê", country="VN", tags=("vip", "hanoi"))
    frozen_clock.advance(timedelta(days=2))
    late = make(session, "Bình", "Lê", country="VN", language="en", tags=("hanoi",))
    hungarian = make(session, "Anna", "Lékó", country="HU", tags=("vip",))
    assert [c.id for c in list_customers(session, tag="vip").items] == [hungarian, early]
    assert [c.id for c in list_customers(session, q="le", tag="hanoi").items] == sorted([early, late])
    assert [c.id for c in list_customers(session, country="hu").items] == [hungarian]
    assert [c.id for c in list_customers(session, language="vi").items] == [early]
    cut = datetime(2026, 3, 16, tzinfo=UTC)
    assert [c.id for c in list_customers(session, created_before=cut).items] == [early]
    assert [c.id for c in list_customers(session, created_after=cut).items] == [hungarian, late]


def test_erased_and_merged_are_left_out(session: Session) -> None:
    keep = make(session, "Minh", "Đỗ", country="VN")
    gone = make(session, "Minh", "Đỗ Văn", country="VN")
    erased = make(session, "Minh", "Đỗ Thị", country="VN")
    merge_customers(session, source_id=gone, target_id=keep)
    erase_customer(session, erased)
    assert [c.id for c in list_customers(session, q="do").items] == [keep]
    assert {c.id for c in list_customers(session, q="do", include_merged=True).items} == {keep, gone}
    # erased customers have no name left to find, but the filter shows them
    assert [c.id for c in list_customers(session, q="do", include_erased=True).items] == [keep]
    assert erased in {c.id for c in list_customers(session, include_erased=True).items}


def _plan(session: Session, stmt: Any, *, index: bool = True) -> str:
    """The plan, on PostgreSQL under the settings list_customers uses for that kind of statement."""
    if index:
        with queries_module.using_search_index(session):
            return _plan(session, stmt, index=False)
    dialect = session.get_bind().dialect
    compiled = stmt.compile(dialect=dialect)
    conn = session.connection()
    if dialect.name == "sqlite":
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
        return " ".join(
            str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)
        )
    return "\n".join(str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params))


def test_query_plan_uses_the_trigram_index(session: Session, people: dict[str, str]) -> None:
    found: list[str] = []
    for tier in TIERS:  # exact, prefix, substring: one statement each, in id order
        stmt, _, _ = search_statement(session, q="nguyen", tier=tier)
        plan = _plan(session, stmt)
        if session.get_bind().dialect.name == "sqlite":
            assert "customer_search_fts VIRTUAL TABLE INDEX" in plan, plan
            assert "SCAN customers" not in plan, plan
        elif tier == 0:  # "a field equals the query": a key of the fields' own GIN index
            assert "ixs_customers_search_words" in plan, plan
            assert "ixs_customers_search_trgm" not in plan, plan
        else:
            assert "ixs_customers_search_trgm" in plan, plan
        # and the statement finds what the plan promises
        found += [c.id for c in session.scalars(stmt)]
    assert found == [people["an"], people["jane"]]  # |nguyen| (family name), then |nguyen-smith|
    # the first step: the index finds the matching ids (at most a cap of them)
    probe = match_statement(session, "nguyen", cap=100)
    plan = _plan(session, probe)
    if session.get_bind().dialect.name == "sqlite":
        assert "customer_search_fts VIRTUAL TABLE INDEX" in plan, plan
        assert "SCAN customers" not in plan, plan
    else:
        assert "ixs_customers_search_trgm" in plan, plan
    assert sorted(session.scalars(probe)) == sorted([people["an"], people["jane"]])
    assert len(list(session.scalars(match_statement(session, "nguyen", cap=1)))) == 1
    # few matches: one statement through the index, ranked
    stmt, _, _ = search_statement(session, q="nguyen")
    plan = _plan(session, stmt)
    if session.get_bind().dialect.name == "sqlite":
        assert "customer_search_fts VIRTUAL TABLE INDEX" in plan, plan
        assert "SCAN customers" not in plan, plan
    else:
        assert "ixs_customers_search_trgm" in plan, plan
    assert [tuple(row) for row in session.execute(stmt)] == [
        (session.get(Customer, people["an"]), 0),
        (session.get(Customer, people["jane"]), 1),
    ]


def test_query_plan_of_a_common_term_walks_the_primary_key(session: Session, people: dict[str, str]) -> None:
    """When a tier has many matches, its rows are read in id order and the walk stops after a page."""
    stmt, _, _ = search_statement(session, q="nguyen", tier=0, scan=True, limit=10)
    if session.get_bind().dialect.name == "postgresql":  # a few rows: a sequential scan is cheaper
        session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = _plan(session, stmt, index=False)
    if session.get_bind().dialect.name == "sqlite":
        assert "SCAN customers USING INDEX sqlite_autoindex_customers_1" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # no sort: stops after limit + 1 rows
    else:
        assert "Index Scan using pk_customers" in plan, plan
        assert "Sort" not in plan, plan
    assert [c.id for c in session.scalars(stmt)] == [people["an"]]
    # a common short name ("Lê") walks the primary key too: no OR of index lookups and a sort of
    # every match (tens of thousands of rows at a million customers)
    walk, _, _ = search_statement(session, q="nguyen"[:2], tier=0, scan=True, limit=10)
    plan = _plan(session, walk, index=False)
    if session.get_bind().dialect.name == "sqlite":
        assert "SCAN customers USING INDEX sqlite_autoindex_customers_1" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
        assert "MULTI-INDEX OR" not in plan, plan
    else:
        assert "Index Scan using pk_customers" in plan, plan
        assert "Sort" not in plan, plan
    short, _, _ = search_statement(session, q="ng", tier=1)
    plan = _plan(session, short)
    if session.get_bind().dialect.name == "sqlite":
        assert "ix_customers_family_folded" in plan, plan
    else:
        assert "ix_customers_family_folded" in plan, plan
    assert [c.id for c in session.scalars(short)] == sorted([people["an"], people["jane"]])


@pytest.mark.parametrize("walk", [False, True], ids=["few-matches", "many-matches"])
def test_pages_run_across_relevance_tiers(
    session: Session, monkeypatch: pytest.MonkeyPatch, walk: bool
) -> None:
    if walk:  # every tier counts as common: read tier by tier, walking the primary key
        monkeypatch.setattr(queries_module, "_MIN_THRESHOLD", 1)
        monkeypatch.setattr(queries_module, "_MAX_THRESHOLD", 1)
    substring = sorted(make(session, f"Hà {i}", "Lê", email=f"x{i}.hoalan@example.vn") for i in range(3))
    prefix = sorted(make(session, "Hoa", f"Lan{i}") for i in range(2))
    exact = sorted(make(session, "Hoa", "Lan", phone=f"+84 912 000 00{i}") for i in range(3))
    expected = [*exact, *prefix, *substring]
    for size in (1, 2, 3, 4, 7, 8, 9):
        seen: list[str] = []
        cursor = None
        for _ in range(12):
            page = list_customers(session, q="lan", limit=size, cursor=cursor)
            assert len(page.items) <= size
            seen += [c.id for c in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == expected, size
    # filters apply in every tier
    assert [c.id for c in list_customers(session, q="lan", tag="none").items] == []
    # a cursor from another tier than the first starts there
    first = list_customers(session, q="lan", limit=4)
    assert [c.id for c in first.items] == expected[:4]
    second = list_customers(session, q="lan", limit=4, cursor=first.next_cursor)
    assert [c.id for c in second.items] == expected[4:]
    assert second.next_cursor is None


def test_walking_in_id_order_gives_the_same_answers(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each tier is read through the index or by walking the primary key, by its number of matches:
    force the walk (threshold 1) and compare every page."""
    ids = sorted(make(session, f"Văn {i}", "Nguyễn", email=f"nguyen{i}@gmail.com") for i in range(4))
    other = make(session, "Anna", "Nguyenova", phone="+36 30 123 4567")
    queries = ["nguyen", "van", "gmail", "nguyen van 1", "ng", "n", "0630", "zzz"]
    usual = {
        q: [[c.id for c in list_customers(session, q=q, limit=2, cursor=c).items] for c in (None,)]
        for q in queries
    }
    expected = {q: _all_pages(session, q) for q in queries}
    assert expected["nguyen"] == [*ids, other]
    assert expected["gmail"] == ids
    assert expected["0630"] == [other]
    assert expected["ng"] == [*ids, other]
    monkeypatch.setattr(queries_module, "_MIN_THRESHOLD", 1)
    monkeypatch.setattr(queries_module, "_MAX_THRESHOLD", 1)
    for q in queries:
        assert _all_pages(session, q) == expected[q], q
        assert [[c.id for c in list_customers(session, q=q, limit=2).items]] == usual[q], q


def _all_pages(session: Session, q: str) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = list_customers(session, q=q, limit=2, cursor=cursor)
        seen += [c.id for c in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


def test_malformed_search_cursor(session: Session) -> None:
    from patron.core.errors import ValidationFailed
    from patron.core.pagination import encode_cursor

    for bad in (encode_cursor([3, "x"]), encode_cursor(["a", "x"]), encode_cursor([1])):
        with pytest.raises(ValidationFailed) as info:
            list_customers(session, q="lan", cursor=bad)
        assert info.value.code == "invalid_cursor"


@pytest.mark.parametrize("cap", [1, 2, 3, 100])
def test_tier_counts_from_nested_sets_equal_the_tiers(session: Session, cap: int) -> None:
    """SQLite counts exact ⊂ starts ⊂ any and subtracts; the result must be each tier's own count (the
    one the tier's rows are read with), capped the same way."""
    make(session, "Hoa", "Lan")  # exact
    make(session, "Hoa", "Lan")
    make(session, "Mai", "Lan Anh")  # starts a word
    make(session, "Hoa", "Lanh")  # starts a field
    make(session, "Thu", "Ngọc", email="xlan@example.vn")  # inside
    make(session, "Bích", "Ngọc")  # no match
    for q in ("lan", "hoa", "ngoc", "example", "zz9"):
        query = read_query(q)
        assert query is not None
        counts = queries_module._TierCounts(session, query, cap)
        assert [counts(t) for t in TIERS] == [
            queries_module._tier_count(session, query, t, cap) for t in TIERS
        ], q


@pytest.mark.parametrize("threshold", [1, 2, 3])
def test_tier_sizes_estimated_from_the_sample_give_the_same_answers(
    session: Session, monkeypatch: pytest.MonkeyPatch, threshold: int
) -> None:
    """PostgreSQL walks a tier at once when the capped sample of matches says it is common, and asks the
    index for the ids of any other (reading them by id when fewer than the cap): every combination must
    give the pages the usual plan gives."""
    ids = sorted(make(session, f"Văn {i}", "Nguyễn", email=f"nguyen{i}@gmail.com") for i in range(4))
    make(session, "Anna", "Nguyenova", phone="+36 30 123 4567")
    make(session, "Thị Ngân", "Trần", email="ngan.tran@example.vn")
    make(session, "Ngân", "Lê")
    make(session, "Ngân", "Phạm")  # two exact: a page of two ends inside a tier read by id
    make(session, "Nguyễn", "Hoàng")
    queries = ["nguyen", "van", "gmail", "ngan", "nguyen van 1", "ng", "0630", "zzz"]
    expected = {q: _all_pages(session, q) for q in queries}
    assert expected["gmail"] == ids
    for q in queries:  # the definition, row by row: exact field, then a field or word starts, then inside
        query = read_query(q)
        assert query is not None
        if len(query.text) >= 3:
            assert expected[q] == _by_definition(session, query.text), q
    monkeypatch.setattr(queries_module, "_MIN_THRESHOLD", threshold)
    monkeypatch.setattr(queries_module, "_MAX_THRESHOLD", threshold)
    for min_sample in (0, 1, 1000):  # every sampled tier counts as common / only by its share / never
        monkeypatch.setattr(queries_module, "_MIN_SAMPLE", min_sample)
        for q in queries:
            assert _all_pages(session, q) == expected[q], (q, min_sample)


def _by_definition(session: Session, v: str) -> list[str]:
    ranked = []
    for c in session.scalars(select(Customer)):
        st = c.search_text
        if v in st:
            ranked.append((0 if f"|{v}|" in st else 1 if f"|{v}" in st or f" {v}" in st else 2, c.id))
    return [cid for _, cid in sorted(ranked)]


def test_exact_field_lookup_equals_the_row_check(session: Session) -> None:
    """Tier 0 through the index (PostgreSQL: the one-word fields' GIN index for a one-word query, else
    the trigrams) finds exactly the rows whose search text holds ``|q|`` — not those where q is only a
    field's last word or a part of an email."""
    ngan = make(session, "Ngân", "Lê")
    thi = make(session, "Thị Ngân", "Trần", email="ngan@example.vn")  # "ngan" ends a field, starts an email
    full = make(session, "Văn An", "Nguyễn", phone="0912 345 678", country="VN")
    for q, exact in [("ngan", [ngan]), ("nguyen van an", [full]), ("van an", [full]),
                     ("0912345678", [full]), ("ngan@example", []), ("le ngan", [ngan]),
                     ("ngan@example.vn", [thi]), ("tran", [thi])]:  # fmt: skip
        indexed, _, _ = search_statement(session, q=q, tier=0)
        walked, _, _ = search_statement(session, q=q, tier=0, scan=True)
        assert [c.id for c in session.scalars(indexed)] == exact, q
        assert [c.id for c in session.scalars(walked)] == exact, q


def test_search_restores_the_planner_settings(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL plans index statements with sequential and plain index scans off (SET LOCAL): every way
    out of a search — no match, few, many — leaves the transaction's settings as they were."""
    make(session, "Văn An", "Nguyễn")
    make(session, "Văn Bình", "Nguyễn")
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("planner settings are PostgreSQL's")
    before = session.execute(
        text("SELECT current_setting('enable_seqscan'), current_setting('enable_indexscan')")
    ).one()
    for threshold in (1000, 1):
        monkeypatch.setattr(queries_module, "_MIN_THRESHOLD", threshold)
        monkeypatch.setattr(queries_module, "_MAX_THRESHOLD", threshold)
        for q in ("zzz", "nguyen", "van", "ng"):
            list_customers(session, q=q, limit=1)
            after = session.execute(
                text("SELECT current_setting('enable_seqscan'), current_setting('enable_indexscan')")
            ).one()
            assert tuple(after) == tuple(before), (q, threshold)


@pytest.mark.parametrize(
    "value",
    ["ngan", "nguyen-smith", "o'brien", "ธนวัฒน์", "van an", "an@example.vn", "0912", "๑๒๓", "a1", "x.y"],
)
def test_one_word_fields_agree_with_the_index_function(session: Session, value: str) -> None:
    """PostgreSQL looks a one-word query up in ``customer_search_words``; the Python test that picks that
    path must keep exactly the fields the SQL function keeps, or exact matches would be missed."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the index function is PostgreSQL's")
    kept = session.scalar(text("SELECT :v = ANY(customer_search_words('|x|' || :v || '|'))"), {"v": value})
    assert kept is queries_module._one_word(value)


def test_exact_lookup_follows_every_write(session: Session) -> None:
    """The exact tier's index (PostgreSQL: an expression over ``search_text``) follows creates, updates,
    bulk upserts, merges and erasure — each checked against the row-by-row walk."""
    from patron.customers import prepare_customer, upsert_customers_bulk

    def exact(q: str) -> list[str]:
        indexed, _, _ = search_statement(session, q=q, tier=0, include_merged=True)
        walked, _, _ = search_statement(session, q=q, tier=0, include_merged=True, scan=True)
        found = [c.id for c in session.scalars(indexed)]
        assert found == [c.id for c in session.scalars(walked)], q
        return found

    ngan = make(session, "Ngân", "Lê")
    assert exact("ngan") == [ngan]
    update_customer(session, ngan, {"first_name": "Hoa"})
    assert exact("ngan") == []
    assert exact("hoa") == [ngan]
    [bulk] = upsert_customers_bulk(session, [prepare_customer({"external_id": "x1", "first_name": "Ngân"})])
    assert exact("ngan") == [bulk.customer_id]
    upsert_customers_bulk(session, [prepare_customer({"external_id": "x1", "first_name": "Thảo"})])
    assert exact("ngan") == []
    assert exact("thao") == [bulk.customer_id]
    merge_customers(session, source_id=bulk.customer_id, target_id=ngan)
    assert exact("thao") == [bulk.customer_id]  # merged: still found with include_merged
    erase_customer(session, ngan)
    assert exact("hoa") == []
