"""BG/NBD ("beta-geometric / negative binomial") model of Fader, Hardie & Lee (2005),
"Counting your customers the easy way: an alternative to the Pareto/NBD model",
Marketing Science 24(2), 275-284.

While active, a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after every purchase they
drop out with probability p ~ Beta(a, b). The likelihood of (x, t_x, T) is, with B(.,.) the beta
function,

    L = B(a, b + x) / B(a, b) * Gamma(r + x) alpha^r / (Gamma(r) (alpha + T)^(r + x))
      + [x > 0] B(a + 1, b + x - 1) / B(a, b) * Gamma(r + x) alpha^r / (Gamma(r) (alpha + t_x)^(r + x))

computed in log space as ln Gamma-terms (one per distinct x) + logaddexp(A3, A4) per customer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy.integrate import quad
from scipy.special import digamma, expit, gammaln, hyp2f1

from patron.analytics.models._base import TransactionModel
from patron.analytics.models._special import FloatArray, check_summary, group
from patron.analytics.models.errors import InvalidSummary


class BetaGeoModel(TransactionModel):
    """BG/NBD; ``params_`` = {"r", "alpha", "a", "b"} in the time unit of the data."""

    name = "bg_nbd"
    param_names = ("r", "alpha", "a", "b")
    shape_params = (True, False, True, True)

    def _start(self, frequency: FloatArray, recency: FloatArray, T: FloatArray) -> FloatArray:
        rate = max(float(frequency.mean()), 0.1) / max(float(T.mean()), 1e-9)
        return np.array([1.0, 1.0 / rate, 1.0, 1.0])

    def _likelihood(
        self, frequency: FloatArray, recency: FloatArray, T: FloatArray
    ) -> Callable[[FloatArray], tuple[float, FloatArray]]:
        freqs = group(frequency)
        xs, counts = freqs.values, freqs.counts
        zero = frequency == 0
        age_zero = T[zero]
        rep = ~zero
        x_rep, t_rep, age_rep = frequency[rep], recency[rep], T[rep]
        rep_index = np.searchsorted(xs, x_rep)

        def log_likelihood(params: FloatArray) -> tuple[float, FloatArray]:
            r, alpha, a, b = (float(v) for v in params)
            # Terms that depend on x only: once per distinct frequency, weighted by its count.
            per_x = (
                gammaln(r + xs)
                - gammaln(r)
                + r * np.log(alpha)
                + gammaln(a + b)
                + gammaln(b + xs)
                - gammaln(b)
                - gammaln(a + b + xs)
            )
            psi_ab = digamma(a + b)
            psi_abx = digamma(a + b + xs)
            g_r = counts @ (digamma(r + xs) - digamma(r) + np.log(alpha))
            g_alpha = counts.sum() * r / alpha
            g_a = counts @ (psi_ab - psi_abx)
            g_b = counts @ (psi_ab + digamma(b + xs) - digamma(b) - psi_abx)
            total = float(counts @ per_x)

            # Customers without repeat purchases: only A3 = -r ln(alpha + T).
            log_age0 = np.log(alpha + age_zero)
            total -= r * float(log_age0.sum())
            g_r -= float(log_age0.sum())
            g_alpha -= r * float(np.sum(1.0 / (alpha + age_zero)))

            # Repeat buyers: logaddexp(A3, A4).
            rx = r + x_rep
            log_age = np.log(alpha + age_rep)
            log_rec = np.log(alpha + t_rep)
            log_bx = np.log(b + xs - 1.0, where=xs > 0, out=np.zeros_like(xs))[rep_index]
            a3 = -rx * log_age
            a4 = np.log(a) - log_bx - rx * log_rec
            ll = np.logaddexp(a3, a4)
            w = np.exp(a4 - ll)  # share of the "dropped out after the last purchase" branch
            total += float(ll.sum())
            g_r -= float(log_age.sum()) + float(w @ (log_rec - log_age))
            g_alpha -= float(rx @ ((1.0 - w) / (alpha + age_rep) + w / (alpha + t_rep)))
            g_a += float(w.sum()) / a
            g_b -= float(w @ np.exp(-log_bx))
            return total, np.array([g_r, g_alpha, g_a, g_b])

        return log_likelihood

    # -- predictions -----------------------------------------------------------------------------

    def _log_odds_dead(self, x: FloatArray, t_x: FloatArray, age: FloatArray) -> FloatArray:
        r, alpha, a, b = self._fitted()
        out = np.full(x.shape, -np.inf)
        rep = x > 0
        xr = x[rep]
        out[rep] = (
            np.log(a)
            - np.log(b + xr - 1.0)
            + (r + xr) * (np.log(alpha + age[rep]) - np.log(alpha + t_x[rep]))
        )
        return out

    def conditional_probability_alive(
        self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> FloatArray:
        """1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x)); 1 when x = 0."""
        x, t_x, age = check_summary(frequency, recency, T)
        return np.asarray(expit(-self._log_odds_dead(x, t_x, age)), dtype=np.float64)

    def _alive_expectation(self, t: FloatArray, x: FloatArray, age: FloatArray) -> FloatArray:
        """E[Y(t) | x, T] / P(alive) = (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(...)]."""
        r, alpha, a, b = self._fitted()
        return _alive_expectation(r, alpha, a, b, t, x, age)

    def _conditional_expectation(
        self, t: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
    ) -> FloatArray:
        alive = expit(-self._log_odds_dead(x, t_x, age))
        return np.asarray(self._alive_expectation(t, x, age) * alive, dtype=np.float64)

    def expected_purchases_curve(
        self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> Callable[[float], FloatArray]:
        x, t_x, age = check_summary(frequency, recency, T)
        self._fitted()
        alive = expit(-self._log_odds_dead(x, t_x, age))
        pairs = group(x, age)  # the hypergeometric part depends on (x, T) only
        px, page = pairs.values[:, 0], pairs.values[:, 1]

        def curve(t: float) -> FloatArray:
            if not np.isfinite(t) or t < 0:
                raise InvalidSummary("t must be a finite time >= 0", extra={"field": "t"})
            per_pair = self._alive_expectation(np.full(px.shape, float(t)), px, page)
            return np.asarray(per_pair[pairs.index] * alive, dtype=np.float64)

        return curve

    def expected_number_of_purchases_up_to_time(self, t: npt.ArrayLike) -> FloatArray:
        """(a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]: a customer with
        x = 0 observed for T = 0."""
        r, alpha, a, b = self._fitted()
        horizon = np.atleast_1d(np.asarray(t, dtype=np.float64))
        if not np.all(np.isfinite(horizon)) or np.any(horizon < 0):
            raise InvalidSummary("t must be a finite time >= 0", extra={"field": "t"})
        zeros = np.zeros_like(horizon)
        return _alive_expectation(r, alpha, a, b, horizon, zeros, zeros)


#: Where the closed form has a removable singularity (a + b + x - 1 = 0) it is evaluated on both
#: sides at this distance and averaged (error of order NUDGE^2).
NUDGE = 1e-5
#: Near a = 1 the closed form divides a vanishing difference by a - 1. Within STEP / 2 of 1 the value
#: is interpolated (degree 3) from a = 1 +- STEP, 1 +- 2 STEP, with STEP small against the scale
#: 1 / |ln(1 - z)| on which the expectation varies with a: error ~ (STEP ln(1 - z))^4 ~ 1e-8.
MAX_STEP = 3e-3


def _alive_expectation_raw(
    r: float, alpha: float, a: float, b: float, t: FloatArray, x: FloatArray, age: FloatArray
) -> FloatArray:
    # The paper's form (1-z)^(r+x) 2F1(r+x, b+x; c; z), c = a+b+x-1, z = t/(alpha+T+t), overflows for
    # large x; after Euler's transformation, (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z), it overflows for
    # large a instead. The transformed form is used, the paper's where it is not finite.
    z = t / (alpha + age + t)
    c = a + b + x - 1.0
    with np.errstate(all="ignore"):
        tail = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
        bad = ~np.isfinite(tail)
        if np.any(bad):
            zb = z[bad]
            tail[bad] = np.exp((r + x[bad]) * np.log1p(-zb)) * hyp2f1(r + x[bad], b + x[bad], c[bad], zb)
        return np.asarray(c / (a - 1.0) * (1.0 - tail), dtype=np.float64)


def _alive_expectation(
    r: float, alpha: float, a: float, b: float, t: FloatArray, x: FloatArray, age: FloatArray
) -> FloatArray:
    """(a+b+x-1)/(a-1) [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)], finite for all a, b > 0."""
    with np.errstate(divide="ignore"):
        scale = float(np.max(-np.log1p(-t / (alpha + age + t)), initial=0.0))
    step = min(MAX_STEP, 0.01 / max(scale, 1e-12))
    if abs(a - 1.0) >= step / 2:
        return _alive_expectation_away_from_one(r, alpha, a, b, t, x, age)
    offsets = np.array([-2.0, -1.0, 1.0, 2.0])
    nodes = 1.0 + step * offsets
    target = (a - 1.0) / step
    value = np.zeros_like(t)
    for j, node in enumerate(nodes):
        others = np.delete(offsets, j)
        weight = float(np.prod((target - others) / (offsets[j] - others)))
        value += weight * _alive_expectation_away_from_one(r, alpha, float(node), b, t, x, age)
    value[t == 0] = 0.0
    return value


def _alive_expectation_away_from_one(
    r: float, alpha: float, a: float, b: float, t: FloatArray, x: FloatArray, age: FloatArray
) -> FloatArray:
    value = _alive_expectation_raw(r, alpha, a, b, t, x, age)
    bad = ~np.isfinite(value)
    if np.any(bad):  # a + b + x - 1 at a pole of the hypergeometric representation
        below = _alive_expectation_raw(r, alpha, a, b - NUDGE, t[bad], x[bad], age[bad])
        above = _alive_expectation_raw(r, alpha, a, b + NUDGE, t[bad], x[bad], age[bad])
        with np.errstate(invalid="ignore", over="ignore"):
            value[bad] = (below + above) / 2.0
    bad = ~np.isfinite(value)
    for i in np.flatnonzero(bad):  # scipy's 2F1 gives up (z -> 1 with huge parameters): integrate
        value[i] = _alive_expectation_by_integration(r, alpha, a, b, float(t[i]), float(x[i]), float(age[i]))
    value[t == 0] = 0.0
    return value


def _alive_expectation_by_integration(
    r: float, alpha: float, a: float, b: float, t: float, x: float, age: float
) -> float:
    """E[Y(t) | alive] = E[(1 - ((alpha+T)/(alpha+T+p t))^(r+x)) / p] over p ~ Beta(a, b+x): given p an
    active customer's expected purchases, with lambda ~ Gamma(r+x, alpha+T) integrated out. Adaptive
    quadrature; the Beta density's endpoint powers go into QUADPACK's algebraic weight when they are
    singular."""
    if t <= 0:
        return 0.0
    shape_b = b + x
    scale = (alpha + age) / t  # the gain below changes on this scale of p

    def gain(p: float) -> float:
        if p <= 0.0:
            return (r + x) / scale
        return float(-np.expm1(-(r + x) * np.log1p(p / scale)) / p)

    total = a + shape_b
    mean = a / total
    spread = 40.0 * np.sqrt(mean * (1.0 - mean) / (total + 1.0))
    log_norm = float(gammaln(total) - gammaln(a) - gammaln(shape_b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if a >= 1.0 and shape_b >= 1.0:  # a bounded density: integrate where its mass is
            low, high = max(0.0, mean - spread), min(1.0, mean + spread)

            def integrand(p: float) -> float:
                if p <= 0.0 or p >= 1.0:
                    return 0.0
                log_density = log_norm + (a - 1.0) * np.log(p) + (shape_b - 1.0) * np.log1p(-p)
                return gain(p) * float(np.exp(log_density))

            points = [p for p in (mean, scale, 10.0 * scale) if low < p < high]
            value, _ = quad(integrand, low, high, points=points or None, epsabs=0.0, epsrel=1e-10, limit=500)
        elif shape_b >= 1.0:  # p^(a-1) singular at 0: the weight; (1-p)^(b+x-1) in the integrand,
            # which is below e^-80 beyond 80 / (b+x-1) (the mean says little when a is tiny)
            high = min(1.0, 80.0 / max(shape_b - 1.0, 1e-300))

            def tail(p: float) -> float:
                return gain(p) * float(np.exp(log_norm + (shape_b - 1.0) * np.log1p(-p)))

            value, _ = quad(
                tail, 0.0, high, weight="alg", wvar=(a - 1.0, 0.0), epsabs=0.0, epsrel=1e-10, limit=500
            )
        else:  # (1-p)^(b-1) singular at 1 too: both powers in the weight
            value, _ = quad(
                gain, 0.0, 1.0, weight="alg", wvar=(a - 1.0, shape_b - 1.0), epsabs=0.0, epsrel=1e-10
            )
            value *= float(np.exp(log_norm))
    return float(value)
