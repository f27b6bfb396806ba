"""Customer portal links: issue a signed, expiring link to a customer's portal, or revoke all of them.

Both need ``loyalty:operate`` (owner, admin, marketer): a portal link lets whoever holds it spend
the customer's points, exactly what that permission allows staff at the till. Both are audited
(``portal.link_issued`` with the expiry — never the token — and ``portal.links_revoked``).
``Idempotency-Key`` is ignored here, so the link is never stored with a replayable response. Issuing
is rate limited per staff user (``PATRON_RATE_LIMIT_PORTAL_LINK``): 429 ``rate_limited`` with
``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from patron.auth import Perm, Principal
from patron.core.ratelimit import hit, parse_rate
from patron.core.settings import get_settings
from patron.portal import issue_portal_link, portal_customer_id, revoke_portal_links
from patron.web.deps import DbSession, Requires
from patron.web.problems import problem_response, problem_responses
from patron.web.routing import IDEMPOTENCY_HEADER, PatronRoute


class NoStoredResponseRoute(PatronRoute):
    """``PatronRoute`` that ignores ``Idempotency-Key``: a portal link is a bearer secret, and an
    idempotent replay would mean storing the response — the link — in ``idempotency_records``.
    Issuing twice is harmless (two valid links); revoking twice only bumps the version again."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        header = IDEMPOTENCY_HEADER.lower().encode("latin-1")

        async def without_key(request: Request) -> Response:
            headers = request.scope["headers"]
            if any(name.lower() == header for name, _ in headers):
                request.scope["headers"] = [(n, v) for n, v in headers if n.lower() != header]
                request.__dict__.pop("_headers", None)  # Starlette caches the parsed headers
            return await handler(request)

        return without_key


router = APIRouter(
    route_class=NoStoredResponseRoute, tags=["portal"], responses=problem_responses(401, 403, 422)
)


class PortalLinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: StrictInt | None = Field(
        default=None, ge=1, le=366, description="days the link is valid (default: PATRON_PORTAL_LINK_DAYS)"
    )


class PortalLinkRead(BaseModel):
    customer_id: str = Field(description="the customer the link opens (a merged id gives the survivor's)")
    url: str = Field(description="send this to the customer; it is shown once and not stored")
    expires_at: datetime


class PortalLinksRevoked(BaseModel):
    customer_id: str
    key_version: int = Field(description="links and sessions signed with an older version no longer work")


@router.post(
    "/customers/{customer_id}/portal-link",
    response_model=PortalLinkRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409, 429),
)
def issue_portal_link_endpoint(
    customer_id: str,
    db: DbSession,
    body: PortalLinkCreate | None = None,
    principal: Principal = Requires(Perm.LOYALTY_OPERATE),
) -> PortalLinkRead | JSONResponse:
    rate = parse_rate(get_settings().rate_limit_portal_link)
    decision = hit(db, f"portal_link:user:{principal.user_id}", rate)
    if not decision.allowed:
        return problem_response(
            429,
            "rate_limited",
            "too many portal links issued: try again later",
            title="Too many requests",
            instance=f"/api/v1/customers/{customer_id}/portal-link",
            extra={"retry_after": decision.retry_after},
            headers={"Retry-After": str(decision.retry_after)},
        )
    link = issue_portal_link(db, customer_id, days=None if body is None else body.days)
    return PortalLinkRead(customer_id=link.customer_id, url=link.url, expires_at=link.expires_at)


@router.post(
    "/customers/{customer_id}/portal-link/revoke",
    response_model=PortalLinksRevoked,
    responses=problem_responses(404, 409),
)
def revoke_portal_links_endpoint(
    customer_id: str, db: DbSession, _: Principal = Requires(Perm.LOYALTY_OPERATE)
) -> PortalLinksRevoked:
    """Void every portal link and open portal session of the customer (a merged-away id revokes the
    survivor's, and the response's ``customer_id`` says so)."""
    resolved = portal_customer_id(db, customer_id)
    return PortalLinksRevoked(customer_id=resolved, key_version=revoke_portal_links(db, resolved))
