"""Organisations (B2B accounts): list with search, detail with contacts, create/edit/delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from patron.auth import Perm, Principal, list_users
from patron.core.errors import PatronError, ValidationFailed
from patron.core.i18n import N_
from patron.customers import (
    SIZE_BANDS,
    add_contact,
    count_contacts,
    create_organisation,
    delete_organisation,
    full_name,
    get_organisation,
    list_contacts,
    list_organisations,
    remove_contact,
    update_organisation,
)
from patron.web.ui.base import (
    Allowed,
    ConsoleRoute,
    Form,
    UiSession,
    error_message,
    field_errors,
    redirect,
    register_nav,
    render,
)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

register_nav("people", N_("Organisations"), "/organisations", Perm.ORGANISATIONS_READ, 20)

FIELDS = ("name", "external_id", "industry", "size", "country", "account_owner_id")


def _errors(exc: PatronError, language: str, default_field: str = "") -> dict[str, list[str]]:
    if isinstance(exc, ValidationFailed) and any(e.get("loc") for e in exc.errors):
        return field_errors(exc)
    field = {"duplicate_external_id": "external_id"}.get(exc.code, default_field)
    return {field: [error_message(exc, language)]}


def _values(form: FormData) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in FIELDS:
        raw = form.get(name)
        text = raw.strip() if isinstance(raw, str) else ""
        out[name] = text or None
    out["name"] = out["name"] or ""
    return out


def _owners(db: UiSession) -> list[tuple[str, str]]:
    return [(u.id, u.name or u.email) for u in list_users(db) if u.is_active]


def _list_page(
    request: Request,
    db: UiSession,
    viewer: Principal,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    q = request.query_params.get("q", "").strip()
    cursor = request.query_params.get("cursor") or None
    page = list_organisations(db, q=q or None, cursor=cursor, limit=50)
    rows = [(org, count_contacts(db, org)) for org in page.items]
    return render(
        request,
        "organisations/list.html",
        {
            "rows": rows,
            "q": q,
            "next_cursor": page.next_cursor,
            "cursor": cursor,
            "values": values or {},
            "errors": errors or {},
            "size_options": [(s, s) for s in SIZE_BANDS],
            "person_name": full_name,
            "owners": _owners(db),
            "can_edit": viewer.can(Perm.ORGANISATIONS_WRITE),
        },
        status_code=status_code,
    )


@router.get("/organisations", response_class=HTMLResponse)
def organisations(
    request: Request, db: UiSession, viewer: Principal = Allowed(Perm.ORGANISATIONS_READ)
) -> HTMLResponse:
    return _list_page(request, db, viewer)


@router.post("/organisations", response_class=HTMLResponse)
def add_organisation(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.ORGANISATIONS_WRITE)
) -> Response:
    values = _values(form)
    try:
        org = create_organisation(db, **values)
    except PatronError as exc:
        return _list_page(
            request, db, viewer, values=values, errors=_errors(exc, request.state.language), status_code=422
        )
    return redirect(f"/organisations/{org.id}?flash=created")


def _detail_page(
    request: Request,
    db: UiSession,
    viewer: Principal,
    organisation_id: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    contact_errors: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    org = get_organisation(db, organisation_id)
    cursor = request.query_params.get("cursor") or None
    contacts = list_contacts(db, org, cursor=cursor, limit=100)
    owners = _owners(db)
    return render(
        request,
        "organisations/detail.html",
        {
            "org": org,
            "values": values or {f: getattr(org, f) for f in FIELDS},
            "errors": errors or {},
            "contact_errors": contact_errors or {},
            "contacts": contacts.items,
            "next_cursor": contacts.next_cursor,
            "cursor": cursor,
            "size_options": [(s, s) for s in SIZE_BANDS],
            "person_name": full_name,
            "owners": owners,
            "owner_name": dict(owners).get(org.account_owner_id or "", ""),
            "total_contacts": count_contacts(db, org),
            "can_edit": viewer.can(Perm.ORGANISATIONS_WRITE),
        },
        status_code=status_code,
    )


@router.get("/organisations/{organisation_id}", response_class=HTMLResponse)
def organisation(
    request: Request,
    organisation_id: str,
    db: UiSession,
    viewer: Principal = Allowed(Perm.ORGANISATIONS_READ),
) -> HTMLResponse:
    return _detail_page(request, db, viewer, organisation_id)


@router.post("/organisations/{organisation_id}", response_class=HTMLResponse)
def edit_organisation(
    request: Request,
    organisation_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.ORGANISATIONS_WRITE),
) -> Response:
    org = get_organisation(db, organisation_id)
    values = _values(form)
    try:
        update_organisation(db, org, **values)
    except PatronError as exc:
        db.rollback()
        return _detail_page(
            request,
            db,
            viewer,
            organisation_id,
            values=values,
            errors=_errors(exc, request.state.language),
            status_code=422,
        )
    return redirect(f"/organisations/{org.id}?flash=saved")


@router.post("/organisations/{organisation_id}/delete", response_class=HTMLResponse)
def remove_organisation(
    request: Request,
    organisation_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.ORGANISATIONS_WRITE),
) -> Response:
    delete_organisation(db, get_organisation(db, organisation_id))
    return redirect("/organisations?flash=deleted")


@router.post("/organisations/{organisation_id}/contacts", response_class=HTMLResponse)
def link_contact(
    request: Request,
    organisation_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.ORGANISATIONS_WRITE),
) -> Response:
    org = get_organisation(db, organisation_id)
    customer_id = str(form.get("customer_id") or "").strip()
    role = str(form.get("role") or "").strip() or None
    try:
        add_contact(db, org, customer_id, role=role)
    except PatronError as exc:
        db.rollback()
        return _detail_page(
            request,
            db,
            viewer,
            organisation_id,
            contact_errors=_errors(exc, request.state.language, "customer_id"),
            status_code=422,
        )
    return redirect(f"/organisations/{org.id}?flash=saved")


@router.post("/organisations/{organisation_id}/contacts/{customer_id}/remove", response_class=HTMLResponse)
def unlink_contact(
    request: Request,
    organisation_id: str,
    customer_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.ORGANISATIONS_WRITE),
) -> Response:
    org = get_organisation(db, organisation_id)
    remove_contact(db, org, customer_id)
    return redirect(f"/organisations/{org.id}?flash=saved")
