"""Pareto/NBD model of Schmittlein, Morrison & Colombo (1987), in the formulation of Fader & Hardie,
"A Note on Deriving the Pareto/NBD Model and Related Expressions" (2005) and Fader, Hardie & Lee,
"RFM and CLV: Using Iso-Value Curves for Customer Base Analysis", JMR 42(4), 415-430 (2005).

While active a customer buys at Poisson rate lambda ~ Gamma(r, alpha); their lifetime is exponential
with rate mu ~ Gamma(s, beta). The likelihood of (x, t_x, T) is

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s (J(t_x) - J(T)) ]
    J(t) = integral_t^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du
         = (M+t)^-(r+s+x) 2F1(r+s+x, e; r+s+x+1; z_t) / (r+s+x),  z_t = |alpha-beta| / (M+t)

with M = max(alpha, beta) and e = s+1 when alpha >= beta, else r+x: the published case split that keeps
0 <= z_t < 1. Euler's transformation turns the hypergeometric function into 2F1(1, b; r+s+x+1; z_t)
(b = r+x or s+1), a series of positive terms bounded by z^k: no overflow for large x, no cancellation,
and its parameter derivatives follow term by term (the gradient is analytic). Everything is combined in
log space; J(t_x) - J(T) is formed as exp(B) (1 - exp(C - B)) with expm1.

J(T) and the first term depend on (x, T) only and J(t_x) on (x, t_x) only: they are evaluated once per
distinct pair (customers with x = 0 share t_x = 0).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln

from patron.analytics.models._base import TransactionModel
from patron.analytics.models._special import FloatArray, check_summary, group, hyp2f1_1bc
from patron.analytics.models.errors import InvalidSummary


def _log_j_series(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, t: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """ln J(t) for pairs (x, t) and its gradient wrt (r, alpha, s, beta), shape (4, n)."""
    m = r + s + x
    c = m + 1.0
    if alpha >= beta:
        b = r + x
        z = (alpha - beta) / (alpha + t)
        series = hyp2f1_1bc(b, c, z)
        ls = np.log(series.value)
        sb, sc, sz = series.d_b / series.value, series.d_c / series.value, series.d_z / series.value
        log_a, log_b = np.log(alpha + t), np.log(beta + t)
        value = -(r + x) * log_a - s * log_b + ls - np.log(m)
        grad = np.stack(
            [
                -log_a + sb + sc - 1.0 / m,
                -(r + x) / (alpha + t) + sz * (beta + t) / (alpha + t) ** 2,
                -log_b + sc - 1.0 / m,
                -s / (beta + t) - sz / (alpha + t),
            ]
        )
    else:
        b = np.full_like(x, s + 1.0)
        z = (beta - alpha) / (beta + t)
        series = hyp2f1_1bc(b, c, z)
        ls = np.log(series.value)
        sb, sc, sz = series.d_b / series.value, series.d_c / series.value, series.d_z / series.value
        log_a, log_b = np.log(alpha + t), np.log(beta + t)
        value = -(r + x - 1.0) * log_a - (s + 1.0) * log_b + ls - np.log(m)
        grad = np.stack(
            [
                -log_a + sc - 1.0 / m,
                -(r + x - 1.0) / (alpha + t) - sz / (beta + t),
                -log_b + sb + sc - 1.0 / m,
                -(s + 1.0) / (beta + t) + sz * (alpha + t) / (beta + t) ** 2,
            ]
        )
    return value, grad


#: Pairs whose series would need more terms than this are integrated instead (z close to 1 with
#: a small exponent on the smaller of alpha + u, beta + u, or a large b).
SERIES_MAX_TERMS = 400.0
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(20)
_LEFT_PANELS = 32
_RIGHT_DOUBLINGS = 14


def _log_j(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, t: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """ln J(t) for pairs (x, t) and its gradient wrt (r, alpha, s, beta), shape (4, n)."""
    low, high = min(alpha, beta), max(alpha, beta)
    z = (high - low) / (high + t)
    # Terms of 2F1(1, b; c; z) shrink at least like z^k and like (b / (b + k))^(c - 1 - b).
    b = np.full_like(x, s + 1.0) if alpha < beta else r + x
    gap = r + s + x - b  # c - 1 - b
    with np.errstate(divide="ignore", over="ignore"):
        geometric = np.where(z > 0, np.log(1e-16) / np.log(np.where(z > 0, z, 0.5)), 0.0)
        power = np.where(gap > 0.5, b * np.expm1(np.log(1e16) / np.maximum(gap, 0.5)), np.inf)
    slow = np.minimum(geometric, power) > SERIES_MAX_TERMS
    if not np.any(slow):
        return _log_j_series(r, alpha, s, beta, x, t)
    value = np.empty_like(x)
    grad = np.empty((4, x.size))
    fast = ~slow
    if np.any(fast):
        value[fast], grad[:, fast] = _log_j_series(r, alpha, s, beta, x[fast], t[fast])
    chunk = 512
    where = np.flatnonzero(slow)
    for start in range(0, where.size, chunk):
        rows = where[start : start + chunk]
        value[rows], grad[:, rows] = _log_j_quadrature(r, alpha, s, beta, x[rows], t[rows])
    return value, grad


def _log_j_quadrature(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, t: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """ln J(t) and its gradient by composite Gauss-Legendre quadrature, for pairs with z near 1.

    With mu = min(alpha, beta) and mu + u = (mu + t) e^y the integrand of J becomes, up to the
    factor (mu+t)^(1-A-B), exp((1 - k_min) y - k_max ln(e^y + rho)) on y in [0, inf), rho =
    |alpha - beta| / (mu + t): smooth, with its only singularities at ln rho + i pi (2j+1). Panels are
    uniform on [0, ln rho] and geometrically growing beyond it, where the integrand decays like
    e^(-(r+s+x) y). The gradient is the weighted mean of the integrand's log-derivatives, so value and
    gradient come from the same quadrature. Everything is in log space.
    """
    big_a, big_b = r + x, s + 1.0
    low = min(alpha, beta)
    log_base = np.log(low + t)
    log_rho = np.log(abs(alpha - beta)) - log_base
    c0 = np.maximum(log_rho, 0.0)
    # Panel edges per pair, merged and sorted: 32 uniform panels on [0, c0]; panels doubling from 0
    # at the scale of the decay rate |k_min - 1| (clipped to c0); then c0 + h (0, 1, 2, 4, ...) with h
    # at the scale of the tail's rate r + s + x.
    k_low = big_a if alpha < beta else np.full_like(x, big_b)
    doubling = np.concatenate([[0.0], 2.0 ** np.arange(_RIGHT_DOUBLINGS)])
    uniform = c0[:, None] * np.linspace(0.0, 1.0, _LEFT_PANELS + 1)[None, :]
    h_left = np.minimum(1.0, 10.0 / np.maximum(np.abs(k_low - 1.0), 1e-12))
    graded = np.minimum(h_left[:, None] * doubling[None, 1:], c0[:, None])
    m = r + s + x
    h = np.minimum(1.0, 10.0 / m)
    right = c0[:, None] + h[:, None] * doubling[None, 1:]
    edges = np.concatenate([np.sort(np.concatenate([uniform, graded], axis=1), axis=1), right], axis=1)
    lo, hi = edges[:, :-1], edges[:, 1:]
    half = (hi - lo) / 2.0
    y = ((lo + hi) / 2.0)[:, :, None] + half[:, :, None] * _NODES[None, None, :]
    with np.errstate(divide="ignore"):
        log_w = np.log(half)[:, :, None] + np.log(_WEIGHTS)[None, None, :]
    y = y.reshape(x.size, -1)
    log_w = log_w.reshape(x.size, -1)
    log_low_u = log_base[:, None] + y  # ln(mu + u)
    log_high_u = log_base[:, None] + np.logaddexp(y, log_rho[:, None])  # ln(max + u)
    log_alpha_u, log_beta_u = (log_low_u, log_high_u) if alpha < beta else (log_high_u, log_low_u)
    # ln of integrand * du/dy = -A ln(alpha+u) - B ln(beta+u) + ln(mu+u)
    log_terms = log_w - big_a[:, None] * log_alpha_u - big_b * log_beta_u + log_low_u
    top = np.max(log_terms, axis=1, keepdims=True)
    share = np.exp(log_terms - top)
    total = share.sum(axis=1, keepdims=True)
    value = (top + np.log(total))[:, 0]
    share = share / total
    grad = np.stack(
        [
            -np.sum(share * log_alpha_u, axis=1),
            -big_a * np.sum(share * np.exp(-log_alpha_u), axis=1),
            -np.sum(share * log_beta_u, axis=1),
            -big_b * np.sum(share * np.exp(-log_beta_u), axis=1),
        ]
    )
    return value, grad


class _Pairs:
    """The customers grouped by (x, T) and by (x, t_x): the likelihood's costly terms depend on these."""

    def __init__(self, x: FloatArray, t_x: FloatArray, age: FloatArray) -> None:
        self.n = x.size
        self.at_t = group(x, age)
        self.at_rec = group(x, t_x)


class _Parts:
    """Per-customer pieces of the likelihood at given parameters (shared by fit and predictions)."""

    def __init__(self, params: FloatArray, pairs: _Pairs, *, gradient: bool) -> None:
        r, alpha, s, beta = (float(v) for v in params)
        self.at_t = pairs.at_t
        self.at_rec = pairs.at_rec
        tx, tt = self.at_t.values[:, 0], self.at_t.values[:, 1]
        rx, rt = self.at_rec.values[:, 0], self.at_rec.values[:, 1]
        log_at, log_bt = np.log(alpha + tt), np.log(beta + tt)
        first = -(r + tx) * log_at - s * log_bt  # ln (alpha+T)^-(r+x) (beta+T)^-s
        c_val, c_grad = _log_j(r, alpha, s, beta, tx, tt)
        b_val, b_grad = _log_j(r, alpha, s, beta, rx, rt)
        a = first[self.at_t.index]
        c = c_val[self.at_t.index]
        bb = b_val[self.at_rec.index]
        positive = c < bb
        with np.errstate(divide="ignore"):
            d = np.where(positive, bb + np.log(-np.expm1(np.minimum(c - bb, 0.0))), -np.inf)
        self.log_bracket = np.logaddexp(a, np.log(s) + d)
        self.w_first = np.exp(a - self.log_bracket)  # = P(alive)
        if gradient:
            self.w_b = np.where(positive, s * np.exp(bb - self.log_bracket), 0.0)
            self.w_c = np.where(positive, s * np.exp(c - self.log_bracket), 0.0)
            first_grad = np.stack([-log_at, -(r + tx) / (alpha + tt), -log_bt, -s / (beta + tt)])
            n_t, n_rec = tx.size, rx.size
            sum_first = np.bincount(self.at_t.index, weights=self.w_first, minlength=n_t)
            sum_c = np.bincount(self.at_t.index, weights=self.w_c, minlength=n_t)
            sum_b = np.bincount(self.at_rec.index, weights=self.w_b, minlength=n_rec)
            self.grad = first_grad @ sum_first + b_grad @ sum_b - c_grad @ sum_c
            self.grad[2] += float(self.w_b.sum() - self.w_c.sum()) / s


class ParetoNBDModel(TransactionModel):
    """Pareto/NBD; ``params_`` = {"r", "alpha", "s", "beta"} in the time unit of the data."""

    name = "pareto_nbd"
    param_names = ("r", "alpha", "s", "beta")
    shape_params = (True, False, True, False)

    def _start(self, frequency: FloatArray, recency: FloatArray, T: FloatArray) -> FloatArray:
        rate = max(float(frequency.mean()), 0.1) / max(float(T.mean()), 1e-9)
        return np.array([1.0, 1.0 / rate, 1.0, max(float(T.mean()), 1e-6)])

    def _likelihood(
        self, frequency: FloatArray, recency: FloatArray, T: FloatArray
    ) -> Callable[[FloatArray], tuple[float, FloatArray]]:
        freqs = group(frequency)
        xs, counts = freqs.values, freqs.counts
        n = float(frequency.size)
        pairs = _Pairs(frequency, recency, T)

        def log_likelihood(params: FloatArray) -> tuple[float, FloatArray]:
            r, alpha, s, beta = (float(v) for v in params)
            parts = _Parts(params, pairs, gradient=True)
            const = float(counts @ (gammaln(r + xs) - gammaln(r))) + n * (
                r * np.log(alpha) + s * np.log(beta)
            )
            total = const + float(parts.log_bracket.sum())
            grad = parts.grad.copy()
            grad[0] += float(counts @ (digamma(r + xs) - digamma(r))) + n * np.log(alpha)
            grad[1] += n * r / alpha
            grad[2] += n * np.log(beta)
            grad[3] += n * s / beta
            return total, grad

        return log_likelihood

    # -- predictions -----------------------------------------------------------------------------

    def conditional_probability_alive(
        self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> FloatArray:
        """(alpha+T)^-(r+x) (beta+T)^-s / [ (alpha+T)^-(r+x) (beta+T)^-s + s (J(t_x) - J(T)) ]."""
        x, t_x, age = check_summary(frequency, recency, T)
        params = np.array(self._fitted())
        return np.asarray(_Parts(params, _Pairs(x, t_x, age), gradient=False).w_first, dtype=np.float64)

    def _alive_expectation(self, t: FloatArray, x: FloatArray, age: FloatArray) -> FloatArray:
        """E[Y(t) | alive] = (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]."""
        r, alpha, s, beta = self._fitted()
        log_ratio = np.log1p(t / (beta + age))  # ln((beta+T+t)/(beta+T)) >= 0
        factor = log_ratio if abs(s - 1.0) < 1e-12 else -np.expm1(-(s - 1.0) * log_ratio) / (s - 1.0)
        return np.asarray((r + x) * (beta + age) / (alpha + age) * factor, dtype=np.float64)

    def _conditional_expectation(
        self, t: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
    ) -> FloatArray:
        alive = _Parts(np.array(self._fitted()), _Pairs(x, t_x, age), gradient=False).w_first
        return np.asarray(self._alive_expectation(t, x, age) * alive, dtype=np.float64)

    def expected_purchases_curve(
        self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
    ) -> Callable[[float], FloatArray]:
        x, t_x, age = check_summary(frequency, recency, T)
        alive = _Parts(np.array(self._fitted()), _Pairs(x, t_x, age), gradient=False).w_first

        def curve(t: float) -> FloatArray:
            if not np.isfinite(t) or t < 0:
                raise InvalidSummary("t must be a finite time >= 0", extra={"field": "t"})
            return np.asarray(
                self._alive_expectation(np.full(x.shape, float(t)), x, age) * alive, dtype=np.float64
            )

        return curve

    def expected_number_of_purchases_up_to_time(self, t: npt.ArrayLike) -> FloatArray:
        """r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]."""
        r, alpha, s, beta = self._fitted()
        horizon = np.atleast_1d(np.asarray(t, dtype=np.float64))
        if not np.all(np.isfinite(horizon)) or np.any(horizon < 0):
            raise InvalidSummary("t must be a finite time >= 0", extra={"field": "t"})
        log_ratio = np.log1p(horizon / beta)
        factor = log_ratio if abs(s - 1.0) < 1e-12 else -np.expm1(-(s - 1.0) * log_ratio) / (s - 1.0)
        return np.asarray(r * beta / alpha * factor, dtype=np.float64)
