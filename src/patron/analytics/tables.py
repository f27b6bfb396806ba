"""The derived Ibis tables every section starts from, written once for every engine.

Days are integers (days since 1970-01-01 of the local date), so date arithmetic is plain integer
arithmetic and identical on DuckDB, PostgreSQL and Spark.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import ibis
import pyarrow as pa

from patron.analytics.sources import day_number, from_day_number


@dataclass(frozen=True)
class PeriodRow:
    index: int
    start: date
    end: date  # inclusive; the last period ends at as_of

    @property
    def start_day(self) -> int:
        return day_number(self.start)

    @property
    def end_day(self) -> int:
        return day_number(self.end)


def period_start(value: date, period: str) -> date:
    if period == "week":
        return value - timedelta(days=value.weekday())
    if period == "month":
        return value.replace(day=1)
    if period == "quarter":
        return date(value.year, 3 * ((value.month - 1) // 3) + 1, 1)
    return date(value.year, 1, 1)


def next_period_start(start: date, period: str) -> date:
    if period == "week":
        return start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def add_months(value: date, months: int) -> date:
    month = value.month - 1 + months
    year = value.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(value.day, calendar.monthrange(year, month)[1]))


def period_label(start: date, period: str) -> str:
    if period == "month":
        return f"{start.year:04d}-{start.month:02d}"
    if period == "quarter":
        return f"{start.year:04d}-Q{(start.month - 1) // 3 + 1}"
    if period == "year":
        return f"{start.year:04d}"
    return start.isoformat()


def periods(first: date, as_of: date, period: str) -> list[PeriodRow]:
    rows: list[PeriodRow] = []
    start = period_start(first, period)
    index = 0
    while start <= as_of:
        nxt = next_period_start(start, period)
        rows.append(PeriodRow(index, start, min(nxt - timedelta(days=1), as_of)))
        start, index = nxt, index + 1
    return rows


def calendar_table(rows: list[PeriodRow]) -> Any:
    """One row per day of the window: day → period index (small: a few thousand rows)."""
    days: list[int] = []
    idx: list[int] = []
    for row in rows:
        for d in range(row.start_day, row.end_day + 1):
            days.append(d)
            idx.append(row.index)
    return ibis.memtable(
        pa.table({"cal_day": pa.array(days, pa.int32()), "period": pa.array(idx, pa.int32())})
    )


def period_table(rows: list[PeriodRow]) -> Any:
    return ibis.memtable(
        pa.table(
            {
                "period": pa.array([r.index for r in rows], pa.int32()),
                "p_start": pa.array([r.start_day for r in rows], pa.int32()),
                "p_end": pa.array([r.end_day for r in rows], pa.int32()),
            }
        )
    )


def transactions(tx: Any, as_of_day: int) -> Any:
    """All rows up to ``as_of`` (with the database's product lines: see :func:`counted`)."""
    return tx.filter(tx.day <= as_of_day)


def counted(tx: Any, as_of_day: int) -> Any:
    """The rows that count as transactions up to ``as_of``."""
    return tx.filter(tx.day <= as_of_day, ~tx.line_only)


def orders(tx: Any, as_of_day: int, *, linked: bool = True) -> Any:
    """One row per (customer, order): its date is its first row's, refunds netted into its amount.

    ``linked=False`` says every row is its own order (no order column): no aggregation needed."""
    t = transactions(tx, as_of_day)
    if not linked:
        return t.select("customer_id", "order_id", "day", "amount")
    # last_day: an order whose rows span several dates (a later refund) is told apart
    return t.group_by(["customer_id", "order_id"]).aggregate(
        day=t.day.min(), amount=t.amount.sum(), last_day=t.day.max()
    )


def customers(order_table: Any) -> Any:
    o = order_table
    return o.group_by("customer_id").aggregate(
        first_day=o.day.min(),
        last_day=o.day.max(),
        orders=o.count(),
        revenue=o.amount.sum(),
    )


def occasions(order_table: Any) -> Any:
    """Purchase occasions: a customer's orders on one date count once (the models' unit)."""
    o = order_table
    return o.group_by(["customer_id", "day"]).aggregate(amount=o.amount.sum())


def day_of(value: int) -> date:
    return from_day_number(value)
