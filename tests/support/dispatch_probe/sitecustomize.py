"""Loaded at start-up by every Python process whose PYTHONPATH starts with this directory (the server
under test and the worker processes uvicorn spawns): registers a probe handler on the real outbox
registry, which records each delivery in the audit log with the process id that ran it."""

from __future__ import annotations

import os

from sqlalchemy.orm import Session

from patron.core.audit import record_audit
from patron.core.outbox import DomainEvent, registry

PROBE_KEY = "tests.dispatch_probe"
PROBE_ACTION = "probe.delivered"


def _probe(session: Session, event: DomainEvent) -> None:
    record_audit(
        session, PROBE_ACTION, "outbox_event", event.id, new={"pid": os.getpid(), "name": event.name}
    )


for _name in os.environ.get("PATRON_TEST_PROBE_EVENTS", "").split(","):
    if _name:
        registry.register(_name, _probe, key=PROBE_KEY)
