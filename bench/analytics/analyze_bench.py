"""Benchmark ``patron analyze`` end to end on a seeded synthetic log.

    python bench/analytics/analyze_bench.py --rows 1000000 [--format parquet|csv] [--full]

Generates the log once (cached under bench/analytics/data/), then runs the real ``patron analyze``
executable under ``/usr/bin/time -v`` and prints wall time, peak memory and the per-step timings.
Without ``--full`` it runs the models-only job (``--sections models --models bg_nbd,gamma_gamma
--scores``); with it, every section, three models, scores and the report.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

DATA = Path(__file__).resolve().parent / "data"
DAYS = 3 * 365


def generate(rows: int, seed: int = 42) -> pa.Table:
    """Exactly ``rows`` rows (whole customers, the last one possibly cut short)."""
    target = rows
    while True:
        table = _generate(target, seed)
        if table.num_rows >= rows:
            return table.slice(0, rows)
        target = int(target * rows / max(table.num_rows, 1) * 1.05) + 10


def _generate(rows: int, seed: int) -> pa.Table:
    """BG/NBD-like buying: gamma purchase rates, beta drop-out, gamma spend; about ``rows`` rows."""
    rng = np.random.default_rng(seed)
    customers = max(10, rows // 6)
    rate = rng.gamma(0.6, 1 / 20, customers)  # purchases per day while alive
    drop = rng.beta(1.0, 3.0, customers)
    first = rng.integers(0, DAYS, customers)
    spend = rng.gamma(3.0, 12.0, customers)
    counts = np.minimum(rng.geometric(np.maximum(drop, 1e-3)), 200)
    scale = rows / counts.sum()
    counts = np.maximum(1, np.round(counts * scale)).astype(np.int64)
    owner = np.repeat(np.arange(customers), counts)
    gaps = rng.exponential(1 / np.maximum(rate[owner], 1e-3)).astype(np.int64) + 1
    starts = np.cumsum(counts) - counts
    gaps[starts] = 0
    cum = np.cumsum(gaps)
    day = first[owner] + cum - np.repeat(cum[starts], counts)
    keep = day < DAYS
    owner, day = owner[keep], day[keep]
    amount = np.round(np.maximum(0.5, rng.normal(spend[owner], spend[owner] / 4)), 2)
    dates = np.datetime64("2022-01-01") + day.astype("timedelta64[D]")
    ids = np.char.add("c", owner.astype(str))
    return pa.table(
        {
            "customer_id": pa.array(ids),
            "date": pa.array(dates.astype("datetime64[D]")),
            "amount": pa.array(amount),
            "order": pa.array(np.arange(owner.size).astype(str)),
        }
    )


def data_file(rows: int, fmt: str) -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"log-{rows}.{fmt}"
    if not path.exists():
        started = time.perf_counter()
        table = generate(rows)
        if fmt == "parquet":
            pq.write_table(table, path)
        else:
            pacsv.write_csv(table, path)
        print(f"generated {table.num_rows} rows in {time.perf_counter() - started:.1f}s: {path}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    path = data_file(args.rows, args.format)
    patron = str(Path(sys.executable).with_name("patron"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cmd = [
            patron,
            "analyze",
            str(path),
            "--order-col",
            "order",
            "--json",
            str(out / "r.json"),
            "--scores",
            str(out / "scores.parquet"),
        ]
        if args.full:
            cmd += ["--report", str(out / "report.html"), "--calibration-end", "2024-06-30"]
        else:
            cmd += ["--sections", "models", "--models", "bg_nbd,gamma_gamma"]
        started = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            print(proc.stderr)
            raise SystemExit(proc.returncode)
        peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        timings = json.loads((out / "r.json").read_text())["timings_seconds"]
    print(f"rows={args.rows} format={args.format} full={args.full}")
    print(f"wall {wall:.1f}s, peak RSS {int(peak.group(1)) / 1024 if peak else float('nan'):.0f} MiB")
    print("steps:", ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))


if __name__ == "__main__":
    main()
