"""The nightly analytics run leaves the dispatcher free: the worker claims it (once, however many
workers check) and executes it in a process of its own, while events keep being dispatched."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from patron.analytics.jobs import claim_nightly, execute_nightly
from patron.analytics.runs import RunOptions, create_run, get_run, list_runs
from patron.core.business import update_business
from patron.core.clock import FrozenClock, use_clock
from patron.core.db import Database, get_engine, make_engine
from patron.core.errors import Conflict
from patron.core.outbox import Dispatcher, OutboxEvent, emit_event
from patron.worker import analytics as worker_analytics
from patron.worker.jobs import scheduled_jobs
from tests.support import fresh_database_url
from tests.worker.bulk import bulk_shop

RUN_DEADLINE_S = 600.0
DISPATCH_DEADLINE_S = 5.0


def _wait(predicate: object, deadline: float, what: str) -> None:
    assert callable(predicate)
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _failed_events(database: Database) -> list[dict[str, object]]:
    with database.unit_of_work(write=False) as session:
        rows = session.scalars(select(OutboxEvent.payload).where(OutboxEvent.name == "analytics.run_failed"))
        return [dict(p) for p in rows]


def _status(database: Database, run_id: str) -> str:
    with database.unit_of_work(write=False) as session:
        return get_run(session, run_id, results=False).status


@pytest.fixture
def night() -> Iterator[FrozenClock]:
    """03:00 in the business time zone (UTC): the nightly run is due."""
    with use_clock(FrozenClock(datetime(2026, 5, 1, 3, 0, tzinfo=UTC))) as clock:
        yield clock


def test_events_keep_being_dispatched_while_the_nightly_run_is_in_progress(
    database: Database, night: FrozenClock
) -> None:
    orders = bulk_shop(database, customers=15000, seed=2)
    assert orders > 50000
    dispatcher = Dispatcher(database, interval=0.05, jobs=scheduled_jobs(database))
    dispatcher.start()
    try:
        _wait(lambda: bool(worker_analytics.launched), 30, "the nightly run to be launched")
        (run_id,) = list(worker_analytics.launched)
        process = worker_analytics.launched[run_id]
        _wait(lambda: _status(database, run_id) == "running", 60, "the run to start")
        latencies: list[float] = []
        while _status(database, run_id) == "running" and len(latencies) < 5:
            with database.unit_of_work() as session:
                event_id = emit_event(session, "test.during_analysis", {"n": len(latencies)})
            sent = time.monotonic()

            def dispatched(eid: str = event_id) -> bool:
                with database.unit_of_work(write=False) as session:
                    row = session.get(OutboxEvent, eid)
                    return row is not None and row.dispatched_at is not None

            _wait(dispatched, DISPATCH_DEADLINE_S, "an event emitted during the analysis to be dispatched")
            latencies.append(time.monotonic() - sent)
            still_running = _status(database, run_id) == "running"
            assert still_running, "the analysis finished too quickly to prove anything: make the shop bigger"
        assert len(latencies) == 5
        assert process.wait(timeout=RUN_DEADLINE_S) == 0
    finally:
        dispatcher.stop()
    assert max(latencies) < DISPATCH_DEADLINE_S
    with database.unit_of_work(write=False) as session:
        whole = get_run(session, run_id)
        nightly = list_runs(session)
    assert (whole.status, whole.trigger, whole.scope) == ("completed", "schedule", "all"), whole.error
    assert whole.traits_published == 15000
    # then one run per market, each scoped and without traits
    markets = {r.scope: r for r in nightly if r.id != run_id}
    assert set(markets) == {"market:HU", "market:VN"}
    assert {(r.status, r.trigger, r.traits_published) for r in markets.values()} == {
        ("completed", "schedule", 0)
    }
    assert sum(r.customers or 0 for r in markets.values()) == 15000


def test_two_workers_checking_at_the_same_moment_claim_it_once(
    database: Database, db_url: str, night: FrozenClock
) -> None:
    bulk_shop(database, customers=50, seed=3)
    barrier = threading.Barrier(2)
    claimed: list[str | None] = []

    def check() -> None:
        engine = make_engine(db_url)  # a connection pool of its own, like another worker process
        try:
            own = Database(engine)
            barrier.wait(timeout=10)
            view = claim_nightly(own)
            claimed.append(None if view is None else view.id)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=check) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    winners = [c for c in claimed if c is not None]
    assert len(claimed) == 2
    assert len(winners) == 1
    # the run executes, and a worker checking again later the same night (however quickly the run
    # finished) finds it done: the database refuses a second nightly run for that scope and day
    execute_nightly(database, winners[0])
    assert claim_nightly(database) is None
    with database.unit_of_work() as session, pytest.raises(Conflict) as again:
        create_run(session, RunOptions(), trigger="schedule", nightly_on=night.now().date())
    assert again.value.code == "analytics_nightly_done"
    with database.unit_of_work(write=False) as session:
        scopes = sorted(r.scope for r in list_runs(session) if r.trigger == "schedule")
    assert scopes == ["all", "market:HU", "market:VN"]


def test_a_killed_analysis_process_fails_its_run(database: Database, night: FrozenClock) -> None:
    bulk_shop(database, customers=15000, seed=4)
    view = claim_nightly(database)
    assert view is not None
    process = worker_analytics.launch(database, view.id)
    _wait(lambda: _status(database, view.id) == "running", 60, "the run to start")
    process.kill()  # the process this test launched, by its handle
    _wait(lambda: _status(database, view.id) == "failed", 30, "the watcher to fail the run")
    with database.unit_of_work(write=False) as session:
        failed = get_run(session, view.id)
        assert session.scalar(select(OutboxEvent.id).where(OutboxEvent.name == "analytics.run_failed"))
    assert failed.error == "the analysis process ended with exit code -9 before it finished"
    assert failed.results is None
    # it no longer blocks: a manual run of the whole database can start
    with database.unit_of_work() as session:
        assert create_run(session).status == "queued"


def _daytime_zone() -> str:
    """A time zone where it is now between 03:00 and 21:00, so the nightly run is due there."""
    for zone in ("UTC", "Asia/Bangkok", "Pacific/Auckland", "America/Los_Angeles", "Asia/Kolkata"):
        if 3 <= datetime.now(UTC).astimezone(ZoneInfo(zone)).hour < 21:
            return zone
    raise AssertionError("no zone found")  # pragma: no cover - the zones span the day


def test_two_worker_processes_start_the_nightly_run_once(template_db: str, tmp_path: Path) -> None:
    """Two ``patron worker`` processes started together against one database (real clock)."""
    url = fresh_database_url(template_db, tmp_path, "workers.db")
    db = Database(get_engine(url))
    bulk_shop(db, customers=300, seed=5)
    with db.unit_of_work() as session:
        update_business(session, time_zone=_daytime_zone())
    env = {**os.environ, "PATRON_DATABASE_URL": url, "PATRON_CONFIG": os.devnull}
    env.pop("PYTEST_XDIST_WORKER", None)
    argv = [sys.executable, "-c", "from patron.cli.main import main; main()", "worker", "--interval", "0.2"]
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = []
    for log in logs:
        with log.open("wb") as out:
            workers.append(subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT))
    try:

        def finished() -> bool:
            with db.unit_of_work(write=False) as session:
                runs = list_runs(session)
            return len(runs) >= 3 and all(r.done for r in runs)

        _wait(finished, RUN_DEADLINE_S, "the nightly runs to finish")
        time.sleep(1.0)  # a second claim would show up now
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
    with db.unit_of_work(write=False) as session:
        runs = list_runs(session)
    text = "\n".join(log.read_text() for log in logs)
    assert "Traceback" not in text, text
    assert sorted((r.scope, r.trigger, r.status) for r in runs) == [
        ("all", "schedule", "completed"),
        ("market:HU", "schedule", "completed"),
        ("market:VN", "schedule", "completed"),
    ]
    assert len({r.nightly_on for r in runs}) == 1
    assert runs[0].nightly_on is not None
    assert runs[0].nightly_on >= (datetime.now(UTC) - timedelta(days=1)).date()


def test_a_run_whose_lease_is_not_renewed_is_failed(database: Database) -> None:
    """The executing process renews its lease; a run whose lease lapsed (its process is gone) is
    failed by the next check instead of blocking for hours."""
    from patron.analytics import runs as runs_module

    clock = FrozenClock(datetime(2026, 5, 1, 3, 0, tzinfo=UTC))
    with use_clock(clock):
        with database.unit_of_work() as session:
            view = create_run(session)
        assert runs_module._claim(database, view.id) is not None  # queued → running, lease taken
        clock.advance(runs_module.LEASE - timedelta(minutes=1))
        assert runs_module.renew_lease(database, view.id) is True
        clock.advance(runs_module.LEASE - timedelta(minutes=1))
        with database.unit_of_work() as session:
            assert runs_module.fail_stalled_runs(session) == 0  # renewed 9 minutes ago
            with pytest.raises(Conflict):
                create_run(session)
        clock.advance(timedelta(minutes=2))
        with database.unit_of_work() as session:
            assert runs_module.fail_stalled_runs(session) == 1
        assert runs_module.renew_lease(database, view.id) is False  # too late: it is failed
    assert _status(database, view.id) == "failed"


def test_the_executing_process_renews_its_lease(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from patron.analytics import runs as runs_module

    bulk_shop(database, customers=3000, seed=6)
    monkeypatch.setattr(runs_module, "HEARTBEAT_EVERY", 0.05)
    with database.unit_of_work() as session:
        view = create_run(session, RunOptions(market="HU"))
    done = runs_module.execute_run(database, view.id)
    assert done.status == "completed", done.error
    with database.unit_of_work(write=False) as session:
        row = session.get(runs_module.AnalyticsRun, view.id)
        assert row is not None
        assert row.started_at is not None
        assert row.heartbeat_at is not None
        assert row.heartbeat_at > row.started_at  # renewed while the analysis ran


def test_a_run_given_up_while_it_ran_does_not_complete(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process stuck past its lease is failed by another worker; when it wakes up and finishes, it
    must not write results or traits over that decision."""
    from patron.analytics import runs as runs_module
    from patron.analytics.traits import analytics_traits

    bulk_shop(database, customers=200, seed=7)
    with database.unit_of_work() as session:
        view = create_run(session)
    real = runs_module._analyse

    def analyse_then_lapse(url: str, options: RunOptions, members: frozenset[str] | None = None) -> object:
        produced = real(url, options, members)
        assert runs_module.fail_unfinished_run(database, view.id, "the run stopped: its lease lapsed")
        return produced

    monkeypatch.setattr(runs_module, "_analyse", analyse_then_lapse)
    done = runs_module.execute_run(database, view.id)
    assert done.status == "failed"
    assert done.error == "the run stopped: its lease lapsed"  # the decision that failed it stands
    assert _failed_events(database) == [{"run_id": view.id, "error": "the run stopped: its lease lapsed"}]
    with database.unit_of_work(write=False) as session:
        row = session.get(runs_module.AnalyticsRun, view.id)
        assert row is not None
        assert (row.results, row.traits_published, row.active) == (None, 0, None)
        from patron.customers.models import Customer

        some = session.scalars(select(Customer.id).limit(20)).all()
        assert all(analytics_traits(session, cid) == {} for cid in some)


def test_a_run_failed_by_the_stall_check_while_it_ran_is_failed_once(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker's stall check gives the run up (its lease lapsed) while the analysis still runs:
    the run is failed once, with one ``analytics.run_failed`` event and the stall check's reason; the
    process that wakes up afterwards neither overwrites that error nor announces a second failure."""
    from patron.analytics import runs as runs_module

    bulk_shop(database, customers=200, seed=7)
    clock = FrozenClock(datetime(2026, 5, 1, 3, 0, tzinfo=UTC))
    with use_clock(clock):
        with database.unit_of_work() as session:
            view = create_run(session)
        real = runs_module._analyse

        def analyse_then_lapse(
            url: str, options: RunOptions, members: frozenset[str] | None = None
        ) -> object:
            produced = real(url, options, members)
            clock.advance(runs_module.LEASE + timedelta(minutes=1))
            with database.unit_of_work() as session:  # another worker's check
                assert runs_module.fail_stalled_runs(session) == 1
            return produced

        monkeypatch.setattr(runs_module, "_analyse", analyse_then_lapse)
        done = runs_module.execute_run(database, view.id)
    assert done.status == "failed"
    assert done.error == runs_module.STALLED_ERROR
    assert _failed_events(database) == [{"run_id": view.id, "error": runs_module.STALLED_ERROR}]


def test_a_process_that_cannot_start_fails_its_run(
    database: Database, night: FrozenClock, tmp_path: Path
) -> None:
    """The nightly job claimed the run but its process cannot be started: the run is failed at once
    with the reason (it would otherwise stay queued and block whole-database runs for hours)."""
    bulk_shop(database, customers=50, seed=8)
    missing = tmp_path / "no-such-python"
    worker_analytics.nightly_job(database, command=[str(missing), "-m", "patron.worker.analytics"])
    assert worker_analytics.launched == {}
    with database.unit_of_work(write=False) as session:
        (run,) = list_runs(session)
    assert (run.status, run.trigger, run.scope) == ("failed", "schedule", "all")
    assert run.error is not None
    assert run.error.startswith("could not start the analysis process: [Errno 2] No such file or directory")
    assert str(missing) in run.error
    assert _failed_events(database) == [{"run_id": run.id, "error": run.error}]
    with database.unit_of_work() as session:  # it blocks nothing
        assert create_run(session).status == "queued"


def test_a_launched_process_leaves_a_run_another_process_executes_alone(
    database: Database, night: FrozenClock
) -> None:
    """A process launched for a run that another process has already claimed and is executing exits
    0 without touching it, so its watcher does not fail a live run."""
    from patron.analytics import runs as runs_module

    bulk_shop(database, customers=50, seed=9)
    view = claim_nightly(database)
    assert view is not None
    assert runs_module._claim(database, view.id) is not None  # the other process: queued → running
    process = worker_analytics.launch(database, view.id)
    assert process.wait(timeout=120) == 0
    _wait(lambda: view.id not in worker_analytics.launched, 30, "the watcher to finish")
    assert _status(database, view.id) == "running"
    assert _failed_events(database) == []
