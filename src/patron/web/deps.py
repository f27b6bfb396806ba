"""FastAPI dependencies: the request's session, the caller, permission checks, ETags."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from sqlalchemy.orm import Session

from patron.auth import Perm, Principal
from patron.core.errors import PreconditionFailed, Unauthenticated


def get_session(request: Request) -> Session:
    session: Session = request.state.db
    return session


DbSession = Annotated[Session, Depends(get_session)]


def get_principal(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>'")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(perm: Perm) -> Callable[[Request], Principal]:
    def dependency(request: Request) -> Principal:
        principal = get_principal(request)
        principal.require(perm)
        return principal

    dependency.__name__ = f"require_{perm.value.replace(':', '_')}"
    return dependency


def Requires(perm: Perm) -> Any:
    """Use as the *last* parameter: ``me: Principal = Requires(Perm.CUSTOMERS_READ)``.

    (A default value rather than ``Annotated[...]`` so mypy accepts it; the dependency's name,
    ``require_<perm>``, lets tests introspect which permission a route needs.)"""
    return Depends(require(perm))


def make_etag(*parts: object) -> str:
    raw = "|".join(str(p) for p in parts)
    return 'W/"' + hashlib.sha256(raw.encode()).hexdigest()[:20] + '"'


def set_etag(response: Response, etag: str) -> None:
    response.headers["ETag"] = etag


def check_if_match(if_match: str | None, current: str) -> None:
    if if_match is None:
        return
    candidates = [c.strip() for c in if_match.split(",")]
    if "*" in candidates:
        return
    norm = current.removeprefix("W/")
    if not any(c.removeprefix("W/") == norm for c in candidates):
        raise PreconditionFailed(
            "the resource changed since you read it (ETag mismatch)", code="etag_mismatch"
        )


IfMatch = Annotated[str | None, Header(alias="If-Match", description="ETag from a previous read")]
