"""Importing orders (one row per order or per line), products and subscriptions."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from patron.commerce import get_product, get_subscription, list_orders
from patron.core.db import Database
from patron.core.outbox import OutboxEvent
from patron.customers import find_customer_id_by_external_id
from patron.imports import BatchStatus, ImportKind, list_rejects, undo_batch
from tests.imports.conftest import Importer
from tests.imports.support import write_csv, write_xlsx

pytestmark = pytest.mark.usefixtures("fx_rates")

CUSTOMERS = [
    ["external_id", "first_name", "last_name", "country"],
    ["C1", "Văn An", "Nguyễn", "VN"],
    ["C2", "Péter", "Kovács", "HU"],
    ["C3", "สมชาย", "ใจดี", "TH"],
]
LINES_HEADER = [
    "order_id",
    "customer_id",
    "currency",
    "placed_at",
    "sku",
    "product_name",
    "quantity",
    "unit_price",
    "line_total",
    "total",
]


@pytest.fixture
def with_customers(tmp_path: Path, run: Importer) -> None:
    report = run("customers", write_csv(tmp_path / "customers.csv", CUSTOMERS))
    assert report.created == 3


def orders_by_external(database: Database) -> dict[str, object]:
    with database.unit_of_work(write=False) as s:
        page = list_orders(s, limit=200)
        return {o.external_id: o for o in page.items}


def count(database: Database, model: type) -> int:
    with database.unit_of_work(write=False) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.usefixtures("with_customers")
def test_one_row_per_line_groups_lines_across_chunks(
    tmp_path: Path, run: Importer, database: Database
) -> None:
    rows = [
        LINES_HEADER,
        ["O-1", "C1", "VND", "31/05/2024 10:00", "CF-1", "Cà phê sữa đá", "2", "45.000", "90.000", "115.000"],
        ["O-1", "C1", "VND", "31/05/2024 10:00", "BM-1", "Bánh mì", "1", "25.000", "25.000", ""],
        ["O-2", "C3", "THB", "2024-06-01T09:00:00+07:00", "TT-1", "ชาไทย", "3", "45,50", "136,50", "136,50"],
        ["O-1", "C1", "VND", "", "CF-2", "Cà phê đen", "1", "0", "0", ""],
    ]
    path = write_csv(tmp_path / "orders.csv", rows, delimiter=";")
    report = run(ImportKind.ORDERS, path, chunk_size=2, time_zone="Asia/Ho_Chi_Minh")
    assert report.status is BatchStatus.COMPLETED, report.error
    assert report.decimal == "comma"
    # O-1's first lines end chunk 1 and go on in chunk 2; its last line is further down in chunk 2
    assert report.rows_rejected == 0, report
    assert (report.rows_total, report.rows_accepted, report.created) == (4, 4, 2)
    orders = orders_by_external(database)
    o1 = orders["O-1"]
    assert [(ln.sku, ln.name, ln.quantity, ln.total.amount) for ln in o1.lines] == [  # type: ignore[attr-defined]
        ("CF-1", "Cà phê sữa đá", 2, Decimal(90000)),
        ("BM-1", "Bánh mì", 1, Decimal(25000)),
        ("CF-2", "Cà phê đen", 1, Decimal(0)),
    ]
    assert (o1.total.amount, o1.currency) == (Decimal(115000), "VND")  # type: ignore[attr-defined]
    assert o1.placed_at.isoformat() == "2024-05-31T03:00:00+00:00"  # type: ignore[attr-defined]
    o2 = orders["O-2"]
    assert (o2.total.amount, o2.placed_at.isoformat()) == (Decimal("136.50"), "2024-06-01T02:00:00+00:00")  # type: ignore[attr-defined]


@pytest.mark.usefixtures("with_customers")
def test_rows_of_one_order_must_agree(tmp_path: Path, run: Importer, database: Database) -> None:
    rows = [
        LINES_HEADER,
        ["O-1", "C1", "VND", "2024-05-31", "CF-1", "Cà phê", "1", "45000", "45000", "70000"],
        ["O-1", "C2", "VND", "2024-05-31", "BM-1", "Bánh mì", "1", "25000", "25000", ""],
        ["O-2", "C2", "HUF", "2024-05-31", "K-1", "Kávé", "1", "990", "990", "990"],
    ]
    report = run("orders", write_csv(tmp_path / "o.csv", rows))
    assert (report.rows_accepted, report.rows_rejected, report.created) == (1, 2, 1)
    with database.unit_of_work(write=False) as s:
        assert report.batch_id is not None
        rejects = list_rejects(s, report.batch_id)
    assert [(r.line, r.external_id, r.message) for r in rejects] == [
        (2, "O-1", "the order is rejected because of line(s) 3"),
        (3, "O-1", "customer_id: disagrees with line 2 of the same order"),
    ]
    assert set(orders_by_external(database)) == {"O-2"}


@pytest.mark.usefixtures("with_customers")
def test_a_bad_line_rejects_its_whole_order(tmp_path: Path, run: Importer, database: Database) -> None:
    rows = [
        LINES_HEADER,
        ["O-1", "C1", "VND", "2024-05-31", "CF-1", "Cà phê", "2", "45000", "90000", ""],
        ["O-1", "C1", "VND", "2024-05-31", "BM-1", "Bánh mì", "two", "25000", "50000", ""],
        ["O-1", "C1", "VND", "2024-05-31", "TR-1", "Trà", "1", "10000", "99999", ""],
        ["O-3", "C9", "VND", "2024-05-31", "TR-1", "Trà", "1", "10000", "10000", ""],
    ]
    report = run("orders", write_csv(tmp_path / "o.csv", rows))
    assert (report.rows_accepted, report.rows_rejected) == (0, 4)
    with database.unit_of_work(write=False) as s:
        assert report.batch_id is not None
        rejects = {r.line: r for r in list_rejects(s, report.batch_id)}
    assert rejects[2].message == "the order is rejected because of line(s) 3, 4"
    assert rejects[3].reasons[0]["code"] == "invalid_number"
    assert rejects[3].reasons[0]["column"] == "quantity"
    assert rejects[4].reasons[0]["code"] == "line_total_mismatch"
    assert rejects[4].reasons[0]["column"] == "line_total"
    assert [(x["column"], x["code"]) for x in rejects[5].reasons] == [("customer_id", "unknown_customer")]
    assert orders_by_external(database) == {}


@pytest.mark.usefixtures("with_customers")
def test_an_order_split_across_the_file_is_rejected(
    tmp_path: Path, run: Importer, database: Database
) -> None:
    rows = [
        LINES_HEADER,
        ["O-1", "C1", "VND", "2024-05-31", "CF-1", "Cà phê", "1", "45000", "45000", ""],
        ["O-2", "C1", "VND", "2024-05-31", "CF-1", "Cà phê", "1", "45000", "45000", ""],
        ["O-3", "C1", "VND", "2024-05-31", "CF-1", "Cà phê", "1", "45000", "45000", ""],
        ["O-1", "C1", "VND", "2024-05-31", "BM-1", "Bánh mì", "1", "25000", "25000", ""],
    ]
    report = run("orders", write_csv(tmp_path / "o.csv", rows), chunk_size=2)
    assert (report.rows_accepted, report.rows_rejected) == (3, 1)
    with database.unit_of_work(write=False) as s:
        assert report.batch_id is not None
        (reject,) = list_rejects(s, report.batch_id)
    assert (reject.line, reject.reasons[0]["code"]) == (5, "order_lines_split")
    assert len(orders_by_external(database)["O-1"].lines) == 1  # type: ignore[attr-defined]


@pytest.mark.usefixtures("with_customers")
def test_one_row_per_order_rerun_and_undo_of_an_update(
    tmp_path: Path, run: Importer, database: Database
) -> None:
    header = ["order_id", "customer_id", "currency", "order_date", "subtotal", "shipping", "total", "channel"]
    v1 = write_csv(
        tmp_path / "v1.csv",
        [
            header,
            ["A-1", "C2", "HUF", "2024.05.31", "12 990,00", "1 000", "13 990", "store"],
            ["A-2", "C2", "HUF", "2024.06.01", "5 000", "0", "5 000", "web"],
        ],
        delimiter=";",
    )
    first = run("orders", v1)
    assert (first.created, first.rows_rejected) == (2, 0)
    before = orders_by_external(database)
    again = run("orders", v1)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    v2 = write_csv(
        tmp_path / "v2.csv",
        [
            header,
            ["A-1", "C2", "HUF", "2024.05.31", "12 990,00", "2 000", "14 990", "store"],
            ["A-3", "C3", "THB", "2024.06.02", "100,00", "0", "100,00", "app"],
        ],
        delimiter=";",
    )
    second = run("orders", v2)
    assert (second.created, second.updated, second.unchanged) == (1, 1, 0)
    changed = orders_by_external(database)
    assert changed["A-1"].total.amount == Decimal(14990)  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        assert second.batch_id is not None
        result = undo_batch(s, second.batch_id)
    assert (result.deleted, result.restored) == (1, 1)
    after = orders_by_external(database)
    assert set(after) == {"A-1", "A-2"}
    for key in ("A-1", "A-2"):
        a, b = after[key], before[key]
        assert (a.total, a.shipping, a.subtotal, a.placed_at, a.channel, a.customer_id, a.status) == (  # type: ignore[attr-defined]
            b.total,
            b.shipping,
            b.subtotal,
            b.placed_at,
            b.channel,
            b.customer_id,
            b.status,  # type: ignore[attr-defined]
        )


@pytest.mark.usefixtures("with_customers")
def test_imports_are_backfill_unless_live(tmp_path: Path, run: Importer, database: Database) -> None:
    header = ["order_id", "customer_id", "currency", "placed_at", "subtotal", "total"]
    rows = [header, ["B-1", "C1", "VND", "2024-05-31", "10000", "10000"]]
    assert run("orders", write_csv(tmp_path / "b.csv", rows)).created == 1
    assert count(database, OutboxEvent) == 0
    rows = [header, ["L-1", "C1", "VND", "2024-05-31", "10000", "10000"]]
    assert run("orders", write_csv(tmp_path / "l.csv", rows), live=True).created == 1
    with database.unit_of_work(write=False) as s:
        events = [(e.name, e.payload["external_id"]) for e in s.scalars(select(OutboxEvent))]
    assert events == [("order.placed", "L-1")]


def test_products_import_update_and_undo(tmp_path: Path, run: Importer, database: Database) -> None:
    header = ["sku", "name", "category", "price", "currency"]
    first = run(
        "products",
        write_xlsx(
            tmp_path / "p.xlsx",
            [
                header,
                ["CF-1", "Cà phê sữa đá", "drinks", 45000, "VND"],
                ["K-1", "Kávé", "drinks", 990.5, "HUF"],
            ],
        ),
    )
    assert (first.created, first.rows_rejected) == (2, 0)
    second = run(
        "products",
        write_csv(
            tmp_path / "p.csv",
            [
                header,
                ["CF-1", "Cà phê sữa đá", "drinks", "49000", "VND"],
                ["K-1", "Kávé", "drinks", "990,50", "HUF"],
            ],
            delimiter=";",
        ),
    )
    assert (second.created, second.updated, second.unchanged) == (0, 1, 1)
    with database.unit_of_work(write=False) as s:
        assert first.batch_id is not None
        from patron.imports.models import ImportRecord

        cf_id = s.scalar(
            select(ImportRecord.entity_id).where(
                ImportRecord.batch_id == first.batch_id, ImportRecord.line == 2
            )
        )
        assert cf_id is not None
        assert get_product(s, cf_id).price.amount == Decimal(49000)
    with database.unit_of_work() as s:
        assert second.batch_id is not None
        assert undo_batch(s, second.batch_id).restored == 1
    with database.unit_of_work(write=False) as s:
        product = get_product(s, cf_id)
        assert (product.price.amount, product.price.currency, product.name) == (
            Decimal(45000),
            "VND",
            "Cà phê sữa đá",
        )


@pytest.mark.usefixtures("with_customers")
def test_subscriptions_import_and_undo(tmp_path: Path, run: Importer, database: Database) -> None:
    header = [
        "subscription_id",
        "customer_id",
        "plan",
        "price",
        "currency",
        "interval",
        "start_date",
        "status",
        "cancelled_at",
    ]
    rows = [
        header,
        ["S-1", "C1", "Gói Vàng", "199.000", "VND", "month", "01/05/2024", "active", ""],
        ["S-2", "C2", "Arany csomag", "4 990", "HUF", "year", "2024.01.15", "cancelled", "2024.03.01"],
    ]
    report = run("subscriptions", write_csv(tmp_path / "s.csv", rows, delimiter=";"))
    assert (report.created, report.rows_rejected) == (2, 0), report
    with database.unit_of_work(write=False) as s:
        from patron.imports.models import ImportRecord

        ids = list(
            s.scalars(
                select(ImportRecord.entity_id)
                .where(ImportRecord.batch_id == report.batch_id)
                .order_by(ImportRecord.line)
            )
        )
        gold = get_subscription(s, ids[0])
        assert (gold.plan, gold.price.amount, gold.customer_id) == (
            "Gói Vàng",
            Decimal(199000),
            find_customer_id_by_external_id(s, "C1"),
        )
    with database.unit_of_work() as s:
        assert report.batch_id is not None
        assert undo_batch(s, report.batch_id).deleted == 2
    with database.unit_of_work(write=False) as s:
        from patron.core.errors import NotFound

        for sid in ids:
            with pytest.raises(NotFound):
                get_subscription(s, sid)
