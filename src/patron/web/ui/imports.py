"""Imports: upload a file (customers, orders, products, subscriptions), follow its batch, read the
rejected rows with their reasons, and undo a batch.

The upload is stored in a temporary directory, checked (format, encoding, header, mapping) before
anything is queued, and imported in the background after the response, as the API does.
"""

from __future__ import annotations

import logging
import shutil

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from patron.auth import Perm, Principal
from patron.core.audit import Actor
from patron.core.errors import PatronError
from patron.core.i18n import N_, gettext_for
from patron.imports import (
    FIELDS,
    KEY_FIELD,
    BatchStatus,
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
from patron.web.ui.base import (
    Allowed,
    ConsoleRoute,
    Form,
    UiSession,
    error_message,
    redirect,
    register_flash,
    register_nav,
    render,
)
from patron.web.uploads import run_import_job, save_upload

log = logging.getLogger("patron.web.ui")
router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

register_nav("data", N_("Imports"), "/imports", Perm.IMPORTS_RUN, 10)
register_flash("import_queued", N_("The file was uploaded; the import runs in the background."))


KIND_LABELS: dict[str, str] = {
    "customers": N_("Customers"),
    "orders": N_("Orders"),
    "products": N_("Products"),
    "subscriptions": N_("Subscriptions"),
    "loyalty-balances": N_("Loyalty balances"),
}
STATUS_LABELS: dict[str, str] = {
    "queued": N_("Queued"),
    "running": N_("Running"),
    "completed": N_("Completed"),
    "failed": N_("Failed"),
    "undone": N_("Undone"),
}
ENCODINGS = ("utf-8", "cp1258", "tis-620", "cp1250", "latin-1")
DECIMALS: dict[str, str] = {
    "auto": N_("Detect"),
    "point": N_("Decimal point (1234.5)"),
    "comma": N_("Decimal comma (1234,5)"),
}


def _form_context(request: Request, db: UiSession, viewer: Principal) -> dict[str, object]:
    return {
        "batches": list_batches(db, limit=50),
        "kinds": KIND_LABELS,
        "status_labels": STATUS_LABELS,
        "encodings": ENCODINGS,
        "decimals": DECIMALS,
        "columns": {k.value: [f.name for f in FIELDS[k]] for k in ImportKind},
        "keys": {k.value: KEY_FIELD[k] for k in ImportKind},
    }


def _page(
    request: Request,
    db: UiSession,
    viewer: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "imports/index.html",
        {
            **_form_context(request, db, viewer),
            "values": values or {"kind": "customers", "decimal": "auto"},
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/imports", response_class=HTMLResponse)
def imports(request: Request, db: UiSession, viewer: Principal = Allowed(Perm.IMPORTS_RUN)) -> HTMLResponse:
    return _page(request, db, viewer)


@router.post("/imports", response_class=HTMLResponse)
def upload(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.IMPORTS_RUN)
) -> Response:
    tr = gettext_for(request.state.language)
    values = {
        k: str(form.get(k) or "").strip()
        for k in ("kind", "encoding", "delimiter", "decimal", "mapping", "date_format", "time_zone")
    }
    values["dry_run"] = "1" if form.get("dry_run") else ""
    errors: dict[str, list[str]] = {}
    file = form.get("file")
    if values["kind"] not in KIND_LABELS:
        errors["kind"] = [tr(N_("Choose a value from the list."))]
    if not isinstance(file, UploadFile) or not file.filename:
        errors["file"] = [tr(N_("Choose a file to upload."))]
    if values["encoding"] and values["encoding"] not in ENCODINGS:
        errors["encoding"] = [tr(N_("Choose a value from the list."))]
    if values["delimiter"] not in ("", ",", ";", "\t", "|"):
        errors["delimiter"] = [tr(N_("Choose a value from the list."))]
    try:
        mapping = parse_mapping([line.strip() for line in values["mapping"].splitlines() if line.strip()])
    except PatronError as exc:
        mapping = {}
        errors["mapping"] = [error_message(exc, request.state.language)]
    if errors or not isinstance(file, UploadFile):
        return _page(request, db, viewer, values=values, errors=errors, status_code=422)
    kind = ImportKind(values["kind"])
    options = ImportOptions(
        mapping=mapping,
        encoding=values["encoding"] or None,
        delimiter=values["delimiter"] or None,
        decimal=DecimalMode(values["decimal"]) if values["decimal"] in DECIMALS else DecimalMode.AUTO,
        date_format=values["date_format"] or None,
        time_zone=values["time_zone"] or None,
        dry_run=bool(values["dry_run"]),
    )
    try:
        path, size = save_upload(file.file, file.filename)
    except PatronError as exc:
        return _page(
            request,
            db,
            viewer,
            values=values,
            errors={"file": [error_message(exc, request.state.language)]},
            status_code=422,
        )
    name = (file.filename or path.name)[:500]
    try:
        check_file(kind, path, options, file_name=name)
        batch = create_batch(db, kind=kind, file_name=name, options=options, file_size=size)
    except PatronError as exc:
        shutil.rmtree(path.parent, ignore_errors=True)
        return _page(
            request,
            db,
            viewer,
            values=values,
            errors={"file": [error_message(exc, request.state.language)]},
            status_code=422,
        )
    except BaseException:
        shutil.rmtree(path.parent, ignore_errors=True)
        raise
    response = redirect(f"/imports/{batch.id}?flash=import_queued")
    response.background = BackgroundTask(
        run_import_job,
        request.app.state.database,
        batch.id,
        kind,
        path,
        options,
        name,
        Actor("user", viewer.user_id, viewer.email),
    )
    return response


@router.get("/imports/{batch_id}", response_class=HTMLResponse)
def batch_page(
    request: Request, batch_id: str, db: UiSession, viewer: Principal = Allowed(Perm.IMPORTS_RUN)
) -> HTMLResponse:
    batch = get_batch(db, batch_id)
    after = request.query_params.get("after", "0")
    after_line = int(after) if after.isdigit() else 0
    rejects = list_rejects(db, batch.id, after_line=after_line, limit=100)
    running = batch.status in {BatchStatus.QUEUED.value, BatchStatus.RUNNING.value}
    return render(
        request,
        "imports/batch.html",
        {
            "batch": batch,
            "rejects": rejects,
            "after_line": after_line,
            "next_after": rejects[-1].line if len(rejects) == 100 else None,
            "running": running,
            "can_undo": not batch.dry_run
            and batch.status in {BatchStatus.COMPLETED.value, BatchStatus.FAILED.value},
            "kinds": KIND_LABELS,
            "status_labels": STATUS_LABELS,
        },
    )


@router.post("/imports/{batch_id}/undo", response_class=HTMLResponse)
def undo(
    request: Request, batch_id: str, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.IMPORTS_RUN)
) -> Response:
    undo_batch(db, batch_id, actor=Actor("user", viewer.user_id, viewer.email))
    return redirect(f"/imports/{batch_id}?flash=undone")
