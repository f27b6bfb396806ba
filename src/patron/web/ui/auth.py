"""Console login and logout, the language switcher and the home redirect."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from patron.auth import (
    authenticate,
    close_console_session,
    get_user,
    open_console_session,
    update_user,
)
from patron.core.errors import TooManyRequests, Unauthenticated
from patron.core.i18n import LANGUAGES, N_, gettext_for
from patron.core.ratelimit import hit, parse_rate, refund
from patron.core.settings import get_settings
from patron.web.security import SESSION_COOKIE
from patron.web.ui.base import (
    LANGUAGE_COOKIE,
    LANGUAGE_COOKIE_MAX_AGE,
    LOGIN_CSRF_COOKIE,
    ConsoleRoute,
    Form,
    PublicRoute,
    UiSession,
    error_message,
    nav_entries,
    redirect,
    render,
    safe_next,
    set_cookie,
)

public = APIRouter(route_class=PublicRoute, include_in_schema=False)
private = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

LOGIN_RATE_LIMITED = N_("Too many failed logins from your network. Wait a few minutes and try again.")


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _home(request: Request) -> str:
    entries = nav_entries(getattr(request.state, "principal", None))
    return entries[0].url if entries else "/login"


@public.get("/", response_class=RedirectResponse)
def home(request: Request) -> RedirectResponse:
    if getattr(request.state, "principal", None) is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(_home(request), status_code=303)


def _login_page(
    request: Request, *, email: str = "", error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    next_url = safe_next(request.query_params.get("next"), "")
    expired = bool(getattr(request.state, "session_expired", False))
    return render(
        request,
        "login.html",
        {"email": email, "error": error, "next_url": next_url, "expired": expired},
        status_code=status_code,
    )


@public.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    if getattr(request.state, "principal", None) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next"), _home(request)), status_code=303)
    return _login_page(request)


@public.post("/login", response_class=HTMLResponse)
def login(request: Request, db: UiSession, form: Form) -> Response:
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    next_url = safe_next(str(form.get("next") or ""), "/")
    # Failed logins are limited per (client address, email) and, more loosely, per client address (a
    # password spray). Both hits are counted before the password is checked — one atomic upsert each,
    # so concurrent guesses cannot all slip past a read — and given back when the login succeeds.
    # Someone else failing from the same address (an office NAT) does not block a colleague until
    # the looser per-address limit is reached; each account also locks itself after its own failures.
    settings, client = get_settings(), _client(request)
    limits = [
        (parse_rate(settings.rate_limit_login_email), f"login:ip-email:{client}:{email.lower()[:120]}"),
        (parse_rate(settings.rate_limit_login), f"login:ip:{client}"),
    ]
    for rate, key in limits:  # the per-address budget is not spent on tries the first limit refuses
        decision = hit(db, key, rate)
        if not decision.allowed:
            request.state.force_commit = True  # refused tries count too
            message = gettext_for(request.state.language)(LOGIN_RATE_LIMITED)
            page = _login_page(request, email=email, error=message, status_code=429)
            page.headers["Retry-After"] = str(decision.retry_after)
            return page
    try:
        user = authenticate(db, email, password)
    except (Unauthenticated, TooManyRequests) as exc:
        request.state.force_commit = True  # keep the failure count, the lockout and the rate-limit hits
        status = 429 if isinstance(exc, TooManyRequests) else 401
        return _login_page(
            request, email=email, error=error_message(exc, request.state.language), status_code=status
        )
    for rate, key in limits:
        refund(db, key, rate)  # only failures count
    _, secret = open_console_session(db, user)
    response = redirect(next_url)
    set_cookie(response, SESSION_COOKIE, secret, max_age=get_settings().session_max_age_seconds)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    if not request.cookies.get(LANGUAGE_COOKIE) and user.language in LANGUAGES:
        set_cookie(response, LANGUAGE_COOKIE, user.language, max_age=LANGUAGE_COOKIE_MAX_AGE, http_only=False)
    return response


@private.post("/logout", response_class=RedirectResponse)
def logout(request: Request, db: UiSession, form: Form) -> RedirectResponse:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        close_console_session(db, secret)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@public.post("/language", response_class=RedirectResponse)
def switch_language(request: Request, db: UiSession, form: Form) -> RedirectResponse:
    """Store the chosen language in a cookie and, for a logged-in user, on the user."""
    language = str(form.get("language") or "")
    back = safe_next(str(form.get("next") or ""), "/")
    if language not in LANGUAGES:
        return redirect(back)
    viewer = getattr(request.state, "principal", None)
    if viewer is not None:
        update_user(db, get_user(db, viewer.user_id), language=language)
    response = redirect(back)
    set_cookie(response, LANGUAGE_COOKIE, language, max_age=LANGUAGE_COOKIE_MAX_AGE, http_only=False)
    return response


router = APIRouter()
router.include_router(public)
router.include_router(private)
