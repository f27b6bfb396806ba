"""The per-customer scores file: RFM, P(alive), expected purchases and spend, CLV, churn risk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from patron.analytics.contracts import AnalysisError
from patron.analytics.recommendations import Suggestions
from patron.analytics.runner import Analysis

COLUMNS: tuple[str, ...] = (
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
    "churn_risk",
    "churn_band",
)


def churn_band(risk: float) -> str:
    """low < 0.3 ≤ medium < 0.7 ≤ high."""
    if risk < 0.3:
        return "low"
    if risk < 0.7:
        return "medium"
    return "high"


BANDS: tuple[str, ...] = ("low", "medium", "high")


def churn_bands(risk: np.ndarray) -> pa.Array:
    """:func:`churn_band` of every value at once (null where the risk is not a number)."""
    values = np.asarray(risk, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        index = np.where(values < 0.3, 0, np.where(values < 0.7, 1, 2)).astype(np.int32)
    codes = pa.array(index, mask=~np.isfinite(values))
    return pa.DictionaryArray.from_arrays(codes, pa.array(BANDS)).cast(pa.string())


def table(analysis: Analysis) -> pa.Table:
    rfm = analysis.rfm_scores
    if rfm is None:
        raise AnalysisError("scores need the RFM step")
    ids = rfm.column("customer_id")
    n = len(ids)
    p_alive = expected = spend = clv = None
    pred = analysis.predictions
    summary = analysis.summary
    if pred is not None and summary is not None:
        if not summary.customer_id.equals(ids):
            raise AnalysisError("internal error: the summaries and RFM disagree on the customers")
        p_alive, expected, spend, clv = pred.p_alive, pred.expected_purchases, pred.expected_spend, pred.clv

    def floats(values: np.ndarray | None) -> pa.Array:
        if values is None:
            return pa.nulls(n, pa.float64())
        arr = np.asarray(values, dtype=np.float64)
        return pa.array(arr, mask=~np.isfinite(arr))

    risk = None if p_alive is None else 1.0 - np.asarray(p_alive, dtype=np.float64)
    bands = pa.nulls(n, pa.string()) if risk is None else churn_bands(risk)
    columns = {
        "customer_id": ids,
        "recency_days": pc.cast(rfm.column("recency"), pa.int64()),
        "frequency": pc.cast(rfm.column("frequency"), pa.int64()),
        "monetary": pc.cast(rfm.column("monetary"), pa.decimal128(18, 4)),
        "r_score": rfm.column("r_score"),
        "f_score": rfm.column("f_score"),
        "m_score": rfm.column("m_score"),
        "rfm_segment": rfm.column("segment"),
        "p_alive": floats(p_alive),
        "expected_purchases": floats(expected),
        "expected_spend": floats(spend),
        "clv": floats(clv),
        "churn_risk": floats(risk),
        "churn_band": bands,
    }
    if analysis.suggestions is not None:
        found = analysis.suggestions
        if isinstance(found, Suggestions):
            columns["recommended_products"] = found.aligned(ids)
        else:
            columns["recommended_products"] = pa.array(
                [found.get(cid) for cid in ids.to_pylist()], pa.string()
            )
    return pa.table(columns)


def write(analysis: Analysis, path: Path) -> int:
    data = table(analysis)
    if path.suffix.lower() == ".csv":
        pacsv.write_csv(data, path)
    else:
        pq.write_table(data, path)
    return int(data.num_rows)
