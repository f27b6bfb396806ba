"""Holdout validation of a transaction model (issue #3, "Holdout").

Customers whose first occasion falls in the calibration period are summarised at the calibration end
(frequency, recency, T); ``actual`` is their number of repeat occasions in the holdout (after the
calibration end, up to as_of) and the prediction is the sum of their conditional expectations over the
holdout length. :func:`holdout_by_frequency` gives the classic chart of Fader, Hardie & Lee (2005):
mean actual vs mean predicted holdout purchases per calibration frequency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from patron.analytics.models._base import TransactionModel
from patron.analytics.models._special import as_float_array, check_summary
from patron.analytics.models.errors import InvalidSummary


@dataclass(frozen=True)
class FrequencyBin:
    """Calibration frequency ``frequency`` (the last bin holds ``frequency`` and more)."""

    frequency: int
    customers: int
    actual_mean: float
    predicted_mean: float


@dataclass(frozen=True)
class HoldoutResult:
    customers: int
    actual_repeat_purchases: int
    predicted_repeat_purchases: float
    by_frequency: tuple[FrequencyBin, ...]


def holdout_by_frequency(
    model: TransactionModel,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    actual: npt.ArrayLike,
    holdout_length: float,
    *,
    max_frequency: int = 7,
) -> HoldoutResult:
    """Actual vs predicted holdout repeat purchases, in total and per calibration frequency."""
    x, t_x, age = check_summary(frequency, recency, T)
    observed = as_float_array("actual", actual)
    if observed.shape != x.shape or np.any(observed < 0) or np.any(observed != np.floor(observed)):
        raise InvalidSummary("actual must be a whole number >= 0 per customer", extra={"field": "actual"})
    predicted = model.conditional_expected_number_of_purchases_up_to_time(holdout_length, x, t_x, age)
    capped = np.minimum(x, max_frequency).astype(np.intp)
    bins = []
    for f in range(max_frequency + 1):
        rows = capped == f
        n = int(rows.sum())
        if n:
            bins.append(FrequencyBin(f, n, float(observed[rows].mean()), float(predicted[rows].mean())))
    return HoldoutResult(
        customers=int(x.size),
        actual_repeat_purchases=int(observed.sum()),
        predicted_repeat_purchases=float(predicted.sum()),
        by_frequency=tuple(bins),
    )
