"""Too little data and malformed summaries fail with stable, named errors and change nothing."""

from __future__ import annotations

import numpy as np
import pytest

from patron.analytics.models import (
    BetaGeoModel,
    GammaGammaModel,
    InvalidSummary,
    ModelNotFitted,
    NotEnoughData,
    ParetoNBDModel,
)
from patron.analytics.models.simulate import simulate_pareto_nbd


def summary_with_repeat_buyers(k: int, others: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.concatenate([np.arange(1, k + 1, dtype=float), np.zeros(others)])
    T = np.full(x.size, 52.0)
    t_x = np.where(x > 0, 26.0, 0.0)
    return x, t_x, T


@pytest.mark.parametrize("model_class", [BetaGeoModel, ParetoNBDModel])
def test_fewer_than_ten_repeat_buyers_is_not_enough(model_class: type[BetaGeoModel | ParetoNBDModel]) -> None:
    model = model_class()
    with pytest.raises(NotEnoughData) as info:
        model.fit(*summary_with_repeat_buyers(9))
    assert info.value.code == "not_enough_data"
    assert info.value.status == 422
    assert info.value.extra == {"model": model.name, "repeat_buyers": 9, "required": 10}
    assert model.params_ == {}  # nothing half-fitted is left behind
    model.fit(*summary_with_repeat_buyers(10))
    assert set(model.params_) == set(model.param_names)
    assert np.isfinite(model.log_likelihood_)


def test_gamma_gamma_counts_only_repeat_buyers() -> None:
    x = np.array([0.0] * 100 + [1.0] * 9)
    spend = np.array([5.0] * 109)
    with pytest.raises(NotEnoughData):
        GammaGammaModel().fit(x, spend)
    with pytest.raises(InvalidSummary):  # a repeat buyer with zero mean spend has no Gamma density
        GammaGammaModel().fit(np.ones(20), np.r_[np.full(19, 5.0), 0.0])


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "field"),
    [
        ([1, 2], [1.0], [2.0, 3.0], None),
        ([1, -1], [1.0, 0.0], [2.0, 3.0], "frequency"),
        ([1, 1.5], [1.0, 1.0], [2.0, 3.0], "frequency"),
        ([1, 1], [1.0, -1.0], [2.0, 3.0], "recency"),
        ([1, 1], [1.0, 4.0], [2.0, 3.0], "recency"),
        ([1, 0], [1.0, 1.0], [2.0, 3.0], "recency"),
        ([1, 1], [1.0, np.nan], [2.0, 3.0], "recency"),
        ([1, 1], [1.0, 1.0], [2.0, np.inf], "T"),
        ([[1, 1]], [[1.0, 1.0]], [[2.0, 3.0]], "frequency"),
    ],
)
def test_malformed_summaries_are_rejected(frequency: list, recency: list, T: list, field: str | None) -> None:
    for model in (BetaGeoModel(), ParetoNBDModel()):
        with pytest.raises(InvalidSummary) as info:
            model.fit(frequency, recency, T)
        assert info.value.code == "invalid_model_input"
        assert info.value.extra.get("field") == field
        assert model.params_ == {}


def test_refitting_replaces_the_estimates() -> None:
    rng = np.random.default_rng(1)
    T = np.full(3000, 52.0)
    x1, t1 = simulate_pareto_nbd(0.5, 10.0, 0.6, 12.0, T, rng)
    x2, t2 = simulate_pareto_nbd(2.0, 10.0, 0.6, 12.0, T, rng)
    m = BetaGeoModel().fit(x1, t1, T)
    first = dict(m.params_)
    m.fit(x2, t2, T)
    assert m.params_ != first
    assert m.n_customers_ == 3000


def test_gamma_gamma_predictions_need_a_fit() -> None:
    with pytest.raises(ModelNotFitted) as info:
        GammaGammaModel().conditional_expected_average_profit([1], [10.0])
    assert info.value.code == "model_not_fitted"
