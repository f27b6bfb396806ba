"""Side-by-side benchmark: ``patron analyze`` vs lifetimes 0.11.3 vs PyMC-Marketing 0.19.2 (MAP),
each doing summary -> BG/NBD -> Gamma-Gamma -> CLV (with per-customer scores) on the same file, in
one run, each as its own process in its own virtualenv.

    bash bench/analytics/setup_references.sh            # once: the two reference virtualenvs
    .venv/bin/python bench/analytics/compare.py --rows 100000 1000000
    .venv/bin/python bench/analytics/compare.py --rows 10000000 --pymc-runs 1

Tools: ``patron`` (the models job above), ``patron-full`` (the whole analysis: every section with
``--order-col order_id --product-col product``, three models, scores, report and JSON), ``lifetimes``,
``pymc``. The last lines printed check the issue's aims against lifetimes' time in the same run.

Per tool: wall time of the child process, its peak RSS (``/usr/bin/time -v``), its own per-step
times, and its estimates. The estimates are then checked against each other: every parameter set is
evaluated under Patron's exact likelihoods on a per-customer summary computed here with DuckDB (so a
tool that stopped early shows a lower log-likelihood), and the per-customer P(alive), expected
purchases and CLV are compared customer by customer. Results go to
``bench/results/analytics-<rows>.json``; a Markdown table is printed for bench/RESULTS.md.
Input files are generated once per size (bench/.work/tx-<rows>.<format>, seeded) and kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from patron.analytics.models import BetaGeoModel, GammaGammaModel

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "bench" / ".work"
RESULTS = ROOT / "bench" / "results"
HERE = Path(__file__).resolve().parent
PATRON = ROOT / ".venv" / "bin" / "patron"
PYTHONS = {
    "lifetimes": WORK / "venv-lifetimes" / "bin" / "python",
    "pymc": WORK / "venv-pymc" / "bin" / "python",
}
TIMEOUT = 4 * 3600


def label(rows: int) -> str:
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if rows % size == 0:
            return f"{rows // size}{suffix}"
    return str(rows)


def ensure_file(rows: int, fmt: str) -> Path:
    path = WORK / f"tx-{label(rows)}.{fmt}"
    if not path.exists():
        subprocess.run(
            [sys.executable, str(HERE / "gen_transactions.py"), "--rows", str(rows), "--out", str(path)],
            check=True,
        )
    return path


def timed(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run under /usr/bin/time -v: wall seconds, peak RSS of the child (MiB), exit code, output tail."""
    started = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *command],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, **(env or {})},
    )
    wall = time.perf_counter() - started
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return {
        "command": " ".join(command),
        "exit_code": proc.returncode,
        "wall_seconds": round(wall, 3),
        "peak_rss_mib": round(int(peak.group(1)) / 1024, 1) if peak else None,
        "output_tail": (proc.stdout + proc.stderr).strip().splitlines()[-12:] if proc.returncode else [],
    }


def run_tool(tool: str, source: Path, out: Path, *, cold: bool = False) -> dict[str, Any]:
    result_json = out / f"{tool}.json"
    scores = out / f"{tool}-scores.parquet"
    if tool == "patron":
        command = [
            str(PATRON), "analyze", str(source), "--sections", "models", "--models", "bg_nbd,gamma_gamma",
            "--scores", str(scores), "--json", str(result_json),
        ]  # fmt: skip
    elif tool == "patron-full":
        command = [
            str(PATRON), "analyze", str(source), "--order-col", "order_id", "--product-col", "product",
            "--scores", str(scores), "--json", str(result_json), "--report", str(out / "patron-full.html"),
        ]  # fmt: skip
    else:
        command = [str(PYTHONS[tool]), str(HERE / f"reference_{tool}.py"), str(source)]
        command += ["--json", str(result_json), "--scores", str(scores)]
    env = None
    if cold:  # a fresh PyTensor compile cache: the first run on a new machine
        env = {"PYTENSOR_FLAGS": f"base_compiledir={WORK / f'pytensor-cold-{time.time_ns()}'}"}
    run = timed(command, env)
    if run["exit_code"] == 0 and result_json.exists():
        run["result"] = json.loads(result_json.read_text())
        run["scores"] = str(scores)
    return run


def summary_of(source: Path) -> pd.DataFrame:
    """Per customer: repeat occasions, recency and T in weeks, mean repeat-occasion spend."""
    reader = "read_parquet" if source.suffix == ".parquet" else "read_csv_auto"
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute("SET memory_limit = '6GB'")
    con.execute(f"SET temp_directory = '{WORK / 'duckdb-tmp'}'")
    return con.execute(
        f"""
        WITH occ AS (
            SELECT customer_id::VARCHAR AS customer_id, date::DATE AS day, SUM(amount::DOUBLE) AS spend
            FROM {reader}('{source}') GROUP BY 1, 2
        ), ranked AS (
            SELECT *, MIN(day) OVER (PARTITION BY customer_id) AS first_day,
                   MAX(day) OVER () AS as_of FROM occ
        )
        SELECT customer_id,
               COUNT(*) - 1 AS frequency,
               (MAX(day) - MIN(first_day)) / 7.0 AS recency,
               (MIN(as_of) - MIN(first_day)) / 7.0 AS "T",
               COALESCE(SUM(spend) FILTER (WHERE day > first_day) / NULLIF(COUNT(*) - 1, 0), 0) AS monetary
        FROM ranked GROUP BY customer_id
        """
    ).df()


def agreement(runs: dict[str, dict[str, Any]], summary: pd.DataFrame) -> dict[str, Any]:
    f = summary["frequency"].to_numpy(float)
    r = summary["recency"].to_numpy(float)
    t = summary["T"].to_numpy(float)
    m = summary["monetary"].to_numpy(float)
    repeat = (f > 0) & (m > 0)
    out: dict[str, Any] = {}
    base_scores = None
    if "patron" in runs and "scores" in runs["patron"]:
        base_scores = pd.read_parquet(runs["patron"]["scores"]).set_index("customer_id")
    for tool, run in runs.items():
        if "result" not in run:
            continue
        models = run["result"]["models"]
        bg = models["bg_nbd"]["params"]
        gg = models["gamma_gamma"]["params"]
        ll_bg, _ = BetaGeoModel().log_likelihood([bg[k] for k in ("r", "alpha", "a", "b")], f, r, t)
        ll_gg, _ = GammaGammaModel().log_likelihood([gg[k] for k in ("p", "q", "v")], f[repeat], m[repeat])
        entry: dict[str, Any] = {
            "bg_nbd_params": bg,
            "gamma_gamma_params": gg,
            "bg_nbd_log_likelihood_exact": round(float(ll_bg), 4),
            "gamma_gamma_log_likelihood_exact": round(float(ll_gg), 4),
        }
        if base_scores is not None and tool != "patron" and "scores" in run:
            other = pd.read_parquet(run["scores"]).set_index("customer_id")
            joined = base_scores.merge(
                other, left_index=True, right_index=True, how="inner", suffixes=("_patron", "_ref")
            )
            entry["customers_matched"] = len(joined)
            for column in ("p_alive", "expected_purchases", "clv"):
                a = joined[f"{column}_patron"].to_numpy(float)
                b = joined[f"{column}_ref"].to_numpy(float)
                scale = np.maximum(np.abs(b), 1e-9)
                entry[f"{column}_max_abs_diff"] = float(np.max(np.abs(a - b)))
                entry[f"{column}_median_rel_diff"] = float(np.median(np.abs(a - b) / scale))
                entry[f"{column}_total_ratio"] = float(a.sum() / b.sum()) if b.sum() else None
        out[tool] = entry
    return out


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--tools", default="patron,patron-full,lifetimes,pymc")
    parser.add_argument("--pymc-runs", type=int, default=2, help="the first includes PyTensor compilation")
    args = parser.parse_args()
    tools = [tool.strip() for tool in args.tools.split(",") if tool.strip()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    for rows in args.rows:
        source = ensure_file(rows, args.format)
        out = WORK / f"compare-{label(rows)}"
        out.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {
            "rows": rows,
            "file": str(source.relative_to(ROOT)),
            "file_mib": round(source.stat().st_size / 2**20, 1),
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine_before": machine(),
            "runs": {},
        }
        for tool in tools:
            repeats = args.pymc_runs if tool == "pymc" else 1
            for attempt in range(repeats):
                name = tool if attempt == repeats - 1 else f"{tool}-cold"
                print(f"[{label(rows)}] {name} ...", flush=True)
                record["runs"][name] = run_tool(tool, source, out, cold=name.endswith("-cold"))
                run = record["runs"][name]
                print(f"    {run['wall_seconds']} s, peak {run['peak_rss_mib']} MiB, exit {run['exit_code']}")
        summary = summary_of(source)
        record["customers"] = len(summary)
        record["agreement"] = agreement(
            {k: v for k, v in record["runs"].items() if "-cold" not in k}, summary
        )
        record["machine_after"] = machine()
        path = RESULTS / f"analytics-{label(rows)}.json"
        path.write_text(json.dumps(record, indent=2, default=str))
        print(f"-> {path.relative_to(ROOT)}")
        print("| rows | customers | tool | wall s | peak MiB | steps |")
        print("| ---: | ---: | --- | ---: | ---: | --- |")
        for name, run in record["runs"].items():
            steps = (run.get("result") or {}).get("steps") or (run.get("result") or {}).get("timings_seconds")
            print(
                f"| {rows:,} | {len(summary):,} | {name} | {run['wall_seconds']} | {run['peak_rss_mib']} | "
                f"{json.dumps(steps) if steps else run['output_tail'][-1:]} |"
            )
        for line in aims(record["runs"]):
            print(line)


def aims(runs: dict[str, dict[str, Any]]) -> list[str]:
    """The issue's aims: the models job in at most 1/6 of lifetimes' time, the whole analysis in at
    most 1/3, both under 1 GiB of peak memory."""
    reference = runs.get("lifetimes")
    if reference is None or reference.get("exit_code") != 0:
        return ["aims: not checked (no lifetimes run in this comparison)"]
    lines = []
    for name, share in (("patron", 6), ("patron-full", 3)):
        run = runs.get(name)
        if run is None or run.get("exit_code") != 0:
            continue
        limit = reference["wall_seconds"] / share
        time_ok = run["wall_seconds"] <= limit
        memory_ok = run["peak_rss_mib"] is not None and run["peak_rss_mib"] < 1024
        lines.append(
            f"aim {name}: {run['wall_seconds']} s vs <= {limit:.1f} s (lifetimes / {share}): "
            f"{'met' if time_ok else 'NOT met'}; peak {run['peak_rss_mib']} MiB vs < 1024: "
            f"{'met' if memory_ok else 'NOT met'}"
        )
    return lines


if __name__ == "__main__":
    main()
