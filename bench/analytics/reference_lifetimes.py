"""Reference: lifetimes 0.11.3 doing summary -> BG/NBD -> Gamma-Gamma -> CLV on a transaction file.

Runs in bench/.work/venv-lifetimes (bench/analytics/setup_references.sh), called by compare.py:

    bench/.work/venv-lifetimes/bin/python bench/analytics/reference_lifetimes.py FILE --json OUT [--scores S]

Same definitions as ``patron analyze --sections models --models bg_nbd,gamma_gamma``: purchase
occasions per customer and day, as_of = the last date in the file, time in weeks (days / 7), BG/NBD
without penalty, Gamma-Gamma on the repeat buyers with a positive mean repeat spend, CLV over 12
months at 10 % a year (lifetimes takes a monthly rate; months of 4.345 weeks in its ``freq="W"``).
``--summary FILE.parquet`` (frequency, recency, T in weeks) times the BG/NBD fit alone.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
from _reference import WEEK_DAYS, Steps, arguments, monthly_rate, read, write
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data


def fit_only(path: Path, out: Path) -> None:
    summary = pd.read_parquet(path)
    started = time.perf_counter()
    bgf = BetaGeoFitter(penalizer_coef=0.0).fit(summary["frequency"], summary["recency"], summary["T"])
    seconds = time.perf_counter() - started
    write(
        out,
        {
            "tool": "lifetimes 0.11.3",
            "customers": len(summary),
            "fit_seconds": round(seconds, 4),
            "params": {k: float(v) for k, v in bgf.params_.items()},
        },
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--summary":
        fit_only(Path(sys.argv[2]), Path(sys.argv[4]))
        return
    args = arguments(__doc__ or "")
    steps = Steps()
    with steps.step("read"):
        frame = read(args.source)
    as_of = frame["date"].max()
    with steps.step("summary"):
        summary = summary_data_from_transaction_data(
            frame, "customer_id", "date", monetary_value_col="amount", observation_period_end=as_of, freq="D"
        )
        summary["recency"] /= WEEK_DAYS
        summary["T"] /= WEEK_DAYS
    del frame
    f, r, t, m = summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"]
    with steps.step("fit_bg_nbd"):
        bgf = BetaGeoFitter(penalizer_coef=0.0).fit(f, r, t)
    with steps.step("fit_gamma_gamma"):
        repeat = (f > 0) & (m > 0)
        ggf = GammaGammaFitter(penalizer_coef=0.0).fit(f[repeat], m[repeat])
    with steps.step("predict"):
        p_alive = bgf.conditional_probability_alive(f, r, t)
        horizon_weeks = args.horizon * 365.25 / 12 / WEEK_DAYS
        expected = bgf.conditional_expected_number_of_purchases_up_to_time(horizon_weeks, f, r, t)
        spend = ggf.conditional_expected_average_profit(f.where(m > 0, 0), m.where(m > 0, 0))
        clv = ggf.customer_lifetime_value(
            bgf,
            f,
            r,
            t,
            m.where(m > 0, 0),
            time=args.horizon,
            discount_rate=monthly_rate(args.discount_rate),
            freq="W",
        )
    if args.scores:
        with steps.step("write_scores"):
            scores = pd.DataFrame(
                {
                    "customer_id": summary.index.astype(str),
                    "frequency": f.to_numpy(),
                    "recency": r.to_numpy(),
                    "T": t.to_numpy(),
                    "p_alive": np.asarray(p_alive),
                    "expected_purchases": np.asarray(expected),
                    "spend_per_purchase": np.asarray(spend),
                    "clv": np.asarray(clv),
                }
            )
            scores.to_parquet(args.scores, index=False)
    write(
        args.json,
        {
            "tool": "lifetimes 0.11.3",
            "as_of": str(as_of.date()),
            "customers": len(summary),
            "models": {
                # lifetimes reports likelihoods of internally rescaled times; compare.py evaluates
                # these parameters under Patron's exact likelihood instead
                "bg_nbd": {"params": {k: float(v) for k, v in bgf.params_.items()}},
                "gamma_gamma": {"params": {k: float(v) for k, v in ggf.params_.items()}},
            },
            "clv_total": float(np.sum(clv)),
            "steps": steps.seconds,
            "total_seconds": steps.total(),
        },
    )


if __name__ == "__main__":
    main()
