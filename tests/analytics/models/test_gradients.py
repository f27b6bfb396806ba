"""Analytic gradients of the three log-likelihoods against central finite differences."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from patron.analytics.models import BetaGeoModel, GammaGammaModel, ParetoNBDModel
from patron.analytics.models._special import MAX_SHAPE
from patron.analytics.models.simulate import simulate_gamma_gamma, simulate_pareto_nbd
from tests.analytics.models.cdnow import calibration_summary


def finite_differences(f: Callable[[np.ndarray], float], params: np.ndarray, rel: float = 1e-6) -> np.ndarray:
    out = np.empty_like(params)
    for i in range(params.size):
        h = rel * params[i]
        up, down = params.copy(), params.copy()
        up[i] += h
        down[i] -= h
        out[i] = (f(up) - f(down)) / (2 * h)
    return out


def extreme_customers() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CDNOW plus customers at the edges: huge frequency, recency == T, T == 0, recency == 0."""
    s = calibration_summary()
    x = np.concatenate([s.frequency, [0, 0, 500, 500, 1, 2000, 3]])
    t_x = np.concatenate([s.recency, [0, 0, 38.0, 1.0, 38.86, 52.0, 1e-3]])
    age = np.concatenate([s.T, [0.0, 300.0, 38.0, 38.86, 38.86, 52.0, 80.0]])
    return x, t_x, age


POINTS = [
    np.array([0.243, 4.414, 0.793, 2.426]),
    np.array([1.7, 0.3, 3.0, 0.4]),
    np.array([0.05, 60.0, 0.2, 9.0]),
]


@pytest.mark.parametrize("params", POINTS)
def test_bg_nbd_gradient(params: np.ndarray) -> None:
    x, t_x, age = extreme_customers()
    model = BetaGeoModel()
    value, gradient = model.log_likelihood(params, x, t_x, age)
    assert np.isfinite(value)
    numeric = finite_differences(lambda p: model.log_likelihood(p, x, t_x, age)[0], params)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-3)


PARETO_POINTS = [
    np.array([0.553, 10.578, 0.606, 11.669]),  # alpha < beta
    np.array([0.553, 30.0, 0.606, 3.0]),  # alpha > beta
    np.array([2.0, 5.0, 1.5, 5.0]),  # alpha == beta: the two branches meet
    np.array([0.2, 0.5, 3.0, 40.0]),  # z close to 1
]


@pytest.mark.parametrize("params", PARETO_POINTS)
def test_pareto_nbd_gradient(params: np.ndarray) -> None:
    x, t_x, age = extreme_customers()
    model = ParetoNBDModel()
    value, gradient = model.log_likelihood(params, x, t_x, age)
    assert np.isfinite(value)
    numeric = finite_differences(lambda p: model.log_likelihood(p, x, t_x, age)[0], params)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-3)


def test_pareto_nbd_likelihood_is_continuous_where_the_branches_meet() -> None:
    x, t_x, age = extreme_customers()
    model = ParetoNBDModel()
    below = model.log_likelihood([0.6, 10.0 - 1e-9, 0.7, 10.0], x, t_x, age)
    above = model.log_likelihood([0.6, 10.0 + 1e-9, 0.7, 10.0], x, t_x, age)
    assert below[0] == pytest.approx(above[0], rel=1e-10)
    np.testing.assert_allclose(below[1], above[1], rtol=1e-6)


@pytest.mark.parametrize("params", [np.array([6.25, 3.74, 15.44]), np.array([0.8, 12.0, 300.0])])
def test_gamma_gamma_gradient(params: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    x, _ = simulate_pareto_nbd(0.5, 10.0, 0.6, 12.0, np.full(3000, 52.0), rng)
    spend = simulate_gamma_gamma(6.0, 4.0, 15.0, x, rng)
    model = GammaGammaModel()
    _, gradient = model.log_likelihood(params, x, spend)
    numeric = finite_differences(lambda p: model.log_likelihood(p, x, spend)[0], params)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-3)


def test_pareto_nbd_fits_data_without_visible_churn() -> None:
    """Every repeat buyer's last purchase mid-window and nothing to tell customers' drop-out rates
    apart: the likelihood rises along a ridge towards a homogeneous drop-out rate (s and beta growing
    together, s / beta fixed). The series would need hundreds of thousands of terms there (the
    quadrature takes over) and the fit stops at the documented shape bound, saying so."""
    x = np.concatenate([np.arange(1, 11, dtype=float), np.zeros(500)])
    T = np.full(x.size, 52.0)
    t_x = np.where(x > 0, 26.0, 0.0)
    m = ParetoNBDModel().fit(x, t_x, T)
    assert m.at_bounds_ == ("s",)
    assert m.params_["s"] == pytest.approx(MAX_SHAPE)
    assert m.params_["s"] / m.params_["beta"] == pytest.approx(0.0366, rel=0.01)
    value, gradient = m.log_likelihood(list(m.params_.values()), x, t_x, T)
    assert value == pytest.approx(m.log_likelihood_)
    # the other parameters are at a stationary point
    p = np.array(list(m.params_.values()))
    assert np.all(np.abs((gradient * p)[[0, 1, 3]]) < 1e-3)
    # and further along the ridge the likelihood gains almost nothing
    further, _ = m.log_likelihood(p * np.array([1, 1, 10, 10]), x, t_x, T)
    assert 0 <= further - value < 1e-3


@pytest.mark.parametrize(
    "params", [[0.55, 10.6, 0.6, 11.7], [0.55, 30, 0.6, 3], [2.0, 1.0, 0.3, 500.0], [9.0, 1.0, 0.3, 1e6]]
)
def test_pareto_nbd_series_and_quadrature_agree(params: list[float]) -> None:
    from patron.analytics.models.pareto_nbd import _log_j_quadrature, _log_j_series

    x = np.array([0.0, 1, 2, 5, 7, 30, 100])
    t = np.array([0.0, 0.5, 3, 10, 38, 1, 50])
    v1, g1 = _log_j_series(*params, x, t)
    v2, g2 = _log_j_quadrature(*params, x, t)
    np.testing.assert_allclose(v2, v1, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(g2, g1, rtol=1e-12, atol=1e-12)


def test_a_fit_stopped_on_a_ridge_is_followed_to_the_shape_bound_only_when_no_worse() -> None:
    """Where the optimiser stops short of the bound (its tolerances, and so the point, depend on
    rounding), the pair moves to the bound with its ratio kept — but only if the likelihood there is no
    lower, and only from within RIDGE_REACH of it."""
    from patron.analytics.models._base import RIDGE_REACH

    model = ParetoNBDModel()
    upper = np.array([MAX_SHAPE, np.inf, MAX_SHAPE, np.inf])
    stopped = np.array([0.5, 2.0, MAX_SHAPE / 2, MAX_SHAPE * 10])

    def rising(p: np.ndarray) -> tuple[float, np.ndarray]:  # grows along the (s, beta) ridge
        return -1.0 / p[2], np.zeros(4)

    params, value = model._follow_ridges(rising, stopped, rising(stopped)[0], upper)
    assert params[2] == MAX_SHAPE
    assert params[3] == pytest.approx(MAX_SHAPE * 20)
    assert params[2] / params[3] == pytest.approx(stopped[2] / stopped[3])
    assert value == rising(params)[0]
    assert list(params[:2]) == [0.5, 2.0]

    def falling(p: np.ndarray) -> tuple[float, np.ndarray]:
        return 1.0 / p[2], np.zeros(4)

    kept, _ = model._follow_ridges(falling, stopped, falling(stopped)[0], upper)
    assert list(kept) == list(stopped)
    far = stopped.copy()
    far[2] = MAX_SHAPE / (RIDGE_REACH * 2)
    untouched, _ = model._follow_ridges(rising, far, rising(far)[0], upper)
    assert list(untouched) == list(far)
