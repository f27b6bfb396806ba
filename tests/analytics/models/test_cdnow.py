"""The published CDNOW estimates (see tests/data/cdnow/SOURCE.md), reproduced within 1 %."""

from __future__ import annotations

import numpy as np
import pytest

from patron.analytics.models import (
    BetaGeoModel,
    GammaGammaModel,
    ParetoNBDModel,
    customer_lifetime_value,
    holdout_by_frequency,
)
from tests.analytics.models.cdnow import AS_OF, CALIBRATION_END, calibration_summary, published_summary


def close(value: float, published: float, rel: float = 0.01) -> bool:
    return abs(value - published) <= rel * abs(published)


def test_summary_from_the_raw_log_matches_the_published_summary() -> None:
    s = calibration_summary()
    p = published_summary()
    assert s.frequency.size == 2357
    assert np.array_equal(p["ID"], np.arange(1, 2358))
    assert np.array_equal(s.frequency, p["x"])
    np.testing.assert_allclose(s.recency, p["t_x"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(s.T, p["T"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(s.monetary, p["zbar"], atol=0.005 + 1e-9)
    assert int((s.frequency > 0).sum()) == 946


def test_bg_nbd_reproduces_fader_hardie_lee_2005() -> None:
    s = calibration_summary()
    m = BetaGeoModel().fit(s.frequency, s.recency, s.T)
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert close(m.params_[name], value), (name, m.params_[name], value)
    assert close(m.log_likelihood_, -9582.4, rel=1e-4)
    # the total, not an average: it equals the sum the model reports for the same parameters
    total, _ = m.log_likelihood(list(m.params_.values()), s.frequency, s.recency, s.T)
    assert total == pytest.approx(m.log_likelihood_, abs=1e-9)


def test_bg_nbd_worked_example_of_the_paper() -> None:
    """FHL (2005), section 5 / Fader & Hardie's BG/NBD spreadsheet note: a customer with x = 2,
    t_x = 30.43, T = 38.86 weeks is expected to make 1.226 purchases in the next 39 weeks."""
    m = BetaGeoModel()
    m.params_ = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    value = m.conditional_expected_number_of_purchases_up_to_time(39, [2], [30.43], [38.86])
    assert value[0] == pytest.approx(1.226, abs=0.0015)


def test_pareto_nbd_reproduces_the_published_estimates() -> None:
    s = calibration_summary()
    m = ParetoNBDModel().fit(s.frequency, s.recency, s.T)
    published = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    for name, value in published.items():
        assert close(m.params_[name], value), (name, m.params_[name], value)
    assert close(m.log_likelihood_, -9595.0, rel=1e-4)


def test_gamma_gamma_reproduces_the_published_estimates() -> None:
    s = calibration_summary()
    g = GammaGammaModel().fit(s.frequency, s.monetary)
    assert g.n_customers_ == 946  # customers without repeat purchases are left out
    published = {"p": 6.25, "q": 3.74, "v": 15.44}
    for name, value in published.items():
        assert close(g.params_[name], value), (name, g.params_[name], value)
    # the note's population mean spend per transaction, p v / (q - 1) = 35.2
    population = g.conditional_expected_average_profit([0], [0.0])[0]
    assert population == pytest.approx(g.params_["p"] * g.params_["v"] / (g.params_["q"] - 1))
    assert population == pytest.approx(35.2, abs=0.1)


def test_holdout_on_cdnow_weeks_40_to_78() -> None:
    """The issue's holdout: calibration customers, actual repeat occasions after the calibration end,
    predicted = sum of conditional expectations over the holdout length (39 weeks)."""
    s = calibration_summary()
    length = (AS_OF - CALIBRATION_END).days / 7
    assert length == 39.0
    for model in (BetaGeoModel(), ParetoNBDModel()):
        model.fit(s.frequency, s.recency, s.T)
        result = holdout_by_frequency(model, s.frequency, s.recency, s.T, s.holdout, length)
        assert result.customers == 2357
        assert result.actual_repeat_purchases == int(s.holdout.sum()) == 1882
        expected = model.conditional_expected_number_of_purchases_up_to_time(
            length, s.frequency, s.recency, s.T
        )
        assert result.predicted_repeat_purchases == pytest.approx(float(expected.sum()))
        # both models track the holdout within 15 % in total, and the frequency bins are ordered
        assert abs(result.predicted_repeat_purchases / 1882 - 1) < 0.15
        assert [b.frequency for b in result.by_frequency] == list(range(8))
        assert sum(b.customers for b in result.by_frequency) == 2357
        predicted_means = [b.predicted_mean for b in result.by_frequency]
        assert predicted_means == sorted(predicted_means)
        top = s.frequency >= 7
        assert result.by_frequency[-1].actual_mean == pytest.approx(s.holdout[top].mean())
        assert result.by_frequency[-1].predicted_mean == pytest.approx(expected[top].mean())


def test_clv_on_cdnow_is_positive_and_follows_the_purchase_history() -> None:
    s = calibration_summary()
    m = BetaGeoModel().fit(s.frequency, s.recency, s.T)
    g = GammaGammaModel().fit(s.frequency, s.monetary)
    clv = customer_lifetime_value(
        m, s.frequency, s.recency, s.T, s.monetary,
        time_unit_days=7, horizon_months=12, discount_rate_annual=0.10, spend_model=g,
    )  # fmt: skip
    assert clv.shape == (2357,)
    assert np.all(clv > 0)
    # frequent buyers whose last purchase is recent are worth far more than one-off customers
    loyal = (s.frequency >= 7) & (s.T - s.recency < 4)
    one_off = s.frequency == 0
    assert loyal.sum() > 10
    assert clv[loyal].min() > 5 * clv[one_off].max()
