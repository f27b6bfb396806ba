"""The dispatcher's batches: one transaction per batch, each handler in its own savepoint, delivery
records and event states written at the end of the batch — a failing handler still rolls back alone,
the other events of the batch and the other handlers of its event are delivered once, and a retry
runs only what failed. The per-batch memo lives exactly as long as one batch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.core.audit import AuditEntry, record_audit
from patron.core.clock import FrozenClock
from patron.core.db import Database
from patron.core.outbox import (
    BATCH_SIZE,
    DomainEvent,
    EventRegistry,
    OutboxDelivery,
    OutboxEvent,
    batch_memo,
    dispatch_pending,
    emit_event,
)


def _effects(database: Database) -> list[tuple[str, str]]:
    with database.unit_of_work(write=False) as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.entity_type == "probe")).all()
        return sorted((str(r.entity_id), r.action) for r in rows)


def _deliveries(database: Database) -> list[tuple[str, str]]:
    with database.unit_of_work(write=False) as s:
        return sorted((d.event_id, d.handler) for d in s.scalars(select(OutboxDelivery)))


def test_a_failing_handler_rolls_back_alone_within_a_batch(
    database: Database, frozen_clock: FrozenClock
) -> None:
    calls: list[tuple[str, str]] = []
    fail_for: set[str] = set()

    def write(session: Session, event: DomainEvent) -> None:
        calls.append(("write", event.payload["n"]))
        record_audit(session, "write", "probe", event.payload["n"])

    def flaky(session: Session, event: DomainEvent) -> None:
        calls.append(("flaky", event.payload["n"]))
        record_audit(session, "flaky", "probe", event.payload["n"])  # rolled back with the savepoint
        if event.payload["n"] in fail_for:
            raise RuntimeError(f"boom {event.payload['n']}")

    events = EventRegistry()
    events.register("e", write, key="write")
    events.register("e", flaky, key="flaky")
    with database.unit_of_work() as s:
        ids = {n: emit_event(s, "e", {"n": n}) for n in ("1", "2", "3")}
    fail_for.add("2")

    assert dispatch_pending(database, batch=10, events=events) == 3  # one batch, one transaction

    assert sorted(calls) == sorted((h, n) for n in ("1", "2", "3") for h in ("write", "flaky"))
    assert _effects(database) == [
        ("1", "flaky"), ("1", "write"), ("2", "write"), ("3", "flaky"), ("3", "write"),
    ]  # fmt: skip
    assert _deliveries(database) == sorted(
        [
            (ids["1"], "write"),
            (ids["1"], "flaky"),
            (ids["2"], "write"),
            (ids["3"], "write"),
            (ids["3"], "flaky"),
        ]
    )
    with database.unit_of_work(write=False) as s:
        state = {
            r.id: (r.attempts, r.dispatched_at is not None, r.last_error)
            for r in s.scalars(select(OutboxEvent))
        }
    assert state[ids["1"]] == (1, True, None)
    assert state[ids["3"]] == (1, True, None)
    assert state[ids["2"]][:2] == (1, False)
    assert state[ids["2"]][2] == "flaky: RuntimeError: boom 2"

    # the retry (after the back-off) runs only the handler that failed, once
    calls.clear()
    fail_for.clear()
    assert dispatch_pending(database, events=events) == 0  # not due yet
    frozen_clock.advance(timedelta(seconds=3))
    assert dispatch_pending(database, events=events) == 1
    assert calls == [("flaky", "2")]
    assert _effects(database).count(("2", "flaky")) == 1
    assert len(_deliveries(database)) == 6
    with database.unit_of_work(write=False) as s:
        row = s.get(OutboxEvent, ids["2"])
        assert row is not None
        assert (row.attempts, row.dispatched_at is not None, row.last_error) == (2, True, None)


def test_a_batch_claims_at_most_its_size_and_commits_it(database: Database) -> None:
    seen: list[str] = []
    events = EventRegistry()
    events.register("e", lambda s, e: seen.append(e.payload["n"]), key="seen")
    with database.unit_of_work() as s:
        for n in range(5):
            emit_event(s, "e", {"n": str(n)})
    assert dispatch_pending(database, batch=2, events=events) == 2
    assert dispatch_pending(database, batch=2, events=events) == 2
    assert dispatch_pending(database, batch=2, events=events) == 1
    assert dispatch_pending(database, batch=2, events=events) == 0
    assert sorted(seen) == ["0", "1", "2", "3", "4"]  # each once
    with database.unit_of_work(write=False) as s:
        assert (
            s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None)))
            == 0
        )
        assert s.scalar(select(func.count()).select_from(OutboxDelivery)) == 5
    assert BATCH_SIZE["sqlite"] < BATCH_SIZE["postgresql"]


def test_the_batch_memo_lives_for_one_batch(database: Database) -> None:
    memos: list[tuple[str, int, Any]] = []

    def remember(session: Session, event: DomainEvent) -> None:
        memo = batch_memo(session)
        assert memo is not None
        memos.append((event.payload["n"], id(memo), memo.get("first")))
        memo.setdefault("first", event.payload["n"])

    events = EventRegistry()
    events.register("e", remember, key="remember")
    with database.unit_of_work() as s:
        for n in range(3):
            emit_event(s, "e", {"n": str(n)})
        assert batch_memo(s) is None  # outside a batch: no memo
    assert dispatch_pending(database, batch=2, events=events) == 2
    assert dispatch_pending(database, batch=2, events=events) == 1
    (n0, memo0, first0), (_, memo1, first1), (_, _, first2) = memos
    assert memo0 == memo1  # one dict for the batch
    assert (first0, first1) == (None, n0)  # what the first event stored, the second one saw
    assert first2 is None  # a new batch starts empty
    with database.unit_of_work() as s:
        assert batch_memo(s) is None
