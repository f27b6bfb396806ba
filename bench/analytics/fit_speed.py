"""BG/NBD (and Pareto/NBD, Gamma-Gamma) fit time on per-customer summaries: Patron vs lifetimes 0.11.3.

    .venv/bin/python bench/analytics/fit_speed.py --customers 100000 1000000

Summaries are simulated from BG/NBD (seeded; customers acquired over two years, day precision,
time in weeks), written to bench/.work/summary-<n>.parquet, and each fit runs in its own process;
only the fit is timed (not imports or reading). lifetimes runs twice: with its default BLAS threads and
with OPENBLAS_NUM_THREADS=1 (STACK.md: multi-threaded BLAS slows small operations on 2 cores); Patron
pins BLAS to one thread itself (threadpoolctl). Results: bench/results/analytics-fit-speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "bench" / ".work"
HERE = Path(__file__).resolve().parent
TRUTH = {"r": 0.5, "alpha": 40.0 / 7, "a": 0.8, "b": 2.5}  # alpha in weeks


def make_summary(n: int) -> Path:
    from patron.analytics.models.simulate import simulate_bg_nbd, simulate_gamma_gamma

    path = WORK / f"summary-{n}.parquet"
    if not path.exists():
        rng = np.random.default_rng(n)
        days = rng.integers(1, 730, n).astype(float)
        x, t_x = simulate_bg_nbd(TRUTH["r"], TRUTH["alpha"] * 7, TRUTH["a"], TRUTH["b"], days, rng)
        spend = simulate_gamma_gamma(6.0, 4.0, 15.0, x, rng)
        WORK.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {"frequency": x, "recency": np.floor(t_x) / 7, "T": days / 7, "monetary_value": spend}
        ).to_parquet(path, index=False)
    return path


def patron_worker(path: Path, out: Path) -> None:
    from patron.analytics.models import BetaGeoModel, GammaGammaModel, ParetoNBDModel

    s = pd.read_parquet(path)
    f, r, t, m = (s[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    result: dict[str, Any] = {"tool": "patron", "customers": len(s)}
    for name, fit in (
        ("bg_nbd", lambda: BetaGeoModel().fit(f, r, t)),
        ("pareto_nbd", lambda: ParetoNBDModel().fit(f, r, t)),
        ("gamma_gamma", lambda: GammaGammaModel().fit(f, m)),
    ):
        started = time.perf_counter()
        model = fit()
        result[name] = {
            "fit_seconds": round(time.perf_counter() - started, 4),
            "params": model.params_,
            "log_likelihood": model.log_likelihood_,
            "iterations": model.iterations_,
        }
    out.write_text(json.dumps(result, indent=2))


def child(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    out = Path(command[-1])
    subprocess.run(command, check=True, env={**os.environ, **(env or {})})
    return json.loads(out.read_text())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        patron_worker(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    lifetimes = WORK / "venv-lifetimes" / "bin" / "python"
    records = []
    for n in args.customers:
        path = make_summary(n)
        ours = child([sys.executable, __file__, "--worker", str(path), str(WORK / f"fit-patron-{n}.json")])
        theirs: dict[str, Any] = {}
        for threads, env in (("default", None), ("1", {"OPENBLAS_NUM_THREADS": "1"})):
            theirs[threads] = child(
                [str(lifetimes), str(HERE / "reference_lifetimes.py"), "--summary", str(path), "--json",
                 str(WORK / f"fit-lifetimes-{n}-{threads}.json")],
                env,
            )  # fmt: skip
        record = {
            "customers": n,
            "load_average": os.getloadavg(),
            "patron": ours,
            "lifetimes_blas_default": theirs["default"],
            "lifetimes_blas_1": theirs["1"],
        }
        records.append(record)
        print(
            f"{n:>9,} customers: Patron BG/NBD {ours['bg_nbd']['fit_seconds']:.2f} s "
            f"(Pareto/NBD {ours['pareto_nbd']['fit_seconds']:.2f} s, Gamma-Gamma "
            f"{ours['gamma_gamma']['fit_seconds']:.2f} s); lifetimes BG/NBD "
            f"{theirs['default']['fit_seconds']:.2f} s (BLAS 1 thread: {theirs['1']['fit_seconds']:.2f} s)"
        )
    out = ROOT / "bench" / "results" / "analytics-fit-speed.json"
    out.write_text(
        json.dumps(
            {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": records}, indent=2
        )
    )
    print(f"-> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
