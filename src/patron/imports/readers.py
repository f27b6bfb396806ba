"""Streaming readers for CSV, Excel (.xlsx) and Parquet files.

Each reader gives the header (``columns``) and then the data rows in chunks of ``chunk_size``,
never the whole file in memory for CSV and Parquet (Excel is read with openpyxl's read-only mode,
which streams the sheet XML; its shared-strings table is held in memory).

Line numbers count the header as line 1, like the row numbers a spreadsheet shows: the first data
row is line 2, and a blank line still takes its number.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Protocol

from patron.imports.errors import ImportFileError
from patron.imports.parsing import EncodingSniffer, nfc, normalise_encoding, sniff_delimiter

BLOCK = 1 << 20
Cell = str | int | float | Decimal | bool | date | datetime | time | None

csv.field_size_limit(min(sys.maxsize, 1 << 31 - 1))


class FileFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    PARQUET = "parquet"


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One data row: its line number, its cells (aligned with the header) and a read error."""

    line: int
    values: tuple[Cell, ...]
    error: str | None = None


@dataclass(frozen=True)
class ReadOptions:
    encoding: str | None = None
    delimiter: str | None = None
    chunk_size: int = 2000
    sheet: str | None = None


@dataclass
class Progress:
    """How far a reader got: rows read and, where known, bytes read of the total."""

    rows: int = 0
    done_units: int = 0
    total_units: int | None = None
    unit: str = "bytes"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        if not self.total_units:
            return None
        return min(1.0, self.done_units / self.total_units)


class Source(Protocol):
    columns: tuple[str, ...]
    format: FileFormat
    encoding: str | None
    delimiter: str | None
    progress: Progress

    def chunks(self) -> Iterator[list[SourceRow]]: ...

    def close(self) -> None: ...


def detect_format(path: Path, name: str | None = None) -> FileFormat:
    """By extension (of ``name`` when given, e.g. an upload's file name), else by magic bytes."""
    suffix = Path(name or path.name).suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        return FileFormat.XLSX
    if suffix in {".parquet", ".pq"}:
        return FileFormat.PARQUET
    if suffix in {".csv", ".txt", ".tsv", ".tab"}:
        return FileFormat.CSV
    if suffix == ".xls":
        raise ImportFileError(
            "old Excel .xls files are not supported: save the sheet as .xlsx or CSV",
            code="unsupported_format",
        )
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK\x03\x04"):
        return FileFormat.XLSX
    if head == b"PAR1":
        return FileFormat.PARQUET
    return FileFormat.CSV


def _clean_text(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    return nfc(value)


def _clean_header(names: list[Any]) -> tuple[str, ...]:
    columns = [("" if n is None else nfc(str(n).strip().lstrip("\ufeff"))) for n in names]
    while columns and columns[-1] == "":
        columns.pop()
    if not columns:
        raise ImportFileError("the file has no header row", code="no_header")
    seen: set[str] = set()
    for i, name in enumerate(columns):
        if name == "":
            raise ImportFileError(f"column {i + 1} of the header has no name", code="blank_column_name")
        if name in seen:
            raise ImportFileError(f"the header names column {name!r} twice", code="duplicate_column")
        seen.add(name)
    return tuple(columns)


def detect_file_encoding(path: Path) -> str:
    """Stream the file once through :class:`EncodingSniffer`."""
    sniffer = EncodingSniffer()
    with path.open("rb") as fh:
        while True:
            block = fh.read(BLOCK)
            if not block:
                break
            sniffer.feed(block)
            if sniffer.done:
                break
    return sniffer.result()


class CsvSource:
    format = FileFormat.CSV

    def __init__(self, path: Path, options: ReadOptions) -> None:
        self.path = path
        self.chunk_size = options.chunk_size
        try:
            self.encoding: str | None = (
                normalise_encoding(options.encoding) if options.encoding else detect_file_encoding(path)
            )
        except ValueError as exc:
            raise ImportFileError(str(exc), code="unknown_encoding") from exc
        if self.encoding in {"utf-8", "utf_8"}:
            self.encoding = "utf-8-sig"  # a BOM, if any, is not part of the first column's name
        total = path.stat().st_size
        self.progress = Progress(total_units=total)
        self._raw: IO[bytes] = path.open("rb")
        self._text = io.TextIOWrapper(self._raw, encoding=self.encoding, errors="strict", newline="")
        try:
            sample = self._text.read(64 * 1024)
        except UnicodeDecodeError as exc:
            self.close()
            raise ImportFileError(
                f"the file is not valid {self.encoding}: {exc.reason}; pass --encoding", code="bad_encoding"
            ) from exc
        if options.delimiter:
            self.delimiter: str | None = "\t" if options.delimiter in {"tab", "\\t"} else options.delimiter
            if len(self.delimiter) != 1:
                self.close()
                raise ImportFileError("the delimiter must be one character (or 'tab')", code="bad_delimiter")
        else:
            self.delimiter = sniff_delimiter(sample)
        self._text.seek(0)
        self._reader = csv.reader(self._text, delimiter=self.delimiter, strict=False)
        try:
            header = next(self._reader)
        except StopIteration as exc:
            self.close()
            raise ImportFileError("the file is empty", code="empty_file") from exc
        except (UnicodeDecodeError, csv.Error) as exc:
            self.close()
            raise ImportFileError(f"cannot read the header: {exc}", code="bad_header") from exc
        self.columns = _clean_header(header)

    def chunks(self) -> Iterator[list[SourceRow]]:
        width = len(self.columns)
        line = 1
        chunk: list[SourceRow] = []
        clean = _clean_text
        reader = self._reader
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    f"line {line + 1}: not valid {self.encoding} ({exc.reason}); pass --encoding",
                    code="bad_encoding",
                ) from exc
            except csv.Error as exc:
                raise ImportFileError(f"line {line + 1}: {exc}", code="bad_csv") from exc
            line += 1
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            n = len(record)
            if n > width and any(v.strip() for v in record[width:]):
                chunk.append(
                    SourceRow(
                        line,
                        tuple(clean(v) for v in record[:width]),
                        f"the line has {n} fields but the header has {width}",
                    )
                )
            else:
                values = [clean(v) for v in record[:width]]
                if n < width:
                    values.extend([None] * (width - n))
                chunk.append(SourceRow(line, tuple(values)))
            if len(chunk) >= self.chunk_size:
                self.progress.rows += len(chunk)
                self.progress.done_units = self._raw.tell()
                yield chunk
                chunk = []
        if chunk:
            self.progress.rows += len(chunk)
            yield chunk
        self.progress.done_units = self.progress.total_units or 0

    def close(self) -> None:
        self._text.close()
        self._raw.close()


def _excel_cell(value: Any) -> Cell:
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, int | float | Decimal | bool | date | datetime | time) or value is None:
        return value
    return _clean_text(str(value))


class ExcelSource:
    format = FileFormat.XLSX
    encoding: str | None = None
    delimiter: str | None = None

    def __init__(self, path: Path, options: ReadOptions) -> None:
        import zipfile

        from openpyxl import load_workbook

        self.chunk_size = options.chunk_size
        try:
            self._book = load_workbook(path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise ImportFileError(f"not a readable .xlsx workbook: {exc}", code="bad_xlsx") from exc
        if options.sheet:
            if options.sheet not in self._book.sheetnames:
                names = ", ".join(self._book.sheetnames)
                self.close()
                raise ImportFileError(f"no sheet {options.sheet!r} (sheets: {names})", code="unknown_sheet")
            sheet = self._book[options.sheet]
        else:
            sheet = self._book.worksheets[0]
        self.progress = Progress(total_units=sheet.max_row, unit="rows")
        self._rows = sheet.iter_rows(values_only=True)
        self._line = 0
        header: tuple[Any, ...] | None = None
        for row in self._rows:
            self._line += 1
            if any(v is not None and str(v).strip() for v in row):
                header = row
                break
        if header is None:
            self.close()
            raise ImportFileError("the sheet is empty", code="empty_file")
        self.columns = _clean_header(list(header))

    def chunks(self) -> Iterator[list[SourceRow]]:
        width = len(self.columns)
        chunk: list[SourceRow] = []
        line = self._line
        for row in self._rows:
            line += 1
            values = [_excel_cell(v) for v in row[:width]]
            extra = [v for v in row[width:] if v is not None and str(v).strip()]
            if all(v is None for v in values) and not extra:
                continue
            if len(values) < width:
                values.extend([None] * (width - len(values)))
            error = f"the row has values beyond the header's {width} columns" if extra else None
            chunk.append(SourceRow(line, tuple(values), error))
            if len(chunk) >= self.chunk_size:
                self.progress.rows += len(chunk)
                self.progress.done_units = line
                yield chunk
                chunk = []
        if chunk:
            self.progress.rows += len(chunk)
            yield chunk
        self.progress.done_units = self.progress.total_units or line

    def close(self) -> None:
        self._book.close()


def _parquet_cell(value: Any) -> Cell:
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, int | float | Decimal | bool | date | datetime | time) or value is None:
        return value
    return _clean_text(str(value))


class ParquetSource:
    format = FileFormat.PARQUET
    encoding: str | None = None
    delimiter: str | None = None

    def __init__(self, path: Path, options: ReadOptions) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.chunk_size = options.chunk_size
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise ImportFileError(f"not a readable Parquet file: {exc}", code="bad_parquet") from exc
        self.columns = _clean_header(list(self._file.schema_arrow.names))
        self.progress = Progress(total_units=self._file.metadata.num_rows, unit="rows")

    def chunks(self) -> Iterator[list[SourceRow]]:
        line = 1
        for batch in self._file.iter_batches(batch_size=self.chunk_size):
            columns = [[_parquet_cell(v) for v in col.to_pylist()] for col in batch.columns]
            chunk: list[SourceRow] = []
            for values in zip(*columns, strict=True):
                line += 1
                chunk.append(SourceRow(line, tuple(values)))
            self.progress.rows += len(chunk)
            self.progress.done_units = self.progress.rows
            if chunk:
                yield chunk

    def close(self) -> None:
        self._file.close()


def open_source(path: Path, options: ReadOptions, *, name: str | None = None) -> Source:
    """Open ``path`` with the reader its format needs (raises :class:`ImportFileError`)."""
    if not path.is_file():
        raise ImportFileError(f"no such file: {path}", code="file_not_found")
    fmt = detect_format(path, name)
    if fmt is FileFormat.XLSX:
        return ExcelSource(path, options)
    if fmt is FileFormat.PARQUET:
        return ParquetSource(path, options)
    return CsvSource(path, options)
