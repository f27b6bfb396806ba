"""The models section end to end on a seeded synthetic log: fits, holdout, predictions, scores."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from patron.analytics import AnalyzeOptions, Columns, analyze, results
from patron.analytics.models import BetaGeoModel
from patron.analytics.runner import file_loader, run
from patron.analytics.scores import COLUMNS, churn_band
from tests.analytics.support import write_csv
from tests.analytics.synthetic import generate


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("syn") / "log.csv")


def test_models_holdout_and_scores(log: Path, tmp_path: Path) -> None:
    options = AnalyzeOptions(columns=Columns(order="order"), calibration_end=date(2024, 3, 31))
    scores = tmp_path / "scores.parquet"
    out = tmp_path / "r.json"
    a = analyze(str(log), options=options, scores=scores, json_path=out)
    data = json.loads(out.read_text())
    assert set(data["models"]) == {"bg_nbd", "pareto_nbd", "gamma_gamma"}
    assert set(data["models"]["bg_nbd"]["params"]) == {"r", "alpha", "a", "b"}
    assert set(data["models"]["pareto_nbd"]["params"]) == {"r", "alpha", "s", "beta"}
    assert set(data["models"]["gamma_gamma"]["params"]) == {"p", "q", "v"}
    # the reported log-likelihood is the model's total at the reported parameters (calibration data)
    assert a.summary is not None
    h = data["holdout"]
    assert h["customers"] == 300
    # actual = repeat occasions after the calibration end, counted independently from the raw log
    rows = [line.split(",") for line in log.read_text().splitlines()[1:]]
    firsts: dict[str, str] = {}
    for cid, day, _, _ in rows:
        firsts[cid] = min(firsts.get(cid, day), day)
    occasions = {(cid, day) for cid, day, _, _ in rows if day > "2024-03-31" and firsts[cid] <= "2024-03-31"}
    assert h["actual_repeat_purchases"] == len(occasions)
    assert 0 < h["predicted_repeat_purchases"]["bg_nbd"] < 2 * len(occasions)
    bins = h["by_frequency"]
    assert sum(b["customers"] for b in bins) == 300
    assert round(sum(b["actual"] * b["customers"] for b in bins)) == h["actual_repeat_purchases"]
    assert sum(b["bg_nbd"] * b["customers"] for b in bins) == pytest.approx(
        h["predicted_repeat_purchases"]["bg_nbd"]
    )
    assert h["tracking"]["actual"][-1] == h["actual_repeat_purchases"] + sum(
        1 for cid, day in {(c, d) for c, d, _, _ in rows} if firsts[cid] < day <= "2024-03-31"
    )
    p = data["predictions"]
    assert p["model"] == "bg_nbd"
    assert p["customers"] == 300
    assert sum(p["churn_bands"].values()) == 300
    q = p["clv"]["quantiles"]
    assert q["p10"] <= q["p25"] <= q["p50"] <= q["p75"] <= q["p90"]
    table = pq.read_table(scores)
    assert tuple(table.column_names) == COLUMNS
    assert table.num_rows == 300
    risk = np.array(table.column("churn_risk").to_pylist())
    p_alive = np.array(table.column("p_alive").to_pylist())
    assert np.allclose(risk, 1 - p_alive)
    assert table.column("churn_band").to_pylist() == [churn_band(r) for r in risk]
    assert all(v is not None and v >= 0 for v in table.column("clv").to_pylist())
    assert a.tracking is not None
    assert a.tracking["actual"][-1] == sum(
        1 for cid, day in {(c, d) for c, d, _, _ in rows} if day > firsts[cid] and firsts[cid] <= "2024-03-31"
    )


def test_models_params_are_in_the_time_unit(log: Path) -> None:
    weeks = run(file_loader(str(log)), AnalyzeOptions(columns=Columns(order="order"), sections=("models",)))
    days = run(
        file_loader(str(log)),
        AnalyzeOptions(
            columns=Columns(order="order"), sections=("models",), time_unit="day", models=("bg_nbd",)
        ),
    )
    assert weeks.fitted is not None
    assert days.fitted is not None
    bw, bd = weeks.fitted.models["bg_nbd"].params_, days.fitted.models["bg_nbd"].params_
    # alpha scales with the time unit; r, a, b do not
    assert bd["alpha"] == pytest.approx(7 * bw["alpha"], rel=1e-3)
    assert bd["r"] == pytest.approx(bw["r"], rel=1e-3)
    s = weeks.summary
    assert s is not None
    model = BetaGeoModel().fit(s.frequency, s.recency_days / 7, s.T_days / 7)
    assert model.params_["r"] == pytest.approx(bw["r"], rel=1e-6)


def test_too_little_data_for_models_is_a_message(tmp_path: Path) -> None:
    rows = [("a", "2024-01-01", "10", "1"), ("a", "2024-02-01", "10", "2"), ("b", "2024-01-05", "5", "3")]
    path = write_csv(tmp_path / "t.csv", rows)
    a = run(file_loader(str(path)), AnalyzeOptions(columns=Columns(order="order")))
    assert a.fitted is not None
    assert a.fitted.models == {}
    assert set(a.fitted.problems) == {"bg_nbd", "pareto_nbd", "gamma_gamma"}
    assert a.kpis is not None
    assert a.kpis["customers"] == 2
    data = results.to_dict(a)
    assert data["models"] == {}
    assert any("BG/NBD" in m for m in data["messages"])
