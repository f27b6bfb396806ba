"""``patron analyze`` through the real executable: CSV and Parquet, outputs, bad input, --database."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from patron.commerce import ProductInput, create_product, place_order, prepare_order
from patron.core.business import update_business
from patron.core.db import Database
from patron.core.money import Money
from patron.customers import CustomerCreateInput, create_customer, erase_customer, record_interaction
from tests.analytics.support import write_csv
from tests.analytics.synthetic import generate

PATRON = str(Path(sys.executable).with_name("patron"))

ROWS = [
    ("a", "2024-01-05", "10.00", "o1"),
    ("a", "2024-01-05", "5.00", "o2"),
    ("a", "2024-03-10", "20.00", "o3"),
    ("b", "2024-02-01", "7.50", "o4"),
    ("b", "2024-02-03", "-2.50", "o4"),
    ("c", "2024-03-31T23:30:00-05:00", "3", "o5"),
]


def run(*args: str, db_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if db_url:
        env["PATRON_DATABASE_URL"] = db_url
    return subprocess.run(
        [PATRON, "analyze", *args],
        env=env,
        capture_output=True,
        text=True,
        input="",
        timeout=300,
        check=False,
    )


def test_csv_and_parquet_give_the_same_json(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "log.csv", ROWS)
    parquet_path = tmp_path / "log.parquet"
    pq.write_table(
        pacsv.read_csv(
            csv_path,
            convert_options=pacsv.ConvertOptions(
                strings_can_be_null=False,
                column_types={"amount": pa.string(), "date": pa.string(), "order": pa.string()},
            ),
        ),
        parquet_path,
    )
    outputs = []
    for source in (csv_path, parquet_path):
        out = tmp_path / f"{source.suffix[1:]}.json"
        result = run(
            str(source),
            "--order-col",
            "order",
            "--inactivity-days",
            "30",
            "--sections",
            "kpis,cohorts,rfm",
            "--json",
            str(out),
        )
        assert result.returncode == 0, result.stderr
        assert "customers 3, orders 5" in result.stdout
        data = json.loads(out.read_text())
        data.pop("timings_seconds")
        outputs.append(data)
    assert outputs[0] == outputs[1]
    data = outputs[0]
    assert (data["as_of"], data["customers"], data["orders"], data["transactions"]) == ("2024-04-01", 3, 5, 6)
    assert [p["E"] for p in data["kpis"]["by_period"]] == [1, 1, 1, 2]
    assert data["cohorts"][0] == {
        "cohort": "2024-01",
        "start": "2024-01-01",
        "size": 1,
        "retention": [1.0, 0.0, 1.0, 0.0],
        "revenue_retention": [1.0, 0.0, 1.333333, 0.0],
    }
    assert data["rfm"]["segments"]["Loyal"] == {"customers": 1, "share": 0.333333, "revenue": 35.0}
    assert "NaN" not in out.read_text()


def test_bad_rows_fail_with_row_column_and_problem(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        [
            ("a", "2024-01-01", "1"),
            ("", "2024-01-02", "2"),
            ("z", "31/01/2024", "2"),
            ("q", "2024-01-03", "1,5"),
        ],
        header=("customer_id", "date", "amount"),
    )
    out = tmp_path / "r.json"
    result = run(str(path), "--json", str(out))
    assert result.returncode == 1
    assert "3 bad rows" in result.stderr
    assert "row 2, column 'customer_id': empty: a customer id is required" in result.stderr
    assert "row 3, column 'date': '31/01/2024': not a date" in result.stderr
    assert "row 4, column 'amount': '1,5': not a number" in result.stderr
    assert not out.exists()  # nothing written on failure

    skipped = run(str(path), "--on-bad-rows", "skip", "--sections", "kpis", "--json", str(out))
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped 3 bad rows" in skipped.stderr
    data = json.loads(out.read_text())
    assert (data["transactions"], data["skipped_rows"]) == (1, 3)


def test_missing_column_and_refund_without_order(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv", [("a", "2024-01-01", "-5")], header=("customer_id", "date", "amount")
    )
    result = run(str(path), "--date-col", "when")
    assert result.returncode == 1
    assert (
        "missing column 'when' (the file has: customer_id, date, amount); name it with --date-col"
        in result.stderr
    )
    result = run(str(path))
    assert result.returncode == 1
    assert "a negative amount (a refund) needs --order-col" in result.stderr
    assert run(str(tmp_path / "nope.csv")).returncode == 1
    assert "file not found" in run(str(tmp_path / "nope.csv")).stderr


def test_refund_larger_than_its_order_is_bad(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [("a", "2024-01-01", "5", "o1"), ("a", "2024-01-02", "-6", "o1")])
    result = run(str(path), "--order-col", "order")
    assert result.returncode == 1
    assert "row 2, column 'amount': '-6': a refund that makes its order's total negative" in result.stderr


def test_report_scores_and_models_on_a_glob(tmp_path: Path) -> None:
    generate(tmp_path / "part-1.csv", customers=200, seed=3)
    generate(tmp_path / "part-2.csv", customers=150, seed=4)
    # the two parts share customer ids c0000…c0149: they are the same customers' histories
    report = tmp_path / "report.html"
    scores = tmp_path / "scores.csv"
    result = run(
        str(tmp_path / "part-*.csv"),
        "--order-col",
        "order",
        "--report",
        str(report),
        "--scores",
        str(scores),
        "--calibration-end",
        "2024-03-31",
        "--language",
        "th",
    )
    assert result.returncode == 0, result.stderr
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert 'Plotly.newPlot("cohorts"' in page
    assert 'Plotly.newPlot("tracking"' in page
    assert "<script src=" not in page  # self-contained: plotly.js is inline
    assert 'lang="th"' in page
    lines = scores.read_text().splitlines()
    assert lines[0].startswith('"customer_id","recency_days","frequency","monetary"')
    assert len(lines) == 1 + 200


def test_database_mode_leaves_out_test_staff_and_erased(
    db_url: str, database: Database, tmp_path: Path
) -> None:
    with database.unit_of_work() as session:
        update_business(session, reporting_currency="EUR", time_zone="Asia/Bangkok")
        ids = {}
        for name, extra in (
            ("real", {}),
            ("other", {}),
            ("test", {"is_test": True}),
            ("staff", {"tags": ["staff"]}),
            ("erased", {}),
        ):
            ids[name] = create_customer(
                session,
                CustomerCreateInput(first_name=name, last_name="X", email=f"{name}@example.com", **extra),
            ).id
        placed = [
            ("real", datetime(2026, 1, 10, 9, 0, tzinfo=UTC), "10.00"),
            # 18:30 UTC is 01:30 the next day in Bangkok
            ("real", datetime(2026, 2, 28, 18, 30, tzinfo=UTC), "20.00"),
            ("other", datetime(2026, 2, 1, 9, 0, tzinfo=UTC), "5.00"),
            ("test", datetime(2026, 2, 1, 9, 0, tzinfo=UTC), "100.00"),
            ("staff", datetime(2026, 2, 1, 9, 0, tzinfo=UTC), "100.00"),
            ("erased", datetime(2026, 2, 1, 9, 0, tzinfo=UTC), "100.00"),
        ]
        for name, at, amount in placed:
            place_order(
                session,
                prepare_order(
                    {
                        "customer_id": ids[name],
                        "currency": "EUR",
                        "placed_at": at.isoformat(),
                        "lines": [{"sku": "TEA-1", "name": "Tea", "quantity": 1, "unit_price": amount}],
                    }
                ),
                emit_events=False,
            )
        erase_customer(session, ids["erased"])
        for sku, name in (("TEA-1", "Tea"), ("CUP-1", "Cup")):
            create_product(session, ProductInput(sku=sku, name=name, price=Money(Decimal(5), "EUR")))
        views = [
            ("other", "Cup", datetime(2026, 2, 2, 9, 0, tzinfo=UTC)),
            ("other", "Cup", datetime(2026, 2, 3, 9, 0, tzinfo=UTC)),
            ("other", "Cup", datetime(2026, 2, 3, 10, 0, tzinfo=UTC)),  # same day: counts once
            ("real", "CUP-1", datetime(2026, 2, 2, 9, 0, tzinfo=UTC)),
            ("test", "CUP-1", datetime(2026, 2, 2, 9, 0, tzinfo=UTC)),  # a test customer: left out
            ("real", "Unknown thing", datetime(2026, 2, 2, 9, 0, tzinfo=UTC)),
        ]
        for name, product, at in views:
            record_interaction(
                session,
                ids[name],
                channel="web",
                direction="inbound",
                kind="page_view",
                summary="viewed",
                data={"product": product},
                occurred_at=at,
            )
    out = tmp_path / "db.json"
    scores = tmp_path / "scores.csv"
    result = run(
        "--database",
        "--sections",
        "kpis,rfm,recommendations",
        "--json",
        str(out),
        "--scores",
        str(scores),
        db_url=db_url,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert (data["customers"], data["orders"], data["transactions"], data["currency"]) == (2, 3, 3, "EUR")
    assert data["kpis"]["revenue"] == 35.0
    # the product lines feed the recommendations: real re-buys TEA-1 after 50 days (Bangkok dates)
    assert data["recommendations"]["orders_with_products"] == 3
    assert data["recommendations"]["replenishment"] == [
        {"product": "TEA-1", "customers": 1, "repeat_purchases": 1, "mean_days_between": 50.0}
    ]
    # page views (by name or SKU) are weak signals: other viewed the cup on 2 days, real on 1
    assert data["recommendations"]["page_view_signals"] == 2
    rows = list(csv.DictReader(scores.read_text().splitlines()))
    assert {r["customer_id"]: r["recommended_products"] for r in rows} == {
        ids["real"]: "CUP-1",
        ids["other"]: "CUP-1",
    }
    assert data["as_of"] == "2026-03-01"
    assert Decimal(str(data["kpis"]["average_order_value"])) == Decimal("11.67")
    assert [p["period_start"] for p in data["kpis"]["by_period"]] == [
        "2026-01-01",
        "2026-02-01",
        "2026-03-01",
    ]


def test_bad_options_are_clear_errors(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "log.csv", ROWS)
    cases = [
        (["--as-of", "31/03/2024"], "--as-of must be a date YYYY-MM-DD, not '31/03/2024'"),
        (
            ["--as-of", "2024-03-01", "--calibration-end", "2024-03-01"],
            "--calibration-end must be before --as-of",
        ),
        (["--as-of", "2023-01-01"], "--as-of 2023-01-01 is before the first transaction (2024-01-05)"),
        (["--models", "bg_nbd,arima"], "--models: unknown 'arima'"),
        (["--timezone", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--database"], "give a FILE (CSV, Parquet or a glob) or --database, not both"),
    ]
    for args, message in cases:
        result = run(str(path), "--order-col", "order", *args)
        assert result.returncode == 1, args
        assert message in result.stderr, (args, result.stderr)
