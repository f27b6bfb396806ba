"""Import uploads shared by the API and the console: spool the file to disk, then run the import as a
background job after the response (the batch row is committed first)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from patron.core.audit import Actor
from patron.core.db import Database
from patron.core.errors import PatronError
from patron.imports import ImportKind, ImportOptions, run_import

log = logging.getLogger("patron.web")

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
_BLOCK = 1024 * 1024


def save_upload(file: BinaryIO, filename: str | None) -> tuple[Path, int]:
    """Copy an uploaded file into a fresh temporary directory; returns its path and size."""
    directory = Path(tempfile.mkdtemp(prefix="patron-import-"))
    path = directory / ("upload" + Path(filename or "upload").suffix.lower()[:10])
    size = 0
    try:
        with path.open("wb") as fh:
            while block := file.read(_BLOCK):
                size += len(block)
                if size > MAX_UPLOAD_BYTES:
                    raise PatronError(
                        f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB: import it with "
                        "the patron import command",
                        code="import_file_too_large",
                        status=413,
                    )
                fh.write(block)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return path, size


def run_import_job(
    database: Database,
    batch_id: str,
    kind: ImportKind,
    path: Path,
    options: ImportOptions,
    file_name: str,
    actor: Actor,
) -> None:
    """The background job; the batch records its own failure, the server stays up."""
    try:
        run_import(database, kind, path, options, file_name=file_name, batch_id=batch_id, actor=actor)
    except Exception:
        log.exception("import batch %s failed", batch_id)
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
