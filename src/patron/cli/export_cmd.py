"""``patron export customers|orders [--segment ID] [--format csv|xlsx] --output FILE``.

CSV is UTF-8 with a byte-order mark (Excel opens Vietnamese and Thai intact); xlsx is written in
openpyxl's write-only mode. Rows are read in batches, so memory stays flat. The file appears only
when complete (written next to it, then renamed). Each export is recorded in the audit log.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from patron.cli.common import console, fail, out, unit_of_work
from patron.cli.main import app
from patron.commerce import ORDER_EXPORT_COLUMNS, iter_order_export_rows
from patron.core.audit import record_audit
from patron.customers import (
    CUSTOMER_EXPORT_COLUMNS,
    ExportFormat,
    get_segment,
    iter_customer_rows,
    segment_rules,
    write_table,
)


class ExportKind(StrEnum):
    CUSTOMERS = "customers"
    ORDERS = "orders"


class FormatChoice(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


class _Counted:
    def __init__(self, rows: Iterable[Sequence[Any]]) -> None:
        self.rows = rows
        self.count = 0

    def __iter__(self) -> Iterator[Sequence[Any]]:
        for row in self.rows:
            self.count += 1
            yield row


@app.command("export")
def export(
    kind: Annotated[ExportKind, typer.Argument(help="what to export")],
    output: Annotated[Path, typer.Option("--output", "-o", help="file to write")],
    segment: Annotated[
        str | None, typer.Option("--segment", help="only this segment's members (customers)")
    ] = None,
    fmt: Annotated[
        FormatChoice | None,
        typer.Option("--format", help="csv or xlsx (default: from the file name, else csv)"),
    ] = None,
) -> None:
    """Export customers (all live ones, or a segment's members) or orders to CSV or Excel."""
    chosen: ExportFormat = "xlsx" if output.suffix.lower() == ".xlsx" else "csv"
    if fmt is not None:
        chosen = "xlsx" if fmt is FormatChoice.XLSX else "csv"
    if segment is not None and kind is not ExportKind.CUSTOMERS:
        raise fail("--segment applies to customer exports only")
    target_dir = output.resolve().parent
    if not target_dir.is_dir():
        raise fail(f"no such directory: {target_dir}")
    with unit_of_work(write=True) as session:
        details: dict[str, Any] = {"kind": kind.value, "format": chosen, "output": str(output)}
        if kind is ExportKind.CUSTOMERS:
            rules = None
            if segment is not None:
                found = get_segment(session, segment)
                rules = segment_rules(found)
                details["segment_id"] = found.id
            header: Sequence[str] = CUSTOMER_EXPORT_COLUMNS
            rows = _Counted(iter_customer_rows(session, rules))
        else:
            header = ORDER_EXPORT_COLUMNS
            rows = _Counted(iter_order_export_rows(session))
        handle, temp_name = tempfile.mkstemp(prefix=".patron-export-", dir=target_dir)
        try:
            with os.fdopen(handle, "wb") as target:
                write_table(header, rows, target, chosen, title=kind.value)
            os.replace(temp_name, output)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        record_audit(session, "export.run", "export", None, new={**details, "rows": rows.count})
    console.print(f"exported {rows.count} {kind.value} rows")
    out.print(str(output))
