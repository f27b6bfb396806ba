"""``patron analyze FILE|--database``: retention KPIs, cohorts, RFM, CLV and churn models.

Exit codes: 0 done (a model without enough data is a message, not a failure); 1 bad input or a fatal
error, with a message that names the column, the row and the problem.
"""

from __future__ import annotations

import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from patron.analytics.contracts import MODELS, SECTIONS, AnalysisError, AnalyzeOptions, Columns
from patron.cli.common import console, fail, out
from patron.cli.main import app
from patron.core.errors import PatronError
from patron.core.i18n import LANGUAGES


class PeriodChoice(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class UnitChoice(StrEnum):
    DAY = "day"
    WEEK = "week"


class EngineChoice(StrEnum):
    DUCKDB = "duckdb"
    POSTGRES = "postgres"
    SPARK = "spark"


class BadRowsChoice(StrEnum):
    FAIL = "fail"
    SKIP = "skip"


def _date(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise fail(f"{flag} must be a date YYYY-MM-DD, not {value!r}") from exc


def _list(value: str | None, allowed: tuple[str, ...], flag: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    for item in items:
        if item not in allowed:
            raise fail(f"{flag}: unknown {item!r}; choose from {','.join(allowed)}")
    return items


@app.command("analyze")
def analyze_command(
    source: Annotated[str | None, typer.Argument(help="CSV or Parquet file, or a glob")] = None,
    database: Annotated[bool, typer.Option("--database", help="read the live Patron database")] = False,
    customer_col: Annotated[str, typer.Option("--customer-col")] = "customer_id",
    date_col: Annotated[str, typer.Option("--date-col")] = "date",
    amount_col: Annotated[str, typer.Option("--amount-col")] = "amount",
    order_col: Annotated[str | None, typer.Option("--order-col")] = None,
    market_col: Annotated[str | None, typer.Option("--market-col")] = None,
    currency_col: Annotated[str | None, typer.Option("--currency-col")] = None,
    product_col: Annotated[str | None, typer.Option("--product-col")] = None,
    quantity_col: Annotated[str | None, typer.Option("--quantity-col")] = None,
    referred_col: Annotated[str | None, typer.Option("--referred-col")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="last day, inclusive")] = None,
    calibration_end: Annotated[str | None, typer.Option("--calibration-end")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone")] = None,
    period: Annotated[PeriodChoice, typer.Option("--period")] = PeriodChoice.MONTH,
    inactivity_days: Annotated[int, typer.Option("--inactivity-days")] = 365,
    time_unit: Annotated[UnitChoice, typer.Option("--time-unit")] = UnitChoice.WEEK,
    horizon: Annotated[int, typer.Option("--horizon", help="months")] = 12,
    discount_rate: Annotated[str, typer.Option("--discount-rate", help="annual, e.g. 0.10")] = "0.10",
    models: Annotated[str | None, typer.Option("--models", help="bg_nbd,pareto_nbd,gamma_gamma")] = None,
    sections: Annotated[
        str | None, typer.Option("--sections", help="kpis,cohorts,rfm,models,recommendations")
    ] = None,
    engine: Annotated[EngineChoice, typer.Option("--engine")] = EngineChoice.DUCKDB,
    report: Annotated[Path | None, typer.Option("--report", help="HTML report")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="results JSON")] = None,
    scores: Annotated[
        Path | None, typer.Option("--scores", help="per-customer scores (.parquet or .csv)")
    ] = None,
    on_bad_rows: Annotated[BadRowsChoice, typer.Option("--on-bad-rows")] = BadRowsChoice.FAIL,
    language: Annotated[str, typer.Option("--language", help="report language: en, vi, hu, th")] = "en",
) -> None:
    """Retention KPIs, cohorts, RFM, CLV and churn risk from a transaction log or the live database."""
    from patron.analytics.analysis import analyze  # Ibis, DuckDB, SciPy: only when analysing

    if (source is None) == (not database):
        raise fail("give a FILE (CSV, Parquet or a glob) or --database, not both")
    if language not in LANGUAGES:
        raise fail(f"--language must be one of {', '.join(LANGUAGES)}")
    try:
        rate = Decimal(discount_rate)
    except InvalidOperation as exc:
        raise fail(f"--discount-rate must be a number such as 0.10, not {discount_rate!r}") from exc
    try:
        options = AnalyzeOptions(
            columns=Columns(
                customer=customer_col,
                date=date_col,
                amount=amount_col,
                order=order_col,
                market=market_col,
                currency=currency_col,
                product=product_col,
                quantity=quantity_col,
                referred=referred_col,
            ),
            as_of=_date(as_of, "--as-of"),
            calibration_end=_date(calibration_end, "--calibration-end"),
            timezone=timezone,
            period=period.value,
            inactivity_days=inactivity_days,
            time_unit=time_unit.value,
            horizon_months=horizon,
            discount_rate=rate,
            models=_list(models, MODELS, "--models") or MODELS,
            sections=_list(sections, SECTIONS, "--sections") or SECTIONS,
            engine=engine.value,
            on_bad_rows=on_bad_rows.value,
            language=language,
        )
        if sys.stderr.isatty():
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task("analysing")
                result = analyze(
                    source,
                    database=database,
                    options=options,
                    report=report,
                    json_path=json_path,
                    scores=scores,
                    progress=lambda step: bar.update(task, description=step),
                )
        else:
            result = analyze(
                source, database=database, options=options, report=report, json_path=json_path, scores=scores
            )
    except AnalysisError as exc:
        raise fail(str(exc)) from exc
    except PatronError as exc:  # e.g. a model's invalid input: a message, not a traceback
        raise fail(f"{exc.detail} ({exc.code})") from exc
    except (OSError, MemoryError) as exc:
        raise fail(f"analysis failed: {exc}") from exc
    for message in result.messages:
        console.print(f"[yellow]note:[/yellow] {message}", markup=True, highlight=False)
    customers, orders, transactions = result.counts
    lines = [
        f"as of {result.as_of.isoformat()}: {transactions} transactions",
        f"customers {customers}, orders {orders}",
    ]
    for label, path in (("report", report), ("json", json_path), ("scores", scores)):
        if path is not None:
            lines.append(f"{label}: {path}")
    timing = ", ".join(f"{step} {seconds:.2f}s" for step, seconds in result.timings.items())
    lines.append(f"timings: {timing}")
    for line in lines:
        out.print(line, markup=False, highlight=False)
