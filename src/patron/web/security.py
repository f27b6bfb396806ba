"""Who is calling: a Bearer API token, or a console session cookie (with CSRF for unsafe methods)."""

from __future__ import annotations

import hmac

from fastapi import Request
from sqlalchemy.orm import Session

from patron.auth import Principal, resolve_console_session, resolve_token
from patron.core.errors import Forbidden, Unauthenticated

SESSION_COOKIE = "patron_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE = {"GET", "HEAD", "OPTIONS"}


def authenticate_request(request: Request, session: Session) -> Principal | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("use 'Authorization: Bearer <token>'", code="invalid_token")
        return resolve_token(session, secret.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            return resolve_console_session(session, cookie)
        except Unauthenticated:
            return None
    return None


def check_csrf(request: Request, principal: Principal, submitted: str | None) -> None:
    """Cookie-authenticated unsafe requests must carry the session's CSRF token."""
    if request.method in SAFE or principal.via != "session":
        return
    expected = principal.csrf_token or ""
    if not submitted or not hmac.compare_digest(submitted, expected):
        raise Forbidden("missing or wrong CSRF token", code="csrf_failed")
