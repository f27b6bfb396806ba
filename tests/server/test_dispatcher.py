"""``patron serve`` (two worker processes) dispatches the outbox in-process: events written by a
request are delivered to every registered handler shortly after commit, each exactly once."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from patron.auth import Role
from patron.core.audit import AuditEntry
from patron.core.db import Database, get_engine
from patron.core.outbox import OutboxDelivery, OutboxEvent, emit_event, registry
from tests.support import LiveServer, concurrently, create_staff_token, fresh_database_url

DEADLINE_S = 20.0
PROBE_DIR = Path(__file__).resolve().parent.parent / "support" / "dispatch_probe"
PROBE_KEY = "tests.dispatch_probe"  # as in dispatch_probe/sitecustomize.py
PROBED = ("customer.created", "test.pinged")


@pytest.fixture(scope="module")
def served(
    template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, str, str]]:
    url = fresh_database_url(template_db, tmp_path_factory.mktemp("serve"), "serve.db")
    token = create_staff_token(url, Role.OWNER)
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    # the probe handler is registered in every server process through sitecustomize
    env = {
        "PYTHONPATH": os.pathsep.join([str(PROBE_DIR), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "PATRON_TEST_PROBE_EVENTS": ",".join(PROBED),
    }
    with LiveServer(url, workers=2, dispatch=True, command="serve", log_path=log, env=env) as server:
        assert len(server.worker_pids()) == 2, server.log()
        yield server, url, token
        log_text = server.log()
    assert "Traceback" not in log_text, log_text


def _wait_dispatched(db: Database, ids: set[str]) -> list[OutboxEvent]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        with db.unit_of_work(write=False) as session:
            rows = list(session.scalars(select(OutboxEvent).where(OutboxEvent.id.in_(ids))))
        if len(rows) == len(ids) and all(r.dispatched_at is not None for r in rows):
            return rows
        if time.monotonic() > deadline:
            pending = [(r.name, r.attempts, r.last_error) for r in rows if r.dispatched_at is None]
            raise AssertionError(f"events not dispatched within {DEADLINE_S}s: {pending}")
        time.sleep(0.1)


def test_an_event_written_outside_the_server_is_drained(served: tuple[LiveServer, str, str]) -> None:
    _, url, _ = served
    db = Database(get_engine(url))
    with db.unit_of_work() as session:
        event_id = emit_event(session, "test.pinged", {"n": 1})
    (row,) = _wait_dispatched(db, {event_id})
    assert row.attempts == 1
    assert row.failed_at is None
    assert row.last_error is None
    assert _probe_deliveries(db, {event_id}) == {event_id: 1}


def _probe_deliveries(db: Database, ids: set[str]) -> dict[str, int]:
    with db.unit_of_work(write=False) as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "probe.delivered", AuditEntry.entity_id.in_(ids))
        ).all()
    out: dict[str, int] = {}
    for row in rows:
        out[str(row.entity_id)] = out.get(str(row.entity_id), 0) + 1
    return out


def test_events_from_concurrent_requests_reach_every_handler_once(
    served: tuple[LiveServer, str, str],
) -> None:
    server, url, token = served
    db = Database(get_engine(url))
    with db.unit_of_work(write=False) as session:
        before = set(session.scalars(select(OutboxEvent.id)))

    def create(i: int) -> int:
        body = {
            "first_name": "Minh",
            "last_name": f"Trần {i}",
            "email": f"minh.tran.{i}@example.com",
            "country": "VN",
        }
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
            return client.post("/api/v1/customers", json=body).status_code

    assert concurrently(10, create) == [201] * 10
    with db.unit_of_work(write=False) as session:
        new = {
            e.id: e.name for e in session.scalars(select(OutboxEvent).where(OutboxEvent.id.not_in(before)))
        }
    assert sorted(new.values()).count("customer.created") == 10

    rows = _wait_dispatched(db, set(new))

    assert all(r.failed_at is None and r.last_error is None for r in rows)
    with db.unit_of_work(write=False) as session:
        deliveries = [
            (d.event_id, d.handler)
            for d in session.scalars(select(OutboxDelivery).where(OutboxDelivery.event_id.in_(set(new))))
        ]
    # the in-process dispatcher may already have handled some of the requests' events, so ``new`` can
    # hold events their handlers wrote (``loyalty.enrolled``): the probe listens to PROBED names only
    handlers = {
        e.id: {key for key, _ in registry.for_event(e.name)} | ({PROBE_KEY} if e.name in PROBED else set())
        for e in rows
    }
    expected = sorted((event_id, key) for event_id, keys in handlers.items() for key in keys)
    assert sorted(deliveries) == expected  # every handler, once (the primary key forbids twice)
    probed = {event_id for event_id, name in new.items() if name in PROBED}
    assert _probe_deliveries(db, set(new)) == dict.fromkeys(probed, 1)  # the probe really ran, once each
