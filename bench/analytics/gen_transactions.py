"""Seeded synthetic transaction logs with buy-till-you-die behaviour, for the analytics benchmarks.

    .venv/bin/python bench/analytics/gen_transactions.py --rows 1000000 --out bench/.work/tx-1M.parquet
    .venv/bin/python bench/analytics/gen_transactions.py --rows 100000 --format csv --out /tmp/tx.csv

Columns: customer_id (string), date (date), amount (decimal string in CSV, float64 in Parquet; two
decimals), order_id (string), product (string). One row per order line.

The story (Pareto/NBD with Gamma-Gamma spend, times in days):
- customers are acquired uniformly over ``--years`` years ending on ``--end`` (their first order);
- while alive a customer orders at Poisson rate lambda ~ Gamma(r=0.9, alpha=60 days) (about six
  orders a year on average, very unequal), and stays alive for an exponential lifetime of rate
  mu ~ Gamma(s=0.8, beta=250 days);
- an order has 1-3 lines (60/30/10 %); products follow a Zipf-like popularity over 2,000 products and
  a customer's orders favour the products they bought before (replenishment);
- order values are Gamma(p=4, nu) with nu ~ Gamma(q=3, v=120) per customer (mean about 60 per order),
  split over the lines; a few orders fall on the same day (same-day occasions are merged by models).

Rows are produced in chunks of customers, so 100M rows need little memory; the row count hits
``--rows`` within a fraction of a percent (the customer count is calibrated on a seeded pilot).
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

R, ALPHA, S, BETA = 0.9, 60.0, 0.8, 250.0
P, Q, V = 4.0, 3.0, 30.0
PRODUCTS = 2000
LINE_WEIGHTS = np.array([0.6, 0.3, 0.1])


def simulate(n: int, first_id: int, days: int, end: int, rng: np.random.Generator) -> pa.Table:
    """Order lines of customers first_id .. first_id + n - 1; ``end`` is the last day (days since epoch)."""
    start = rng.integers(0, days, n)  # day offset of the first order in the window
    observed = (days - 1 - start).astype(np.float64)  # days after the first order up to the end
    lam = rng.gamma(R, 1.0 / ALPHA, n)
    mu = rng.gamma(S, 1.0 / BETA, n)
    alive = np.minimum(rng.exponential(1.0, n) / mu, observed)
    repeat = rng.poisson(lam * alive)
    orders = repeat + 1
    customer = np.repeat(np.arange(n), orders)
    offset = np.zeros(customer.size)
    first = np.concatenate([[0], np.cumsum(orders)[:-1]])
    is_repeat = np.ones(customer.size, dtype=bool)
    is_repeat[first] = False
    offset[is_repeat] = rng.random(int(is_repeat.sum())) * alive[customer[is_repeat]]
    day = end - (days - 1) + start[customer] + np.floor(offset).astype(np.int64)
    # order value: Gamma(p, nu) per order, nu ~ Gamma(q, v) per customer
    nu = rng.gamma(Q, 1.0 / V, n)
    value = rng.gamma(P, 1.0, customer.size) / nu[customer]
    lines = rng.choice(3, size=customer.size, p=LINE_WEIGHTS) + 1
    order_index = np.repeat(np.arange(customer.size), lines)  # order of each line (chunk-local)
    weight = rng.exponential(1.0, order_index.size)  # flat Dirichlet split of the order value
    share = weight / np.bincount(order_index, weights=weight)[order_index]
    amount = np.round(value[order_index] * share, 2)
    # products: Zipf-like popularity, with a per-customer favourite reused half of the time
    popular = np.minimum(rng.zipf(1.3, order_index.size), PRODUCTS) - 1
    favourite = rng.integers(0, PRODUCTS, n)
    line_customer = customer[order_index]
    product = np.where(rng.random(order_index.size) < 0.5, favourite[line_customer], popular)
    return pa.table(
        {
            "customer_id": pa.array(np.char.add("C", (first_id + line_customer).astype(str))),
            "date": pa.array(day[order_index].astype("datetime64[D]")),
            "amount": pa.array(amount),
            "order_id": pa.array(order_index.astype(np.int64)),  # made global by the caller
            "product": pa.array(np.char.add("P", product.astype(str))),
        }
    )


def rows_per_customer(days: int, rng: np.random.Generator) -> float:
    pilot = simulate(200_000, 0, days, days, rng)
    return pilot.num_rows / 200_000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--format", choices=["parquet", "csv"], default=None)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2025, 12, 31))
    parser.add_argument("--chunk-customers", type=int, default=500_000)
    args = parser.parse_args()
    fmt = args.format or ("csv" if args.out.suffix == ".csv" else "parquet")
    days = round(args.years * 365.25)
    end = (args.end - date(1970, 1, 1)).days
    per_customer = rows_per_customer(days, np.random.default_rng(args.seed + 1))
    customers = max(1, math.ceil(args.rows / per_customer))
    rng = np.random.default_rng(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    written = 0
    next_order = 0
    writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
    done = 0
    while done < customers and written < args.rows:
        n = min(args.chunk_customers, customers - done)
        table = simulate(n, done + 1, days, end, rng)
        if written + table.num_rows > args.rows:
            table = table.slice(0, args.rows - written)
        local = table.column("order_id").to_numpy()
        table = table.set_column(
            table.schema.get_field_index("order_id"),
            "order_id",
            pa.array(np.char.add("O", (next_order + local).astype(str))),
        )
        next_order += int(local.max()) + 1 if local.size else 0
        if fmt == "csv":  # two decimals exactly, as a shop's export would have them
            amount = pa.array(table.column("amount").to_numpy()).cast(pa.decimal128(14, 2), safe=False)
            table = table.set_column(table.schema.get_field_index("amount"), "amount", amount)
        if writer is None:
            writer = (
                pq.ParquetWriter(args.out, table.schema, compression="zstd")
                if fmt == "parquet"
                else pacsv.CSVWriter(args.out, table.schema)
            )
        writer.write_table(table)
        written += table.num_rows
        done += n
    if writer is not None:
        writer.close()
    print(
        f"{written} rows, {done} customers, {next_order} orders -> {args.out} "
        f"({time.perf_counter() - started:.1f} s, seed {args.seed})"
    )


if __name__ == "__main__":
    main()
