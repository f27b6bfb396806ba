"""Tabular exports (CSV, Excel) streamed in constant memory, and the customer export rows.

CSV is UTF-8 with a byte-order mark so Excel opens Vietnamese and Thai text intact; rows are encoded
and handed out in chunks as they are read. Excel files are written by openpyxl in write-only mode
(rows go to a temporary file, never all into memory). Cells that a spreadsheet would run as a formula
(starting with ``=``, ``@``, or ``+``/``-`` not followed by a plain number) are prefixed with ``'``
in CSV and stored as text in Excel.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any, Literal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy.orm import Session

from patron.customers.models import Customer
from patron.customers.segment_rules import RuleNode
from patron.customers.segments import iter_matching_customers

ExportFormat = Literal["csv", "xlsx"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "xlsx")
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
BOM = "\ufeff"
_NUMBERLIKE = re.compile(r"^[+-]?[\d\s().-]+$")
_CHUNK = 64 * 1024

CUSTOMER_EXPORT_COLUMNS: tuple[str, ...] = (
    "id",
    "external_id",
    "given_name",
    "family_name",
    "form_of_address",
    "email",
    "phone",
    "language",
    "preferred_channel",
    "time_zone",
    "country",
    "birthday",
    "tags",
    "attributes",
    "referral_code",
    "organisation_id",
    "organisation_role",
    "created_at",
    "updated_at",
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_formula_like(text: str) -> bool:
    if not text:
        return False
    if text[0] in "=@\t\r":
        return True
    return text[0] in "+-" and not _NUMBERLIKE.match(text)


def csv_cell(value: Any) -> str:
    text = _text(value)
    return "'" + text if is_formula_like(text) else text


def stream_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """UTF-8 (with BOM) CSV, yielded in chunks of about 64 KiB."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
        if buffer.tell() >= _CHUNK:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    tail = buffer.getvalue()
    if tail:
        yield tail.encode("utf-8")


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal):
        return value
    text = ILLEGAL_CHARACTERS_RE.sub("", _text(value))
    if text.startswith("="):
        cell = WriteOnlyCell(sheet, value=text)
        cell.data_type = "s"  # a string, never a formula
        return cell
    return text


def write_xlsx(
    header: Sequence[str], rows: Iterable[Sequence[Any]], target: IO[bytes], *, title: str = "export"
) -> None:
    """An Excel workbook (write-only mode: rows stream to a temporary file, not into memory)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.append(list(header))
    for row in rows:
        sheet.append([_xlsx_cell(sheet, v) for v in row])
    workbook.save(target)


def write_table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    target: IO[bytes],
    fmt: ExportFormat,
    *,
    title: str = "export",
) -> None:
    """Write a table in ``fmt`` to a binary file."""
    if fmt == "csv":
        for chunk in stream_csv(header, rows):
            target.write(chunk)
    else:
        write_xlsx(header, rows, target, title=title)


def customer_row(customer: Customer) -> list[Any]:
    return [
        customer.id,
        customer.external_id,
        customer.given_name,
        customer.family_name,
        customer.form_of_address,
        customer.email,
        customer.phone_e164,
        customer.language,
        customer.preferred_channel,
        customer.time_zone,
        customer.country,
        customer.birthday,
        ";".join(str(t) for t in (customer.tags or [])),
        json.dumps(customer.attributes, ensure_ascii=False, sort_keys=True) if customer.attributes else "",
        customer.referral_code,
        customer.organisation_id,
        customer.organisation_role,
        customer.created_at,
        customer.updated_at,
    ]


def iter_customer_rows(
    session: Session, rules: RuleNode | dict[str, Any] | None = None, *, batch_size: int = 500
) -> Iterator[list[Any]]:
    """Export rows of live customers (all of them, or a segment's members), in keyset batches.
    Tags are joined with ``;``; custom attributes are a JSON object."""
    for customer in iter_matching_customers(session, rules, batch_size=batch_size):
        yield customer_row(customer)
