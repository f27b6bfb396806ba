"""Scheduled jobs run by the worker (and by ``patron serve`` in the embedded setup)."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from patron.analytics import jobs as analytics_jobs
from patron.core import idempotency, outbox, ratelimit
from patron.core.db import Database
from patron.core.settings import get_settings
from patron.worker import analytics

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

    def nightly_analytics() -> None:
        # claims the run and launches it in a process of its own: never blocks the dispatcher
        analytics.nightly_job(db)

    def purge_rate_limits() -> None:
        with db.unit_of_work() as session:
            ratelimit.purge_idle(session)

    jobs: list[Callable[[], None]] = [
        _every(3600, purge),
        _every(3600, purge_events),
        _every(3600, purge_rate_limits),
    ]
    jobs.append(_every(analytics_jobs.CHECK_EVERY, nightly_analytics))
    # domain jobs: each domain may expose ``scheduled_jobs(db) -> list[(seconds, callable)]``
    for name in ("patron.commerce", "patron.loyalty", "patron.imports"):
        module = importlib.import_module(name)
        factory = getattr(module, "scheduled_jobs", None)
        if factory is not None:
            for seconds, fn in factory(db):
                jobs.append(_every(seconds, fn))
    return jobs
