"""Imports as upload jobs: the same as ``patron import`` (validation, upsert by external id,
rejected rows with reasons, undo).

``POST /imports`` takes a multipart upload (``kind``, ``file`` and the options as form fields),
checks the options, the file's format, encoding, header and column mapping at once (a file that
cannot be imported answers 422 and creates no batch), stores the batch as ``queued`` and answers
202. The rows are imported after the response, in the background of the server process that took
the upload, one transaction per chunk: poll ``GET /imports/{id}`` for ``status``, ``progress`` and
the counts. Uploads are limited to ``patron.web.uploads.MAX_UPLOAD_BYTES`` (413 beyond it).

Statuses: ``queued`` → ``running`` → ``completed`` (every row handled; ``rows_rejected`` says how
many were rejected) or ``failed`` (a fatal error; ``error`` says why — chunks committed before it
stay and can be undone); ``completed``/``failed`` → ``undone``.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request, Response, UploadFile, status
from pydantic import BaseModel, Field

from patron.auth import Perm, Principal
from patron.core.audit import current_actor
from patron.core.pagination import clamp_limit, decode_cursor, encode_cursor
from patron.imports import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    BatchStatus,
    BatchView,
    DecimalMode,
    ImportKind,
    ImportOptions,
    check_file,
    create_batch,
    get_batch,
    list_batches,
    list_rejects,
    parse_mapping,
    undo_batch,
)
from patron.web.deps import DbSession, Requires, make_etag, set_etag
from patron.web.problems import problem_responses
from patron.web.routing import PatronRoute
from patron.web.uploads import run_import_job, save_upload

log = logging.getLogger("patron.web.imports")


router = APIRouter(route_class=PatronRoute, tags=["imports"], responses=problem_responses(401, 403, 422))


class ImportBatchRead(BaseModel):
    id: str
    kind: ImportKind
    file_name: str
    file_format: str | None
    file_size: int | None
    encoding: str | None
    delimiter: str | None
    status: BatchStatus = Field(
        description="queued → running → completed | failed; completed/failed → undone. "
        "completed: every row was handled (see rows_rejected); failed: a fatal error (see error)."
    )
    dry_run: bool
    live: bool
    options: dict[str, Any]
    columns: dict[str, Any] = Field(description="file column → field (null when skipped)")
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    created: int
    updated: int
    unchanged: int
    progress: float | None = Field(description="0..1 while running, when the size is known")
    error: str | None
    actor: str
    actor_label: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    undone_at: datetime | None
    undone_by: str | None

    @classmethod
    def of(cls, view: BatchView) -> ImportBatchRead:
        return cls(
            id=view.id,
            kind=ImportKind(view.kind),
            file_name=view.file_name,
            file_format=view.file_format,
            file_size=view.file_size,
            encoding=view.encoding,
            delimiter=view.delimiter,
            status=BatchStatus(view.status),
            dry_run=view.dry_run,
            live=view.live,
            options=view.options,
            columns=view.columns,
            rows_total=view.rows_total,
            rows_accepted=view.rows_accepted,
            rows_rejected=view.rows_rejected,
            created=view.created,
            updated=view.updated,
            unchanged=view.unchanged,
            progress=view.progress,
            error=view.error,
            actor=view.actor,
            actor_label=view.actor_label,
            created_at=view.created_at,
            started_at=view.started_at,
            finished_at=view.finished_at,
            undone_at=view.undone_at,
            undone_by=view.undone_by,
        )


class ImportBatchPage(BaseModel):
    items: list[ImportBatchRead]
    next_cursor: str | None = None


class RejectReason(BaseModel):
    column: str | None
    field: str | None
    message: str
    code: str


class ImportRejectRead(BaseModel):
    line: int = Field(description="line number in the file; the header is line 1")
    external_id: str | None
    message: str
    reasons: list[RejectReason]
    values: dict[str, str | None] = Field(description="the row as read, column by column")


class ImportRejectPage(BaseModel):
    items: list[ImportRejectRead]
    next_cursor: str | None = None


class ImportUndoRead(BaseModel):
    batch: ImportBatchRead
    deleted: int = Field(description="records the batch created, now deleted")
    restored: int = Field(description="records the batch updated, now restored")


def _etag(view: BatchView) -> str:
    return make_etag("import", view.id, view.status, view.rows_total, view.finished_at, view.undone_at)


@router.post(
    "/imports",
    response_model=ImportBatchRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(413),
)
def start_import_endpoint(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    kind: Annotated[ImportKind, Form()],
    file: UploadFile,
    dry_run: Annotated[bool, Form(description="validate and report; write no records")] = False,
    live: Annotated[
        bool, Form(description="emit domain events (messages, points); default backfill")
    ] = False,
    encoding: Annotated[str | None, Form(max_length=40)] = None,
    delimiter: Annotated[str | None, Form(max_length=3)] = None,
    decimal: Annotated[DecimalMode, Form()] = DecimalMode.AUTO,
    date_format: Annotated[str | None, Form(max_length=40)] = None,
    time_zone: Annotated[str | None, Form(max_length=64)] = None,
    sheet: Annotated[str | None, Form(max_length=100)] = None,
    mapping: Annotated[list[str] | None, Form(alias="map", description="COLUMN=FIELD, repeatable")] = None,
    chunk_size: Annotated[int, Form(ge=1, le=MAX_CHUNK_SIZE)] = DEFAULT_CHUNK_SIZE,
    _: Principal = Requires(Perm.IMPORTS_RUN),
) -> ImportBatchRead:
    """Upload a file and queue its import (202); the rows are imported in the background."""
    options = ImportOptions(
        mapping=parse_mapping(mapping or []),
        encoding=encoding or None,
        delimiter=delimiter or None,
        decimal=decimal,
        date_format=date_format or None,
        time_zone=time_zone or None,
        sheet=sheet or None,
        live=live,
        dry_run=dry_run,
        chunk_size=chunk_size,
    )
    path, size = save_upload(file.file, file.filename)
    name = (file.filename or path.name)[:500]
    try:
        check_file(kind, path, options, file_name=name)
        view = create_batch(db, kind=kind, file_name=name, options=options, file_size=size)
    except BaseException:
        shutil.rmtree(path.parent, ignore_errors=True)
        raise
    actor = current_actor.get()
    background.add_task(run_import_job, request.app.state.database, view.id, kind, path, options, name, actor)
    return ImportBatchRead.of(view)


@router.get("/imports", response_model=ImportBatchPage)
def list_imports_endpoint(
    db: DbSession,
    kind: ImportKind | None = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    cursor: str | None = None,
    _: Principal = Requires(Perm.IMPORTS_RUN),
) -> ImportBatchPage:
    """Import batches, newest first."""
    size = clamp_limit(limit)
    after = decode_cursor(cursor)
    before = (str(after[0]), str(after[1])) if after and len(after) == 2 else None
    views = list_batches(db, limit=size + 1, before=before, kind=kind.value if kind else None)
    items = views[:size]
    next_cursor = (
        encode_cursor([items[-1].created_at.isoformat(), items[-1].id]) if len(views) > size else None
    )
    return ImportBatchPage(items=[ImportBatchRead.of(v) for v in items], next_cursor=next_cursor)


@router.get("/imports/{batch_id}", response_model=ImportBatchRead, responses=problem_responses(404))
def get_import_endpoint(
    batch_id: str, response: Response, db: DbSession, _: Principal = Requires(Perm.IMPORTS_RUN)
) -> ImportBatchRead:
    """A batch: status, progress and counts."""
    view = get_batch(db, batch_id)
    set_etag(response, _etag(view))
    return ImportBatchRead.of(view)


@router.get("/imports/{batch_id}/rejects", response_model=ImportRejectPage, responses=problem_responses(404))
def list_import_rejects_endpoint(
    batch_id: str,
    db: DbSession,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    cursor: str | None = None,
    _: Principal = Requires(Perm.IMPORTS_RUN),
) -> ImportRejectPage:
    """The batch's rejected rows with their reasons, in line order."""
    size = clamp_limit(limit)
    after = decode_cursor(cursor)
    after_line = int(after[0]) if after and isinstance(after[0], int) else 0
    rows = list_rejects(db, batch_id, after_line=after_line, limit=size + 1)
    items = rows[:size]
    return ImportRejectPage(
        items=[
            ImportRejectRead(
                line=r.line,
                external_id=r.external_id,
                message=r.message,
                reasons=[RejectReason.model_validate(x) for x in r.reasons],
                values={k: None if v is None else str(v) for k, v in r.values.items()},
            )
            for r in items
        ],
        next_cursor=encode_cursor([items[-1].line]) if len(rows) > size else None,
    )


@router.post("/imports/{batch_id}/undo", response_model=ImportUndoRead, responses=problem_responses(404, 409))
def undo_import_endpoint(
    batch_id: str, db: DbSession, _: Principal = Requires(Perm.IMPORTS_RUN)
) -> ImportUndoRead:
    """Undo a batch: delete the records it created, restore those it updated. 409 while it runs,
    for a dry run, when already undone, or when a later batch changed the same records."""
    result = undo_batch(db, batch_id)
    return ImportUndoRead(
        batch=ImportBatchRead.of(result.batch), deleted=result.deleted, restored=result.restored
    )
