"""The worker's analytics jobs: fail stalled runs, and run the analysis nightly so the customers'
analytics traits (``rfm_segment``, ``p_alive``, ``churn_risk``, ``clv`` …) are at most a day old.

The nightly run starts at the first check after :data:`NIGHTLY_HOUR` o'clock in the business time zone,
once per local day; while another run is in progress it waits for the next check. A database without
orders is not analysed (the demo's empty start, fresh installs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, time
from zoneinfo import ZoneInfo

from patron.analytics.runs import RunView, fail_stalled_runs, last_scheduled_run_at, start_run
from patron.commerce import list_orders
from patron.core.business import get_business
from patron.core.clock import now
from patron.core.db import Database
from patron.core.errors import Conflict

log = logging.getLogger("patron.analytics")

NIGHTLY_HOUR = 2
CHECK_EVERY = 600.0  # seconds


def nightly_due(at: datetime, time_zone: str, last_scheduled: datetime | None) -> bool:
    """Is a nightly run due at ``at``: past NIGHTLY_HOUR local time and none started today (local)?"""
    zone = ZoneInfo(time_zone)
    local = at.astimezone(zone)
    if local.time() < time(NIGHTLY_HOUR):
        return False
    if last_scheduled is None:
        return True
    return last_scheduled.astimezone(zone).date() < local.date()


def run_nightly(db: Database) -> RunView | None:
    """Start and execute the nightly run when it is due (in this process); None when not due."""
    with db.unit_of_work() as session:
        fail_stalled_runs(session)
        zone = get_business(session).time_zone
        last = last_scheduled_run_at(session)
        has_orders = bool(list_orders(session, limit=1).items)
    if not has_orders or not nightly_due(now(), zone, last):
        return None  # nothing to analyse yet, or not due
    try:
        view = start_run(db, trigger="schedule")
    except Conflict:
        log.info("nightly analytics run waits: another run is in progress")
        return None
    log.info("nightly analytics run %s: %s", view.id, view.status)
    return view


def scheduled_jobs(db: Database) -> list[tuple[float, Callable[[], None]]]:
    """Jobs for the worker: ``(interval in seconds, job)``."""

    def nightly() -> None:
        run_nightly(db)

    return [(CHECK_EVERY, nightly)]
