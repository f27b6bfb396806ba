"""P(alive) and expected purchases: edge cases, independent formulations, simulation, properties."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import IntegrationWarning, quad
from scipy.special import betaln, expit, gammaln, hyp2f1
from scipy.stats import beta as beta_dist

from patron.analytics.models import BetaGeoModel, ModelNotFitted, ParetoNBDModel
from patron.analytics.models.simulate import simulate_bg_nbd, simulate_pareto_nbd

BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PNBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


def bg() -> BetaGeoModel:
    m = BetaGeoModel()
    m.params_ = dict(BG)
    return m


def pnbd(**params: float) -> ParetoNBDModel:
    m = ParetoNBDModel()
    m.params_ = {**PNBD, **params}
    return m


# -- BG/NBD ---------------------------------------------------------------------------------------


def test_bg_nbd_p_alive_edge_cases() -> None:
    m = bg()
    r, alpha, a, b = BG.values()
    p = m.conditional_probability_alive(
        [0, 0, 5, 5, 100_000, 100_000], [0, 0, 30, 38.86, 38.86, 1.0], [0, 80, 38.86, 38.86, 38.86, 38.86]
    )
    assert p[0] == 1.0
    assert p[1] == 1.0
    assert p[2] == pytest.approx(1 / (1 + a / (b + 4) * ((alpha + 38.86) / (alpha + 30)) ** (r + 5)))
    assert p[3] == pytest.approx(1 / (1 + a / (b + 4)))  # recency == T: only the p-branch remains
    assert p[4] == pytest.approx(1 / (1 + a / (b + 100_000 - 1)))
    assert 0.999 < p[4] < 1
    assert p[5] == 0.0  # huge frequency long ago: certainly gone, and no overflow or NaN
    assert np.all(np.isfinite(p))


def test_bg_nbd_conditional_expectation_matches_the_papers_formula() -> None:
    """Our Euler-transformed expression against FHL (2005) eq. (10) evaluated as printed."""
    m = bg()
    r, alpha, a, b = BG.values()
    x = np.array([0, 1, 2, 7, 20])
    t_x = np.array([0, 5.0, 30.43, 36.0, 38.0])
    age = np.array([38.86, 20.0, 38.86, 38.86, 38.86])
    t = 39.0
    z = t / (alpha + age + t)
    head = (a + b + x - 1) / (a - 1)
    body = 1 - ((alpha + age) / (alpha + age + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    dead = np.where(x > 0, a / np.maximum(b + x - 1, 1e-12) * ((alpha + age) / (alpha + t_x)) ** (r + x), 0)
    expected = head * body / (1 + dead)
    ours = m.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, age)
    np.testing.assert_allclose(ours, expected, rtol=1e-10)
    # per-customer horizons give the same numbers as one scalar horizon
    np.testing.assert_allclose(
        m.conditional_expected_number_of_purchases_up_to_time(np.full(5, t), x, t_x, age), ours, rtol=1e-12
    )


def bg_alive_expectation_by_integration(params: dict[str, float], x: float, age: float, t: float) -> float:
    """E[Y(t) | alive, x, T] from the model's story: given (lambda, p) an active customer makes
    (1 - exp(-lambda p t)) / p purchases in t; lambda | alive ~ Gamma(r + x, alpha + T) integrates
    out in closed form and p | alive ~ Beta(a, b + x) numerically with QUADPACK."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    shape_b = b + x

    def gain(p: float) -> float:
        if p == 0.0:
            return (r + x) * t / (alpha + age)  # the limit as p -> 0
        return float(-np.expm1(-(r + x) * np.log1p(p * t / (alpha + age))) / p)

    log_beta = betaln(a, shape_b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        if a < 1 and shape_b < 1:  # both powers singular: both in QUADPACK's algebraic weight
            integral, _ = quad(gain, 0, 1, weight="alg", wvar=(a - 1, shape_b - 1), epsrel=1e-12, limit=500)
            return float(integral / np.exp(log_beta))
        if a < 1:  # p^(a-1) as the weight; (1-p)^(b+x-1) (a spike near 0 when b+x is large) inside
            upper = min(1.0, 80.0 / max(shape_b - 1, 1e-12))

            def spiked(p: float) -> float:
                return gain(p) * float(np.exp((shape_b - 1) * np.log1p(-p) - log_beta))

            integral, _ = quad(spiked, 0, upper, weight="alg", wvar=(a - 1, 0), epsrel=1e-11, limit=500)
            return float(integral)
        if shape_b < 1:  # (1-p)^(b-1) singular at 1: the weight; p^(a-1) inside

            def lifted(p: float) -> float:
                return gain(p) * float(np.exp((a - 1) * np.log(p) - log_beta)) if p > 0 else 0.0

            integral, _ = quad(lifted, 0, 1, weight="alg", wvar=(0, shape_b - 1), epsrel=1e-11, limit=500)
            return float(integral)
        mean = a / (a + shape_b)  # a bounded density: integrate it where its mass is
        sd = np.sqrt(mean * (1 - mean) / (a + shape_b + 1))
        low, high = max(0.0, mean - 40 * sd), min(1.0, mean + 40 * sd)

        def bump(p: float) -> float:
            return gain(p) * float(np.exp(beta_dist.logpdf(p, a, shape_b)))

        scale = (alpha + age) / t  # the gain changes on this scale of p
        points = [p for p in (mean, scale, 10 * scale) if low < p < high]
        integral, _ = quad(bump, low, high, points=points, epsabs=0, epsrel=1e-12, limit=500)
        return float(integral)


@pytest.mark.parametrize(("x", "t_x"), [(0, 0.0), (2, 30.43), (40, 38.0), (5000, 38.86), (5000, 30.0)])
def test_bg_nbd_conditional_expectation_matches_integration_even_for_huge_frequency(
    x: int, t_x: float
) -> None:
    m = bg()
    age, t = 38.86, 10.0
    value = m.conditional_expected_number_of_purchases_up_to_time(t, [x], [t_x], [age])[0]
    alive = m.conditional_probability_alive([x], [t_x], [age])[0]
    assert np.isfinite(value)
    expected = alive * bg_alive_expectation_by_integration(BG, x, age, t)
    assert value == pytest.approx(expected, rel=1e-7, abs=1e-300)


@pytest.mark.parametrize(
    "params",
    [
        {"r": 0.24, "alpha": 4.4, "a": 1.0, "b": 2.4},  # a = 1: removable singularity of (...)/(a-1)
        {"r": 0.24, "alpha": 4.4, "a": 1.0 + 1e-9, "b": 2.4},
        {"r": 0.3, "alpha": 4.0, "a": 0.2, "b": 0.1},  # a + b < 1: negative c in 2F1
        {"r": 0.3, "alpha": 4.0, "a": 0.7, "b": 0.3},  # a + b = 1: c = 0, a pole of the representation
        {"r": 2.0, "alpha": 0.5, "a": 3.0, "b": 0.5},
        {"r": 2.55, "alpha": 1.24, "a": 955.0, "b": 1e4},  # large a: the transformed 2F1 overflows
    ],
)
def test_bg_nbd_expectations_where_the_closed_form_is_singular(params: dict[str, float]) -> None:
    m = BetaGeoModel()
    m.params_ = params
    unconditional = m.expected_number_of_purchases_up_to_time([10.0, 0.0])
    assert unconditional[0] == pytest.approx(
        bg_alive_expectation_by_integration(params, 0, 0.0, 10.0), rel=1e-8
    )
    assert unconditional[1] == 0.0
    conditional = m.conditional_expected_number_of_purchases_up_to_time(10.0, [3], [12.0], [20.0])[0]
    alive = m.conditional_probability_alive([3], [12.0], [20.0])[0]
    expected = alive * bg_alive_expectation_by_integration(params, 3, 20.0, 10.0)
    assert conditional == pytest.approx(expected, rel=1e-8)


def test_bg_nbd_unconditional_expectation_agrees_with_simulation() -> None:
    rng = np.random.default_rng(11)
    m = bg()
    t = 39.0
    x, _ = simulate_bg_nbd(*BG.values(), np.full(200_000, t), rng)
    predicted = m.expected_number_of_purchases_up_to_time(t)[0]
    assert x.mean() == pytest.approx(predicted, abs=4 * x.std() / np.sqrt(x.size))
    assert m.expected_number_of_purchases_up_to_time([0.0])[0] == 0.0


# -- Pareto/NBD -----------------------------------------------------------------------------------


def reference_p_alive(params: dict[str, float], x: float, t_x: float, age: float) -> tuple[float, float]:
    """P(alive) from the likelihood's integral form, integrated numerically (no hypergeometric), with
    QUADPACK's error estimate carried to P(alive). The integral over u in [t_x, T] is taken in
    v = ln(alpha + u), where the integrand decays at a moderate rate even when alpha is tiny."""
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]
    v0, v1 = np.log(alpha + t_x), np.log(alpha + age)
    shift = (r + x - 1) * v0 + (s + 1) * np.log(beta + t_x)  # the log-integrand is 0 at u = t_x

    def integrand(v: float) -> float:  # (alpha+u)^-(r+x) (beta+u)^-(s+1) du/dv, scaled
        return float(np.exp(-(r + x - 1) * v - (s + 1) * np.log(beta - alpha + np.exp(v)) + shift))

    if age <= t_x:
        return 1.0, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        integral, error = quad(integrand, v0, v1, epsabs=0, epsrel=1e-12, limit=500)
    log_first = -(r + x) * np.log(alpha + age) - s * np.log(beta + age) + shift
    p = float(expit(log_first - np.log(s * integral)))
    return p, float(p * (1 - p) * error / integral)


@pytest.mark.parametrize(
    "params",
    [
        PNBD,
        {**PNBD, "alpha": 40.0, "beta": 3.0},  # alpha > beta
        {**PNBD, "alpha": 5.0, "beta": 5.0},
        {**PNBD, "beta": 200.0},
        {**PNBD, "beta": 1e6},  # z -> 1: integrated instead of summed
        {**PNBD, "alpha": 1e5, "beta": 0.5},
        {"r": 0.01, "alpha": 2.4, "s": 7000.0, "beta": 2e5},  # large s: slow series
    ],
)
@pytest.mark.parametrize(
    ("x", "t_x", "age"),
    [
        (0, 0, 38.86),
        (0, 0, 0.001),
        (2, 30.43, 38.86),
        (50, 10.0, 38.86),
        (500, 38.0, 38.86),
        (3, 38.86, 38.86),
    ],
)
def test_pareto_nbd_p_alive_matches_numerical_integration(
    params: dict[str, float], x: float, t_x: float, age: float
) -> None:
    m = pnbd(**params)
    ours = m.conditional_probability_alive([x], [t_x], [age])[0]
    reference, error = reference_p_alive(params, x, t_x, age)
    assert ours == pytest.approx(reference, rel=1e-8, abs=max(1e-300, 2 * error))


def test_pareto_nbd_p_alive_edge_cases() -> None:
    m = pnbd()
    p = m.conditional_probability_alive(
        [0, 4, 100_000, 100_000], [0, 38.86, 38.86, 1.0], [0, 38.86, 38.86, 38.86]
    )
    assert p[0] == 1.0  # T == 0: nothing observed yet
    assert p[1] == 1.0  # bought at the very end of the window
    assert p[2] == 1.0
    assert p[3] == pytest.approx(0.0, abs=1e-300)  # no overflow, no NaN
    assert np.all(np.isfinite(p))


def test_pareto_nbd_likelihood_matches_the_closed_form_with_scipy() -> None:
    """The series formulation against the note's closed form with scipy's hyp2f1 (alpha < beta)."""
    r, alpha, s, beta = PNBD.values()
    x, t_x, age = np.array([0.0, 2, 10]), np.array([0.0, 30.43, 20.0]), np.array([38.86, 38.86, 38.86])
    m = r + s + x
    f = lambda t: hyp2f1(m, r + x, m + 1, (beta - alpha) / (beta + t)) / (beta + t) ** m  # noqa: E731
    a0 = f(t_x) - f(age)
    ll = (
        gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        + np.log(1 / ((alpha + age) ** (r + x) * (beta + age) ** s) + s / m * a0)
    )  # fmt: skip
    total, _ = ParetoNBDModel().log_likelihood(list(PNBD.values()), x, t_x, age)
    assert total == pytest.approx(float(ll.sum()), rel=1e-12)


def test_pareto_nbd_expectations_agree_with_simulation() -> None:
    rng = np.random.default_rng(5)
    m = pnbd()
    t = 52.0
    x, _ = simulate_pareto_nbd(*PNBD.values(), np.full(200_000, t), rng)
    predicted = m.expected_number_of_purchases_up_to_time(t)[0]
    assert x.mean() == pytest.approx(predicted, abs=4 * x.std() / np.sqrt(x.size))


def test_pareto_nbd_conditional_expectation_with_s_equal_to_one() -> None:
    near = pnbd(s=1.0 + 1e-9).conditional_expected_number_of_purchases_up_to_time(39, [2], [30.0], [38.86])
    exact = pnbd(s=1.0).conditional_expected_number_of_purchases_up_to_time(39, [2], [30.0], [38.86])
    assert exact[0] == pytest.approx(near[0], rel=1e-6)


# -- both -----------------------------------------------------------------------------------------

customers = st.tuples(
    st.integers(min_value=0, max_value=300),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.01, max_value=500.0),
)


@settings(max_examples=150, deadline=None)
@given(
    customer=customers,
    later=st.floats(min_value=0.01, max_value=200.0),
    t=st.floats(min_value=0.1, max_value=100.0),
)
def test_p_alive_and_expectations_behave(customer: tuple[int, float, float], later: float, t: float) -> None:
    x, share, age = customer
    t_x = 0.0 if x == 0 else share * age
    for model in (bg(), pnbd()):
        p = model.conditional_probability_alive([x, x], [t_x, t_x], [age, age + later])
        assert np.all((p >= 0) & (p <= 1))
        assert p[1] <= p[0] + 1e-12  # waiting longer without buying never raises P(alive)
        e = model.conditional_expected_number_of_purchases_up_to_time(t, [x], [t_x], [age])[0]
        e2 = model.conditional_expected_number_of_purchases_up_to_time(2 * t, [x], [t_x], [age])[0]
        assert np.isfinite(e)
        assert 0 <= e <= e2 + 1e-12
        if x > 0:  # a more recent last purchase means more expected purchases
            later_buy = model.conditional_expected_number_of_purchases_up_to_time(t, [x], [age], [age])[0]
            assert later_buy >= e - 1e-9


def test_predictions_need_a_fitted_model() -> None:
    for model in (BetaGeoModel(), ParetoNBDModel()):
        with pytest.raises(ModelNotFitted):
            model.conditional_probability_alive([1], [1.0], [2.0])
        with pytest.raises(ModelNotFitted):
            model.expected_number_of_purchases_up_to_time(3.0)


@pytest.mark.parametrize(
    ("params", "x", "age"),
    [
        (BG, 2.0, 38.86),  # a < 1
        (BG, 50.0, 38.86),
        (BG, 0.0, 38.86),
        ({"r": 2.0, "alpha": 0.5, "a": 3.0, "b": 0.5}, 0.0, 0.0),  # b + x < 1
        ({"r": 0.3, "alpha": 4.0, "a": 0.2, "b": 0.1}, 0.0, 0.0),  # both endpoint powers singular
        ({"r": 2.55, "alpha": 1.24, "a": 955.0, "b": 1e4}, 3.0, 20.0),  # bounded density
    ],
)
def test_bg_nbd_integration_fallback_agrees_with_the_closed_form(
    params: dict[str, float], x: float, age: float
) -> None:
    from patron.analytics.models.bg_nbd import _alive_expectation_by_integration, _alive_expectation_raw

    closed = _alive_expectation_raw(*params.values(), np.array([39.0]), np.array([x]), np.array([age]))[0]
    assert _alive_expectation_by_integration(*params.values(), 39.0, x, age) == pytest.approx(
        closed, rel=1e-9
    )


def test_bg_nbd_expectations_stay_finite_where_scipy_hyp2f1_gives_up() -> None:
    """A few customers buying every day, the rest never again: b ends on its cap, alpha is tiny and
    z = t / (alpha + t) is within 1e-5 of 1, where scipy's 2F1 returns NaN in both forms."""
    x = np.r_[np.full(20, 5000.0), np.zeros(100)]
    t_x = np.r_[np.full(20, 360.0), np.zeros(100)]
    age = np.full(120, 365.0)
    m = BetaGeoModel().fit(x, t_x, age)
    t_x[0] = 365.0  # one of them bought on the last day: alive; the others stopped 5 days ago: gone
    assert m.at_bounds_ == ("b",)
    curve = m.expected_number_of_purchases_up_to_time([0.1, 1.0, 30.0, 365.0])
    assert np.all(np.isfinite(curve))
    assert np.all(np.diff(curve) > 0)
    expected = m.conditional_expected_number_of_purchases_up_to_time(365.0, x, t_x, age)
    assert np.all(np.isfinite(expected))
    assert expected[0] > 1000
    assert expected[1] < 1e-20  # ~14 purchases a day, then none for 5 days
    assert 0 < expected[-1] < 1


log_uniform = st.floats(min_value=-2.0, max_value=2.0).map(lambda v: float(10**v))


@settings(max_examples=80, deadline=None)
@given(
    r=log_uniform,
    alpha=log_uniform,
    s=log_uniform,
    beta=log_uniform,
    x=st.integers(min_value=0, max_value=200),
    share=st.floats(min_value=0.0, max_value=1.0),
    age=st.floats(min_value=0.01, max_value=300.0),
)
def test_pareto_nbd_p_alive_against_integration_for_random_parameters(
    r: float, alpha: float, s: float, beta: float, x: int, share: float, age: float
) -> None:
    """Series or quadrature, whichever the code picks, against scipy's adaptive integration."""
    params = {"r": r, "alpha": alpha, "s": s, "beta": beta}
    t_x = 0.0 if x == 0 else share * age
    ours = pnbd(**params).conditional_probability_alive([x], [t_x], [age])[0]
    reference, error = reference_p_alive(params, x, t_x, age)
    assert ours == pytest.approx(reference, rel=1e-7, abs=max(1e-250, 2 * error))


@settings(max_examples=60, deadline=None)
@given(
    r=log_uniform,
    alpha=log_uniform,
    a=log_uniform,
    b=log_uniform,
    x=st.integers(min_value=0, max_value=200),
    age=st.floats(min_value=0.0, max_value=300.0),
    t=st.floats(min_value=0.01, max_value=300.0),
)
def test_bg_nbd_alive_expectation_against_integration_for_random_parameters(
    r: float, alpha: float, a: float, b: float, x: int, age: float, t: float
) -> None:
    params = {"r": r, "alpha": alpha, "a": a, "b": b}
    m = BetaGeoModel()
    m.params_ = params
    ours = m._alive_expectation(np.array([t]), np.array([float(x)]), np.array([age]))[0]
    # relative 1e-6, or 1e-9 purchases when the expectation is tiny (z -> 0 with a near 1)
    assert ours == pytest.approx(bg_alive_expectation_by_integration(params, x, age, t), rel=1e-6, abs=1e-9)
