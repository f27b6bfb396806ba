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

Two implementations give the same figures: Ibis expressions for every engine (:func:`compute`,
:func:`suggestions`), and for the default DuckDB engine a sparse-matrix one (:func:`compute_duckdb`)
that reads integer codes out of DuckDB once: the order × product matrix O gives the co-occurrence
counts OᵀO, the customer × product matrix X times the matrix of each product's strongest links gives
every customer's scores, a chunk of customers at a time (never a dense customers × products matrix).
The sum of a customer's gaps between consecutive purchase dates of a product is their last date minus
their first, so replenishment needs no window function.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import ibis
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from patron.analytics import tables
from patron.analytics.columnar import CUSTOMERS_TABLE, customer_codes
from patron.analytics.engine import TX_TABLE, lowered_memory
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
    return {
        "orders_with_products": total_orders,
        "bought_together": _together_rows(top, total_orders),
        "replenishment": replenishment(b),
        "customers_with_suggestions": int(
            per_customer(b, co, top_n, viewed).customer_id.nunique().to_pyarrow().as_py() or 0
        ),
        "page_view_signals": None if viewed is None else int(viewed.count().to_pyarrow().as_py() or 0),
    }


def _together_rows(top: list[dict[str, Any]], total_orders: int) -> list[dict[str, Any]]:
    return [
        {
            "product": r["a"],
            "with": r["b"],
            "orders": int(r["together"]),
            "confidence": rate(int(r["together"]) / int(r["n_a"])),
            "lift": rate(int(r["together"]) * total_orders / (int(r["n_a"]) * int(r["n_b"]))),
        }
        for r in top
    ]


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
    """Per (customer, product) bought on two dates or more: dates (n) and last − first date (span).

    A customer's gaps between consecutive purchase dates of a product add up to span, over n − 1 gaps."""
    days = b.select("customer_id", "product", "day").distinct()
    per = days.group_by(["customer_id", "product"]).aggregate(
        n=days.count(), span=days.day.max() - days.day.min()
    )
    return per.filter(per.n > 1)


def replenishment(b: Any, limit: int = 50) -> list[dict[str, Any]]:
    per = replenishment_table(b)
    agg = per.group_by("product").aggregate(
        customers=per.count(), repeats=(per.n - 1).sum(), total_gap=per.span.sum()
    )
    rows = agg.order_by([ibis.desc(agg.customers), agg.product]).limit(limit).to_pyarrow().to_pylist()
    return _replenishment_rows(rows)


def _replenishment_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
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


class Suggestions(Mapping[str, str]):
    """customer id → "|"-separated products, best first, kept as two Arrow arrays (millions of
    customers stay compact); ``customer_id`` is in ascending order."""

    def __init__(self, customer_id: pa.Array, products: pa.Array) -> None:
        self.customer_id = customer_id
        self.products = products
        self._index: dict[str, int] | None = None

    def __getitem__(self, key: str) -> str:
        if self._index is None:
            self._index = {cid: i for i, cid in enumerate(self.customer_id.to_pylist())}
        return str(self.products[self._index[key]].as_py())

    def __iter__(self) -> Iterator[str]:
        return iter(self.customer_id.to_pylist())

    def __len__(self) -> int:
        return len(self.customer_id)

    def aligned(self, ids: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The products of each customer in ``ids`` (null for customers without suggestions)."""
        where = pc.index_in(ids, value_set=self.customer_id)
        return pc.take(self.products, where)


#: Customers scored at a time in :func:`compute_duckdb` (bounds the memory of the score matrix).
CHUNK_CUSTOMERS = 100_000

IntArray = npt.NDArray[np.int64]


def compute_duckdb(
    con: Any, as_of_day: int, *, top_n: int = 5, min_orders: int = 2, want_suggestions: bool = False
) -> tuple[dict[str, Any], Suggestions | None]:
    """:func:`compute` and :func:`suggestions` on the DuckDB connection ``con`` (no page views)."""
    rows = f"(SELECT * FROM {TX_TABLE} WHERE day <= {int(as_of_day)} AND product IS NOT NULL)"
    # the sparse matrices live beside DuckDB: give DuckDB less room meanwhile (it spills beyond)
    with lowered_memory(con, RECOMMENDATIONS_MEMORY_MIB):
        return _compute_duckdb(con, rows, top_n, min_orders, want_suggestions)


#: DuckDB's memory limit (MiB) while the recommendations are computed, if the analysis' is higher.
RECOMMENDATIONS_MEMORY_MIB = 256


def _compute_duckdb(
    con: Any, rows: str, top_n: int, min_orders: int, want_suggestions: bool
) -> tuple[dict[str, Any], Suggestions | None]:
    from scipy import sparse

    con.execute(
        "CREATE OR REPLACE TEMP TABLE rec_products AS SELECT product, "
        "CAST(row_number() OVER (ORDER BY product) - 1 AS INTEGER) AS pid "
        f"FROM (SELECT DISTINCT product FROM {rows})"
    )
    try:
        products = con.sql("SELECT product FROM rec_products ORDER BY pid").to_arrow_table().column(0)
        products = products.combine_chunks()
        n_products = len(products)
        coded = (
            f"(SELECT r.customer_id, r.order_id, p.pid, r.day FROM {rows} r "
            "JOIN rec_products p USING (product))"
        )
        # orders × products (each order's distinct products): co-occurrence counts OᵀO
        baskets = con.sql(f"SELECT list(pid) AS items FROM {coded} GROUP BY order_id").to_arrow_table()
        offsets, items = _lists(baskets.column(0))
        total_orders = len(offsets) - 1
        del baskets
        per_order = sparse.csr_matrix(
            (np.ones(items.size, dtype=np.int32), items, offsets), shape=(total_orders, n_products)
        )
        del items, offsets
        per_order.sum_duplicates()  # a product on several lines of an order counts once
        per_order.data[:] = 1
        co = (per_order.T.tocsr() @ per_order).tocoo()
        del per_order
        in_orders = np.zeros(n_products, dtype=np.int64)
        diagonal = co.row == co.col
        in_orders[co.row[diagonal]] = co.data[diagonal]
        keep = (~diagonal) & (co.data >= min_orders)
        a, b, together = (
            co.row[keep].astype(np.int64),
            co.col[keep].astype(np.int64),
            co.data[keep].astype(np.int64),
        )
        del co, diagonal, keep
        pairs = np.lexsort((b, a, -together))[:MAX_PAIRS]
        names = products.to_pylist()
        top = [
            {
                "a": names[a[i]],
                "b": names[b[i]],
                "together": int(together[i]),
                "n_a": int(in_orders[a[i]]),
                "n_b": int(in_orders[b[i]]),
            }
            for i in pairs
        ]
        # each product's strongest links: confidence(A → B), best first, ties by B
        confidence = together / in_orders[a]
        ranked = np.lexsort((b, -confidence, a))
        a, b, confidence = a[ranked], b[ranked], confidence[ranked]
        starts = np.searchsorted(a, a, side="left")
        strongest = (np.arange(a.size) - starts) < RELATED_PER_PRODUCT
        related = sparse.csr_matrix(
            (confidence[strongest], (a[strongest], b[strongest])), shape=(n_products, n_products)
        )
        related.sort_indices()
        # per (customer, product): purchase dates and last − first date, customers by their codes in
        # ascending id order (the customers table of the per-customer figures, made here if missing)
        if not con.execute(
            f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{CUSTOMERS_TABLE}'"
        ).fetchall()[0][0]:
            customer_codes(con, rows)
        customer_ids = con.sql(f"SELECT customer_id FROM {CUSTOMERS_TABLE} ORDER BY cid").to_arrow_table()
        customer_ids = customer_ids.column(0).combine_chunks()
        bought = con.sql(
            f"""SELECT c.cid, b.pid, CAST(b.n AS INTEGER) AS n, CAST(b.span AS INTEGER) AS span
                FROM (SELECT customer_id, pid, count(*) AS n, max(day) - min(day) AS span
                      FROM (SELECT DISTINCT customer_id, pid, day FROM {coded})
                      GROUP BY customer_id, pid) b
                JOIN {CUSTOMERS_TABLE} c USING (customer_id)"""
        ).fetchnumpy()
    finally:
        con.execute("DROP TABLE IF EXISTS rec_products")
    replenishment_rows = _replenishment_from(bought["pid"], bought["n"], bought["span"], names)
    owned = sparse.csr_matrix(
        (np.ones(bought["cid"].size), (bought["cid"], bought["pid"])), shape=(len(customer_ids), n_products)
    )
    del bought
    owned.sort_indices()  # a customer's products in code order: a fixed order of the score sums
    with_suggestions, suggested = _score(owned, related, top_n, want_suggestions)
    result = {
        "orders_with_products": total_orders,
        "bought_together": _together_rows(top, total_orders),
        "replenishment": _replenishment_rows(replenishment_rows),
        "customers_with_suggestions": with_suggestions,
        "page_view_signals": None,
    }
    if not want_suggestions:
        return result, None
    rows_with, counts, picks = suggested
    lists = pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)), products.take(pa.array(picks))
    )
    return result, Suggestions(customer_ids.take(pa.array(rows_with)), pc.binary_join(lists, "|"))


def _replenishment_from(
    pid: npt.NDArray[Any], dates: npt.NDArray[Any], span: npt.NDArray[Any], names: list[str], limit: int = 50
) -> list[dict[str, Any]]:
    """:func:`replenishment` from each (customer, product)'s number of dates and last − first date."""
    again = np.asarray(dates) > 1
    size = len(names)
    where = np.asarray(pid, dtype=np.int64)[again]
    customers = np.bincount(where, minlength=size)
    repeats = np.bincount(where, weights=np.asarray(dates, dtype=np.float64)[again] - 1, minlength=size)
    total_gap = np.bincount(where, weights=np.asarray(span, dtype=np.float64)[again], minlength=size)
    found = np.flatnonzero(customers)
    best = found[np.lexsort((found, -customers[found]))][:limit]  # most customers, then product name
    return [
        {
            "product": names[i],
            "customers": int(customers[i]),
            "repeats": int(repeats[i]),
            "total_gap": int(total_gap[i]),
        }
        for i in best
    ]


def _lists(
    column: pa.ChunkedArray,
) -> tuple[npt.NDArray[np.int64] | npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """CSR offsets and values of an Arrow list column."""
    array = column.combine_chunks()
    offsets = np.asarray(array.offsets, dtype=np.int64)
    values = np.array(array.flatten(), dtype=np.int32)  # a writable copy (scipy sorts in place)
    offsets = offsets - offsets[0]
    if values.size < 2**31:
        return offsets.astype(np.int32), values  # scipy's index type: no copy into int64
    return offsets, values


def _score(
    owned: Any, related: Any, top_n: int, want: bool
) -> tuple[int, tuple[IntArray, IntArray, IntArray]]:
    """Customers with a suggestion, and (rows, how many, product codes best first) of each."""
    with_suggestions = 0
    rows_out: list[IntArray] = []
    counts_out: list[IntArray] = []
    picks_out: list[IntArray] = []
    for start in range(0, owned.shape[0], CHUNK_CUSTOMERS):
        mine = owned[start : start + CHUNK_CUSTOMERS]
        scores = (mine @ related).tocsr()
        scores = scores - scores.multiply(mine)  # products already bought: exactly zero, dropped
        scores.eliminate_zeros()
        sizes = np.diff(scores.indptr)
        with_suggestions += int(np.count_nonzero(sizes))
        has = np.flatnonzero(sizes)
        if not want or not has.size:
            continue
        _, picked = _top(scores, sizes, has, top_n)
        rows_out.append(has + start)
        counts_out.append(np.minimum(sizes[has], top_n))
        picks_out.append(picked)
    if not rows_out:
        empty = np.zeros(0, dtype=np.int64)
        return with_suggestions, (empty, empty, empty)
    return with_suggestions, (np.concatenate(rows_out), np.concatenate(counts_out), np.concatenate(picks_out))


def _top(scores: Any, sizes: IntArray, has: IntArray, top_n: int) -> tuple[IntArray, IntArray]:
    """Each row's best ``top_n`` columns, by score (descending) then column: one linear pass per place
    (the row's maximum, the lowest column among equal maxima), instead of sorting every score.

    Returns the rows and columns of the picks, row by row, best first."""
    data = scores.data.copy()
    columns = scores.indices.astype(np.int64)
    row = np.repeat(np.arange(sizes.size), sizes)
    starts = scores.indptr[has]
    none = np.iinfo(np.int64).max
    best = np.full(sizes.size, -np.inf)
    lowest = np.full(sizes.size, none)
    rows_out: list[IntArray] = []
    picks_out: list[IntArray] = []
    for _ in range(top_n):
        best[has] = np.maximum.reduceat(data, starts)
        top = (data == best[row]) & (data > -np.inf)
        lowest[has] = np.minimum.reduceat(np.where(top, columns, none), starts)
        chosen = np.flatnonzero(top & (columns == lowest[row]))
        if not chosen.size:
            break
        rows_out.append(row[chosen])
        picks_out.append(columns[chosen])
        data[chosen] = -np.inf
    if not rows_out:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows = np.concatenate(rows_out)
    order = np.argsort(rows, kind="stable")  # row by row; within a row, in the order picked
    return rows[order], np.concatenate(picks_out)[order]
