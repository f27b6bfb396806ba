"""Shared test helpers: real server processes, fresh databases for tests that cross connections."""

from tests.support.concurrency import concurrently
from tests.support.live_server import (
    LiveServer,
    create_staff_token,
    free_port,
    fresh_database_url,
)

__all__ = ["LiveServer", "concurrently", "create_staff_token", "free_port", "fresh_database_url"]
