"""Customers: the searchable list and the customer 360 page (profile, consent, traits, timeline,
orders, subscriptions, the loyalty card), with forms to add a note, record consent, adjust points and
redeem a reward for the customer."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import ROUND_CEILING
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from patron.auth import Perm, Principal
from patron.commerce import get_order_stats, list_orders, list_subscriptions
from patron.core.business import get_business, list_markets
from patron.core.errors import NotFound, PatronError, ValidationFailed
from patron.core.i18n import LANGUAGE_NAMES, LANGUAGES, N_, format_decimal, format_money, gettext_for
from patron.core.ids import new_id
from patron.core.money import Money
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
from patron.loyalty import (
    expiring_points_of,
    get_account,
    list_entries,
    list_redemptions,
    list_rewards,
    redeem_reward,
    reward_name,
    reward_use_counts,
    tier_name,
    tier_progress,
)
from patron.web.ui.base import (
    Allowed,
    ConsoleRoute,
    Form,
    UiSession,
    error_message,
    field_errors,
    redirect,
    register_flash,
    register_nav,
    render,
)
from patron.web.ui.loyalty_config import (
    FORM_USED,
    AdjustRefused,
    adjust_from_form,
    console_key,
)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

register_nav("people", N_("Customers"), "/customers", Perm.CUSTOMERS_READ, 10)
register_flash("card_points_adjusted", N_("Points adjusted."))
register_flash(
    "reward_redeemed", N_("Reward redeemed: give the customer the code shown on the loyalty card.")
)

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
ENTRY_LABELS: dict[str, str] = {
    "earn": N_("Points pending"),
    "vest": N_("Points earned"),
    "redeem": N_("Points redeemed"),
    "expire": N_("Points expired"),
    "adjust": N_("Points adjusted"),
    "reverse": N_("Points reversed"),
    "hold": N_("Points held"),
    "capture": N_("Held points spent"),
    "release": N_("Held points released"),
    "transfer": N_("Points transferred"),
    "opening": N_("Opening points balance"),
    "forfeit": N_("Points forfeited"),
    "settle": N_("Points debt paid"),
}
LABELS = {
    "PURPOSE_LABELS": PURPOSE_LABELS,
    "CHANNEL_LABELS": CHANNEL_LABELS,
    "CONSENT_LABELS": CONSENT_LABELS,
    "ORDER_STATUS_LABELS": ORDER_STATUS_LABELS,
    "INTERACTION_LABELS": INTERACTION_LABELS,
    "ENTRY_LABELS": ENTRY_LABELS,
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


def _home_market(db: UiSession, customer: CustomerView) -> str | None:
    """The market a console redemption is made in: the one in the customer's country, if any."""
    return next(
        (m.code for m in list_markets(db) if customer.country and m.country == customer.country), None
    )


def _loyalty_card(
    request: Request,
    db: UiSession,
    viewer: Principal,
    customer: CustomerView,
    *,
    errors: dict[str, list[str]] | None = None,
    values: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """The loyalty card's content: balances, tier and progress, points expiring within 30 days, the
    last ledger movements and reward codes, and what staff may do (adjust, redeem)."""
    if not viewer.can(Perm.LOYALTY_READ) or customer.erased_at is not None:
        return None
    language = request.state.language
    account = get_account(db, customer.id)
    if not account.enrolled:
        return {"account": account, "enrolled": False}
    progress = tier_progress(db, customer.id)
    gettext = gettext_for(language)
    progress_text = None
    if progress.next is not None and progress.remaining is not None:
        next_name = tier_name(progress.next, language)
        if progress.basis == "spend":
            amount = format_money(Money(progress.remaining, get_business(db).reporting_currency), language)
            progress_text = gettext(N_("%(amount)s more spend to %(tier)s")) % {
                "amount": amount,
                "tier": next_name,
            }
        else:
            points = format_decimal(progress.remaining.to_integral_value(rounding=ROUND_CEILING), language)
            progress_text = gettext(N_("%(points)s points to %(tier)s")) % {
                "points": points,
                "tier": next_name,
            }
    market = _home_market(db, customer)
    can_operate = viewer.can(Perm.LOYALTY_OPERATE)
    rewards: list[tuple[str, str, int]] = []
    if can_operate and account.available > 0:
        used = reward_use_counts(db, customer.id)
        rewards = [
            (r.id, reward_name(r, language), r.cost_points)
            for r in list_rewards(db, customer_id=customer.id, market=market)
            if r.cost_points <= account.available
            and (r.limit_per_customer is None or used.get(r.id, 0) < r.limit_per_customer)
        ]
    return {
        "account": account,
        "enrolled": True,
        "tier": None if progress.current is None else tier_name(progress.current, language),
        "progress": progress,
        "progress_text": progress_text,
        "expiring": expiring_points_of(db, customer.id, within_days=30),
        "entries": list_entries(db, customer.id, limit=5).items,
        "codes": [r for r in list_redemptions(db, customer.id, limit=3) if r.code],
        "can_adjust": can_operate,
        "rewards": rewards,
        "redeem_key": new_id(),
        "adjust_key": new_id(),
        "errors": errors or {},
        "values": values or {"points": "", "reason": ""},
    }


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
    loyalty_errors: dict[str, list[str]] | None = None,
    loyalty_values: dict[str, str] | None = None,
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
            "loyalty": _loyalty_card(
                request, db, viewer, customer, errors=loyalty_errors, values=loyalty_values
            ),
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


# --- the loyalty card's actions ----------------------------------------------------------------------


@router.post("/customers/{customer_id}/loyalty/adjust", response_class=HTMLResponse)
def adjust_loyalty_points(
    request: Request,
    customer_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.LOYALTY_OPERATE),
) -> Response:
    """A manual adjustment from the customer page (audited by the ledger, with its reason). The form
    carries an idempotency key drawn when the page was rendered, so a double submit (or a retried
    post) adjusts once; a post without one (a script) is not deduplicated, as in the API."""
    customer = _load(db, customer_id)
    values = {k: str(form.get(k) or "").strip() for k in ("points", "reason")}
    language = request.state.language
    key = str(form.get("idempotency_key") or "").strip()
    try:
        adjust_from_form(db, viewer, customer.id, values, key, language)
    except AdjustRefused as refused:
        errors = refused.errors
        if refused.exc is not None:
            db.rollback()
            errors = _loyalty_errors(refused.exc, language, ADJUST_MESSAGES)
        return _customer_page(
            request,
            db,
            viewer,
            customer,
            loyalty_errors=errors,
            loyalty_values=values,
            status_code=refused.status,
        )
    return redirect(f"/customers/{customer.id}?flash=card_points_adjusted#loyalty")


# Refusals of a redemption, as staff read them.
REDEEM_MESSAGES: dict[str, str] = {
    "insufficient_points": N_("The customer does not have enough points."),
    "inactive": N_("This reward is not offered any more."),
    "tier": N_("This reward is for members of another tier."),
    "market": N_("This reward is not offered in the customer's market."),
    "out_of_stock": N_("This reward is out of stock."),
    "limit_reached": N_("The customer has redeemed this reward as often as allowed."),
    "idempotency_key_reused": N_("This form was already used for another redemption. Reload the page."),
}


# Refusals of an adjustment: a form sent again with other values under its key.
ADJUST_MESSAGES: dict[str, str] = {
    "insufficient_points": REDEEM_MESSAGES["insufficient_points"],
    "idempotency_key_reused": FORM_USED,
}


def _loyalty_errors(
    exc: PatronError, language: str, messages: dict[str, str] = REDEEM_MESSAGES
) -> dict[str, list[str]]:
    reason = exc.extra.get("reason")
    msgid = messages.get(str(reason)) or messages.get(exc.code)
    if msgid is not None:
        return {"": [gettext_for(language)(msgid)]}
    return _errors(exc, language)


@router.post("/customers/{customer_id}/loyalty/redeem", response_class=HTMLResponse)
def redeem_for_customer(
    request: Request,
    customer_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.LOYALTY_OPERATE),
) -> Response:
    """Redeem a reward for the customer at the counter. The form carries an idempotency key drawn
    when the page was rendered, so a double submit (or a retried post) redeems exactly once."""
    customer = _load(db, customer_id)
    reward_id = str(form.get("reward_id") or "").strip()
    key = str(form.get("idempotency_key") or "").strip()
    language = request.state.language
    if not reward_id or not key or len(key) > 100:
        msg = gettext_for(language)(N_("Choose a reward."))
        return _customer_page(
            request, db, viewer, customer, loyalty_errors={"reward_id": [msg]}, status_code=422
        )
    try:
        redeem_reward(
            db,
            customer.id,
            reward_id,
            market_code=_home_market(db, customer),
            key=console_key(viewer, key),
        )
    except PatronError as exc:
        db.rollback()
        return _customer_page(
            request,
            db,
            viewer,
            customer,
            loyalty_errors=_loyalty_errors(exc, language),
            status_code=exc.status if 400 <= exc.status < 500 else 409,
        )
    return redirect(f"/customers/{customer.id}?flash=reward_redeemed#loyalty")
