"""customer search indexes

SQLite: ``customer_search`` maps a stable integer rowid to each customer; ``customer_search_fts`` is a
contentless FTS5 table with the trigram tokenizer over ``customers.search_text`` (folded in Python, so
``remove_diacritics`` — which SQLite 3.40's trigram lacks — is not needed). Triggers on ``customers``
keep both current for every write; bulk upserts suspend the insert/update triggers and maintain the
index set-wise in the same transaction (see ``customer_search_suspended``).

PostgreSQL: a ``pg_trgm`` GIN index on ``customers.search_text`` with each field start, word start and
field end marked by a letter folded text never holds (``ǂ``; pg_trgm ignores punctuation such as ``|``),
so exact-field and prefix matches are index lookups too (``patron.customers.queries.PG_MARKED_TEXT``).
pg_trgm cannot see where a field starts or ends, only where a word does, so a common word that ends
fields (``ngan`` in ``|tran thi ngan|``) makes the exact-field lookup recheck every row holding it: a
second GIN index on the one-word fields (``customer_search_words(search_text)``: no space, no ``@``, not
only digits — a given or family name of one word; emails, phone numbers and two-word names would add a
key per row and slow every write) answers "a field equals this one-word query" exactly
(``patron.customers.queries.PG_WORDS``).

These objects are excluded from autogenerate (``migrations/env.py``: tables ``customer_search*`` and
indexes ``ixs_*``).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SQLITE_UP = [
    """CREATE TABLE customer_search (
        id INTEGER PRIMARY KEY,
        customer_id VARCHAR(36) NOT NULL UNIQUE
    )""",
    # a row here (written and removed inside one bulk write transaction — SQLite has one writer at a
    # time, so no other connection ever sees it) suspends the insert/update triggers while
    # patron.customers.service maintains the index set-wise, which is many times faster
    "CREATE TABLE customer_search_suspended (id INTEGER PRIMARY KEY)",
    "CREATE VIRTUAL TABLE customer_search_fts USING fts5(search_text, content='', tokenize='trigram')",
    """CREATE TRIGGER customer_search_ai AFTER INSERT ON customers
    WHEN NOT EXISTS (SELECT 1 FROM customer_search_suspended) BEGIN
        INSERT INTO customer_search (customer_id) VALUES (new.id);
        INSERT INTO customer_search_fts (rowid, search_text)
            SELECT id, new.search_text FROM customer_search WHERE customer_id = new.id;
    END""",
    """CREATE TRIGGER customer_search_au AFTER UPDATE OF search_text ON customers
    WHEN old.search_text IS NOT new.search_text AND NOT EXISTS (SELECT 1 FROM customer_search_suspended) BEGIN
        INSERT INTO customer_search_fts (customer_search_fts, rowid, search_text)
            SELECT 'delete', id, old.search_text FROM customer_search WHERE customer_id = old.id;
        INSERT INTO customer_search_fts (rowid, search_text)
            SELECT id, new.search_text FROM customer_search WHERE customer_id = new.id;
    END""",
    """CREATE TRIGGER customer_search_ad AFTER DELETE ON customers BEGIN
        INSERT INTO customer_search_fts (customer_search_fts, rowid, search_text)
            SELECT 'delete', id, old.search_text FROM customer_search WHERE customer_id = old.id;
        DELETE FROM customer_search WHERE customer_id = old.id;
    END""",
    "INSERT INTO customer_search (customer_id) SELECT id FROM customers ORDER BY id",
    """INSERT INTO customer_search_fts (rowid, search_text)
        SELECT s.id, c.search_text FROM customer_search s JOIN customers c ON c.id = s.customer_id""",
]

_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS customer_search_ad",
    "DROP TRIGGER IF EXISTS customer_search_au",
    "DROP TRIGGER IF EXISTS customer_search_ai",
    "DROP TABLE IF EXISTS customer_search_fts",
    "DROP TABLE IF EXISTS customer_search",
    "DROP TABLE IF EXISTS customer_search_suspended",
]

_PG_UP = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # the expression must stay identical to patron.customers.queries.PG_MARKED_TEXT
    "CREATE INDEX IF NOT EXISTS ixs_customers_search_trgm ON customers USING gin "
    "((replace(replace(search_text, ' ', ' \u01c2'), '|', '\u01c2|\u01c2')) gin_trgm_ops)",
    # the one-word fields of a search text (patron.customers.queries.PG_WORDS uses it)
    """CREATE OR REPLACE FUNCTION customer_search_words(search_text text) RETURNS text[]
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        SELECT coalesce(array_agg(f), '{}') FROM unnest(string_to_array(search_text, '|')) AS f
        WHERE f <> '' AND strpos(f, ' ') = 0 AND strpos(f, '@') = 0 AND f !~ '^[0-9]+$'
    $$""",
    "CREATE INDEX IF NOT EXISTS ixs_customers_search_words ON customers USING gin "
    "((customer_search_words(search_text)))",
]

_PG_DOWN = [
    "DROP INDEX IF EXISTS ixs_customers_search_words",
    "DROP FUNCTION IF EXISTS customer_search_words(text)",
    "DROP INDEX IF EXISTS ixs_customers_search_trgm",
]


def upgrade() -> None:
    statements = _SQLITE_UP if op.get_bind().dialect.name == "sqlite" else _PG_UP
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    statements = _SQLITE_DOWN if op.get_bind().dialect.name == "sqlite" else _PG_DOWN
    for statement in statements:
        op.execute(statement)
