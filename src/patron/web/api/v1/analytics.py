"""Analytics runs: ``patron analyze --database`` started from the API and executed in the background.

``POST /analytics/runs`` checks the options, stores the run as ``queued`` and answers 202; the analysis
runs after the response, in the background of the server process that took the request (like
imports). Poll ``GET /analytics/runs/{id}``: ``status`` goes ``queued`` → ``running`` → ``completed``
(``results`` holds the results JSON of ``patron analyze --json``; the per-customer scores are now the
customers' ``analytics`` traits) or ``failed`` (``error`` says why; nothing else was written).
``GET /analytics/runs/{id}/report`` is the self-contained HTML report. One run at a time per scope
(409). A run may be scoped to a market (``{"market": "VN"}``: the orders placed there) and/or a saved
segment (``{"segment_id": "…"}``: its members when the run starts); scoped runs publish no traits.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from patron.analytics.runs import (
    RunOptions,
    RunView,
    create_run,
    execute_run,
    get_report,
    get_run,
    list_runs,
)
from patron.auth import Perm, Principal
from patron.core.db import Database
from patron.core.errors import ValidationFailed
from patron.core.pagination import clamp_limit, decode_cursor, encode_cursor
from patron.web.deps import DbSession, Requires, make_etag, set_etag
from patron.web.problems import problem_responses
from patron.web.routing import PatronRoute

log = logging.getLogger("patron.web.analytics")

router = APIRouter(route_class=PatronRoute, tags=["analytics"], responses=problem_responses(401, 403, 422))

RunStatus = Literal["queued", "running", "completed", "failed"]
ModelName = Literal["bg_nbd", "pareto_nbd", "gamma_gamma"]
SectionName = Literal["kpis", "cohorts", "rfm", "models", "recommendations"]


class AnalyticsRunCreate(BaseModel):
    """The options of ``patron analyze --database`` (all optional: the defaults are the command's)."""

    model_config = ConfigDict(extra="forbid")
    as_of: date | None = Field(default=None, description="last day, inclusive (default: the last order)")
    calibration_end: date | None = Field(default=None, description="holdout split, before as_of")
    period: Literal["week", "month", "quarter", "year"] = "month"
    inactivity_days: int = Field(default=365, ge=1, le=3650)
    time_unit: Literal["day", "week"] = "week"
    horizon_months: int = Field(default=12, ge=1, le=120)
    discount_rate: Decimal = Field(default=Decimal("0.10"), ge=0, lt=10, description="annual, e.g. 0.10")
    models: list[ModelName] = Field(default=["bg_nbd", "pareto_nbd", "gamma_gamma"], max_length=3)
    sections: list[SectionName] = Field(
        default=["kpis", "cohorts", "rfm", "models", "recommendations"], max_length=5
    )
    language: Literal["en", "vi", "hu", "th"] = Field(default="en", description="of the report")
    publish_traits: StrictBool | None = Field(
        default=None,
        description="write rfm_segment, p_alive, churn_risk, churn_band, clv, predicted_purchases "
        "(default: true for the whole database; a market or segment run cannot)",
    )
    market: str | None = Field(
        default=None, min_length=1, max_length=20, description="a market code: analyse its orders only"
    )
    segment_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=36,
        description="a saved segment: analyse its members (evaluated when the run starts) only",
    )

    currency: Literal["reporting", "market"] = Field(
        default="reporting",
        description="the currency of the amounts: the business reporting currency, or (with a market) "
        "the market's own currency",
    )

    def options(self) -> RunOptions:
        return RunOptions(
            as_of=self.as_of,
            calibration_end=self.calibration_end,
            period=self.period,
            inactivity_days=self.inactivity_days,
            time_unit=self.time_unit,
            horizon_months=self.horizon_months,
            discount_rate=self.discount_rate,
            models=tuple(dict.fromkeys(self.models)),
            sections=tuple(dict.fromkeys(self.sections)),
            language=self.language,
            publish_traits=self.publish_traits,
            market=self.market,
            segment_id=self.segment_id,
            currency=self.currency,
        )


class AnalyticsRunRead(BaseModel):
    id: str
    status: RunStatus = Field(description="queued → running → completed | failed")
    trigger: Literal["manual", "schedule"]
    scope: str = Field(description='"all", "market:VN", "segment:<id>" or "market:VN/segment:<id>"')
    market: str | None = Field(description="the market analysed (null: every market)")
    segment_id: str | None = Field(description="the segment analysed (null: every customer)")
    segment_name: str | None = Field(description="the segment's name when the run was created")
    options: dict[str, Any]
    as_of: date | None = Field(description="the analysis' last day (once completed)")
    currency: str | None = Field(description="the reporting currency of the money figures")
    customers: int | None
    orders: int | None
    traits_published: int = Field(description="customers whose analytics traits this run wrote")
    error: str | None = Field(description="why the run failed")
    has_report: bool
    actor: str
    actor_label: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, view: RunView) -> AnalyticsRunRead:
        return cls(**cls._fields(view))

    @staticmethod
    def _fields(view: RunView) -> dict[str, Any]:
        return {
            "id": view.id,
            "status": view.status,
            "trigger": view.trigger,
            "scope": view.scope,
            "market": view.market,
            "segment_id": view.segment_id,
            "segment_name": view.segment_name,
            "options": view.options,
            "as_of": view.as_of,
            "currency": view.currency,
            "customers": view.customers,
            "orders": view.orders,
            "traits_published": view.traits_published,
            "error": view.error,
            "has_report": view.has_report,
            "actor": view.actor,
            "actor_label": view.actor_label,
            "created_at": view.created_at,
            "started_at": view.started_at,
            "finished_at": view.finished_at,
        }


class AnalyticsRunDetail(AnalyticsRunRead):
    results: dict[str, Any] | None = Field(
        description="the results JSON of patron analyze --json (issue #3's contract), once completed"
    )

    @classmethod
    def of(cls, view: RunView) -> AnalyticsRunDetail:
        return cls(**cls._fields(view), results=view.results)


class AnalyticsRunPage(BaseModel):
    items: list[AnalyticsRunRead]
    next_cursor: str | None = None


def run_analytics_job(database: Database, run_id: str) -> None:
    """The background job: the run records its own failure, the server stays up."""
    try:
        execute_run(database, run_id)
    except Exception:
        log.exception("analytics run %s could not be recorded", run_id)


def _etag(view: RunView) -> str:
    return make_etag("analytics-run", view.id, view.status, view.finished_at, view.has_report)


@router.post(
    "/analytics/runs",
    response_model=AnalyticsRunRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(409),
)
def start_analytics_run_endpoint(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    body: AnalyticsRunCreate | None = None,
    _: Principal = Requires(Perm.ANALYTICS_RUN),
) -> AnalyticsRunRead:
    """Queue an analysis of the live database (202); it runs in the background. 409 while another run
    is queued or running."""
    view = create_run(db, (body or AnalyticsRunCreate()).options())
    background.add_task(run_analytics_job, request.app.state.database, view.id)
    return AnalyticsRunRead.of(view)


@router.get("/analytics/runs", response_model=AnalyticsRunPage)
def list_analytics_runs_endpoint(
    db: DbSession,
    run_status: Annotated[RunStatus | None, Query(alias="status")] = None,
    scope: Annotated[
        str | None,
        Query(max_length=120, description='an exact scope: "all" for whole-database runs, "market:VN" …'),
    ] = None,
    market: Annotated[str | None, Query(max_length=20, description="runs of this market")] = None,
    segment_id: Annotated[str | None, Query(max_length=36, description="runs of this segment")] = None,
    limit: Annotated[int | None, Query(ge=1, le=200, description="page size (default 50)")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    _: Principal = Requires(Perm.ANALYTICS_READ),
) -> AnalyticsRunPage:
    """Analytics runs, newest first (without their results); filtered by status and scope."""
    size = clamp_limit(limit)
    after = decode_cursor(cursor)
    before = None
    if after is not None:
        try:
            before = (datetime.fromisoformat(str(after[0])), str(after[1]))
        except (IndexError, ValueError) as exc:
            raise ValidationFailed("malformed cursor", code="invalid_cursor") from exc
        if before[0].tzinfo is None:
            raise ValidationFailed("malformed cursor", code="invalid_cursor")
    views = list_runs(
        db,
        limit=size + 1,
        before=before,
        status=run_status,
        scope=scope,
        market=market,
        segment_id=segment_id,
    )
    items = views[:size]
    next_cursor = (
        encode_cursor([items[-1].created_at.isoformat(), items[-1].id]) if len(views) > size else None
    )
    return AnalyticsRunPage(items=[AnalyticsRunRead.of(v) for v in items], next_cursor=next_cursor)


@router.get("/analytics/runs/{run_id}", response_model=AnalyticsRunDetail, responses=problem_responses(404))
def get_analytics_run_endpoint(
    run_id: str, response: Response, db: DbSession, _: Principal = Requires(Perm.ANALYTICS_READ)
) -> AnalyticsRunDetail:
    """A run: status, and once completed the results JSON."""
    view = get_run(db, run_id)
    set_etag(response, _etag(view))
    return AnalyticsRunDetail.of(view)


REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The self-contained HTML report (charts work offline)",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
}


@router.get(
    "/analytics/runs/{run_id}/report",
    response_class=Response,  # no default media type: the 200 is documented as text/html below
    responses={**REPORT_RESPONSES, **problem_responses(404)},
)
def get_analytics_report_endpoint(
    run_id: str, db: DbSession, _: Principal = Requires(Perm.ANALYTICS_READ)
) -> HTMLResponse:
    """The run's HTML report (404 ``analytics_report_not_available`` until it completed, or after
    older reports were pruned)."""
    html = get_report(db, run_id)
    return HTMLResponse(
        html,
        headers={
            # the report runs its own inline scripts; shown in a sandboxed frame by the console
            "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
            "style-src 'unsafe-inline'; img-src data:; sandbox allow-scripts",
            "X-Content-Type-Options": "nosniff",
        },
    )
