"""Settings pages: business settings, markets, FX rates, staff users and API tokens."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import get_day_names, get_month_names
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from patron.auth import (
    Perm,
    Principal,
    Role,
    can_grant,
    create_token,
    create_user,
    get_user,
    list_tokens,
    list_users,
    revoke_token,
    update_user,
)
from patron.core.audit import record_audit
from patron.core.business import (
    create_market,
    get_business,
    list_fx_rates,
    list_markets,
    set_fx_rate,
    update_business,
)
from patron.core.errors import PatronError, ValidationFailed
from patron.core.i18n import LANGUAGES, N_, babel_locale, gettext_for
from patron.web.ui.base import (
    ROLE_LABELS,
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

register_nav("admin", N_("Settings"), "/settings", Perm.SETTINGS_READ, 10)
register_nav("admin", N_("API tokens"), "/tokens", Perm.TOKENS_WRITE, 20)

TABS: tuple[tuple[str, str, Perm], ...] = (
    ("/settings", N_("Business"), Perm.SETTINGS_READ),
    ("/settings/markets", N_("Markets"), Perm.SETTINGS_READ),
    ("/settings/fx-rates", N_("FX rates"), Perm.SETTINGS_READ),
    ("/settings/users", N_("Users"), Perm.USERS_READ),
)

# Which form field a domain error code belongs to.
_FIELD_OF_CODE = {
    "invalid_currency": "currency",
    "invalid_time_zone": "time_zone",
    "invalid_locale": "locale",
    "invalid_country": "country",
    "duplicate_market": "code",
    "invalid_rate": "rate",
    "invalid_email": "email",
    "duplicate_user": "email",
    "weak_password": "password",
    "role_not_grantable": "role",
    "invalid_name": "name",
    "invalid_expiry": "expires_on",
}


def _errors_of(
    exc: PatronError, language: str, *, field_map: dict[str, str] | None = None
) -> dict[str, list[str]]:
    if isinstance(exc, ValidationFailed) and any(e.get("loc") for e in exc.errors):
        return field_errors(exc)
    field = (field_map or {}).get(exc.code, _FIELD_OF_CODE.get(exc.code, ""))
    return {field: [error_message(exc, language)]}


def _tabs(viewer: Principal) -> list[tuple[str, str]]:
    return [(url, label) for url, label, perm in TABS if viewer.can(perm)]


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _required(values: dict[str, str], names: tuple[str, ...], language: str) -> dict[str, list[str]]:
    msg = gettext_for(language)(N_("This field is required."))
    return {n: [msg] for n in names if not values.get(n)}


def _tab_page(
    request: Request,
    viewer: Principal,
    template: str,
    context: dict[str, Any],
    *,
    values: dict[str, str] | None,
    errors: dict[str, list[str]] | None,
    status_code: int,
    edit: Perm = Perm.SETTINGS_WRITE,
) -> HTMLResponse:
    """A settings tab: its own context plus the tabs, the form's values and errors, and whether the
    viewer may edit."""
    return render(
        request,
        template,
        {
            **context,
            "tabs": _tabs(viewer),
            "values": values or {},
            "errors": errors or {},
            "can_edit": viewer.can(edit),
        },
        status_code=status_code,
    )


# ---- business --------------------------------------------------------------------------------------


def _business_page(
    request: Request,
    db: UiSession,
    viewer: Principal,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    locale = babel_locale(request.state.language)
    business = get_business(db)
    return render(
        request,
        "settings/business.html",
        {
            "tabs": _tabs(viewer),
            "business": values or business.__dict__,
            "errors": errors or {},
            "weekdays": sorted(get_day_names("wide", locale=locale).items()),
            "months": list(get_month_names("wide", locale=locale).items()),
            "can_edit": viewer.can(Perm.SETTINGS_WRITE),
        },
        status_code=status_code,
    )


@router.get("/settings", response_class=HTMLResponse)
def business_settings(
    request: Request, db: UiSession, viewer: Principal = Allowed(Perm.SETTINGS_READ)
) -> HTMLResponse:
    return _business_page(request, db, viewer)


@router.post("/settings", response_class=HTMLResponse)
def save_business_settings(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.SETTINGS_WRITE)
) -> Response:
    values: dict[str, Any] = {
        k: _text(form, k) for k in ("name", "reporting_currency", "time_zone", "default_language")
    }
    errors = _required(values, ("name", "reporting_currency", "time_zone"), request.state.language)
    changes: dict[str, object] = dict(values)
    changes["reporting_currency"] = values["reporting_currency"].upper()
    for key, low, high in (("week_start", 0, 6), ("fiscal_year_start_month", 1, 12)):
        raw = _text(form, key)
        values[key] = raw
        if raw.isdigit() and low <= int(raw) <= high:
            changes[key] = int(raw)
        else:
            errors[key] = [gettext_for(request.state.language)(N_("Choose a value from the list."))]
    if values["default_language"] not in LANGUAGES:
        errors["default_language"] = [
            gettext_for(request.state.language)(N_("Choose a value from the list."))
        ]
    if not errors:
        try:
            old, new = update_business(db, **changes)
            record_audit(db, "business.updated", "business", None, old=old.__dict__, new=new.__dict__)
            return redirect("/settings?flash=saved")
        except PatronError as exc:
            errors = _errors_of(
                exc, request.state.language, field_map={"invalid_currency": "reporting_currency"}
            )
    return _business_page(request, db, viewer, values=values, errors=errors, status_code=422)


# ---- markets ---------------------------------------------------------------------------------------

MARKET_FIELDS = ("code", "name", "country", "currency", "locale", "time_zone")


def _markets_page(
    request: Request,
    db: UiSession,
    viewer: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return _tab_page(
        request, viewer, "settings/markets.html", {"markets": list_markets(db)},
        values=values, errors=errors, status_code=status_code,
    )  # fmt: skip


@router.get("/settings/markets", response_class=HTMLResponse)
def markets(request: Request, db: UiSession, viewer: Principal = Allowed(Perm.SETTINGS_READ)) -> HTMLResponse:
    return _markets_page(request, db, viewer)


@router.post("/settings/markets", response_class=HTMLResponse)
def add_market(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.SETTINGS_WRITE)
) -> Response:
    values = {k: _text(form, k) for k in MARKET_FIELDS}
    errors = _required(values, MARKET_FIELDS, request.state.language)
    if not errors:
        try:
            market = create_market(db, **values)
            record_audit(db, "market.created", "market", market.id, new=values)
            return redirect("/settings/markets?flash=created")
        except PatronError as exc:
            errors = _errors_of(exc, request.state.language)
    return _markets_page(request, db, viewer, values=values, errors=errors, status_code=422)


# ---- FX rates --------------------------------------------------------------------------------------


def _fx_page(
    request: Request,
    db: UiSession,
    viewer: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return _tab_page(
        request, viewer, "settings/fx_rates.html", {"rates": list_fx_rates(db)},
        values=values, errors=errors, status_code=status_code,
    )  # fmt: skip


@router.get("/settings/fx-rates", response_class=HTMLResponse)
def fx_rates(
    request: Request, db: UiSession, viewer: Principal = Allowed(Perm.SETTINGS_READ)
) -> HTMLResponse:
    return _fx_page(request, db, viewer)


@router.post("/settings/fx-rates", response_class=HTMLResponse)
def add_fx_rate(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.SETTINGS_WRITE)
) -> Response:
    tr = gettext_for(request.state.language)
    values = {k: _text(form, k) for k in ("base", "quote", "valid_on", "rate")}
    errors = _required(values, ("base", "quote", "valid_on", "rate"), request.state.language)
    valid_on: date | None = None
    rate: Decimal | None = None
    if values["valid_on"]:
        try:
            valid_on = date.fromisoformat(values["valid_on"])
        except ValueError:
            errors["valid_on"] = [tr(N_("Enter a date as YYYY-MM-DD."))]
    if values["rate"]:
        try:
            rate = Decimal(values["rate"].replace(",", "."))
            if not rate.is_finite() or rate <= 0:
                raise InvalidOperation
        except InvalidOperation:
            errors["rate"] = [tr(N_("Enter a positive number."))]
    if not errors and valid_on is not None and rate is not None:
        try:
            row = set_fx_rate(db, base=values["base"], quote=values["quote"], valid_on=valid_on, rate=rate)
            record_audit(db, "fx_rate.set", "fx_rate", row.id, new=values)
            return redirect("/settings/fx-rates?flash=saved")
        except PatronError as exc:
            errors = _errors_of(exc, request.state.language, field_map={"invalid_currency": "base"})
    return _fx_page(request, db, viewer, values=values, errors=errors, status_code=422)


# ---- users -----------------------------------------------------------------------------------------


def _grantable(viewer: Principal) -> list[tuple[str, str]]:
    return [(r.value, ROLE_LABELS[r.value]) for r in Role if can_grant(viewer.role, r)]


def _users_page(
    request: Request,
    db: UiSession,
    viewer: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return _tab_page(
        request, viewer, "settings/users.html", {"users": list_users(db), "roles": _grantable(viewer)},
        values=values or {"language": "en"}, errors=errors, status_code=status_code, edit=Perm.USERS_WRITE,
    )  # fmt: skip


@router.get("/settings/users", response_class=HTMLResponse)
def users(request: Request, db: UiSession, viewer: Principal = Allowed(Perm.USERS_READ)) -> HTMLResponse:
    return _users_page(request, db, viewer)


@router.post("/settings/users", response_class=HTMLResponse)
def add_user(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.USERS_WRITE)
) -> Response:
    values = {k: _text(form, k) for k in ("email", "name", "role", "language")}
    password = form.get("password")
    password = password if isinstance(password, str) else ""
    errors = _required(
        {**values, "password": password}, ("email", "role", "password"), request.state.language
    )
    if values["role"] and values["role"] not in {r.value for r in Role}:
        errors["role"] = [gettext_for(request.state.language)(N_("Choose a value from the list."))]
    if not errors:
        try:
            create_user(
                db,
                email=values["email"],
                password=password,
                role=values["role"],
                name=values["name"],
                language=values["language"] if values["language"] in LANGUAGES else "en",
                granted_by=viewer,
            )
            return redirect("/settings/users?flash=created")
        except PatronError as exc:
            errors = _errors_of(exc, request.state.language)
    return _users_page(request, db, viewer, values=values, errors=errors, status_code=422)


@router.post("/settings/users/{user_id}", response_class=HTMLResponse)
def change_user(
    request: Request, user_id: str, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.USERS_WRITE)
) -> Response:
    user = get_user(db, user_id)
    role = _text(form, "role") or None
    active = _text(form, "is_active")
    if role is not None and role not in {r.value for r in Role}:
        role = None
    try:
        update_user(db, user, role=role, is_active={"1": True, "0": False}.get(active), actor=viewer)
    except PatronError as exc:
        return _users_page(
            request,
            db,
            viewer,
            errors=_errors_of(exc, request.state.language, field_map={"role_not_grantable": ""}),
            status_code=exc.status,
        )
    return redirect("/settings/users?flash=saved")


# ---- API tokens ------------------------------------------------------------------------------------


def _tokens_page(
    request: Request,
    db: UiSession,
    viewer: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    secret: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    user_id = None if viewer.can(Perm.USERS_READ) else viewer.user_id
    tokens = list_tokens(db, user_id=user_id)
    emails = {u.id: u.email for u in list_users(db)} if user_id is None else {viewer.user_id: viewer.email}
    return render(
        request,
        "settings/tokens.html",
        {
            "tokens": tokens,
            "emails": emails,
            "values": values or {},
            "errors": errors or {},
            "secret": secret,
            "can_edit": viewer.can(Perm.TOKENS_WRITE),
            "roles": _grantable(viewer),
        },
        status_code=status_code,
    )


@router.get("/tokens", response_class=HTMLResponse)
def tokens(request: Request, db: UiSession, viewer: Principal = Allowed(Perm.TOKENS_WRITE)) -> HTMLResponse:
    return _tokens_page(request, db, viewer)


@router.post("/tokens", response_class=HTMLResponse)
def add_token(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.TOKENS_WRITE)
) -> Response:
    tr = gettext_for(request.state.language)
    values = {k: _text(form, k) for k in ("name", "role", "expires_on")}
    errors = _required(values, ("name",), request.state.language)
    expires_at: datetime | None = None
    if values["expires_on"]:
        try:
            day = date.fromisoformat(values["expires_on"])
            # valid through the end of that day in the viewer's time zone
            expires_at = datetime.combine(
                day, time(23, 59, 59), ZoneInfo(request.state.time_zone)
            ).astimezone(UTC)
        except ValueError:
            errors["expires_on"] = [tr(N_("Enter a date as YYYY-MM-DD."))]
    role = values["role"] or None
    if role is not None and role not in {r.value for r in Role}:
        errors["role"] = [tr(N_("Choose a value from the list."))]
    if not errors:
        try:
            _, secret = create_token(
                db,
                user=get_user(db, viewer.user_id),
                name=values["name"],
                role=role,
                expires_at=expires_at,
                granted_by=viewer,
            )
            return _tokens_page(request, db, viewer, secret=secret)
        except PatronError as exc:
            errors = _errors_of(exc, request.state.language)
    return _tokens_page(request, db, viewer, values=values, errors=errors, status_code=422)


@router.post("/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke(
    request: Request, token_id: str, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.TOKENS_WRITE)
) -> Response:
    revoke_token(db, token_id, actor=viewer)
    return redirect("/tokens?flash=revoked")
