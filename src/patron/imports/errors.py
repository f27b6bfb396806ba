"""Import errors: a file that cannot be imported at all (a fatal error, exit code 1; 422 on the API)."""

from __future__ import annotations

from typing import Any

from patron.core.errors import ValidationFailed


class ImportFileError(ValidationFailed):
    """The file cannot be read or mapped (unreadable, wrong encoding, unknown columns …)."""

    code = "import_file_invalid"
    title = "The file cannot be imported"

    def __init__(self, detail: str, *, code: str | None = None, extra: dict[str, Any] | None = None) -> None:
        errors = [{"loc": ["file"], "msg": detail, "type": code or self.code}]
        super().__init__(detail, code=code, extra=extra, errors=errors)
