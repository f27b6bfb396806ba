"""The CDNOW sample (tests/data/cdnow): raw transactions turned into the literature's summaries."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

DATA = Path(__file__).resolve().parents[2] / "data" / "cdnow"
CALIBRATION_END = date(1997, 9, 30)  # 39 weeks from 1997-01-01
AS_OF = date(1998, 6, 30)  # end of the 78-week window
WEEK = 7.0

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Summary:
    """Per customer (sample id order): repeat occasions, recency and T in weeks, mean repeat spend,
    and repeat occasions in the holdout (after the calibration end, up to AS_OF)."""

    frequency: Array
    recency: Array
    T: Array
    monetary: Array
    holdout: Array


@cache
def calibration_summary() -> Summary:
    """Purchase occasions = same customer and day (amounts added), as in Fader, Hardie & Lee (2005)."""
    occasions: dict[int, dict[date, float]] = {}
    with (DATA / "CDNOW_sample.txt").open() as handle:
        for line in handle:
            _master, sample_id, day, _cds, amount = line.split()
            d = date(int(day[:4]), int(day[4:6]), int(day[6:]))
            per_day = occasions.setdefault(int(sample_id), {})
            per_day[d] = per_day.get(d, 0.0) + float(amount)
    ids = sorted(occasions)
    freq, rec, age, money, hold = [], [], [], [], []
    for cid in ids:
        days = sorted(occasions[cid])
        first = days[0]
        calibration = [d for d in days if d <= CALIBRATION_END]
        repeat = calibration[1:]
        freq.append(len(repeat))
        rec.append((calibration[-1] - first).days / WEEK)
        age.append((CALIBRATION_END - first).days / WEEK)
        money.append(float(np.mean([occasions[cid][d] for d in repeat])) if repeat else 0.0)
        hold.append(sum(1 for d in days if CALIBRATION_END < d <= AS_OF))
    return Summary(*(np.array(v, dtype=np.float64) for v in (freq, rec, age, money, hold)))


def published_summary() -> dict[str, Array]:
    """cdnow_customers_summary_with_transactions.csv: ID, x, t_x, T, zbar (two decimals)."""
    with (DATA / "cdnow_customers_summary_with_transactions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([float(row[key]) for row in rows]) for key in ("ID", "x", "t_x", "T", "zbar")}
