"""The HTML report: one self-contained file that works offline (plotly.min.js from the ``plotly``
package embedded inline), with the summary in the chosen language and every chart a marketer needs.

Built with ``html.escape`` and ``json.dumps`` (no template engine: analytics is a domain package).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from patron.analytics import results
from patron.analytics.narrative import summarise
from patron.analytics.rfm import SEGMENTS
from patron.analytics.runner import Analysis
from patron.analytics.sources import from_day_number
from patron.core.i18n import gettext_for

MAX_POINTS = 3000

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans Thai",sans-serif;margin:2rem;
color:#1f2933;max-width:1100px}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d9e2ec}
ul.summary li{margin:.3rem 0}li.attention{color:#b42318;font-weight:600}
table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #d9e2ec;padding:.25rem .6rem;text-align:right}
th{background:#f0f4f8}td:first-child,th:first-child{text-align:left}.chart{height:420px}
"""


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _chart(div: str, data: list[dict[str, Any]], layout: dict[str, Any]) -> str:
    spec = json.dumps({"data": data, "layout": layout}, allow_nan=False, default=results._default)
    return (
        f'<div id="{div}" class="chart"></div>\n<script>(function(){{var s={spec};'
        f'Plotly.newPlot("{div}",s.data,s.layout,{{displaylogo:false,responsive:true}});}})();</script>'
    )


def heading(text: str, level: int = 2) -> str:
    return f"<h{level}>{html.escape(text)}</h{level}>"


def _finite(values: Any) -> list[float | None]:
    return [float(v) if v is not None and np.isfinite(float(v)) else None for v in values]


def render(analysis: Analysis) -> str:
    language = analysis.options.language
    _ = gettext_for(language)
    data = results.to_dict(analysis)
    parts: list[str] = []
    parts.append(heading(_("Customer retention report"), 1))
    parts.append(heading(_("Summary")) + '<ul class="summary">')
    for sentence in summarise(analysis, language):
        cls = ' class="attention"' if sentence.attention else ""
        parts.append(f"<li{cls}>{html.escape(sentence.text)}</li>")
    for message in analysis.messages:
        parts.append(f"<li>{html.escape(message)}</li>")
    parts.append("</ul>")

    k = data.get("kpis")
    if k is not None:
        parts.append(heading(_("Key figures"), 2) + "<table>")
        labels = [
            ("retention_rate", _("Customer retention rate (12 months)")),
            ("churn_rate", _("Churn rate (12 months)")),
            ("annual_net_churn", _("Annual net churn")),
            ("repeat_purchase_rate", _("Repeat purchase rate")),
            ("purchase_frequency", _("Purchase frequency")),
            ("average_order_value", _("Average order value")),
            ("revenue_per_customer_per_year", _("Revenue per customer per year")),
            ("clv_simple", _("Simple customer lifetime value")),
            ("referral_rate", _("Referral rate")),
        ]
        for key, label in labels:
            value = k.get(key)
            shown = (
                "—"
                if value is None
                else f"{value:,.4g}"
                if "rate" in key or "churn" in key
                else f"{value:,.2f}"
            )
            parts.append(f"<tr><th>{html.escape(label)}</th><td>{html.escape(shown)}</td></tr>")
        parts.append("</table>")
        periods = k["by_period"]
        x = [p["period_start"] for p in periods]
        parts.append(heading(_("KPI trends"), 2))
        parts.append(
            _chart(
                "kpi-trends",
                [
                    {
                        "x": x,
                        "y": [p["E"] for p in periods],
                        "name": _("Active customers"),
                        "type": "scatter",
                    },
                    {"x": x, "y": [p["N"] for p in periods], "name": _("New customers"), "type": "bar"},
                    {"x": x, "y": [p["lost"] for p in periods], "name": _("Lost customers"), "type": "bar"},
                    {
                        "x": x,
                        "y": [p["retention_rate"] for p in periods],
                        "name": _("Retention rate"),
                        "type": "scatter",
                        "yaxis": "y2",
                    },
                ],
                {"barmode": "group", "yaxis2": {"overlaying": "y", "side": "right", "tickformat": ".0%"}},
            )
        )
    if analysis.cohorts:
        parts.append(heading(_("Cohort retention"), 2))
        width = max(len(c["retention"]) for c in data["cohorts"])
        z = [c["retention"] + [None] * (width - len(c["retention"])) for c in data["cohorts"]]
        parts.append(
            _chart(
                "cohorts",
                [
                    {
                        "z": z,
                        "x": list(range(width)),
                        "y": [c["cohort"] for c in data["cohorts"]],
                        "type": "heatmap",
                        "colorscale": "Blues",
                        "zmin": 0,
                        "zmax": 1,
                    }
                ],
                {
                    "xaxis": {"title": {"text": _("Periods since acquisition")}},
                    "yaxis": {"autorange": "reversed"},
                },
            )
        )
    if analysis.rfm is not None:
        segs = data["rfm"]["segments"]
        parts.append(heading(_("RFM segments"), 2))
        parts.append(
            _chart(
                "rfm",
                [
                    {
                        "type": "treemap",
                        "labels": list(SEGMENTS),
                        "parents": [""] * len(SEGMENTS),
                        "values": [segs[s]["customers"] for s in SEGMENTS],
                        "textinfo": "label+value+percent root",
                    }
                ],
                {},
            )
        )
    pred = analysis.predictions
    summary = analysis.summary
    if pred is not None and summary is not None:
        if pred.clv is not None:
            parts.append(heading(_("Customer lifetime value distribution"), 2))
            parts.append(
                _chart(
                    "clv",
                    [{"x": _finite(pred.clv[:200000]), "type": "histogram", "nbinsx": 50}],
                    {"xaxis": {"title": {"text": _("CLV")}}},
                )
            )
        step = max(1, len(summary) // MAX_POINTS)
        parts.append(heading(_("Probability alive by recency"), 2))
        parts.append(
            _chart(
                "p-alive",
                [
                    {
                        "x": _finite((summary.T_days - summary.recency_days)[::step]),
                        "y": _finite(pred.p_alive[::step]),
                        "mode": "markers",
                        "type": "scattergl",
                        "marker": {"size": 4, "opacity": 0.5},
                    }
                ],
                {
                    "xaxis": {"title": {"text": _("Days since the last purchase")}},
                    "yaxis": {"title": {"text": _("P(alive)")}, "range": [0, 1]},
                },
            )
        )
    if analysis.holdout is not None:
        h = analysis.holdout
        actual = h["actual_by_frequency"]
        freqs = sorted(actual)
        traces = [{"x": freqs, "y": [actual[f] for f in freqs], "name": _("Actual"), "type": "bar"}]
        for name, values in h["predicted_by_frequency"].items():
            traces.append({"x": freqs, "y": [values.get(f) for f in freqs], "name": name, "type": "bar"})
        parts.append(heading(_("Model fit: holdout purchases by calibration frequency"), 2))
        parts.append(
            _chart(
                "fit",
                traces,
                {
                    "barmode": "group",
                    "xaxis": {"title": {"text": _("Repeat purchases in calibration (7 = 7+)")}},
                },
            )
        )
    if analysis.tracking is not None and analysis.summary is not None:
        tr = analysis.tracking
        parts.append(heading(_("Cumulative repeat purchases: model against actual"), 2))
        x = [from_day_number(d).isoformat() for d in tr["days"]]
        traces = [{"x": x, "y": tr["expected"], "name": tr["model"], "type": "scatter"}]
        if "actual" in tr:
            traces.append({"x": x, "y": tr["actual"], "name": _("Actual"), "type": "scatter"})
        parts.append(_chart("tracking", traces, {}))
    body = "\n".join(parts)
    title = html.escape(_("Customer retention report"))
    return (
        f'<!DOCTYPE html>\n<html lang="{html.escape(language)}"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{STYLE}</style>"
        f'<script type="text/javascript">{_plotly_js()}</script></head><body>\n{body}\n</body></html>\n'
    )


def write(analysis: Analysis, path: Path) -> None:
    path.write_text(render(analysis), encoding="utf-8")
