"""A batch whose process died mid-import is failed by the worker's job, and can then be undone."""

from __future__ import annotations

from datetime import timedelta

from patron.core.clock import FrozenClock
from patron.core.db import Database
from patron.imports import (
    BatchStatus,
    ImportKind,
    ImportOptions,
    create_batch,
    fail_stalled_batches,
    get_batch,
)
from patron.imports.models import ImportBatch


def test_stalled_batches_are_failed(database: Database, frozen_clock: FrozenClock) -> None:
    with database.unit_of_work() as s:
        queued = create_batch(s, kind=ImportKind.CUSTOMERS, file_name="a.csv", options=ImportOptions())
        running = create_batch(s, kind=ImportKind.CUSTOMERS, file_name="b.csv", options=ImportOptions())
        row = s.get(ImportBatch, running.id)
        assert row is not None
        row.status = BatchStatus.RUNNING.value
        row.started_at = row.heartbeat_at = frozen_clock.now()
    frozen_clock.advance(timedelta(minutes=10))
    with database.unit_of_work() as s:
        assert fail_stalled_batches(s) == 0
        row = s.get(ImportBatch, running.id)
        assert row is not None
        row.heartbeat_at = frozen_clock.now()  # a chunk committed: still alive
    frozen_clock.advance(timedelta(minutes=10))
    with database.unit_of_work() as s:
        assert fail_stalled_batches(s) == 1  # the queued one never started
        assert get_batch(s, queued.id).status == BatchStatus.FAILED
        assert get_batch(s, running.id).status == BatchStatus.RUNNING
    frozen_clock.advance(timedelta(minutes=6))
    with database.unit_of_work() as s:
        assert fail_stalled_batches(s) == 1
        failed = get_batch(s, running.id)
        assert failed.status == BatchStatus.FAILED
        assert "stopped" in (failed.error or "")
