"""Exports through the HTTP API: parse the CSV / Excel back and compare with the data."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from patron.auth import Role
from patron.commerce import ORDER_EXPORT_COLUMNS
from patron.core.audit import AuditEntry
from patron.core.clock import FrozenClock
from patron.core.db import Database
from patron.customers import CUSTOMER_EXPORT_COLUMNS
from patron.customers.models import Customer
from tests.conftest import Tokens
from tests.customers.segment_factories import People, at, make_customer, make_people

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def people(database: Database, frozen_clock: FrozenClock) -> People:
    with database.unit_of_work() as session:
        result = make_people(session)
        make_customer(
            session,
            '=HYPERLINK("http://x")',
            family="@SUM(1)",
            phone="+84912345678",
            country="VN",
            created="2026-03-15T09:30:00+00:00",
            attributes={"mã": "ưu đãi"},
        )
        return result


def parse_csv(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM expected"
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def parse_xlsx(content: bytes) -> list[list[Any]]:
    book = load_workbook(io.BytesIO(content), read_only=True)
    rows = [["" if v is None else v for v in row] for row in book.active.iter_rows(values_only=True)]
    book.close()
    return rows


def test_customers_csv_round_trip(api: TestClient, people: People) -> None:
    response = api.get("/api/v1/exports/customers", params={"format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith('attachment; filename="customers-20260315-')
    rows = parse_csv(response.content)
    assert rows[0] == list(CUSTOMER_EXPORT_COLUMNS)
    by_name = {r[2]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert list(by_name) == ["Dóra", "Bình", "Chai", "Anh", "Eve", '\'=HYPERLINK("http://x")']
    anh = by_name["Anh"]
    assert anh == {
        "id": people.ids["anh"],
        "external_id": "",
        "given_name": "Anh",
        "family_name": "Nguyễn",
        "form_of_address": "",
        "email": "anh@example.com",
        "phone": "",
        "language": "vi",
        "preferred_channel": "zalo",
        "time_zone": "Asia/Ho_Chi_Minh",
        "country": "VN",
        "birthday": "1990-03-02",
        "tags": "vip;wholesale",
        "attributes": "",
        "referral_code": "",
        "organisation_id": people.acme,
        "organisation_role": "buyer",
        "created_at": "2026-03-10T08:00:00+00:00",
        "updated_at": "2026-03-10T08:00:00+00:00",
    }
    assert by_name["Bình"]["family_name"] == "Trần"
    tricky = by_name['\'=HYPERLINK("http://x")']
    assert (tricky["family_name"], tricky["phone"]) == ("'@SUM(1)", "+84912345678")
    assert json.loads(tricky["attributes"]) == {"mã": "ưu đãi"}


def test_customers_xlsx_round_trip(api: TestClient, people: People) -> None:
    response = api.get("/api/v1/exports/customers", params={"format": "xlsx"})
    assert response.status_code == 200
    assert response.headers["content-type"] == XLSX
    rows = parse_xlsx(response.content)
    assert rows[0] == list(CUSTOMER_EXPORT_COLUMNS)
    assert [r[2] for r in rows[1:]] == ["Dóra", "Bình", "Chai", "Anh", "Eve", '=HYPERLINK("http://x")']
    anh = dict(zip(rows[0], rows[4], strict=True))
    assert (anh["id"], anh["family_name"], anh["tags"], anh["birthday"], anh["created_at"]) == (
        people.ids["anh"],
        "Nguyễn",
        "vip;wholesale",
        "1990-03-02",
        "2026-03-10T08:00:00+00:00",
    )
    book = load_workbook(io.BytesIO(response.content))
    formula_cell = book.active.cell(row=7, column=3)
    assert (formula_cell.value, formula_cell.data_type) == ('=HYPERLINK("http://x")', "s")


def test_segment_exports_only_members(api: TestClient, people: People) -> None:
    segment = api.post(
        "/api/v1/segments",
        json={
            "name": "Big spenders",
            "rules": {"type": "trait", "name": "total_spent", "op": "gte", "value": 1000000},
        },
    ).json()
    for url, params in [
        ("/api/v1/exports/customers", {"segment_id": segment["id"]}),
        (f"/api/v1/exports/segments/{segment['id']}", {}),
    ]:
        csv_rows = parse_csv(api.get(url, params={**params, "format": "csv"}).content)
        assert [r[0] for r in csv_rows[1:]] == [people.ids["chai"], people.ids["anh"]]
        xlsx_rows = parse_xlsx(api.get(url, params={**params, "format": "xlsx"}).content)
        assert [r[0] for r in xlsx_rows[1:]] == [people.ids["chai"], people.ids["anh"]]
    missing = api.get("/api/v1/exports/segments/00000000-0000-0000-0000-000000000000")
    assert (missing.status_code, missing.json()["code"]) == (404, "segment_not_found")
    assert api.get("/api/v1/exports/customers", params={"segment_id": "nope"}).status_code == 404
    assert api.get("/api/v1/exports/customers", params={"format": "pdf"}).status_code == 422


def test_exports_are_audited(api: TestClient, database: Database, people: People) -> None:
    api.get("/api/v1/exports/customers", params={"format": "xlsx"})
    api.get("/api/v1/exports/orders")
    me = api.get("/api/v1/users/me").json()["id"]
    with database.unit_of_work(write=False) as session:
        entries = list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "export.run")
                .order_by(AuditEntry.occurred_at, AuditEntry.id)
            )
        )
    assert sorted((e.new_values or {})["kind"] for e in entries) == ["customers", "orders"]
    assert all(e.actor == f"user:{me}" for e in entries)
    customers = next(e for e in entries if (e.new_values or {})["kind"] == "customers")
    assert customers.new_values == {"kind": "customers", "format": "xlsx", "segment_id": None}


def test_large_export_streams_every_row_once(
    api: TestClient, database: Database, frozen_clock: FrozenClock
) -> None:
    with database.unit_of_work() as session:
        session.add_all(
            [
                Customer(
                    given_name=f"Khách {i:04d}",
                    family_name="ไทย",
                    created_at=at("2026-01-01T00:00:00+00:00"),
                    updated_at=at("2026-01-01T00:00:00+00:00"),
                )
                for i in range(1234)
            ]
        )
    with api.stream("GET", "/api/v1/exports/customers") as response:
        assert response.status_code == 200
        chunks = list(response.iter_raw())
    rows = parse_csv(b"".join(chunks))
    assert len(rows) == 1235
    assert sorted(r[2] for r in rows[1:]) == [f"Khách {i:04d}" for i in range(1234)]
    assert {r[3] for r in rows[1:]} == {"ไทย"}
    assert len({r[0] for r in rows[1:]}) == 1234
    xlsx_rows = parse_xlsx(api.get("/api/v1/exports/customers", params={"format": "xlsx"}).content)
    assert len(xlsx_rows) == 1235


def _place_orders(api: TestClient, customer_id: str) -> list[dict[str, Any]]:
    rate = api.post(
        "/api/v1/fx-rates", json={"base": "VND", "quote": "EUR", "valid_on": "2026-01-01", "rate": "0.000036"}
    )
    assert rate.status_code == 201, rate.text
    orders = []
    for body in [
        {
            "customer_id": customer_id,
            "currency": "VND",
            "channel": "store",
            "placed_at": "2026-03-01T03:00:00+07:00",
            "lines": [{"sku": "CF-1", "name": "Cà phê sữa đá", "quantity": 2, "unit_price": "45000"}],
        },
        {
            "customer_id": customer_id,
            "currency": "EUR",
            "placed_at": "2026-03-02T10:00:00+00:00",
            "external_id": "web-2",
            "shipping": "4.90",
            "lines": [
                {"name": "Tea", "quantity": 1, "unit_price": "12.50"},
                {"name": "Cup", "quantity": 3, "unit_price": "3.00"},
            ],
        },
    ]:
        response = api.post("/api/v1/orders", json=body)
        assert response.status_code == 201, response.text
        orders.append(response.json())
    return orders


def test_orders_csv_and_xlsx_round_trip(
    api: TestClient, database: Database, frozen_clock: FrozenClock
) -> None:
    with database.unit_of_work() as session:
        customer_id = make_customer(session, "Lan").id
    orders = _place_orders(api, customer_id)
    csv_rows = parse_csv(api.get("/api/v1/exports/orders", params={"format": "csv"}).content)
    assert csv_rows[0] == list(ORDER_EXPORT_COLUMNS)
    records = [dict(zip(csv_rows[0], r, strict=True)) for r in csv_rows[1:]]
    assert [r["id"] for r in records] == [o["id"] for o in orders]
    first, second = records
    assert (
        first["customer_id"],
        first["channel"],
        first["currency"],
        first["total"],
        first["line_count"],
        first["item_count"],
        first["placed_at"],
    ) == (customer_id, "store", "VND", "90000", "1", "2", "2026-02-28T20:00:00+00:00")
    assert (
        second["external_id"],
        second["currency"],
        second["subtotal"],
        second["shipping"],
        second["total"],
        second["line_count"],
        second["item_count"],
    ) == ("web-2", "EUR", "21.50", "4.90", "26.40", "2", "4")
    xlsx_rows = parse_xlsx(api.get("/api/v1/exports/orders", params={"format": "xlsx"}).content)
    assert xlsx_rows[0] == list(ORDER_EXPORT_COLUMNS)
    xlsx_second = dict(zip(xlsx_rows[0], xlsx_rows[2], strict=True))
    assert Decimal(str(xlsx_second["total"])) == Decimal("26.40")
    assert (xlsx_second["id"], xlsx_second["line_count"]) == (orders[1]["id"], 2)


@pytest.mark.parametrize("url", ["/api/v1/exports/customers", "/api/v1/exports/orders"])
def test_authorisation_matrix(client: TestClient, tokens: Tokens, people: People, url: str) -> None:
    anonymous = client.get(url)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    for role in (Role.VIEWER, Role.AGENT):
        forbidden = client.get(url, headers=tokens.headers(role))
        assert (forbidden.status_code, forbidden.json()["code"]) == (403, "forbidden")
    for role in (Role.ANALYST, Role.MARKETER, Role.ADMIN):
        assert client.get(url, headers=tokens.headers(role)).status_code == 200
