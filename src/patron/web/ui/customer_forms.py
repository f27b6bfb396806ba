"""Customer forms in the console: add, edit (with the version read, so a concurrent change is not
overwritten), merge into another customer, erase (typed confirmation)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from patron.auth import Perm, Principal
from patron.core.errors import PatronError, ValidationFailed
from patron.core.i18n import LANGUAGE_NAMES, LANGUAGES, N_, gettext_for
from patron.customers import (
    CustomerCreateInput,
    CustomerView,
    create_customer,
    erase_customer,
    get_customer,
    merge_customers,
    update_customer,
)
from patron.customers.rules import CHANNELS
from patron.web.ui.base import (
    Allowed,
    ConsoleRoute,
    Form,
    UiSession,
    error_message,
    field_errors,
    redirect,
    register_flash,
    render,
)
from patron.web.ui.customers import CHANNEL_LABELS

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

register_flash("customer_created", N_("Customer added."))
register_flash("customer_saved", N_("Customer saved."))
register_flash("customer_merged", N_("The customers were merged."))
register_flash("customer_erased", N_("The customer's personal data was erased."))

#: form field → the customers API's field
FIELDS: dict[str, str] = {
    "given_name": "first_name",
    "family_name": "last_name",
    "form_of_address": "form_of_address",
    "email": "email",
    "phone": "phone",
    "language": "language",
    "preferred_channel": "preferred_channel",
    "country": "country",
    "time_zone": "time_zone",
    "birthday": "birthday",
    "tags": "tags",
    "external_id": "external_id",
}
_ERROR_FIELD = {"first_name": "given_name", "last_name": "family_name", "phone_e164": "phone"}
_CODE_FIELD = {"duplicate_email": "email", "duplicate_external_id": "external_id"}


def _values(form: FormData) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in FIELDS:
        raw = form.get(name)
        out[name] = raw.strip() if isinstance(raw, str) else ""
    return out


def _changes(values: dict[str, str]) -> dict[str, Any]:
    """Form values as API fields; an empty box clears the field (names become empty strings)."""
    out: dict[str, Any] = {}
    for name, api in FIELDS.items():
        value = values[name]
        if name == "tags":
            out[api] = [t.strip() for t in value.split(",") if t.strip()]
        elif name in {"given_name", "family_name"}:
            out[api] = value
        else:
            out[api] = value or None
    return out


def _errors(exc: PatronError, language: str) -> dict[str, list[str]]:
    if isinstance(exc, ValidationFailed) and any(e.get("loc") for e in exc.errors):
        out: dict[str, list[str]] = {}
        for name, messages in field_errors(exc).items():
            out.setdefault(_ERROR_FIELD.get(name, name), []).extend(messages)
        return out
    return {_CODE_FIELD.get(exc.code, ""): [error_message(exc, language)]}


def _form_values(customer: CustomerView) -> dict[str, str]:
    return {
        "given_name": customer.given_name,
        "family_name": customer.family_name,
        "form_of_address": customer.form_of_address or "",
        "email": customer.email or "",
        "phone": customer.phone or "",
        "language": customer.language,
        "preferred_channel": customer.preferred_channel or "",
        "country": customer.country or "",
        "time_zone": customer.time_zone,
        "birthday": customer.birthday.isoformat() if customer.birthday else "",
        "tags": ", ".join(customer.tags),
        "external_id": customer.external_id or "",
    }


def _form_page(
    request: Request,
    *,
    customer: CustomerView | None,
    values: dict[str, str],
    errors: dict[str, list[str]] | None = None,
    version: int | None = None,
    duplicate: bool = False,
    status_code: int = 200,
) -> HTMLResponse:
    _ = gettext_for(request.state.language)
    return render(
        request,
        "customers/form.html",
        {
            "customer": customer,
            "values": values,
            "errors": errors or {},
            "version": version,
            "duplicate": duplicate,
            "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
            "channels": [(c, _(CHANNEL_LABELS.get(c, c))) for c in CHANNELS],
        },
        status_code=status_code,
    )


@router.get("/customers/new", response_class=HTMLResponse)
def new_customer_form(request: Request, viewer: Principal = Allowed(Perm.CUSTOMERS_WRITE)) -> HTMLResponse:
    return _form_page(request, customer=None, values=dict.fromkeys(FIELDS, ""))


@router.post("/customers/new", response_class=HTMLResponse)
def add_customer(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.CUSTOMERS_WRITE)
) -> Response:
    values = _values(form)
    allow = form.get("allow_duplicate_email") == "1"
    fields = {k: v for k, v in _changes(values).items() if v not in (None, [])}
    try:
        created = create_customer(db, CustomerCreateInput(**fields), allow_duplicate_email=allow)
    except PatronError as exc:
        db.rollback()
        return _form_page(
            request,
            customer=None,
            values=values,
            errors=_errors(exc, request.state.language),
            duplicate=exc.code == "duplicate_email",
            status_code=409 if exc.code == "duplicate_email" else 422,
        )
    return redirect(f"/customers/{created.id}?flash=customer_created")


@router.get("/customers/{customer_id}/edit", response_class=HTMLResponse)
def edit_customer_form(
    request: Request, customer_id: str, db: UiSession, viewer: Principal = Allowed(Perm.CUSTOMERS_WRITE)
) -> HTMLResponse:
    customer = get_customer(db, customer_id)
    return _form_page(request, customer=customer, values=_form_values(customer), version=customer.version)


@router.post("/customers/{customer_id}/edit", response_class=HTMLResponse)
def edit_customer(
    request: Request,
    customer_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.CUSTOMERS_WRITE),
) -> Response:
    customer = get_customer(db, customer_id)
    values = _values(form)
    raw_version = form.get("version")
    version = int(raw_version) if isinstance(raw_version, str) and raw_version.isdigit() else None
    allow = form.get("allow_duplicate_email") == "1"
    try:
        update_customer(
            db, customer.id, _changes(values), expected_version=version, allow_duplicate_email=allow
        )
    except PatronError as exc:
        db.rollback()
        current = get_customer(db, customer_id)
        return _form_page(
            request,
            customer=current,
            values=values,
            errors=_errors(exc, request.state.language),
            version=version if exc.code != "etag_mismatch" else current.version,
            duplicate=exc.code == "duplicate_email",
            status_code=exc.status if exc.status in {409, 412} else 422,
        )
    return redirect(f"/customers/{customer.id}?flash=customer_saved")


@router.post("/customers/{customer_id}/merge", response_class=HTMLResponse)
def merge_customer(
    request: Request,
    customer_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.CUSTOMERS_WRITE),
) -> Response:
    """Merge this customer (the duplicate) into the one named in the form; all history moves there."""
    source = get_customer(db, customer_id)
    raw = form.get("target_id")
    target_id = raw.strip() if isinstance(raw, str) else ""
    try:
        if not target_id:
            raise ValidationFailed(
                "name the customer to keep",
                code="missing_target",
                errors=[{"loc": ["target_id"], "msg": "name the customer to keep", "type": "missing"}],
            )
        kept = merge_customers(db, source_id=source.id, target_id=target_id)
    except PatronError as exc:
        db.rollback()
        return _form_page(
            request,
            customer=source,
            values=_form_values(source),
            errors={"target_id": [error_message(exc, request.state.language)]},
            version=source.version,
            status_code=exc.status if exc.status in {404, 409} else 422,
        )
    return redirect(f"/customers/{kept.id}?flash=customer_merged")


@router.post("/customers/{customer_id}/erase", response_class=HTMLResponse)
def erase_customer_page(
    request: Request,
    customer_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.CUSTOMERS_ERASE),
) -> Response:
    """Erase (anonymise) the customer everywhere; the form must repeat the word shown to confirm."""
    customer = get_customer(db, customer_id)
    _ = gettext_for(request.state.language)
    word = _("ERASE")
    if (form.get("confirm") or "").strip() != word:  # type: ignore[union-attr]
        return _form_page(
            request,
            customer=customer,
            values=_form_values(customer),
            errors={"confirm": [_("Type %(word)s to confirm.") % {"word": word}]},
            version=customer.version,
            status_code=422,
        )
    erase_customer(db, customer.id)
    return redirect(f"/customers/{customer.id}?flash=customer_erased")
