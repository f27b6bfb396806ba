"""Shared anatomy of the transaction models (BG/NBD, Pareto/NBD)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Self

import numpy as np
import numpy.typing as npt

from patron.analytics.models._special import (
    MAX_SHAPE,
    FloatArray,
    check_summary,
    maximise_log_likelihood,
    require_repeat_buyers,
)
from patron.analytics.models.errors import InvalidSummary, ModelNotFitted

#: How far below the shape bound (as a factor) a fit that stopped on a ridge is followed to the bound.
RIDGE_REACH = 10.0


class TransactionModel(ABC):
    """A buy-till-you-die model of repeat purchases fitted by maximum likelihood.

    Inputs are per-customer summaries: ``frequency`` (repeat purchase occasions), ``recency`` (time of
    the last occasion after the first) and ``T`` (time from the first occasion to the end of the
    observation window), all in the caller's time unit.
    """

    name: str
    param_names: tuple[str, ...]
    #: Which parameters are shapes (bounded by MAX_SHAPE); the others are time scales.
    shape_params: tuple[bool, ...]
    #: Pairs of parameters whose growth together (their ratio fixed) leads towards a homogeneous
    #: population — (r, alpha): one purchase rate for all; (a, b) or (s, beta): one drop-out rate. The
    #: likelihood rises ever more slowly along such a ridge, so the optimiser may stop on it short of
    #: the shape bound, at a point that depends on rounding; :meth:`fit` then follows it to the bound.
    ridges: tuple[tuple[int, int], ...] = ((0, 1), (2, 3))

    def __init__(self) -> None:
        self.params_: dict[str, float] = {}
        self.log_likelihood_: float = float("nan")
        self.n_customers_: int = 0
        self.iterations_: int = 0
        #: Parameters that ended on a bound of the search (e.g. a shape at MAX_SHAPE: a homogeneous
        #: population); their value is a limit rather than a point estimate.
        self.at_bounds_: tuple[str, ...] = ()

    # -- fitting ---------------------------------------------------------------------------------

    @abstractmethod
    def _likelihood(
        self, frequency: FloatArray, recency: FloatArray, T: FloatArray
    ) -> Callable[[FloatArray], tuple[float, FloatArray]]:
        """A function params -> (total log-likelihood, gradient wrt the params)."""

    @abstractmethod
    def _start(self, frequency: FloatArray, recency: FloatArray, T: FloatArray) -> FloatArray: ...

    def fit(self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> Self:
        """Estimate the parameters by maximum likelihood; raises NotEnoughData below 10 repeat buyers."""
        x, t_x, age = check_summary(frequency, recency, T)
        require_repeat_buyers(x, self.name)
        if np.all(age <= 0):
            raise InvalidSummary("T must be positive for some customers", extra={"field": "T"})
        log_likelihood = self._likelihood(x, t_x, age)
        upper = np.where(self.shape_params, MAX_SHAPE, np.inf)
        params, value, iterations, at_bound = maximise_log_likelihood(
            log_likelihood, self._start(x, t_x, age), x.size, self.name, upper
        )
        params, value = self._follow_ridges(log_likelihood, params, value, upper)
        at_bound = at_bound | (params >= upper * (1 - 1e-9))
        self.params_ = {name: float(v) for name, v in zip(self.param_names, params, strict=True)}
        self.log_likelihood_ = float(value)
        self.n_customers_ = int(x.size)
        self.iterations_ = iterations
        self.at_bounds_ = tuple(name for name, hit in zip(self.param_names, at_bound, strict=True) if hit)
        return self

    def _follow_ridges(
        self,
        log_likelihood: Callable[[FloatArray], tuple[float, FloatArray]],
        params: FloatArray,
        value: float,
        upper: FloatArray,
    ) -> tuple[FloatArray, float]:
        """Where the fit stopped within a factor ``RIDGE_REACH`` of the shape bound along a ridge, move
        the pair to the bound (ratio kept) if the likelihood there is no lower: the limit the optimiser
        was heading for, reported by ``at_bounds_``, rather than a point where its tolerances ran out."""
        for i, j in self.ridges:
            bounded = [k for k in (i, j) if np.isfinite(upper[k])]
            if not bounded:
                continue
            factor = float(min(upper[k] / params[k] for k in bounded))
            if not 1.0 < factor <= RIDGE_REACH:
                continue
            candidate = params.copy()
            candidate[[i, j]] *= factor
            candidate[bounded] = np.minimum(candidate[bounded], upper[bounded])
            reached, _ = log_likelihood(candidate)
            if np.isfinite(reached) and reached >= value - 1e-12 * max(1.0, abs(value)):
                params, value = candidate, float(reached)
        return params, value

    def log_likelihood(
        self, params: npt.ArrayLike, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> tuple[float, FloatArray]:
        """Total log-likelihood of ``params`` (in ``param_names`` order) and its gradient."""
        x, t_x, age = check_summary(frequency, recency, T)
        return self._likelihood(x, t_x, age)(np.asarray(params, dtype=np.float64))

    def _fitted(self) -> tuple[float, ...]:
        if not self.params_:
            raise ModelNotFitted(f"{self.name} has not been fitted")
        return tuple(self.params_[name] for name in self.param_names)

    # -- predictions -----------------------------------------------------------------------------

    @abstractmethod
    def conditional_probability_alive(
        self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> FloatArray:
        """P(the customer is still active at T | frequency, recency, T)."""

    @abstractmethod
    def expected_purchases_curve(
        self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> Callable[[float], FloatArray]:
        """A function t -> expected repeat purchases of each customer in (T, T + t].

        Work that does not depend on t is done once, so evaluating many horizons (CLV) is cheap.
        """

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: npt.ArrayLike, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> FloatArray:
        """E[purchases in (T, T + t] | frequency, recency, T]; ``t`` is a scalar or one value per customer.

        With the issue's holdout definition: summaries measured at the calibration end, ``t`` the
        holdout length, the sum over customers is the predicted number of holdout repeat purchases.
        """
        horizon = np.asarray(t, dtype=np.float64)
        if horizon.ndim == 0:
            if not np.isfinite(horizon) or horizon < 0:
                raise InvalidSummary("t must be a finite time >= 0", extra={"field": "t"})
            return self.expected_purchases_curve(frequency, recency, T)(float(horizon))
        x, t_x, age = check_summary(frequency, recency, T)
        if horizon.shape != x.shape or not np.all(np.isfinite(horizon)) or np.any(horizon < 0):
            raise InvalidSummary("t must be a time >= 0 per customer", extra={"field": "t"})
        return self._conditional_expectation(horizon, x, t_x, age)

    @abstractmethod
    def _conditional_expectation(
        self, t: FloatArray, frequency: FloatArray, recency: FloatArray, T: FloatArray
    ) -> FloatArray:
        """Element-wise conditional expectation for validated arrays of one shape."""

    @abstractmethod
    def expected_number_of_purchases_up_to_time(self, t: npt.ArrayLike) -> FloatArray:
        """E[repeat purchases in (0, t]] of a new customer (unconditional; the tracking plot)."""
