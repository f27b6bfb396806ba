"""The console shell: route classes, the viewer, CSRF, page rendering and the navigation registry.

A console page module (``patron.web.ui.<name>``, listed in ``PAGES``) exposes ``router``, built as
``APIRouter(route_class=ConsoleRoute, include_in_schema=False)``, and calls :func:`register_nav` to
put its entry in the sidebar. See ``docs/console.md``.

``ConsoleRoute`` gives each request one database session (a write session for POST), commits when
the response is a success or a redirect and rolls back otherwise. It resolves the staff user from
the console session cookie; anonymous requests are redirected to ``/login?next=...``. Every form
POST must carry a ``csrf_token`` field: the session's token, or, before login, the value of the
double-submit cookie ``patron_csrf``. Domain errors become HTML pages (403, 404 ...), never JSON.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from patron.auth import Perm, Principal, resolve_console_session
from patron.core.audit import Actor, current_actor
from patron.core.db import Database
from patron.core.errors import (
    Forbidden,
    PatronError,
    Unauthenticated,
    ValidationFailed,
)
from patron.core.i18n import LANGUAGES, N_, current_language, gettext_for, negotiate, normalise_language
from patron.core.settings import get_settings
from patron.web.routing import write_gate
from patron.web.security import CSRF_FIELD, SESSION_COOKIE
from patron.web.ui.rendering import render_template

log = logging.getLogger("patron.web.ui")

SAFE = {"GET", "HEAD", "OPTIONS"}
LANGUAGE_COOKIE = "patron_lang"
LOGIN_CSRF_COOKIE = "patron_csrf"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600


# ---- navigation registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class NavSection:
    key: str
    label: str  # an English msgid, translated at render time
    order: int


@dataclass(frozen=True)
class NavEntry:
    key: str
    section: str
    label: str  # an English msgid, translated at render time
    url: str
    permission: Perm | None
    order: int
    match: tuple[str, ...] = field(default=())

    def is_active(self, path: str) -> bool:
        prefixes = self.match or (self.url,)
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


_SECTIONS: dict[str, NavSection] = {}
_ENTRIES: dict[str, NavEntry] = {}


def register_nav_section(key: str, label: str, order: int) -> None:
    """Declare a sidebar section (``label`` is an English msgid marked with ``N_``)."""
    _SECTIONS[key] = NavSection(key, label, order)


def register_nav(
    section: str,
    label: str,
    url: str,
    permission: Perm | None,
    order: int = 100,
    *,
    key: str | None = None,
    match: tuple[str, ...] = (),
) -> NavEntry:
    """Add (or replace, by ``key``, default ``url``) a sidebar entry shown to roles with ``permission``.

    ``label`` is an English msgid marked with ``N_`` so the catalogs pick it up; ``match`` lists
    extra URL prefixes that highlight the entry (default: ``url`` and everything under it).
    """
    if section not in _SECTIONS:
        register_nav_section(section, section, 1000)
    entry = NavEntry(key or url, section, label, url, permission, order, match)
    _ENTRIES[entry.key] = entry
    return entry


def nav_entries(principal: Principal | None) -> list[NavEntry]:
    """Entries the principal may see, in section order then entry order."""
    if principal is None:
        return []
    visible = [e for e in _ENTRIES.values() if e.permission is None or principal.can(e.permission)]
    return sorted(visible, key=lambda e: (_SECTIONS[e.section].order, e.section, e.order, e.label))


def nav_tree(principal: Principal | None, path: str) -> list[dict[str, Any]]:
    """Sections with their visible entries, ready for the layout template."""
    tree: list[dict[str, Any]] = []
    for entry in nav_entries(principal):
        if not tree or tree[-1]["key"] != entry.section:
            sec = _SECTIONS[entry.section]
            tree.append({"key": sec.key, "label": sec.label, "entries": []})
        tree[-1]["entries"].append(
            {"key": entry.key, "label": entry.label, "url": entry.url, "active": entry.is_active(path)}
        )
    return tree


register_nav_section("people", N_("People"), 10)
register_nav_section("data", N_("Data"), 80)
register_nav_section("admin", N_("Administration"), 90)


# ---- the viewer ------------------------------------------------------------------------------------


def _cookie_language(request: Request) -> str | None:
    return normalise_language(request.cookies.get(LANGUAGE_COOKIE))


def viewer_language(request: Request, principal: Principal | None) -> str:
    """The explicit choice on this browser (cookie), else the user's language, else Accept-Language."""
    chosen = _cookie_language(request)
    if chosen:
        return chosen
    if principal is not None and principal.language in LANGUAGES:
        return principal.language
    return negotiate(request.headers.get("Accept-Language"), get_settings().default_language)


def get_db(request: Request) -> Session:
    session: Session = request.state.db
    return session


def get_viewer(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise Unauthenticated("login required", code="login_required")
    return principal


def permission(perm: Perm) -> Callable[[Request], Principal]:
    def dependency(request: Request) -> Principal:
        viewer = get_viewer(request)
        viewer.require(perm)
        return viewer

    dependency.__name__ = f"console_requires_{perm.value.replace(':', '_')}"
    return dependency


async def get_form(request: Request) -> FormData:
    return await request.form()


UiSession = Annotated[Session, Depends(get_db)]
Viewer = Annotated[Principal, Depends(get_viewer)]
Form = Annotated[FormData, Depends(get_form)]


def Allowed(perm: Perm) -> Any:
    """Last parameter ``viewer: Principal = Allowed(Perm.X)``: the staff user, who must hold ``perm``
    (else the console answers with a 403 page)."""
    return Depends(permission(perm))


def csrf_token(request: Request) -> str:
    """The token to put in forms: the session's, or before login the double-submit cookie's."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None and principal.csrf_token:
        return principal.csrf_token
    token: str | None = getattr(request.state, "login_csrf", None)
    if token is None:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
        request.state.login_csrf = token
    return token


def check_form_csrf(request: Request, submitted: str | None) -> None:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None:
        expected = principal.csrf_token or ""
    else:
        expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not submitted or not expected or not hmac.compare_digest(submitted, expected):
        raise Forbidden("missing or wrong CSRF token", code="csrf_failed")


def set_cookie(
    response: Response, name: str, value: str, *, max_age: int | None, http_only: bool = True
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=http_only,
        samesite="lax",
        secure=get_settings().cookie_secure,
    )


def safe_next(value: str | None, default: str = "/") -> str:
    """Only same-site relative paths are followed after login (no open redirects)."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if request.method not in SAFE:
        referer = request.headers.get("Referer")
        target = urlsplit(referer).path or "/" if referer else "/"
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


def redirect(url: str) -> RedirectResponse:
    """After a successful POST: see other (the unit of work commits)."""
    return RedirectResponse(url, status_code=303)


# ---- rendering -----------------------------------------------------------------------------------

ROLE_LABELS: dict[str, str] = {
    "owner": N_("Owner"),
    "admin": N_("Admin"),
    "marketer": N_("Marketer"),
    "agent": N_("Agent"),
    "analyst": N_("Analyst"),
    "viewer": N_("Viewer"),
}

# ``?flash=<key>`` after a redirect shows one of these confirmations.
FLASH_MESSAGES: dict[str, str] = {
    "saved": N_("Saved."),
    "created": N_("Created."),
    "deleted": N_("Deleted."),
    "revoked": N_("Token revoked."),
    "note_added": N_("Note added."),
    "consent_recorded": N_("Consent recorded."),
    "undone": N_("Import undone."),
}


def register_flash(key: str, message: str) -> None:
    """Add a confirmation shown after a redirect with ``?flash=<key>`` (``message``: an ``N_`` msgid)."""
    FLASH_MESSAGES[key] = message


def page_context(request: Request) -> dict[str, Any]:
    principal: Principal | None = getattr(request.state, "principal", None)
    lang: str = getattr(request.state, "language", "en")
    return {
        "request": request,
        "viewer": principal,
        "lang": lang,
        "tz": getattr(request.state, "time_zone", "UTC"),
        "csrf_token": csrf_token(request),
        "nav": nav_tree(principal, request.url.path),
        "path": request.url.path,
        "Perm": Perm,
        "ROLE_LABELS": ROLE_LABELS,
        "FLASH_MESSAGES": FLASH_MESSAGES,
        "flash": request.query_params.get("flash"),
    }


def render(
    request: Request, template: str, context: Mapping[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """Render a console page with the layout's context (viewer, language, nav, CSRF token)."""
    ctx = page_context(request)
    if context:
        ctx.update(context)
    response = HTMLResponse(render_template(template, ctx), status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
    )
    login_csrf: str | None = getattr(request.state, "login_csrf", None)
    if login_csrf is not None and request.cookies.get(LOGIN_CSRF_COOKIE) != login_csrf:
        set_cookie(response, LOGIN_CSRF_COOKIE, login_csrf, max_age=None)
    return response


# Error codes whose message people see: English msgids, translated at render time.
ERROR_MESSAGES: dict[str, str] = {
    "csrf_failed": N_("Your form expired or did not come from this site. Reload the page and try again."),
    "forbidden": N_("Your role does not allow this action."),
    "not_found": N_("The page or record you asked for does not exist."),
    "invalid_credentials": N_("Wrong email or password."),
    "account_locked": N_("Too many failed logins: this account is locked for a while. Try again later."),
    "weak_password": N_("The password must have at least 10 characters."),
    "invalid_email": N_("This is not a valid email address."),
    "duplicate_user": N_("A user with this email already exists."),
    "role_not_grantable": N_("You cannot grant this role."),
    "last_owner": N_("The business must keep at least one active owner."),
}


def error_message(exc: PatronError, language: str) -> str:
    msgid = ERROR_MESSAGES.get(exc.code)
    if msgid is not None:
        return gettext_for(language)(msgid)
    return exc.detail


def field_errors(exc: ValidationFailed) -> dict[str, list[str]]:
    """Validation errors by form field (the last string in each ``loc``; ``""`` for the form)."""
    out: dict[str, list[str]] = {}
    for err in exc.errors:
        loc = [p for p in err.get("loc", []) if isinstance(p, str) and p not in {"body", "query"}]
        out.setdefault(loc[-1] if loc else "", []).append(str(err.get("msg") or exc.detail))
    return out


def error_page(request: Request, exc: PatronError) -> Response:
    status = exc.status if 400 <= exc.status < 600 else 400
    titles = {
        403: N_("Not allowed"),
        404: N_("Not found"),
        409: N_("Conflict"),
        422: N_("Invalid input"),
        429: N_("Too many attempts"),
    }
    lang: str = getattr(request.state, "language", "en")
    return render(
        request,
        "error.html",
        {
            "status": status,
            "title": gettext_for(lang)(titles.get(status, N_("Something went wrong"))),
            "message": error_message(exc, lang),
            "code": exc.code,
        },
        status_code=status,
    )


# ---- route classes -------------------------------------------------------------------------------


def _resolve(request: Request, session: Session) -> Principal | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return resolve_console_session(session, cookie)
    except Unauthenticated:
        request.state.session_expired = True
        return None


async def _console_unit_of_work(
    request: Request,
    original: Callable[[Request], Coroutine[Any, Any, Response]],
    anonymous_allowed: bool,
    write: bool,
    form: Any,
) -> Response:
    db: Database = request.app.state.database
    session = db.session(write=write)
    request.state.db = session
    request.state.force_commit = False
    try:
        principal = await run_in_threadpool(_resolve, request, session)
        request.state.principal = principal
        request.state.language = viewer_language(request, principal)
        request.state.time_zone = principal.time_zone if principal else "UTC"
        current_language.set(request.state.language)
        if principal is not None:
            current_actor.set(Actor("user", principal.user_id, principal.email))
        elif not anonymous_allowed:
            await run_in_threadpool(session.rollback)
            return login_redirect(request)
        if write and form is not None:
            submitted = form.get(CSRF_FIELD)
            check_form_csrf(request, submitted if isinstance(submitted, str) else None)
        response = await original(request)
        if response.status_code < 400 or request.state.force_commit:
            await run_in_threadpool(session.commit)
            notify = getattr(request.app.state, "on_commit", None)
            if notify is not None:
                notify()
        else:
            await run_in_threadpool(session.rollback)
        return response
    except Unauthenticated:
        await run_in_threadpool(session.rollback)
        return login_redirect(request)
    except PatronError as exc:
        await run_in_threadpool(session.rollback)
        return error_page(request, exc)
    except BaseException:
        await run_in_threadpool(session.rollback)
        raise
    finally:
        await run_in_threadpool(session.close)


class ConsoleRoute(APIRoute):
    """A console page: the viewer must be logged in (else a redirect to the login page)."""

    anonymous_allowed = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        anonymous_allowed = self.anonymous_allowed

        async def handler(request: Request) -> Response:
            write = request.method not in SAFE
            form = await request.form() if write else None  # receive uploads before taking any lock
            try:
                async with write_gate(request, write):
                    return await _console_unit_of_work(request, original, anonymous_allowed, write, form)
            finally:
                await request.close()  # closes uploaded files of the parsed form

        return handler


class PublicRoute(ConsoleRoute):
    """A console page anonymous visitors may open (login, language choice)."""

    anonymous_allowed = True


__all__ = [
    "LANGUAGE_COOKIE",
    "LOGIN_CSRF_COOKIE",
    "Allowed",
    "ConsoleRoute",
    "Form",
    "NavEntry",
    "PublicRoute",
    "UiSession",
    "Viewer",
    "error_message",
    "error_page",
    "field_errors",
    "nav_entries",
    "redirect",
    "register_nav",
    "register_nav_section",
    "render",
    "safe_next",
    "set_cookie",
]
