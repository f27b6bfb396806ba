"""Domain errors. Each has a stable ``code`` and an HTTP-ish ``status``; adapters render them
(the web layer as RFC 9457 problem+json)."""

from __future__ import annotations

from typing import Any


class PatronError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra: dict[str, Any] = extra or {}


class ValidationFailed(PatronError):
    status = 422
    code = "validation_failed"
    title = "Validation failed"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, code=code, extra=extra)
        self.errors: list[dict[str, Any]] = errors or [{"loc": [], "msg": self.detail, "type": self.code}]


class NotFound(PatronError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(PatronError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PreconditionFailed(PatronError):
    status = 412
    code = "precondition_failed"
    title = "Precondition failed"


class Unauthenticated(PatronError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(PatronError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class TooManyRequests(PatronError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"
