"""The DuckDB engine's fast path for the per-customer figures: one aggregate query, then NumPy.

The Ibis expressions (:mod:`patron.analytics.rfm`, :mod:`patron.analytics.summaries`) define the
figures and run on every engine; on DuckDB the same figures come from one query over the orders
table that returns, per customer (in ascending id order): purchase occasions (distinct dates),
orders, first and last date, net spend and the first occasion's spend. Amounts stay exact: DuckDB's
decimals arrive as their unscaled integers (units of 10⁻⁴), so sums, comparisons and the RFM ranking
are exact, and the one conversion to float (the mean repeat spend) is the same division DuckDB's cast
performs. Identical results are a tested property (``tests/analytics/test_columnar.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from patron.analytics.cohorts import Cohort
from patron.analytics.engine import lowered_memory
from patron.analytics.kpis import Parts, last_twelve_months
from patron.analytics.numbers import ratio
from patron.analytics.rfm import SEGMENT_MAP, SEGMENTS
from patron.analytics.summaries import Summary
from patron.analytics.tables import PeriodRow, period_label, periods

IntArray = npt.NDArray[np.int64]

#: The scale of the engine's amounts (DECIMAL(18, 4) in ``patron_tx``; sums keep the scale).
SCALE = 4


@dataclass(frozen=True)
class CustomerTotals:
    """Per customer, in ascending customer id order (the engine's ``ORDER BY customer_id``)."""

    customer_id: pa.Array
    occasions: IntArray
    orders: IntArray
    first_day: IntArray
    last_day: IntArray
    total: IntArray  # net spend, unscaled (units of 10^-SCALE)
    first_spend: IntArray  # the first occasion's net spend, unscaled

    def __len__(self) -> int:
        return len(self.customer_id)


def _unscaled(column: pa.ChunkedArray | pa.Array) -> IntArray | None:
    """The unscaled integers of a decimal column with scale SCALE, or None when one does not fit in
    64 bits (the caller then takes the general path)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_decimal(array.type) or array.type.scale != SCALE or array.null_count:
        return None
    if array.type.bit_width != 128:
        return None
    words = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        2 * array.offset : 2 * (array.offset + len(array))
    ]
    low, high = words[0::2], words[1::2]
    if not np.array_equal(high, low >> 63):  # sign extension: the value fits in int64
        return None
    return np.ascontiguousarray(low)


@dataclass(frozen=True)
class Occasions:
    """Purchase occasions (a customer's distinct order dates) sorted by customer, then date."""

    customer: npt.NDArray[np.int32]  # index into CustomerTotals.customer_id
    day: npt.NDArray[np.int32]
    orders: npt.NDArray[np.int32]
    amount: IntArray  # net spend of the occasion's orders, unscaled
    starts: IntArray  # each customer's first occasion (len = customers + 1, the last = occasions)


CUSTOMERS_TABLE = "patron_customer_codes"

#: DuckDB's memory limit (MiB) while the occasions are read, if the analysis' own limit is higher.
OCCASIONS_MEMORY_MIB = 320


def customer_codes(con: Any, orders_table: str) -> pa.Array:
    """Number the customers of the orders table 0, 1, … in ascending id order (the engine's
    ``ORDER BY customer_id``) into a temporary table; returns their ids in that order."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {CUSTOMERS_TABLE} AS
            SELECT customer_id, CAST(row_number() OVER (ORDER BY customer_id) - 1 AS INTEGER) AS cid
            FROM (SELECT DISTINCT customer_id FROM {orders_table})"""
    )
    ids = con.sql(f"SELECT customer_id FROM {CUSTOMERS_TABLE} ORDER BY cid").to_arrow_table().column(0)
    return ids.combine_chunks()


def occasions(con: Any, orders_table: str) -> tuple[CustomerTotals, Occasions] | None:
    """One pass over the orders table (``customer_id, order_id, day, amount``): its occasions, and
    per customer their totals; None when an amount does not fit the exact integer path."""
    customer_id = customer_codes(con, orders_table)
    try:
        # amounts as their unscaled integers (an integral decimal cast to BIGINT is exact; one that
        # does not fit raises, and the general path takes over)
        # the result (tens of bytes per occasion) arrives beside DuckDB's own memory
        with lowered_memory(con, OCCASIONS_MEMORY_MIB):
            table = con.sql(
                f"""SELECT c.cid, o.day, CAST(count(*) AS INTEGER) AS n,
                       CAST(sum(o.amount) * {10**SCALE} AS BIGINT) AS amount
                FROM {orders_table} o JOIN {CUSTOMERS_TABLE} c USING (customer_id)
                GROUP BY c.cid, o.day ORDER BY c.cid, o.day"""
            ).to_arrow_table()
    except duckdb.Error:
        return None
    if not table.num_rows or table.column("amount").null_count:
        return None
    amount = np.asarray(table.column("amount").to_numpy(), dtype=np.int64)
    if float(np.abs(amount).astype(np.float64).sum()) >= 2.0**62:
        return None  # sums over customers could overflow 64 bits: the general path
    customer = np.asarray(table.column("cid").to_numpy(), dtype=np.int32)
    day = np.asarray(table.column("day").to_numpy(), dtype=np.int32)
    n = np.asarray(table.column("n").to_numpy(), dtype=np.int32)
    del table
    first = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
    starts = np.append(first, customer.size).astype(np.int64)
    last = starts[1:] - 1
    totals = CustomerTotals(
        customer_id=customer_id,
        occasions=np.diff(starts),
        orders=np.add.reduceat(n.astype(np.int64), first),
        first_day=day[first].astype(np.int64),
        last_day=day[last].astype(np.int64),
        total=np.add.reduceat(amount, first),
        first_spend=amount[first],
    )
    return totals, Occasions(customer=customer, day=day, orders=n, amount=amount, starts=starts)


def to_decimal(unscaled: int) -> Decimal:
    return Decimal(int(unscaled)).scaleb(-SCALE)


def decimal_array(unscaled: IntArray) -> pa.Array:
    """Unscaled integers as an Arrow DECIMAL(38, SCALE) array (what the engine's sums return)."""
    words = np.empty((unscaled.size, 2), dtype=np.int64)
    words[:, 0] = unscaled
    words[:, 1] = unscaled >> 63
    return pa.Array.from_buffers(
        pa.decimal128(38, SCALE), unscaled.size, [None, pa.py_buffer(words.tobytes())]
    )


def summary(totals: CustomerTotals, as_of_day: int) -> Summary:
    """:func:`patron.analytics.summaries.fetch` without a calibration end."""
    frequency = (totals.occasions - 1).astype(np.float64)
    repeat_spend = (totals.total - totals.first_spend).astype(np.float64) / float(10**SCALE)
    with np.errstate(divide="ignore", invalid="ignore"):
        monetary = np.where(frequency > 0, repeat_spend / np.maximum(frequency, 1), 0.0)
    return Summary(
        customer_id=pa.chunked_array([totals.customer_id]),
        frequency=frequency,
        recency_days=(totals.last_day - totals.first_day).astype(np.float64),
        T_days=(as_of_day - totals.first_day).astype(np.float64),
        monetary=monetary,
        first_day=totals.first_day.copy(),
    )


def _scores(order: IntArray, n: int) -> npt.NDArray[np.int32]:
    """score = ceil(5 × rank / n) for the customers in ``order`` (rank 1 first)."""
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    return ((rank * 5 + n - 1) // n).astype(np.int32)


_SEGMENT_INDEX = np.zeros((6, 6), dtype=np.int64)
for (_r, _fm), _name in SEGMENT_MAP.items():
    _SEGMENT_INDEX[_r, _fm] = SEGMENTS.index(_name)


def rfm_scored(totals: CustomerTotals, as_of_day: int) -> pa.Table:
    """:func:`patron.analytics.rfm.scored` as an Arrow table in customer id order."""
    n = len(totals)
    recency = as_of_day - totals.last_day
    # ties broken by customer id: the customers are in id order and the sorts are stable
    r_score = _scores(np.argsort(-recency, kind="stable"), n)
    f_score = _scores(np.argsort(totals.orders, kind="stable"), n)
    m_score = _scores(np.argsort(totals.total, kind="stable"), n)
    fm = (f_score.astype(np.int64) + m_score + 1) // 2
    segment_index = _SEGMENT_INDEX[r_score, fm]
    segment = pa.DictionaryArray.from_arrays(pa.array(segment_index, pa.int32()), pa.array(SEGMENTS))
    return pa.table(
        {
            "customer_id": totals.customer_id,
            "recency": pa.array(recency, pa.int64()),
            "frequency": pa.array(totals.orders, pa.int64()),
            "monetary": decimal_array(totals.total),
            "r_score": pa.array(r_score, pa.int32()),
            "f_score": pa.array(f_score, pa.int32()),
            "m_score": pa.array(m_score, pa.int32()),
            "segment": segment.cast(pa.string()),
        }
    )


def rfm_compute(scored: pa.Table, totals: CustomerTotals) -> dict[str, Any]:
    """:func:`patron.analytics.rfm.compute` on the table of :func:`rfm_scored`."""
    n = scored.num_rows
    segment = pc.index_in(scored.column("segment"), value_set=pa.array(SEGMENTS)).to_numpy()
    counts = np.bincount(segment, minlength=len(SEGMENTS))
    order = np.argsort(segment, kind="stable")
    sums = np.zeros(len(SEGMENTS), dtype=object)
    if n:
        starts = np.flatnonzero(np.r_[True, np.diff(segment[order]) != 0])
        for start, value in zip(starts, np.add.reduceat(totals.total[order], starts), strict=True):
            sums[segment[order][start]] = int(value)
    segments: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(SEGMENTS):
        customers = int(counts[i])
        segments[name] = {
            "customers": customers,
            "share": ratio(customers, n),
            "revenue": to_decimal(sums[i]) if customers else Decimal(0),
        }
    r = scored.column("r_score").to_numpy().astype(np.int64)
    f = scored.column("f_score").to_numpy().astype(np.int64)
    grid_counts = np.bincount(r * 6 + f, minlength=36)
    grid = {(int(k // 6), int(k % 6)): int(v) for k, v in enumerate(grid_counts) if v}
    return {"segments": segments, "grid": grid, "customers": n}


def exact_sums(index: npt.NDArray[Any], values: IntArray, size: int) -> list[int]:
    """Exact integer sums of ``values`` per ``index`` (0 ≤ index < size): float bincounts over 26-bit
    halves, a million values at a time (each partial sum stays below 2^53, so it is exact)."""
    high_total = [0] * size
    low_total = [0] * size
    step = 1 << 20
    for start in range(0, values.size, step):
        part, where = values[start : start + step], index[start : start + step]
        high = np.bincount(where, weights=(part >> 26).astype(np.float64), minlength=size)
        low = np.bincount(where, weights=(part & (2**26 - 1)).astype(np.float64), minlength=size)
        for i in np.flatnonzero((high != 0) | (low != 0)):
            high_total[i] += int(high[i])
            low_total[i] += int(low[i])
    return [h * 2**26 + lo for h, lo in zip(high_total, low_total, strict=True)]


def _period_of(days: npt.NDArray[Any], rows: list[PeriodRow]) -> npt.NDArray[np.int32]:
    """Each day's period index, or -1 outside the periods (a lookup table over the window)."""
    base = rows[0].start_day
    table = np.full(rows[-1].end_day - base + 3, -1, dtype=np.int32)  # one spare day on each side
    for i, r in enumerate(rows):
        table[r.start_day - base + 1 : r.end_day - base + 2] = i
    at = np.clip(days - (base - 1), 0, table.size - 1)
    return np.asarray(table[at], dtype=np.int32)


def _count_by_period(periods: npt.NDArray[Any], size: int) -> IntArray:
    return np.bincount(periods[periods >= 0], minlength=size)


def movements(
    totals: CustomerTotals, occ: Occasions, groups: list[list[PeriodRow]], inactivity_days: int
) -> dict[int, tuple[int, int, int, int, int]]:
    """:func:`patron.analytics.kpis.movements` on the occasions: period index → S, E, N, lost,
    reactivated (the linear method for periods no longer than the inactivity window, else each
    customer's activity at the period's two ends)."""
    n = inactivity_days
    day = occ.day  # int32: half the memory of the temporaries below
    same_as_prev = np.r_[False, occ.customer[1:] == occ.customer[:-1]]
    prev = np.where(same_as_prev, np.r_[0, day[:-1]], 0)
    same_as_next = np.r_[same_as_prev[1:], False]
    nxt = np.where(same_as_next, np.r_[day[1:], 0], 0)
    is_start = ~same_as_prev | (day - prev >= n)
    is_end = ~same_as_next | (nxt - day >= n)
    start_days = np.sort(day[is_start])
    end_days = np.sort(day[is_end] + (n - 1))

    def active(t: int) -> int:
        return int(np.searchsorted(start_days, t, side="right") - np.searchsorted(end_days, t, side="left"))

    out: dict[int, tuple[int, int, int, int, int]] = {}
    for rows in groups:
        if all(r.end_day - r.start_day + 1 <= n for r in rows):
            out.update(
                _linear(rows, totals, day, prev, nxt, same_as_prev, same_as_next, is_start, is_end, n, active)
            )
        else:
            out.update(_by_customer(rows, totals, occ, n))
    return out


def _linear(
    rows: list[PeriodRow],
    totals: CustomerTotals,
    day: npt.NDArray[Any],
    prev: npt.NDArray[Any],
    nxt: npt.NDArray[Any],
    has_prev: npt.NDArray[np.bool_],
    has_next: npt.NDArray[np.bool_],
    is_start: npt.NDArray[np.bool_],
    is_end: npt.NDArray[np.bool_],
    n: int,
    active: Any,
) -> dict[int, tuple[int, int, int, int, int]]:
    """:func:`patron.analytics.kpis.movements_linear`."""
    size = len(rows)
    index = {r.index: i for i, r in enumerate(rows)}
    p_start = np.array([r.start_day for r in rows], dtype=np.int64)
    p_end = np.array([r.end_day for r in rows], dtype=np.int64)
    # lost: a spell ends on s_end = day + n - 1, in the period of s_end + 1, with no purchase by its end
    ends = np.flatnonzero(is_end)
    ended_in = _period_of(day[ends] + n, rows)
    ok = ended_in >= 0
    ends, ended_in = ends[ok], ended_in[ok]
    lost = _count_by_period(np.where(~has_next[ends] | (nxt[ends] > p_end[ended_in]), ended_in, -1), size)
    # reactivated: a later spell starts in the period, the previous one ended before its day before
    again = np.flatnonzero(is_start & has_prev)
    again_in = _period_of(day[again], rows)
    ok = again_in >= 0
    again, again_in = again[ok], again_in[ok]
    react = _count_by_period(np.where(prev[again] + (n - 1) < p_start[again_in] - 1, again_in, -1), size)
    new = _count_by_period(_period_of(totals.first_day, rows), size)
    out: dict[int, tuple[int, int, int, int, int]] = {}
    for r in rows:
        i = index[r.index]
        out[r.index] = (
            active(r.start_day - 1),
            active(r.end_day),
            int(new[i]),
            int(lost[i]),
            int(react[i]),
        )
    return out


def _active_at(occ: Occasions, t: int, n: int) -> npt.NDArray[np.bool_]:
    """Per customer: bought within the ``n`` days up to day ``t``."""
    day = occ.day.astype(np.int64)
    # the last occasion on or before t: occasions are sorted by (customer, day)
    customers = occ.starts.size - 1
    span = int(day.max()) - int(day.min()) + 3
    low = int(day.min()) - 1
    keys = occ.customer.astype(np.int64) * span + (day - low)
    query = np.arange(customers, dtype=np.int64) * span + min(max(t - low, 0), span - 1)
    last = np.searchsorted(keys, query, side="right") - 1
    found = last >= occ.starts[:-1]
    return found & (day[np.maximum(last, 0)] >= t - n + 1)


def _by_customer(
    rows: list[PeriodRow], totals: CustomerTotals, occ: Occasions, n: int
) -> dict[int, tuple[int, int, int, int, int]]:
    """:func:`patron.analytics.kpis.movements_joined`: any period length."""
    out: dict[int, tuple[int, int, int, int, int]] = {}
    for r in rows:
        at_start = _active_at(occ, r.start_day - 1, n)
        at_end = _active_at(occ, r.end_day, n)
        new = (totals.first_day >= r.start_day) & (totals.first_day <= r.end_day)
        out[r.index] = (
            int(at_start.sum()),
            int(at_end.sum()),
            int(new.sum()),
            int((at_start & ~at_end).sum()),
            int((~at_start & at_end & ~new).sum()),
        )
    return out


def first_order_revenue(con: Any, orders_table: str, totals: CustomerTotals, occ: Occasions) -> Decimal:
    """The revenue of every customer's first order: their first occasion's spend when it is one
    order, else (one small query) the order with the lowest id that day, as the Ibis ranking has it."""
    first_orders = occ.orders[occ.starts[:-1]]
    single = first_orders == 1
    revenue = to_decimal(int(totals.first_spend[single].sum()))
    several = np.flatnonzero(~single)
    if not several.size:
        return revenue
    firsts = pa.table(
        {
            "customer_id": totals.customer_id.take(pa.array(several)),
            "first_day": totals.first_day[several],
        }
    )
    con.register("patron_first_days", firsts)
    try:
        found = con.sql(
            f"""SELECT sum(first_amount) FROM (
                  SELECT arg_min(o.amount, o.order_id) AS first_amount FROM {orders_table} o
                  JOIN patron_first_days f ON o.customer_id = f.customer_id AND o.day = f.first_day
                  GROUP BY o.customer_id)"""
        ).fetchall()[0][0]
    finally:
        con.unregister("patron_first_days")
    return revenue + Decimal(found)


def kpi_parts(
    totals: CustomerTotals,
    occ: Occasions,
    *,
    first_revenue: Decimal,
    first: date,
    as_of: date,
    period: str,
    inactivity_days: int,
) -> Parts:
    """:func:`patron.analytics.kpis._parts` from the occasions (``first_revenue``:
    :func:`first_order_revenue`)."""
    rows = periods(first, as_of, period)
    year = last_twelve_months(as_of)
    moves = movements(totals, occ, [rows, [year]], inactivity_days)
    in_period = _period_of(occ.day, rows)  # every occasion is inside the window
    orders = np.bincount(in_period, weights=occ.orders, minlength=len(rows))
    revenue = exact_sums(in_period, occ.amount, len(rows))
    del in_period
    per_period = {
        r.index: (int(orders[i]), to_decimal(revenue[i])) for i, r in enumerate(rows) if orders[i] > 0
    }
    return Parts(
        moves=moves,
        per_period=per_period,
        orders=int(totals.orders.sum()),
        revenue=to_decimal(int(totals.total.sum())),
        customers=len(totals),
        first_revenue=first_revenue,
        repeat_customers=int(np.count_nonzero(totals.orders >= 2)),
    )


def cohorts(totals: CustomerTotals, occ: Occasions, *, first: date, as_of: date, period: str) -> list[Cohort]:
    """:func:`patron.analytics.cohorts.compute` from the occasions; valid when every order's rows
    fall on one date (then a customer's rows and orders give the same dates and amounts)."""
    rows = periods(first, as_of, period)
    size = len(rows)
    of_occasion = _period_of(occ.day, rows)  # every occasion is inside the window
    cohort_of_customer = _period_of(totals.first_day, rows)
    cell = cohort_of_customer[occ.customer] * (size - 1) + of_occasion  # cohort × size + since
    # a customer's periods never decrease along their occasions: count each (customer, period) once
    new_period = np.r_[True, (occ.customer[1:] != occ.customer[:-1]) | (of_occasion[1:] != of_occasion[:-1])]
    del of_occasion
    active = np.bincount(cell[new_period], minlength=size * size)
    del new_period
    revenue = exact_sums(cell, occ.amount, size * size)
    del cell
    out: list[Cohort] = []
    for index in np.unique(cohort_of_customer):
        width = size - int(index)
        base = int(index) * size
        start = rows[int(index)].start
        counts = tuple(int(active[base + k]) for k in range(width))
        money = tuple(to_decimal(revenue[base + k]) for k in range(width))
        out.append(Cohort(period_label(start, period), start, counts[0], counts, money))
    return out
