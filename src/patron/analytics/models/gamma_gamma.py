"""Gamma-Gamma model of spend per transaction: Fader & Hardie, "The Gamma-Gamma Model of Monetary
Value" (2013 note), after Colombo & Jiang (1999) and Fader, Hardie & Lee (2005, JMR).

A customer's transaction values are Gamma(p, nu) with nu ~ Gamma(q, v) across customers. For a
customer with x >= 1 repeat transactions of mean value m (the model's z-bar):

    f(m | p, q, v, x) = Gamma(p x + q) / (Gamma(p x) Gamma(q)) v^q x^(p x) m^(p x - 1) / (v + x m)^(p x + q)

and E[Z | x, m] = (q - 1) / (p x + q - 1) * p v / (q - 1) + p x / (p x + q - 1) * m (needs q > 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln

from patron.analytics.models._special import (
    MAX_SHAPE,
    FloatArray,
    as_float_array,
    group,
    maximise_log_likelihood,
    require_repeat_buyers,
)
from patron.analytics.models.errors import InvalidSummary, ModelNotFitted


def _check(frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = as_float_array("frequency", frequency)
    m = as_float_array("monetary_value", monetary_value)
    if x.shape != m.shape:
        raise InvalidSummary("frequency and monetary_value must have the same length")
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise InvalidSummary(
            "frequency must be a whole number of repeat purchases >= 0", extra={"field": "frequency"}
        )
    if np.any(m < 0):
        raise InvalidSummary("monetary_value must be >= 0", extra={"field": "monetary_value"})
    return x, m


class GammaGammaModel:
    """Gamma-Gamma; ``params_`` = {"p", "q", "v"} (v in the currency of the monetary values)."""

    name = "gamma_gamma"
    param_names = ("p", "q", "v")

    def __init__(self) -> None:
        self.params_: dict[str, float] = {}
        self.log_likelihood_: float = float("nan")
        self.n_customers_: int = 0
        self.iterations_: int = 0
        self.at_bounds_: tuple[str, ...] = ()

    def _likelihood(self, x: FloatArray, m: FloatArray) -> Callable[[FloatArray], tuple[float, FloatArray]]:
        freqs = group(x)
        xs, counts = freqs.values, freqs.counts
        log_m = np.log(m)
        x_log_m = float(x @ log_m)
        sum_log_m = float(log_m.sum())
        x_log_x = float(counts @ (xs * np.log(xs)))
        spend = x * m
        n = float(x.size)

        def log_likelihood(params: FloatArray) -> tuple[float, FloatArray]:
            p, q, v = (float(val) for val in params)
            px = p * xs
            log_total = np.log(v + spend)
            k = p * x + q
            value = (
                float(counts @ (gammaln(px + q) - gammaln(px)))
                - n * gammaln(q)
                + n * q * np.log(v)
                + p * x_log_m
                - sum_log_m
                + p * x_log_x
                - float(k @ log_total)
            )
            g_p = (
                float(counts @ (xs * (digamma(px + q) - digamma(px))))
                + x_log_m
                + x_log_x
                - float(x @ log_total)
            )
            g_q = float(counts @ digamma(px + q)) - n * digamma(q) + n * np.log(v) - float(log_total.sum())
            g_v = n * q / v - float(np.sum(k / (v + spend)))
            return value, np.array([g_p, g_q, g_v])

        return log_likelihood

    def _repeat_buyers(
        self, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray]:
        x, m = _check(frequency, monetary_value)
        require_repeat_buyers(x, self.name)
        keep = x > 0
        x, m = x[keep], m[keep]
        if np.any(m <= 0):
            raise InvalidSummary(
                "the Gamma-Gamma model needs a positive mean spend for every repeat buyer",
                extra={"field": "monetary_value"},
            )
        return x, m

    def fit(self, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> Self:
        """Fit on customers with frequency >= 1 (others are ignored); monetary_value = their mean spend."""
        x, m = self._repeat_buyers(frequency, monetary_value)
        mean, var = float(m.mean()), float(m.var())
        q0 = 2.0 + (mean * mean / var if var > 0 else 1.0)
        start = np.array([1.0, q0, mean * (q0 - 1.0)])
        upper = np.array([MAX_SHAPE, MAX_SHAPE, np.inf])
        params, value, iterations, at_bound = maximise_log_likelihood(
            self._likelihood(x, m), start, x.size, self.name, upper
        )
        self.params_ = {name: float(val) for name, val in zip(self.param_names, params, strict=True)}
        self.log_likelihood_ = float(value)
        self.n_customers_ = int(x.size)
        self.iterations_ = iterations
        self.at_bounds_ = tuple(name for name, hit in zip(self.param_names, at_bound, strict=True) if hit)
        return self

    def log_likelihood(
        self, params: npt.ArrayLike, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
    ) -> tuple[float, FloatArray]:
        """Total log-likelihood of ``params`` (p, q, v) over the repeat buyers, and its gradient."""
        x, m = self._repeat_buyers(frequency, monetary_value)
        return self._likelihood(x, m)(np.asarray(params, dtype=np.float64))

    def conditional_expected_average_profit(
        self, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
    ) -> FloatArray:
        """E[spend per transaction | x, m] = p (v + x m) / (p x + q - 1); for x = 0 the population
        mean p v / (q - 1).

        NaN where p x + q <= 1 (the posterior mean is infinite; only possible when q <= 1): callers
        report such values as undefined.
        """
        if not self.params_:
            raise ModelNotFitted(f"{self.name} has not been fitted")
        p, q, v = (self.params_[name] for name in self.param_names)
        x, m = _check(frequency, monetary_value)
        denominator = p * x + q - 1.0
        total = v + x * np.where(x > 0, m, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(denominator > 0, p * total / denominator, np.nan)
        return np.asarray(value, dtype=np.float64)
