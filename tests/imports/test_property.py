"""Property: importing arbitrary rows — a mix of valid and invalid — accepts every valid row (none is
lost) and no invalid one. Each row is built valid or invalid field by field, so the oracle is known."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from patron.core.db import Database
from patron.customers.models import Customer
from patron.imports import ImportKind, ImportOptions, ImportReport, RejectedRow, run_import
from tests.imports.support import write_csv

LETTERS = "abcdefghijklmnopqrstuvwxyzAĂÂĐÊÔƠƯăâđêôơưễịọửáéíóöőúüűÁÉÖŐÜŰกขคงจฉชซญดตถทนบปผพฟมยรลวศสหอฮะาำเแโใไ่้๊๋ "
HEADER = ["external_id", "first_name", "last_name", "email", "phone", "birthday", "language", "country"]
_counter = itertools.count()


@dataclass(frozen=True)
class Cell:
    text: str
    valid: bool


def _render(day: date, style: int) -> str:
    if style == 0:
        return day.isoformat()
    if style == 1:
        return f"{day.day:02d}/{day.month:02d}/{day.year}"
    if style == 2:
        return f"{day.day:02d}.{day.month:02d}.{day.year}"
    if style == 3:
        return f"{day.year}.{day.month:02d}.{day.day:02d}"
    return str((day - date(1899, 12, 30)).days)


names = st.text(alphabet=LETTERS, max_size=30).map(lambda s: Cell(s, True)) | st.just(Cell("N" * 201, False))
emails = st.one_of(
    st.just(Cell("", True)),
    st.from_regex(r"[a-z][a-z0-9.]{0,10}@[a-z]{2,10}\.(vn|hu|th|com)", fullmatch=True).map(
        lambda s: Cell(s, True)
    ),
    st.sampled_from(["no-at-sign", "a@b", "x y@z.com", "@example.com"]).map(lambda s: Cell(s, False)),
)
phones = st.one_of(
    st.sampled_from(["", "+84 912 345 678", "+36 30 123 4567", "+66 81 234 5678", "0084912345678"]).map(
        lambda s: Cell(s, True)
    ),
    st.sampled_from(["12345", "+84 1", "phone", "+999 123"]).map(lambda s: Cell(s, False)),
)
birthdays = st.one_of(
    st.just(Cell("", True)),
    st.tuples(st.dates(date(1950, 1, 1), date(2005, 12, 31)), st.integers(0, 4)).map(
        lambda t: Cell(_render(t[0], t[1]), True)
    ),
    st.sampled_from(["31/02/2001", "2001-13-01", "soon", "2999-01-01", "00.00.2000"]).map(
        lambda s: Cell(s, False)
    ),
)
languages = st.sampled_from(["", "vi", "hu", "th", "en"]).map(lambda s: Cell(s, True)) | st.sampled_from(
    ["xx", "klingon"]
).map(lambda s: Cell(s, False))
countries = st.sampled_from(["", "VN", "HU", "TH", "GB", "vn"]).map(
    lambda s: Cell(s, True)
) | st.sampled_from(["XX", "Vietnam", "ZZ"]).map(lambda s: Cell(s, False))
has_key = st.booleans().map(lambda b: Cell("key" if b else "", b)) | st.just(Cell("key", True))

rows_strategy = st.lists(
    st.tuples(has_key, names, names, emails, phones, birthdays, languages, countries), min_size=1, max_size=25
)


class Collect:
    def __init__(self) -> None:
        self.rows: list[RejectedRow] = []

    def opened(self, report: ImportReport, total_units: int | None, unit: str) -> None:
        pass

    def chunk_done(self, report: ImportReport, done_units: int) -> None:
        pass

    def rejected(self, row: RejectedRow) -> None:
        self.rows.append(row)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy, delimiter=st.sampled_from([",", ";", "\t"]), chunk=st.integers(1, 7))
def test_valid_rows_are_accepted_and_invalid_ones_rejected(
    database: Database, tmp_path: Path, rows: list[tuple[Cell, ...]], delimiter: str, chunk: int
) -> None:
    batch = next(_counter)
    table = [HEADER]
    expected_valid: set[str] = set()
    expected_invalid: set[int] = set()
    keys: dict[int, str] = {}
    for i, cells in enumerate(rows):
        key = f"P{batch}-{i}" if cells[0].text else ""
        line = i + 2
        keys[line] = key
        table.append([key, *(c.text for c in cells[1:])])
        if all(c.valid for c in cells):
            expected_valid.add(key)
        else:
            expected_invalid.add(line)
    path = write_csv(tmp_path / f"p{batch}.csv", table, delimiter=delimiter)
    listener = Collect()
    report = run_import(
        database, ImportKind.CUSTOMERS, path, ImportOptions(chunk_size=chunk), listener=listener
    )
    assert report.error is None
    rejected_lines = {r.line for r in listener.rows}
    assert rejected_lines == expected_invalid, [(r.line, r.message) for r in listener.rows]
    assert all(r.reasons for r in listener.rows)
    with database.unit_of_work(write=False) as s:
        stored = set(s.scalars(select(Customer.external_id).where(Customer.external_id.like(f"P{batch}-%"))))
    assert stored == expected_valid
    assert (report.rows_accepted, report.rows_rejected) == (len(expected_valid), len(expected_invalid))
