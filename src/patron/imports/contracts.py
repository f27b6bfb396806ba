"""Import contracts: options, reports, rejected rows and batch views (frozen; no ORM objects)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from patron.imports.mapping import ImportKind
from patron.imports.parsing import DecimalMode
from patron.imports.rows import Reason

DEFAULT_CHUNK_SIZE = 2000
MAX_CHUNK_SIZE = 50_000


class BatchStatus(StrEnum):
    """``queued`` → ``running`` → ``completed`` | ``failed``; then ``undone`` after an undo.

    ``completed`` means every row was handled — accepted or rejected (see ``rows_rejected``);
    ``failed`` means a fatal error stopped the import (``error`` says why); the chunks committed
    before it stay and can be undone."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    UNDONE = "undone"


@dataclass(frozen=True)
class ImportOptions:
    mapping: Mapping[str, str] = field(default_factory=dict)
    encoding: str | None = None
    delimiter: str | None = None
    decimal: DecimalMode = DecimalMode.AUTO
    date_format: str | None = None
    time_zone: str | None = None
    sheet: str | None = None
    live: bool = False
    dry_run: bool = False
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def as_dict(self) -> dict[str, Any]:
        return {
            "mapping": dict(self.mapping),
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "decimal": self.decimal.value,
            "date_format": self.date_format,
            "time_zone": self.time_zone,
            "sheet": self.sheet,
            "live": self.live,
            "dry_run": self.dry_run,
            "chunk_size": self.chunk_size,
        }


@dataclass(frozen=True)
class RejectedRow:
    """A rejected row: its line number (the header is line 1), its key and why."""

    line: int
    key: str | None
    reasons: tuple[Reason, ...]
    values: dict[str, str | None]

    @property
    def message(self) -> str:
        return "; ".join(r.text() for r in self.reasons)


@dataclass
class ImportReport:
    """What an import did (or, for a dry run, would do). Counts of records are per record (an order
    of many lines counts once); rows are the file's data rows."""

    kind: ImportKind
    file_name: str
    dry_run: bool
    batch_id: str | None = None
    status: BatchStatus = BatchStatus.RUNNING
    file_format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    decimal: str | None = None
    columns: dict[str, str | None] = field(default_factory=dict)
    rows_total: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    progress: float | None = None
    error: str | None = None
    error_code: str | None = None
    seconds: float = 0.0

    @property
    def fatal(self) -> bool:
        return self.status is BatchStatus.FAILED


@dataclass(frozen=True)
class BatchView:
    id: str
    kind: str
    file_name: str
    file_format: str | None
    file_size: int | None
    encoding: str | None
    delimiter: str | None
    status: str
    dry_run: bool
    live: bool
    options: dict[str, Any]
    columns: dict[str, Any]
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    created: int
    updated: int
    unchanged: int
    progress: float | None
    error: str | None
    actor: str
    actor_label: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    undone_at: datetime | None
    undone_by: str | None


@dataclass(frozen=True)
class RejectView:
    line: int
    external_id: str | None
    message: str
    reasons: list[dict[str, Any]]
    values: dict[str, Any]


@dataclass(frozen=True)
class UndoReport:
    batch: BatchView
    deleted: int
    restored: int
