"""Structural properties: compression by distinct values changes nothing, time units only rescale."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.analytics.models import BetaGeoModel, GammaGammaModel, ParetoNBDModel
from patron.analytics.models._special import group
from tests.analytics.models.cdnow import calibration_summary


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4)), min_size=1, max_size=60),
)
def test_group_matches_numpy_unique(rows: list[tuple[int, int]]) -> None:
    a = np.array([r[0] for r in rows], dtype=float)
    b = np.array([r[1] for r in rows], dtype=float)
    grouped = group(a, b)
    values, index, counts = np.unique(
        np.column_stack([a, b]), axis=0, return_inverse=True, return_counts=True
    )
    assert np.array_equal(grouped.values, values)
    assert np.array_equal(grouped.index, index.reshape(-1))
    assert np.array_equal(grouped.counts, counts)
    assert np.array_equal(grouped.values[grouped.index], np.column_stack([a, b]))


@pytest.mark.parametrize(
    ("model", "params"),
    [(BetaGeoModel(), [0.3, 5.0, 0.9, 2.0]), (ParetoNBDModel(), [0.6, 9.0, 0.7, 13.0])],
)
def test_the_total_is_the_sum_of_single_customer_likelihoods(
    model: BetaGeoModel | ParetoNBDModel, params: list[float]
) -> None:
    """Terms shared by customers with the same frequency (or the same (x, T) pair) are computed once
    and weighted: the total must equal customer-by-customer evaluation."""
    s = calibration_summary()
    rows = np.random.default_rng(4).choice(s.frequency.size, 150, replace=False)
    x, t_x, age = s.frequency[rows], s.recency[rows], s.T[rows]
    total, gradient = model.log_likelihood(params, x, t_x, age)
    singles = [
        model.log_likelihood(params, x[i : i + 1], t_x[i : i + 1], age[i : i + 1]) for i in range(rows.size)
    ]
    assert total == pytest.approx(sum(v for v, _ in singles), rel=1e-12)
    np.testing.assert_allclose(gradient, np.sum([g for _, g in singles], axis=0), rtol=1e-10)


@pytest.mark.parametrize("model_class", [BetaGeoModel, ParetoNBDModel])
def test_days_and_weeks_give_the_same_model(model_class: type[BetaGeoModel | ParetoNBDModel]) -> None:
    """Only the time scales (alpha, beta) change with the unit, and the log-likelihood by the Jacobian
    of the purchase-time densities: -sum(x) ln 7."""
    s = calibration_summary()
    weeks = model_class().fit(s.frequency, s.recency, s.T)
    days = model_class().fit(s.frequency, s.recency * 7, s.T * 7)
    for name in weeks.param_names:
        factor = 7.0 if name in ("alpha", "beta") else 1.0
        assert days.params_[name] == pytest.approx(weeks.params_[name] * factor, rel=1e-5), name
    assert days.log_likelihood_ == pytest.approx(
        weeks.log_likelihood_ - s.frequency.sum() * np.log(7), abs=1e-4
    )
    np.testing.assert_allclose(
        days.conditional_probability_alive(s.frequency, s.recency * 7, s.T * 7),
        weeks.conditional_probability_alive(s.frequency, s.recency, s.T),
        rtol=1e-5,
    )


def test_gamma_gamma_scales_with_the_currency() -> None:
    s = calibration_summary()
    dollars = GammaGammaModel().fit(s.frequency, s.monetary)
    cents = GammaGammaModel().fit(s.frequency, s.monetary * 100)
    assert cents.params_["p"] == pytest.approx(dollars.params_["p"], rel=1e-5)
    assert cents.params_["q"] == pytest.approx(dollars.params_["q"], rel=1e-5)
    assert cents.params_["v"] == pytest.approx(dollars.params_["v"] * 100, rel=1e-5)
    spend = cents.conditional_expected_average_profit(s.frequency, s.monetary * 100)
    np.testing.assert_allclose(
        spend, dollars.conditional_expected_average_profit(s.frequency, s.monetary) * 100, rtol=1e-5
    )
