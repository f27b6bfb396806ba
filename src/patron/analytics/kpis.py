"""Retention KPIs (docs/metrics.md): active/lost/new/reactivated per period, CRR, churn, repeat
rate, frequency, order values, revenue per customer, simple CLTV, referral rate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import ibis

from patron.analytics import tables
from patron.analytics.numbers import ratio
from patron.analytics.sources import day_number

DAYS_PER_YEAR = Decimal("365.25")


@dataclass(frozen=True)
class Movement:
    """Customer movement in one period [start, end] (both inclusive)."""

    start: date
    end: date
    S: int
    E: int
    N: int
    lost: int
    reactivated: int
    orders: int
    revenue: Decimal

    @property
    def retention_rate(self) -> Decimal | None:
        return ratio(self.E - self.N, self.S)

    @property
    def churn_rate(self) -> Decimal | None:
        return ratio(self.lost, self.S)


def spells(order_table: Any, inactivity_days: int) -> Any:
    """Active spells per customer: a purchase on day p makes the customer active on
    [p, p + inactivity_days - 1]; overlapping ranges are merged (gaps and islands)."""
    days = order_table.select("customer_id", "day").distinct()
    w = ibis.window(group_by="customer_id", order_by="day")
    prev = days.day.lag().over(w)
    starts = days.mutate(new_spell=ibis.ifelse(prev.isnull() | (days.day - prev >= inactivity_days), 1, 0))
    numbered = starts.mutate(
        spell=starts.new_spell.sum().over(ibis.window(group_by="customer_id", order_by="day", rows=(None, 0)))
    )
    return numbered.group_by(["customer_id", "spell"]).aggregate(
        s_start=numbered.day.min(), s_end=numbered.day.max() + (inactivity_days - 1)
    )


def boundaries(order_table: Any, inactivity_days: int) -> Any:
    """The purchase days that start or end an active spell, with the neighbouring purchase days
    (one window pass): a spell starts at day p when the previous purchase is none or ≥ N days
    earlier, and ends at p + N − 1 when the next purchase is none or ≥ N days later."""
    days = order_table.select("customer_id", "day").distinct()
    w = ibis.window(group_by="customer_id", order_by="day")
    marked = days.mutate(prev=days.day.lag().over(w), next=days.day.lead().over(w))
    marked = marked.mutate(
        is_start=marked.prev.isnull() | (marked.day - marked.prev >= inactivity_days),
        is_end=marked.next.isnull() | (marked.next - marked.day >= inactivity_days),
    )
    return marked.filter(marked.is_start | marked.is_end)


def movements(
    order_table: Any, customer_table: Any, groups: list[list[tables.PeriodRow]], inactivity_days: int
) -> dict[int, tuple[int, int, int, int, int]]:
    """period index → (S, E, N, lost, reactivated) for groups of non-overlapping periods.

    Groups whose periods are no longer than the inactivity window take the linear path
    (:func:`movements_linear`, sharing one boundaries table); others join each spell to every period
    it overlaps (:func:`movements_joined`).
    """
    out: dict[int, tuple[int, int, int, int, int]] = {}
    short = [g for g in groups if all(r.end_day - r.start_day + 1 <= inactivity_days for r in g)]
    long = [g for g in groups if g not in short]
    if short:
        with boundaries(order_table, inactivity_days).cache() as bounds:
            for group in short:
                out.update(movements_linear(bounds, customer_table, group, inactivity_days))
    for group in long:
        out.update(movements_joined(spells(order_table, inactivity_days), customer_table, group))
    return out


def movements_linear(
    bounds: Any, customer_table: Any, rows: list[tables.PeriodRow], inactivity_days: int
) -> dict[int, tuple[int, int, int, int, int]]:
    """The figures in linear time, valid when every period is at most ``inactivity_days`` long.

    Then a spell is at least as long as a period, so a spell that starts inside a period still runs at
    its end, and at most one spell of a customer ends inside it. Hence, for period [a, b]:
    S = spells containing a − 1, E = spells containing b (prefix counts over days);
    lost = spells ending on a day in [a − 1, b − 1] whose customer starts no new spell by b;
    reactivated = non-first spells starting in [a, b] whose previous spell ended before a − 1.
    """
    n = inactivity_days
    cal = tables.calendar_table(rows)
    p = tables.period_table(rows)
    ends = bounds.filter(bounds.is_end)
    ends = ends.mutate(s_end=ends.day + (n - 1))
    ended = ends.join(cal, (ends.s_end + 1) == cal.cal_day)
    ended = ended.join(p, ended.period == p.period)
    lost = ended.group_by("period").aggregate(
        n=ibis.ifelse(ended.next.isnull() | (ended.next > ended.p_end), 1, 0).sum()
    )
    starts = bounds.filter(bounds.is_start)
    again = starts.filter(starts.prev.notnull())
    again = again.join(cal, again.day == cal.cal_day)
    again = again.join(p, again.period == p.period)
    react = again.group_by("period").aggregate(
        n=ibis.ifelse(again.prev + (n - 1) < again.p_start - 1, 1, 0).sum()
    )
    c = customer_table
    firsts = c.join(cal, c.first_day == cal.cal_day)
    new = firsts.group_by("period").aggregate(n=firsts.count())
    start_hist = starts.group_by("day").aggregate(n=starts.count()).to_pyarrow().to_pylist()
    end_hist = ends.group_by("s_end").aggregate(n=ends.count()).to_pyarrow().to_pylist()

    def active(day: int) -> int:
        started = sum(int(r["n"]) for r in start_hist if r["day"] <= day)
        ended = sum(int(r["n"]) for r in end_hist if r["s_end"] < day)
        return started - ended

    def by_period(expr: Any) -> dict[int, int]:
        return {int(r["period"]): int(r["n"] or 0) for r in expr.to_pyarrow().to_pylist()}

    lost_n, react_n, new_n = by_period(lost), by_period(react), by_period(new)
    return {
        r.index: (
            active(r.start_day - 1),
            active(r.end_day),
            new_n.get(r.index, 0),
            lost_n.get(r.index, 0),
            react_n.get(r.index, 0),
        )
        for r in rows
    }


def movements_joined(
    sp: Any, customer_table: Any, rows: list[tables.PeriodRow]
) -> dict[int, tuple[int, int, int, int, int]]:
    """Each spell joined to every period it overlaps; any period length."""
    p = tables.period_table(rows)
    joined = sp.join(p, [(sp.s_start <= p.p_end), (sp.s_end >= p.p_start - 1)])
    flags = joined.mutate(
        cs=ibis.ifelse((joined.s_start <= joined.p_start - 1) & (joined.s_end >= joined.p_start - 1), 1, 0),
        ce=ibis.ifelse((joined.s_start <= joined.p_end) & (joined.s_end >= joined.p_end), 1, 0),
    )
    per = flags.group_by(["customer_id", "period", "p_start", "p_end"]).aggregate(
        act_s=flags.cs.max(), act_e=flags.ce.max()
    )
    c = customer_table.select(cid="customer_id", first_day="first_day")
    per = per.join(c, per.customer_id == c.cid)
    is_new = ibis.ifelse((per.first_day >= per.p_start) & (per.first_day <= per.p_end), 1, 0)
    per = per.mutate(is_new=is_new)
    agg = per.group_by("period").aggregate(
        S=per.act_s.sum(),
        E=per.act_e.sum(),
        N=per.is_new.sum(),
        lost=ibis.ifelse((per.act_s == 1) & (per.act_e == 0), 1, 0).sum(),
        reactivated=ibis.ifelse((per.act_s == 0) & (per.act_e == 1) & (per.is_new == 0), 1, 0).sum(),
    )
    out: dict[int, tuple[int, int, int, int, int]] = {r.index: (0, 0, 0, 0, 0) for r in rows}
    for r in agg.to_pyarrow().to_pylist():
        out[int(r["period"])] = (
            int(r["S"] or 0),
            int(r["E"] or 0),
            int(r["N"] or 0),
            int(r["lost"] or 0),
            int(r["reactivated"] or 0),
        )
    return out


def last_twelve_months(as_of: date) -> tables.PeriodRow:
    return tables.PeriodRow(-1, tables.add_months(as_of, -12) + timedelta(days=1), as_of)


@dataclass(frozen=True)
class Parts:
    """What the engine computes for the KPIs; the rest is arithmetic (:func:`_finish`)."""

    # period index (-1: the last 12 months) → S, E, N, lost, reactivated
    moves: dict[int, tuple[int, int, int, int, int]]
    per_period: dict[int, tuple[int, Decimal]]  # period index → orders, revenue
    orders: int
    revenue: Decimal
    customers: int
    first_revenue: Decimal
    repeat_customers: int


def compute(
    tx: Any,
    o: Any,
    *,
    first: date,
    as_of: date,
    period: str,
    inactivity_days: int,
    has_referred: bool,
    has_market: bool = False,
    parts: Parts | None = None,
) -> dict[str, Any]:
    """Every KPI of docs/metrics.md; ``o`` is the orders table (:func:`tables.orders`).

    ``parts``: the engine's figures computed another way (the DuckDB fast path in
    :mod:`patron.analytics.columnar`); without them they come from the Ibis expressions here."""
    if parts is None:
        with tables.customers(o).cache() as c:
            parts = _parts(o, c, first, as_of, period, inactivity_days)
    return _finish(tx, parts, first, as_of, period, has_referred, has_market)


def _parts(o: Any, c: Any, first: date, as_of: date, period: str, inactivity_days: int) -> Parts:
    rows = tables.periods(first, as_of, period)
    year = last_twelve_months(as_of)
    moves = movements(o, c, [rows, [year]], inactivity_days)

    cal = tables.calendar_table(rows)
    op = o.join(cal, o.day == cal.cal_day)
    per_period = {
        int(r["period"]): (int(r["orders"]), Decimal(r["revenue"]))
        for r in op.group_by("period")
        .aggregate(orders=op.count(), revenue=op.amount.sum())
        .to_pyarrow()
        .to_pylist()
    }
    ranked = o.mutate(
        seq=ibis.row_number().over(ibis.window(group_by="customer_id", order_by=["day", "order_id"]))
    )
    totals = (
        ranked.aggregate(
            orders=ranked.count(),
            revenue=ranked.amount.sum(),
            customers=ranked.customer_id.nunique(),
            first_revenue=ibis.ifelse(ranked.seq == 0, ranked.amount, 0).sum(),
            repeat_customers=ibis.ifelse(ranked.seq == 1, 1, 0).sum(),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    return Parts(
        moves=moves,
        per_period=per_period,
        orders=int(totals["orders"]),
        revenue=Decimal(totals["revenue"]),
        customers=int(totals["customers"]),
        first_revenue=Decimal(totals["first_revenue"]),
        repeat_customers=int(totals["repeat_customers"] or 0),
    )


def _finish(
    tx: Any,
    parts: Parts,
    first: date,
    as_of: date,
    period: str,
    has_referred: bool,
    has_market: bool,
) -> dict[str, Any]:
    as_of_day = day_number(as_of)
    rows = tables.periods(first, as_of, period)
    year = last_twelve_months(as_of)
    moves = parts.moves
    per_period = parts.per_period
    by_period: list[Movement] = []
    for row in rows:
        s, e, n, lost, react = moves.get(row.index, (0, 0, 0, 0, 0))
        n_orders, revenue = per_period.get(row.index, (0, Decimal(0)))
        by_period.append(Movement(row.start, row.end, s, e, n, lost, react, n_orders, revenue))
    ys, ye, yn, ylost, yreact = moves.get(-1, (0, 0, 0, 0, 0))
    last_year = Movement(year.start, year.end, ys, ye, yn, ylost, yreact, 0, Decimal(0))
    t = tables.transactions(tx, as_of_day)
    n_tx = int(tables.counted(tx, as_of_day).count().to_pyarrow().as_py())
    customers_n = parts.customers
    orders_n = parts.orders
    revenue = parts.revenue
    first_orders = parts.customers  # each customer has exactly one first order
    first_revenue = parts.first_revenue
    repeat_orders = orders_n - first_orders
    repeat_revenue = revenue - first_revenue
    referred: int | None = None
    if has_referred:
        flags = t.group_by("customer_id").aggregate(ref=t.referred.cast("int32").max())
        referred = int(flags.ref.sum().to_pyarrow().as_py() or 0)

    by_market: dict[str, dict[str, Any]] | None = None
    if has_market:
        m = t.filter(t.market.notnull())
        per_order = m.group_by(["market", "customer_id", "order_id"]).aggregate(amount=m.amount.sum())
        agg = per_order.group_by("market").aggregate(
            customers=per_order.customer_id.nunique(),
            orders=per_order.count(),
            revenue=per_order.amount.sum(),
        )
        by_market = {
            str(r["market"]): {
                "customers": int(r["customers"]),
                "orders": int(r["orders"]),
                "revenue": Decimal(r["revenue"]),
                "average_order_value": ratio(Decimal(r["revenue"]), int(r["orders"])),
            }
            for r in agg.order_by("market").to_pyarrow().to_pylist()
        }

    years = Decimal((as_of - first).days + 1) / DAYS_PER_YEAR
    aov = ratio(revenue, orders_n)
    per_year = ratio(Decimal(orders_n), customers_n * years)
    revenue_per_year = ratio(revenue, customers_n * years)
    churn = last_year.churn_rate
    lifespan = None if churn is None or churn == 0 else 1 / churn
    clv_simple = None if aov is None or per_year is None or lifespan is None else aov * per_year * lifespan
    clv_revenue = None if revenue_per_year is None or lifespan is None else revenue_per_year * lifespan
    first_aov = ratio(first_revenue, first_orders)
    repeat_aov = ratio(repeat_revenue, repeat_orders)
    year_all = last_year.S + last_year.N + last_year.reactivated
    return {
        "customers": customers_n,
        "orders": orders_n,
        "transactions": n_tx,
        "revenue": revenue,
        "window_years": years,
        "last_twelve_months": last_year,
        "by_period": by_period,
        "retention_rate": last_year.retention_rate,
        "churn_rate": churn,
        "annual_net_churn": ratio(last_year.S - last_year.E, year_all),
        "repeat_purchase_rate": ratio(parts.repeat_customers, customers_n),
        "repeat_customers": parts.repeat_customers,
        "purchase_frequency": ratio(orders_n, customers_n),
        "purchase_frequency_per_year": per_year,
        "average_order_value": aov,
        "revenue_per_customer_per_year": revenue_per_year,
        "lifespan_years": lifespan,
        "clv_simple": clv_simple,
        "clv_revenue_lifespan": clv_revenue,
        "referral_rate": None if referred is None else ratio(referred, customers_n),
        "by_market": by_market,
        "new_vs_returning": {
            "first_orders": first_orders,
            "repeat_orders": repeat_orders,
            "first_order_value": first_aov,
            "repeat_order_value": repeat_aov,
            "repeat_to_first_ratio": None
            if first_aov is None or repeat_aov is None or first_aov == 0
            else repeat_aov / first_aov,
            "first_order_revenue": first_revenue,
            "repeat_order_revenue": repeat_revenue,
        },
    }
