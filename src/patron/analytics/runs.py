"""Analytics runs in the running app: ``patron analyze --database`` stored and executed in the
background, its results kept (the JSON contract and the HTML report) and its per-customer scores
published as customer traits.

A run is created ``queued`` (the API answers 202), then :func:`execute_run` runs the analysis on the
live database outside any transaction and writes everything it produced in ONE transaction: the
results, the report, the traits and the ``analytics.run_completed`` event. A failure anywhere marks the
run ``failed`` with the error in a separate transaction, so nothing is half-written.

Statuses: ``queued`` → ``running`` → ``completed`` | ``failed``. A run whose process died is failed by
:func:`fail_stalled_runs` (the worker's job) once it is older than :data:`STALL_AFTER`, or once the
process executing it stopped renewing its lease (``heartbeat_at``, every :data:`HEARTBEAT_EVERY`) for
:data:`LEASE`. One run at a
time per scope: creating a run while another of the same scope is queued or running (and not stalled)
is a 409, guarded by a unique (``active``, ``scope``) pair so that two processes cannot both start one.

A run has a **scope**: the whole database (``all``), one market (the orders placed in that market),
one saved segment (its members when the run starts), or both. Only whole-database runs publish
traits; scoped runs keep their figures and report only.
"""

from __future__ import annotations

import gzip
import logging
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Index, Integer, LargeBinary, String, Text, UniqueConstraint, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from patron.analytics.contracts import MODELS, SECTIONS, AnalysisError, AnalyzeOptions
from patron.core.audit import Actor, current_actor, record_audit
from patron.core.business import list_markets
from patron.core.clock import now
from patron.core.db import Base, Database, JSONType, created_at_column, id_column
from patron.core.errors import Conflict, NotFound, PatronError, ValidationFailed
from patron.core.outbox import emit_event

log = logging.getLogger("patron.analytics")

STATUSES: tuple[str, ...] = ("queued", "running", "completed", "failed")
TRIGGERS: tuple[str, ...] = ("manual", "schedule")
LANGUAGES: tuple[str, ...] = ("en", "vi", "hu", "th")
CURRENCIES: tuple[str, ...] = ("reporting", "market")
STALL_AFTER = timedelta(hours=6)
HEARTBEAT_EVERY = 30.0  # seconds: the executing process renews its lease on the run this often
LEASE = timedelta(minutes=10)  # a running run whose lease was not renewed for this long is stalled
KEEP_REPORTS = 20  # the HTML report (a few MB with its charts) is kept for the newest completed runs
RUN_COMPLETED = "analytics.run_completed"
RUN_FAILED = "analytics.run_failed"
ALL = "all"


def scope_key(market: str | None = None, segment_id: str | None = None) -> str:
    """The scope of a run as one string: ``all``, ``market:VN``, ``segment:<id>`` or both."""
    parts = [f"market:{market}"] if market else []
    if segment_id:
        parts.append(f"segment:{segment_id}")
    return "/".join(parts) or ALL


class AnalyticsRun(Base):
    """One analysis of the live database (started from the API, the console or the nightly job)."""

    __tablename__ = "analytics_runs"
    __table_args__ = (
        Index("ix_analytics_runs_created", "created_at", "id"),
        Index("ix_analytics_runs_status", "status"),
        Index("ix_analytics_runs_scope", "scope", "status", "finished_at"),
        # one active run per scope, across processes (NULL ``active`` never collides)
        UniqueConstraint("active", "scope", name="uq_analytics_runs_active_scope"),
        # one nightly run per scope and local day, however many workers check at the same moment
        UniqueConstraint("nightly_on", "scope", name="uq_analytics_runs_nightly_scope"),
    )

    id: Mapped[str] = id_column()
    status: Mapped[str] = mapped_column(String(20), default="queued")
    # "active" while queued or running, else NULL: the unique (active, scope) pair lets one run per
    # scope be active at a time even when two processes create runs at the same moment
    active: Mapped[str | None] = mapped_column(String(10), default=None)
    trigger: Mapped[str] = mapped_column(String(20), default="manual")
    # "all", "market:VN", "segment:<id>" or "market:VN/segment:<id>" (see :func:`scope_key`)
    scope: Mapped[str] = mapped_column(String(120), default=ALL)
    market: Mapped[str | None] = mapped_column(String(20), default=None)
    segment_id: Mapped[str | None] = mapped_column(String(36), default=None)
    segment_name: Mapped[str | None] = mapped_column(String(200), default=None)  # at creation
    nightly_on: Mapped[date | None] = mapped_column(default=None)  # local day of a nightly run
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    as_of: Mapped[date | None] = mapped_column(default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    customers: Mapped[int | None] = mapped_column(Integer, default=None)
    orders: Mapped[int | None] = mapped_column(Integer, default=None)
    traits_published: Mapped[int] = mapped_column(Integer, default=0)  # customers given traits
    results: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None, deferred=True)
    report_gzip: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    actor: Mapped[str] = mapped_column(String(100), default="system")
    actor_label: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = created_at_column()
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)  # the executor's lease
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


@dataclass(frozen=True)
class RunOptions:
    """What a caller may choose for a run (the rest is ``patron analyze --database``'s defaults)."""

    as_of: date | None = None
    calibration_end: date | None = None
    period: str = "month"
    inactivity_days: int = 365
    time_unit: str = "week"
    horizon_months: int = 12
    discount_rate: Decimal = Decimal("0.10")
    models: tuple[str, ...] = MODELS
    sections: tuple[str, ...] = SECTIONS
    language: str = "en"
    publish_traits: bool | None = None  # None: True for the whole database, False for a scope
    market: str | None = None
    segment_id: str | None = None
    currency: str = "reporting"  # "market": a market run's amounts in the market's own currency

    @property
    def scope(self) -> str:
        return scope_key(self.market, self.segment_id)

    @property
    def scoped(self) -> bool:
        return self.scope != ALL

    @property
    def publishes_traits(self) -> bool:
        return (not self.scoped) if self.publish_traits is None else self.publish_traits

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "calibration_end": self.calibration_end.isoformat() if self.calibration_end else None,
            "period": self.period,
            "inactivity_days": self.inactivity_days,
            "time_unit": self.time_unit,
            "horizon_months": self.horizon_months,
            "discount_rate": str(self.discount_rate),
            "models": list(self.models),
            "sections": list(self.sections),
            "language": self.language,
            "publish_traits": self.publishes_traits,
            "market": self.market,
            "segment_id": self.segment_id,
            "currency": self.currency,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOptions:
        try:
            return cls(
                as_of=date.fromisoformat(data["as_of"]) if data.get("as_of") else None,
                calibration_end=date.fromisoformat(data["calibration_end"])
                if data.get("calibration_end")
                else None,
                period=str(data.get("period", "month")),
                inactivity_days=int(data.get("inactivity_days", 365)),
                time_unit=str(data.get("time_unit", "week")),
                horizon_months=int(data.get("horizon_months", 12)),
                discount_rate=Decimal(str(data.get("discount_rate", "0.10"))),
                models=tuple(data.get("models", MODELS)),
                sections=tuple(data.get("sections", SECTIONS)),
                language=str(data.get("language", "en")),
                publish_traits=None if data.get("publish_traits") is None else bool(data["publish_traits"]),
                market=str(data["market"]) if data.get("market") else None,
                segment_id=str(data["segment_id"]) if data.get("segment_id") else None,
                currency=str(data.get("currency") or "reporting"),
            )
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise ValidationFailed(f"invalid run options: {exc}", code="invalid_analytics_options") from exc

    def analyze_options(self) -> AnalyzeOptions:
        """The options of ``patron analyze --database`` (raises :class:`ValidationFailed`)."""
        if self.language not in LANGUAGES:
            raise ValidationFailed(
                f"language must be one of {', '.join(LANGUAGES)}",
                code="invalid_analytics_options",
                errors=[{"loc": ["language"], "msg": "en, vi, hu or th", "type": "invalid"}],
            )
        if self.currency not in CURRENCIES or (self.currency == "market" and self.market is None):
            raise ValidationFailed(
                "currency is reporting, or market for a run of one market",
                code="invalid_analytics_options",
                errors=[{"loc": ["currency"], "msg": "market needs a market scope", "type": "invalid"}],
            )
        if self.scoped and self.publish_traits:
            raise ValidationFailed(
                "traits are published by whole-database runs only: leave publish_traits out of a "
                "market or segment run",
                code="invalid_analytics_options",
                errors=[{"loc": ["publish_traits"], "msg": "only for the whole database", "type": "invalid"}],
            )
        sections = self.sections
        if self.publishes_traits and "rfm" not in sections:
            # the traits come from the scores, which need RFM; the JSON then has the RFM section too
            sections = (*sections, "rfm")
        try:
            return AnalyzeOptions(
                as_of=self.as_of,
                calibration_end=self.calibration_end,
                period=self.period,  # type: ignore[arg-type]
                inactivity_days=self.inactivity_days,
                time_unit=self.time_unit,  # type: ignore[arg-type]
                horizon_months=self.horizon_months,
                discount_rate=self.discount_rate,
                models=self.models,
                sections=tuple(s for s in SECTIONS if s in sections),
                language=self.language,
            )
        except AnalysisError as exc:
            raise ValidationFailed(str(exc), code="invalid_analytics_options") from exc


@dataclass(frozen=True)
class RunView:
    id: str
    status: str
    trigger: str
    options: dict[str, Any]
    as_of: date | None
    currency: str | None
    customers: int | None
    orders: int | None
    traits_published: int
    error: str | None
    actor: str
    actor_label: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    has_report: bool = False
    results: dict[str, Any] | None = field(default=None, repr=False)
    scope: str = ALL
    market: str | None = None
    segment_id: str | None = None
    segment_name: str | None = None
    nightly_on: date | None = None

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed")


def _view(run: AnalyticsRun, *, results: bool = False, has_report: bool = False) -> RunView:
    return RunView(
        id=run.id,
        status=run.status,
        trigger=run.trigger,
        options=dict(run.options or {}),
        as_of=run.as_of,
        currency=run.currency,
        customers=run.customers,
        orders=run.orders,
        traits_published=run.traits_published,
        error=run.error,
        actor=run.actor,
        actor_label=run.actor_label,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        has_report=has_report,
        results=run.results if results else None,
        scope=run.scope,
        market=run.market,
        segment_id=run.segment_id,
        segment_name=run.segment_name,
        nightly_on=run.nightly_on,
    )


def _stalled() -> Any:
    at = now()
    cutoff = at - STALL_AFTER
    return or_(
        and_(AnalyticsRun.status == "running", AnalyticsRun.started_at < cutoff),
        and_(AnalyticsRun.status == "running", AnalyticsRun.heartbeat_at < at - LEASE),
        and_(AnalyticsRun.status == "queued", AnalyticsRun.created_at < cutoff),
    )


def _check_scope(session: Session, options: RunOptions) -> str | None:
    """Validate the scope (a known market code, an existing segment); the segment's name."""
    if options.market is not None and options.market not in {m.code for m in list_markets(session)}:
        # by code only: the scope key, the loader's filter and the report all use the code
        raise ValidationFailed(
            f"unknown market {options.market!r}",
            code="invalid_analytics_scope",
            errors=[{"loc": ["market"], "msg": "a market code of the business", "type": "invalid"}],
        )
    if options.segment_id is None:
        return None
    from patron.customers import get_segment

    try:
        return get_segment(session, options.segment_id).name
    except NotFound as exc:
        raise ValidationFailed(
            f"unknown segment {options.segment_id!r}",
            code="invalid_analytics_scope",
            errors=[{"loc": ["segment_id"], "msg": "the id of a saved segment", "type": "invalid"}],
        ) from exc


def create_run(
    session: Session,
    options: RunOptions | None = None,
    *,
    trigger: str = "manual",
    actor: Actor | None = None,
    nightly_on: date | None = None,
) -> RunView:
    """Queue a run (validated; 409 ``analytics_run_in_progress`` while another run of the same scope
    is queued or running; 409 ``analytics_nightly_done`` for a second nightly run of a scope and day)."""
    options = options or RunOptions()
    options.analyze_options()  # validate now: a bad request creates no run
    if trigger not in TRIGGERS:
        raise ValidationFailed(f"unknown trigger {trigger!r}", code="invalid_analytics_options")
    segment_name = _check_scope(session, options)
    scope = options.scope
    fail_stalled_runs(session)
    busy = session.scalar(
        select(AnalyticsRun.id)
        .where(AnalyticsRun.status.in_(("queued", "running")), AnalyticsRun.scope == scope, ~_stalled())
        .order_by(AnalyticsRun.created_at)
        .limit(1)
    )
    if busy is not None:
        raise Conflict(
            f"analytics run {busy} is still in progress: wait for it to finish",
            code="analytics_run_in_progress",
            extra={"run_id": busy},
        )
    who = actor or current_actor.get()
    run = AnalyticsRun(
        status="queued",
        active="active",
        trigger=trigger,
        options=options.as_dict(),
        scope=scope,
        market=options.market,
        segment_id=options.segment_id,
        segment_name=segment_name,
        nightly_on=nightly_on,
        actor=who.ref,
        actor_label=who.label,
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError as exc:  # another process queued one since the check above
        if nightly_on is not None and session.scalar(
            select(AnalyticsRun.id).where(AnalyticsRun.nightly_on == nightly_on, AnalyticsRun.scope == scope)
        ):
            raise Conflict(
                f"the nightly analytics run of {nightly_on.isoformat()} exists already",
                code="analytics_nightly_done",
            ) from exc
        raise Conflict(
            "another analytics run is in progress: wait for it to finish", code="analytics_run_in_progress"
        ) from exc
    record_audit(session, "analytics.run_queued", "analytics_run", run.id, new=options.as_dict(), actor=who)
    return _view(run)


def get_run(session: Session, run_id: str, *, results: bool = True) -> RunView:
    run = session.get(AnalyticsRun, run_id)
    if run is None:
        raise NotFound(f"no analytics run {run_id}", code="analytics_run_not_found")
    has_report = (
        session.scalar(
            select(AnalyticsRun.id).where(AnalyticsRun.id == run_id, AnalyticsRun.report_gzip.is_not(None))
        )
        is not None
    )
    return _view(run, results=results, has_report=has_report)


def get_report(session: Session, run_id: str) -> str:
    """The run's self-contained HTML report (404 ``analytics_report_not_available`` without one)."""
    run = session.get(AnalyticsRun, run_id)
    if run is None:
        raise NotFound(f"no analytics run {run_id}", code="analytics_run_not_found")
    blob = session.scalar(select(AnalyticsRun.report_gzip).where(AnalyticsRun.id == run_id))
    if blob is None:
        raise NotFound(
            f"analytics run {run_id} has no report ({run.status})", code="analytics_report_not_available"
        )
    return gzip.decompress(blob).decode("utf-8")


def _scope_filter(stmt: Any, scope: str | None, market: str | None, segment_id: str | None) -> Any:
    if scope is not None:
        stmt = stmt.where(AnalyticsRun.scope == scope)
    if market is not None:
        stmt = stmt.where(AnalyticsRun.market == market)
    if segment_id is not None:
        stmt = stmt.where(AnalyticsRun.segment_id == segment_id)
    return stmt


def list_runs(
    session: Session,
    *,
    limit: int = 50,
    before: tuple[datetime, str] | None = None,
    status: str | None = None,
    scope: str | None = None,
    market: str | None = None,
    segment_id: str | None = None,
) -> list[RunView]:
    """Newest first; ``before`` is the (created_at, id) of the last run of the previous page.
    ``scope`` is an exact scope (``all`` for whole-database runs); ``market`` / ``segment_id`` match
    every run of that market / segment (alone or combined)."""
    stmt = select(AnalyticsRun).order_by(AnalyticsRun.created_at.desc(), AnalyticsRun.id.desc()).limit(limit)
    stmt = _scope_filter(stmt, scope, market, segment_id)
    if status is not None:
        stmt = stmt.where(AnalyticsRun.status == status)
    if before is not None:
        at, last_id = before
        stmt = stmt.where(
            (AnalyticsRun.created_at < at) | ((AnalyticsRun.created_at == at) & (AnalyticsRun.id < last_id))
        )
    return [_view(r) for r in session.scalars(stmt)]


def latest_completed_run(session: Session, scope: str | None = ALL) -> RunView | None:
    """The newest completed run of a scope (default: the whole database; ``None``: any scope), with
    its results (for the console's headline figures)."""
    stmt = select(AnalyticsRun.id).where(AnalyticsRun.status == "completed")
    if scope is not None:
        stmt = stmt.where(AnalyticsRun.scope == scope)
    run_id = session.scalar(stmt.order_by(AnalyticsRun.finished_at.desc(), AnalyticsRun.id.desc()).limit(1))
    return None if run_id is None else get_run(session, run_id)


def latest_market_runs(session: Session) -> dict[str, RunView]:
    """The newest completed run of each market-only scope in the reporting currency (market code →
    run, with results): the console's side-by-side comparison of markets."""
    rows = session.execute(
        select(AnalyticsRun.market, AnalyticsRun.id, AnalyticsRun.options)
        .where(
            AnalyticsRun.status == "completed",
            AnalyticsRun.market.is_not(None),
            AnalyticsRun.segment_id.is_(None),
        )
        .order_by(AnalyticsRun.finished_at.desc(), AnalyticsRun.id.desc())
    ).all()
    newest: dict[str, str] = {}
    for market, run_id, options in rows:
        if (options or {}).get("currency", "reporting") == "reporting":  # comparable amounts only
            newest.setdefault(str(market), str(run_id))
    return {market: get_run(session, run_id) for market, run_id in sorted(newest.items())}


STALLED_ERROR = "the run stopped: its process ended before it finished (start a new run)"


def fail_stalled_runs(session: Session) -> int:
    """Fail the runs whose process ended before they finished (queued or running for too long), each
    with an ``analytics.run_failed`` event like any other failure."""
    failed = session.scalars(
        update(AnalyticsRun)
        .where(_stalled())
        .values(status="failed", active=None, finished_at=now(), error=STALLED_ERROR)
        .returning(AnalyticsRun.id)
        .execution_options(synchronize_session=False)
    ).all()
    for run_id in sorted(failed):
        emit_event(session, RUN_FAILED, {"run_id": run_id, "error": STALLED_ERROR})
    return len(failed)


def fail_unfinished_run(database: Database, run_id: str, error: str) -> bool:
    """Fail a run that is still queued or running (its process ended without recording an outcome);
    False when the run had finished."""
    with database.unit_of_work() as session:
        result = session.execute(
            update(AnalyticsRun)
            .where(AnalyticsRun.id == run_id, AnalyticsRun.status.in_(("queued", "running")))
            .values(status="failed", active=None, finished_at=now(), error=error[:2000])
        )
        if int(result.rowcount) != 1:  # type: ignore[attr-defined]
            return False
        emit_event(session, RUN_FAILED, {"run_id": run_id, "error": error[:2000]})
    return True


def _claim(database: Database, run_id: str) -> RunOptions | None:
    """queued → running, atomically (a run is executed once even if two processes try)."""
    with database.unit_of_work() as session:
        result = session.execute(
            update(AnalyticsRun)
            .where(AnalyticsRun.id == run_id, AnalyticsRun.status == "queued")
            .values(status="running", started_at=now(), heartbeat_at=now())
        )
        if int(result.rowcount) != 1:  # type: ignore[attr-defined]
            return None
        options = session.scalar(select(AnalyticsRun.options).where(AnalyticsRun.id == run_id))
    return RunOptions.from_dict(dict(options or {}))


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, AnalysisError):
        return str(exc)
    if isinstance(exc, PatronError):
        return f"{exc.detail} ({exc.code})"
    return f"internal error: {type(exc).__name__}: {exc}"[:2000]


def execute_run(database: Database, run_id: str, *, database_url: str | None = None) -> RunView:
    """Run a queued run to its end: ``completed`` with results, report and traits, or ``failed`` with the
    error and nothing else written. Never raises for a failing analysis (the run records it)."""
    url = database_url or database.engine.url.render_as_string(hide_password=False)
    options = _claim(database, run_id)
    if options is None:
        with database.unit_of_work(write=False) as session:
            return get_run(session, run_id, results=False)
    lease = _Heartbeat(database, run_id)
    lease.start()
    try:
        members = _segment_members(database, options.segment_id) if options.segment_id else None
        analysis = _analyse(url, options, members)
        with database.unit_of_work() as session:
            _complete(session, run_id, options, analysis)
    except Exception as exc:
        log.warning("analytics run %s failed: %s", run_id, exc, exc_info=not isinstance(exc, AnalysisError))
        # a run already failed meanwhile (its lease lapsed and another process gave it up) keeps that
        # outcome, its error and its one analytics.run_failed event
        fail_unfinished_run(database, run_id, _error_text(exc))
    finally:
        lease.stop()
    with database.unit_of_work(write=False) as session:
        return get_run(session, run_id, results=False)


class _Heartbeat:
    """Renews the executing process's lease on a running run every :data:`HEARTBEAT_EVERY` seconds
    (a thread of its own; a renewal that cannot get the database in time is skipped)."""

    def __init__(self, database: Database, run_id: str, every: float | None = None) -> None:
        self.database = database
        self.run_id = run_id
        self.every = HEARTBEAT_EVERY if every is None else every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"analytics-lease-{run_id[:8]}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                renew_lease(self.database, self.run_id)
            except Exception:  # busy database, connection lost: the next renewal tries again
                log.warning("could not renew the lease of analytics run %s", self.run_id, exc_info=True)


def renew_lease(database: Database, run_id: str) -> bool:
    """Mark the running run as still alive (False once it is no longer running)."""
    with database.unit_of_work() as session:
        result = session.execute(
            update(AnalyticsRun)
            .where(AnalyticsRun.id == run_id, AnalyticsRun.status == "running")
            .values(heartbeat_at=now())
        )
        return int(result.rowcount) == 1  # type: ignore[attr-defined]


@dataclass
class _Produced:
    results: dict[str, Any]
    report_html: str
    scores: Any  # a pyarrow table (patron.analytics.scores.table) or None
    customers: int
    orders: int


def _segment_members(database: Database, segment_id: str) -> frozenset[str]:
    """The segment's members now (when the run starts): its saved rules evaluated in SQL."""
    from patron.customers import get_segment, segment_customer_ids, segment_rules

    with database.unit_of_work(write=False) as session:
        try:
            segment = get_segment(session, segment_id)
        except NotFound as exc:
            raise AnalysisError(f"the segment {segment_id} was deleted before the run started") from exc
        return frozenset(session.scalars(segment_customer_ids(session, segment_rules(segment))))


def _analyse(url: str, options: RunOptions, members: frozenset[str] | None = None) -> _Produced:
    from patron.analytics import report, results, scores
    from patron.analytics.database import database_loader
    from patron.analytics.runner import run

    loader = database_loader(
        url, market=options.market, customers=members, market_currency=options.currency == "market"
    )
    analysis = run(loader, options.analyze_options(), want_scores=options.publishes_traits)
    data = results.to_dict(analysis)
    html = report.render(analysis)
    table = scores.table(analysis) if options.publishes_traits else None
    return _Produced(data, html, table, analysis.counts[0], analysis.counts[1])


def _complete(session: Session, run_id: str, options: RunOptions, produced: _Produced) -> None:
    from patron.analytics.traits import publish_scores

    run = session.get(AnalyticsRun, run_id, with_for_update=True)
    if run is None:  # pragma: no cover - deleted while running
        raise NotFound(f"no analytics run {run_id}", code="analytics_run_not_found")
    if run.status != "running":  # failed meanwhile: its lease lapsed while this process was stuck
        raise AnalysisError("the run was given up while it ran (its lease lapsed): start a new run")
    currency = produced.results.get("currency")
    published = 0
    if produced.scores is not None:
        published = publish_scores(session, produced.scores, currency=currency)
    run.status = "completed"
    run.active = None
    run.finished_at = now()
    run.as_of = date.fromisoformat(produced.results["as_of"])
    run.currency = currency
    run.customers = produced.customers
    run.orders = produced.orders
    run.traits_published = published
    run.results = produced.results
    run.report_gzip = gzip.compress(produced.report_html.encode("utf-8"), compresslevel=6)
    session.flush()
    _prune_reports(session)
    emit_event(
        session,
        RUN_COMPLETED,
        {
            "run_id": run_id,
            "as_of": produced.results["as_of"],
            "customers": produced.customers,
            "traits_published": published,
        },
    )


def _prune_reports(session: Session) -> None:
    keep = select(AnalyticsRun.id).where(AnalyticsRun.status == "completed")
    keep = keep.order_by(AnalyticsRun.finished_at.desc(), AnalyticsRun.id.desc()).limit(KEEP_REPORTS)
    kept = list(session.scalars(keep))
    session.execute(
        update(AnalyticsRun)
        .where(AnalyticsRun.report_gzip.is_not(None), AnalyticsRun.id.not_in(kept))
        .values(report_gzip=None)
    )


def start_run(
    database: Database,
    options: RunOptions | None = None,
    *,
    trigger: str = "manual",
    actor: Actor | None = None,
) -> RunView:
    """Create and execute a run in this process (the CLI-like path used by the nightly job)."""
    with database.unit_of_work() as session:
        view = create_run(session, options, trigger=trigger, actor=actor)
    return execute_run(database, view.id)


def last_scheduled_run_at(session: Session) -> datetime | None:
    return session.scalar(
        select(AnalyticsRun.created_at)
        .where(AnalyticsRun.trigger == "schedule", AnalyticsRun.scope == ALL)
        .order_by(AnalyticsRun.created_at.desc())
        .limit(1)
    )
