"""The models section: BG/NBD, Pareto/NBD and Gamma-Gamma fitted on the per-customer summaries, the
holdout comparison, and the per-customer predictions (P(alive), expected purchases, spend, CLV)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from patron.analytics.contracts import TIME_UNIT_DAYS, AnalyzeOptions
from patron.analytics.models import (
    BetaGeoModel,
    GammaGammaModel,
    NotEnoughData,
    ParetoNBDModel,
    customer_lifetime_value,
)
from patron.analytics.models.errors import InvalidSummary, ModelFitFailed
from patron.analytics.summaries import FloatArray, Summary

DAYS_PER_MONTH = 365.25 / 12
MODEL_NAMES = {"bg_nbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", "gamma_gamma": "Gamma-Gamma"}


@dataclass
class Fitted:
    models: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Predictions:
    model: str
    p_alive: FloatArray
    expected_purchases: FloatArray
    expected_spend: FloatArray | None
    clv: FloatArray | None


def in_units(summary: Summary, options: AnalyzeOptions) -> tuple[FloatArray, FloatArray, FloatArray]:
    unit = float(TIME_UNIT_DAYS[options.time_unit])
    return summary.frequency, summary.recency_days / unit, summary.T_days / unit


def fit(summary: Summary, options: AnalyzeOptions) -> Fitted:
    out = Fitted()
    f, r, t = in_units(summary, options)
    for name in options.models:
        try:
            if name == "bg_nbd":
                out.models[name] = BetaGeoModel().fit(f, r, t)
            elif name == "pareto_nbd":
                out.models[name] = ParetoNBDModel().fit(f, r, t)
            else:
                repeat = (f > 0) & (summary.monetary > 0)
                out.models[name] = GammaGammaModel().fit(f[repeat], summary.monetary[repeat])
        except (NotEnoughData, InvalidSummary, ModelFitFailed) as exc:
            out.problems[name] = f"{MODEL_NAMES[name]}: {exc.detail}"
    return out


def holdout(summary: Summary, fitted: Fitted, options: AnalyzeOptions, holdout_days: int) -> dict[str, Any]:
    f, r, t = in_units(summary, options)
    length = holdout_days / TIME_UNIT_DAYS[options.time_unit]
    predicted: dict[str, float | None] = {}
    by_frequency: dict[str, dict[int, float]] = {}
    actual = summary.holdout if summary.holdout is not None else np.zeros(len(summary))
    for name in ("bg_nbd", "pareto_nbd"):
        model = fitted.models.get(name)
        if model is None:
            predicted[name] = None
            continue
        expected = model.conditional_expected_number_of_purchases_up_to_time(length, f, r, t)
        predicted[name] = float(np.sum(expected))
        by_frequency[name] = _by_frequency(f, expected)
    return {
        "customers": len(summary),
        "actual_repeat_purchases": int(np.sum(actual)),
        "predicted_repeat_purchases": predicted,
        "actual_by_frequency": _by_frequency(f, actual),
        "customers_by_frequency": _by_frequency(f, np.ones(len(summary)), mean=False),
        "predicted_by_frequency": by_frequency,
        "length": length,
    }


def _by_frequency(
    frequency: FloatArray, values: FloatArray, cap: int = 7, *, mean: bool = True
) -> dict[int, float]:
    """Mean (or sum) per customer by calibration frequency (≥ cap pooled), for the fit chart."""
    groups = np.minimum(frequency, cap).astype(np.int64)
    out: dict[int, float] = {}
    for g in np.unique(groups):
        mask = groups == g
        out[int(g)] = float(np.mean(values[mask]) if mean else np.sum(values[mask]))
    return out


def tracking(
    summary: Summary, fitted: Fitted, options: AnalyzeOptions, start_day: int, end_day: int
) -> dict[str, Any] | None:
    """Cumulative repeat purchases per week: the model's expectation for the calibration customers
    (by their first day) against the actual count, for the tracking plot."""
    name = "bg_nbd" if "bg_nbd" in fitted.models else "pareto_nbd" if "pareto_nbd" in fitted.models else None
    if name is None:
        return None
    model = fitted.models[name]
    unit = TIME_UNIT_DAYS[options.time_unit]
    firsts, counts = np.unique(summary.first_day, return_counts=True)
    points = list(range(start_day + 7, end_day + 1, 7)) or [end_day]
    expected: list[float] = []
    for day in points:
        ages = (day - firsts) / unit
        mask = ages > 0
        if not np.any(mask):
            expected.append(0.0)
            continue
        curve = model.expected_number_of_purchases_up_to_time(ages[mask])
        expected.append(float(np.sum(curve * counts[mask])))
    return {"model": name, "days": points, "expected": expected}


def predict(summary: Summary, fitted: Fitted, options: AnalyzeOptions) -> Predictions | None:
    name = "bg_nbd" if "bg_nbd" in fitted.models else "pareto_nbd" if "pareto_nbd" in fitted.models else None
    if name is None:
        return None
    model = fitted.models[name]
    f, r, t = in_units(summary, options)
    unit = TIME_UNIT_DAYS[options.time_unit]
    horizon = options.horizon_months * DAYS_PER_MONTH / unit
    p_alive = model.conditional_probability_alive(f, r, t)
    expected = model.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, t)
    spend: FloatArray | None = None
    clv: FloatArray | None = None
    gamma = fitted.models.get("gamma_gamma")
    if gamma is not None:
        # repeat buyers whose repeat spend nets to zero or less get the population mean (as x = 0)
        spending = summary.monetary > 0
        value = gamma.conditional_expected_average_profit(
            np.where(spending, f, 0.0), np.where(spending, summary.monetary, 0.0)
        )
        # with q ≤ 1 the Gamma-Gamma mean spend of customers without repeats is undefined (NaN):
        # their spend and CLV stay undefined (null), never a made-up number
        known = np.isfinite(value)
        spend = np.where(known, expected * np.where(known, value, 0.0), np.nan)
        clv = customer_lifetime_value(
            model,
            f,
            r,
            t,
            np.where(known, value, 0.0),
            time_unit_days=float(unit),
            horizon_months=options.horizon_months,
            discount_rate_annual=float(options.discount_rate),
        )
        clv = np.where(known, clv, np.nan)
    return Predictions(name, p_alive, expected, spend, clv)
