"""Per-customer summaries for the buy-till-you-die models, aggregated by the engine.

Occasions are a customer's distinct purchase dates. frequency = repeat occasions; recency = last −
first occasion; T = as_of − first occasion (both in days here, divided by the time unit later);
monetary = mean net spend of the repeat occasions (0 without repeats). With a calibration end, the
summaries cover occasions up to it for customers first seen by then, and ``holdout`` counts their
repeat occasions after it up to ``as_of``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Summary:
    customer_id: pa.ChunkedArray  # Arrow, not Python strings: millions of customers stay compact
    frequency: FloatArray
    recency_days: FloatArray
    T_days: FloatArray
    monetary: FloatArray
    first_day: npt.NDArray[np.int64]
    holdout: FloatArray | None = None

    def __len__(self) -> int:
        return len(self.customer_id)


def summary_table(occ: Any, as_of_day: int, cutoff_day: int | None = None) -> Any:
    """``occ``: purchase occasions up to ``as_of`` (:func:`patron.analytics.tables.occasions`)."""
    cal = occ.filter(occ.day <= cutoff_day) if cutoff_day is not None else occ
    end = cutoff_day if cutoff_day is not None else as_of_day
    # one pass: a customer's occasions have distinct days, so the first occasion's spend is unique
    agg = cal.group_by("customer_id").aggregate(
        n=cal.count(),
        first_day=cal.day.min(),
        last_day=cal.day.max(),
        total=cal.amount.sum(),
        first_spend=cal.amount.argmin(cal.day),
    )
    agg = agg.select(
        "customer_id",
        frequency=(agg.n - 1).cast("int32"),
        recency_days=(agg.last_day - agg.first_day).cast("int32"),
        T_days=(end - agg.first_day).cast("int32"),
        first_day=agg.first_day.cast("int32"),
        repeat_spend=(agg.total - agg.first_spend).cast("float64"),
    )
    if cutoff_day is not None:
        later = occ.filter(occ.day > cutoff_day)
        hold = later.group_by("customer_id").aggregate(holdout=later.count())
        hold = hold.select(hid="customer_id", holdout="holdout")
        agg = agg.left_join(hold, agg.customer_id == hold.hid)
        agg = agg.mutate(holdout=agg.holdout.fill_null(0).cast("int32"))
        agg = agg.drop("hid")
    return agg


def fetch(occ: Any, as_of_day: int, cutoff_day: int | None = None) -> Summary:
    table = summary_table(occ, as_of_day, cutoff_day).order_by("customer_id").to_pyarrow()
    freq = table.column("frequency").to_numpy().astype(np.float64)
    spend = pc.fill_null(table.column("repeat_spend"), 0.0).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        monetary = np.where(freq > 0, spend / np.maximum(freq, 1), 0.0)
    holdout = table.column("holdout").to_numpy().astype(np.float64) if cutoff_day is not None else None
    return Summary(
        customer_id=table.column("customer_id"),
        frequency=freq,
        recency_days=table.column("recency_days").to_numpy().astype(np.float64),
        T_days=table.column("T_days").to_numpy().astype(np.float64),
        monetary=monetary,
        first_day=table.column("first_day").to_numpy().astype(np.int64),
        holdout=holdout,
    )


def repeat_occasions_by_day(occ: Any, cutoff_day: int) -> dict[int, int]:
    """Repeat occasions per day (up to ``as_of``) of the customers first seen by ``cutoff_day``."""
    firsts = occ.group_by("customer_id").aggregate(first_day=occ.day.min())
    firsts = firsts.filter(firsts.first_day <= cutoff_day).select(cid="customer_id", first_day="first_day")
    j = occ.join(firsts, occ.customer_id == firsts.cid)
    j = j.filter(j.day > j.first_day)
    counts = j.group_by("day").aggregate(n=j.count()).to_pyarrow().to_pylist()
    return {int(r["day"]): int(r["n"]) for r in counts}
