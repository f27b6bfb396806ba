"""Retention analytics: KPIs, cohorts, RFM, CLV and churn models (``patron analyze``).

``analyze`` and ``Analysis`` load Ibis, DuckDB and SciPy: they are imported on first use, so that
commands which never analyse do not pay for them.
"""

from typing import TYPE_CHECKING, Any

from patron.analytics.contracts import AnalysisError, AnalyzeOptions, Columns, SourceInfo

if TYPE_CHECKING:
    from patron.analytics.analysis import analyze
    from patron.analytics.runner import Analysis

__all__ = ["Analysis", "AnalysisError", "AnalyzeOptions", "Columns", "SourceInfo", "analyze"]


def __getattr__(name: str) -> Any:
    if name == "analyze":
        from patron.analytics.analysis import analyze

        return analyze
    if name == "Analysis":
        from patron.analytics.runner import Analysis

        return Analysis
    raise AttributeError(f"module 'patron.analytics' has no attribute {name!r}")
