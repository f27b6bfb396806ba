"""Reads: one customer, the searchable list, duplicates, timeline, consent, traits.

Search (``list_customers(q=...)``) is a case- and accent-insensitive substring match over names,
emails and phones. Both sides are folded in Python (:func:`patron.core.text.fold`: ``Nguyễn`` →
``nguyen``, ``Điền`` → ``dien``); a query that looks like a phone number (digits, spaces, ``+``,
``-``, ``.``, ``()``) is matched by its digits against the E.164 digits and the national-format
digits of every phone (``0912 345 678`` and ``+84 912 345 678`` both find ``+84912345678``).

Index: on SQLite a contentless FTS5 table ``customer_search_fts`` with the ``trigram`` tokenizer (a
phrase query is an exact substring match, ``|`` and spaces included); on PostgreSQL a ``pg_trgm`` GIN
index on ``customers.search_text`` with field and word starts marked by a letter (``PG_MARKED_TEXT``:
pg_trgm ignores punctuation), plus a GIN index on the one-word fields (``PG_WORDS``) for "a field
equals this one-word query". All are created by migration 0002. Queries shorter than three characters
(no trigram) match the start of the given name, family name or email through their B-tree indexes.

Relevance: 0 — the query equals a whole field (a name in either order, given or family name, an
email, a phone's digits); 1 — a field or a word of a field starts with the query; 2 — the query is
found elsewhere inside a field. Results are ordered by relevance, then id. Without ``q`` the list is
newest first (created_at, id descending). Erased and merged customers are left out unless asked for.

Cost: a page is filled tier by tier (the cursor is ``[tier, last id]``), each tier with ``ORDER BY id
LIMIT`` what is still missing. The index first counts a tier's matches, up to a threshold of about
√(page × customers) (``_sort_threshold``): below it the matches are read through the index and sorted;
from it on the tier is common enough that walking the primary key in id order, checking each row,
fills the page within a few thousand rows. So no query reads or sorts every match (``nguyen`` matches
a third of a Vietnamese customer base). On PostgreSQL, where a GIN bitmap scan cannot stop early and
so costs as much for one row as for the cap, the statements through the trigram index are kept to a
minimum instead (:func:`_search_postgresql`): the exact matches first (cheap, however common), then
one capped sample of all matches with their tiers, which decides the rest without counting.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    TextClause,
    and_,
    case,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from patron.core.clock import now
from patron.core.errors import NotFound, ValidationFailed
from patron.core.pagination import Page, clamp_limit, decode_cursor, encode_cursor
from patron.customers.contracts import (
    CONSENT_CHANNELS,
    PURPOSES,
    ConsentLedgerView,
    ConsentRecordView,
    ConsentStateView,
    CustomerView,
    DuplicatePair,
    InteractionView,
    TraitView,
)
from patron.customers.errors import CustomerNotFound
from patron.customers.models import (
    ConsentRecord,
    Customer,
    CustomerEmail,
    CustomerPhone,
    Interaction,
    Trait,
)
from patron.customers.rules import SearchQuery, decode_trait, display_name, read_query, salutation

MIN_TRIGRAM = 3
_MAX_CHAR = "\U0010ffff"


# ---- one customer ------------------------------------------------------------------------------


def _plausible_id(value: str) -> bool:
    return 0 < len(value) <= 36 and "\x00" not in value


def load_customer(session: Session, customer_id: str) -> Customer:
    """The ORM row (merged and erased ones included) or :class:`CustomerNotFound`."""
    customer = session.get(Customer, customer_id) if _plausible_id(customer_id) else None
    if customer is None:
        raise CustomerNotFound(f"no customer with id {customer_id!r}")
    return customer


def resolve_customer(session: Session, customer_id: str) -> Customer:
    """Follow ``merged_into`` to the customer that holds the history now."""
    customer = load_customer(session, customer_id)
    seen = {customer.id}
    while customer.merged_into_id is not None and customer.merged_into_id not in seen:
        customer = load_customer(session, customer.merged_into_id)
        seen.add(customer.id)
    return customer


def _in_ids(dialect: str, column: Any, ids: Sequence[str], name: str = "match_ids") -> ColumnElement[bool]:
    """``column IN (ids)`` with one JSON parameter: hundreds or thousands of ids would otherwise be as
    many bound parameters to render and bind on every search."""
    if dialect == "sqlite":
        inner = text(f"SELECT value FROM json_each(:{name})")
    else:
        inner = text(f"SELECT jsonb_array_elements_text(CAST(:{name} AS jsonb)) AS value")
    inner = inner.bindparams(**{name: json.dumps(list(ids))})
    return column.in_(inner.columns(literal_column("value")))  # type: ignore[no-any-return]


def extra_contacts(
    session: Session, customer_ids: Sequence[str]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The further emails and phones of these customers (one statement)."""
    emails: dict[str, list[str]] = defaultdict(list)
    phones: dict[str, list[str]] = defaultdict(list)
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return emails, phones
    dialect = _dialect(session)
    both = union_all(
        select(
            CustomerEmail.customer_id, literal("e").label("kind"), CustomerEmail.email.label("value")
        ).where(_in_ids(dialect, CustomerEmail.customer_id, ids, "contact_ids")),
        select(CustomerPhone.customer_id, literal("p"), CustomerPhone.phone_e164).where(
            _in_ids(dialect, CustomerPhone.customer_id, ids, "contact_ids")
        ),
    ).order_by(text("1, 2, 3"))
    for cid, kind, value in session.execute(both):
        (emails if kind == "e" else phones)[cid].append(value)
    return emails, phones


def to_view(customer: Customer, emails: Sequence[str] = (), phones: Sequence[str] = ()) -> CustomerView:
    return CustomerView(
        id=customer.id,
        external_id=customer.external_id,
        given_name=customer.given_name,
        family_name=customer.family_name,
        display_name=display_name(customer),
        salutation=salutation(customer),
        form_of_address=customer.form_of_address,
        email=customer.email,
        emails=tuple(emails),
        phone=customer.phone_e164,
        phones=tuple(phones),
        language=customer.language,
        preferred_channel=customer.preferred_channel,
        time_zone=customer.time_zone,
        country=customer.country,
        birthday=customer.birthday,
        tags=tuple(customer.tags or ()),
        attributes=dict(customer.attributes or {}),
        referral_code=customer.referral_code,
        organisation_id=customer.organisation_id,
        organisation_role=customer.organisation_role,
        is_test=customer.is_test,
        erased_at=customer.erased_at,
        merged_into_id=customer.merged_into_id,
        merged_at=customer.merged_at,
        version=customer.version,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def views(session: Session, customers: Sequence[Customer]) -> list[CustomerView]:
    emails, phones = extra_contacts(session, [c.id for c in customers])
    return [to_view(c, emails.get(c.id, ()), phones.get(c.id, ())) for c in customers]


def get_customer(session: Session, customer_id: str) -> CustomerView:
    return views(session, [load_customer(session, customer_id)])[0]


def customer_exists(session: Session, customer_id: str) -> bool:
    if not _plausible_id(customer_id):
        return False
    return session.scalar(select(literal(1)).where(Customer.id == customer_id)) is not None


def find_customer_id_by_external_id(session: Session, external_id: str) -> str | None:
    """The customer with this external id — or, if it was merged, the customer it was merged into."""
    found = session.scalar(select(Customer.id).where(Customer.external_id == external_id))
    if found is None:
        return None
    return resolve_customer(session, found).id


# ---- search and list -------------------------------------------------------------------------

TIERS = (0, 1, 2)  # relevance: exact field, a field or word starts with the query, substring
# A tier whose index finds fewer rows than the threshold is read through the index and sorted by id; a
# tier with more is read in id order (primary key) and checked row by row, which stops after a page.
# Measured at 100,000 customers: a row read through the index, joined and sorted costs about 5× a row
# walked in id order; the two plans cost the same at sqrt(page × customers / 5) matches.
_SCAN_COST = 0.2
_MIN_THRESHOLD = 200
_MAX_THRESHOLD = 20_000
# PostgreSQL: pg_trgm drops punctuation, so it cannot tell ``|nguyen`` (a field starts) from ``nguyen``.
# Its GIN index (migration 0002) is on this expression instead: a letter that folded text never holds
# marks where each field and each word starts and where each field ends (``ǂ|ǂnguyen ǂvan ǂanǂ|ǂ…``),
# so "exact field" and "starts a field or word" are trigrams the index can look up — and rule out.
# (Should a name hold a ǂ, the index only finds a few more candidates: every tier is rechecked on
# ``search_text`` itself.)
_MARK = "\u01c2"  # ǂ
PG_MARKED_TEXT = f"replace(replace(customers.search_text, ' ', ' {_MARK}'), '|', '{_MARK}|{_MARK}')"
# ... but the marks cannot tell a field's last word from the whole field (``ǂnganǂ`` is in both
# ``|ngan|`` and ``|tran thi ngan|``): for a query of one word (no space, no ``@``, not only digits)
# "a field equals the query" is a key of a second GIN index on the one-word fields (migration 0002:
# ``ixs_customers_search_words``). A folded query holds no ``|``, so ``|q|`` is in ``search_text``
# exactly when ``q`` is one of its fields — and a one-word q can only equal a one-word field.
PG_WORDS = "customer_search_words(customers.search_text)"


def _one_word(value: str) -> bool:
    """Whether ``customer_search_words`` keeps a field equal to ``value`` (the same test as its SQL)."""
    return " " not in value and "@" not in value and re.fullmatch("[0-9]+", value) is None


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _phrase(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _fts_expression(value: str, tier: int | None) -> str:
    """The FTS5 query (trigram phrases are exact substrings) for the rows of one relevance tier (or of
    any tier: ``None``)."""
    if tier is None:
        return _phrase(value)
    exact, starts = _phrase(f"|{value}|"), f"({_phrase('|' + value)} OR {_phrase(' ' + value)})"
    if tier == 0:
        return exact
    if tier == 1:
        return f"{starts} NOT {exact}"
    return f"{_phrase(value)} NOT {starts}"


def _contains(dialect: str, column: Any, needle: str) -> ColumnElement[bool]:
    """A per-row substring test that no index serves (so it cannot lure a planner off the walk)."""
    return (func.instr(column, needle) if dialect == "sqlite" else func.strpos(column, needle)) > 0


def _tier_condition(dialect: str, value: str, tier: int | None) -> ColumnElement[bool]:
    """Whether a row belongs to ``tier`` for a query of three characters or more, read from the row
    itself (``search_text`` holds ``|field|field|``): 0 — ``|q|``; 1 — ``|q`` or `` q``; 2 — ``q``."""
    st = Customer.search_text
    if tier is None:
        return _contains(dialect, st, value)
    exact = _contains(dialect, st, f"|{value}|")
    starts = or_(_contains(dialect, st, f"|{value}"), _contains(dialect, st, f" {value}"))
    if tier == 0:
        return exact
    if tier == 1:
        return and_(starts, ~exact)
    return and_(_contains(dialect, st, value), ~starts)


def _short_condition(dialect: str, value: str, tier: int | None, *, indexed: bool) -> ColumnElement[bool]:
    """Queries shorter than a trigram: 0 — equals the given name, family name or email; 1 — one of
    them starts with the query. ``indexed`` picks B-tree friendly forms (ranges), else per-row forms."""
    columns = (Customer.given_folded, Customer.family_folded, Customer.email_folded)
    if indexed:
        exact = or_(*(col == value for col in columns))
    else:  # coalesce hides the B-trees: an OR of index lookups plus a sort would read every match
        exact = or_(*(func.coalesce(col, "") == value for col in columns))
    if indexed and dialect == "sqlite":  # SQLite's LIKE is case-insensitive and skips the index
        starts = or_(*(and_(col >= value, col < value + _MAX_CHAR) for col in columns))
    elif indexed:
        starts = or_(*(col.like(f"{_escape_like(value)}%", escape="\\") for col in columns))
    else:
        starts = or_(*(func.substr(col, 1, len(value)) == value for col in columns))
    if tier is None:
        return starts
    if tier == 0:
        return exact
    # spelled out rather than ~exact: a NULL email would make the negation NULL
    not_exact = and_(*(col != value for col in columns[:2]), or_(columns[2].is_(None), columns[2] != value))
    return and_(starts, not_exact)


def _index_condition(dialect: str, query: SearchQuery, tier: int | None) -> ColumnElement[bool]:
    """Membership in ``tier`` (``None``: in any tier) in a form the search index serves."""
    value = query.text
    if len(value) < MIN_TRIGRAM:
        return _short_condition(dialect, value, tier, indexed=True)
    if dialect == "sqlite":
        matched = text(
            "SELECT customer_search.customer_id FROM customer_search_fts "
            "JOIN customer_search ON customer_search.id = customer_search_fts.rowid "
            "WHERE customer_search_fts MATCH :fts_match"
        ).bindparams(fts_match=_fts_expression(value, tier))
        return Customer.id.in_(matched.columns(literal_column("customer_id")))
    if tier == 0 and _one_word(value):
        word = text(f"{PG_WORDS} @> ARRAY[CAST(:exact_word AS text)]").bindparams(exact_word=value)
        return and_(word, _tier_condition(dialect, value, tier))
    marked = value.replace(" ", " " + _MARK)
    pattern = marked if tier is None else (f"|{_MARK}{marked}{_MARK}|", _MARK + marked, marked)[tier]
    like = literal_column(PG_MARKED_TEXT).like(f"%{_escape_like(pattern)}%", escape="\\")  # the GIN index
    return and_(like, _tier_condition(dialect, value, tier))


def _scan_condition(dialect: str, query: SearchQuery, tier: int) -> ColumnElement[bool]:
    """Membership in ``tier`` checked on each row (for a walk in id order that no index can shortcut)."""
    value = query.text
    if len(value) < MIN_TRIGRAM:
        return _short_condition(dialect, value, tier, indexed=False)
    return _tier_condition(dialect, value, tier)


def _tier_count(session: Session, query: SearchQuery, tier: int | None, cap: int) -> int:
    """How many rows the search index finds for ``tier`` (filters aside), counting no further than
    ``cap``."""
    dialect = _dialect(session)
    if dialect == "sqlite" and len(query.text) >= MIN_TRIGRAM:
        found = session.scalar(
            text(
                "SELECT count(*) FROM (SELECT 1 FROM customer_search_fts "
                "WHERE customer_search_fts MATCH :fts_match LIMIT :cap)"
            ),
            {"fts_match": _fts_expression(query.text, tier), "cap": cap},
        )
    else:
        inner = select(literal(1)).where(_index_condition(dialect, query, tier)).limit(cap)
        with using_search_index(session):
            found = session.scalar(select(func.count()).select_from(inner.subquery()))
    return int(found or 0)


class _TierCounts:
    """How many rows each relevance tier holds, up to ``cap`` (enough to choose between reading a tier
    through the index and walking the primary key).

    On SQLite, nested phrase sets are counted instead of the tiers themselves: exact ⊂ starts ⊂
    any (``"|q|"`` contains ``"|q"``), so tier 1 = starts − exact and tier 2 = any − starts, each
    counted with its cap raised by what is subtracted. FTS5 counts a plain OR of phrases in about half
    the time of the ``… NOT …`` form a tier is read with."""

    def __init__(self, session: Session, query: SearchQuery, cap: int) -> None:
        self.session, self.query, self.cap = session, query, cap
        self.nested = _dialect(session) == "sqlite" and len(query.text) >= MIN_TRIGRAM
        self._sets: dict[int, int] = {}  # 0: exact, 1: starts (exact included), 2: any

    def _count_set(self, level: int) -> int:
        if level not in self._sets:
            below = self._count_set(level - 1) if level > 0 else 0
            value = self.query.text
            match = (
                _phrase(f"|{value}|"),
                f"({_phrase('|' + value)} OR {_phrase(' ' + value)})",
                _phrase(value),
            )
            found = self.session.scalar(
                text(
                    "SELECT count(*) FROM (SELECT 1 FROM customer_search_fts "
                    "WHERE customer_search_fts MATCH :fts_match LIMIT :cap)"
                ),
                {"fts_match": match[level], "cap": self.cap + below},
            )
            self._sets[level] = int(found or 0)
        return self._sets[level]

    def _capped(self, level: int) -> bool:
        """Whether the count of set ``level`` stopped at its cap (so it is a lower bound only)."""
        below = self._count_set(level - 1) if level > 0 else 0
        return self._count_set(level) >= self.cap + below

    def __call__(self, tier: int) -> int:
        if not self.nested or (tier > 0 and self._capped(tier - 1)):
            # a capped inner set gives no exact difference: count the tier itself
            return _tier_count(self.session, self.query, tier, self.cap)
        return self._count_set(tier) - (self._count_set(tier - 1) if tier > 0 else 0)


def match_statement(session: Session, q: str, *, cap: int) -> Select[Any] | TextClause:
    """The ids of at most ``cap`` customers the search index finds for ``q`` (filters aside): the
    first step of :func:`list_customers` (exposed so tests can read its query plan). On PostgreSQL each
    id comes with its tier and heap page (see :func:`_search_postgresql`)."""
    query = read_query(q)
    if query is None:
        raise ValueError("a query without letters or digits matches nothing")
    return _match_statement(_dialect(session), query, cap)


def _match_statement(dialect: str, query: SearchQuery, cap: int) -> Select[Any] | TextClause:
    if dialect == "sqlite" and len(query.text) >= MIN_TRIGRAM:
        return text(
            "SELECT customer_search.customer_id FROM customer_search_fts "
            "JOIN customer_search ON customer_search.id = customer_search_fts.rowid "
            "WHERE customer_search_fts MATCH :fts_match LIMIT :cap"
        ).bindparams(fts_match=_fts_expression(query.text, None), cap=cap)
    if dialect == "postgresql":
        # each id with its tier and its heap page: a bitmap heap scan reads the table in page order, so
        # the last page read tells which share of the table the capped sample stands for
        page: ColumnElement[Any] = literal_column("(customers.ctid::text::point)[0]")
        columns = (Customer.id, _rank(dialect, query).label("tier"), page.label("page"))
        return select(*columns).where(_index_condition(dialect, query, None)).limit(cap)
    return select(Customer.id).where(_index_condition(dialect, query, None)).limit(cap)


def _match_ids(session: Session, query: SearchQuery, cap: int) -> list[str]:
    with using_search_index(session):
        return list(session.scalars(_match_statement(_dialect(session), query, cap)).all())


@contextmanager
def using_search_index(session: Session) -> Iterator[None]:
    """On PostgreSQL, plan the statements inside through bitmap index scans only (the trigram GIN or the
    prefix B-trees): its estimates for ``LIKE '%q%'`` are rough, and walking the primary key or the
    table for a rare term reads every row. Elsewhere a no-op (SQLite's FTS5 is a table of its own)."""
    if _dialect(session) != "postgresql":
        yield
        return
    before = session.execute(
        text(
            "SELECT current_setting('enable_seqscan'), current_setting('enable_indexscan'), "
            "set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true)"
        )
    ).one()
    try:
        yield
    finally:
        session.execute(
            text("SELECT set_config('enable_seqscan', :s, true), set_config('enable_indexscan', :i, true)"),
            {"s": before[0], "i": before[1]},
        )


def _sort_threshold(session: Session, size: int) -> int:
    """The number of matches from which walking the table in id order until a page is full is cheaper
    than reading every match through the index and sorting."""
    if _dialect(session) == "sqlite":
        total = session.scalar(text("SELECT max(id) FROM customer_search")) or 0
    else:  # the planner's row count, kept by ANALYZE / autovacuum
        total = session.scalar(
            text("SELECT reltuples::bigint FROM pg_class WHERE oid = 'customers'::regclass")
        )
    return _threshold(size, int(total or 0))


def _threshold(size: int, total: int) -> int:
    return max(_MIN_THRESHOLD, min(_MAX_THRESHOLD, int((_SCAN_COST * size * max(total, 0)) ** 0.5)))


class _PlanSettings:
    """PostgreSQL: the planner settings of one search, changed only when the kind of statement changes.

    Statements through the search index run with sequential and plain index scans off (see
    :func:`using_search_index`), walks of the primary key and reads by id under the settings the
    transaction had; ``set_config(…, true)`` is ``SET LOCAL``. The first change also reads the table's
    size (rows and pages, kept by ANALYZE / autovacuum), so a search starts with one statement, not
    three, and restores the settings once instead of after every index statement."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.saved: tuple[str, str] | None = None  # the transaction's settings, once read
        self.index_only = False
        self.rows = 0
        self.pages = 0

    def start(self) -> None:
        """Read the settings and the table's size, and switch to index-only plans."""
        row = self.session.execute(
            text(
                "SELECT current_setting('enable_seqscan'), current_setting('enable_indexscan'), "
                "set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true), "
                "c.reltuples::bigint, c.relpages FROM pg_class c WHERE c.oid = 'customers'::regclass"
            )
        ).one()
        self.saved, self.index_only = (row[0], row[1]), True
        self.rows, self.pages = max(int(row[4] or 0), 0), max(int(row[5] or 0), 0)

    def index(self) -> None:
        if not self.index_only:
            self.session.execute(
                text(
                    "SELECT set_config('enable_seqscan', 'off', true), "
                    "set_config('enable_indexscan', 'off', true)"
                )
            )
            self.index_only = True

    def restore(self) -> None:
        if self.index_only and self.saved is not None:
            self.session.execute(
                text(
                    "SELECT set_config('enable_seqscan', :s, true), set_config('enable_indexscan', :i, true)"
                ),
                {"s": self.saved[0], "i": self.saved[1]},
            )
            self.index_only = False


def _tag_condition(dialect: str, tag: str) -> ColumnElement[bool]:
    if dialect == "sqlite":
        each = func.json_each(Customer.tags).table_valued("value")
        return exists(select(literal(1)).select_from(each).where(each.c.value == tag))
    return text("customers.tags @> CAST(:tag_json AS jsonb)").bindparams(tag_json=json.dumps([tag]))  # type: ignore[return-value]


def _filters(
    dialect: str,
    *,
    tag: str | None,
    country: str | None,
    language: str | None,
    organisation_id: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    include_erased: bool,
    include_merged: bool,
    is_test: bool | None,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if not include_erased:
        conditions.append(Customer.erased_at.is_(None))
    if not include_merged:
        conditions.append(Customer.merged_into_id.is_(None))
    if tag:
        conditions.append(_tag_condition(dialect, tag))
    if country:
        conditions.append(Customer.country == country.upper())
    if language:
        conditions.append(Customer.language == language)
    if organisation_id:
        conditions.append(Customer.organisation_id == organisation_id)
    if created_after:
        conditions.append(Customer.created_at >= created_after)
    if created_before:
        conditions.append(Customer.created_at < created_before)
    if is_test is not None:
        conditions.append(Customer.is_test.is_(is_test))
    return conditions


def _rank(dialect: str, query: SearchQuery) -> ColumnElement[int]:
    """A row's tier, read from the row."""
    value = query.text
    if len(value) < MIN_TRIGRAM:
        return case((_short_condition(dialect, value, 0, indexed=False), 0), else_=1)
    st = Customer.search_text
    return case(
        (_contains(dialect, st, f"|{value}|"), 0),
        (or_(_contains(dialect, st, f"|{value}"), _contains(dialect, st, f" {value}")), 1),
        else_=2,
    )


def _ranked_statement(
    dialect: str,
    query: SearchQuery,
    conditions: list[ColumnElement[bool]],
    *,
    after: tuple[int, str | None],
    limit: int,
    ids: list[str] | None = None,
) -> Select[Customer, int]:
    """Every match (through the index, or these ``ids`` it found already), ranked and sorted (for
    queries with few matches)."""
    rank = _rank(dialect, query)
    found = _index_condition(dialect, query, None) if ids is None else _in_ids(dialect, Customer.id, ids)
    where = [*conditions, found]
    tier, last_id = after
    if last_id is not None:
        where.append(or_(rank > tier, and_(rank == tier, Customer.id > last_id)))
    ranked = rank.label("tier")
    return select(Customer, ranked).where(*where).order_by(ranked, Customer.id).limit(limit)


def _tier_statement(
    dialect: str,
    query: SearchQuery,
    tier: int,
    conditions: list[ColumnElement[bool]],
    *,
    after_id: str | None,
    limit: int,
    scan: bool,
) -> Select[Customer]:
    match = _scan_condition(dialect, query, tier) if scan else _index_condition(dialect, query, tier)
    where = [*conditions, match]
    if after_id is not None:
        where.append(Customer.id > after_id)
    return select(Customer).where(*where).order_by(Customer.id).limit(limit)


def _read_search_cursor(cursor: str | None) -> tuple[int, str | None]:
    after = decode_cursor(cursor)
    if after is None:
        return 0, None
    try:
        tier, last_id = int(after[0]), str(after[1])
    except (IndexError, TypeError, ValueError) as exc:
        raise ValidationFailed("malformed cursor", code="invalid_cursor") from exc
    if tier not in TIERS:
        raise ValidationFailed("malformed cursor", code="invalid_cursor")
    return tier, last_id


def search_statement(
    session: Session,
    *,
    q: str | None = None,
    tier: int | None = None,
    scan: bool = False,
    tag: str | None = None,
    country: str | None = None,
    language: str | None = None,
    organisation_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    include_erased: bool = False,
    include_merged: bool = False,
    is_test: bool | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> tuple[Select[Customer] | Select[Customer, int], SearchQuery | None, int]:
    """One statement :func:`list_customers` runs (exposed so tests can read its query plan): with ``q``,
    every match ranked (``tier`` None: when there are few), or the rows of relevance ``tier`` in id
    order — through the search index, or with ``scan`` by walking the primary key —; without ``q``, the
    newest first."""
    dialect = _dialect(session)
    size = clamp_limit(limit)
    conditions = _filters(
        dialect, tag=tag, country=country, language=language, organisation_id=organisation_id,
        created_after=created_after, created_before=created_before, include_erased=include_erased,
        include_merged=include_merged, is_test=is_test,
    )  # fmt: skip
    query = read_query(q) if q else None
    if query is not None:
        at_tier, last_id = _read_search_cursor(cursor)
        if tier is None:
            ranked = _ranked_statement(dialect, query, conditions, after=(at_tier, last_id), limit=size + 1)
            return ranked, query, size
        after_id = last_id if at_tier == tier else None
        stmt = _tier_statement(dialect, query, tier, conditions, after_id=after_id, limit=size + 1, scan=scan)
        return stmt, query, size
    after = decode_cursor(cursor)
    if after is not None:
        try:
            at, last = datetime.fromisoformat(str(after[0])), str(after[1])
        except (IndexError, TypeError, ValueError) as exc:
            raise ValidationFailed("malformed cursor", code="invalid_cursor") from exc
        conditions.append(or_(Customer.created_at < at, and_(Customer.created_at == at, Customer.id < last)))
    stmt = select(Customer).where(*conditions).order_by(Customer.created_at.desc(), Customer.id.desc())
    return stmt.limit(size + 1), None, size


def list_customers(
    session: Session,
    *,
    q: str | None = None,
    tag: str | None = None,
    country: str | None = None,
    language: str | None = None,
    organisation_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    include_erased: bool = False,
    include_merged: bool = False,
    is_test: bool | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[CustomerView]:
    """Search and filter customers; see the module docstring for matching and relevance."""
    filters: dict[str, Any] = {
        "tag": tag, "country": country, "language": language, "organisation_id": organisation_id,
        "created_after": created_after, "created_before": created_before,
        "include_erased": include_erased, "include_merged": include_merged, "is_test": is_test,
    }  # fmt: skip
    if not q:
        stmt, _, size = search_statement(session, limit=limit, cursor=cursor, **filters)
        found = list(session.scalars(stmt))
        more = len(found) > size
        found = found[:size]
        next_cursor = None
        if more and found:
            next_cursor = encode_cursor([found[-1].created_at.isoformat(), found[-1].id])
        return Page(items=views(session, found), next_cursor=next_cursor)
    size = clamp_limit(limit)
    query = read_query(q)
    if query is None:  # only separators: nothing can match
        return Page(items=[], next_cursor=None)
    dialect = _dialect(session)
    conditions = _filters(dialect, **filters)
    after = _read_search_cursor(cursor)
    if dialect == "postgresql":
        rows = _search_postgresql(session, query, conditions, size=size, after=after)
    else:
        rows = _search_by_counts(session, query, conditions, size=size, after=after)
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor([rows[-1][0], rows[-1][1].id]) if more and rows else None
    return Page(items=views(session, [c for _, c in rows]), next_cursor=next_cursor)


def _search_by_counts(
    session: Session,
    query: SearchQuery,
    conditions: list[ColumnElement[bool]],
    *,
    size: int,
    after: tuple[int, str | None],
) -> list[tuple[int, Customer]]:
    """Up to ``size + 1`` matches as (tier, customer), in order from the cursor ``after``: SQLite (FTS5
    counts cheaply, so each tier is counted before it is read)."""
    dialect = _dialect(session)
    start_tier, last_id = after
    threshold = _sort_threshold(session, size)
    rows: list[tuple[int, Customer]] = []  # (tier, customer)
    if dialect == "sqlite" and len(query.text) >= MIN_TRIGRAM:
        # counting in FTS5 costs a fraction of reading the ids out: read them only when few
        matches = _tier_count(session, query, None, threshold)
        ids = _match_ids(session, query, threshold) if 0 < matches < threshold else []
    else:  # one statement finds and counts (PostgreSQL: a bitmap scan of the trigram index)
        ids = _match_ids(session, query, threshold)
        matches = len(ids)
    if not matches:
        return []
    few = matches < threshold
    if few:  # one pass through the index found them all: rank and sort them
        ranked = _ranked_statement(dialect, query, conditions, after=after, limit=size + 1, ids=ids)
        rows = [(int(tier), c) for c, tier in session.execute(ranked)]
    tier_counts = _TierCounts(session, query, threshold)
    for tier in () if few else TIERS:
        if tier < start_tier or (tier == 2 and len(query.text) < MIN_TRIGRAM):  # short: no tier 2
            continue
        want = size + 1 - len(rows)
        if want <= 0:
            break
        count = tier_counts(tier)
        if count == 0:
            continue
        scan = count >= threshold
        after_id = last_id if tier == start_tier else None
        stmt = _tier_statement(dialect, query, tier, conditions, after_id=after_id, limit=want, scan=scan)
        if scan:
            rows += [(tier, c) for c in session.scalars(stmt)]
        else:
            with using_search_index(session):
                rows += [(tier, c) for c in session.scalars(stmt)]
    return rows


# A tier is walked in id order without asking the index first when the capped sample of matches holds
# at least this many of its rows and, scaled by the share of the table the sample covers, at least the
# threshold: an estimate, so a minimum keeps a handful of rows in a small share from deciding.
_MIN_SAMPLE = 16


def _search_postgresql(
    session: Session,
    query: SearchQuery,
    conditions: list[ColumnElement[bool]],
    *,
    size: int,
    after: tuple[int, str | None],
) -> list[tuple[int, Customer]]:
    """Up to ``size + 1`` matches as (tier, customer), in order from the cursor ``after``: PostgreSQL.

    A GIN bitmap scan cannot stop early, so a statement through the trigram index costs about the same
    however few rows it returns, and a common term's costs most: they are kept to a minimum.

    1. From the first tier on: the ids of the exact matches, at most ``threshold`` (a one-word query:
       one key of the one-word fields' index — cheap however common; a short query: the name and
       email B-trees; else the trigrams). More than a page: read them by id (or walk the tier in id
       order when capped); a full page needs nothing else (``nguyen``, ``mai``).
    2. One statement returns up to ``threshold`` matching ids with their tier and heap page. Fewer:
       that is every match — rank and sort them (most searches end here).
    3. Otherwise the sample estimates each remaining tier's size (its rows in the sample over the share
       of the table read): a common tier is walked in id order at once; any other is asked for its
       ids (at most ``threshold``; a full cap is common after all and walked), whose rows are then
       read by id.

    The plan choices change the cost only, never the rows."""
    dialect = "postgresql"
    start_tier, last_id = after
    settings = _PlanSettings(session)
    rows: list[tuple[int, Customer]] = []
    known: dict[int, list[str]] = {}  # a tier's ids, all of them

    def by_ids(tier: int, ids: list[str], after_id: str | None, want: int) -> None:
        # = ANY(array): the primary key's index scan returns them in id order and stops after ``want``
        # (IN (subquery) reads and sorts every one)
        settings.restore()
        among = text("customers.id = ANY(ARRAY(SELECT jsonb_array_elements_text(CAST(:tier_ids AS jsonb))))")
        where: list[ColumnElement[bool]] = [*conditions, among.bindparams(tier_ids=json.dumps(ids))]  # type: ignore[list-item]
        if after_id is not None:
            where.append(Customer.id > after_id)
        stmt = select(Customer).where(*where).order_by(Customer.id).limit(want)
        rows.extend((tier, c) for c in session.scalars(stmt))

    def walk(tier: int, after_id: str | None, want: int) -> None:
        settings.restore()
        stmt = _tier_statement(dialect, query, tier, conditions, after_id=after_id, limit=want, scan=True)
        rows.extend((tier, c) for c in session.scalars(stmt))

    def tier_ids(tier: int, cap: int) -> list[str]:
        settings.index()
        return list(
            session.scalars(select(Customer.id).where(_index_condition(dialect, query, tier)).limit(cap))
        )

    try:
        settings.start()
        threshold = _threshold(size, settings.rows)
        if start_tier == 0:
            exact = tier_ids(0, threshold)
            if len(exact) > size:  # enough for a page: read (or walk) tier 0 first, maybe nothing else
                if len(exact) < threshold:
                    by_ids(0, exact, last_id, size + 1)
                else:
                    walk(0, last_id, size + 1)
                if len(rows) > size:
                    return rows
                start_tier, last_id = 1, None  # tier 0 is done: go on with the next one
            else:
                known[0] = exact
        sample = session.execute(_match_statement(dialect, query, threshold)).all()
        if len(sample) < threshold:  # every match: rank and sort them
            settings.restore()
            ids = [row[0] for row in sample if int(row[1]) >= start_tier]
            if not ids:
                return rows
            at = (start_tier, last_id)
            ranked = _ranked_statement(
                dialect, query, conditions, after=at, limit=size + 1 - len(rows), ids=ids
            )
            return rows + [(int(tier), c) for c, tier in session.execute(ranked)]
        last_page = max(int(row[2]) for row in sample)
        share = min(1.0, (last_page + 1) / settings.pages) if settings.pages else 1.0
        in_sample = Counter(int(row[1]) for row in sample)
        for tier in TIERS:
            if tier < start_tier or (tier == 2 and len(query.text) < MIN_TRIGRAM):  # short: no tier 2
                continue
            want = size + 1 - len(rows)
            if want <= 0:
                break
            after_id = last_id if tier == start_tier else None
            seen = in_sample[tier]
            if tier in known or seen < _MIN_SAMPLE or seen / share < threshold:
                ids = known[tier] if tier in known else tier_ids(tier, threshold)
                if len(ids) < threshold:  # all of the tier: read those rows by id
                    if ids:
                        by_ids(tier, ids, after_id, want)
                    continue
            walk(tier, after_id, want)
        return rows
    finally:
        settings.restore()


# ---- duplicates --------------------------------------------------------------------------------

_ACTIVE = "c.erased_at IS NULL AND c.merged_into_id IS NULL"
_DUPLICATE_SQL: dict[str, str] = {
    "same_email": f"""
        WITH v AS (
            SELECT c.id AS cid, c.email_folded AS k FROM customers c
            WHERE c.email_folded IS NOT NULL AND {_ACTIVE}
            UNION
            SELECT c.id, e.email_folded FROM customer_emails e JOIN customers c ON c.id = e.customer_id
            WHERE {_ACTIVE}
        )
        SELECT DISTINCT a.cid, b.cid FROM v a JOIN v b ON a.k = b.k AND a.cid < b.cid
        WHERE a.cid > :after_a OR (a.cid = :after_a AND b.cid > :after_b)
        ORDER BY 1, 2 LIMIT :n""",
    "same_phone": f"""
        WITH v AS (
            SELECT c.id AS cid, c.phone_e164 AS k FROM customers c
            WHERE c.phone_e164 IS NOT NULL AND {_ACTIVE}
            UNION
            SELECT c.id, p.phone_e164 FROM customer_phones p JOIN customers c ON c.id = p.customer_id
            WHERE {_ACTIVE}
        )
        SELECT DISTINCT a.cid, b.cid FROM v a JOIN v b ON a.k = b.k AND a.cid < b.cid
        WHERE a.cid > :after_a OR (a.cid = :after_a AND b.cid > :after_b)
        ORDER BY 1, 2 LIMIT :n""",
    "same_name_and_birthday": f"""
        SELECT a.id, b.id FROM customers a JOIN customers b
          ON a.given_folded = b.given_folded AND a.family_folded = b.family_folded
         AND a.birthday = b.birthday AND a.id < b.id
        WHERE a.birthday IS NOT NULL AND (a.given_folded <> '' OR a.family_folded <> '')
          AND {_ACTIVE.replace("c.", "a.")} AND {_ACTIVE.replace("c.", "b.")}
          AND (a.id > :after_a OR (a.id = :after_a AND b.id > :after_b))
        ORDER BY 1, 2 LIMIT :n""",
}


def list_duplicates(
    session: Session, *, limit: int | None = None, cursor: str | None = None
) -> Page[DuplicatePair]:
    """Suggested merges: pairs of active customers sharing an email (primary or extra, folded), a phone,
    or the same folded name and birthday; each pair once (lower id first) with all its reasons."""
    size = clamp_limit(limit)
    after = decode_cursor(cursor) or ["", ""]
    if len(after) != 2 or not all(isinstance(v, str) for v in after):
        raise ValidationFailed("malformed cursor", code="invalid_cursor")
    reasons: dict[tuple[str, str], list[str]] = defaultdict(list)
    for reason, sql in _DUPLICATE_SQL.items():
        params = {"after_a": after[0], "after_b": after[1], "n": size + 1}
        for a, b in session.execute(text(sql), params):
            reasons[(a, b)].append(reason)
    pairs = sorted(reasons)
    page = pairs[:size]
    next_cursor = encode_cursor(list(page[-1])) if len(pairs) > size else None
    return Page(
        items=[DuplicatePair(customer_ids=p, reasons=tuple(reasons[p])) for p in page],
        next_cursor=next_cursor,
    )


# ---- timeline ----------------------------------------------------------------------------------


def interaction_view(row: Interaction) -> InteractionView:
    return InteractionView(
        id=row.id, customer_id=row.customer_id, channel=row.channel, direction=row.direction, kind=row.kind,
        summary=row.summary, data=dict(row.data or {}), actor=row.actor, source=row.source,
        occurred_at=row.occurred_at, created_at=row.created_at,
    )  # fmt: skip


def get_interaction(session: Session, interaction_id: str) -> InteractionView:
    row = session.get(Interaction, interaction_id) if _plausible_id(interaction_id) else None
    if row is None:
        raise NotFound(f"no interaction with id {interaction_id!r}", code="interaction_not_found")
    return interaction_view(row)


def list_timeline(
    session: Session,
    customer_id: str,
    *,
    channel: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[InteractionView]:
    """The customer's interactions, newest first (occurred_at, id descending)."""
    customer = resolve_customer(session, customer_id)
    size = clamp_limit(limit)
    stmt = select(Interaction).where(Interaction.customer_id == customer.id)
    if channel:
        stmt = stmt.where(Interaction.channel == channel)
    if kind:
        stmt = stmt.where(Interaction.kind == kind)
    after = decode_cursor(cursor)
    if after is not None:
        try:
            at, last_id = datetime.fromisoformat(str(after[0])), str(after[1])
        except (IndexError, TypeError, ValueError) as exc:
            raise ValidationFailed("malformed cursor", code="invalid_cursor") from exc
        stmt = stmt.where(
            or_(Interaction.occurred_at < at, and_(Interaction.occurred_at == at, Interaction.id < last_id))
        )
    rows = list(
        session.scalars(stmt.order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(size + 1))
    )
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = encode_cursor([rows[-1].occurred_at.isoformat(), rows[-1].id])
    return Page(items=[interaction_view(r) for r in rows], next_cursor=next_cursor)


# ---- consent -----------------------------------------------------------------------------------


def consent_view(row: ConsentRecord) -> ConsentRecordView:
    return ConsentRecordView(
        id=row.id, customer_id=row.customer_id, purpose=row.purpose, channel=row.channel, status=row.status,
        source=row.source, proof=row.proof, recorded_at=row.recorded_at, expires_at=row.expires_at,
        actor=row.actor,
    )  # fmt: skip


def get_consent(session: Session, customer_id: str, *, at: datetime | None = None) -> ConsentLedgerView:
    """The consent in force for every purpose × channel (``unknown`` when never recorded; ``expired``
    when the latest grant's expiry has passed) and the ledger, newest first."""
    customer = resolve_customer(session, customer_id)
    moment = at or now()
    rows = list(
        session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.customer_id == customer.id)
            .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
        )
    )
    latest: dict[tuple[str, str], ConsentRecord] = {}
    for row in rows:
        if row.recorded_at <= moment:
            latest.setdefault((row.purpose, row.channel), row)
    current = []
    for purpose in PURPOSES:
        for channel in CONSENT_CHANNELS:
            found = latest.get((purpose, channel))
            if found is None:
                current.append(ConsentStateView(purpose, channel, "unknown", None, None, None))
                continue
            status = found.status
            if status == "granted" and found.expires_at is not None and found.expires_at <= moment:
                status = "expired"
            current.append(
                ConsentStateView(purpose, channel, status, found.recorded_at, found.expires_at, found.source)
            )
    return ConsentLedgerView(current=current, history=[consent_view(r) for r in rows])


def has_consent(session: Session, customer_id: str, *, purpose: str, channel: str) -> bool:
    """True when consent for ``purpose`` on ``channel`` is granted and not expired."""
    state = get_consent(session, customer_id)
    return any(s.purpose == purpose and s.channel == channel and s.status == "granted" for s in state.current)


# ---- traits ------------------------------------------------------------------------------------


def trait_view(row: Trait) -> TraitView:
    value = decode_trait(row.value_type, row.value_text, row.value_number, row.value_json)
    return TraitView(
        name=row.name, value=value, value_type=row.value_type, source=row.source, updated_at=row.updated_at
    )


def get_traits(session: Session, customer_id: str) -> dict[str, TraitView]:
    customer = resolve_customer(session, customer_id)
    rows = session.scalars(
        select(Trait)
        .where(Trait.customer_id == customer.id)
        .order_by(Trait.name)
        .execution_options(populate_existing=True)
    )
    return {row.name: trait_view(row) for row in rows}


def jsonable(value: Any) -> Any:
    """Plain JSON values for exports (dates and datetimes as ISO 8601, decimals as strings)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)
