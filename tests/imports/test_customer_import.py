"""Importing customers through the service: encodings, delimiters, dates, mapping, dry runs,
idempotent re-runs, undo and the rejected rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from patron.core.db import Database
from patron.core.errors import Conflict
from patron.customers import CustomerView
from patron.imports import BatchStatus, ImportKind, get_batch, list_rejects, undo_batch
from patron.imports.models import ImportBatch, ImportRecord, ImportReject
from tests.imports.conftest import Importer
from tests.imports.support import write_csv, write_parquet, write_xlsx

HEADER = [
    "external_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "birthday",
    "language",
    "time_zone",
    "country",
]
VI = [
    [
        "VN-1",
        "Văn Điền",
        "Nguyễn",
        "dien@example.vn",
        "0912 345 678",
        "1990-05-31",
        "vi",
        "Asia/Ho_Chi_Minh",
        "VN",
    ],
    ["VN-2", "Thị Hương", "Trần", "huong@example.vn", "+84 98 765 4321", "1985-12-01", "vi", "", "VN"],
    ["VN-3", "Quốc Bảo", "Lê", "", "", "", "", "", "VN"],
]
HU = [
    [
        "HU-1",
        "Péter",
        "Kovács",
        "peter@example.hu",
        "+36 30 123 4567",
        "1979-03-02",
        "hu",
        "Europe/Budapest",
        "HU",
    ],
    ["HU-2", "Zsófia", "Szőke", "zsofi@example.hu", "06 30 765 4321", "", "hu", "", "HU"],
    ["HU-3", "Ödön", "Fűzfa", "", "", "", "", "", "HU"],
]
TH = [
    ["TH-1", "สมชาย", "ใจดี", "somchai@example.th", "081 234 5678", "1970-01-15", "th", "Asia/Bangkok", "TH"],
    ["TH-2", "สมหญิง", "รักไทย", "", "+66 89 123 4567", "", "th", "", "TH"],
]

Getter = Callable[[str], CustomerView | None]


def names(get: Getter, rows: list[list[str]]) -> list[tuple[str, str]]:
    out = []
    for row in rows:
        c = get(row[0])
        assert c is not None, row[0]
        out.append((c.first_name, c.last_name))
    return out


@pytest.mark.parametrize(
    ("encoding", "bom", "rows"),
    [
        ("utf-8", False, VI + HU + TH),
        ("utf-8", True, VI + HU + TH),
        ("cp1258", False, VI),
        ("tis_620", False, TH),
        ("cp1250", False, HU),
    ],
    ids=["utf8", "utf8-bom", "cp1258-vietnamese", "tis620-thai", "cp1250-hungarian"],
)
def test_every_encoding_stores_the_names_exactly(
    tmp_path: Path, run: Importer, customer: Getter, encoding: str, bom: bool, rows: list[list[str]]
) -> None:
    path = write_csv(tmp_path / "customers.csv", [HEADER, *rows], encoding=encoding, bom=bom)
    report = run(ImportKind.CUSTOMERS, path)
    assert report.status is BatchStatus.COMPLETED, report.error
    assert report.encoding == ("utf-8-sig" if encoding == "utf-8" else encoding)
    assert (report.rows_total, report.rows_accepted, report.rows_rejected) == (len(rows), len(rows), 0)
    assert report.created == len(rows)
    assert names(customer, rows) == [(r[1], r[2]) for r in rows]


def test_stored_fields(tmp_path: Path, run: Importer, customer: Getter) -> None:
    path = write_csv(tmp_path / "c.csv", [HEADER, *VI[:2], HU[1]])
    report = run("customers", path)
    assert report.rows_rejected == 0
    dien = customer("VN-1")
    assert dien is not None
    assert (dien.email, dien.phone, dien.birthday, dien.language, dien.time_zone, dien.country) == (
        "dien@example.vn",
        "+84912345678",
        date(1990, 5, 31),
        "vi",
        "Asia/Ho_Chi_Minh",
        "VN",
    )
    zsofia = customer("HU-2")
    assert zsofia is not None
    assert (zsofia.phone, zsofia.language, zsofia.time_zone) == ("+36307654321", "hu", "Europe/Budapest")


def test_the_encoding_can_be_forced(tmp_path: Path, run: Importer, customer: Getter) -> None:
    path = write_csv(tmp_path / "c.csv", [HEADER, HU[0]], encoding="cp1250")
    report = run("customers", path, encoding="cp1250")
    assert report.encoding == "cp1250"
    got = customer("HU-1")
    assert got is not None
    assert got.last_name == "Kovács"


def test_a_wrong_forced_encoding_is_a_fatal_error(
    tmp_path: Path, run: Importer, count_customers: Callable[[], int]
) -> None:
    path = write_csv(tmp_path / "c.csv", [HEADER, TH[0]], encoding="tis_620")
    report = run("customers", path, encoding="utf-8")
    assert report.status is BatchStatus.FAILED
    assert report.error_code == "bad_encoding"
    assert count_customers() == 0


@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_delimiters_are_sniffed(tmp_path: Path, run: Importer, customer: Getter, delimiter: str) -> None:
    path = write_csv(tmp_path / "c.csv", [HEADER, *HU], delimiter=delimiter)
    report = run("customers", path)
    assert report.delimiter == delimiter
    assert report.rows_accepted == 3
    assert names(customer, HU) == [(r[1], r[2]) for r in HU]


def test_each_date_format(tmp_path: Path, run: Importer, customer: Getter) -> None:
    rows = [
        ["external_id", "first_name", "birthday", "country"],
        ["D1", "Iso", "1990-05-31", "VN"],
        ["D2", "Slash", "31/05/1990", "VN"],
        ["D3", "Dot", "31.05.1990", "HU"],
        ["D4", "Hungarian", "1990.05.31", "HU"],
        ["D5", "Hungarian spaced", "1990. 05. 31.", "HU"],
        ["D6", "Excel serial", "33024", "TH"],
    ]
    report = run("customers", write_csv(tmp_path / "d.csv", rows))
    assert report.rows_rejected == 0
    for ext in ("D1", "D2", "D3", "D4", "D5", "D6"):
        got = customer(ext)
        assert got is not None
        assert got.birthday == date(1990, 5, 31), ext


def test_explicit_date_format_reads_us_dates(tmp_path: Path, run: Importer, customer: Getter) -> None:
    rows = [["external_id", "first_name", "birthday"], ["U1", "Ann", "05/31/1990"]]
    report = run("customers", write_csv(tmp_path / "d.csv", rows), date_format="%m/%d/%Y")
    assert report.rows_rejected == 0
    got = customer("U1")
    assert got is not None
    assert got.birthday == date(1990, 5, 31)


def test_local_headings_and_aliases_are_recognised(tmp_path: Path, run: Importer, customer: Getter) -> None:
    rows = [
        ["Mã khách hàng", "Họ", "Tên", "Số điện thoại", "Ngày sinh", "Quốc gia"],
        ["VN-9", "Phạm", "Ngọc Ánh", "0912 345 679", "02/09/1995", "VN"],
    ]
    report = run("customers", write_csv(tmp_path / "vi.csv", rows))
    assert report.columns == {
        "Mã khách hàng": "external_id",
        "Họ": "last_name",
        "Tên": "first_name",
        "Số điện thoại": "phone",
        "Ngày sinh": "birthday",
        "Quốc gia": "country",
    }
    got = customer("VN-9")
    assert got is not None
    assert (got.first_name, got.last_name, got.phone, got.birthday) == (
        "Ngọc Ánh",
        "Phạm",
        "+84912345679",
        date(1995, 9, 2),
    )
    rows = [
        ["Customer ID", "First Name", "SURNAME", "E-mail", "Mobile", "Date of birth"],
        ["EN-1", "Anna", "Smith", "anna@example.com", "+44 7911 123456", "1980-01-02"],
    ]
    report = run("customers", write_csv(tmp_path / "en.csv", rows))
    assert report.rows_rejected == 0
    anna = customer("EN-1")
    assert anna is not None
    assert (anna.first_name, anna.last_name, anna.email) == ("Anna", "Smith", "anna@example.com")


def test_mapping_renames_skips_and_keeps_attributes(tmp_path: Path, run: Importer, customer: Getter) -> None:
    rows = [["Kundennummer", "Vorname", "Notiz", "Loyalty card"], ["K-1", "Jürgen", "VIP", "1234"]]
    path = write_csv(tmp_path / "m.csv", rows)
    report = run(
        "customers",
        path,
        mapping={
            "Kundennummer": "external_id",
            "Vorname": "first_name",
            "Notiz": "",
            "Loyalty card": "attributes.card",
        },
    )
    assert report.status is BatchStatus.COMPLETED, report.error
    assert report.columns == {
        "Kundennummer": "external_id",
        "Vorname": "first_name",
        "Notiz": None,
        "Loyalty card": "attributes.card",
    }
    got = customer("K-1")
    assert got is not None
    assert (got.first_name, got.attributes) == ("Jürgen", {"card": "1234"})


def test_unknown_columns_fail_the_batch_and_write_nothing(
    tmp_path: Path, run: Importer, database: Database, count_customers: Callable[[], int]
) -> None:
    path = write_csv(tmp_path / "u.csv", [["external_id", "first_name", "shoe size"], ["X1", "A", "42"]])
    report = run("customers", path)
    assert report.status is BatchStatus.FAILED
    assert report.error_code == "unknown_columns"
    assert "shoe size" in (report.error or "")
    assert count_customers() == 0
    with database.unit_of_work(write=False) as s:
        assert report.batch_id is not None
        batch = get_batch(s, report.batch_id)
    assert (batch.status, batch.rows_total) == ("failed", 0)
    assert batch.error == report.error


def test_a_missing_key_column_is_fatal(tmp_path: Path, run: Importer) -> None:
    report = run("customers", write_csv(tmp_path / "k.csv", [["first_name"], ["A"]]))
    assert (report.status, report.error_code) == (BatchStatus.FAILED, "missing_key_column")


def test_dry_run_writes_nothing(
    tmp_path: Path, run: Importer, database: Database, count_customers: Callable[[], int]
) -> None:
    path = write_csv(tmp_path / "c.csv", [HEADER, *VI, ["BAD", "X", "Y", "not-an-email", "", "", "", "", ""]])
    report = run("customers", path, dry_run=True)
    assert report.status is BatchStatus.COMPLETED
    assert (report.rows_total, report.rows_accepted, report.rows_rejected) == (4, 3, 1)
    assert (report.created, report.updated, report.unchanged) == (3, 0, 0)
    assert report.batch_id is None
    assert count_customers() == 0
    with database.unit_of_work(write=False) as s:
        for model in (ImportBatch, ImportRecord, ImportReject):
            assert s.scalar(select(func.count()).select_from(model)) == 0


def test_rerunning_the_same_file_changes_nothing(
    tmp_path: Path, run: Importer, database: Database, customer: Getter, count_customers: Callable[[], int]
) -> None:
    path = write_csv(tmp_path / "c.csv", [HEADER, *VI, *HU, *TH])
    first = run("customers", path)
    before = {r[0]: customer(r[0]) for r in VI + HU + TH}
    second = run("customers", path)
    assert (first.created, first.updated, first.unchanged) == (8, 0, 0)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 8)
    assert count_customers() == 8
    assert {r[0]: customer(r[0]) for r in VI + HU + TH} == before
    with database.unit_of_work(write=False) as s:
        n = s.scalar(
            select(func.count()).select_from(ImportRecord).where(ImportRecord.batch_id == second.batch_id)
        )
    assert n == 0


def _comparable(c: CustomerView | None) -> dict[str, object] | None:
    if c is None:
        return None
    data = dict(vars(c)) if hasattr(c, "__dict__") else {f: getattr(c, f) for f in c.__dataclass_fields__}
    for volatile in ("version", "updated_at"):
        data.pop(volatile, None)
    return data


def test_undo_restores_exactly(tmp_path: Path, run: Importer, database: Database, customer: Getter) -> None:
    v1 = write_csv(tmp_path / "v1.csv", [HEADER, *VI, *HU])
    first = run("customers", v1)
    keys = [r[0] for r in VI + HU + TH]
    after_first = {k: _comparable(customer(k)) for k in keys}
    changed = [list(r) for r in VI + HU]
    changed[0][3] = "dien.nguyen@example.vn"
    changed[1][4] = "+84 91 111 2222"
    changed[3][1] = "Péter Pál"
    v2 = write_csv(tmp_path / "v2.csv", [HEADER, *changed, *TH])
    second = run("customers", v2)
    assert (second.created, second.updated, second.unchanged) == (2, 3, 3)
    dien = customer("VN-1")
    assert dien is not None
    assert dien.email == "dien.nguyen@example.vn"

    assert first.batch_id is not None
    with database.unit_of_work() as s, pytest.raises(Conflict) as blocked:
        undo_batch(s, first.batch_id)
    assert blocked.value.code == "import_undo_blocked"
    assert blocked.value.extra["blocking_batches"] == [second.batch_id]

    with database.unit_of_work() as s:
        assert second.batch_id is not None
        result = undo_batch(s, second.batch_id)
    assert (result.deleted, result.restored, result.batch.status) == (2, 3, "undone")
    assert {k: _comparable(customer(k)) for k in keys} == after_first

    with database.unit_of_work() as s, pytest.raises(Conflict) as again:
        undo_batch(s, second.batch_id)
    assert again.value.code == "import_already_undone"

    with database.unit_of_work() as s:
        assert first.batch_id is not None
        result = undo_batch(s, first.batch_id)
    assert (result.deleted, result.restored) == (6, 0)
    assert all(customer(k) is None for k in keys)


def test_rejected_rows_are_stored_with_line_key_and_reasons(
    tmp_path: Path, run: Importer, database: Database
) -> None:
    rows = [
        HEADER,
        VI[0],
        ["VN-X", "A", "B", "not-an-email", "", "", "", "", "VN"],
        ["", "No", "Key", "", "", "", "", "", ""],
        ["VN-Y", "C", "D", "", "", "31/02/1990", "", "", "XX"],
        HU[0],
    ]
    report = run("customers", write_csv(tmp_path / "r.csv", rows))
    assert (report.rows_total, report.rows_accepted, report.rows_rejected) == (5, 2, 3)
    with database.unit_of_work(write=False) as s:
        assert report.batch_id is not None
        rejects = list_rejects(s, report.batch_id)
    assert [(r.line, r.external_id) for r in rejects] == [(3, "VN-X"), (4, None), (5, "VN-Y")]
    assert rejects[0].message == "email: not a valid email address"
    assert rejects[1].message == "external_id: is required"
    assert [x["code"] for x in rejects[2].reasons] == ["invalid_date", "invalid_country"]
    assert rejects[2].reasons[0]["column"] == "birthday"
    assert rejects[0].values["email"] == "not-an-email"


def test_a_repeated_key_updates_the_earlier_row(tmp_path: Path, run: Importer, customer: Getter) -> None:
    rows = [
        ["external_id", "first_name", "last_name"],
        ["R1", "Anna", "Old"],
        ["R2", "Béla", "Kiss"],
        ["R1", "Anna", "New"],
    ]
    report = run("customers", write_csv(tmp_path / "r.csv", rows), chunk_size=10)
    assert (report.created, report.updated, report.rows_rejected) == (2, 1, 0)
    got = customer("R1")
    assert got is not None
    assert got.last_name == "New"


def test_small_chunks_give_the_same_result(
    tmp_path: Path, run: Importer, customer: Getter, database: Database
) -> None:
    path = write_csv(tmp_path / "c.csv", [HEADER, *VI, *HU, *TH])
    report = run("customers", path, chunk_size=3)
    assert (report.rows_total, report.created) == (8, 8)
    with database.unit_of_work(write=False) as s:
        assert report.batch_id is not None
        batch = get_batch(s, report.batch_id)
    assert (batch.status, batch.rows_total, batch.created, batch.progress) == ("completed", 8, 8, 1.0)
    assert names(customer, TH) == [(r[1], r[2]) for r in TH]


def test_excel_workbook_with_dates_serials_and_numbers(
    tmp_path: Path, run: Importer, customer: Getter
) -> None:
    rows = [
        ["external_id", "first_name", "last_name", "phone", "birthday", "country"],
        [1001, "Văn Điền", "Nguyễn", 84912345678, date(1990, 5, 31), "VN"],
        [1002, "Péter", "Kovács", "+36 30 123 4567", 29017, "HU"],
        [1003, "สมชาย", "ใจดี", "081 234 5678", "15/01/1970", "TH"],
    ]
    path = write_xlsx(tmp_path / "c.xlsx", rows)
    report = run("customers", path)
    assert report.file_format == "xlsx"
    assert report.rows_rejected == 0, report
    dien = customer("1001")
    assert dien is not None
    assert (dien.first_name, dien.phone, dien.birthday) == ("Văn Điền", "+84912345678", date(1990, 5, 31))
    peter = customer("1002")
    assert peter is not None
    assert peter.birthday == date(1979, 6, 11)
    somchai = customer("1003")
    assert somchai is not None
    assert (somchai.last_name, somchai.birthday) == ("ใจดี", date(1970, 1, 15))


def test_parquet_file(tmp_path: Path, run: Importer, customer: Getter) -> None:
    path = write_parquet(
        tmp_path / "c.parquet",
        {
            "external_id": ["P1", "P2"],
            "first_name": ["Thị Hương", "Zsófia"],
            "last_name": ["Trần", "Szőke"],
            "birthday": [date(1985, 12, 1), None],
            "country": ["VN", "HU"],
        },
    )
    report = run("customers", path, chunk_size=1)
    assert (report.file_format, report.rows_accepted, report.created) == ("parquet", 2, 2)
    got = customer("P1")
    assert got is not None
    assert (got.first_name, got.last_name, got.birthday) == ("Thị Hương", "Trần", date(1985, 12, 1))


def test_undo_never_touches_erased_or_merged_customers(
    tmp_path: Path, run: Importer, database: Database, customer: Getter
) -> None:
    from patron.customers import erase_customer, export_customer, merge_customers

    v1 = run("customers", write_csv(tmp_path / "v1.csv", [HEADER, *VI]))
    changed = [list(r) for r in VI]
    changed[0][3] = "dien.nguyen@example.vn"
    v2 = run("customers", write_csv(tmp_path / "v2.csv", [HEADER, *changed, *HU]))
    assert (v2.created, v2.updated) == (3, 1)
    dien, huong, peter = customer("VN-1"), customer("VN-2"), customer("HU-1")
    assert dien is not None
    assert huong is not None
    assert peter is not None
    with database.unit_of_work() as s:
        exported = export_customer(s, peter.id)
    assert [(b["batch_id"], b["action"]) for b in exported["imports"]["import_batches"]] == [
        (v2.batch_id, "created")
    ]
    with database.unit_of_work() as s:
        erase_customer(s, dien.id)
        merge_customers(s, source_id=peter.id, target_id=huong.id)
    with database.unit_of_work() as s:
        assert v2.batch_id is not None
        result = undo_batch(s, v2.batch_id)
    # VN-1 (erased) is not restored with its old e-mail, HU-1 (merged away) is not deleted
    assert (result.deleted, result.restored) == (2, 0)
    with database.unit_of_work(write=False) as s:
        from patron.customers import get_customer

        assert get_customer(s, dien.id).email != "dien@example.vn"
        assert get_customer(s, peter.id).merged_into_id == huong.id
    assert v1.created == 3
