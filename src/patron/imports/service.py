"""Running an import: read the file in chunks, validate each row with the domain's rules, upsert the
accepted records by their external id, keep the rejected rows with their reasons, and record what
changed so the batch can be undone.

An import is a job, like the outbox dispatcher: it owns its units of work — one transaction per
chunk, so a million-row file never sits in one transaction and its progress is visible while it
runs. A fatal error (unreadable file, unknown columns …) fails the batch; chunks committed before
it stay, and an undo removes them. A dry run does everything but keep the domain writes (they run
in a savepoint that is rolled back, so the counts of what would be created, updated or left
unchanged are exact).

Imports are backfill: they emit no domain events (so no messages, no points) unless ``live``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Table, and_, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from patron.core.audit import Actor, current_actor, record_audit
from patron.core.bulk import insert_rows
from patron.core.business import get_business
from patron.core.clock import now
from patron.core.db import Database
from patron.core.errors import Conflict, NotFound, PatronError, ValidationFailed
from patron.core.i18n import N_
from patron.core.ids import new_id
from patron.imports.contracts import (
    MAX_CHUNK_SIZE,
    BatchStatus,
    BatchView,
    ImportOptions,
    ImportReport,
    RejectedRow,
    RejectView,
    UndoReport,
)
from patron.imports.errors import ImportFileError
from patron.imports.mapping import KEY_FIELD, ColumnPlan, ImportKind, plan_columns
from patron.imports.models import ImportBatch, ImportRecord, ImportReject
from patron.imports.parsing import DecimalMode, detect_decimal_mode, normalise_date_format
from patron.imports.readers import ReadOptions, Source, open_source
from patron.imports.rows import (
    ConvertedRow,
    ConvertOptions,
    Reason,
    Unit,
    build_unit,
    convert_row,
    decimal_samples,
    domain_reasons,
    group_rows,
    row_values,
    unit_row_reasons,
)
from patron.imports.targets import Outcome, target_for

log = logging.getLogger("patron.imports")

#: an order's lines are held back at a chunk's end (they may go on in the next chunk) up to this many
MAX_ORDER_ROWS = 1000


class ImportListener(Protocol):
    """Hooks for an adapter: the CLI prints progress and rejected rows as they come."""

    def opened(self, report: ImportReport, total_units: int | None, unit: str) -> None: ...

    def chunk_done(self, report: ImportReport, done_units: int) -> None: ...

    def rejected(self, row: RejectedRow) -> None: ...


class _NullListener:
    def opened(self, report: ImportReport, total_units: int | None, unit: str) -> None:
        pass

    def chunk_done(self, report: ImportReport, done_units: int) -> None:
        pass

    def rejected(self, row: RejectedRow) -> None:
        pass


# --- batches -----------------------------------------------------------------------------------


def _view(batch: ImportBatch) -> BatchView:
    return BatchView(
        id=batch.id,
        kind=batch.kind,
        file_name=batch.file_name,
        file_format=batch.file_format,
        file_size=batch.file_size,
        encoding=batch.encoding,
        delimiter=batch.delimiter,
        status=batch.status,
        dry_run=batch.dry_run,
        live=batch.live,
        options=dict(batch.options or {}),
        columns=dict(batch.columns or {}),
        rows_total=batch.rows_total,
        rows_accepted=batch.rows_accepted,
        rows_rejected=batch.rows_rejected,
        created=batch.created_count,
        updated=batch.updated_count,
        unchanged=batch.unchanged_count,
        progress=None if batch.progress is None else batch.progress / 1000,
        error=batch.error,
        actor=batch.actor,
        actor_label=batch.actor_label,
        created_at=batch.created_at,
        started_at=batch.started_at,
        finished_at=batch.finished_at,
        undone_at=batch.undone_at,
        undone_by=batch.undone_by,
    )


def validate_options(options: ImportOptions) -> None:
    """Check options before any work (raises :class:`ImportFileError`)."""
    if not 1 <= options.chunk_size <= MAX_CHUNK_SIZE:
        raise ImportFileError(f"chunk size must be between 1 and {MAX_CHUNK_SIZE}", code="bad_chunk_size")
    try:
        normalise_date_format(options.date_format)
    except ValueError as exc:
        raise ImportFileError(str(exc), code="bad_date_format") from exc
    if options.time_zone is not None:
        from patron.core.business import validate_time_zone

        try:
            validate_time_zone(options.time_zone)
        except ValidationFailed as exc:
            raise ImportFileError(exc.detail, code="bad_time_zone") from exc


def create_batch(
    session: Session,
    *,
    kind: ImportKind,
    file_name: str,
    options: ImportOptions,
    file_size: int | None = None,
    actor: Actor | None = None,
) -> BatchView:
    """Queue a batch (the API does this before the job runs)."""
    validate_options(options)
    who = actor or current_actor.get()
    batch = ImportBatch(
        kind=kind.value,
        file_name=file_name[:500],
        status=BatchStatus.QUEUED.value,
        dry_run=options.dry_run,
        live=options.live,
        options=options.as_dict(),
        file_size=file_size,
        actor=who.ref,
        actor_label=who.label,
    )
    session.add(batch)
    session.flush()
    return _view(batch)


def get_batch(session: Session, batch_id: str) -> BatchView:
    batch = session.get(ImportBatch, batch_id)
    if batch is None:
        raise NotFound(f"no import batch {batch_id}", code="import_not_found")
    return _view(batch)


def list_batches(
    session: Session, *, limit: int = 50, before: tuple[str, str] | None = None, kind: str | None = None
) -> list[BatchView]:
    """Newest first; ``before`` is the (created_at ISO, id) of the last batch of the previous page."""
    stmt = select(ImportBatch).order_by(ImportBatch.created_at.desc(), ImportBatch.id.desc()).limit(limit)
    if kind:
        stmt = stmt.where(ImportBatch.kind == kind)
    if before is not None:
        from datetime import datetime

        at = datetime.fromisoformat(before[0])
        stmt = stmt.where(
            (ImportBatch.created_at < at) | ((ImportBatch.created_at == at) & (ImportBatch.id < before[1]))
        )
    return [_view(b) for b in session.scalars(stmt)]


def list_rejects(
    session: Session, batch_id: str, *, after_line: int = 0, limit: int = 50
) -> list[RejectView]:
    get_batch(session, batch_id)
    stmt = (
        select(ImportReject)
        .where(ImportReject.batch_id == batch_id, ImportReject.line > after_line)
        .order_by(ImportReject.line)
        .limit(limit)
    )
    return [
        RejectView(r.line, r.external_id, r.message, list(r.reasons or []), dict(r.values or {}))
        for r in session.scalars(stmt)
    ]


def iter_rejects(session: Session, batch_id: str, *, page: int = 1000) -> Iterator[RejectView]:
    after = 0
    while True:
        rows = list_rejects(session, batch_id, after_line=after, limit=page)
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].line


def check_file(kind: ImportKind, path: Path, options: ImportOptions, *, file_name: str | None = None) -> None:
    """Fail fast on what would make the whole import fail (options, the file's format, encoding,
    header and column mapping), without reading the rows. Raises :class:`ImportFileError`."""
    validate_options(options)
    source = open_source(
        path,
        ReadOptions(
            encoding=options.encoding,
            delimiter=options.delimiter,
            chunk_size=options.chunk_size,
            sheet=options.sheet,
        ),
        name=file_name,
    )
    try:
        plan_columns(kind, source.columns, options.mapping)
    finally:
        source.close()


# --- running -----------------------------------------------------------------------------------


@dataclass
class _Run:
    db: Database
    kind: ImportKind
    options: ImportOptions
    report: ImportReport
    listener: ImportListener
    batch_id: str | None
    persist: bool
    plan: ColumnPlan | None = None
    convert: ConvertOptions | None = None


def _claim(db: Database, batch_id: str) -> ImportBatch:
    with db.unit_of_work() as session:
        batch = session.get(ImportBatch, batch_id)
        if batch is None:
            raise NotFound(f"no import batch {batch_id}", code="import_not_found")
        if batch.status != BatchStatus.QUEUED.value:
            raise Conflict(f"import batch {batch_id} is {batch.status}, not queued", code="import_not_queued")
        batch.status = BatchStatus.RUNNING.value
        batch.started_at = batch.heartbeat_at = now()
        return batch


def _save_progress(session: Session, run: _Run, *, final: bool = False) -> None:
    if not run.persist or run.batch_id is None:
        return
    r = run.report
    values: dict[str, Any] = {
        "rows_total": r.rows_total,
        "rows_accepted": r.rows_accepted,
        "rows_rejected": r.rows_rejected,
        "created_count": r.created,
        "updated_count": r.updated,
        "unchanged_count": r.unchanged,
        "progress": None if r.progress is None else int(r.progress * 1000),
        "encoding": r.encoding,
        "delimiter": r.delimiter,
        "file_format": r.file_format,
        "columns": dict(r.columns),
        "heartbeat_at": now(),
    }
    if final:
        values.update(status=r.status.value, finished_at=now(), error=r.error)
    session.execute(update(ImportBatch).where(ImportBatch.id == run.batch_id).values(**values))


def run_import(
    db: Database,
    kind: ImportKind,
    path: Path,
    options: ImportOptions,
    *,
    file_name: str | None = None,
    batch_id: str | None = None,
    listener: ImportListener | None = None,
    actor: Actor | None = None,
) -> ImportReport:
    """Import ``path`` (CSV, .xlsx or Parquet). With ``batch_id`` the queued batch is run; without
    it a batch is created — except for a dry run, which then stores nothing at all.

    Returns the report; a fatal error gives a report with status ``failed`` (and the batch, if any,
    is marked failed). Unexpected exceptions fail the batch and propagate."""
    started = time.perf_counter()
    name = file_name or path.name
    report = ImportReport(kind=kind, file_name=name, dry_run=options.dry_run)
    who = actor or current_actor.get()
    persist = batch_id is not None or not options.dry_run
    if batch_id is None and persist:
        with db.unit_of_work() as session:
            batch_id = create_batch(
                session, kind=kind, file_name=name, options=options, file_size=_size(path), actor=who
            ).id
    if batch_id is not None:
        _claim(db, batch_id)
    report.batch_id = batch_id
    run = _Run(db, kind, options, report, listener or _NullListener(), batch_id, persist)
    token = current_actor.set(who)
    try:
        _run(run, path, name)
        report.status = BatchStatus.COMPLETED
    except PatronError as exc:
        report.status = BatchStatus.FAILED
        report.error = exc.detail
        report.error_code = exc.code
    except BaseException as exc:
        report.status = BatchStatus.FAILED
        report.error = f"unexpected error: {exc.__class__.__name__}: {exc}"
        report.error_code = "internal_error"
        _finish(run, started)
        raise
    finally:
        current_actor.reset(token)
    _finish(run, started)
    return report


def _finish(run: _Run, started: float) -> None:
    run.report.seconds = time.perf_counter() - started
    if not run.persist:
        return
    with run.db.unit_of_work() as session:
        _save_progress(session, run, final=True)
        r = run.report
        record_audit(
            session,
            "import.completed" if r.status is BatchStatus.COMPLETED else "import.failed",
            "import_batch",
            run.batch_id,
            new={
                "kind": r.kind.value,
                "file_name": r.file_name,
                "rows": r.rows_total,
                "accepted": r.rows_accepted,
                "rejected": r.rows_rejected,
                "created": r.created,
                "updated": r.updated,
                "unchanged": r.unchanged,
                "dry_run": r.dry_run,
                "error": r.error,
            },
        )


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _run(run: _Run, path: Path, name: str) -> None:
    options = run.options
    validate_options(options)
    source = open_source(
        path,
        ReadOptions(
            encoding=options.encoding,
            delimiter=options.delimiter,
            chunk_size=options.chunk_size,
            sheet=options.sheet,
        ),
        name=name,
    )
    try:
        report = run.report
        report.file_format = source.format.value
        report.encoding = source.encoding
        report.delimiter = source.delimiter
        run.plan = plan_columns(run.kind, source.columns, options.mapping)
        report.columns = run.plan.describe()
        zone = options.time_zone
        if zone is None:
            with run.db.unit_of_work(write=False) as session:
                zone = get_business(session).time_zone
        run.listener.opened(report, source.progress.total_units, source.progress.unit)
        _import_chunks(run, source, zone)
    finally:
        source.close()


_ANALYZE_FIRST = 10_000


def _refresh_planner_statistics(run: _Run) -> None:
    """PostgreSQL: ANALYZE while a large import grows the tables (after 10,000 rows, then each time
    the rows imported doubled). A planner still holding the statistics of small or empty tables
    picks sequential scans for the per-chunk lookups, and autovacuum may lag or be off; without this
    a first import of 100,000 customers slowed to a few hundred rows/s. Changes no data."""
    if run.options.dry_run or run.db.dialect != "postgresql":
        return
    with run.db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


@dataclass
class _Validated:
    """One chunk, validated: the units ready to write, the units rejected already (with their
    reasons per row), and where the reading stands."""

    ready: list[tuple[Unit, Any]]
    rejected: list[tuple[Unit, list[list[Reason]]]]
    rows: int
    progress: float | None
    done_units: int
    decimal: str | None


def _import_chunks(run: _Run, source: Source, zone: str) -> None:
    chunks = _validated_chunks(run, source, zone)
    target = target_for(run.kind)
    rows_done, analyze_at = 0, _ANALYZE_FIRST
    for chunk in chunks:
        run.report.decimal = chunk.decimal
        _commit(run, target, chunk)
        rows_done += chunk.rows
        if rows_done >= analyze_at:
            _refresh_planner_statistics(run)
            analyze_at = rows_done * 2
        run.report.progress = chunk.progress
        run.listener.chunk_done(run.report, chunk.done_units)
    run.report.progress = 1.0
    run.listener.chunk_done(run.report, source.progress.done_units)


def _validated_chunks(run: _Run, source: Source, zone: str) -> Iterator[_Validated]:
    """Read, convert and validate the file chunk by chunk (no database work)."""
    assert run.plan is not None
    plan = run.plan
    options = run.options
    kind = run.kind
    key_field = KEY_FIELD[kind]
    target = target_for(kind)
    date_format = normalise_date_format(options.date_format)
    pending: list[ConvertedRow] = []
    finished_keys: set[int] = set()
    for chunk in source.chunks():
        if run.convert is None:
            mode = options.decimal
            if mode is DecimalMode.AUTO:
                mode = detect_decimal_mode(decimal_samples(plan, chunk), source.delimiter)
            run.convert = ConvertOptions(decimal=mode, date_format=date_format, time_zone=zone)
        converted = pending + [convert_row(plan, row, run.convert, key_field) for row in chunk]
        pending = []
        groups = group_rows(kind, converted)
        if kind is ImportKind.ORDERS and groups:
            last_key = converted[-1].key
            if last_key is not None and len(groups[-1][1]) < MAX_ORDER_ROWS:
                # the last order may go on in the next chunk: hold it back
                for i in range(len(groups) - 1, -1, -1):
                    if groups[i][0] == last_key:
                        pending = groups.pop(i)[1]
                        break
        ready, rejected = _validate(run, target, groups, finished_keys)
        yield _Validated(
            ready, rejected, sum(len(rows) for _, rows in groups), source.progress.fraction,
            source.progress.done_units, run.convert.decimal.value,
        )  # fmt: skip
    if pending:
        ready, rejected = _validate(run, target, [(pending[0].key, pending)], finished_keys)
        decimal = run.convert.decimal.value if run.convert is not None else None
        yield _Validated(ready, rejected, len(pending), 1.0, source.progress.done_units, decimal)


def _validate(
    run: _Run, target: Any, groups: list[tuple[str | None, list[ConvertedRow]]], finished_keys: set[int]
) -> tuple[list[tuple[Unit, Any]], list[tuple[Unit, list[list[Reason]]]]]:
    assert run.plan is not None
    plan = run.plan
    kind = run.kind
    key_field = KEY_FIELD[kind]
    key_column = next(
        (t.column for t in plan.targets if t.spec is not None and t.spec.name == key_field), None
    )
    rejected: list[tuple[Unit, list[list[Reason]]]] = []
    ready: list[tuple[Unit, Any]] = []
    for key, rows in groups:
        unit = build_unit(kind, key, rows, plan)
        if key is None and not unit.row_reasons:
            unit.reasons.append(Reason(N_("is required"), "missing", key_column, key_field))
        if kind is ImportKind.ORDERS and key is not None:
            marker = hash(key)
            if marker in finished_keys:
                unit.reasons.append(
                    Reason(
                        N_(
                            "this order's earlier lines were imported from lines further up the file: keep "
                            "the lines of an order together"
                        ),
                        "order_lines_split",
                    )
                )
            finished_keys.add(marker)
        if not unit.reasons:
            # validate even a row whose cells did not convert, to report all its problems at once
            known = {(i, r.field) for i, reasons in unit.row_reasons.items() for r in reasons}
            try:
                prepared = target.prepare(unit.raw)
            except ValidationFailed as exc:
                whole, per_row = domain_reasons(exc.errors, plan, len(rows))
                for reason in whole:
                    if not any(field == reason.field for _, field in known):
                        unit.reasons.append(reason)
                for i, reasons in per_row.items():
                    fresh = [r for r in reasons if (i, r.field) not in known]
                    if fresh:
                        unit.row_reasons.setdefault(i, []).extend(fresh)
            else:
                if not unit.rejected:
                    ready.append((unit, prepared))
                    continue
        rejected.append((unit, unit_row_reasons(unit, plan.columns)))
    return ready, rejected


def _commit(run: _Run, target: Any, chunk: _Validated) -> None:
    """Write one validated chunk in one transaction: the records, the rejected rows, the progress."""
    assert run.plan is not None
    plan = run.plan
    report = run.report
    ready, rejected = chunk.ready, list(chunk.rejected)
    with run.db.unit_of_work() as session:
        outcomes = _write(run, session, target, ready)
        for (unit, _prepared), outcome in zip(ready, outcomes, strict=True):
            if outcome.action == "rejected":
                whole, per_row = domain_reasons(outcome.errors, plan, len(unit.rows))
                unit.reasons.extend(whole)
                for i, reasons in per_row.items():
                    unit.row_reasons.setdefault(i, []).extend(reasons)
                rejected.append((unit, unit_row_reasons(unit, plan.columns)))
                continue
            report.rows_accepted += len(unit.rows)
            if outcome.action == "created":
                report.created += 1
            elif outcome.action == "updated":
                report.updated += 1
            else:
                report.unchanged += 1
        reject_rows: list[RejectedRow] = []
        for unit, per_row_reasons in rejected:
            for row, reasons in zip(unit.rows, per_row_reasons, strict=True):
                reject_rows.append(
                    RejectedRow(row.source.line, unit.key, tuple(reasons), row_values(plan, row.source))
                )
        reject_rows.sort(key=lambda r: r.line)
        report.rows_rejected += len(reject_rows)
        report.rows_total += chunk.rows
        if run.persist and reject_rows:
            session.execute(
                insert(ImportReject),
                [
                    {
                        "id": new_id(),
                        "batch_id": run.batch_id,
                        "line": r.line,
                        "external_id": r.key,
                        "reasons": [x.as_dict() for x in r.reasons],
                        "values": r.values,
                        "message": r.message,
                    }
                    for r in reject_rows
                ],
            )
        _save_progress(session, run)
        if not run.persist:
            session.rollback()
    for rejected_row in reject_rows:
        run.listener.rejected(rejected_row)


def _subbatches(items: list[tuple[Unit, Any]]) -> Iterable[list[int]]:
    """Indexes of ``items`` split so that no key repeats within a sub-batch (a later row of the same
    key is applied after the earlier one, as an update)."""
    remaining = list(range(len(items)))
    while remaining:
        seen: set[str | None] = set()
        now_: list[int] = []
        later: list[int] = []
        for i in remaining:
            key = items[i][0].key
            if key in seen:
                later.append(i)
            else:
                seen.add(key)
                now_.append(i)
        yield now_
        remaining = later


def _write(run: _Run, session: Session, target: Any, ready: list[tuple[Unit, Any]]) -> list[Outcome]:
    if not ready:
        return []
    outcomes: list[Outcome | None] = [None] * len(ready)
    savepoint = session.begin_nested() if run.options.dry_run else None
    for indexes in _subbatches(ready):
        results = target.upsert(session, [ready[i][1] for i in indexes], emit_events=run.options.live)
        for i, outcome in zip(indexes, results, strict=True):
            outcomes[i] = outcome
    done = [o for o in outcomes if o is not None]
    assert len(done) == len(ready)
    if savepoint is not None:
        savepoint.rollback()
    elif run.persist:
        _record(session, run, target.entity_type, [(u, o) for (u, _), o in zip(ready, done, strict=True)])
    return done


_RECORDS: Table = ImportRecord.__table__  # type: ignore[assignment]
_RECORD_COLUMNS = ("id", "batch_id", "entity_type", "entity_id", "action", "line", "before")


def _record(session: Session, run: _Run, entity_type: str, pairs: list[tuple[Unit, Outcome]]) -> None:
    """Remember what the batch created or changed (the first time it touched each record)."""
    rows: dict[str, dict[str, Any]] = {}
    for unit, outcome in pairs:
        if outcome.action not in {"created", "updated"} or outcome.id is None or outcome.id in rows:
            continue
        rows[outcome.id] = {
            "id": new_id(),
            "batch_id": run.batch_id,
            "entity_type": entity_type,
            "entity_id": outcome.id,
            "action": outcome.action,
            "line": unit.first_line,
            "before": outcome.before if outcome.action == "updated" else None,
        }
    updated = [i for i, r in rows.items() if r["action"] == "updated"]
    for start in range(0, len(updated), 500):
        part = updated[start : start + 500]
        known = session.scalars(
            select(ImportRecord.entity_id).where(
                ImportRecord.batch_id == run.batch_id,
                ImportRecord.entity_type == entity_type,
                ImportRecord.entity_id.in_(part),
            )
        )
        for entity_id in known:
            rows.pop(entity_id, None)
    if rows:
        insert_rows(
            session, _RECORDS, _RECORD_COLUMNS, [tuple(r[c] for c in _RECORD_COLUMNS) for r in rows.values()]
        )


# --- undo --------------------------------------------------------------------------------------


def undo_batch(session: Session, batch_id: str, *, actor: Actor | None = None) -> UndoReport:
    """Undo a batch: delete the records it created and restore the ones it updated to their
    state before it. Refused (409) while it runs, for a dry run, when already undone, and when a
    later batch that is not undone changed the same records (undo that one first)."""
    batch = session.get(ImportBatch, batch_id)
    if batch is None:
        raise NotFound(f"no import batch {batch_id}", code="import_not_found")
    if batch.dry_run:
        raise Conflict("a dry run changed nothing, so there is nothing to undo", code="import_not_undoable")
    if batch.status == BatchStatus.UNDONE.value:
        raise Conflict(f"import batch {batch_id} is already undone", code="import_already_undone")
    if batch.status not in {BatchStatus.COMPLETED.value, BatchStatus.FAILED.value}:
        raise Conflict(
            f"import batch {batch_id} is {batch.status}; wait until it ends", code="import_running"
        )
    later = aliased_later_batches(session, batch)
    if later:
        raise Conflict(
            f"batch(es) {', '.join(later)} changed the same records later: undo them first",
            code="import_undo_blocked",
            extra={"blocking_batches": later},
        )
    kind = ImportKind(batch.kind)
    target = target_for(kind)
    deleted = restored = 0
    page = 1000
    last_id = ""
    while True:
        records = list(
            session.scalars(
                select(ImportRecord)
                .where(ImportRecord.batch_id == batch_id, ImportRecord.id > last_id)
                .order_by(ImportRecord.id)
                .limit(page)
            )
        )
        if not records:
            break
        last_id = records[-1].id
        created = [r.entity_id for r in records if r.action == "created"]
        updated = [r.before for r in records if r.action == "updated" and r.before is not None]
        if created:
            target.delete(session, created)
            deleted += len(created)
        if updated:
            target.restore(session, updated)
            restored += len(updated)
    who = actor or current_actor.get()
    batch.status = BatchStatus.UNDONE.value
    batch.undone_at = now()
    batch.undone_by = who.ref
    session.flush()
    record_audit(
        session,
        "import.undone",
        "import_batch",
        batch_id,
        new={"deleted": deleted, "restored": restored},
        actor=who,
    )
    return UndoReport(_view(batch), deleted, restored)


def aliased_later_batches(session: Session, batch: ImportBatch) -> list[str]:
    """Batches after ``batch`` (not undone) that changed a record ``batch`` changed."""
    from sqlalchemy.orm import aliased

    mine = aliased(ImportRecord)
    theirs = aliased(ImportRecord)
    stmt = (
        select(theirs.batch_id, func.min(ImportBatch.created_at))
        .join(mine, (mine.entity_type == theirs.entity_type) & (mine.entity_id == theirs.entity_id))
        .join(ImportBatch, ImportBatch.id == theirs.batch_id)
        .where(
            mine.batch_id == batch.id,
            theirs.batch_id != batch.id,
            ImportBatch.undone_at.is_(None),
            (ImportBatch.created_at > batch.created_at)
            | ((ImportBatch.created_at == batch.created_at) & (ImportBatch.id > batch.id)),
        )
        .group_by(theirs.batch_id)
        .order_by(func.min(ImportBatch.created_at).desc())
    )
    return [row[0] for row in session.execute(stmt)]


def forget_customer(session: Session, customer_id: str) -> None:
    """Lifecycle (merge, erase): an undo must never delete, resurrect or overwrite a customer that
    was merged away or erased, so the batches forget them."""
    from sqlalchemy import delete

    session.execute(
        delete(ImportRecord).where(
            ImportRecord.entity_type == "customer", ImportRecord.entity_id == customer_id
        )
    )


def customer_batches(session: Session, customer_id: str) -> list[dict[str, Any]]:
    stmt = (
        select(
            ImportBatch.id,
            ImportBatch.kind,
            ImportBatch.file_name,
            ImportRecord.action,
            ImportBatch.created_at,
        )
        .join(ImportRecord, ImportRecord.batch_id == ImportBatch.id)
        .where(ImportRecord.entity_type == "customer", ImportRecord.entity_id == customer_id)
        .order_by(ImportBatch.created_at)
    )
    return [
        {"batch_id": r[0], "kind": r[1], "file_name": r[2], "action": r[3], "at": r[4].isoformat()}
        for r in session.execute(stmt)
    ]


STALL_AFTER = timedelta(minutes=15)


def fail_stalled_batches(session: Session, *, stalled_after: timedelta = STALL_AFTER) -> int:
    """Mark as failed the batches whose process died mid-import: running (or queued by an upload) with no
    chunk committed for ``stalled_after``. What their committed chunks wrote can then be undone."""
    cutoff = now() - stalled_after
    stalled = or_(
        and_(ImportBatch.status == BatchStatus.RUNNING.value, ImportBatch.heartbeat_at < cutoff),
        and_(ImportBatch.status == BatchStatus.QUEUED.value, ImportBatch.created_at < cutoff),
    )
    result = session.execute(
        update(ImportBatch)
        .where(stalled)
        .values(
            status=BatchStatus.FAILED.value,
            finished_at=now(),
            error="the import stopped: its process ended before it finished (undo it, then import again)",
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
