"""The results JSON (the issue's contract): every number in the report; rates are fractions; null
where a figure is undefined, never NaN."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from patron.analytics.numbers import finite, money, money_from_float, rate
from patron.analytics.runner import Analysis
from patron.analytics.sources import from_day_number


def to_dict(analysis: Analysis) -> dict[str, Any]:
    cur = analysis.currency
    k = analysis.kpis
    out: dict[str, Any] = {
        "as_of": analysis.as_of.isoformat(),
        "calibration_end": analysis.options.calibration_end.isoformat()
        if analysis.options.calibration_end
        else None,
        "currency": cur,
        "customers": analysis.counts[0],
        "orders": analysis.counts[1],
        "transactions": analysis.counts[2],
        "skipped_rows": analysis.source.skipped,
        "skipped_by_problem": analysis.source.skipped_by_problem,
        "options": {
            "period": analysis.options.period,
            "inactivity_days": analysis.options.inactivity_days,
            "time_unit": analysis.options.time_unit,
            "horizon_months": analysis.options.horizon_months,
            "discount_rate": float(analysis.options.discount_rate),
            "engine": analysis.options.engine,
        },
        "messages": list(analysis.messages),
    }
    if k is not None:
        out["retention_rate"] = rate(k["retention_rate"])
        out["churn_rate"] = rate(k["churn_rate"])
        nvr = k["new_vs_returning"]
        out["kpis"] = {
            "retention_rate": rate(k["retention_rate"]),
            "churn_rate": rate(k["churn_rate"]),
            "annual_net_churn": rate(k["annual_net_churn"]),
            "repeat_purchase_rate": rate(k["repeat_purchase_rate"]),
            "purchase_frequency": rate(k["purchase_frequency"]),
            "purchase_frequency_per_year": rate(k["purchase_frequency_per_year"]),
            "average_order_value": money(k["average_order_value"], cur),
            "revenue": money(k["revenue"], cur),
            "revenue_per_customer_per_year": money(k["revenue_per_customer_per_year"], cur),
            "lifespan_years": rate(k["lifespan_years"]),
            "clv_simple": money(k["clv_simple"], cur),
            "clv_revenue_lifespan": money(k["clv_revenue_lifespan"], cur),
            "referral_rate": rate(k["referral_rate"]),
            "new_vs_returning": {
                "first_orders": nvr["first_orders"],
                "repeat_orders": nvr["repeat_orders"],
                "first_order_value": money(nvr["first_order_value"], cur),
                "repeat_order_value": money(nvr["repeat_order_value"], cur),
                "repeat_to_first_ratio": rate(nvr["repeat_to_first_ratio"]),
                "first_order_revenue": money(nvr["first_order_revenue"], cur),
                "repeat_order_revenue": money(nvr["repeat_order_revenue"], cur),
            },
            "by_market": None
            if k["by_market"] is None
            else {
                market: {
                    "customers": v["customers"],
                    "orders": v["orders"],
                    "revenue": money(v["revenue"], cur),
                    "average_order_value": money(v["average_order_value"], cur),
                }
                for market, v in k["by_market"].items()
            },
            "last_twelve_months": _movement(k["last_twelve_months"], cur, with_money=False),
            "by_period": [_movement(m, cur) for m in k["by_period"]],
        }
    if analysis.cohorts is not None:
        out["cohorts"] = [
            {
                "cohort": c.label,
                "start": c.start.isoformat(),
                "size": c.size,
                "retention": [rate(v) for v in c.retention],
                "revenue_retention": [rate(v) for v in c.revenue_retention],
            }
            for c in analysis.cohorts
        ]
    if analysis.rfm is not None:
        out["rfm"] = {
            "segments": {
                name: {
                    "customers": seg["customers"],
                    "share": rate(seg["share"]),
                    "revenue": money(seg["revenue"], cur),
                }
                for name, seg in analysis.rfm["segments"].items()
            },
            "grid": [{"r": r, "f": f, "customers": n} for (r, f), n in sorted(analysis.rfm["grid"].items())],
        }
    if analysis.fitted is not None:
        out["models"] = {
            name: {
                "params": {key: finite(value) for key, value in model.params_.items()},
                "log_likelihood": finite(model.log_likelihood_),
            }
            for name, model in analysis.fitted.models.items()
        }
    if analysis.holdout is not None:
        h = analysis.holdout
        out["holdout"] = {
            "customers": h["customers"],
            "actual_repeat_purchases": h["actual_repeat_purchases"],
            "predicted_repeat_purchases": {
                name: finite(v) for name, v in h["predicted_repeat_purchases"].items()
            },
            "length": finite(h["length"]),
            "by_frequency": [
                {
                    "frequency": freq,
                    "customers": int(h["customers_by_frequency"][freq]),
                    "actual": finite(h["actual_by_frequency"][freq]),
                    **{name: finite(v.get(freq)) for name, v in h["predicted_by_frequency"].items()},
                }
                for freq in sorted(h["actual_by_frequency"])
            ],
        }
        if analysis.tracking is not None:
            tr = analysis.tracking
            out["holdout"]["tracking"] = {
                "model": tr["model"],
                "dates": [from_day_number(d).isoformat() for d in tr["days"]],
                "expected": [finite(v) for v in tr["expected"]],
                "actual": tr.get("actual"),
            }
    if analysis.predictions is not None:
        out["predictions"] = _predictions(analysis.predictions, cur)
    if analysis.recommendations is not None:
        out["recommendations"] = analysis.recommendations
    out["timings_seconds"] = dict(analysis.timings)
    return out


def _predictions(p: Any, cur: str | None) -> dict[str, Any]:
    risk = 1.0 - np.asarray(p.p_alive, dtype=np.float64)
    out: dict[str, Any] = {
        "model": p.model,
        "customers": int(risk.size),
        "p_alive_mean": finite(np.mean(p.p_alive)) if risk.size else None,
        "expected_purchases": finite(np.sum(p.expected_purchases)),
        "churn_bands": {
            "low": int(np.sum(risk < 0.3)),
            "medium": int(np.sum((risk >= 0.3) & (risk < 0.7))),
            "high": int(np.sum(risk >= 0.7)),
        },
        "expected_spend": None,
        "clv": None,
    }
    if p.expected_spend is not None:
        out["expected_spend"] = money_from_float(float(np.sum(p.expected_spend)), cur)
    if p.clv is not None and risk.size:
        clv = np.asarray(p.clv, dtype=np.float64)
        q = np.nanquantile(clv, [0.1, 0.25, 0.5, 0.75, 0.9])
        out["clv"] = {
            "total": money_from_float(float(np.nansum(clv)), cur),
            "mean": money_from_float(float(np.nanmean(clv)), cur),
            "quantiles": {
                key: money_from_float(float(v), cur)
                for key, v in zip(("p10", "p25", "p50", "p75", "p90"), q, strict=True)
            },
        }
    return out


def _movement(m: Any, cur: str | None, *, with_money: bool = True) -> dict[str, Any]:
    row: dict[str, Any] = {
        "period_start": m.start.isoformat(),
        "period_end": m.end.isoformat(),
        "S": m.S,
        "E": m.E,
        "N": m.N,
        "lost": m.lost,
        "reactivated": m.reactivated,
        "retention_rate": rate(m.retention_rate),
        "churn_rate": rate(m.churn_rate),
    }
    if with_money:
        row["orders"] = m.orders
        row["revenue"] = money(m.revenue, cur)
    return row


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return finite(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write(analysis: Analysis, path: Path) -> None:
    path.write_text(dumps(to_dict(analysis)) + "\n", encoding="utf-8")
