"""Acquisition cohorts: customers by the period of their first order × periods since, with customer
retention (share of the cohort ordering in that period) and revenue retention (the cohort's revenue in
that period over its revenue in its first period)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from patron.analytics import tables
from patron.analytics.numbers import ratio


@dataclass(frozen=True)
class Cohort:
    label: str
    start: date
    size: int
    active: tuple[int, ...]  # customers with an order in periods since 0, 1, …
    revenue: tuple[Decimal, ...]

    @property
    def retention(self) -> list[Decimal | None]:
        return [ratio(n, self.size) for n in self.active]

    @property
    def revenue_retention(self) -> list[Decimal | None]:
        return [ratio(r, self.revenue[0]) for r in self.revenue]


def compute(o: Any, *, first: date, as_of: date, period: str) -> list[Cohort]:
    """``o``: the orders table (:func:`patron.analytics.tables.orders`)."""
    rows = tables.periods(first, as_of, period)
    cal = tables.calendar_table(rows)
    op = o.join(cal, o.day == cal.cal_day).select("customer_id", "amount", "period")
    acq = op.group_by("customer_id").aggregate(cohort=op.period.min())
    acq = acq.select(cid="customer_id", cohort="cohort")
    j = op.join(acq, op.customer_id == acq.cid)
    j = j.mutate(since=j.period - j.cohort)
    cells = j.group_by(["cohort", "since"]).aggregate(
        customers=j.customer_id.nunique(), revenue=j.amount.sum()
    )
    grid: dict[int, dict[int, tuple[int, Decimal]]] = {}
    for r in cells.to_pyarrow().to_pylist():
        grid.setdefault(int(r["cohort"]), {})[int(r["since"])] = (int(r["customers"]), Decimal(r["revenue"]))
    out: list[Cohort] = []
    last = len(rows) - 1
    for index in sorted(grid):
        cell = grid[index]
        width = last - index + 1
        active = tuple(cell.get(k, (0, Decimal(0)))[0] for k in range(width))
        revenue = tuple(cell.get(k, (0, Decimal(0)))[1] for k in range(width))
        start = rows[index].start
        out.append(Cohort(tables.period_label(start, period), start, active[0], active, revenue))
    return out
