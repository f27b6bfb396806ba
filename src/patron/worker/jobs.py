"""Scheduled jobs run by the worker (and by ``patron serve`` in the embedded setup)."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from patron.core import idempotency, outbox
from patron.core.db import Database
from patron.core.settings import get_settings

log = logging.getLogger("patron.worker")


def _every(seconds: float, fn: Callable[[], object]) -> Callable[[], None]:
    last = [0.0]

    def run() -> None:
        now = time.monotonic()
        if now - last[0] >= seconds:
            last[0] = now
            fn()

    return run


def scheduled_jobs(db: Database) -> list[Callable[[], None]]:
    ttl = timedelta(hours=get_settings().idempotency_ttl_hours)

    def purge() -> None:
        with db.unit_of_work() as session:
            idempotency.purge_expired(session, ttl)

    def purge_events() -> None:
        with db.unit_of_work() as session:
            outbox.purge_dispatched(session, timedelta(days=get_settings().outbox_retention_days))

    jobs: list[Callable[[], None]] = [_every(3600, purge), _every(3600, purge_events)]
    # domain jobs: each domain may expose ``scheduled_jobs(db) -> list[(seconds, callable)]``
    for name in ("patron.commerce", "patron.loyalty", "patron.imports", "patron.analytics.jobs"):
        module = importlib.import_module(name)
        factory = getattr(module, "scheduled_jobs", None)
        if factory is not None:
            for seconds, fn in factory(db):
                jobs.append(_every(seconds, fn))
    return jobs
