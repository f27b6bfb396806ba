"""Fixtures for tests through real server processes: one fresh database and one ``uvicorn`` with two
worker processes per test module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from patron.auth import Role
from tests.support import LiveServer, create_staff_token, fresh_database_url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/server/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.server)


@dataclass(frozen=True)
class Live:
    server: LiveServer
    database_url: str
    owner_token: str

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.owner_token}", **extra}

    def client(self) -> httpx.Client:
        """A client with its own connection (so concurrent callers spread over the workers)."""
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=60.0)


@pytest.fixture(scope="module")
def live_database_url(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return fresh_database_url(template_db, tmp_path_factory.mktemp("live"))


@pytest.fixture(scope="module")
def live(live_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    token = create_staff_token(live_database_url, Role.OWNER)
    log = tmp_path_factory.mktemp("live-log") / "server.log"
    with LiveServer(live_database_url, workers=2, log_path=log) as server:
        assert len(server.worker_pids()) == 2, server.log()
        yield Live(server=server, database_url=live_database_url, owner_token=token)
        log_text = server.log()
    assert "Traceback" not in log_text, log_text
