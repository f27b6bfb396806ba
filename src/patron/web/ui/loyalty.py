"""Loyalty console pages: the programme (settings, markets, tiers, rules, rewards, promotions, each
with a form to add one; coupon codes generated and exported), a member's loyalty card with the
ledger and a permissioned, audited manual adjustment, member lookup (card, email, phone) and the
liability report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm.exc import StaleDataError

from patron.auth import Perm, Principal
from patron.core.business import list_markets
from patron.core.errors import PatronError, ValidationFailed
from patron.core.i18n import N_, gettext_for
from patron.core.ids import new_id
from patron.customers import get_customer
from patron.loyalty import (
    create_promotion,
    create_reward,
    create_rule,
    create_tier,
    find_member,
    generate_coupons,
    get_account,
    get_programme,
    liability,
    list_entries,
    list_market_settings,
    list_promotions,
    list_rewards,
    list_rules,
    list_tiers,
    reward_name,
    tier_name,
    tier_progress,
    update_programme,
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
    register_nav_section,
    render,
    viewer_language,
)
from patron.web.ui.loyalty_config import (
    FORM_USED,
    KIND_LABELS,
    AdjustRefused,
    adjust_from_form,
    domain_errors,
    form_version,
    stale_errors,
)
from patron.web.ui.loyalty_config import router as config_router

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
router.include_router(config_router)  # edit pages for tiers, rules, rewards, promotions, markets

register_nav_section("engage", N_("Engage"), 20)
register_nav("engage", N_("Loyalty"), "/loyalty", Perm.LOYALTY_READ, 10)
register_nav("engage", N_("Points liability"), "/loyalty/liability", Perm.LOYALTY_READ, 12)
register_flash("loyalty_saved", N_("Programme settings saved."))
register_flash("points_adjusted", N_("Points adjusted."))

ENROLMENTS = (("automatic", N_("Automatic on sign-up")), ("opt_in", N_("Opt-in")))
EXPIRY_POLICIES = (
    ("never", N_("Points never expire")),
    ("rolling", N_("Each lot expires after a number of months")),
    ("end_of_year", N_("At the end of the calendar year")),
)
TIER_BASES = (("points", N_("Points earned")), ("spend", N_("Net spend in the reporting currency")))
TIER_WINDOWS = (("rolling", N_("A rolling number of months")), ("calendar_year", N_("The calendar year")))
PROGRAMME_FIELDS = (
    "enrolment",
    "pending_days",
    "expiry_policy",
    "expiry_months",
    "tier_basis",
    "tier_window",
    "tier_window_months",
    "tier_grace_days",
)
PROGRAMME_NUMBERS = ("pending_days", "expiry_months", "tier_window_months", "tier_grace_days")


def _errors(exc: PatronError, language: str) -> dict[str, list[str]]:
    if isinstance(exc, ValidationFailed) and any(e.get("loc") for e in exc.errors):
        return field_errors(exc)
    return {"": [error_message(exc, language)]}


def _programme_page(
    request: Request,
    db: UiSession,
    viewer: Principal,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    version: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    language = viewer_language(request, viewer)
    gettext = gettext_for(language)
    programme = get_programme(db)
    tiers = list_tiers(db)
    earning = {s.market_code: s for s in list_market_settings(db)}
    return render(
        request,
        "loyalty/index.html",
        {
            "programme": programme,
            "values": values or {k: getattr(programme, k) for k in PROGRAMME_FIELDS},
            "version": programme.version if version is None else version,
            "errors": errors or {},
            "enrolments": [(k, gettext(v)) for k, v in ENROLMENTS],
            "expiry_policies": [(k, gettext(v)) for k, v in EXPIRY_POLICIES],
            "tier_bases": [(k, gettext(v)) for k, v in TIER_BASES],
            "tier_windows": [(k, gettext(v)) for k, v in TIER_WINDOWS],
            "markets": [(m, earning.get(m.code)) for m in list_markets(db)],
            "tiers": [(t, tier_name(t, language)) for t in tiers],
            "rules": list_rules(db),
            "rewards": [(r, reward_name(r, language)) for r in list_rewards(db, include_inactive=True)],
            "promotions": list_promotions(db),
            "can_edit": viewer.can(Perm.LOYALTY_WRITE),
            "lookup_error": None,
            "REWARD_KIND_LABELS": KIND_LABELS,
        },
        status_code=status_code,
    )


@router.get("/loyalty", response_class=HTMLResponse)
def programme_page(
    request: Request, db: UiSession, viewer: Principal = Allowed(Perm.LOYALTY_READ)
) -> HTMLResponse:
    return _programme_page(request, db, viewer)


@router.post("/loyalty", response_class=HTMLResponse)
def save_programme(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.LOYALTY_WRITE)
) -> Response:
    language = viewer_language(request, viewer)
    values: dict[str, Any] = {k: (str(form.get(k) or "")).strip() for k in PROGRAMME_FIELDS}
    # older forms (and scripts) may leave the tier settings out: those keep their current values
    changes: dict[str, Any] = {
        k: values[k] for k in ("enrolment", "expiry_policy", "tier_basis", "tier_window") if k in form
    }
    errors: dict[str, list[str]] = {}
    for key in PROGRAMME_NUMBERS:
        if key not in form:
            continue
        try:
            changes[key] = int(values[key])
        except ValueError:
            errors[key] = [gettext_for(language)(N_("Enter a whole number."))]
    current = get_programme(db)
    if form_version(form) != current.version:  # a stale form, or one without the version it was read at
        return _programme_page(
            request,
            db,
            viewer,
            values=values,
            errors=stale_errors(language),
            version=current.version,
            status_code=412,
        )
    if errors:
        return _programme_page(request, db, viewer, values=values, errors=errors, status_code=422)
    try:
        update_programme(db, **changes)
    except StaleDataError:  # changed by a concurrent transaction between our read and our UPDATE
        db.rollback()
        return _programme_page(
            request,
            db,
            viewer,
            values=values,
            errors=stale_errors(language),
            status_code=412,
        )
    except PatronError as exc:
        db.rollback()
        return _programme_page(
            request,
            db,
            viewer,
            values=values,
            errors=domain_errors(exc, language),
            status_code=422,
        )
    return redirect("/loyalty?flash=loyalty_saved")


@router.get("/loyalty/members", response_class=HTMLResponse)
def lookup(request: Request, db: UiSession, viewer: Principal = Allowed(Perm.LOYALTY_READ)) -> Response:
    """Find a member by card number (or QR payload), email or phone and open their loyalty card."""
    q = request.query_params.get("q", "").strip()
    if not q:
        return redirect("/loyalty")
    kind = "email" if "@" in q else "card" if sum(ch.isdigit() for ch in q) >= 16 else "phone"
    try:
        account = find_member(db, **{kind: q})
    except PatronError:
        return render(request, "loyalty/not_found.html", {"q": q}, status_code=404)
    return redirect(f"/loyalty/members/{account.customer_id}")


def _member_page(
    request: Request,
    db: UiSession,
    viewer: Principal,
    customer_id: str,
    *,
    errors: dict[str, list[str]] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    language = viewer_language(request, viewer)
    account = get_account(db, customer_id)
    customer = get_customer(db, account.customer_id)
    progress = tier_progress(db, account.customer_id)
    entries = list_entries(db, account.customer_id, limit=50).items
    return render(
        request,
        "loyalty/member.html",
        {
            "customer": customer,
            "account": account,
            "tier": None if progress.current is None else tier_name(progress.current, language),
            "next_tier": None if progress.next is None else tier_name(progress.next, language),
            "progress": progress,
            "entries": entries,
            "can_adjust": viewer.can(Perm.LOYALTY_OPERATE),
            "adjust_key": new_id(),  # a double submit (or a retried post) adjusts once
            "errors": errors or {},
            "values": values or {"points": "", "reason": ""},
        },
        status_code=status_code,
    )


@router.get("/loyalty/members/{customer_id}", response_class=HTMLResponse)
def member_page(
    request: Request, customer_id: str, db: UiSession, viewer: Principal = Allowed(Perm.LOYALTY_READ)
) -> HTMLResponse:
    return _member_page(request, db, viewer, customer_id)


@router.post("/loyalty/members/{customer_id}/adjust", response_class=HTMLResponse)
def adjust(
    request: Request,
    customer_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.LOYALTY_OPERATE),
) -> Response:
    """A manual adjustment (audited by the ledger, with its reason). The form carries an idempotency
    key drawn when the page was rendered, so a double submit adjusts once; a post without one (a
    script) is not deduplicated, as in the API."""
    values = {k: str(form.get(k) or "").strip() for k in ("points", "reason")}
    language = viewer_language(request, viewer)
    key = str(form.get("idempotency_key") or "").strip()
    try:
        adjust_from_form(db, viewer, customer_id, values, key, language)
    except AdjustRefused as refused:
        errors = refused.errors
        if refused.exc is not None:
            reused = refused.exc.code == "idempotency_key_reused"
            errors = {"": [gettext_for(language)(FORM_USED)]} if reused else _errors(refused.exc, language)
        return _member_page(
            request, db, viewer, customer_id, values=values, errors=errors, status_code=refused.status
        )
    return redirect(f"/loyalty/members/{customer_id}?flash=points_adjusted")


@router.get("/loyalty/liability", response_class=HTMLResponse)
def liability_page(
    request: Request, db: UiSession, viewer: Principal = Allowed(Perm.LOYALTY_READ)
) -> HTMLResponse:
    return render(request, "loyalty/liability.html", {"report": liability(db)})


# --- configuration forms: tiers, rules, rewards, promotions and their codes ---------------------------

register_flash("tier_created", N_("Tier added."))
register_flash("rule_created", N_("Earning rule added."))
register_flash("reward_created", N_("Reward added."))
register_flash("promotion_created", N_("Promotion added."))
register_flash("codes_generated", N_("Coupon codes generated."))


def _text(form: Any, name: str) -> str:
    return str(form.get(name) or "").strip()


def _int(form: Any, name: str, default: int | None = None) -> int | None:
    raw = _text(form, name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        return -1  # the domain refuses it with a field error


def _configure(request: Request, viewer: Principal, section: str, create: Any) -> Response:
    """Run a create command; on refusal show what was wrong (the form keeps nothing: go back)."""
    try:
        create()
    except PatronError as exc:
        return render(
            request,
            "loyalty/form_error.html",
            {
                "section": section,
                "errors": _errors(exc, viewer_language(request, viewer)),
                "back": f"/loyalty#{section}",
            },
            status_code=exc.status,
        )
    return redirect(f"/loyalty?flash={section[:-1]}_created#{section}")


@router.post("/loyalty/tiers", response_class=HTMLResponse)
def add_tier(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.LOYALTY_WRITE)
) -> Response:
    names = {
        lang: _text(form, f"name_{lang}") for lang in ("en", "vi", "hu", "th") if _text(form, f"name_{lang}")
    }
    values = {
        "code": _text(form, "code"),
        "rank": _int(form, "rank"),
        "names": names,
        "threshold": _text(form, "threshold") or "0",
        "multiplier": _text(form, "multiplier") or "1",
    }
    return _configure(request, viewer, "tiers", lambda: create_tier(db, values))


@router.post("/loyalty/rules", response_class=HTMLResponse)
def add_rule(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.LOYALTY_WRITE)
) -> Response:
    categories = [c.strip() for c in _text(form, "categories").split(",") if c.strip()]
    values: dict[str, Any] = {
        "name": _text(form, "name"),
        "kind": _text(form, "kind"),
        "multiplier": _text(form, "multiplier") or "1",
        "points": _int(form, "points", 0),
        "event_type": _text(form, "event_type") or None,
        "conditions": {"categories": categories} if categories else {},
        "limit_per_customer": _int(form, "limit_per_customer"),
    }
    return _configure(request, viewer, "rules", lambda: create_rule(db, values))


@router.post("/loyalty/rewards", response_class=HTMLResponse)
def add_reward(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.LOYALTY_WRITE)
) -> Response:
    values: dict[str, Any] = {
        "kind": _text(form, "kind"),
        "names": {"en": _text(form, "name")} if _text(form, "name") else {},
        "cost_points": _int(form, "cost_points"),
        "stock": _int(form, "stock"),
        "value_amount": _text(form, "value_amount") or None,
        "currency": _text(form, "currency").upper() or None,
        "percent": _text(form, "percent") or None,
        "product_sku": _text(form, "product_sku") or None,
    }
    return _configure(request, viewer, "rewards", lambda: create_reward(db, values))


@router.post("/loyalty/promotions", response_class=HTMLResponse)
def add_promotion(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.LOYALTY_WRITE)
) -> Response:
    values: dict[str, Any] = {
        "name": _text(form, "name"),
        "discount_kind": _text(form, "discount_kind"),
        "amount": _text(form, "amount") or None,
        "currency": _text(form, "currency").upper() or None,
        "percent": _text(form, "percent") or None,
        "usage": _text(form, "usage") or "single_use",
        "max_redemptions": _int(form, "max_redemptions"),
        "stackable": _text(form, "stackable") == "on",
    }
    return _configure(request, viewer, "promotions", lambda: create_promotion(db, values))


@router.post("/loyalty/promotions/{promotion_id}/codes", response_class=HTMLResponse)
def add_codes(
    request: Request,
    promotion_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.LOYALTY_WRITE),
) -> Response:
    count = _int(form, "count", 0) or 0
    prefix = _text(form, "prefix") or None
    try:
        generate_coupons(db, promotion_id, count, prefix=prefix)
    except PatronError as exc:
        return render(
            request,
            "loyalty/form_error.html",
            {
                "section": "promotions",
                "errors": _errors(exc, viewer_language(request, viewer)),
                "back": "/loyalty#promotions",
            },
            status_code=exc.status,
        )
    return redirect("/loyalty?flash=codes_generated#promotions")
