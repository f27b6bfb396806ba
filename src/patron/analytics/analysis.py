"""``analyze``: one call that reads the source, runs the sections and writes the outputs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from patron.analytics.contracts import AnalysisError, AnalyzeOptions
from patron.analytics.runner import Analysis, Progress, file_loader, run


def analyze(
    source: str | None,
    *,
    database: bool = False,
    database_url: str | None = None,
    options: AnalyzeOptions,
    report: Path | None = None,
    json_path: Path | None = None,
    scores: Path | None = None,
    progress: Progress | None = None,
) -> Analysis:
    """Analyse a file (CSV, Parquet, glob) or the live database; write the requested outputs."""
    if database:
        from patron.analytics.database import database_loader
        from patron.core.settings import get_settings

        url = database_url or get_settings().database_url
        loader = database_loader(url)
    elif source is None:
        raise AnalysisError("give a file or --database")
    else:
        fx = None
        if options.columns.currency is not None:
            from patron.analytics.database import fx_rates
            from patron.core.settings import get_settings

            fx = fx_rates(database_url or get_settings().database_url)
        loader = file_loader(source, fx)
    result = run(loader, options, progress=progress, want_scores=scores is not None)
    # the outputs appear only when complete (written next to the target, then renamed)
    if scores is not None:
        from patron.analytics import scores as scores_module

        _step(result, "scores", progress, scores, lambda tmp: scores_module.write(result, tmp))
    if report is not None:
        from patron.analytics import report as report_module

        _step(result, "report", progress, report, lambda tmp: report_module.write(result, tmp))
    if json_path is not None:
        from patron.analytics import results

        _step(result, "json", progress, json_path, lambda tmp: results.write(result, tmp))
    return result


def _step(
    result: Analysis, name: str, progress: Progress | None, path: Path, write: Callable[[Path], object]
) -> None:
    if progress:
        progress(name)
    started = time.perf_counter()
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    result.timings[name] = round(time.perf_counter() - started, 3)
