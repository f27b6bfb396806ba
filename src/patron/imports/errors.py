"""Import errors: a file that cannot be imported at all (a fatal error, exit code 1)."""

from __future__ import annotations

from patron.core.errors import PatronError


class ImportFileError(PatronError):
    """The file cannot be read or mapped (unreadable, wrong encoding, unknown columns …)."""

    status = 422
    code = "import_file_invalid"
    title = "The file cannot be imported"
