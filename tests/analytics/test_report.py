"""The HTML report and the plain-language summary (en, vi, hu, th)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from patron.analytics.narrative import summarise
from patron.analytics.report import render
from tests.analytics.support import analyse, write_csv

# a lapses in January 2023, b stays: annual churn 1 / 2 = 50 % (above the 7 % threshold)
CHURNING = [("a", "2022-01-10", "100", "1"), ("b", "2022-01-20", "100", "2"), ("b", "2022-12-01", "100", "3")]


def test_summary_flags_annual_churn_above_seven_percent(tmp_path: Path) -> None:
    a = analyse(write_csv(tmp_path / "t.csv", CHURNING), as_of=date(2023, 6, 30))
    sentences = summarise(a, "en")
    flagged = [s.text for s in sentences if s.attention]
    assert (
        "Annual churn is 50 %, above the 7 % threshold: review customer satisfaction and what makes "
        "customers leave." in flagged
    )


def test_summary_within_threshold_is_not_flagged(tmp_path: Path) -> None:
    rows = [("a", "2022-01-10", "100", "1"), ("a", "2022-12-10", "100", "2")]
    a = analyse(write_csv(tmp_path / "t.csv", rows), as_of=date(2023, 6, 30))
    texts = {s.text: s.attention for s in summarise(a, "en")}
    assert texts["Annual churn is 0 %, within the 7 % threshold."] is False


@pytest.mark.parametrize(
    ("language", "fragment"),
    [("vi", "7 %"), ("hu", "7 %"), ("th", "7 %")],
)
def test_summary_is_translated(tmp_path: Path, language: str, fragment: str) -> None:
    a = analyse(write_csv(tmp_path / "t.csv", CHURNING), as_of=date(2023, 6, 30))
    english = [s.text for s in summarise(a, "en")]
    translated = [s.text for s in summarise(a, language)]
    assert len(translated) == len(english)
    assert all(t != e for t, e in zip(translated[1:], english[1:], strict=True))
    churn = next(s.text for s in summarise(a, language) if s.attention)
    assert fragment in churn
    assert "50" in churn


def test_report_is_one_offline_file(tmp_path: Path) -> None:
    a = analyse(write_csv(tmp_path / "t.csv", CHURNING), as_of=date(2023, 6, 30))
    page = render(replace(a, options=replace(a.options, language="hu")))
    assert page.startswith("<!DOCTYPE html>")
    assert 'lang="hu"' in page
    assert not re.search(r"<(script|link)[^>]+(src|href)=", page)  # nothing fetched from anywhere
    assert 'Plotly.newPlot("kpi-trends"' in page
    assert 'Plotly.newPlot("cohorts"' in page
    assert 'Plotly.newPlot("rfm"' in page
    assert 'class="attention"' in page
    assert "NaN" not in page.split('<script type="text/javascript">')[0]
