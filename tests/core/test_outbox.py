from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.core.clock import FrozenClock
from patron.core.db import Database
from patron.core.outbox import (
    MAX_ATTEMPTS,
    DomainEvent,
    EventRegistry,
    OutboxDelivery,
    OutboxEvent,
    dispatch_pending,
    emit_event,
)


def test_event_rolls_back_with_the_transaction(database: Database) -> None:
    session = database.session()
    emit_event(session, "thing.happened", {"x": 1})
    session.rollback()
    session.close()
    with database.unit_of_work() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 0


def test_dispatch_delivers_once_per_handler(database: Database) -> None:
    seen: list[tuple[str, str]] = []
    events = EventRegistry()
    events.register("order.placed", lambda s, e: seen.append(("a", e.payload["id"])), key="a")
    events.register("order.placed", lambda s, e: seen.append(("b", e.payload["id"])), key="b")
    events.register("other", lambda s, e: seen.append(("c", "x")), key="c")
    with database.unit_of_work() as s:
        emit_event(s, "order.placed", {"id": "o1"})
    assert dispatch_pending(database, events=events) == 1
    assert dispatch_pending(database, events=events) == 0
    assert seen == [("a", "o1"), ("b", "o1")]


def test_failing_handler_is_retried_without_rerunning_the_others(
    database: Database, frozen_clock: FrozenClock
) -> None:
    calls = {"ok": 0, "flaky": 0}

    def ok(session: Session, event: DomainEvent) -> None:
        calls["ok"] += 1

    def flaky(session: Session, event: DomainEvent) -> None:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RuntimeError("boom")

    events = EventRegistry()
    events.register("e", ok, key="ok")
    events.register("e", flaky, key="flaky")
    with database.unit_of_work() as s:
        event_id = emit_event(s, "e", {})
    dispatch_pending(database, events=events)
    with database.unit_of_work() as s:
        row = s.get(OutboxEvent, event_id)
        assert row is not None
        assert row.dispatched_at is None
        assert row.attempts == 1
        assert "boom" in (row.last_error or "")
    # not due yet: backoff
    assert dispatch_pending(database, events=events) == 0
    frozen_clock.advance(timedelta(seconds=5))
    assert dispatch_pending(database, events=events) == 1
    assert calls == {"ok": 1, "flaky": 2}
    with database.unit_of_work() as s:
        row = s.get(OutboxEvent, event_id)
        assert row is not None
        assert row.dispatched_at is not None
        assert s.scalar(select(func.count()).select_from(OutboxDelivery)) == 2


def test_event_fails_for_good_after_max_attempts(database: Database, frozen_clock: FrozenClock) -> None:
    def broken(session: Session, event: DomainEvent) -> None:
        raise ValueError("never works")

    events = EventRegistry()
    events.register("e", broken, key="broken")
    with database.unit_of_work() as s:
        event_id = emit_event(s, "e", {})
    for _ in range(MAX_ATTEMPTS + 2):
        dispatch_pending(database, events=events)
        frozen_clock.advance(timedelta(hours=2))
    with database.unit_of_work() as s:
        row = s.get(OutboxEvent, event_id)
        assert row is not None
        assert row.attempts == MAX_ATTEMPTS
        assert row.failed_at is not None
