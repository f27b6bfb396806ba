"""Parameter recovery on seeded simulations of each model's own story."""

from __future__ import annotations

import numpy as np
import pytest

from patron.analytics.models import (
    BetaGeoModel,
    GammaGammaModel,
    NotEnoughData,
    ParetoNBDModel,
    customer_lifetime_value,
)
from patron.analytics.models.simulate import simulate_bg_nbd, simulate_gamma_gamma, simulate_pareto_nbd


def ages(n: int, rng: np.random.Generator, days: int = 730) -> np.ndarray:
    """Customers acquired uniformly over two years, observed in whole days."""
    return rng.integers(1, days, n).astype(np.float64)


@pytest.mark.parametrize("unit", [1.0, 7.0])
def test_bg_nbd_recovers_its_parameters(unit: float) -> None:
    rng = np.random.default_rng(2026)
    truth = {"r": 0.5, "alpha": 40.0, "a": 0.8, "b": 2.5}
    T = ages(60_000, rng)
    x, t_x = simulate_bg_nbd(*truth.values(), T, rng)
    m = BetaGeoModel().fit(x, np.floor(t_x) / unit, T / unit)  # day precision, in days or weeks
    expected = {**truth, "alpha": truth["alpha"] / unit}  # alpha is a time scale
    for name, value in expected.items():
        assert m.params_[name] == pytest.approx(value, rel=0.08), name
    # no better parameters nearby: the fit is a maximum
    p = np.array(list(m.params_.values()))
    for step in np.eye(4) * 0.01:
        for sign in (1, -1):
            assert (
                m.log_likelihood(p * (1 + sign * step), x, np.floor(t_x) / unit, T / unit)[0]
                < m.log_likelihood_
            )


def test_pareto_nbd_recovers_its_parameters() -> None:
    rng = np.random.default_rng(7)
    truth = {"r": 0.9, "alpha": 30.0, "s": 1.2, "beta": 200.0}
    T = ages(60_000, rng)
    x, t_x = simulate_pareto_nbd(*truth.values(), T, rng)
    m = ParetoNBDModel().fit(x, t_x, T)
    for name, value in truth.items():
        assert m.params_[name] == pytest.approx(value, rel=0.12), name


def test_gamma_gamma_recovers_its_parameters() -> None:
    rng = np.random.default_rng(9)
    truth = {"p": 6.0, "q": 4.0, "v": 15.0}
    x = rng.poisson(3.0, 40_000).astype(np.float64)
    spend = simulate_gamma_gamma(*truth.values(), x, rng)
    g = GammaGammaModel().fit(x, spend)
    assert g.n_customers_ == int((x > 0).sum())
    for name, value in truth.items():
        assert g.params_[name] == pytest.approx(value, rel=0.08), name


@pytest.mark.parametrize("seed", range(8))
def test_fits_converge_across_parameter_space(seed: int) -> None:
    """Seeded data sets from random corners of the parameter space (small and odd ones included):
    every fit converges or says NotEnoughData, and every prediction is finite."""
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.choice([60, 400]))
    T = np.floor(rng.uniform(1, 700, n))
    if seed % 2:
        x, t_x = simulate_bg_nbd(*(10 ** rng.uniform([-1, 0, -1, -1], [1, 2.5, 1, 1])), T, rng)
    else:
        x, t_x = simulate_pareto_nbd(*(10 ** rng.uniform([-1, 0, -1, 0], [1, 2.5, 1, 3])), T, rng)
    t_x = np.floor(t_x)
    spend = simulate_gamma_gamma(*(10 ** rng.uniform([-0.5, 0.1, 0], [1, 1, 2])), x, rng)
    for unit in (1.0, 7.0):
        for model_class in (BetaGeoModel, ParetoNBDModel):
            if (x > 0).sum() < 10:
                with pytest.raises(NotEnoughData):
                    model_class().fit(x, t_x / unit, T / unit)
                continue
            m = model_class().fit(x, t_x / unit, T / unit)
            assert np.isfinite(m.log_likelihood_)
            assert np.all(np.isfinite(m.conditional_probability_alive(x, t_x / unit, T / unit)))
            assert np.all(
                np.isfinite(m.expected_number_of_purchases_up_to_time(np.array([1.0, 30, 365]) / unit))
            )
            clv = customer_lifetime_value(
                m, x, t_x / unit, T / unit, np.full(n, 10.0),
                time_unit_days=unit, horizon_months=12, discount_rate_annual=0.1,
            )  # fmt: skip
            assert np.all(np.isfinite(clv))
            assert np.all(clv >= 0)
    if (x > 0).sum() >= 10:
        g = GammaGammaModel().fit(x, spend)
        assert np.isfinite(g.log_likelihood_)
