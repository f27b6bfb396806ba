"""Writing real-world import files in tests: legacy encodings, delimiters, Excel and Parquet."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_TONES = "\u0300\u0301\u0303\u0309\u0323"


def to_cp1258(text: str) -> bytes:
    """Encode Vietnamese as Windows-1258 does: precomposed base letters (ê, ơ, ư …) followed by a
    combining tone mark where the code page has no precomposed form (ễ → ê + U+0303)."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        try:
            out.append(ch.encode("cp1258"))
            continue
        except UnicodeEncodeError:
            pass
        decomposed = unicodedata.normalize("NFD", ch)
        base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONES))
        tone = "".join(c for c in decomposed if c in _TONES)
        out.append(base.encode("cp1258") + tone.encode("cp1258"))
    return b"".join(out)


def csv_text(rows: Sequence[Sequence[Any]], delimiter: str = ",") -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def write_csv(
    path: Path,
    rows: Sequence[Sequence[Any]],
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    bom: bool = False,
) -> Path:
    text = csv_text(rows, delimiter)
    data = to_cp1258(text) if encoding == "cp1258" else text.encode(encoding)
    if bom:
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)
    return path


def write_xlsx(
    path: Path, rows: Sequence[Sequence[Any]], *, number_formats: dict[int, str] | None = None
) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    for col, fmt in (number_formats or {}).items():
        for cells in sheet.iter_rows(min_row=2, min_col=col, max_col=col):
            for cell in cells:
                cell.number_format = fmt
    book.save(path)
    return path


def write_parquet(path: Path, columns: dict[str, list[Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path
