"""Loyalty configuration in the console: a page per tier, earning rule, reward, promotion and market
to edit it (with the version read, so a concurrent change is refused with the 412 page instead of
being overwritten), deactivate or delete it (what the domain supports: tiers and rules can be
deleted, rewards and promotions are deactivated — the ledger keeps its history either way), a
promotion's codes with their use and a CSV export, and the reconciliation of balances against the
ledger. Every change goes through the same domain commands as the API (validated and audited there).

Mounted by :mod:`patron.web.ui.loyalty` (its router includes this one)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from starlette.datastructures import FormData

from patron.auth import Perm, Principal
from patron.core.business import get_business, list_markets
from patron.core.errors import NotFound, PatronError, ValidationFailed
from patron.core.i18n import LANGUAGE_NAMES, LANGUAGES, N_, gettext_for
from patron.loyalty import (
    adjust_points,
    delete_rule,
    delete_tier,
    get_market_settings,
    get_promotion,
    get_reward,
    get_rule,
    get_tier,
    iter_coupons,
    list_coupons,
    list_market_settings,
    list_tiers,
    put_market_settings,
    reconcile,
    reward_name,
    tier_name,
    update_promotion,
    update_reward,
    update_rule,
    update_tier,
)
from patron.loyalty.contracts import REWARD_KINDS
from patron.web.ui.base import (
    Allowed,
    ConsoleRoute,
    Form,
    UiSession,
    error_message,
    redirect,
    register_flash,
    render,
    viewer_language,
)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

register_flash("tier_saved", N_("Tier saved."))
register_flash("tier_deleted", N_("Tier deleted; its members were re-evaluated."))
register_flash("rule_saved", N_("Earning rule saved."))
register_flash("rule_deleted", N_("Earning rule deleted."))
register_flash("reward_saved", N_("Reward saved."))
register_flash("promotion_saved", N_("Promotion saved."))
register_flash("market_saved", N_("Market earning settings saved."))

STALE = N_(
    "Someone else changed this record after you opened it. The form shows your changes and the "
    "record's new version: check them and save again to overwrite, or reload the page."
)
NOT_A_NUMBER = N_("Enter a whole number.")
NOT_A_DECIMAL = N_("Enter a number, for example 1.5.")
NOT_A_DATE = N_("Enter a date as YYYY-MM-DD.")

# Domain validation error types, as the console says them (the API keeps the English detail).
FIELD_MESSAGES: dict[str, str] = {
    "out_of_range": N_("This value is out of range."),
    "invalid": N_("This value is not valid."),
    "invalid_choice": N_("Choose one of the options."),
    "invalid_currency": N_("Enter a known currency code, for example VND."),
    "invalid_amount": N_("Enter a positive amount."),
    "invalid_window": N_("The end must be after the start."),
    "invalid_event_type": N_(
        "A bonus needs an event type (lower-case, for example signup); a multiplier has none."
    ),
    "invalid_list": N_("Enter codes separated by commas."),
    "missing": N_("This value is required."),
    "unknown_condition": N_("This value is not valid."),
    "naive_datetime": N_("Enter a date as YYYY-MM-DD."),
    "invalid_datetime": N_("Enter a date as YYYY-MM-DD."),
}
# Refusals by error code, translated.
CODE_MESSAGES: dict[str, str] = {
    "duplicate_tier": N_("Another tier already has this code or rank."),
    "etag_mismatch": STALE,
    "market_not_found": N_("This market does not exist."),
    "tier_not_found": N_("The page or record you asked for does not exist."),
}
KIND_LABELS: dict[str, str] = {
    "discount_fixed": N_("Fixed discount"),
    "discount_percent": N_("Percentage discount"),
    "free_product": N_("Free product"),
    "free_shipping": N_("Free shipping"),
    "gift": N_("Gift"),
    "event": N_("Event invitation"),
    "content": N_("Premium content"),
    "custom": N_("Other"),
}
#: a console form's idempotency key (``new_id()`` when the page was rendered) is at most this long
MAX_FORM_KEY = 100
FORM_USED = N_("This form was already used. Reload the page and try again.")
FORM_EXPIRED = N_("This form has expired. Go back, reload the page and try again.")
COUPON_STATUS_LABELS: dict[str, str] = {
    "unused": N_("Not used"),
    "in_use": N_("Partly used"),
    "used_up": N_("Used up"),
}


# --- form helpers -----------------------------------------------------------------------------------


def _text(form: FormData, name: str) -> str:
    raw = form.get(name)
    return raw.strip() if isinstance(raw, str) else ""


def _list(form: FormData, name: str) -> list[str]:
    """A comma-separated text box, or repeated checkboxes of the same name."""
    out: list[str] = []
    for raw in form.getlist(name):
        if isinstance(raw, str):
            out += [part.strip() for part in raw.split(",") if part.strip()]
    return out


class _Parser:
    """Reads typed values from a form, collecting translated field errors instead of raising."""

    def __init__(self, form: FormData, language: str, zone: str) -> None:
        self.form = form
        self.gettext = gettext_for(language)
        self.zone = ZoneInfo(zone)
        self.errors: dict[str, list[str]] = {}

    def fail(self, name: str, msgid: str) -> None:
        self.errors.setdefault(name, []).append(self.gettext(msgid))

    def int(self, name: str, *, required: bool = False) -> int | None:
        raw = _text(self.form, name)
        if not raw:
            if required:
                self.fail(name, NOT_A_NUMBER)
            return None
        try:
            return int(raw)
        except ValueError:
            self.fail(name, NOT_A_NUMBER)
            return None

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        raw = _text(self.form, name).replace(" ", "")
        if not raw:
            if required:
                self.fail(name, NOT_A_DECIMAL)
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            self.fail(name, NOT_A_DECIMAL)
            return None
        if not value.is_finite():
            self.fail(name, NOT_A_DECIMAL)
            return None
        return value

    def day(self, name: str) -> datetime | None:
        """A date box as the start of that day in the business time zone (aware)."""
        raw = _text(self.form, name)
        if not raw:
            return None
        try:
            return datetime.combine(date.fromisoformat(raw), time(0), self.zone)
        except ValueError:
            self.fail(name, NOT_A_DATE)
            return None


T = TypeVar("T")


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


def _plain(value: Decimal | None) -> str:
    """A stored decimal as a form shows it: ``100.0000`` → ``100``, ``0.1000`` → ``0.1``."""
    if value is None:
        return ""
    return format(value.normalize(), "f")


def form_version(form: FormData) -> int | None:
    raw = _text(form, "version")
    return int(raw) if raw.isdigit() else None


def _zone(db: Session) -> str:
    return get_business(db).time_zone


def _day_value(value: datetime | str | None, zone: str) -> str:
    """A stored instant as the date box shows it (the business time zone)."""
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(zone)).date().isoformat()


def domain_errors(exc: PatronError, language: str) -> dict[str, list[str]]:
    """A refusal as translated messages by form field (``""``: about the whole form)."""
    gettext = gettext_for(language)
    if isinstance(exc, ValidationFailed) and any(e.get("loc") for e in exc.errors):
        out: dict[str, list[str]] = {}
        for err in exc.errors:
            loc = [p for p in err.get("loc", []) if isinstance(p, str) and p not in {"body", "conditions"}]
            msgid = FIELD_MESSAGES.get(str(err.get("type")), N_("This value is not valid."))
            out.setdefault(loc[-1] if loc else "", []).append(gettext(msgid))
        return out
    known = CODE_MESSAGES.get(exc.code)
    return {"": [gettext(known) if known else error_message(exc, language)]}


def console_key(viewer: Principal, key: str) -> str | None:
    """The idempotency key of a console form, scoped to the signed-in user as the API scopes a key
    to its token (two users' forms never share a key); ``None`` for a post without one."""
    return f"{viewer.scope}:console:{key}" if key else None


class AdjustRefused(Exception):
    """A console adjustment the form or the ledger refused: ``errors`` are ready to show, unless
    ``exc`` (the ledger's refusal) is set for the page to phrase in its own words."""

    def __init__(
        self, status: int, errors: dict[str, list[str]] | None = None, exc: PatronError | None = None
    ) -> None:
        super().__init__(status)
        self.status, self.errors, self.exc = status, errors or {}, exc


def adjust_from_form(
    db: Session, viewer: Principal, customer_id: str, values: dict[str, str], key: str, language: str
) -> None:
    """The console's manual adjustment (member page and customer card): the key drawn when the page
    was rendered makes a double submit adjust once (a post without one, a script, is not deduplicated,
    as in the API). Raises :class:`AdjustRefused`."""
    gettext = gettext_for(language)
    if len(key) > MAX_FORM_KEY:
        raise AdjustRefused(422, {"": [gettext(FORM_EXPIRED)]})
    try:
        points = int(values["points"])
    except ValueError:
        raise AdjustRefused(422, {"points": [gettext(N_("Enter a whole number."))]}) from None
    try:
        adjust_points(db, customer_id, points, reason=values["reason"], key=console_key(viewer, key))
    except PatronError as exc:
        raise AdjustRefused(422 if exc.status == 422 else 409, exc=exc) from exc


def stale_errors(language: str) -> dict[str, list[str]]:
    return {"": [gettext_for(language)(STALE)]}


def _save(
    request: Request,
    viewer: Principal,
    db: Session,
    *,
    current_version: int,
    form: FormData,
    parsed: _Parser,
    command: Callable[[], object],
    page: Callable[[dict[str, list[str]], int | None, int], HTMLResponse],
    done: str,
) -> Response:
    """The edit flow every page shares: field errors → 422; a stale version → 412 with the record's
    new version in the form; a domain refusal → its status with the translated reasons; else the
    command runs (validated and audited by the domain) and the browser is sent to ``done``."""
    language = viewer_language(request, viewer)
    if form_version(form) != current_version:
        return page(stale_errors(language), current_version, 412)
    if parsed.errors:
        return page(parsed.errors, current_version, 422)
    try:
        command()
    except StaleDataError:  # changed by a concurrent transaction between our read and our UPDATE
        db.rollback()
        return page(stale_errors(language), None, 412)
    except PatronError as exc:
        db.rollback()
        return page(domain_errors(exc, language), current_version, exc.status if exc.status != 400 else 422)
    return redirect(done)


def _options(pairs: Mapping[str, str], language: str) -> list[tuple[str, str]]:
    gettext = gettext_for(language)
    return [(k, gettext(v)) for k, v in pairs.items()]


def _language_rows(
    names: Mapping[str, str], descriptions: Mapping[str, str] | None = None
) -> list[dict[str, str]]:
    return [
        {
            "code": lang,
            "label": LANGUAGE_NAMES[lang],
            "name": names.get(lang, ""),
            "description": (descriptions or {}).get(lang, ""),
        }
        for lang in LANGUAGES
    ]


def _translations(form: FormData, prefix: str) -> dict[str, str]:
    return {lang: _text(form, f"{prefix}_{lang}") for lang in LANGUAGES if _text(form, f"{prefix}_{lang}")}


# --- tiers ------------------------------------------------------------------------------------------


def _tier_page(
    request: Request,
    db: Session,
    viewer: Principal,
    code: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    version: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    tier = get_tier(db, code)
    language = viewer_language(request, viewer)
    if values is None:
        values = {
            "rank": tier.rank,
            "threshold": _plain(tier.threshold),
            "multiplier": _plain(tier.multiplier),
            "perks": "\n".join(tier.perks),
            **{f"name_{k}": v for k, v in tier.names.items()},
        }
    return render(
        request,
        "loyalty/tier.html",
        {
            "tier": tier,
            "title": tier_name(tier, language),
            "values": values,
            "languages": _language_rows({k[5:]: str(v) for k, v in values.items() if k.startswith("name_")}),
            "errors": errors or {},
            "version": tier.version if version is None else version,
            "can_edit": viewer.can(Perm.LOYALTY_WRITE),
        },
        status_code=status_code,
    )


@router.get("/loyalty/tiers/{code}", response_class=HTMLResponse)
def tier_page(
    request: Request, code: str, db: UiSession, viewer: Principal = Allowed(Perm.LOYALTY_READ)
) -> HTMLResponse:
    return _tier_page(request, db, viewer, code)


@router.post("/loyalty/tiers/{code}", response_class=HTMLResponse)
def save_tier(
    request: Request, code: str, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.LOYALTY_WRITE)
) -> Response:
    current = get_tier(db, code)
    parsed = _Parser(form, viewer_language(request, viewer), _zone(db))
    values: dict[str, Any] = {
        k: _text(form, k)
        for k in ("rank", "threshold", "multiplier", "perks", *(f"name_{x}" for x in LANGUAGES))
    }
    changes = {
        "rank": parsed.int("rank", required=True),
        "threshold": parsed.decimal("threshold", required=True),
        "multiplier": _or(parsed.decimal("multiplier"), Decimal(1)),
        "names": _translations(form, "name"),
        "perks": [line.strip() for line in values["perks"].splitlines() if line.strip()],
    }
    return _save(
        request,
        viewer,
        db,
        current_version=current.version,
        form=form,
        parsed=parsed,
        command=lambda: update_tier(db, code, changes),
        page=lambda errors, version, status: _tier_page(
            request, db, viewer, code, values=values, errors=errors, version=version, status_code=status
        ),
        done=f"/loyalty/tiers/{code}?flash=tier_saved",
    )


@router.post("/loyalty/tiers/{code}/delete", response_class=HTMLResponse)
def remove_tier(
    request: Request, code: str, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.LOYALTY_WRITE)
) -> Response:
    current = get_tier(db, code)
    parsed = _Parser(form, viewer_language(request, viewer), _zone(db))
    return _save(
        request,
        viewer,
        db,
        current_version=current.version,
        form=form,
        parsed=parsed,
        command=lambda: delete_tier(db, code),
        page=lambda errors, version, status: _tier_page(
            request, db, viewer, code, errors=errors, version=version, status_code=status
        ),
        done="/loyalty?flash=tier_deleted#tiers",
    )


# --- earning rules ----------------------------------------------------------------------------------

RULE_LIST_FIELDS = ("categories", "skus", "channels")


def _rule_values(rule: Any, zone: str) -> dict[str, Any]:
    c = rule.conditions
    return {
        "name": rule.name,
        "kind": rule.kind,
        "multiplier": _plain(rule.multiplier),
        "points": rule.points,
        "event_type": rule.event_type or "",
        "limit_per_customer": "" if rule.limit_per_customer is None else rule.limit_per_customer,
        "active": rule.active,
        **{k: ", ".join(c.get(k, [])) for k in RULE_LIST_FIELDS},
        "tiers": list(c.get("tiers", [])),
        "markets": list(c.get("markets", [])),
        "starts_on": _day_value(c.get("starts_at"), zone),
        "ends_on": _day_value(c.get("ends_at"), zone),
    }


def _rule_page(
    request: Request,
    db: Session,
    viewer: Principal,
    rule_id: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    version: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rule = get_rule(db, rule_id)
    language = viewer_language(request, viewer)
    return render(
        request,
        "loyalty/rule.html",
        {
            "rule": rule,
            "values": values or _rule_values(rule, _zone(db)),
            "errors": errors or {},
            "version": rule.version if version is None else version,
            "kinds": [
                ("multiplier", gettext_for(language)(N_("Multiplier on orders"))),
                ("bonus", gettext_for(language)(N_("Fixed bonus for an event"))),
            ],
            "tiers": [(t.code, tier_name(t, language)) for t in list_tiers(db)],
            "markets": [(m.code, m.name) for m in list_markets(db)],
            "can_edit": viewer.can(Perm.LOYALTY_WRITE),
        },
        status_code=status_code,
    )


@router.get("/loyalty/rules/{rule_id}", response_class=HTMLResponse)
def rule_page(
    request: Request, rule_id: str, db: UiSession, viewer: Principal = Allowed(Perm.LOYALTY_READ)
) -> HTMLResponse:
    return _rule_page(request, db, viewer, rule_id)


def _rule_changes(form: FormData, parsed: _Parser, *, active: bool) -> dict[str, Any]:
    conditions: dict[str, Any] = {k: _list(form, k) for k in (*RULE_LIST_FIELDS, "tiers", "markets")}
    conditions = {k: v for k, v in conditions.items() if v}
    starts, ends = parsed.day("starts_on"), parsed.day("ends_on")
    if starts is not None:
        conditions["starts_at"] = starts.isoformat()
    if ends is not None:
        conditions["ends_at"] = ends.isoformat()
    kind = _text(form, "kind")
    return {
        "name": _text(form, "name"),
        "kind": kind,
        "multiplier": _or(parsed.decimal("multiplier"), Decimal(1)),
        "points": _or(parsed.int("points"), 0),
        "event_type": (_text(form, "event_type") or None) if kind == "bonus" else None,
        "limit_per_customer": parsed.int("limit_per_customer"),
        "conditions": conditions,
        "active": active,
    }


def _rule_form_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {
        k: _text(form, k)
        for k in (
            "name",
            "kind",
            "multiplier",
            "points",
            "event_type",
            "limit_per_customer",
            "starts_on",
            "ends_on",
        )
    }
    values.update({k: ", ".join(_list(form, k)) for k in RULE_LIST_FIELDS})
    values.update({k: _list(form, k) for k in ("tiers", "markets")})
    values["active"] = _text(form, "active") == "on"
    return values


@router.post("/loyalty/rules/{rule_id}", response_class=HTMLResponse)
def save_rule(
    request: Request, rule_id: str, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.LOYALTY_WRITE)
) -> Response:
    current = get_rule(db, rule_id)
    parsed = _Parser(form, viewer_language(request, viewer), _zone(db))
    values = _rule_form_values(form)
    changes = _rule_changes(form, parsed, active=values["active"])
    return _save(
        request,
        viewer,
        db,
        current_version=current.version,
        form=form,
        parsed=parsed,
        command=lambda: update_rule(db, rule_id, changes),
        page=lambda errors, version, status: _rule_page(
            request, db, viewer, rule_id, values=values, errors=errors, version=version, status_code=status
        ),
        done=f"/loyalty/rules/{rule_id}?flash=rule_saved",
    )


@router.post("/loyalty/rules/{rule_id}/active", response_class=HTMLResponse)
def toggle_rule(
    request: Request, rule_id: str, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.LOYALTY_WRITE)
) -> Response:
    """Deactivate (or reactivate) a rule: it stops (or starts again) matching; nothing else changes."""
    current = get_rule(db, rule_id)
    parsed = _Parser(form, viewer_language(request, viewer), _zone(db))
    changes = {
        k: getattr(current, k)
        for k in ("name", "kind", "multiplier", "points", "event_type", "conditions", "limit_per_customer")
    }
    changes["active"] = _text(form, "active") == "1"
    return _save(
        request,
        viewer,
        db,
        current_version=current.version,
        form=form,
        parsed=parsed,
        command=lambda: update_rule(db, rule_id, changes),
        page=lambda errors, version, status: _rule_page(
            request, db, viewer, rule_id, errors=errors, version=version, status_code=status
        ),
        done=f"/loyalty/rules/{rule_id}?flash=rule_saved",
    )


@router.post("/loyalty/rules/{rule_id}/delete", response_class=HTMLResponse)
def remove_rule(
    request: Request, rule_id: str, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.LOYALTY_WRITE)
) -> Response:
    current = get_rule(db, rule_id)
    parsed = _Parser(form, viewer_language(request, viewer), _zone(db))
    return _save(
        request,
        viewer,
        db,
        current_version=current.version,
        form=form,
        parsed=parsed,
        command=lambda: delete_rule(db, rule_id),
        page=lambda errors, version, status: _rule_page(
            request, db, viewer, rule_id, errors=errors, version=version, status_code=status
        ),
        done="/loyalty?flash=rule_deleted#rules",
    )


# --- rewards ----------------------------------------------------------------------------------------


def _reward_values(reward: Any) -> dict[str, Any]:
    return {
        "kind": reward.kind,
        "cost_points": reward.cost_points,
        "stock": "" if reward.stock is None else reward.stock,
        "limit_per_customer": "" if reward.limit_per_customer is None else reward.limit_per_customer,
        "value_amount": _plain(reward.value_amount),
        "currency": reward.currency or "",
        "percent": _plain(reward.percent),
        "product_sku": reward.product_sku or "",
        "tiers": list(reward.tiers),
        "markets": list(reward.markets),
        "active": reward.active,
        **{f"name_{k}": v for k, v in reward.names.items()},
        **{f"description_{k}": v for k, v in reward.descriptions.items()},
    }


def _reward_page(
    request: Request,
    db: Session,
    viewer: Principal,
    reward_id: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    version: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    reward = get_reward(db, reward_id)
    language = viewer_language(request, viewer)
    values = values or _reward_values(reward)
    return render(
        request,
        "loyalty/reward.html",
        {
            "reward": reward,
            "title": reward_name(reward, language),
            "values": values,
            "languages": _language_rows(
                {lang: str(values.get(f"name_{lang}", "")) for lang in LANGUAGES},
                {lang: str(values.get(f"description_{lang}", "")) for lang in LANGUAGES},
            ),
            "errors": errors or {},
            "version": reward.version if version is None else version,
            "kinds": [(k, gettext_for(language)(KIND_LABELS[k])) for k in REWARD_KINDS],
            "tiers": [(t.code, tier_name(t, language)) for t in list_tiers(db)],
            "markets": [(m.code, m.name) for m in list_markets(db)],
            "can_edit": viewer.can(Perm.LOYALTY_WRITE),
        },
        status_code=status_code,
    )


@router.get("/loyalty/rewards/{reward_id}", response_class=HTMLResponse)
def reward_page(
    request: Request, reward_id: str, db: UiSession, viewer: Principal = Allowed(Perm.LOYALTY_READ)
) -> HTMLResponse:
    return _reward_page(request, db, viewer, reward_id)


@router.post("/loyalty/rewards/{reward_id}", response_class=HTMLResponse)
def save_reward(
    request: Request,
    reward_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.LOYALTY_WRITE),
) -> Response:
    current = get_reward(db, reward_id)
    parsed = _Parser(form, viewer_language(request, viewer), _zone(db))
    values: dict[str, Any] = {
        k: _text(form, k)
        for k in (
            "kind",
            "cost_points",
            "stock",
            "limit_per_customer",
            "value_amount",
            "currency",
            "percent",
            "product_sku",
            *(f"name_{x}" for x in LANGUAGES),
            *(f"description_{x}" for x in LANGUAGES),
        )
    }
    values.update({k: _list(form, k) for k in ("tiers", "markets")})
    values["active"] = _text(form, "active") == "on"
    kind = values["kind"]
    changes: dict[str, Any] = {
        "kind": kind,
        "names": _translations(form, "name"),
        "descriptions": _translations(form, "description"),
        "cost_points": parsed.int("cost_points", required=True),
        "stock": parsed.int("stock"),
        "limit_per_customer": parsed.int("limit_per_customer"),
        "value_amount": parsed.decimal("value_amount") if kind == "discount_fixed" else None,
        "currency": (values["currency"].upper() or None) if kind == "discount_fixed" else None,
        "percent": parsed.decimal("percent") if kind == "discount_percent" else None,
        "product_sku": (values["product_sku"] or None) if kind == "free_product" else None,
        "tiers": values["tiers"],
        "markets": values["markets"],
        "active": values["active"],
    }
    return _save(
        request,
        viewer,
        db,
        current_version=current.version,
        form=form,
        parsed=parsed,
        command=lambda: update_reward(db, reward_id, changes),
        page=lambda errors, version, status: _reward_page(
            request, db, viewer, reward_id, values=values, errors=errors, version=version, status_code=status
        ),
        done=f"/loyalty/rewards/{reward_id}?flash=reward_saved",
    )


def _reward_input(view: Any) -> dict[str, Any]:
    return {
        k: getattr(view, k)
        for k in (
            "kind",
            "names",
            "descriptions",
            "cost_points",
            "stock",
            "limit_per_customer",
            "value_amount",
            "currency",
            "percent",
            "product_sku",
            "tiers",
            "markets",
        )
    }


@router.post("/loyalty/rewards/{reward_id}/active", response_class=HTMLResponse)
def toggle_reward(
    request: Request,
    reward_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.LOYALTY_WRITE),
) -> Response:
    """Withdraw a reward from the catalogue (or offer it again); its redemptions are kept."""
    current = get_reward(db, reward_id)
    parsed = _Parser(form, viewer_language(request, viewer), _zone(db))
    changes = {**_reward_input(current), "active": _text(form, "active") == "1"}
    return _save(
        request,
        viewer,
        db,
        current_version=current.version,
        form=form,
        parsed=parsed,
        command=lambda: update_reward(db, reward_id, changes),
        page=lambda errors, version, status: _reward_page(
            request, db, viewer, reward_id, errors=errors, version=version, status_code=status
        ),
        done=f"/loyalty/rewards/{reward_id}?flash=reward_saved",
    )


# --- promotions and their codes ----------------------------------------------------------------------


def _promotion_values(promotion: Any, zone: str) -> dict[str, Any]:
    return {
        "name": promotion.name,
        "discount_kind": promotion.discount_kind,
        "amount": _plain(promotion.amount),
        "currency": promotion.currency or "",
        "percent": _plain(promotion.percent),
        "min_spend": "\n".join(f"{c} {_plain(a)}" for c, a in sorted(promotion.min_spend.items())),
        "markets": list(promotion.markets),
        "usage": promotion.usage,
        "max_redemptions": "" if promotion.max_redemptions is None else promotion.max_redemptions,
        "limit_per_customer": "" if promotion.limit_per_customer is None else promotion.limit_per_customer,
        "stackable": promotion.stackable,
        "starts_on": _day_value(promotion.starts_at, zone),
        "expires_on": _day_value(promotion.expires_at, zone),
        "active": promotion.active,
    }


def coupon_status(redemptions: int, max_redemptions: int | None) -> str:
    if redemptions <= 0:
        return "unused"
    if max_redemptions is not None and redemptions >= max_redemptions:
        return "used_up"
    return "in_use"


def _promotion_page(
    request: Request,
    db: Session,
    viewer: Principal,
    promotion_id: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    version: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    promotion = get_promotion(db, promotion_id)
    language = viewer_language(request, viewer)
    cursor = request.query_params.get("cursor") or None
    page = list_coupons(db, promotion_id, cursor=cursor, limit=100)
    gettext = gettext_for(language)
    codes = [
        {
            "code": code,
            "redemptions": used,
            "customer_id": owner,
            "status": (status := coupon_status(used, promotion.max_redemptions)),
            "status_label": gettext(COUPON_STATUS_LABELS[status]),
        }
        for code, used, owner in page.items
    ]
    return render(
        request,
        "loyalty/promotion.html",
        {
            "promotion": promotion,
            "values": values or _promotion_values(promotion, _zone(db)),
            "errors": errors or {},
            "version": promotion.version if version is None else version,
            "markets": [(m.code, m.name) for m in list_markets(db)],
            "codes": codes,
            "next_cursor": page.next_cursor,
            "cursor": cursor,
            "can_edit": viewer.can(Perm.LOYALTY_WRITE),
        },
        status_code=status_code,
    )


@router.get("/loyalty/promotions/{promotion_id}", response_class=HTMLResponse)
def promotion_page(
    request: Request, promotion_id: str, db: UiSession, viewer: Principal = Allowed(Perm.LOYALTY_READ)
) -> HTMLResponse:
    return _promotion_page(request, db, viewer, promotion_id)


def _min_spend(parsed: _Parser, raw: str) -> dict[str, str]:
    """``VND 200000`` per line (or comma-separated) → ``{"VND": "200000"}``."""
    out: dict[str, str] = {}
    for part in raw.replace(",", "\n").splitlines():
        bits = part.split()
        if not bits:
            continue
        if len(bits) != 2:
            parsed.fail("min_spend", N_("Write one currency and amount per line, for example VND 200000."))
            continue
        out[bits[0].upper()] = bits[1]
    return out


@router.post("/loyalty/promotions/{promotion_id}", response_class=HTMLResponse)
def save_promotion(
    request: Request,
    promotion_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.LOYALTY_WRITE),
) -> Response:
    current = get_promotion(db, promotion_id)
    parsed = _Parser(form, viewer_language(request, viewer), _zone(db))
    values: dict[str, Any] = {
        k: _text(form, k)
        for k in (
            "name",
            "discount_kind",
            "amount",
            "currency",
            "percent",
            "min_spend",
            "usage",
            "max_redemptions",
            "limit_per_customer",
            "starts_on",
            "expires_on",
        )
    }
    values["markets"] = _list(form, "markets")
    values["stackable"] = _text(form, "stackable") == "on"
    values["active"] = _text(form, "active") == "on"
    kind = values["discount_kind"]
    starts, expires = parsed.day("starts_on"), parsed.day("expires_on")
    changes: dict[str, Any] = {
        "name": values["name"],
        "discount_kind": kind,
        "amount": values["amount"] or None,
        "currency": values["currency"].upper() or None,
        "percent": values["percent"] or None,
        "min_spend": _min_spend(parsed, values["min_spend"]),
        "markets": values["markets"],
        "usage": values["usage"] or "single_use",
        "max_redemptions": parsed.int("max_redemptions"),
        "limit_per_customer": parsed.int("limit_per_customer"),
        "stackable": values["stackable"],
        "starts_at": starts,
        "expires_at": expires,
        "active": values["active"],
    }
    return _save(
        request,
        viewer,
        db,
        current_version=current.version,
        form=form,
        parsed=parsed,
        command=lambda: update_promotion(db, promotion_id, changes),
        page=lambda errors, version, status: _promotion_page(
            request,
            db,
            viewer,
            promotion_id,
            values=values,
            errors=errors,
            version=version,
            status_code=status,
        ),
        done=f"/loyalty/promotions/{promotion_id}?flash=promotion_saved",
    )


@router.post("/loyalty/promotions/{promotion_id}/active", response_class=HTMLResponse)
def toggle_promotion(
    request: Request,
    promotion_id: str,
    db: UiSession,
    form: Form,
    viewer: Principal = Allowed(Perm.LOYALTY_WRITE),
) -> Response:
    """Stop (or restart) a promotion: its codes are refused as ``inactive``; redemptions are kept."""
    current = get_promotion(db, promotion_id)
    parsed = _Parser(form, viewer_language(request, viewer), _zone(db))
    changes = {
        k: getattr(current, k)
        for k in (
            "name",
            "discount_kind",
            "amount",
            "currency",
            "percent",
            "markets",
            "usage",
            "max_redemptions",
            "limit_per_customer",
            "stackable",
            "starts_at",
            "expires_at",
        )
    }
    changes["min_spend"] = {k: str(v) for k, v in current.min_spend.items()}
    changes["active"] = _text(form, "active") == "1"
    return _save(
        request,
        viewer,
        db,
        current_version=current.version,
        form=form,
        parsed=parsed,
        command=lambda: update_promotion(db, promotion_id, changes),
        page=lambda errors, version, status: _promotion_page(
            request, db, viewer, promotion_id, errors=errors, version=version, status_code=status
        ),
        done=f"/loyalty/promotions/{promotion_id}?flash=promotion_saved",
    )


@router.get("/loyalty/promotions/{promotion_id}/codes.csv")
def export_codes(
    promotion_id: str, db: UiSession, viewer: Principal = Allowed(Perm.LOYALTY_READ)
) -> StreamingResponse:
    """The promotion's codes as CSV (code, redemptions, status, customer id), oldest first."""
    promotion = get_promotion(db, promotion_id)
    rows = list(iter_coupons(db, promotion_id))

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["code", "redemptions", "status", "customer_id"])
        for code, used, owner in rows:
            writer.writerow([code, used, coupon_status(used, promotion.max_redemptions), owner or ""])
            if buffer.tell() > 65536:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="coupons-{promotion.id}.csv"',
            "Cache-Control": "no-store",
        },
    )


# --- markets ----------------------------------------------------------------------------------------

EARN_BASES = {"net": N_("Net: subtotal less discounts (no tax, no shipping)"), "total": N_("Order total")}


def _market_page(
    request: Request,
    db: Session,
    viewer: Principal,
    code: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    version: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    market = next((m for m in list_markets(db) if m.code == code), None)
    if market is None:
        raise NotFound(f"market {code!r} not found", code="not_found")
    settings = next((s for s in list_market_settings(db) if s.market_code == code), None)
    if values is None:
        values = {
            "earn_points": 1 if settings is None else settings.earn_points,
            "earn_spend_amount": "" if settings is None else _plain(settings.earn_spend_amount),
            "earn_base": "net" if settings is None else settings.earn_base,
            "point_value_amount": "" if settings is None else _plain(settings.point_value_amount),
            "cap_per_order": ""
            if settings is None or settings.cap_per_order is None
            else settings.cap_per_order,
            "cap_per_day": "" if settings is None or settings.cap_per_day is None else settings.cap_per_day,
        }
    current_version = 0 if settings is None else settings.version
    return render(
        request,
        "loyalty/market.html",
        {
            "market": market,
            "settings": settings,
            "values": values,
            "errors": errors or {},
            "version": current_version if version is None else version,
            "earn_bases": _options(EARN_BASES, viewer_language(request, viewer)),
            "can_edit": viewer.can(Perm.LOYALTY_WRITE),
        },
        status_code=status_code,
    )


@router.get("/loyalty/markets/{code}", response_class=HTMLResponse)
def market_page(
    request: Request, code: str, db: UiSession, viewer: Principal = Allowed(Perm.LOYALTY_READ)
) -> HTMLResponse:
    return _market_page(request, db, viewer, code)


@router.post("/loyalty/markets/{code}", response_class=HTMLResponse)
def save_market(
    request: Request, code: str, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.LOYALTY_WRITE)
) -> Response:
    try:
        current_version = get_market_settings(db, code).version
    except PatronError:
        current_version = 0  # not set up yet: the form carries version 0
    parsed = _Parser(form, viewer_language(request, viewer), _zone(db))
    names = (
        "earn_points",
        "earn_spend_amount",
        "earn_base",
        "point_value_amount",
        "cap_per_order",
        "cap_per_day",
    )
    values: dict[str, Any] = {k: _text(form, k) for k in names}
    earn_points = parsed.int("earn_points", required=True)
    spend = parsed.decimal("earn_spend_amount", required=True)
    point_value = parsed.decimal("point_value_amount", required=True)
    cap_order, cap_day = parsed.int("cap_per_order"), parsed.int("cap_per_day")

    def command() -> object:
        return put_market_settings(
            db,
            code,
            earn_spend_amount=spend if spend is not None else Decimal(0),
            earn_points=earn_points if earn_points is not None else 0,
            earn_base=values["earn_base"],
            point_value_amount=point_value if point_value is not None else Decimal(0),
            cap_per_order=cap_order,
            cap_per_day=cap_day,
        )

    return _save(
        request,
        viewer,
        db,
        current_version=current_version,
        form=form,
        parsed=parsed,
        command=command,
        page=lambda errors, version, status: _market_page(
            request, db, viewer, code, values=values, errors=errors, version=version, status_code=status
        ),
        done="/loyalty?flash=market_saved#markets",
    )


# --- reconciliation ---------------------------------------------------------------------------------


@router.get("/loyalty/reconciliation", response_class=HTMLResponse)
def reconciliation_page(
    request: Request, db: UiSession, viewer: Principal = Allowed(Perm.LOYALTY_READ)
) -> HTMLResponse:
    """Prove every account's balances equal its ledger (and its lots); list any drift. Read-only."""
    report = None
    if request.query_params.get("run") == "1":
        report = reconcile(db)
    return render(request, "loyalty/reconciliation.html", {"report": report})
