"""Options and results of an analysis (frozen dataclasses crossing the package boundary)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

Period = Literal["week", "month", "quarter", "year"]
TimeUnit = Literal["day", "week"]
OnBadRows = Literal["fail", "skip"]

SECTIONS: tuple[str, ...] = ("kpis", "cohorts", "rfm", "models", "recommendations")
MODELS: tuple[str, ...] = ("bg_nbd", "pareto_nbd", "gamma_gamma")
PERIODS: tuple[str, ...] = ("week", "month", "quarter", "year")
TIME_UNIT_DAYS: dict[str, int] = {"day": 1, "week": 7}


class AnalysisError(Exception):
    """Bad input or an impossible request: the message is shown to the analyst as is."""


@dataclass(frozen=True)
class Columns:
    """Column names in the source file."""

    customer: str = "customer_id"
    date: str = "date"
    amount: str = "amount"
    order: str | None = None
    market: str | None = None
    currency: str | None = None
    product: str | None = None
    quantity: str | None = None
    referred: str | None = None


@dataclass(frozen=True)
class AnalyzeOptions:
    columns: Columns = field(default_factory=Columns)
    as_of: date | None = None
    calibration_end: date | None = None
    timezone: str | None = None
    period: Period = "month"
    inactivity_days: int = 365
    time_unit: TimeUnit = "week"
    horizon_months: int = 12
    discount_rate: Decimal = Decimal("0.10")
    models: tuple[str, ...] = MODELS
    sections: tuple[str, ...] = SECTIONS
    engine: str = "duckdb"
    on_bad_rows: OnBadRows = "fail"
    language: str = "en"
    memory_limit: str = "512MB"
    threads: int | None = None
    top_products: int = 5

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise AnalysisError(f"--period must be one of {', '.join(PERIODS)}, not {self.period!r}")
        if self.time_unit not in TIME_UNIT_DAYS:
            raise AnalysisError(f"--time-unit must be day or week, not {self.time_unit!r}")
        if self.inactivity_days < 1:
            raise AnalysisError("--inactivity-days must be at least 1")
        if self.horizon_months < 1:
            raise AnalysisError("--horizon must be at least 1 month")
        if not Decimal(0) <= self.discount_rate < Decimal(10):
            raise AnalysisError("--discount-rate must be an annual fraction, e.g. 0.10")
        for model in self.models:
            if model not in MODELS:
                raise AnalysisError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
        for section in self.sections:
            if section not in SECTIONS:
                raise AnalysisError(f"unknown section {section!r}; choose from {', '.join(SECTIONS)}")
        if self.on_bad_rows not in ("fail", "skip"):
            raise AnalysisError("--on-bad-rows must be fail or skip")
        if self.as_of and self.calibration_end and self.calibration_end >= self.as_of:
            raise AnalysisError("--calibration-end must be before --as-of")


@dataclass(frozen=True)
class BadRow:
    row: int
    column: str
    value: str | None
    problem: str
    file: str | None = None

    def describe(self) -> str:
        where = f"{self.file}, row {self.row}" if self.file else f"row {self.row}"
        shown = "empty" if self.value is None or self.value.strip() == "" else repr(self.value)
        return f"{where}, column {self.column!r}: {shown}: {self.problem}"


@dataclass(frozen=True)
class SourceInfo:
    """What was read: counts, skipped rows by problem, the currency of the amounts."""

    transactions: int
    skipped: int
    skipped_by_problem: dict[str, int]
    currency: str | None
    first_day: date | None
    last_day: date | None
    has_market: bool = False
    has_product: bool = False
    has_referred: bool = False
    orders_linked: bool = True  # rows are linked into orders (else every row is its own order)
    has_views: bool = False  # page views from the timeline (database source)
    examples: tuple[BadRow, ...] = ()
