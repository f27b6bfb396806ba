from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from patron.core.db import Database
from tests.conftest import PG_URL


@pytest.mark.skipif(bool(PG_URL), reason="SQLite pragmas")
def test_sqlite_pragmas(database: Database) -> None:
    with database.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_concurrent_writers_do_not_fail(database: Database) -> None:
    """Read-then-write transactions from many threads: BEGIN IMMEDIATE serialises them on SQLite
    (no 'database is locked'), row locks on PostgreSQL; no increment is lost."""
    with database.unit_of_work() as s:
        s.execute(
            text(
                "INSERT INTO business_settings (id, name, reporting_currency, time_zone, week_start, "
                "fiscal_year_start_month, default_language, updated_at) VALUES "
                "(1, '0', 'EUR', 'UTC', 0, 1, 'en', CURRENT_TIMESTAMP)"
            )
        )
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(10):
                with database.unit_of_work() as s:
                    lock = " FOR UPDATE" if database.dialect == "postgresql" else ""
                    current = s.execute(
                        text("SELECT name FROM business_settings WHERE id = 1" + lock)
                    ).scalar()
                    s.execute(
                        text("UPDATE business_settings SET name = :n WHERE id = 1"),
                        {"n": str(int(current) + 1)},
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with database.unit_of_work(write=False) as s:
        assert s.execute(text("SELECT name FROM business_settings WHERE id = 1")).scalar() == "60"
