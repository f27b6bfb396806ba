"""Test fixtures: a fresh database per test (SQLite file copied from a migrated template, or
truncated PostgreSQL tables), the API through FastAPI's TestClient, tokens per role, a frozen clock.

Set ``PATRON_TEST_DATABASE_URL=postgresql+psycopg://...`` to run the suite on PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("PATRON_ARGON2_TIME_COST", "1")
os.environ.setdefault("PATRON_ARGON2_MEMORY_COST", "8192")
os.environ.setdefault("PATRON_DISPATCH_IN_PROCESS", "0")

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from patron.auth import Role, create_token, create_user
from patron.bootstrap import wire
from patron.core import migrate
from patron.core.clock import FrozenClock, use_clock
from patron.core.db import Database, dispose_engines, get_engine, make_engine
from patron.core.settings import reset_settings_cache
from patron.models import import_all_models

PG_URL = os.environ.get("PATRON_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "correct horse battery"


def pytest_configure(config: pytest.Config) -> None:
    reset_settings_cache()
    wire()
    import_all_models()


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database: a template file (SQLite) or a per-worker database (PostgreSQL)."""
    if PG_URL:
        base = make_url(PG_URL)
        name = f"{base.database}_patron_{_worker()}_{os.getpid()}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = base.set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        dispose_engines()
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        engine.dispose()
        yield str(path)


def _truncate_all(url: str) -> None:
    """Empty every table. DELETE with foreign-key triggers off is much faster than TRUNCATE for the
    handful of rows a test leaves behind."""
    engine = get_engine(url)
    with engine.begin() as conn:
        tables = (
            conn.execute(
                text(
                    "SELECT tablename FROM pg_tables "
                    "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            )
            .scalars()
            .all()
        )
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in tables:
            conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture
def db_url(template_db: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty database for one test."""
    if PG_URL:
        _truncate_all(template_db)
        yield template_db
    else:
        path = tmp_path / "patron.db"
        shutil.copyfile(template_db, path)
        url = f"sqlite:///{path}"
        yield url
        engine = get_engine(url)
        engine.dispose()


@pytest.fixture
def database(db_url: str) -> Database:
    return Database(get_engine(db_url))


@pytest.fixture
def session(database: Database) -> Iterator[object]:
    s = database.session(write=True)
    try:
        yield s
    finally:
        s.rollback()
        s.close()


@pytest.fixture
def frozen_clock() -> Iterator[FrozenClock]:
    clock = FrozenClock(datetime(2026, 3, 15, 10, 0, tzinfo=UTC))
    with use_clock(clock):
        yield clock


@pytest.fixture
def app(db_url: str) -> object:
    from patron.web.app import create_app

    return create_app(db_url, dispatch=False)


@pytest.fixture
def client(app: object) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:  # type: ignore[arg-type]
        yield c


class Tokens:
    """Create staff users with a role and hand out their API tokens."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._cache: dict[str, str] = {}

    def __call__(self, role: Role | str = Role.OWNER) -> str:
        role = Role(role)
        if role.value not in self._cache:
            with self.database.unit_of_work() as s:
                user = create_user(
                    s,
                    email=f"{role.value}@example.com",
                    password=PASSWORD,
                    role=role,
                    name=role.value.title(),
                )
                _, secret = create_token(s, user=user, name="test")
            self._cache[role.value] = secret
        return self._cache[role.value]

    def headers(self, role: Role | str = Role.OWNER) -> dict[str, str]:
        return {"Authorization": f"Bearer {self(role)}"}


@pytest.fixture
def tokens(database: Database) -> Tokens:
    return Tokens(database)


@pytest.fixture
def api(client: TestClient, tokens: Tokens) -> TestClient:
    """A client authenticated as the owner."""
    client.headers.update(tokens.headers(Role.OWNER))
    return client


@pytest.fixture(autouse=True)
def _reset_engines() -> Iterator[None]:
    yield
    if not PG_URL:
        dispose_engines()
