"""Shared by the reference scripts (runs in their own virtualenvs: standard library + pandas only)."""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

WEEK_DAYS = 7.0


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("source", type=Path, help="CSV or Parquet: customer_id, date, amount, ...")
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--scores", type=Path)
    parser.add_argument("--horizon", type=int, default=12, help="CLV horizon in months")
    parser.add_argument("--discount-rate", type=float, default=0.10, help="annual")
    return parser.parse_args()


def read(source: Path) -> pd.DataFrame:
    columns = ["customer_id", "date", "amount"]
    if source.suffix == ".csv":
        frame = pd.read_csv(source, usecols=columns, dtype={"customer_id": str}, parse_dates=["date"])
    else:
        frame = pd.read_parquet(source, columns=columns)
        frame["date"] = pd.to_datetime(frame["date"])
    return frame


def monthly_rate(annual: float) -> float:
    """The monthly rate equivalent to an annual one: (1 + annual)^(1/12) - 1."""
    return float((1.0 + annual) ** (1.0 / 12.0) - 1.0)


class Steps:
    """Wall time per step, written into the result JSON."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        begin = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - begin, 4)

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 4)


def clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    return value


def write(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean(result), indent=2))
