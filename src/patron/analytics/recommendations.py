"""Product recommendations from the transaction log (with ``--product-col``).

- **Bought together**: for products A and B, ``orders`` = orders holding both; confidence(A→B) =
  orders(A and B) / orders(A); lift = orders(A and B) × all orders / (orders(A) × orders(B)). Pairs seen
  in at least ``min_orders`` orders, best first.
- **For each customer**: products not yet bought, scored by the sum of confidence(A→B) over the
  products A they bought (the top ``top_n`` per customer).
- **Page views** (database mode): each day a customer viewed a product they have not bought adds
  0.25 to its score, at most 4 days (a weak signal: views alone weigh at most one sure co-purchase).
- **Replenishment**: for products that customers buy again, the mean days between a customer's
  consecutive purchase dates of the product, and each such customer's next expected date.
"""

from __future__ import annotations

from typing import Any

import ibis

from patron.analytics import tables
from patron.analytics.numbers import rate

MAX_PAIRS = 50
RELATED_PER_PRODUCT = 20
VIEW_WEIGHT = 0.25
MAX_VIEW_DAYS = 4


def baskets(tx: Any, as_of_day: int) -> Any:
    t = tables.transactions(tx, as_of_day)
    t = t.filter(t.product.notnull())
    return t.select("customer_id", "order_id", "product", "day").distinct()


def pair_table(b: Any, min_orders: int) -> Any:
    items = b.select("order_id", "product").distinct()
    left = items.select(o1="order_id", a="product")
    right = items.select(o2="order_id", b="product")
    pairs = left.join(right, [left.o1 == right.o2, left.a != right.b])
    co = pairs.group_by(["a", "b"]).aggregate(together=pairs.o1.nunique())
    per = items.group_by("product").aggregate(n=items.order_id.nunique())
    na = per.select(pa_="product", n_a="n")
    nb = per.select(pb_="product", n_b="n")
    co = co.join(na, co.a == na.pa_).join(nb, co.b == nb.pb_)
    co = co.filter(co.together >= min_orders)
    return co.select("a", "b", "together", "n_a", "n_b")


def compute(
    tx: Any, as_of_day: int, *, top_n: int = 5, min_orders: int = 2, views: Any = None
) -> dict[str, Any]:
    b = baskets(tx, as_of_day)
    viewed = None if views is None else view_scores(views, as_of_day)
    total_orders = int(b.order_id.nunique().to_pyarrow().as_py() or 0)
    co = pair_table(b, min_orders)
    top = co.order_by([ibis.desc(co.together), co.a, co.b]).limit(MAX_PAIRS).to_pyarrow().to_pylist()
    together = [
        {
            "product": r["a"],
            "with": r["b"],
            "orders": int(r["together"]),
            "confidence": rate(r["together"] / r["n_a"]),
            "lift": rate(r["together"] * total_orders / (r["n_a"] * r["n_b"])),
        }
        for r in top
    ]
    return {
        "orders_with_products": total_orders,
        "bought_together": together,
        "replenishment": replenishment(b),
        "customers_with_suggestions": int(
            per_customer(b, co, top_n, viewed).customer_id.nunique().to_pyarrow().as_py() or 0
        ),
        "page_view_signals": None if viewed is None else int(viewed.count().to_pyarrow().as_py() or 0),
    }


def view_scores(views: Any, as_of_day: int) -> Any:
    """customer_id, b (product), score: VIEW_WEIGHT per day the customer viewed the product, at most
    MAX_VIEW_DAYS days (so views alone weigh at most one certain co-purchase)."""
    v = views.filter(views.day <= as_of_day, views.product.notnull())
    days = v.select("customer_id", "product", "day").distinct()
    counted = days.group_by(["customer_id", "product"]).aggregate(n=days.count())
    return counted.select(
        "customer_id",
        b=counted.product,
        score=ibis.least(counted.n, MAX_VIEW_DAYS).cast("float64") * VIEW_WEIGHT,
    )


def per_customer(b: Any, co: Any, top_n: int, views: Any = None) -> Any:
    """customer_id, product, score, rank (1 = best) for products the customer has not bought."""
    conf = co.mutate(confidence=co.together.cast("float64") / co.n_a)
    ranked = conf.mutate(
        k=ibis.row_number().over(ibis.window(group_by="a", order_by=[ibis.desc(conf.confidence), conf.b]))
    )
    related = ranked.filter(ranked.k < RELATED_PER_PRODUCT).select("a", "b", "confidence")
    owned = b.select("customer_id", "product").distinct()
    cand = owned.join(related, owned.product == related.a)
    signals = cand.select("customer_id", "b", score=cand.confidence)
    if views is not None:
        signals = signals.union(views)
    scores = signals.group_by(["customer_id", "b"]).aggregate(score=signals.score.sum())
    mine = owned.select(oc="customer_id", owned_product="product")
    scores = scores.left_join(mine, [scores.customer_id == mine.oc, scores.b == mine.owned_product])
    scores = scores.filter(scores.owned_product.isnull()).select("customer_id", product="b", score="score")
    scores = scores.mutate(
        rank=ibis.row_number().over(
            ibis.window(group_by="customer_id", order_by=[ibis.desc(scores.score), scores.product])
        )
        + 1
    )
    return scores.filter(scores.rank <= top_n)


def replenishment_table(b: Any) -> Any:
    days = b.select("customer_id", "product", "day").distinct()
    w = ibis.window(group_by=["customer_id", "product"], order_by="day")
    gaps = days.mutate(gap=days.day - days.day.lag().over(w))
    gaps = gaps.filter(gaps.gap.notnull())
    return gaps


def replenishment(b: Any, limit: int = 50) -> list[dict[str, Any]]:
    gaps = replenishment_table(b)
    agg = gaps.group_by("product").aggregate(
        customers=gaps.customer_id.nunique(), repeats=gaps.count(), total_gap=gaps.gap.sum()
    )
    rows = agg.order_by([ibis.desc(agg.customers), agg.product]).limit(limit).to_pyarrow().to_pylist()
    return [
        {
            "product": r["product"],
            "customers": int(r["customers"]),
            "repeat_purchases": int(r["repeats"]),
            "mean_days_between": rate(int(r["total_gap"]) / int(r["repeats"])),
        }
        for r in rows
    ]


def suggestions(
    tx: Any, as_of_day: int, *, top_n: int = 5, min_orders: int = 2, views: Any = None
) -> dict[str, str]:
    """customer id → their top products not yet bought, "|"-separated, best first (for the scores)."""
    b = baskets(tx, as_of_day)
    viewed = None if views is None else view_scores(views, as_of_day)
    table = per_customer(b, pair_table(b, min_orders), top_n, viewed)
    rows = table.order_by(["customer_id", "rank"]).to_pyarrow().to_pylist()
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["customer_id"], []).append(r["product"])
    return {cid: "|".join(products) for cid, products in out.items()}
