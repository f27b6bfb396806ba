"""CLV: the documented discretisation, computed by hand from the model's own expectations."""

from __future__ import annotations

import numpy as np
import pytest

from patron.analytics.models import (
    DAYS_PER_MONTH,
    BetaGeoModel,
    GammaGammaModel,
    InvalidSummary,
    ParetoNBDModel,
    customer_lifetime_value,
)

X = np.array([0.0, 1, 4, 12])
TX = np.array([0.0, 10.0, 30.0, 38.0])
T = np.array([38.86, 38.86, 38.86, 38.86])
SPEND = np.array([35.0, 20.0, 50.0, 30.0])


def models() -> list[BetaGeoModel | ParetoNBDModel]:
    bg = BetaGeoModel()
    bg.params_ = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    pn = ParetoNBDModel()
    pn.params_ = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    return [bg, pn]


@pytest.mark.parametrize("model", models())
def test_clv_is_the_discounted_sum_of_monthly_expected_purchases(
    model: BetaGeoModel | ParetoNBDModel,
) -> None:
    month = DAYS_PER_MONTH / 7  # weeks
    by_hand = np.zeros(4)
    for k in range(1, 13):
        bought = model.conditional_expected_number_of_purchases_up_to_time(
            k * month, X, TX, T
        ) - model.conditional_expected_number_of_purchases_up_to_time((k - 1) * month, X, TX, T)
        by_hand += bought * SPEND / 1.10 ** (k / 12)
    clv = customer_lifetime_value(
        model, X, TX, T, SPEND, time_unit_days=7, horizon_months=12, discount_rate_annual=0.10
    )
    np.testing.assert_allclose(clv, by_hand, rtol=1e-12)


@pytest.mark.parametrize("model", models())
def test_clv_without_discount_is_expected_purchases_times_spend(model: BetaGeoModel | ParetoNBDModel) -> None:
    clv = customer_lifetime_value(
        model, X, TX, T, SPEND, time_unit_days=7, horizon_months=24, discount_rate_annual=0.0
    )
    year2 = model.conditional_expected_number_of_purchases_up_to_time(730.5 / 7, X, TX, T)
    np.testing.assert_allclose(clv, year2 * SPEND, rtol=1e-12)
    discounted = customer_lifetime_value(
        model, X, TX, T, SPEND, time_unit_days=7, horizon_months=24, discount_rate_annual=0.25
    )
    assert np.all(discounted < clv)
    numpy_int = customer_lifetime_value(
        model, X, TX, T, SPEND, time_unit_days=7, horizon_months=np.int64(24), discount_rate_annual=0.0
    )
    np.testing.assert_array_equal(numpy_int, clv)
    zero = customer_lifetime_value(
        model, X, TX, T, SPEND, time_unit_days=7, horizon_months=0, discount_rate_annual=0.1
    )
    assert np.array_equal(zero, np.zeros(4))


def test_clv_in_days_equals_clv_in_weeks() -> None:
    weeks = models()[0]
    days = BetaGeoModel()
    days.params_ = {**weeks.params_, "alpha": weeks.params_["alpha"] * 7}  # alpha is a time scale
    in_weeks = customer_lifetime_value(
        weeks, X, TX, T, SPEND, time_unit_days=7, horizon_months=12, discount_rate_annual=0.1
    )
    in_days = customer_lifetime_value(
        days, X, TX * 7, T * 7, SPEND, time_unit_days=1, horizon_months=12, discount_rate_annual=0.1
    )
    np.testing.assert_allclose(in_days, in_weeks, rtol=1e-10)


def test_clv_with_a_spend_model_uses_the_expected_spend() -> None:
    bg = models()[0]
    gg = GammaGammaModel()
    gg.params_ = {"p": 6.25, "q": 3.74, "v": 15.44}
    expected_spend = gg.conditional_expected_average_profit(X, SPEND)
    assert expected_spend[0] == pytest.approx(6.25 * 15.44 / 2.74)  # x = 0: the population mean
    direct = customer_lifetime_value(
        bg, X, TX, T, expected_spend, time_unit_days=7, horizon_months=12, discount_rate_annual=0.1
    )
    via_model = customer_lifetime_value(
        bg, X, TX, T, SPEND, time_unit_days=7, horizon_months=12, discount_rate_annual=0.1, spend_model=gg
    )
    np.testing.assert_allclose(via_model, direct, rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"time_unit_days": 0.0}, "time_unit_days"),
        ({"horizon_months": -1}, "horizon_months"),
        ({"horizon_months": 1.5}, "horizon_months"),
        ({"horizon_months": True}, "horizon_months"),
        ({"discount_rate_annual": -1.0}, "discount_rate_annual"),
        ({"discount_rate_annual": float("nan")}, "discount_rate_annual"),
    ],
)
def test_clv_rejects_bad_settings(kwargs: dict, field: str) -> None:
    settings = {"time_unit_days": 7.0, "horizon_months": 12, "discount_rate_annual": 0.1, **kwargs}
    with pytest.raises(InvalidSummary) as info:
        customer_lifetime_value(models()[0], X, TX, T, SPEND, **settings)
    assert info.value.extra == {"field": field}
    with pytest.raises(InvalidSummary):
        customer_lifetime_value(
            models()[0], X, TX, T, SPEND[:3], time_unit_days=7, horizon_months=12, discount_rate_annual=0.1
        )


def test_expected_spend_is_the_posterior_mean() -> None:
    gg = GammaGammaModel()
    gg.params_ = {"p": 6.25, "q": 3.74, "v": 15.44}
    value = gg.conditional_expected_average_profit([0, 1, 10], [0.0, 20.0, 20.0])
    expected = [
        6.25 * 15.44 / 2.74,
        6.25 * (15.44 + 20) / (6.25 + 2.74),
        6.25 * (15.44 + 200) / (62.5 + 2.74),
    ]
    np.testing.assert_allclose(value, expected, rtol=1e-14)
    # a weighted average of the population mean and the customer's own mean
    weight = 62.5 / (62.5 + 2.74)
    assert value[2] == pytest.approx((1 - weight) * expected[0] + weight * 20.0)
    # q <= 1: the population mean is infinite; repeat buyers still have a finite expectation
    gg.params_ = {"p": 2.0, "q": 0.8, "v": 15.0}
    heavy = gg.conditional_expected_average_profit([0, 3], [0.0, 20.0])
    assert np.isnan(heavy[0])
    assert heavy[1] == pytest.approx(2.0 * (15.0 + 60.0) / (6.0 - 0.2))


def test_the_worked_example_in_the_docs() -> None:
    """docs/metrics-models.md: CDNOW customer 1 with the published parameters."""
    bg, pn = models()
    gg = GammaGammaModel()
    gg.params_ = {"p": 6.25, "q": 3.74, "v": 15.44}
    x, t_x, age = [2], [30.43], [38.86]
    spend = gg.conditional_expected_average_profit(x, [22.35])
    assert spend[0] == pytest.approx(24.66, abs=0.005)
    assert bg.conditional_probability_alive(x, t_x, age)[0] == pytest.approx(0.727, abs=0.0005)
    year = 365.25 / 7
    assert bg.conditional_expected_number_of_purchases_up_to_time(year, x, t_x, age)[0] == pytest.approx(
        1.563, abs=0.0005
    )
    settings = {"time_unit_days": 7.0, "horizon_months": 12, "discount_rate_annual": 0.10}
    assert customer_lifetime_value(bg, x, t_x, age, spend, **settings)[0] == pytest.approx(36.75, abs=0.005)
    assert pn.conditional_probability_alive(x, t_x, age)[0] == pytest.approx(0.869, abs=0.0005)
    assert customer_lifetime_value(pn, x, t_x, age, spend, **settings)[0] == pytest.approx(43.64, abs=0.005)
