"""Customers: the searchable list and the customer 360 page (profile, consent, traits, timeline,
orders, subscriptions), with forms to add a note and record consent."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from patron.auth import Perm, Principal
from patron.commerce import get_order_stats, list_orders, list_subscriptions
from patron.core.errors import NotFound, PatronError, ValidationFailed
from patron.core.i18n import LANGUAGE_NAMES, LANGUAGES, N_, gettext_for
from patron.customers import (
    CONSENT_CHANNELS,
    CONSENT_STATUSES,
    PURPOSES,
    CustomerView,
    get_consent,
    get_customer,
    get_organisation,
    get_traits,
    list_customers,
    list_timeline,
    record_consent,
    record_interaction,
    salutation,
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

register_nav("people", N_("Customers"), "/customers", Perm.CUSTOMERS_READ, 10)

PURPOSE_LABELS: dict[str, str] = {
    "marketing": N_("Marketing"),
    "transactional": N_("Transactional"),
    "profiling": N_("Profiling"),
}
CHANNEL_LABELS: dict[str, str] = {
    "email": N_("Email"),
    "sms": N_("SMS"),
    "zalo": N_("Zalo"),
    "line": N_("LINE"),
    "phone": N_("Phone"),
    "push": N_("Push"),
    "web": N_("Web"),
    "store": N_("Store"),
    "app": N_("App"),
    "marketplace": N_("Marketplace"),
    "console": N_("Console"),
}
CONSENT_LABELS: dict[str, str] = {
    "granted": N_("Granted"),
    "withdrawn": N_("Withdrawn"),
    "expired": N_("Expired"),
    "unknown": N_("Unknown"),
}
ORDER_STATUS_LABELS: dict[str, str] = {
    "placed": N_("Placed"),
    "paid": N_("Paid"),
    "fulfilled": N_("Fulfilled"),
    "delivered": N_("Delivered"),
    "cancelled": N_("Cancelled"),
    "refunded": N_("Refunded"),
    "partially_refunded": N_("Partially refunded"),
    "active": N_("Active"),
    "paused": N_("Paused"),
    "past_due": N_("Past due"),
    "expired": N_("Expired"),
}
INTERACTION_LABELS: dict[str, str] = {
    "note": N_("Note"),
    "page_view": N_("Page view"),
    "order.placed": N_("Order placed"),
    "order.fulfilled": N_("Order fulfilled"),
    "order.refunded": N_("Order refunded"),
    "consent.recorded": N_("Consent recorded"),
    "subscription.started": N_("Subscription started"),
    "subscription.cancelled": N_("Subscription cancelled"),
}
LABELS = {
    "PURPOSE_LABELS": PURPOSE_LABELS,
    "CHANNEL_LABELS": CHANNEL_LABELS,
    "CONSENT_LABELS": CONSENT_LABELS,
    "ORDER_STATUS_LABELS": ORDER_STATUS_LABELS,
    "INTERACTION_LABELS": INTERACTION_LABELS,
}


def _filters(request: Request) -> dict[str, str]:
    params = request.query_params
    return {
        "q": params.get("q", "").strip()[:200],
        "country": params.get("country", "").strip().upper()[:2],
        "language": params.get("language", "").strip() if params.get("language") in LANGUAGES else "",
        "tag": params.get("tag", "").strip()[:50],
    }


@router.get("/customers", response_class=HTMLResponse)
def customers(
    request: Request, db: UiSession, viewer: Principal = Allowed(Perm.CUSTOMERS_READ)
) -> HTMLResponse:
    filters = _filters(request)
    cursor = request.query_params.get("cursor") or None
    page = list_customers(
        db,
        q=filters["q"] or None,
        country=filters["country"] or None,
        language=filters["language"] or None,
        tag=filters["tag"] or None,
        cursor=cursor,
        limit=50,
    )
    query = {k: v for k, v in filters.items() if v}
    return render(
        request,
        "customers/list.html",
        {
            "customers": page.items,
            "filters": filters,
            "query": query,
            "next_cursor": page.next_cursor,
            "cursor": cursor,
            "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
            "can_add": viewer.can(Perm.CUSTOMERS_WRITE),
        },
    )


def _consent_grid(states: list[Any]) -> dict[tuple[str, str], Any]:
    return {(s.purpose, s.channel): s for s in states}


def _customer_page(
    request: Request,
    db: UiSession,
    viewer: Principal,
    customer: CustomerView,
    *,
    note_errors: dict[str, list[str]] | None = None,
    consent_errors: dict[str, list[str]] | None = None,
    consent_values: dict[str, str] | None = None,
    note: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    cursor = request.query_params.get("cursor") or None
    timeline = list_timeline(db, customer.id, cursor=cursor, limit=50)
    consent = get_consent(db, customer.id)
    organisation = None
    if customer.organisation_id and viewer.can(Perm.ORGANISATIONS_READ):
        try:
            organisation = get_organisation(db, customer.organisation_id)
        except NotFound:
            organisation = None
    can_commerce = viewer.can(Perm.COMMERCE_READ)
    return render(
        request,
        "customers/detail.html",
        {
            "customer": customer,
            "salutation": salutation(customer),
            "organisation": organisation,
            "consent": _consent_grid(consent.current),
            "consent_history": consent.history[:20],
            "purposes": PURPOSES,
            "channels": CONSENT_CHANNELS,
            "statuses": CONSENT_STATUSES,
            "traits": sorted(get_traits(db, customer.id).values(), key=lambda t: t.name),
            "timeline": timeline.items,
            "timeline_next": timeline.next_cursor,
            "timeline_cursor": cursor,
            "orders": list_orders(db, customer_id=customer.id, limit=20).items if can_commerce else [],
            "subscriptions": list_subscriptions(db, customer_id=customer.id, limit=20).items
            if can_commerce
            else [],
            "stats": get_order_stats(db, customer.id) if can_commerce else None,
            "can_note": viewer.can(Perm.TIMELINE_WRITE),
            "can_edit": viewer.can(Perm.CUSTOMERS_WRITE),
            "can_consent": viewer.can(Perm.CONSENT_WRITE),
            "can_commerce": can_commerce,
            "note_errors": note_errors or {},
            "consent_errors": consent_errors or {},
            "consent_values": consent_values or {},
            "note": note,
            **LABELS,
        },
        status_code=status_code,
    )


def _load(db: UiSession, customer_id: str) -> CustomerView:
    return get_customer(db, customer_id)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_360(
    request: Request, customer_id: str, db: UiSession, viewer: Principal = Allowed(Perm.CUSTOMERS_READ)
) -> Response:
    customer = _load(db, customer_id)
    if customer.merged_into_id:
        return redirect(f"/customers/{customer.merged_into_id}")
    return _customer_page(request, db, viewer, customer)


def _errors(exc: PatronError, language: str) -> dict[str, list[str]]:
    if isinstance(exc, ValidationFailed) and any(e.get("loc") for e in exc.errors):
        return field_errors(exc)
    return {"": [error_message(exc, language)]}


@router.post("/customers/{customer_id}/notes", response_class=HTMLResponse)
def add_note(
    request: Request,
    customer_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.TIMELINE_WRITE),
) -> Response:
    customer = _load(db, customer_id)
    raw = form.get("summary")
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        msg = gettext_for(request.state.language)(N_("Write a note first."))
        return _customer_page(request, db, viewer, customer, note_errors={"summary": [msg]}, status_code=422)
    try:
        record_interaction(
            db,
            customer.id,
            channel="console",
            direction="internal",
            kind="note",
            summary=text,
            actor=viewer.email,
            source="console",
        )
    except PatronError as exc:
        return _customer_page(
            request,
            db,
            viewer,
            customer,
            note=text,
            note_errors=_errors(exc, request.state.language),
            status_code=422,
        )
    return redirect(f"/customers/{customer.id}?flash=note_added#timeline")


@router.post("/customers/{customer_id}/consent", response_class=HTMLResponse)
def add_consent(
    request: Request,
    customer_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.CONSENT_WRITE),
) -> Response:
    customer = _load(db, customer_id)
    values = {
        k: str(form.get(k) or "").strip() for k in ("purpose", "channel", "status", "proof", "expires_on")
    }
    expires_at: datetime | None = None
    if values["expires_on"]:
        try:
            day = date.fromisoformat(values["expires_on"])
            expires_at = datetime.combine(
                day, time(23, 59, 59), ZoneInfo(request.state.time_zone)
            ).astimezone(UTC)
        except ValueError:
            msg = gettext_for(request.state.language)(N_("Enter a date as YYYY-MM-DD."))
            return _customer_page(
                request,
                db,
                viewer,
                customer,
                consent_errors={"expires_on": [msg]},
                consent_values=values,
                status_code=422,
            )
    try:
        record_consent(
            db,
            customer.id,
            purpose=values["purpose"],
            channel=values["channel"],
            status=values["status"],
            source=f"console:{viewer.email}"[:100],
            proof=values["proof"] or None,
            expires_at=expires_at,
        )
    except PatronError as exc:
        return _customer_page(
            request,
            db,
            viewer,
            customer,
            consent_values=values,
            consent_errors=_errors(exc, request.state.language),
            status_code=422,
        )
    return redirect(f"/customers/{customer.id}?flash=consent_recorded#consent")
