"""Analytics runs in the app: a stored run executes ``patron analyze --database``, keeps its results and
report, publishes traits; a failing run is marked failed with nothing half-written."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from patron.analytics import runs as runs_module
from patron.analytics import traits as traits_module
from patron.analytics.runs import (
    AnalyticsRun,
    RunOptions,
    create_run,
    execute_run,
    fail_stalled_runs,
    get_report,
    get_run,
    latest_completed_run,
    list_runs,
    start_run,
)
from patron.analytics.traits import TRAIT_NAMES, analytics_traits
from patron.commerce import place_order, prepare_order
from patron.core.business import update_business
from patron.core.clock import FrozenClock, use_clock
from patron.core.db import Database
from patron.core.errors import Conflict, NotFound, ValidationFailed
from patron.core.outbox import OutboxEvent
from patron.customers import CustomerCreateInput, create_customer

PATRON = str(Path(sys.executable).with_name("patron"))
START = date(2025, 1, 6)


def seed_shop(database: Database, *, customers: int = 40, seed: int = 3) -> list[str]:
    """Customers with orders placed through the commerce service: most buy again (a few up to 8
    times), so the models have repeat buyers. Committed (the analysis reads the database itself)."""
    rng = np.random.default_rng(seed)
    ids: list[str] = []
    with database.unit_of_work() as session:
        update_business(session, reporting_currency="EUR", time_zone="Europe/Budapest")
        for i in range(customers):
            customer = create_customer(
                session,
                CustomerCreateInput(first_name=f"Buyer{i}", last_name="Shop", email=f"buyer{i}@example.com"),
            )
            ids.append(customer.id)
            day = int(rng.integers(0, 240))
            orders = 1 if i % 5 == 0 else int(rng.integers(2, 9))
            for _ in range(orders):
                if day > 600:
                    break
                placed = datetime.combine(START + timedelta(days=day), datetime.min.time(), tzinfo=UTC)
                amount = Decimal(str(round(float(rng.gamma(4.0, 8.0)) + 1, 2)))
                place_order(
                    session,
                    prepare_order(
                        {
                            "customer_id": customer.id,
                            "currency": "EUR",
                            "placed_at": (placed + timedelta(hours=int(rng.integers(8, 20)))).isoformat(),
                            "lines": [
                                {
                                    "sku": f"SKU-{i % 4}",
                                    "name": "Tea",
                                    "quantity": 1,
                                    "unit_price": str(amount),
                                }
                            ],
                        }
                    ),
                    emit_events=False,
                )
                day += int(rng.integers(7, 90))
    return ids


def analyze_cli(db_url: str, out: Path) -> dict[str, Any]:
    env = {**os.environ, "PATRON_DATABASE_URL": db_url}
    result = subprocess.run(
        [PATRON, "analyze", "--database", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def _without_timings(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "timings_seconds"}


def test_a_run_completes_like_patron_analyze_and_publishes_traits(
    database: Database, db_url: str, tmp_path: Path
) -> None:
    ids = seed_shop(database)
    with database.unit_of_work() as session:
        queued = create_run(session)
    assert (queued.status, queued.trigger, queued.started_at, queued.results) == (
        "queued",
        "manual",
        None,
        None,
    )

    done = execute_run(database, queued.id)

    assert done.status == "completed", done.error
    assert done.error is None
    assert done.started_at is not None
    assert done.finished_at is not None
    with database.unit_of_work(write=False) as session:
        view = get_run(session, queued.id)
        html = get_report(session, queued.id)
        traits = {cid: analytics_traits(session, cid) for cid in ids}
        completed = session.scalars(
            select(OutboxEvent).where(OutboxEvent.name == "analytics.run_completed")
        ).all()
    assert view.results is not None
    cli = analyze_cli(db_url, tmp_path / "cli.json")
    assert _without_timings(view.results) == _without_timings(cli)
    assert view.results["customers"] == 40
    assert (view.customers, view.orders, view.currency) == (40, cli["orders"], "EUR")
    assert view.as_of == date.fromisoformat(cli["as_of"])
    assert set(view.results["models"]) == {"bg_nbd", "pareto_nbd", "gamma_gamma"}
    assert view.has_report
    assert html.startswith("<!DOCTYPE html>")
    assert "Plotly.newPlot" in html
    assert [e.payload["run_id"] for e in completed] == [queued.id]

    # every customer got all six traits; the segment counts equal the JSON's RFM section
    assert view.traits_published == 40
    assert all(set(t) == set(TRAIT_NAMES) for t in traits.values())
    counted: dict[str, int] = {}
    for t in traits.values():
        counted[t["rfm_segment"]] = counted.get(t["rfm_segment"], 0) + 1
    expected = {k: v["customers"] for k, v in view.results["rfm"]["segments"].items() if v["customers"]}
    assert counted == expected
    for t in traits.values():
        assert Decimal(0) <= t["p_alive"] <= Decimal(1)
        assert t["churn_risk"] == Decimal(1) - t["p_alive"]
        assert t["churn_band"] == (
            "low"
            if t["churn_risk"] < Decimal("0.3")
            else "medium"
            if t["churn_risk"] < Decimal("0.7")
            else "high"
        )
        assert t["clv"] == t["clv"].quantize(Decimal("0.01"))
        assert t["clv"] >= 0
        assert t["predicted_purchases"] >= 0
    # the traits sum to the JSON's totals (rounding aside)
    total_clv = sum(t["clv"] for t in traits.values())
    assert abs(float(total_clv) - view.results["predictions"]["clv"]["total"]) < 0.01 * 40
    bands = view.results["predictions"]["churn_bands"]
    assert sum(1 for t in traits.values() if t["churn_band"] == "high") == bands["high"]


def test_traits_feed_segments(database: Database) -> None:
    from patron.customers import count_matching

    seed_shop(database, customers=30, seed=5)
    view = start_run(database)
    assert view.status == "completed", view.error
    with database.unit_of_work(write=False) as session:
        results = get_run(session, view.id).results
        assert results is not None
        for name, seg in results["rfm"]["segments"].items():
            rule = {"type": "trait", "name": "rfm_segment", "op": "eq", "value": name}
            assert count_matching(session, rule) == seg["customers"], name
        high = {"type": "trait", "name": "churn_risk", "op": "gte", "value": 0.7}
        assert count_matching(session, high) == results["predictions"]["churn_bands"]["high"]
        alive = {"type": "trait", "name": "p_alive", "op": "gt", "value": 0.3}
        assert count_matching(session, alive) == 30 - results["predictions"]["churn_bands"]["high"]


def test_a_run_without_orders_fails_with_the_reason(database: Database) -> None:
    with database.unit_of_work() as session:
        queued = create_run(session)
    done = execute_run(database, queued.id)
    assert done.status == "failed"
    assert done.error == "the database has no orders of eligible customers"
    with database.unit_of_work(write=False) as session:
        view = get_run(session, queued.id)
        assert (view.results, view.has_report, view.traits_published, view.as_of) == (None, False, 0, None)
        with pytest.raises(NotFound) as info:
            get_report(session, queued.id)
        assert info.value.code == "analytics_report_not_available"
        assert latest_completed_run(session) is None
    # a finished run is not executed again
    again = execute_run(database, queued.id)
    assert (again.status, again.error) == ("failed", done.error)


def test_a_failure_while_writing_leaves_nothing_half_written(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed_shop(database, customers=25, seed=9)
    first = start_run(database)
    assert first.status == "completed", first.error
    with database.unit_of_work(write=False) as session:
        before = {cid: analytics_traits(session, cid) for cid in ids}
    real = traits_module.set_traits_bulk
    calls: list[int] = []

    def write_then_break(session: Any, rows: Any, *, source: str) -> None:
        real(session, rows, source=source)  # the traits are written (flushed) …
        calls.append(len(rows))
        raise RuntimeError("disk full")  # … then the transaction fails

    monkeypatch.setattr(traits_module, "set_traits_bulk", write_then_break)
    # new orders change the figures, so a half-written run would show
    with database.unit_of_work() as session:
        place_order(
            session,
            prepare_order(
                {
                    "customer_id": ids[0],
                    "currency": "EUR",
                    "placed_at": "2026-09-01T10:00:00+00:00",
                    "lines": [{"sku": "SKU-0", "name": "Tea", "quantity": 1, "unit_price": "500.00"}],
                }
            ),
            emit_events=False,
        )
    second = start_run(database)
    assert calls, "the trait writer was reached"
    assert second.status == "failed"
    assert second.error == "internal error: RuntimeError: disk full"
    with database.unit_of_work(write=False) as session:
        after = {cid: analytics_traits(session, cid) for cid in ids}
        view = get_run(session, second.id)
        latest = latest_completed_run(session)
    assert after == before
    assert (view.results, view.has_report, view.customers, view.traits_published) == (None, False, None, 0)
    assert latest is not None
    assert latest.id == first.id


def test_customers_no_longer_analysed_lose_their_traits(database: Database) -> None:
    ids = seed_shop(database, customers=25, seed=11)
    assert start_run(database).status == "completed"
    from patron.customers import update_customer

    with database.unit_of_work() as session:
        update_customer(session, ids[3], {"is_test": True})
    second = start_run(database)
    assert second.status == "completed", second.error
    assert second.traits_published == 24
    with database.unit_of_work(write=False) as session:
        assert analytics_traits(session, ids[3]) == {}
        assert set(analytics_traits(session, ids[4])) == set(TRAIT_NAMES)


def test_one_run_at_a_time_and_options_are_validated(database: Database, session: Any) -> None:
    with pytest.raises(ValidationFailed) as bad:
        create_run(session, RunOptions(period="fortnight"))
    assert bad.value.code == "invalid_analytics_options"
    assert "--period must be one of week, month, quarter, year" in bad.value.detail
    with pytest.raises(ValidationFailed):
        create_run(session, RunOptions(language="de"))
    with pytest.raises(ValidationFailed):
        create_run(session, RunOptions(as_of=date(2025, 1, 1), calibration_end=date(2025, 2, 1)))
    assert session.scalar(select(func.count()).select_from(AnalyticsRun)) == 0
    first = create_run(session)
    with pytest.raises(Conflict) as busy:
        create_run(session)
    assert busy.value.code == "analytics_run_in_progress"
    assert busy.value.extra == {"run_id": first.id}
    assert [r.id for r in list_runs(session)] == [first.id]


def test_stalled_runs_are_failed_and_no_longer_block(database: Database) -> None:
    clock = FrozenClock(datetime(2026, 5, 1, 2, 0, tzinfo=UTC))
    with use_clock(clock):
        with database.unit_of_work() as session:
            stuck = create_run(session)
        clock.advance(runs_module.STALL_AFTER - timedelta(minutes=1))
        with database.unit_of_work() as session:
            assert fail_stalled_runs(session) == 0
            with pytest.raises(Conflict):
                create_run(session)
        clock.advance(timedelta(minutes=2))
        with database.unit_of_work() as session:
            assert fail_stalled_runs(session) == 1
            fresh = create_run(session)
        with database.unit_of_work(write=False) as session:
            view = get_run(session, stuck.id)
    assert view.status == "failed"
    assert view.error == "the run stopped: its process ended before it finished (start a new run)"
    assert fresh.status == "queued"
    with database.unit_of_work(write=False) as session:  # announced like any other failure, once
        failed = session.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.name == runs_module.RUN_FAILED)
        )
        assert [dict(p) for p in failed] == [{"run_id": stuck.id, "error": view.error}]


def test_runs_page_newest_first(database: Database) -> None:
    clock = FrozenClock(datetime(2026, 5, 1, 2, 0, tzinfo=UTC))
    made = []
    with use_clock(clock):
        for _ in range(3):
            with database.unit_of_work() as session:
                view = create_run(session)
                made.append(view.id)
                row = session.get(AnalyticsRun, view.id)
                assert row is not None
                row.status, row.active = "failed", None  # as a finished run leaves it
            clock.advance(timedelta(minutes=5))
    with database.unit_of_work(write=False) as session:
        page = list_runs(session, limit=2)
        rest = list_runs(session, limit=2, before=(page[-1].created_at, page[-1].id))
    assert [r.id for r in page] == [made[2], made[1]]
    assert [r.id for r in rest] == [made[0]]


def test_old_reports_are_pruned(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_shop(database, customers=20, seed=13)
    monkeypatch.setattr(runs_module, "KEEP_REPORTS", 1)
    first = start_run(database, RunOptions(sections=("kpis",), publish_traits=False))
    second = start_run(database, RunOptions(sections=("kpis",), publish_traits=False))
    assert (first.status, second.status) == ("completed", "completed")
    with database.unit_of_work(write=False) as session:
        assert get_run(session, first.id).has_report is False
        assert get_run(session, first.id).results is not None  # the figures stay
        assert get_run(session, second.id).has_report is True
        blob = session.scalar(select(AnalyticsRun.report_gzip).where(AnalyticsRun.id == second.id))
    assert blob is not None
    assert gzip.decompress(blob).startswith(b"<!DOCTYPE html>")


def test_nightly_due_in_the_business_time_zone() -> None:
    from patron.analytics.jobs import nightly_due

    zone = "Asia/Bangkok"  # UTC+7: 02:00 local is 19:00 UTC the day before
    assert nightly_due(datetime(2026, 5, 1, 18, 59, tzinfo=UTC), zone, None) is False
    assert nightly_due(datetime(2026, 5, 1, 19, 0, tzinfo=UTC), zone, None) is True
    ran = datetime(2026, 5, 1, 19, 5, tzinfo=UTC)  # 2 May, 02:05 local
    assert nightly_due(datetime(2026, 5, 2, 16, 59, tzinfo=UTC), zone, ran) is False  # 2 May 23:59 local
    assert nightly_due(datetime(2026, 5, 2, 17, 0, tzinfo=UTC), zone, ran) is False  # 3 May 00:00 local
    assert nightly_due(datetime(2026, 5, 2, 19, 0, tzinfo=UTC), zone, ran) is True  # 3 May 02:00 local


def test_the_worker_runs_the_analysis_nightly(database: Database) -> None:
    from patron.analytics.jobs import run_nightly
    from patron.worker.jobs import scheduled_jobs

    clock = FrozenClock(datetime(2026, 5, 1, 23, 0, tzinfo=UTC))  # 01:00 in Budapest (UTC+2)
    with use_clock(clock):
        assert run_nightly(database) is None  # no orders yet: nothing to analyse
        ids = seed_shop(database, customers=20, seed=17)
        assert run_nightly(database) is None  # not 02:00 yet
        clock.advance(timedelta(hours=1))
        jobs = scheduled_jobs(database)
        for job in jobs:  # the worker's first tick runs every job once
            job()
        # the nightly run executes in a process of its own: wait for it
        from patron.worker.analytics import launched

        for process in list(launched.values()):
            assert process.wait(timeout=300) == 0
        with database.unit_of_work(write=False) as session:
            nightly = list_runs(session)
            assert [(r.trigger, r.status) for r in nightly] == [("schedule", "completed")]
            assert set(analytics_traits(session, ids[1])) == set(TRAIT_NAMES)
        clock.advance(timedelta(hours=20))  # 22:00 local: done for today
        assert run_nightly(database) is None
        clock.advance(timedelta(hours=3))  # 01:00 the next day: not yet
        assert run_nightly(database) is None
        clock.advance(timedelta(hours=1))  # 02:00 the next day
        again = run_nightly(database)
    assert again is not None
    assert (again.trigger, again.status) == ("schedule", "completed")


def test_two_processes_cannot_both_start_a_run(database: Database, db_url: str) -> None:
    """Two connections create a run at the same moment: exactly one is queued, the other is a 409."""
    import threading

    from patron.core.db import Database as Db
    from patron.core.db import make_engine

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create() -> None:
        engine = make_engine(db_url)  # a connection pool of its own, like another process
        try:
            own = Db(engine)
            with own.unit_of_work() as session:
                barrier.wait(timeout=10)
                create_run(session)
            outcomes.append("queued")
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["analytics_run_in_progress", "queued"]
    with database.unit_of_work(write=False) as session:
        assert [r.status for r in list_runs(session)] == ["queued"]


def test_the_unique_slot_blocks_a_second_active_run_even_without_the_check(session: Any) -> None:
    """Bypassing the friendly check (as a concurrent process effectively does), the database refuses."""
    first = create_run(session)
    session.add(AnalyticsRun(status="queued", active="active", options={}))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    assert first.status == "queued"
