"""The worker's analytics jobs: fail stalled runs, and run the analysis nightly so the customers'
analytics traits (``rfm_segment``, ``p_alive``, ``churn_risk``, ``clv`` …) are at most a day old.

The nightly run is due at the first check after :data:`NIGHTLY_HOUR` o'clock in the business time
zone, once per local day; while another whole-database run is in progress it waits for the next
check. A database without orders is not analysed (the demo's empty start, fresh installs).

Claiming and executing are separate: :func:`claim_nightly` queues the run (at most one per scope and
local day, whichever worker asks first: a unique (``nightly_on``, ``scope``) pair in the database),
and :func:`execute_nightly` runs it — the worker does that in a process of its own so that events keep
being dispatched meanwhile (``patron.worker.analytics``). After the whole-database run, each market
that has orders gets its own run (scope ``market:<code>``), so the console can compare markets side
by side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, time
from zoneinfo import ZoneInfo

from patron.analytics.runs import (
    RunOptions,
    RunView,
    create_run,
    execute_run,
    fail_stalled_runs,
    get_run,
    last_scheduled_run_at,
)
from patron.commerce import list_orders
from patron.core.business import get_business
from patron.core.clock import now
from patron.core.db import Database
from patron.core.errors import Conflict, PatronError

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


def claim_nightly(db: Database) -> RunView | None:
    """Queue tonight's whole-database run when it is due; None when it is not due, has been claimed
    by another worker, or another whole-database run is in progress."""
    with db.unit_of_work() as session:
        fail_stalled_runs(session)
        zone = get_business(session).time_zone
        last = last_scheduled_run_at(session)
        has_orders = bool(list_orders(session, limit=1).items)
    at = now()
    if not has_orders or not nightly_due(at, zone, last):
        return None  # nothing to analyse yet, or not due
    today = at.astimezone(ZoneInfo(zone)).date()
    try:
        with db.unit_of_work() as session:
            view = create_run(session, trigger="schedule", nightly_on=today)
    except Conflict as exc:
        log.info("nightly analytics run not started: %s", exc.code)
        return None
    log.info("nightly analytics run %s queued", view.id)
    return view


def execute_nightly(db: Database, run_id: str) -> list[RunView]:
    """Execute the claimed whole-database run, then one run per market that has orders (each claimed
    like the first: a market whose run is in progress or done tonight is skipped)."""
    first = execute_run(db, run_id)
    done = [first]
    if first.status != "completed":
        return done
    with db.unit_of_work(write=False) as session:
        whole = get_run(session, run_id)
    results = whole.results or {}
    markets = sorted(((results.get("kpis") or {}).get("by_market") or {}).keys())
    for market in markets:
        try:
            with db.unit_of_work() as session:
                queued = create_run(
                    session, RunOptions(market=market), trigger="schedule", nightly_on=whole.nightly_on
                )
        except PatronError as exc:  # in progress, done tonight, or no longer a market
            log.info("nightly analytics run for market %s skipped: %s", market, exc.code)
            continue
        done.append(execute_run(db, queued.id))
    return done


def run_nightly(db: Database) -> RunView | None:
    """Claim and execute the nightly runs in this process (``patron worker --once``, tests); the
    whole-database run's view, or None when not due."""
    view = claim_nightly(db)
    if view is None:
        return None
    done = execute_nightly(db, view.id)
    log.info("nightly analytics run %s: %s", view.id, done[0].status)
    return done[0]


def scheduled_jobs(db: Database) -> list[tuple[float, Callable[[], None]]]:
    """Jobs for a worker that runs the analysis in its own thread (the worker adapter launches it
    in a separate process instead: ``patron.worker.jobs``)."""

    def nightly() -> None:
        run_nightly(db)

    return [(CHECK_EVERY, nightly)]
