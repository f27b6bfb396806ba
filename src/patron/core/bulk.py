"""Bulk inserts for imports: many rows in the caller's transaction, without per-row ORM or Core
parameter handling.

SQLAlchemy's ``session.execute(insert(table), [dict, ...])`` builds and processes a parameter dict per
row; for a million-row import that costs more than the database's own work. :func:`insert_rows`
takes plain tuples, applies each column's bind processor once per value (the same conversions
SQLAlchemy applies: JSON to text, aware datetimes to UTC, dates and booleans for SQLite), and hands
them to the driver in one call: ``executemany`` on SQLite, ``COPY … FROM STDIN`` on PostgreSQL. It runs
on the session's own connection, so it commits or rolls back with everything else.

Column defaults are not applied: callers give every column they need (ids, timestamps …). Triggers
and constraints apply as for any insert.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

Processor = Callable[[Any], Any] | None


@lru_cache(maxsize=256)
def _processors(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[Processor, ...]:
    return tuple(table.c[name].type._cached_bind_processor(dialect) for name in columns)


def _quote(dialect: Dialect, name: str) -> str:
    return str(dialect.identifier_preparer.quote(name))


def insert_rows(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table``; returns the row count."""
    names = tuple(columns)
    connection = session.connection()
    dialect = connection.dialect
    processors = _processors(table, names, dialect)
    pairs = [(i, p) for i, p in enumerate(processors) if p is not None]

    def processed(row: Sequence[Any]) -> Sequence[Any]:
        if not pairs:
            return row
        values = list(row)
        for i, process in pairs:
            values[i] = process(values[i])
        return values

    column_list = ", ".join(_quote(dialect, n) for n in names)
    table_name = _quote(dialect, table.name)
    raw: Any = connection.connection.dbapi_connection
    assert raw is not None
    count = 0
    if dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {table_name} ({column_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(processed(row))
                count += 1
        return count
    marks = ", ".join("?" for _ in names)
    batch = [processed(row) for row in rows]
    cursor = raw.cursor()
    try:
        cursor.executemany(f"INSERT INTO {table_name} ({column_list}) VALUES ({marks})", batch)
    finally:
        cursor.close()
    return len(batch)


def insert_mappings(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """:func:`insert_rows` for dicts that all have the keys of the first."""
    if not rows:
        return 0
    names = tuple(rows[0].keys())
    return insert_rows(session, table, names, [tuple(row[n] for n in names) for row in rows])
