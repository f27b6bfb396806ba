"""Imports of customers, orders, products and subscriptions from CSV, Excel and Parquet files.

``run_import`` reads a file in chunks, validates every row with the owning domain's rules, upserts
the accepted records by external id (a re-run changes nothing), keeps the rejected rows with their
reasons, and records what it changed so ``undo_batch`` can take it back. See :mod:`.service`.
"""

from collections.abc import Callable

from patron.core.db import Database
from patron.core.lifecycle import lifecycle as lifecycle_registry
from patron.imports.contracts import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    BatchStatus,
    BatchView,
    ImportOptions,
    ImportReport,
    RejectedRow,
    RejectView,
    UndoReport,
)
from patron.imports.errors import ImportFileError
from patron.imports.lifecycle import ImportsLifecycle
from patron.imports.mapping import FIELDS, KEY_FIELD, FieldSpec, ImportKind, parse_mapping
from patron.imports.parsing import DecimalMode
from patron.imports.readers import FileFormat, detect_format
from patron.imports.rejects import RejectsWriter
from patron.imports.rows import Reason
from patron.imports.service import (
    ImportListener,
    check_file,
    create_batch,
    fail_stalled_batches,
    get_batch,
    iter_rejects,
    list_batches,
    list_rejects,
    run_import,
    undo_batch,
    validate_options,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FIELDS",
    "KEY_FIELD",
    "MAX_CHUNK_SIZE",
    "BatchStatus",
    "BatchView",
    "DecimalMode",
    "FieldSpec",
    "FileFormat",
    "ImportFileError",
    "ImportKind",
    "ImportListener",
    "ImportOptions",
    "ImportReport",
    "ImportsLifecycle",
    "Reason",
    "RejectView",
    "RejectedRow",
    "RejectsWriter",
    "UndoReport",
    "check_file",
    "create_batch",
    "detect_format",
    "fail_stalled_batches",
    "get_batch",
    "iter_rejects",
    "list_batches",
    "list_rejects",
    "parse_mapping",
    "register",
    "run_import",
    "scheduled_jobs",
    "undo_batch",
    "validate_options",
]


def scheduled_jobs(db: Database) -> list[tuple[float, Callable[[], None]]]:
    """Jobs the worker runs: fail batches whose process died mid-import (every 5 minutes)."""

    def fail_stalled() -> None:
        with db.unit_of_work() as session:
            fail_stalled_batches(session)

    return [(300.0, fail_stalled)]


def register() -> None:
    """Register the imports lifecycle handler (called by ``patron.bootstrap.wire``)."""
    lifecycle_registry.register(ImportsLifecycle())
