"""RFM: recency (days since the last order as of ``as_of``), frequency (orders) and monetary value
(net spend) per customer, scored 1–5 by a deterministic ranking, and the 11 named segments.

score = ceil(5 × rank / n), rank 1..n ascending from worst to best, ties broken by customer id, so
every engine gives identical scores. Segments come from R and FM = ceil((F + M) / 2):

    R \\ FM   1               2                    3                    4          5
    5        New             Potential loyalists  Potential loyalists  Champions  Champions
    4        Promising       Potential loyalists  Potential loyalists  Loyal      Loyal
    3        About to sleep  About to sleep       Need attention       Loyal      Loyal
    2        Hibernating     Hibernating          At risk              At risk    Can't lose them
    1        Lost            Hibernating          At risk              At risk    Can't lose them
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ibis

from patron.analytics.numbers import ratio

SEGMENTS: tuple[str, ...] = (
    "Champions",
    "Loyal",
    "Potential loyalists",
    "New",
    "Promising",
    "Need attention",
    "About to sleep",
    "At risk",
    "Can't lose them",
    "Hibernating",
    "Lost",
)

SEGMENT_MAP: dict[tuple[int, int], str] = {}
_ROWS = {
    5: ("New", "Potential loyalists", "Potential loyalists", "Champions", "Champions"),
    4: ("Promising", "Potential loyalists", "Potential loyalists", "Loyal", "Loyal"),
    3: ("About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"),
    2: ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"),
    1: ("Lost", "Hibernating", "At risk", "At risk", "Can't lose them"),
}
for _r, _names in _ROWS.items():
    for _fm, _name in enumerate(_names, start=1):
        SEGMENT_MAP[(_r, _fm)] = _name


def segment_of(r: int, f: int, m: int) -> str:
    return SEGMENT_MAP[(r, (f + m + 1) // 2)]


def scored(o: Any, as_of_day: int) -> Any:
    """Per customer: recency, frequency, monetary, r/f/m scores, segment (an Ibis table).

    ``o``: the orders table up to ``as_of`` (:func:`patron.analytics.tables.orders`)."""
    c = o.group_by("customer_id").aggregate(
        recency=as_of_day - o.day.max(), frequency=o.count(), monetary=o.amount.sum()
    )
    n = c.count().over(ibis.window())

    def score(*keys: Any) -> Any:
        rank = ibis.row_number().over(ibis.window(order_by=[*keys, c.customer_id])) + 1
        return ((rank * 5 + n - 1) // n).cast("int32")

    c = c.mutate(
        r_score=score(ibis.desc(c.recency)),
        f_score=score(c.frequency),
        m_score=score(c.monetary),
    )
    fm = ((c.f_score + c.m_score + 1) // 2).cast("int32")
    cases = [((c.r_score == r) & (fm == f), name) for (r, f), name in SEGMENT_MAP.items()]
    return c.mutate(segment=ibis.cases(*cases, else_="Lost"))


def compute(s: Any) -> dict[str, Any]:
    """Segment sizes and revenue, and the R × F grid, from the :func:`scored` table."""
    agg = s.group_by("segment").aggregate(
        customers=s.count(),
        revenue=s.monetary.sum(),
    )
    rows = {r["segment"]: r for r in agg.to_pyarrow().to_pylist()}
    total = sum(int(r["customers"]) for r in rows.values())
    segments: dict[str, dict[str, Any]] = {}
    for name in SEGMENTS:
        r = rows.get(name)
        customers = int(r["customers"]) if r else 0
        segments[name] = {
            "customers": customers,
            "share": ratio(customers, total),
            "revenue": Decimal(r["revenue"]) if r else Decimal(0),
        }
    grid = s.group_by(["r_score", "f_score"]).aggregate(customers=s.count())
    cells = {
        (int(r["r_score"]), int(r["f_score"])): int(r["customers"]) for r in grid.to_pyarrow().to_pylist()
    }
    return {"segments": segments, "grid": cells, "customers": total}
