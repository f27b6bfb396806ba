"""Reference: PyMC-Marketing 0.19.2 (MAP with flat priors = maximum likelihood) doing
summary -> BG/NBD -> Gamma-Gamma -> CLV on a transaction file.

Runs in bench/.work/venv-pymc (bench/analytics/setup_references.sh), called by compare.py:

    bench/.work/venv-pymc/bin/python bench/analytics/reference_pymc.py FILE --json OUT [--scores S]

Same definitions as reference_lifetimes.py (occasions per day, as_of = last date, weeks, CLV over 12
months at 10 % a year via the monthly rate, months of 4.345 weeks in ``time_unit="W"``). PyTensor
compiles the model graphs on first use; the compile cache lives in ~/.pytensor, so the first run on a
machine is slower: compare.py reports a cold and a warm run when asked (``--pymc-runs 2``).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _reference import WEEK_DAYS, Steps, arguments, monthly_rate, read, write  # noqa: E402
from pymc_extras.prior import Prior  # noqa: E402
from pymc_marketing.clv import BetaGeoModel, GammaGammaModel  # noqa: E402
from pymc_marketing.clv.utils import rfm_summary  # noqa: E402

FLAT = {name: Prior("HalfFlat") for name in ("r", "alpha", "a", "b")}


def point(model: BetaGeoModel | GammaGammaModel, names: tuple[str, ...]) -> dict[str, float]:
    posterior = model.idata.posterior
    return {name: float(np.asarray(posterior[name]).ravel()[0]) for name in names}


def main() -> None:
    args = arguments(__doc__ or "")
    steps = Steps()
    with steps.step("read"):
        frame = read(args.source)
    as_of = frame["date"].max()
    with steps.step("summary"):
        summary = rfm_summary(
            frame,
            "customer_id",
            "date",
            monetary_value_col="amount",
            observation_period_end=as_of,
            time_unit="D",
        )
        summary["recency"] = summary["recency"] / WEEK_DAYS
        summary["T"] = summary["T"] / WEEK_DAYS
    del frame
    with steps.step("fit_bg_nbd"):
        bgm = BetaGeoModel(data=summary[["customer_id", "frequency", "recency", "T"]], model_config=FLAT)
        bgm.fit(method="map", progressbar=False)
    with steps.step("fit_gamma_gamma"):
        repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
        ggm = GammaGammaModel(data=repeat[["customer_id", "frequency", "monetary_value"]])
        ggm.fit(method="map", progressbar=False)
    with steps.step("predict"):
        data = summary.copy()
        data["monetary_value"] = data["monetary_value"].where(data["monetary_value"] > 0, 0.0)
        p_alive = np.asarray(bgm.expected_probability_alive(data=data)).ravel()
        horizon_weeks = args.horizon * 365.25 / 12 / WEEK_DAYS
        expected = np.asarray(bgm.expected_purchases(data=data, future_t=horizon_weeks)).ravel()
        spend_data = data.assign(frequency=data["frequency"].where(data["monetary_value"] > 0, 0))
        spend = np.asarray(ggm.expected_customer_spend(data=spend_data)).ravel()
        clv = np.asarray(
            ggm.expected_customer_lifetime_value(
                transaction_model=bgm,
                data=data,
                future_t=args.horizon,
                discount_rate=monthly_rate(args.discount_rate),
                time_unit="W",
            )
        ).ravel()
    if args.scores:
        with steps.step("write_scores"):
            pd.DataFrame(
                {
                    "customer_id": summary["customer_id"].astype(str).to_numpy(),
                    "p_alive": p_alive,
                    "expected_purchases": expected,
                    "spend_per_purchase": spend,
                    "clv": clv,
                }
            ).to_parquet(args.scores, index=False)
    write(
        args.json,
        {
            "tool": "pymc-marketing 0.19.2 (MAP, flat priors)",
            "as_of": str(as_of.date()),
            "customers": len(summary),
            "models": {
                "bg_nbd": {"params": point(bgm, ("r", "alpha", "a", "b"))},
                "gamma_gamma": {"params": point(ggm, ("p", "q", "v"))},
            },
            "clv_total": float(np.sum(clv)),
            "steps": steps.seconds,
            "total_seconds": steps.total(),
        },
    )


if __name__ == "__main__":
    main()
