"""RFC 9457 problem+json rendering and the OpenAPI schemas that document it."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from patron.core.errors import PatronError, ValidationFailed

log = logging.getLogger("patron.web")

PROBLEM_MEDIA = "application/problem+json"

#: paths that carry a bearer token (customer portal links): never logged nor echoed in full
_TOKEN_PATH = re.compile(r"^(/portal/t/)[^?#\s]+")


def redact_path(path: str) -> str:
    """``/portal/t/{token}`` → ``/portal/t/[redacted]``; other paths unchanged."""
    return _TOKEN_PATH.sub(r"\1[redacted]", path)


def _instance(request: Request) -> str:
    return redact_path(request.url.path)


class Problem(BaseModel):
    type: str = Field(examples=["urn:patron:problem:not_found"])
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable error code")
    instance: str | None = None


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(Problem):
    errors: list[ValidationIssue]


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:patron:problem:{code}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA, headers=headers)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    428: "precondition_required",
    429: "rate_limited",
}


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        out.append(
            {
                "loc": [p if isinstance(p, int | str) else str(p) for p in err.get("loc", [])],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "invalid")),
            }
        )
    return out


def install_problem_handlers(app: FastAPI) -> None:
    _document_errors_as_problems(app)

    @app.exception_handler(PatronError)
    async def _patron(request: Request, exc: PatronError) -> JSONResponse:
        extra = dict(exc.extra)
        if isinstance(exc, ValidationFailed):
            extra["errors"] = _clean_errors(exc.errors)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(
            exc.status, exc.code, exc.detail, instance=_instance(request), extra=extra, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _clean_errors(exc.errors())
        detail = (
            "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
            or "invalid request"
        )
        return problem_response(
            422, "validation_failed", detail, instance=_instance(request), extra={"errors": errors}
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's "error parsing the body" (not JSON, not UTF-8): a validation problem like any other
            detail = f"the request body could not be parsed: {exc.detail}"
            return problem_response(
                422,
                "invalid_body",
                detail,
                instance=_instance(request),
                extra={"errors": [{"loc": ["body"], "msg": detail, "type": "invalid_body"}]},
            )
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(
            exc.status_code, code, str(exc.detail), instance=_instance(request), headers=headers
        )

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        # optimistic concurrency (``version_id_col``): a concurrent request updated the row first
        if request.headers.get("If-Match"):
            return problem_response(
                412, "etag_mismatch", "the resource changed since you read it (ETag mismatch)",
                instance=_instance(request),
            )  # fmt: skip
        return problem_response(
            409, "concurrent_update", "the resource was changed by another request; read it again and retry",
            instance=_instance(request),
        )  # fmt: skip

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, _instance(request))
        return problem_response(
            500, "internal_error", "an unexpected error occurred", instance=_instance(request)
        )


def _document_errors_as_problems(app: FastAPI) -> None:
    """Error bodies are only ever problem+json: drop the ``application/json`` entry FastAPI adds next to
    it for a response ``model`` (the model is kept so its schema lands in the components). (An
    unreadable body, e.g. not UTF-8, answers 422 ``invalid_body``, already documented.)"""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for item in generate().get("paths", {}).values():
                for operation in item.values():
                    for code, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if str(code)[:1] in "45" and PROBLEM_MEDIA in content:
                            content.pop("application/json", None)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation for error statuses (problem+json)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        model = ValidationProblem if status == 422 else Problem
        out[status] = {
            "model": model,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    return out
