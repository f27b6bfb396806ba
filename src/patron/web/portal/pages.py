"""The customer portal's pages: opening a link, the member's page (balance, expiring points, tier
progress, rewards to redeem, redeemed rewards with their codes, referral link and stats, recent
movements), the paged history, a redeemed reward's code, the language switcher, signing out, and the
referral landing page with its sign-up form."""

from __future__ import annotations

import contextlib
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from babel import Locale
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from patron.core.business import get_business, list_markets
from patron.core.errors import NotFound, PatronError, ValidationFailed
from patron.core.i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    N_,
    babel_locale,
    format_decimal,
    format_money,
    gettext_for,
    ngettext_for,
)
from patron.core.money import Money
from patron.core.settings import get_settings
from patron.customers import CustomerView, get_customer
from patron.loyalty import (
    RewardView,
    expiring_points_of,
    get_account,
    get_redemption,
    get_reward,
    list_entries,
    list_redemptions,
    list_rewards,
    redeem_reward,
    referral_code_for,
    referral_summary,
    reward_name,
    reward_use_counts,
    tier_name,
    tier_progress,
)
from patron.portal import (
    MARKETING_CONSENT_TEXT,
    PortalSession,
    PortalSessionRequired,
    SignUp,
    grant_for_new_customer,
    open_portal_link,
    referrer_given_name,
    sign_up,
    start_portal_session,
)
from patron.web.portal.routing import (
    LANGUAGE_COOKIE_MAX_AGE,
    PORTAL_COOKIE,
    PORTAL_COOKIE_PATH,
    PORTAL_LANGUAGE_COOKIE,
    PortalRoute,
    client_ip,
    redirect,
    render_portal,
    set_portal_cookie,
)

router = APIRouter(route_class=PortalRoute, include_in_schema=False)

HISTORY_PAGE = 20
RECENT_MOVEMENTS = 5
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

ENTRY_LABELS: dict[str, str] = {
    "earn": N_("Points earned"),
    "vest": N_("Points confirmed"),
    "redeem": N_("Reward redeemed"),
    "expire": N_("Points expired"),
    "adjust": N_("Adjustment"),
    "reverse": N_("Returned purchase"),
    "hold": N_("Points reserved"),
    "capture": N_("Points spent"),
    "release": N_("Reservation released"),
    "transfer": N_("Accounts combined"),
    "opening": N_("Opening balance"),
    "forfeit": N_("Points removed"),
    "settle": N_("Points owed settled"),
}
REDEEM_ERRORS: dict[str, str] = {
    "insufficient_points": N_("You do not have enough points for this reward."),
    "reward_unavailable": N_("This reward is no longer available to you."),
    "not_enrolled": N_("You are not a member of the loyalty programme yet."),
    "idempotency_key_reused": N_("This form was already used. Reload the page and try again."),
    "invalid_form": N_("This form has expired. Go back, reload the page and try again."),
}
FIELD_ERRORS: dict[str, str] = {
    "first_name": N_("Enter your first name."),
    "email": N_("Enter a valid email address."),
    "phone": N_("Enter a valid phone number, for example +84 912 345 678."),
    "country": N_("Choose your country."),
    "language": N_("Choose a language."),
}
FIELD_ERROR_OTHER = N_("Please check this field.")


def _portal(request: Request) -> PortalSession:
    portal: PortalSession | None = getattr(request.state, "portal", None)
    if portal is None:
        raise PortalSessionRequired()
    return portal


def _db(request: Request) -> Session:
    session: Session = request.state.db
    return session


def _lang(request: Request) -> str:
    lang: str = request.state.language
    return lang


def _market_for(session: Session, customer: CustomerView) -> str | None:
    """The market of the customer's country (rewards may be limited to markets)."""
    if not customer.country:
        return None
    for market in list_markets(session):
        if market.country == customer.country:
            return market.code
    return None


@dataclass(frozen=True)
class RewardOffer:
    reward: RewardView
    name: str
    description: str
    value: Money | None
    affordable: bool
    missing: int


def _offers(session: Session, customer: CustomerView, available: int, language: str) -> list[RewardOffer]:
    market = _market_for(session, customer)
    used = reward_use_counts(session, customer.id)
    offers = []
    for reward in list_rewards(session, customer_id=customer.id, market=market):
        if reward.limit_per_customer is not None and used.get(reward.id, 0) >= reward.limit_per_customer:
            continue
        value = (
            Money(reward.value_amount, reward.currency)
            if reward.kind == "discount_fixed" and reward.value_amount is not None and reward.currency
            else None
        )
        offers.append(
            RewardOffer(
                reward=reward,
                name=reward_name(reward, language),
                description=reward.descriptions.get(language) or reward.descriptions.get("en", ""),
                value=value,
                affordable=available >= reward.cost_points,
                missing=max(reward.cost_points - available, 0),
            )
        )
    return offers


def _progress_text(session: Session, customer_id: str, language: str) -> dict[str, Any]:
    progress = tier_progress(session, customer_id)
    out: dict[str, Any] = {
        "tier": None if progress.current is None else tier_name(progress.current, language),
        "next": None if progress.next is None else tier_name(progress.next, language),
        "text": None,
        "percent": None,
    }
    if progress.next is None or progress.remaining is None:
        return out
    gettext, ngettext = gettext_for(language), ngettext_for(language)
    if progress.basis == "points":
        remaining = int(progress.remaining)
        text = ngettext("%(remaining)s point to %(tier)s", "%(remaining)s points to %(tier)s", remaining) % {
            "remaining": format_decimal(remaining, language),
            "tier": out["next"],
        }
    else:
        currency = get_business(session).reporting_currency
        text = gettext("%(amount)s more to spend to reach %(tier)s") % {
            "amount": format_money(Money(progress.remaining, currency), language),
            "tier": out["next"],
        }
    threshold = progress.next.threshold
    percent = 100 if threshold <= 0 else int(min(Decimal(100), progress.value * 100 / threshold))
    out.update(text=text, percent=percent)
    return out


def _home(request: Request, *, redeem_error: str | None = None, status_code: int = 200) -> HTMLResponse:
    portal = _portal(request)
    db, language = _db(request), _lang(request)
    customer = get_customer(db, portal.customer_id)
    account = get_account(db, customer.id)
    catalogue = {r.id: r for r in list_rewards(db, include_inactive=True)}
    redeemed = [
        (r, reward_name(catalogue[r.reward_id], language) if r.reward_id in catalogue else "")
        for r in list_redemptions(db, customer.id, limit=50)
        if r.kind == "reward"
    ]
    referral = referral_summary(db, customer.id)
    gettext = gettext_for(language)
    return render_portal(
        request,
        "portal/home.html",
        {
            "customer": customer,
            "account": account,
            "expiring": expiring_points_of(db, customer.id),
            "progress": _progress_text(db, customer.id, language),
            "offers": _offers(db, customer, account.available, language) if account.enrolled else [],
            "redeemed": redeemed,
            "referral": referral,
            "referral_url": f"{get_settings().public_url.rstrip('/')}{referral.link}",
            "recent": list_entries(db, customer.id, limit=RECENT_MOVEMENTS).items,
            "entry_labels": ENTRY_LABELS,
            "redeem_error": None if redeem_error is None else gettext(redeem_error),
            "new_key": _new_key,
        },
        status_code=status_code,
    )


def _new_key() -> str:
    return secrets.token_urlsafe(18)


@router.get("/portal/t/{token}", response_class=HTMLResponse)
def open_link(request: Request, token: str) -> Response:
    """Check the link, start a portal session and drop the token from the address bar."""
    db = _db(request)
    grant = open_portal_link(db, token)
    cookie, _ = start_portal_session(db, grant)
    with contextlib.suppress(PatronError):
        referral_code_for(db, grant.customer_id)  # written now, so the (read-only) pages find it
    response = redirect("/portal")
    set_portal_cookie(
        response,
        PORTAL_COOKIE,
        cookie,
        max_age=get_settings().portal_session_seconds,
        path=PORTAL_COOKIE_PATH,
    )
    return response


@router.get("/portal", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return _home(request)


@router.get("/portal/history", response_class=HTMLResponse)
def history(request: Request, cursor: str | None = None) -> HTMLResponse:
    portal = _portal(request)
    db = _db(request)
    try:
        page = list_entries(db, portal.customer_id, cursor=cursor, limit=HISTORY_PAGE)
    except ValidationFailed as exc:
        raise NotFound("no such page") from exc
    return render_portal(
        request,
        "portal/history.html",
        {
            "entries": page.items,
            "next_cursor": page.next_cursor,
            "first_page": cursor is None,
            "entry_labels": ENTRY_LABELS,
        },
    )


def _form(request: Request) -> FormData:
    form: FormData = request.state.form
    return form


@router.post("/portal/rewards/{reward_id}/redeem", response_class=HTMLResponse)
def redeem(request: Request, reward_id: str) -> Response:
    """Redeem once per form: the hidden ``idempotency_key`` makes a double submit replay the first
    redemption (same code) instead of spending twice."""
    portal = _portal(request)
    db = _db(request)
    key = str(_form(request).get("idempotency_key") or "")
    if not IDEMPOTENCY_KEY.match(key):
        return _home(request, redeem_error=REDEEM_ERRORS["invalid_form"], status_code=422)
    customer = get_customer(db, portal.customer_id)
    try:
        redemption = redeem_reward(
            db,
            customer.id,
            reward_id,
            market_code=_market_for(db, customer),
            key=f"portal:{customer.id}:{key}",
        )
    except PatronError as exc:
        if exc.code not in REDEEM_ERRORS:
            raise
        db.rollback()  # nothing of the refused attempt stays; the page reads the balances afresh
        return _home(request, redeem_error=REDEEM_ERRORS[exc.code], status_code=exc.status)
    return redirect(f"/portal/redemptions/{redemption.id}")


@router.get("/portal/redemptions/{redemption_id}", response_class=HTMLResponse)
def redemption_page(request: Request, redemption_id: str) -> HTMLResponse:
    portal = _portal(request)
    db, language = _db(request), _lang(request)
    try:
        found = get_redemption(db, redemption_id)
    except PatronError as exc:  # unknown (or malformed) id
        raise NotFound("no such redemption") from exc
    if found.customer_id != portal.customer_id or found.kind != "reward" or found.reward_id is None:
        raise NotFound("no such redemption")  # another customer's: the same answer as an unknown id
    reward = get_reward(db, found.reward_id)
    return render_portal(
        request,
        "portal/redemption.html",
        {
            "redemption": found,
            "reward_name": reward_name(reward, language),
            "account": get_account(db, portal.customer_id),
        },
    )


@router.post("/portal/logout", response_class=HTMLResponse)
def logout(request: Request) -> Response:
    response = redirect("/portal/signed-out")
    response.delete_cookie(PORTAL_COOKIE, path=PORTAL_COOKIE_PATH)
    return response


@router.get("/portal/signed-out", response_class=HTMLResponse)
def signed_out(request: Request) -> HTMLResponse:
    return render_portal(request, "portal/signed_out.html")


def _safe_back(value: str) -> str:
    if value.startswith(("/portal", "/r/")) and not value.startswith("//") and "\\" not in value:
        return value
    return "/portal"


@router.post("/portal-language", response_class=HTMLResponse)
def switch_language(request: Request) -> Response:
    """Remember the chosen language in a cookie (for the portal and the referral pages)."""
    form = _form(request)
    language = str(form.get("language") or "")
    response = redirect(_safe_back(str(form.get("next") or "")))
    if language in LANGUAGES:
        set_portal_cookie(
            response, PORTAL_LANGUAGE_COOKIE, language, max_age=LANGUAGE_COOKIE_MAX_AGE, http_only=False
        )
    return response


# --- the referral landing page ---------------------------------------------------------------------

SIGNUP_FIELDS = ("first_name", "last_name", "email", "phone", "country", "language")


def _countries(session: Session, language: str) -> list[tuple[str, str]]:
    codes = sorted({m.country for m in list_markets(session)} or {"VN", "HU", "TH"})
    names = Locale.parse(babel_locale(language)).territories
    return [(code, str(names.get(code, code))) for code in codes]


def _landing(
    request: Request,
    code: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    db, language = _db(request), _lang(request)
    referrer = referrer_given_name(db, code)
    countries = _countries(db, language)
    defaults = dict.fromkeys(SIGNUP_FIELDS, "")
    defaults["language"] = language
    defaults["country"] = {"vi": "VN", "hu": "HU", "th": "TH"}.get(language, "")
    return render_portal(
        request,
        "portal/landing.html",
        {
            "code": code,
            "referrer": referrer,
            "values": {**defaults, **(values or {})},
            "errors": errors or {},
            "countries": countries,
            "language_names": LANGUAGE_NAMES,
            "consent_text": MARKETING_CONSENT_TEXT,
        },
        status_code=status_code,
    )


@router.get("/r/{code}", response_class=HTMLResponse)
def landing(request: Request, code: str) -> HTMLResponse:
    return _landing(request, code)


@router.post("/r/{code}", response_class=HTMLResponse)
def join(request: Request, code: str) -> Response:
    """Sign up (see ``patron.portal.signup``): a new customer goes straight into their portal; an
    email we already know gets the neutral confirmation page and no session."""
    form = _form(request)
    values = {k: str(form.get(k) or "").strip() for k in SIGNUP_FIELDS}
    marketing = form.get("marketing") == "yes"
    user_agent = request.headers.get("User-Agent", "")
    ip = client_ip(request)
    db, language = _db(request), _lang(request)
    gettext = gettext_for(language)

    def message_for(field: str) -> str:
        return gettext(FIELD_ERRORS.get(field, FIELD_ERROR_OTHER))

    errors: dict[str, str] = {}
    if not values["first_name"] or len(values["first_name"]) > 100:
        errors["first_name"] = message_for("first_name")
    if not EMAIL.match(values["email"]) or len(values["email"]) > 254:
        errors["email"] = message_for("email")
    if values["language"] not in LANGUAGES:
        errors["language"] = message_for("language")
    if values["country"] and values["country"] not in {c for c, _ in _countries(db, language)}:
        errors["country"] = message_for("country")
    if errors:
        return _landing(request, code, values=values, errors=errors, status_code=422)
    try:
        result = sign_up(
            db,
            SignUp(
                first_name=values["first_name"],
                last_name=values["last_name"],
                email=values["email"],
                phone=values["phone"] or None,
                country=values["country"] or None,
                language=values["language"],
                marketing=marketing,
                referral_code=code,
                ip=ip,
                user_agent=user_agent,
                # the proof records the wording as the visitor read it, in the page's language
                consent_text=gettext(MARKETING_CONSENT_TEXT),
                consent_language=language,
            ),
        )
    except ValidationFailed as exc:
        db.rollback()
        for err in exc.errors:
            loc = [p for p in err.get("loc", []) if isinstance(p, str) and p != "body"]
            field = loc[-1] if loc else ""
            field = "phone" if field.startswith("phone") else field
            errors[field if field in SIGNUP_FIELDS else "email"] = message_for(field)
        return _landing(request, code, values=values, errors=errors, status_code=422)
    if result.customer_id is None:
        return render_portal(request, "portal/signup_done.html")
    referral_code_for(db, result.customer_id)
    cookie, _ = start_portal_session(db, grant_for_new_customer(db, result.customer_id))
    response = redirect("/portal?welcome=1")
    set_portal_cookie(
        response,
        PORTAL_COOKIE,
        cookie,
        max_age=get_settings().portal_session_seconds,
        path=PORTAL_COOKIE_PATH,
    )
    if values["language"] != language:
        set_portal_cookie(
            response,
            PORTAL_LANGUAGE_COOKIE,
            values["language"],
            max_age=LANGUAGE_COOKIE_MAX_AGE,
            http_only=False,
        )
    return response


# Registered last: any other /portal/... address is the portal's translated 404 page (never JSON, and
# never the problem handler, which would echo the path).
@router.api_route("/portal/{rest:path}", methods=["GET", "POST"], response_class=HTMLResponse)
def unknown_page(request: Request, rest: str) -> Response:
    raise NotFound("no such page")
