"""Customer lifetime value from a transaction model and an expected spend per purchase.

Discretisation (docs/metrics-models.md, "Models"): the horizon is cut into ``horizon_months`` months
of 365.25 / 12 days each. Month k (k = 1..H) contributes the expected number of purchases in that
month, E[Y(k m) | x, t_x, T] - E[Y((k-1) m) | x, t_x, T] with m the month length in the time unit,
times the expected spend per purchase, discounted to the end of the month at the annual rate:
factor (1 + rate)^(-k / 12). CLV is the sum over the months.
"""

from __future__ import annotations

import math
import operator

import numpy as np
import numpy.typing as npt

from patron.analytics.models._base import TransactionModel
from patron.analytics.models._special import FloatArray, as_float_array, check_summary
from patron.analytics.models.errors import InvalidSummary
from patron.analytics.models.gamma_gamma import GammaGammaModel

DAYS_PER_MONTH = 365.25 / 12


def customer_lifetime_value(
    transaction_model: TransactionModel,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    *,
    time_unit_days: float,
    horizon_months: int,
    discount_rate_annual: float,
    spend_model: GammaGammaModel | None = None,
) -> FloatArray:
    """Discounted expected value of each customer's purchases over the next ``horizon_months``.

    ``monetary_value`` is the expected spend per purchase (e.g. from
    :meth:`GammaGammaModel.conditional_expected_average_profit`); when ``spend_model`` is given it is
    the observed mean spend of the repeat purchases instead and is turned into the expectation here.
    frequency, recency and T are in units of ``time_unit_days`` days (7 for weeks).
    """
    x, t_x, age = check_summary(frequency, recency, T)
    spend = as_float_array("monetary_value", monetary_value)
    if spend.shape != x.shape:
        raise InvalidSummary(
            "monetary_value must have one value per customer", extra={"field": "monetary_value"}
        )
    if not (math.isfinite(time_unit_days) and time_unit_days > 0):
        raise InvalidSummary("time_unit_days must be positive", extra={"field": "time_unit_days"})
    try:
        months = operator.index(horizon_months)  # int or NumPy integer, not float or bool
    except TypeError:
        months = -1
    if isinstance(horizon_months, bool) or months < 0:
        raise InvalidSummary("horizon_months must be a whole number >= 0", extra={"field": "horizon_months"})
    if not (math.isfinite(discount_rate_annual) and discount_rate_annual > -1):
        raise InvalidSummary("discount_rate_annual must be > -1", extra={"field": "discount_rate_annual"})
    if spend_model is not None:
        spend = spend_model.conditional_expected_average_profit(x, spend)
    month = DAYS_PER_MONTH / time_unit_days
    curve = transaction_model.expected_purchases_curve(x, t_x, age)
    value = np.zeros_like(x)
    previous = np.zeros_like(x)
    for k in range(1, months + 1):
        current = curve(k * month)
        value += (current - previous) * (1.0 + discount_rate_annual) ** (-k / 12.0)
        previous = current
    return np.asarray(value * spend, dtype=np.float64)
