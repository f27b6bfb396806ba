"""Numerics shared by the models: input checks, compression of repeated values, a hypergeometric
series with its parameter derivatives, and the maximum-likelihood driver.

Nothing here is public API; the model classes are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from patron.analytics.models.errors import InvalidSummary, ModelFitFailed, NotEnoughData

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: A model needs at least this many customers with one repeat purchase or more.
MIN_REPEAT_BUYERS = 10

#: Log-parameters are kept inside [-LOG_BOUND, LOG_BOUND] (parameters in [2e-9, 5e8]).
LOG_BOUND = 20.0

#: Upper bound of the gamma and beta *shape* parameters. Beyond it the mixing distribution has a
#: coefficient of variation under 1 %: the population is homogeneous for every practical purpose, the
#: likelihood is flat along a ridge towards infinity (shape and scale growing together) and double
#: precision can no longer resolve it. A fit that ends on this bound is reported as such.
MAX_SHAPE = 1e4


def as_float_array(name: str, values: npt.ArrayLike) -> FloatArray:
    """A 1-D float64 array of finite values; anything else is an :class:`InvalidSummary`."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise InvalidSummary(f"{name} must be one-dimensional", extra={"field": name})
    if not np.all(np.isfinite(array)):
        raise InvalidSummary(f"{name} contains a missing or infinite value", extra={"field": name})
    return array


def check_summary(
    frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate (frequency, recency, T): repeat-occasion counts and times from the first occasion.

    frequency is a whole number >= 0; 0 <= recency <= T; recency is 0 when frequency is 0.
    """
    x = as_float_array("frequency", frequency)
    t_x = as_float_array("recency", recency)
    age = as_float_array("T", T)
    if not (x.shape == t_x.shape == age.shape):
        raise InvalidSummary("frequency, recency and T must have the same length")
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise InvalidSummary(
            "frequency must be a whole number of repeat purchases >= 0", extra={"field": "frequency"}
        )
    if np.any(t_x < 0):
        raise InvalidSummary("recency must be >= 0", extra={"field": "recency"})
    if np.any(t_x > age * (1 + 1e-12) + 1e-12):
        raise InvalidSummary("recency must not exceed T", extra={"field": "recency"})
    if np.any((x == 0) & (t_x != 0)):
        raise InvalidSummary(
            "recency must be 0 for customers without repeat purchases", extra={"field": "recency"}
        )
    return x, np.minimum(t_x, age), age


def require_repeat_buyers(frequency: FloatArray, model: str) -> None:
    repeat = int(np.count_nonzero(frequency > 0))
    if repeat < MIN_REPEAT_BUYERS:
        raise NotEnoughData(
            f"{model} needs at least {MIN_REPEAT_BUYERS} customers with a repeat purchase; found {repeat}",
            extra={"model": model, "repeat_buyers": repeat, "required": MIN_REPEAT_BUYERS},
        )


@dataclass(frozen=True)
class Groups:
    """Distinct values (or rows) of a key and, per customer, the index of its value."""

    values: FloatArray  # (k,) or (k, m)
    index: IntArray  # (n,)
    counts: FloatArray  # (k,)


def group(*columns: FloatArray) -> Groups:
    """Distinct values of one column, or distinct rows of several, with inverse index and counts."""
    if len(columns) == 1:
        values, index, counts = np.unique(columns[0], return_inverse=True, return_counts=True)
        return Groups(values, index.reshape(-1).astype(np.intp), counts.astype(np.float64))
    order = np.lexsort(columns[::-1])
    sorted_columns = [column[order] for column in columns]
    starts = np.ones(order.size, dtype=bool)
    if order.size:
        starts[1:] = np.logical_or.reduce([np.diff(column) != 0 for column in sorted_columns])
    group_of_sorted = np.cumsum(starts) - 1
    index = np.empty(order.size, dtype=np.intp)
    index[order] = group_of_sorted
    first = np.flatnonzero(starts)
    rows = np.column_stack([column[first] for column in sorted_columns])
    sizes = np.asarray(np.diff(np.append(first, order.size)), dtype=np.float64)
    return Groups(rows, index, sizes)


@dataclass(frozen=True)
class Series:
    """S = 2F1(1, b; c; z) = sum_k (b)_k / (c)_k z^k and its derivatives dS/db, dS/dc, dS/dz."""

    value: FloatArray
    d_b: FloatArray
    d_c: FloatArray
    d_z: FloatArray


def hyp2f1_1bc(
    b: FloatArray, c: FloatArray, z: FloatArray, *, tol: float = 1e-15, max_terms: int = 100_000
) -> Series:
    """Gauss' series 2F1(1, b; c; z) for 0 <= z < 1 and 0 < b < c, with parameter derivatives.

    Every term is positive and at most z**k (because b < c), so the sum is free of cancellation
    and bounded by 1 / (1 - z); the derivative sums follow term by term:
    d ln t_k / db = sum_{j<k} 1 / (b + j), d ln t_k / dc = -sum_{j<k} 1 / (c + j), dt_k / dz = k t_k / z.
    """
    n = b.shape[0]
    total = np.ones(n)
    d_b = np.zeros(n)
    d_c = np.zeros(n)
    d_z = np.zeros(n)
    active = np.arange(n)
    term = np.ones(n)
    log_b = np.zeros(n)
    log_c = np.zeros(n)
    bb, cc, zz = b.copy(), c.copy(), z.copy()
    geometric = zz / np.maximum(1.0 - zz, 1e-300)
    k = 0
    while active.size:
        if k >= max_terms:
            raise ModelFitFailed("the hypergeometric series did not converge", extra={"terms": k})
        ratio = (bb + k) / (cc + k)
        term_z = (k + 1) * term * ratio
        log_b = log_b + 1.0 / (bb + k)
        log_c = log_c - 1.0 / (cc + k)
        term = term * ratio * zz
        total[active] += term
        d_b[active] += term * log_b
        d_c[active] += term * log_c
        d_z[active] += term_z
        k += 1
        # Bounds on what the remaining terms add: a geometric tail of ratio z, or, since the term
        # ratio is at most (b+j)/(c+j), tail <= term (b+k) / (c-1-b) (Gauss' sum 2F1(1,B;C;1)).
        tail = term * np.minimum(
            geometric, np.where(cc - bb > 1, (bb + k) / np.maximum(cc - 1 - bb, 1e-300), np.inf)
        )
        tail_z = term_z * np.minimum(
            geometric * (k + 1), np.where(cc - bb > 2, (bb + k + 1) / np.maximum(cc - 2 - bb, 1e-300), np.inf)
        )
        done = (tail * (1.0 + np.abs(log_b) + np.abs(log_c)) <= tol * total[active]) & (
            tail_z <= tol * d_z[active]
        )
        if np.any(done):
            keep = ~done
            active, term, log_b, log_c = active[keep], term[keep], log_b[keep], log_c[keep]
            bb, cc, zz, geometric = bb[keep], cc[keep], zz[keep], geometric[keep]
    return Series(total, d_b, d_c, d_z)


Objective = Callable[[FloatArray], tuple[float, FloatArray]]

#: Largest mean-log-likelihood gradient (per customer, per unit of log-parameter) taken as converged
#: without a restart, and the largest accepted at all.
CONVERGED = 1e-6
ACCEPTED = 1e-3


def maximise_log_likelihood(
    log_likelihood: Objective, start: FloatArray, n_customers: int, model: str, upper: FloatArray
) -> tuple[FloatArray, float, int, npt.NDArray[np.bool_]]:
    """Maximise a total log-likelihood over positive parameters.

    The optimiser (L-BFGS-B) works on log-parameters with the analytic gradient; the objective is
    the mean negative log-likelihood, so tolerances do not depend on the number of customers.
    ``upper`` bounds each parameter from above (MAX_SHAPE for shapes). Returns the parameters, the
    total log-likelihood, the number of iterations and which parameters ended on a bound.
    """

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        params = np.exp(theta)
        value, gradient = log_likelihood(params)
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return np.inf, np.zeros_like(theta)
        return -value / n_customers, -(gradient * params) / n_customers

    high = np.minimum(np.log(upper), LOG_BOUND)
    theta = np.clip(np.log(start), -LOG_BOUND, high)
    bounds = [(-LOG_BOUND, float(b)) for b in high]
    iterations = 0
    message = ""
    # Element-wise NumPy is faster on one BLAS thread than on many on small machines (STACK.md).
    with threadpool_limits(limits=1):
        for _attempt in range(3):  # restarts drop a stale curvature model (flat ridges)
            result = minimize(
                objective,
                theta,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9, "maxcor": 20},
            )
            iterations += int(result.nit)
            message = str(result.message)
            theta = np.asarray(result.x, dtype=np.float64)
            value, gradient = objective(theta)
            interior = (theta > -LOG_BOUND + 1e-6) & (theta < high - 1e-6)
            scale = max(1.0, abs(value))
            steepest = float(np.max(np.abs(gradient[interior]), initial=0.0))
            if steepest <= CONVERGED * scale or result.nit == 0:
                break
    # On a flat ridge the last digits of the likelihood no longer move: a gradient of ACCEPTED per
    # customer and unit of log-parameter changes the fit by less than 1e-5 per customer over a 1 %
    # parameter change.
    if not np.isfinite(value) or steepest > ACCEPTED * scale:
        raise ModelFitFailed(
            f"{model}: the optimiser stopped without converging ({message})",
            extra={"model": model, "iterations": iterations},
        )
    return np.exp(theta), -value * n_customers, iterations, ~interior
