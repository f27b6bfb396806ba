"""``patron export`` through the real executable: files parsed back and compared."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from patron.commerce import ORDER_EXPORT_COLUMNS
from patron.core.audit import AuditEntry
from patron.core.db import Database
from patron.customers import CUSTOMER_EXPORT_COLUMNS, create_segment
from tests.customers.segment_factories import make_customer, make_people

PATRON = str(Path(sys.executable).with_name("patron"))


def run(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATRON_DATABASE_URL": db_url}
    return subprocess.run(
        [PATRON, *args], env=env, capture_output=True, text=True, input="", timeout=120, check=False
    )


def test_export_customers_csv_xlsx_and_segment(db_url: str, database: Database, tmp_path: Path) -> None:
    with database.unit_of_work() as session:
        people = make_people(session)
        segment = create_segment(
            session, name="Thai", rules={"type": "field", "field": "country", "op": "eq", "value": "TH"}
        )
        segment_id = segment.id

    out_csv = tmp_path / "customers.csv"
    result = run(db_url, "export", "customers", "--output", str(out_csv))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out_csv)
    assert "exported 5 customers rows" in result.stderr
    raw = out_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == list(CUSTOMER_EXPORT_COLUMNS)
    assert [(r[0], r[2], r[3]) for r in rows[1:]] == [
        (people.ids["dora"], "Dóra", "Kovács"),
        (people.ids["binh"], "Bình", "Trần"),
        (people.ids["chai"], "Chai", "Srisuk"),
        (people.ids["anh"], "Anh", "Nguyễn"),
        (people.ids["eve"], "Eve", ""),
    ]

    out_xlsx = tmp_path / "thai.xlsx"
    result = run(db_url, "export", "customers", "--segment", segment_id, "--output", str(out_xlsx))
    assert result.returncode == 0, result.stderr
    book = load_workbook(out_xlsx, read_only=True)
    sheet_rows = list(book.active.iter_rows(values_only=True))
    book.close()
    assert list(sheet_rows[0]) == list(CUSTOMER_EXPORT_COLUMNS)
    assert [(r[0], r[2]) for r in sheet_rows[1:]] == [(people.ids["chai"], "Chai")]

    forced = tmp_path / "forced.data"
    assert run(db_url, "export", "customers", "--format", "xlsx", "--output", str(forced)).returncode == 0
    assert forced.read_bytes()[:2] == b"PK"  # a zip: an xlsx workbook

    with database.unit_of_work(write=False) as session:
        kinds = [
            (e.actor, (e.new_values or {}).get("rows"), (e.new_values or {}).get("format"))
            for e in session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "export.run")
                .order_by(AuditEntry.occurred_at, AuditEntry.id)
            )
        ]
    assert sorted(kinds, key=str) == sorted(
        [("system", 5, "csv"), ("system", 1, "xlsx"), ("system", 5, "xlsx")], key=str
    )


def test_export_errors_exit_non_zero_and_write_nothing(
    db_url: str, database: Database, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "x.csv"
    missing = run(
        db_url,
        "export",
        "customers",
        "--segment",
        "00000000-0000-0000-0000-000000000000",
        "--output",
        str(target),
    )
    assert missing.returncode == 1
    assert "segment_not_found" in missing.stderr
    wrong = run(db_url, "export", "orders", "--segment", "abc", "--output", str(target))
    assert wrong.returncode == 1
    assert "--segment applies to customer exports only" in wrong.stderr
    assert list(out_dir.iterdir()) == []
    assert run(db_url, "export", "planets", "--output", str(target)).returncode == 2


def test_export_orders(db_url: str, database: Database, api: TestClient, tmp_path: Path) -> None:
    with database.unit_of_work() as session:
        customer_id = make_customer(session, "Lan").id
    placed = api.post(
        "/api/v1/orders",
        json={
            "customer_id": customer_id,
            "currency": "EUR",
            "placed_at": "2026-03-02T10:00:00+00:00",
            "lines": [{"name": "Tea", "quantity": 2, "unit_price": "12.50"}],
        },
    )
    assert placed.status_code == 201, placed.text
    target = tmp_path / "orders.csv"
    result = run(db_url, "export", "orders", "-o", str(target))
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(target.read_bytes().decode("utf-8-sig"), newline="")))
    assert rows[0] == list(ORDER_EXPORT_COLUMNS)
    record = dict(zip(rows[0], rows[1], strict=True))
    assert (len(rows), record["id"], record["customer_id"], record["total"], record["item_count"]) == (
        2,
        placed.json()["id"],
        customer_id,
        "25.00",
        "2",
    )
