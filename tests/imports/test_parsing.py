"""Pure parsing rules: encodings, delimiters, numbers and dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from patron.imports.parsing import (
    DecimalMode,
    detect_decimal_mode,
    detect_encoding,
    excel_serial_to_datetime,
    normalise_date_format,
    parse_date,
    parse_datetime,
    parse_integer,
    parse_number,
    sniff_delimiter,
)
from tests.imports.support import csv_text, to_cp1258

VIETNAMESE = [
    ["external_id", "first_name", "last_name"],
    ["V1", "Văn Điền", "Nguyễn"],
    ["V2", "Thị Hương", "Trần"],
    ["V3", "Quốc Bảo", "Lê"],
    ["V4", "Ngọc Ánh", "Phạm"],
]
HUNGARIAN = [
    ["external_id", "first_name", "last_name"],
    ["H1", "Péter", "Kovács"],
    ["H2", "Zsófia", "Szőke"],
    ["H3", "Ödön", "Fűzfa"],
    ["H4", "Árpád", "Török"],
]
THAI = [
    ["external_id", "first_name", "last_name"],
    ["T1", "สมชาย", "ใจดี"],
    ["T2", "สมหญิง", "รักไทย"],
    ["T3", "ประยุทธ์", "ศรีสุข"],
]


@pytest.mark.parametrize(
    ("rows", "encoding"),
    [(VIETNAMESE, "cp1258"), (HUNGARIAN, "cp1250"), (THAI, "tis_620")],
    ids=["vietnamese-cp1258", "hungarian-cp1250", "thai-tis620"],
)
def test_legacy_code_pages_are_recognised(rows: list[list[str]], encoding: str) -> None:
    text = csv_text(rows)
    data = to_cp1258(text) if encoding == "cp1258" else text.encode(encoding)
    assert detect_encoding(data) == encoding


def test_utf8_with_and_without_bom() -> None:
    text = csv_text(VIETNAMESE + HUNGARIAN + THAI)
    assert detect_encoding(text.encode()) == "utf-8"
    assert detect_encoding(b"\xef\xbb\xbf" + text.encode()) == "utf-8-sig"
    assert detect_encoding(b"\xff\xfe" + text.encode("utf-16-le")) == "utf-16"


def test_ascii_is_utf8() -> None:
    assert detect_encoding(b"a,b\n1,2\n") == "utf-8"


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("a,b,c\n1,2,3\n4,5,6\n", ","),
        ('a;b;c\n1;"2,5";3\n4;5,5;6\n', ";"),
        ("a\tb\tc\n1\t2,5\t3\n", "\t"),
        ("name;amount\nKovács;1.234,50\nSzabó;12,00\n", ";"),
        ("a|b\n1|2\n", "|"),
    ],
)
def test_delimiter_sniffing(sample: str, expected: str) -> None:
    assert sniff_delimiter(sample) == expected


@pytest.mark.parametrize(
    ("text", "mode", "expected"),
    [
        ("1.234,50", DecimalMode.COMMA, Decimal("1234.50")),
        ("1 234,50", DecimalMode.COMMA, Decimal("1234.50")),
        ("1\u00a0234,50", DecimalMode.COMMA, Decimal("1234.50")),
        ("12,5", DecimalMode.COMMA, Decimal("12.5")),
        ("150.000", DecimalMode.COMMA, Decimal("150000")),
        ("1,234.50", DecimalMode.POINT, Decimal("1234.50")),
        ("12.5", DecimalMode.POINT, Decimal("12.5")),
        ("-7", DecimalMode.POINT, Decimal("-7")),
        ("1.234,50", DecimalMode.AUTO, Decimal("1234.50")),
        ("1,234.50", DecimalMode.AUTO, Decimal("1234.50")),
        ("99,90", DecimalMode.AUTO, Decimal("99.90")),
    ],
)
def test_numbers(text: str, mode: DecimalMode, expected: Decimal) -> None:
    assert parse_number(text, mode) == expected


@pytest.mark.parametrize("text", ["abc", "1,2,3", "1.2.3", "", "1e5", "NaN", "12,5", "1,23.5"])
def test_bad_numbers_in_point_mode(text: str) -> None:
    with pytest.raises(ValueError, match="not a number"):
        parse_number(text, DecimalMode.POINT)


@pytest.mark.parametrize("text", ["1.2,5", "12.34", "1,2,3"])
def test_bad_numbers_in_comma_mode(text: str) -> None:
    with pytest.raises(ValueError, match="not a number"):
        parse_number(text, DecimalMode.COMMA)


def test_numbers_from_spreadsheets_keep_their_value() -> None:
    assert parse_number(0.1) == Decimal("0.1")
    assert parse_number(45000) == Decimal(45000)
    assert parse_integer("3") == 3
    with pytest.raises(ValueError, match="whole"):
        parse_integer("2,5", DecimalMode.COMMA)
    with pytest.raises(ValueError, match="not a number"):
        parse_number(True)


def test_decimal_mode_detection() -> None:
    assert detect_decimal_mode(["1.234,50", "12,00", "7"]) is DecimalMode.COMMA
    assert detect_decimal_mode(["1,234.50", "12.00"]) is DecimalMode.POINT
    assert detect_decimal_mode(["7", "8"], ";") is DecimalMode.COMMA
    assert detect_decimal_mode(["7", "8"], ",") is DecimalMode.POINT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-31", date(2024, 5, 31)),
        ("31/05/2024", date(2024, 5, 31)),
        ("31.05.2024", date(2024, 5, 31)),
        ("31-05-2024", date(2024, 5, 31)),
        ("2024.05.31", date(2024, 5, 31)),
        ("2024. 05. 31.", date(2024, 5, 31)),
        ("2024/05/31", date(2024, 5, 31)),
        ("5/1/2024", date(2024, 1, 5)),
        ("45443", date(2024, 5, 31)),
        ("2024-05-31T10:00:00+07:00", date(2024, 5, 31)),
    ],
)
def test_dates(text: str, expected: date) -> None:
    assert parse_date(text) == expected


def test_excel_serials() -> None:
    assert parse_date(45443) == date(2024, 5, 31)
    assert parse_date(45443.75) == date(2024, 5, 31)
    assert excel_serial_to_datetime(45443.75) == datetime(2024, 5, 31, 18, 0)
    assert parse_date(61) == date(1900, 3, 1)
    with pytest.raises(ValueError, match="Excel"):
        excel_serial_to_datetime(0)


@pytest.mark.parametrize("text", ["31/13/2024", "2024-02-30", "tomorrow", "31/05/24x"])
def test_bad_dates(text: str) -> None:
    with pytest.raises(ValueError, match="date"):
        parse_date(text)


def test_explicit_date_format() -> None:
    fmt = normalise_date_format("mdy")
    assert fmt == "%m/%d/%Y"
    assert parse_date("05/31/2024", fmt) == date(2024, 5, 31)
    assert normalise_date_format("%d %m %Y") == "%d %m %Y"
    assert normalise_date_format("auto") is None
    with pytest.raises(ValueError, match="unknown date format"):
        normalise_date_format("whenever")


def test_timestamps() -> None:
    assert parse_datetime("2024-05-31T14:05:00+07:00") == datetime(2024, 5, 31, 7, 5, tzinfo=UTC)
    assert parse_datetime("2024-05-31T14:05:00Z") == datetime(2024, 5, 31, 14, 5, tzinfo=UTC)
    assert parse_datetime("31/05/2024 14:05") == datetime(2024, 5, 31, 14, 5)
    assert parse_datetime("2024.05.31 14:05:30") == datetime(2024, 5, 31, 14, 5, 30)
    assert parse_datetime("31.05.2024") == datetime(2024, 5, 31)
    assert parse_datetime("45443.5") == datetime(2024, 5, 31, 12)
    with pytest.raises(ValueError, match="timestamp"):
        parse_datetime("31/05/2024 25:00")
