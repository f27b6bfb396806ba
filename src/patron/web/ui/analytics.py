"""Analytics console page: a scope selector (all customers, each market, each saved segment), the
runs of the chosen scope, a "Run now" form for it, the latest completed run's headline figures and RFM
segments (formatted in the viewer's language), its full report (the charts) in a sandboxed frame, and
the headline figures of every market side by side (the latest run of each market)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from babel import numbers as babel_numbers
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from starlette.background import BackgroundTask

from patron.analytics.rfm import SEGMENTS
from patron.analytics.runs import (
    ALL,
    RunOptions,
    RunView,
    create_run,
    get_report,
    get_run,
    latest_completed_run,
    latest_market_runs,
    list_runs,
    scope_key,
)
from patron.auth import Perm, Principal
from patron.core.audit import Actor
from patron.core.business import get_business, list_markets
from patron.core.errors import NotFound, PatronError
from patron.core.i18n import N_, babel_locale
from patron.core.money import Money
from patron.customers import list_segments
from patron.web.api.v1.analytics import run_analytics_job
from patron.web.ui.base import (
    Allowed,
    ConsoleRoute,
    Form,
    UiSession,
    error_message,
    redirect,
    register_flash,
    register_nav,
    render,
)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

register_nav("data", N_("Analytics"), "/analytics", Perm.ANALYTICS_READ, 30)
register_flash(
    "analytics_queued", N_("The analysis runs in the background; reload this page to see it finish.")
)

STATUS_LABELS = {
    "queued": N_("Queued"),
    "running": N_("Running"),
    "completed": N_("Completed"),
    "failed": N_("Failed"),
}
TRIGGER_LABELS = {"manual": N_("Manual"), "schedule": N_("Nightly")}
SEGMENT_LABELS = {
    "Champions": N_("Champions"),
    "Loyal": N_("Loyal"),
    "Potential loyalists": N_("Potential loyalists"),
    "New": N_("New"),
    "Promising": N_("Promising"),
    "Need attention": N_("Need attention"),
    "About to sleep": N_("About to sleep"),
    "At risk": N_("At risk"),
    "Can't lose them": N_("Can't lose them"),
    "Hibernating": N_("Hibernating"),
    "Lost": N_("Lost"),
}


def _percent(value: Any, language: str) -> str | None:
    if value is None:
        return None
    return str(
        babel_numbers.format_percent(Decimal(repr(float(value))), "#,##0.0%", locale=babel_locale(language))
    )


def _money(value: Any, currency: str | None) -> Money | None:
    if value is None or not currency:
        return None
    return Money(Decimal(repr(float(value))), currency)


def headline(results: dict[str, Any], language: str) -> list[tuple[str, str | Money | None]]:
    """(label msgid, value): percentages formatted here, money left to the template's filter."""
    currency = results.get("currency")
    kpis = results.get("kpis") or {}
    clv = (results.get("predictions") or {}).get("clv") or {}
    return [
        (N_("Customer retention rate (12 months)"), _percent(kpis.get("retention_rate"), language)),
        (N_("Churn rate (12 months)"), _percent(kpis.get("churn_rate"), language)),
        (N_("Repeat purchase rate"), _percent(kpis.get("repeat_purchase_rate"), language)),
        (N_("Average order value"), _money(kpis.get("average_order_value"), currency)),
        (N_("Customer lifetime value (simple)"), _money(kpis.get("clv_simple"), currency)),
        (N_("Predicted customer lifetime value (mean)"), _money(clv.get("mean"), currency)),
    ]


def segment_rows(results: dict[str, Any], language: str) -> list[dict[str, Any]]:
    currency = results.get("currency")
    segments = (results.get("rfm") or {}).get("segments") or {}
    rows = []
    for name in SEGMENTS:
        seg = segments.get(name)
        if seg is None:
            continue
        rows.append(
            {
                "name": name,
                "label": SEGMENT_LABELS.get(name, name),
                "customers": seg["customers"],
                "share": _percent(seg.get("share"), language),
                "revenue": _money(seg.get("revenue"), currency),
            }
        )
    return rows


def market_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Customers, orders, revenue and average order value per market (when orders name a market)."""
    currency = results.get("currency")
    markets = (results.get("kpis") or {}).get("by_market") or {}
    return [
        {
            "market": market,
            "customers": row["customers"],
            "orders": row["orders"],
            "revenue": _money(row.get("revenue"), currency),
            "average_order_value": _money(row.get("average_order_value"), currency),
        }
        for market, row in sorted(markets.items())
    ]


def comparison_rows(runs: dict[str, RunView], language: str) -> list[dict[str, Any]]:
    """Headline figures of each market's latest run, side by side."""
    rows = []
    for market, run in runs.items():
        results = run.results or {}
        currency = results.get("currency")
        kpis = results.get("kpis") or {}
        clv = (results.get("predictions") or {}).get("clv") or {}
        rows.append(
            {
                "market": market,
                "run": run,
                "customers": results.get("customers"),
                "retention": _percent(kpis.get("retention_rate"), language),
                "churn": _percent(kpis.get("churn_rate"), language),
                "repeat": _percent(kpis.get("repeat_purchase_rate"), language),
                "aov": _money(kpis.get("average_order_value"), currency),
                "clv_simple": _money(kpis.get("clv_simple"), currency),
                "clv_predicted": _money(clv.get("mean"), currency),
            }
        )
    return rows


def scope_choices(db: UiSession) -> list[dict[str, Any]]:
    """The scopes a viewer can pick: all customers, each market, each saved segment (by name)."""
    choices: list[dict[str, Any]] = [{"value": ALL, "kind": "all", "label": None}]
    for market in list_markets(db):
        choices.append(
            {"value": scope_key(market.code), "kind": "market", "label": f"{market.name} ({market.code})"}
        )
    cursor: str | None = None
    while True:
        page = list_segments(db, cursor=cursor, limit=200)
        for segment in page.items:
            choices.append({"value": scope_key(None, segment.id), "kind": "segment", "label": segment.name})
        cursor = page.next_cursor
        if cursor is None or len(choices) > 1000:
            break
    return choices


def _scope_options(scope: str) -> RunOptions:
    """The run options of a scope chosen in the console (``all``, ``market:VN``, ``segment:<id>``)."""
    market: str | None = None
    segment_id: str | None = None
    if scope != ALL:
        for part in scope.split("/"):
            kind, _, value = part.partition(":")
            if kind == "market" and value:
                market = value
            elif kind == "segment" and value:
                segment_id = value
            else:
                raise NotFound(f"no analytics scope {scope!r}", code="not_found")
    return RunOptions(market=market, segment_id=segment_id)


def _page(
    request: Request,
    db: UiSession,
    viewer: Principal,
    *,
    error: str | None = None,
    status_code: int = 200,
    scope: str | None = None,
) -> HTMLResponse:
    language: str = request.state.language
    chosen = request.query_params.get("run")
    scope = scope or request.query_params.get("scope") or ALL
    if chosen:
        shown: RunView | None = get_run(db, chosen)
        assert shown is not None
        scope = shown.scope
    else:
        _scope_options(scope)  # a malformed scope is a 404
        shown = latest_completed_run(db, scope)
    results = shown.results if shown is not None and shown.status == "completed" else None
    choices = scope_choices(db)
    reporting = get_business(db).reporting_currency
    market_currency = next(
        (m.currency for m in list_markets(db) if m.code == _scope_options(scope).market), None
    )
    known = {c["value"] for c in choices}
    if scope not in known:  # a run of a segment deleted since, or of a market and a segment
        choices.append({"value": scope, "kind": "other", "label": scope})
    return render(
        request,
        "analytics/index.html",
        {
            "runs": list_runs(db, limit=20, scope=scope),
            "scope": scope,
            "scopes": choices,
            "reporting_currency": reporting,
            "market_currency": market_currency if market_currency != reporting else None,
            "comparison": comparison_rows(latest_market_runs(db), language),
            "shown": shown,
            "results": results,
            "kpis": headline(results, language) if results else [],
            "segments": segment_rows(results, language) if results else [],
            "markets": market_rows(results) if results else [],
            "messages": (results or {}).get("messages", []),
            "status_labels": STATUS_LABELS,
            "trigger_labels": TRIGGER_LABELS,
            "error": error,
            "can_run": viewer.can(Perm.ANALYTICS_RUN),
        },
        status_code=status_code,
    )


@router.get("/analytics", response_class=HTMLResponse)
def analytics_page(
    request: Request, db: UiSession, viewer: Principal = Allowed(Perm.ANALYTICS_READ)
) -> HTMLResponse:
    return _page(request, db, viewer)


@router.post("/analytics", response_class=HTMLResponse)
def run_now(
    request: Request, db: UiSession, form: Form, viewer: Principal = Allowed(Perm.ANALYTICS_RUN)
) -> Response:
    scope = str(form.get("scope") or ALL)
    currency = str(form.get("currency") or "reporting")
    try:
        options = replace(_scope_options(scope), currency=currency)
        view = create_run(db, options, actor=Actor("user", viewer.user_id, viewer.email))
    except PatronError as exc:
        return _page(
            request,
            db,
            viewer,
            error=error_message(exc, request.state.language),
            status_code=exc.status,
            scope=scope,
        )
    target = "/analytics?flash=analytics_queued"
    if view.scope != ALL:
        target = "/analytics?" + urlencode({"scope": view.scope, "flash": "analytics_queued"})
    response = redirect(target)
    response.background = BackgroundTask(run_analytics_job, request.app.state.database, view.id)
    return response


@router.get("/analytics/runs/{run_id}/report", response_class=HTMLResponse)
def report_page(run_id: str, db: UiSession, viewer: Principal = Allowed(Perm.ANALYTICS_READ)) -> HTMLResponse:
    """The report for the page's frame: its inline scripts run sandboxed (no access to the console)."""
    response = HTMLResponse(get_report(db, run_id))
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
        "img-src data:; frame-ancestors 'self'; sandbox allow-scripts"
    )
    return response
