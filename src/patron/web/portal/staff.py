"""Staff console: issue a customer's portal link (shown once, to copy) and revoke all their links.

The partial ``portal/_staff_link.html`` holds the buttons (and, after issuing, the link); include it
in a customer page with ``customer`` in the context. Needs ``loyalty:operate``: whoever holds a
portal link can spend the customer's points, as staff with that permission can at the till."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from patron.auth import Perm, Principal
from patron.customers import get_customer
from patron.portal import issue_portal_link, portal_customer_id, revoke_portal_links
from patron.web.ui.base import Allowed, ConsoleRoute, UiSession, render

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.post("/customers/{customer_id}/portal-link", response_class=HTMLResponse)
def issue_link_page(
    request: Request, customer_id: str, db: UiSession, viewer: Principal = Allowed(Perm.LOYALTY_OPERATE)
) -> HTMLResponse:
    link = issue_portal_link(db, customer_id)
    return render(
        request,
        "portal/staff_link.html",
        {"customer": get_customer(db, link.customer_id), "portal_link": link, "portal_revoked": False},
    )


@router.post("/customers/{customer_id}/portal-link/revoke", response_class=HTMLResponse)
def revoke_links_page(
    request: Request, customer_id: str, db: UiSession, viewer: Principal = Allowed(Perm.LOYALTY_OPERATE)
) -> HTMLResponse:
    resolved = portal_customer_id(db, customer_id)  # a merged-away id: the survivor's links
    revoke_portal_links(db, resolved)
    return render(
        request,
        "portal/staff_link.html",
        {"customer": get_customer(db, resolved), "portal_link": None, "portal_revoked": True},
    )
