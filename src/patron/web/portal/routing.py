"""The portal's route class: one unit of work per request, the customer's portal session, the page
language, CSRF on every form, rate limits, and translated error pages (never JSON, never details).

``PortalRoute`` resolves the portal session cookie (``patron_portal``, path ``/portal``, HttpOnly,
SameSite=Lax — separate from the staff cookie). Every POST must carry ``csrf_token``: the session's
token (an HMAC of the session's nonce), or, without a session (the referral landing page), the value
of the double-submit cookie ``patron_portal_csrf``.

The page language: the ``patron_portal_lang`` cookie (the switcher), else the customer's language,
else the browser's Accept-Language, else the business default. Times are shown in the customer's
time zone (the business's before sign-in).

Rate limits (``RATE_LIMITS`` by method and path) are counted in their own short transaction before
the request's unit of work, so a refused or failing request still counts; a refusal is a translated
429 page with ``Retry-After``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from patron.core.audit import Actor, current_actor
from patron.core.business import get_business
from patron.core.db import Database
from patron.core.errors import Forbidden, PatronError
from patron.core.i18n import LANGUAGES, N_, current_language, gettext_for, negotiate, normalise_language
from patron.core.ratelimit import RateDecision, hit, parse_rate
from patron.core.settings import get_settings
from patron.customers import get_customer
from patron.portal import PortalSession, resolve_portal_session, unverified_session_customer
from patron.web.problems import redact_path
from patron.web.routing import write_gate
from patron.web.ui.rendering import render_template

log = logging.getLogger("patron.web.portal")

SAFE = {"GET", "HEAD", "OPTIONS"}
PORTAL_COOKIE = "patron_portal"
PORTAL_COOKIE_PATH = "/portal"
PORTAL_LANGUAGE_COOKIE = "patron_portal_lang"
PORTAL_CSRF_COOKIE = "patron_portal_csrf"
CSRF_FIELD = "csrf_token"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600

#: (method, path) → (rate-limit bucket, name of the setting holding its rate, key per customer?)
RATE_LIMITS: dict[tuple[str, str], tuple[str, str, bool]] = {
    ("GET", "/portal/t/{token}"): ("portal_open", "rate_limit_portal_open", False),
    ("POST", "/r/{code}"): ("signup", "rate_limit_signup", False),
    ("GET", "/r/{code}"): ("referral_page", "rate_limit_referral_page", False),
    ("POST", "/portal/rewards/{reward_id}/redeem"): ("redeem", "rate_limit_redeem", True),
}

#: GET routes that write (opening a link stores the referral code and, once, the signing secret)
WRITING_GETS = frozenset({"/portal/t/{token}"})

ERROR_TITLES: dict[int, str] = {
    401: N_("Your session has ended"),
    403: N_("This link is not valid"),
    404: N_("Page not found"),
    409: N_("That did not work"),
    410: N_("This link has expired"),
    422: N_("Please check what you entered"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong"),
}
ERROR_MESSAGES: dict[str, str] = {
    "portal_link_invalid": N_(
        "This link is not valid. Please use the link from your message, or ask us for a new one."
    ),
    "portal_link_expired": N_("This link has expired or was withdrawn. Please ask us for a new one."),
    "portal_session_required": N_(
        "For your security, your session has ended. Open the link from your message again."
    ),
    "csrf_failed": N_("This form has expired. Go back, reload the page and try again."),
    "rate_limited": N_("Too many attempts in a short time. Please wait a moment and try again."),
    "not_found": N_("The page you asked for does not exist."),
}
GENERIC_ERROR = N_("Something went wrong. Please try again later.")


def client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _cookie_language(request: Request) -> str | None:
    return normalise_language(request.cookies.get(PORTAL_LANGUAGE_COOKIE))


def early_language(request: Request) -> str:
    """The language before the database is read (cookie, then Accept-Language, then the setting)."""
    return _cookie_language(request) or negotiate(
        request.headers.get("Accept-Language"), get_settings().default_language
    )


def page_language(request: Request, session: Session, portal: PortalSession | None) -> tuple[str, str]:
    """``(language, time zone)`` for the page."""
    business = get_business(session)
    request.state.business_name = business.name
    customer_language: str | None = None
    tz = business.time_zone
    if portal is not None:
        customer = get_customer(session, portal.customer_id)
        customer_language = customer.language if customer.language in LANGUAGES else None
        tz = customer.time_zone or tz
    language = (
        _cookie_language(request)
        or customer_language
        or negotiate(
            request.headers.get("Accept-Language"),
            business.default_language if business.default_language in LANGUAGES else "en",
        )
    )
    return language, tz


def anonymous_csrf(request: Request) -> str:
    """The double-submit token for forms shown without a portal session."""
    token: str | None = getattr(request.state, "portal_anon_csrf", None)
    if token is None:
        token = request.cookies.get(PORTAL_CSRF_COOKIE) or secrets.token_urlsafe(24)
        request.state.portal_anon_csrf = token
    return token


def form_csrf(request: Request) -> str:
    portal: PortalSession | None = getattr(request.state, "portal", None)
    return portal.csrf_token if portal is not None else anonymous_csrf(request)


def _check_csrf(request: Request, submitted: object) -> None:
    portal: PortalSession | None = getattr(request.state, "portal", None)
    expected = portal.csrf_token if portal is not None else (request.cookies.get(PORTAL_CSRF_COOKIE) or "")
    if not isinstance(submitted, str) or not submitted or not expected:
        raise Forbidden("missing or wrong CSRF token", code="csrf_failed")
    if not hmac.compare_digest(submitted, expected):
        raise Forbidden("missing or wrong CSRF token", code="csrf_failed")


def set_portal_cookie(
    response: Response, name: str, value: str, *, max_age: int | None, path: str = "/", http_only: bool = True
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=http_only,
        samesite="lax",
        secure=cookies_secure(),
    )


def cookies_secure() -> bool:
    """``Secure`` cookies when configured, or when the portal's public address is https."""
    settings = get_settings()
    return settings.cookie_secure or settings.public_url.lower().startswith("https://")


def _security_headers(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token must not leak through Referer
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
    )


def render_portal(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a portal page in the request's language and time zone."""
    portal: PortalSession | None = getattr(request.state, "portal", None)
    lang: str = getattr(request.state, "language", None) or early_language(request)
    ctx: dict[str, Any] = {
        "request": request,
        "lang": lang,
        "tz": getattr(request.state, "time_zone", "UTC"),
        "csrf_token": form_csrf(request),
        "lang_csrf": anonymous_csrf(request),
        "business_name": getattr(request.state, "business_name", ""),
        "portal": portal,
        # a link's path is its token: never written into a page (the language switcher's "next")
        "path": redact_path(request.url.path),
        "next_path": redact_path(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
    }
    if context:
        ctx.update(context)
    body = render_template(template, ctx)
    response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
    _security_headers(response)
    token: str | None = getattr(request.state, "portal_anon_csrf", None)
    if token is not None and request.cookies.get(PORTAL_CSRF_COOKIE) != token:
        set_portal_cookie(response, PORTAL_CSRF_COOKIE, token, max_age=None)
    return response


def portal_error(
    request: Request, exc: PatronError, *, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    status = exc.status if 400 <= exc.status < 600 else 400
    lang: str = getattr(request.state, "language", None) or early_language(request)
    gettext = gettext_for(lang)
    title = ERROR_TITLES.get(status, N_("Something went wrong"))
    message = ERROR_MESSAGES.get(exc.code, GENERIC_ERROR)
    return render_portal(
        request,
        "portal/error.html",
        {"status": status, "title": gettext(title), "message": gettext(message), "code": exc.code},
        status_code=status,
        headers=headers,
    )


def internal_error(request: Request) -> HTMLResponse:
    """The translated 500 page (no detail)."""
    try:
        return portal_error(request, PatronError("internal error", code="internal_error", status=500))
    except Exception:  # rendering itself failed (the language, the template): a plain page
        log.exception("the portal error page failed")
        return HTMLResponse("<!doctype html><title>500</title><h1>500</h1>", status_code=500)


def too_many(request: Request, decision: RateDecision) -> HTMLResponse:
    from patron.core.errors import TooManyRequests

    return portal_error(
        request, TooManyRequests("too many requests"), headers={"Retry-After": str(decision.retry_after)}
    )


def _count_hit(db: Database, bucket: str, setting: str, per_customer: bool, request: Request) -> RateDecision:
    rate = parse_rate(str(getattr(get_settings(), setting)))
    if not rate.enabled:
        return RateDecision(True, 0.0, 0, 0)
    with db.unit_of_work() as session:
        who = None
        if per_customer:
            who = unverified_session_customer(session, request.cookies.get(PORTAL_COOKIE))
        key = f"{bucket}:customer:{who}" if who else f"{bucket}:ip:{client_ip(request)}"
        return hit(session, key, rate)


async def enforce_rate_limit(
    request: Request, bucket: str, setting: str, *, per_customer: bool = False
) -> RateDecision:
    """Count the hit in its own committed transaction (inside the write gate)."""
    db: Database = request.app.state.database
    async with write_gate(request, True):
        return await run_in_threadpool(_count_hit, db, bucket, setting, per_customer, request)


def redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    _security_headers(response)
    return response


async def _unit_of_work(
    request: Request,
    original: Callable[[Request], Coroutine[Any, Any, Response]],
    write: bool,
    form: Any,
    check_csrf: bool,
) -> Response:
    db: Database = request.app.state.database
    session = db.session(write=write)
    request.state.db = session
    request.state.force_commit = False
    try:
        portal = await run_in_threadpool(resolve_portal_session, session, request.cookies.get(PORTAL_COOKIE))
        request.state.portal = portal
        language, tz = await run_in_threadpool(page_language, request, session, portal)
        request.state.language, request.state.time_zone = language, tz
        current_language.set(language)
        if portal is not None:
            current_actor.set(Actor("customer", portal.customer_id, "portal"))
        if check_csrf:
            _check_csrf(request, None if form is None else form.get(CSRF_FIELD))
        response = await original(request)
        if response.status_code < 400 or request.state.force_commit:
            await run_in_threadpool(session.commit)
            notify = getattr(request.app.state, "on_commit", None)
            if notify is not None:
                notify()
        else:
            await run_in_threadpool(session.rollback)
        return response
    except PatronError as exc:
        await run_in_threadpool(session.rollback)
        return portal_error(request, exc)
    except BaseException:
        await run_in_threadpool(session.rollback)
        raise
    finally:
        await run_in_threadpool(session.close)


class PortalRoute(APIRoute):
    """A customer-facing page: public, CSRF-checked, rate-limited where listed, translated."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        limits = {
            method: RATE_LIMITS[(method, self.path_format)]
            for method in self.methods or ()
            if (method, self.path_format) in RATE_LIMITS
        }

        writing_get = self.path_format in WRITING_GETS

        async def handler(request: Request) -> Response:
            unsafe = request.method not in SAFE
            write = unsafe or writing_get
            try:
                form = await request.form() if unsafe else None
                request.state.form = form
                limit = limits.get(request.method)
                if limit is not None:
                    bucket, setting, per_customer = limit
                    decision = await enforce_rate_limit(request, bucket, setting, per_customer=per_customer)
                    if not decision.allowed:
                        return too_many(request, decision)
                async with write_gate(request, write):
                    return await _unit_of_work(request, original, write, form, unsafe)
            except PatronError as exc:  # e.g. an unreadable form
                return portal_error(request, exc)
            except HTTPException as exc:  # e.g. a body that is not a form
                return portal_error(
                    request, PatronError(str(exc.detail), code="bad_request", status=exc.status_code)
                )
            except Exception:
                # never the problem+json handler: its log line and body would carry the path, and a
                # link's path is its token
                log.exception(
                    "unhandled error on portal page %s %s", request.method, redact_path(request.url.path)
                )
                return internal_error(request)
            finally:
                await request.close()

        return handler


__all__ = [
    "CSRF_FIELD",
    "PORTAL_COOKIE",
    "PORTAL_COOKIE_PATH",
    "PORTAL_CSRF_COOKIE",
    "PORTAL_LANGUAGE_COOKIE",
    "PortalRoute",
    "client_ip",
    "enforce_rate_limit",
    "portal_error",
    "redirect",
    "render_portal",
    "set_portal_cookie",
]
