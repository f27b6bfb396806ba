"""Exports: customers, a segment's members and orders as CSV (UTF-8 with BOM) or Excel, streamed.

The export is audited (who, what, which format) in its own committed transaction before the first
byte is sent; the rows are then read in keyset batches through a read-only session of their own, so
memory stays flat however many rows there are.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from patron.auth import Perm, Principal
from patron.commerce import ORDER_EXPORT_COLUMNS, iter_order_export_rows
from patron.core.audit import record_audit
from patron.core.clock import now
from patron.core.db import Database
from patron.customers import (
    CUSTOMER_EXPORT_COLUMNS,
    MEDIA_TYPES,
    RuleNode,
    get_segment,
    iter_customer_rows,
    segment_rules,
    stream_csv,
    write_xlsx,
)
from patron.web.deps import DbSession, Requires
from patron.web.problems import problem_responses
from patron.web.routing import PatronRoute

router = APIRouter(route_class=PatronRoute, tags=["exports"], responses=problem_responses(401, 403, 422))

Format = Annotated[Literal["csv", "xlsx"], Query(description="csv (UTF-8 with BOM) or xlsx")]
SegmentId = Annotated[
    str | None, Query(max_length=36, pattern=r"^[^\x00]*$", description="only this segment's members")
]
RowSource = Callable[[Session], Iterable[Sequence[Any]]]
_XLSX_CHUNK = 64 * 1024

FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The export file",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            MEDIA_TYPES["xlsx"]: {"schema": {"type": "string", "format": "binary"}},
        },
    },
}


def _csv_body(database: Database, header: Sequence[str], rows: RowSource) -> Iterator[bytes]:
    with database.unit_of_work(write=False) as session:
        yield from stream_csv(header, rows(session))


def _xlsx_body(database: Database, header: Sequence[str], rows: RowSource, title: str) -> Iterator[bytes]:
    with tempfile.TemporaryFile() as spool:
        with database.unit_of_work(write=False) as session:
            write_xlsx(header, rows(session), spool, title=title)
        spool.seek(0)
        while chunk := spool.read(_XLSX_CHUNK):
            yield chunk


def _export(
    request: Request,
    *,
    kind: str,
    fmt: str,
    header: Sequence[str],
    rows: RowSource,
    details: dict[str, Any],
    filename: str,
) -> StreamingResponse:
    database: Database = request.app.state.database
    with database.unit_of_work() as session:
        record_audit(session, "export.run", "export", None, new={"kind": kind, "format": fmt, **details})
    body = _csv_body(database, header, rows) if fmt == "csv" else _xlsx_body(database, header, rows, kind)
    stamp = now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        body,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}-{stamp}.{fmt}"'},
    )


def _segment_rows(rules: RuleNode | None) -> RowSource:
    return lambda session: iter_customer_rows(session, rules)


@router.get(
    "/exports/customers",
    response_class=StreamingResponse,
    responses={**FILE_RESPONSES, **problem_responses(404)},
)
def export_customers(
    request: Request,
    db: DbSession,
    _: Principal = Requires(Perm.EXPORTS_RUN),
    format: Format = "csv",
    segment_id: SegmentId = None,
) -> StreamingResponse:
    """Every live customer (not erased, merged or test), or one segment's members."""
    rules = None
    if segment_id is not None:
        rules = segment_rules(get_segment(db, segment_id))
    return _export(
        request,
        kind="customers",
        fmt=format,
        header=CUSTOMER_EXPORT_COLUMNS,
        rows=_segment_rows(rules),
        details={"segment_id": segment_id},
        filename="customers",
    )


@router.get(
    "/exports/segments/{segment_id}",
    response_class=StreamingResponse,
    responses={**FILE_RESPONSES, **problem_responses(404)},
)
def export_segment(
    segment_id: str,
    request: Request,
    db: DbSession,
    _: Principal = Requires(Perm.EXPORTS_RUN),
    format: Format = "csv",
) -> StreamingResponse:
    """A segment's members, evaluated now."""
    segment = get_segment(db, segment_id)
    return _export(
        request,
        kind="segment",
        fmt=format,
        header=CUSTOMER_EXPORT_COLUMNS,
        rows=_segment_rows(segment_rules(segment)),
        details={"segment_id": segment.id, "segment_name": segment.name},
        filename="segment",
    )


@router.get("/exports/orders", response_class=StreamingResponse, responses=FILE_RESPONSES)
def export_orders(
    request: Request, _: Principal = Requires(Perm.EXPORTS_RUN), format: Format = "csv"
) -> StreamingResponse:
    """Every order, oldest first, one row per order."""
    return _export(
        request,
        kind="orders",
        fmt=format,
        header=ORDER_EXPORT_COLUMNS,
        rows=lambda session: iter_order_export_rows(session),
        details={},
        filename="orders",
    )
