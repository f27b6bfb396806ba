"""Helpers for the analytics tests: write literal transaction logs and analyse them."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from patron.analytics import AnalyzeOptions, Columns
from patron.analytics.runner import Analysis, file_loader, run

HEADER = ("customer_id", "date", "amount", "order")


def write_csv(path: Path, rows: list[tuple[Any, ...]], header: tuple[str, ...] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def analyse(path: Path, *, order: bool = True, **options: Any) -> Analysis:
    columns = options.pop("columns", None) or Columns(order="order" if order else None)
    sections = options.pop("sections", ("kpis", "cohorts", "rfm"))
    return run(file_loader(str(path)), AnalyzeOptions(columns=columns, sections=sections, **options))


def movement_rows(analysis: Analysis) -> list[tuple[str, int, int, int, int, int, int, str]]:
    assert analysis.kpis is not None
    return [
        (m.start.isoformat(), m.S, m.E, m.N, m.lost, m.reactivated, m.orders, str(m.revenue))
        for m in analysis.kpis["by_period"]
    ]
