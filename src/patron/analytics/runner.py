"""The whole analysis: read the source, then each section, with progress callbacks and timings."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

if TYPE_CHECKING:
    from patron.analytics import fitting

from patron.analytics import cohorts, columnar, kpis, rfm, summaries, tables
from patron.analytics.contracts import AnalysisError, AnalyzeOptions, SourceInfo
from patron.analytics.engine import (
    TX_TABLE,
    VIEWS_TABLE,
    EngineConfig,
    duckdb_backend,
    lowered_memory,
    postgres_backend,
    ship_transactions,
    ship_views,
    spark_backend,
)
from patron.analytics.sources import FxRates, day_number, load_file

Progress = Callable[[str], None]
ORDERS_TABLE = "patron_orders"
Loader = Callable[[Any, AnalyzeOptions], SourceInfo]


@dataclass
class Analysis:
    """Everything the JSON, the scores file and the report are made from."""

    options: AnalyzeOptions
    source: SourceInfo
    as_of: date
    first: date
    currency: str | None
    kpis: dict[str, Any] | None = None
    cohorts: list[cohorts.Cohort] | None = None
    rfm: dict[str, Any] | None = None
    fitted: fitting.Fitted | None = None
    holdout: dict[str, Any] | None = None
    tracking: dict[str, Any] | None = None
    summary: summaries.Summary | None = None
    predictions: fitting.Predictions | None = None
    rfm_scores: Any = None  # a pyarrow table, one row per customer
    recommendations: dict[str, Any] | None = None
    suggestions: Mapping[str, str] | None = None  # customer id → recommended products, best first
    views: Any = None  # page views (an Ibis table in the engine), database source only
    duck: Any = None  # the raw DuckDB connection when DuckDB is the engine (its fast paths)
    orders_sql: str = ""  # the orders table (or a query) in DuckDB, for the fast paths
    counts: tuple[int, int, int] = (0, 0, 0)  # customers, orders, transactions up to as_of
    messages: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def _timed(analysis: Analysis, step: str, progress: Progress | None) -> Iterator[None]:
    if progress:
        progress(step)
    started = time.perf_counter()
    yield
    analysis.timings[step] = round(analysis.timings.get(step, 0.0) + time.perf_counter() - started, 3)


def file_loader(pattern: str, fx: FxRates | None = None) -> Loader:
    def load(con: Any, options: AnalyzeOptions) -> SourceInfo:
        return load_file(con, pattern, options, fx=fx)

    return load


def _engine(options: AnalyzeOptions, postgres_url: str | None) -> AbstractContextManager[Any]:
    if options.engine == "postgres":
        url = (
            postgres_url
            or os.environ.get("PATRON_ANALYTICS_POSTGRES_URL")
            or os.environ.get("PATRON_DATABASE_URL", "")
        )
        if not url.startswith(("postgres", "postgresql")):
            raise AnalysisError(
                "--engine postgres needs a PostgreSQL URL in PATRON_ANALYTICS_POSTGRES_URL "
                "or PATRON_DATABASE_URL"
            )
        return postgres_backend(url)
    if options.engine == "spark":
        return spark_backend()
    if options.engine == "duckdb":
        return nullcontext(None)
    raise AnalysisError(f"unknown engine {options.engine!r}; choose duckdb, postgres or spark")


def run(
    load: Loader,
    options: AnalyzeOptions,
    *,
    progress: Progress | None = None,
    postgres_url: str | None = None,
    want_scores: bool = False,
    fast_paths: bool = True,
) -> Analysis:
    """Read and analyse. ``fast_paths=False`` makes the DuckDB engine run the Ibis expressions that
    every other engine runs instead of its own fast paths (the tests compare the two)."""
    with threadpool_limits(limits=1, user_api="blas"), quiet_third_party():
        return _run(load, options, progress, postgres_url, want_scores, fast_paths)


@contextmanager
def quiet_third_party() -> Iterator[None]:
    """Ibis 12 still calls DuckDB 2's deprecated ``fetch_arrow_table``; nothing for our users to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"fetch_arrow_table\(\) is deprecated", category=DeprecationWarning
        )
        # PySpark 4.0's toPandas passes pandas 3 a deprecated ``copy`` keyword
        warnings.filterwarnings("ignore", message=r"The copy keyword is deprecated")
        warnings.filterwarnings("ignore", message=r"The 'future\.infer_string' option is deprecated")
        yield


def _run(
    load: Loader,
    options: AnalyzeOptions,
    progress: Progress | None,
    postgres_url: str | None,
    want_scores: bool,
    fast_paths: bool = True,
) -> Analysis:
    config = EngineConfig(name=options.engine, memory_limit=options.memory_limit, threads=options.threads)
    started = time.perf_counter()
    with duckdb_backend(config) as duck, _engine(options, postgres_url) as other:
        if progress:
            progress("read")
        t0 = time.perf_counter()
        info = load(duck, options)
        read_seconds = round(time.perf_counter() - t0, 3)
        assert info.first_day is not None
        assert info.last_day is not None
        as_of = options.as_of or info.last_day
        if as_of < info.first_day:
            raise AnalysisError(
                f"--as-of {as_of.isoformat()} is before the first transaction ({info.first_day})"
            )
        if options.calibration_end is not None and options.calibration_end >= as_of:
            raise AnalysisError("--calibration-end must be before --as-of")
        if options.calibration_end is not None and options.calibration_end < info.first_day:
            raise AnalysisError("--calibration-end is before the first transaction")
        analysis = Analysis(options, info, as_of, info.first_day, info.currency)
        analysis.timings["read"] = read_seconds
        if info.skipped:
            detail = "; ".join(f"{n} × {problem}" for problem, n in info.skipped_by_problem.items())
            analysis.messages.append(f"skipped {info.skipped} bad rows ({detail})")
        tx = duck.table(TX_TABLE)
        views = duck.table(VIEWS_TABLE) if info.has_views else None
        if other is not None:
            with _timed(analysis, "ship", progress):
                tx = ship_transactions(other, options.engine, tx.to_pyarrow())
                if views is not None:
                    views = ship_views(other, options.engine, views.to_pyarrow())
        analysis.views = views
        analysis.duck = duck.con if other is None and fast_paths else None
        _sections(analysis, tx, progress, want_scores)
    analysis.timings["total"] = round(time.perf_counter() - started, 3)
    return analysis


def _sections(analysis: Analysis, tx: Any, progress: Progress | None, want_scores: bool) -> None:
    as_of_day = day_number(analysis.as_of)
    # every section starts from the orders: aggregate them once, keep them in the engine
    linked = analysis.source.orders_linked
    if analysis.duck is not None and not linked:
        # every row its own order: DuckDB's fast paths read the rows where they are (no copy)
        o = tables.orders(tx, as_of_day, linked=False)
        analysis.orders_sql = (
            f"(SELECT customer_id, order_id, day, amount FROM {TX_TABLE} WHERE day <= {as_of_day})"
        )
        _run_sections(analysis, tx, o, progress, want_scores)
    elif analysis.duck is not None:
        # a temporary table of our own, dropped as soon as the fast paths are done with it
        with _timed(analysis, "orders", progress):
            o = tx.get_backend().create_table(
                ORDERS_TABLE, tables.orders(tx, as_of_day), temp=True, overwrite=True
            )
        analysis.orders_sql = ORDERS_TABLE
        try:
            _run_sections(analysis, tx, o, progress, want_scores)
        finally:
            _drop_orders(analysis)
    else:
        with _timed(analysis, "orders", progress):
            o = tables.orders(tx, as_of_day, linked=linked).cache()
        with o:
            analysis.orders_sql = o.get_name()
            _run_sections(analysis, tx, o, progress, want_scores)
    # the orders table is dropped by now: its memory is free for the recommendations
    _recommendations(analysis, tx, progress, want_scores)


def _run_sections(analysis: Analysis, tx: Any, o: Any, progress: Progress | None, want_scores: bool) -> None:
    options = analysis.options
    as_of_day = day_number(analysis.as_of)
    sections = set(options.sections)
    totals: columnar.CustomerTotals | None = None
    occ: columnar.Occasions | None = None
    if analysis.duck is not None and ({"kpis", "cohorts", "rfm", "models"} & sections or want_scores):
        with _timed(analysis, "customers", progress):
            found = columnar.occasions(analysis.duck, analysis.orders_sql)
            if found is not None:
                totals, occ = found
            del found
    first_revenue = None
    one_date = False
    if totals is not None and occ is not None:
        # what still needs the orders table in the engine; then it can go (memory for NumPy)
        with _timed(analysis, "customers", progress), lowered_memory(analysis.duck, 320):
            if "kpis" in sections:
                first_revenue = columnar.first_order_revenue(analysis.duck, analysis.orders_sql, totals, occ)
            one_date = "cohorts" in sections and _orders_on_one_date(analysis)
        if options.calibration_end is None:
            _drop_orders(analysis)
    if totals is not None:
        counts = {"customers": len(totals), "orders": int(totals.orders.sum())}
    else:
        counts = o.aggregate(customers=o.customer_id.nunique(), orders=o.count()).to_pyarrow().to_pylist()[0]
    transactions = tables.counted(tx, as_of_day).count().to_pyarrow().as_py()
    analysis.counts = (int(counts["customers"]), int(counts["orders"]), int(transactions))
    if "kpis" in sections:
        with _timed(analysis, "kpis", progress):
            parts = None
            if totals is not None and occ is not None and first_revenue is not None:
                parts = columnar.kpi_parts(
                    totals,
                    occ,
                    first_revenue=first_revenue,
                    first=analysis.first,
                    as_of=analysis.as_of,
                    period=options.period,
                    inactivity_days=options.inactivity_days,
                )
            analysis.kpis = kpis.compute(
                tx,
                o,
                first=analysis.first,
                as_of=analysis.as_of,
                period=options.period,
                inactivity_days=options.inactivity_days,
                has_referred=analysis.source.has_referred,
                has_market=analysis.source.has_market,
                parts=parts,
            )
    if "cohorts" in sections:
        with _timed(analysis, "cohorts", progress):
            if totals is not None and occ is not None and one_date:
                analysis.cohorts = columnar.cohorts(
                    totals, occ, first=analysis.first, as_of=analysis.as_of, period=options.period
                )
            else:
                analysis.cohorts = cohorts.compute(
                    tx, first=analysis.first, as_of=analysis.as_of, period=options.period
                )
    if ("rfm" in sections or want_scores) and totals is not None:
        with _timed(analysis, "rfm", progress):
            table = columnar.rfm_scored(totals, as_of_day)
            analysis.rfm = columnar.rfm_compute(table, totals)
            if want_scores:
                analysis.rfm_scores = table
    elif "rfm" in sections or want_scores:
        with _timed(analysis, "rfm", progress), rfm.scored(o, as_of_day).cache() as scored:
            analysis.rfm = rfm.compute(scored)
            if want_scores:
                analysis.rfm_scores = scored.order_by("customer_id").to_pyarrow()
    del occ  # the models need the memory more
    if "models" in sections and options.models:
        full = None if totals is None else columnar.summary(totals, as_of_day)
        del totals
        _models(analysis, o, progress, as_of_day, want_scores, full)


def _recommendations(analysis: Analysis, tx: Any, progress: Progress | None, want_scores: bool) -> None:
    options = analysis.options
    sections = set(options.sections)
    as_of_day = day_number(analysis.as_of)
    if "recommendations" in sections and analysis.source.has_product:
        from patron.analytics import recommendations

        with _timed(analysis, "recommendations", progress):
            views = analysis.views
            top_n = options.top_products
            if analysis.duck is not None and views is None:
                analysis.recommendations, analysis.suggestions = recommendations.compute_duckdb(
                    analysis.duck, as_of_day, top_n=top_n, want_suggestions=want_scores
                )
            else:
                analysis.recommendations = recommendations.compute(tx, as_of_day, top_n=top_n, views=views)
                if want_scores:
                    analysis.suggestions = recommendations.suggestions(
                        tx, as_of_day, top_n=top_n, views=views
                    )
    elif "recommendations" in sections and options.columns.product is not None:
        analysis.messages.append("recommendations need product values: the product column is empty")


def _drop_orders(analysis: Analysis) -> None:
    if analysis.duck is not None and analysis.orders_sql == ORDERS_TABLE:
        analysis.duck.execute(f"DROP TABLE IF EXISTS {ORDERS_TABLE}")


def _orders_on_one_date(analysis: Analysis) -> bool:
    """Every order's rows on one date: then cohorts (made of rows) can use the orders' occasions."""
    if not analysis.source.orders_linked:
        return True
    found = analysis.duck.execute(f"SELECT count(*) FROM {analysis.orders_sql} WHERE last_day <> day")
    return bool(found.fetchall()[0][0] == 0)


def _models(
    analysis: Analysis,
    o: Any,
    progress: Progress | None,
    as_of_day: int,
    want_scores: bool,
    full: summaries.Summary | None,
) -> None:
    if full is not None and analysis.options.calibration_end is None:
        _fit_models(analysis, None, progress, as_of_day, want_scores, full)
        return
    with tables.occasions(o).cache() as occ:
        _fit_models(analysis, occ, progress, as_of_day, want_scores, full)


def _fit_models(
    analysis: Analysis,
    occ: Any,
    progress: Progress | None,
    as_of_day: int,
    want_scores: bool,
    full: summaries.Summary | None,
) -> None:
    from patron.analytics import fitting

    options = analysis.options
    with _timed(analysis, "summaries", progress):
        if full is None:
            full = summaries.fetch(occ, as_of_day)
        analysis.summary = full
        calibration = None
        if options.calibration_end is not None:
            cutoff = day_number(options.calibration_end)
            calibration = summaries.fetch(occ, as_of_day, cutoff)
    with _timed(analysis, "models", progress):
        fitted = fitting.fit(calibration if calibration is not None else full, options)
        analysis.fitted = fitted
        analysis.messages.extend(fitted.problems.values())
    if calibration is not None and options.calibration_end is not None:
        with _timed(analysis, "holdout", progress):
            cutoff = day_number(options.calibration_end)
            analysis.holdout = fitting.holdout(calibration, fitted, options, as_of_day - cutoff)
            analysis.tracking = fitting.tracking(
                calibration, fitted, options, day_number(analysis.first), as_of_day
            )
            if analysis.tracking is not None:
                by_day = summaries.repeat_occasions_by_day(occ, cutoff)
                analysis.tracking["actual"] = [
                    sum(n for d, n in by_day.items() if d <= point) for point in analysis.tracking["days"]
                ]
                analysis.tracking["calibration_end_day"] = cutoff
        scoring = fitting.fit(full, options) if want_scores else fitted
    else:
        scoring = fitted
    with _timed(analysis, "predictions", progress):
        analysis.predictions = fitting.predict(full, scoring, options)
    pred = analysis.predictions
    if pred is None and not fitted.problems:
        analysis.messages.append(
            "P(alive), expected purchases and CLV need a transaction model: "
            "add bg_nbd or pareto_nbd to --models"
        )
    if pred is not None and pred.clv is not None and not np.all(np.isfinite(pred.clv)):
        missing = int(np.sum(~np.isfinite(pred.clv)))
        analysis.messages.append(
            f"Gamma-Gamma: the expected spend of {missing} customers is undefined with these parameters "
            "(q ≤ 1); their expected spend and CLV are left empty"
        )
