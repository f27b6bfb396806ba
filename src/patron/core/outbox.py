"""Domain events in a transactional outbox.

``emit_event`` writes the event in the caller's transaction; a dispatcher (``patron worker``, or
``patron serve`` in-process for the embedded setup) delivers it to registered handlers after commit.
Each (event, handler) pair is delivered at least once and recorded, so a handler that succeeded is
never run again for that event when another handler fails and the event is retried. Handlers must be
idempotent with respect to the event id anyway (they run in the dispatcher's transaction, so their
effects and the delivery record commit together).

The dispatcher works in batches: one transaction claims up to ``batch`` due events, runs each
handler in its own savepoint (a failing handler rolls back alone and does not stop the others), and
writes the delivery records and the events' new state with one statement each at the end of the
batch, so they commit together with the handlers' effects. Handlers may memoise read-mostly
configuration for the length of a batch in :func:`batch_memo`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ForeignKey, Index, Integer, String, Table, Text, bindparam, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from patron.core.clock import now
from patron.core.db import Base, Database, created_at_column, id_column

log = logging.getLogger("patron.outbox")

MAX_ATTEMPTS = 10

#: events per dispatch transaction. SQLite has one write lock, which a batch holds until it commits:
#: small batches let the web processes' writes in between (measured with bench/loyalty_bench.py:
#: at 100 the order POSTs waited up to a second behind the dispatcher); PostgreSQL locks rows only.
BATCH_SIZE: dict[str, int] = {"sqlite": 20, "postgresql": 100}


class OutboxEvent(Base):
    __tablename__ = "outbox_events"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = created_at_column()
    available_at: Mapped[datetime] = mapped_column(default=now)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    dispatched_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (Index("ix_outbox_pending", "dispatched_at", "failed_at", "available_at"),)


class OutboxDelivery(Base):
    __tablename__ = "outbox_deliveries"

    event_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("outbox_events.id", ondelete="CASCADE"), primary_key=True
    )
    handler: Mapped[str] = mapped_column(String(200), primary_key=True)
    delivered_at: Mapped[datetime] = created_at_column()


@dataclass(frozen=True)
class DomainEvent:
    id: str
    name: str
    payload: dict[str, Any]
    occurred_at: datetime


Handler = Callable[[Session, DomainEvent], None]


@dataclass
class EventRegistry:
    handlers: dict[str, list[tuple[str, Handler]]] = field(default_factory=dict)

    def register(self, name: str, handler: Handler, *, key: str | None = None) -> None:
        handler_key = key or f"{handler.__module__}.{handler.__qualname__}"
        entries = self.handlers.setdefault(name, [])
        if any(k == handler_key for k, _ in entries):
            return
        entries.append((handler_key, handler))

    def for_event(self, name: str) -> list[tuple[str, Handler]]:
        return list(self.handlers.get(name, [])) + list(self.handlers.get("*", []))


registry = EventRegistry()


def emit_event(session: Session, name: str, payload: dict[str, Any]) -> str:
    """Record a domain event in the caller's transaction. Returns the event id."""
    event = OutboxEvent(name=name, payload=payload)
    session.add(event)
    session.flush()
    return event.id


def _claim(session: Session, batch: int) -> list[OutboxEvent]:
    stmt = (
        select(OutboxEvent)
        .where(
            OutboxEvent.dispatched_at.is_(None),
            OutboxEvent.failed_at.is_(None),
            OutboxEvent.available_at <= now(),
        )
        .order_by(OutboxEvent.available_at, OutboxEvent.id)
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


#: the key of the per-batch memo in ``Session.info`` (see :func:`batch_memo`)
BATCH_MEMO = "patron.outbox.batch_memo"

_EVENTS = cast(Table, OutboxEvent.__table__)
_DELIVERIES = cast(Table, OutboxDelivery.__table__)


def batch_memo(session: Session) -> dict[Any, Any] | None:
    """A dict that lives for one dispatch batch (one transaction), or ``None`` outside a batch.

    Handlers may keep read-mostly configuration in it (programme settings, rules, market time zones)
    instead of reading it again for every event of the batch; the batch sees that configuration as
    of its first read, as if its events had been handled just before a concurrent change. Keys are
    the caller's (use a tuple starting with the domain's name). Never store anything that a handler
    writes."""
    memo = session.info.get(BATCH_MEMO)
    return memo if isinstance(memo, dict) else None


def dispatch_pending(db: Database, *, batch: int | None = None, events: EventRegistry | None = None) -> int:
    """Deliver one batch of due events (one transaction; ``batch`` defaults to ``BATCH_SIZE`` of the
    database). Returns how many events were processed."""
    events = events or registry
    batch = batch or BATCH_SIZE.get(db.dialect, 100)
    with db.unit_of_work() as session:
        claimed = _claim(session, batch)
        if not claimed:
            return 0
        session.info[BATCH_MEMO] = {}
        try:
            done = _delivered(session, [row.id for row in claimed])
            delivered: list[dict[str, Any]] = []
            succeeded: list[OutboxEvent] = []
            for row in claimed:
                error = _run_handlers(session, row, events, done.get(row.id, set()), delivered)
                if error is None:
                    succeeded.append(row)
                else:
                    _record_failure(row, error)
                    session.flush()  # now, outside any savepoint a later handler might roll back
            stamp = now()
            if delivered:
                session.execute(_DELIVERIES.insert(), [{**d, "delivered_at": stamp} for d in delivered])
            if succeeded:
                session.execute(
                    update(_EVENTS)
                    .where(_EVENTS.c.id == bindparam("b_id"))
                    .values(attempts=bindparam("b_attempts"), dispatched_at=stamp, last_error=None)
                    .execution_options(synchronize_session=False),
                    [{"b_id": row.id, "b_attempts": row.attempts + 1} for row in succeeded],
                )
        finally:
            session.info.pop(BATCH_MEMO, None)
    return len(claimed)


def _delivered(session: Session, event_ids: list[str]) -> dict[str, set[str]]:
    """{event id: handlers that already succeeded for it} (earlier attempts), in one query."""
    out: dict[str, set[str]] = {}
    rows = session.execute(
        select(_DELIVERIES.c.event_id, _DELIVERIES.c.handler).where(_DELIVERIES.c.event_id.in_(event_ids))
    )
    for event_id, handler in rows:
        out.setdefault(str(event_id), set()).add(str(handler))
    return out


def _run_handlers(
    session: Session,
    row: OutboxEvent,
    events: EventRegistry,
    done: set[str],
    delivered: list[dict[str, Any]],
) -> str | None:
    """Run the handlers that have not succeeded yet, each in a savepoint; append the successful ones
    to ``delivered``. Returns the last error, or ``None`` when every handler succeeded."""
    event = DomainEvent(id=row.id, name=row.name, payload=dict(row.payload), occurred_at=row.occurred_at)
    error: str | None = None
    for key, handler in events.for_event(row.name):
        if key in done:
            continue
        savepoint = session.begin_nested()
        try:
            handler(session, event)
            session.flush()
            savepoint.commit()
        except Exception as exc:  # a failing handler must not stop the others
            savepoint.rollback()
            log.exception("handler %s failed for event %s %s", key, row.name, row.id)
            error = f"{key}: {type(exc).__name__}: {exc}"
        else:
            delivered.append({"event_id": row.id, "handler": key})
    return error


def _record_failure(row: OutboxEvent, error: str) -> None:
    row.attempts += 1
    row.last_error = error[:2000]
    if row.attempts >= MAX_ATTEMPTS:
        row.failed_at = now()
    else:
        row.available_at = now() + timedelta(seconds=min(3600, 2**row.attempts))


def _deliver(session: Session, row: OutboxEvent, events: EventRegistry) -> None:
    """Deliver one claimed event in the caller's transaction (tests; the dispatcher batches)."""
    done = _delivered(session, [row.id]).get(row.id, set())
    delivered: list[dict[str, Any]] = []
    error = _run_handlers(session, row, events, done, delivered)
    for d in delivered:
        session.add(OutboxDelivery(event_id=d["event_id"], handler=d["handler"]))
    if error is None:
        row.attempts += 1
        row.dispatched_at = now()
        row.last_error = None
    else:
        _record_failure(row, error)
    session.flush()


def drain(db: Database, *, max_rounds: int = 1000) -> int:
    """Dispatch until nothing is due (tests, CLI ``worker --once``)."""
    total = 0
    for _ in range(max_rounds):
        n = dispatch_pending(db)
        total += n
        if n == 0:
            break
    return total


def retry_failed(session: Session) -> int:
    result = session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.failed_at.is_not(None))
        .values(failed_at=None, attempts=0, available_at=now())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


class Dispatcher:
    """A background thread that drains the outbox (embedded ``patron serve`` and ``patron worker``)."""

    def __init__(self, db: Database, *, interval: float = 1.0, jobs: list[Callable[[], Any]] | None = None):
        self.db = db
        self.interval = interval
        self.jobs = jobs or []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        n = drain(self.db)
        for job in self.jobs:
            try:
                job()
            except Exception:
                log.exception("scheduled job failed")
        return n

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("outbox dispatch failed")
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="patron-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def scrub_dispatched_payloads(session: Session, needle: str) -> int:
    """Blank the payloads of already-dispatched events that mention ``needle`` (erasure): the event
    names and times stay for the record; undelivered events keep theirs until delivered."""
    from sqlalchemy import Text, cast

    result = session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.dispatched_at.is_not(None), cast(OutboxEvent.payload, Text).like(f"%{needle}%"))
        .values(payload={"erased": True})
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def purge_dispatched(session: Session, older_than: timedelta) -> int:
    """Delete dispatched events (and their delivery records) older than ``older_than``."""
    from sqlalchemy import delete

    cutoff = now() - older_than
    old = select(OutboxEvent.id).where(
        OutboxEvent.dispatched_at.is_not(None), OutboxEvent.dispatched_at < cutoff
    )
    session.execute(delete(OutboxDelivery).where(OutboxDelivery.event_id.in_(old)))
    result = session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(old)))
    return int(result.rowcount)  # type: ignore[attr-defined]
