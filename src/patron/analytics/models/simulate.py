"""Seeded simulation of the models' generative stories (parameter-recovery tests, benchmarks, demos).

Times are in any unit; each customer's clock starts at their first purchase and ``T`` is the length of
their observation after it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from patron.analytics.models._special import FloatArray, as_float_array


def simulate_bg_nbd(
    r: float, alpha: float, a: float, b: float, T: npt.ArrayLike, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """(frequency, recency) under BG/NBD: Poisson purchases at rate lambda ~ Gamma(r, alpha) and, after
    every repeat purchase, drop-out with probability p ~ Beta(a, b)."""
    age = as_float_array("T", T)
    n = age.size
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    now = np.zeros(n)
    active = np.arange(n)
    while active.size:
        now[active] += rng.exponential(1.0, active.size) / lam[active]
        bought = now[active] <= age[active]
        active = active[bought]
        x[active] += 1
        t_x[active] = now[active]
        active = active[rng.random(active.size) >= p[active]]
    return x, t_x


def simulate_pareto_nbd(
    r: float, alpha: float, s: float, beta: float, T: npt.ArrayLike, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """(frequency, recency) under Pareto/NBD: Poisson purchases at rate lambda ~ Gamma(r, alpha) during an
    exponential lifetime of rate mu ~ Gamma(s, beta)."""
    age = as_float_array("T", T)
    n = age.size
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    observed = np.minimum(rng.exponential(1.0, n) / mu, age)
    x = rng.poisson(lam * observed).astype(np.float64)
    # The last of x uniform times on [0, observed] is observed * U^(1/x).
    with np.errstate(divide="ignore"):
        t_x = np.where(x > 0, observed * rng.random(n) ** (1.0 / np.maximum(x, 1.0)), 0.0)
    return x, t_x


def simulate_gamma_gamma(
    p: float, q: float, v: float, frequency: npt.ArrayLike, rng: np.random.Generator
) -> FloatArray:
    """Mean spend of each customer's ``frequency`` repeat purchases (0 when there are none): every
    purchase is Gamma(p, nu) with nu ~ Gamma(q, v) per customer."""
    x = as_float_array("frequency", frequency)
    nu = rng.gamma(q, 1.0 / v, x.size)
    total = np.zeros(x.size)
    some = x > 0
    total[some] = rng.gamma(p * x[some], 1.0 / nu[some])
    return np.where(some, total / np.maximum(x, 1.0), 0.0)
