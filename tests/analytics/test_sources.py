"""File sources: every bad-input message names the file (for globs), row, column, value and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from patron.analytics import AnalysisError, AnalyzeOptions, Columns
from patron.analytics.runner import file_loader, run
from tests.analytics.support import write_csv

HEADER = ("customer_id", "date", "amount", "order", "currency", "qty")
ALL = Columns(order="order", currency="currency", quantity="qty")


def _fail(path: Path | str, columns: Columns = ALL) -> str:
    with pytest.raises(AnalysisError) as info:
        run(file_loader(str(path)), AnalyzeOptions(columns=columns, sections=("kpis",)))
    return str(info.value)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (("a", "2024-01-01", "1", "  ", "EUR", "1"), "row 1, column 'order': empty: an order id is required"),
        (
            ("a", "2024-01-01", "1", "o", "", "1"),
            "row 1, column 'currency': empty: a currency code is required",
        ),
        (("a", "2024-01-01", "1", "o", "EUR", "two"), "row 1, column 'qty': 'two': not a number"),
        (("a", "2024-02-30", "1", "o", "EUR", "1"), "row 1, column 'date': '2024-02-30': not a date"),
        (("a", "2024-01-01", "NaN?", "o", "EUR", "1"), "row 1, column 'amount': 'NaN?': not a number"),
    ],
)
def test_each_problem_is_named(tmp_path: Path, row: tuple[str, ...], expected: str) -> None:
    message = _fail(write_csv(tmp_path / "t.csv", [row], header=HEADER))
    assert message.startswith("1 bad row:\n")
    assert expected in message
    assert message.endswith("fix them, or pass --on-bad-rows skip to leave them out")


def test_globs_name_the_file_and_count_rows_per_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [("a", "2024-01-01", "1"), ("b", "2024-01-02", "2")], HEADER[:3])
    write_csv(tmp_path / "b.csv", [("c", "2024-01-03", "3"), ("d", "someday", "4")], HEADER[:3])
    message = _fail(tmp_path / "*.csv", Columns())
    assert "b.csv, row 2, column 'date': 'someday': not a date" in message


def test_more_bad_rows_than_examples_are_counted(tmp_path: Path) -> None:
    rows = [("", "2024-01-01", "1")] * 8
    message = _fail(write_csv(tmp_path / "t.csv", rows, HEADER[:3]), Columns())
    assert message.startswith("8 bad rows (and 3 more):")
    assert message.count("a customer id is required") == 5


def test_skip_counts_by_problem_and_keeps_the_rest(tmp_path: Path) -> None:
    rows = [("a", "2024-01-01", "1"), ("", "2024-01-02", "2"), ("c", "x", "3"), ("d", "2024-01-03", "-1")]
    path = write_csv(tmp_path / "t.csv", rows, HEADER[:3])
    a = run(file_loader(str(path)), AnalyzeOptions(sections=("kpis",), on_bad_rows="skip"))
    assert a.source.skipped == 3
    assert a.source.skipped_by_problem == {
        "a customer id is required": 1,
        "not a date (expected ISO 8601, e.g. 2024-05-31 or 2024-05-31T14:05:00+07:00)": 1,
        "a negative amount (a refund) needs --order-col to net it against its order": 1,
    }
    assert a.counts == (1, 1, 1)


def test_mixed_kinds_and_empty_input(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", [("a", "2024-01-01", "1")], HEADER[:3])
    (tmp_path / "b.parquet").write_bytes(b"")
    assert _fail(tmp_path / "*", Columns()) == "the files mix CSV and Parquet; analyse one kind at a time"
    empty = write_csv(tmp_path / "empty.csv", [], HEADER[:3])
    assert _fail(empty, Columns()) == "no usable transactions in the input"


def test_malformed_csv_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("customer_id,date,amount\na,2024-01-01,1\nb,2024-01-02,2,9,9\n", encoding="utf-8")
    assert _fail(path, Columns()).startswith(f"cannot read the header of {path}: ")
    parquet = tmp_path / "broken.parquet"
    parquet.write_bytes(b"PAR1 not really")
    assert _fail(parquet, Columns()).startswith(f"cannot read {parquet}: ")
