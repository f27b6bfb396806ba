"""A seeded synthetic transaction log (BG/NBD-like buying, gamma spend) for end-to-end tests."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np


def generate(path: Path, *, customers: int = 300, days: int = 540, seed: int = 7) -> Path:
    rng = np.random.default_rng(seed)
    start = date(2023, 1, 1)
    rows: list[tuple[str, str, str, str]] = []
    order = 0
    for i in range(customers):
        first = int(rng.integers(0, days // 2))
        rate = rng.gamma(0.8, 1 / 25)  # purchases per day while alive
        p_drop = rng.beta(1.0, 4.0)
        spend = rng.gamma(4.0, 8.0)
        day = first
        while day < days:
            order += 1
            amount = max(1.0, rng.normal(spend, spend / 4))
            rows.append(
                (f"c{i:04d}", (start + timedelta(days=day)).isoformat(), f"{amount:.2f}", f"o{order}")
            )
            if rng.random() < p_drop:
                break
            day += int(rng.exponential(1 / max(rate, 1e-3))) + 1
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("customer_id", "date", "amount", "order"))
        writer.writerows(rows)
    return path
