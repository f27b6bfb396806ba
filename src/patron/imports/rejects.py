"""The rejected-rows file: each rejected row as it was read, with its line number and reasons.

Columns: ``_line`` (the header is line 1), the file's own columns, then ``_reasons``. Written as
UTF-8 with a byte-order mark (so Excel opens Vietnamese, Hungarian and Thai text correctly) and
with the source's delimiter. Columns starting with ``_`` are skipped on import, so a corrected
rejects file can be imported again as it is.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO

from patron.imports.contracts import RejectedRow


def default_rejects_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejected.csv")


class RejectsWriter:
    """Opens the file at the first rejected row; a run without rejects leaves no file behind (and
    removes one left by an earlier run)."""

    def __init__(self, path: Path, columns: tuple[str, ...] | list[str] = (), delimiter: str = ",") -> None:
        self.path = path
        self.columns = list(columns)
        self.delimiter = delimiter
        self.count = 0
        self._fh: IO[str] | None = None
        self._writer: csv.DictWriter[str] | None = None

    def set_columns(self, columns: tuple[str, ...] | list[str], delimiter: str | None = None) -> None:
        self.columns = list(columns)
        if delimiter:
            self.delimiter = delimiter

    def write(self, row: RejectedRow) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("w", encoding="utf-8-sig", newline="")
            fields = ["_line", *(c for c in self.columns if c not in {"_line", "_reasons"}), "_reasons"]
            self._writer = csv.DictWriter(
                self._fh, fieldnames=fields, delimiter=self.delimiter, extrasaction="ignore"
            )
            self._writer.writeheader()
        record: dict[str, object] = {k: ("" if v is None else v) for k, v in row.values.items()}
        record["_line"] = row.line
        record["_reasons"] = row.message
        self._writer.writerow(record)
        self.count += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        elif self.path.exists():
            self.path.unlink()
