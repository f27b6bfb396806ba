"""Segments: saved rule trees with live counts and member lists (evaluated in the database).

The rule format is documented in :mod:`patron.customers.segment_rules` and in the OpenAPI schema
of ``rules``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from patron.auth import Perm, Principal
from patron.customers import (
    Rule,
    RuleNode,
    Segment,
    SegmentMember,
    check_rule_limits,
    count_segment,
    create_segment,
    delete_segment,
    get_segment,
    list_segment_members,
    list_segments,
    preview_segment,
    update_segment,
)
from patron.web.api.v1.fields import Cursor, Limit, Text
from patron.web.deps import DbSession, IfMatch, Requires, check_if_match, make_etag, set_etag
from patron.web.problems import problem_responses
from patron.web.routing import PatronRoute

router = APIRouter(route_class=PatronRoute, tags=["segments"], responses=problem_responses(401, 403, 422))

RULES_DESCRIPTION = (
    'A rule tree. Groups: {"type": "and"|"or", "rules": [...]}, {"type": "not", "rule": {...}}. '
    "Leaves: field (customer column), tag (has / has_any / has_all), trait (named value; numbers compare "
    "as numbers), consent (purpose x channel in force), organisation (the customer's organisation)."
)


def _limited(rule: RuleNode | None) -> RuleNode | None:
    return None if rule is None else check_rule_limits(rule)


class SegmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    description: str
    rules: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=2000)
    rules: Rule = Field(description=RULES_DESCRIPTION)

    @model_validator(mode="after")
    def _limits(self) -> SegmentCreate:
        _limited(self.rules)
        return self


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text | None = Field(default=None, min_length=1, max_length=200)
    description: Text | None = Field(default=None, max_length=2000)
    rules: Rule | None = Field(default=None, description=RULES_DESCRIPTION)

    @model_validator(mode="after")
    def _limits(self) -> SegmentUpdate:
        _limited(self.rules)
        return self


class SegmentPage(BaseModel):
    items: list[SegmentRead]
    next_cursor: str | None = None


class SegmentMemberRead(BaseModel):
    id: str
    given_name: str
    family_name: str
    email: str | None
    phone: str | None
    country: str | None
    language: str
    organisation_id: str | None
    created_at: datetime


class SegmentMemberPage(BaseModel):
    items: list[SegmentMemberRead]
    next_cursor: str | None = None


class SegmentCount(BaseModel):
    segment_id: str
    by: Literal["customer", "organisation"]
    count: int


class SegmentPreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: Rule = Field(description=RULES_DESCRIPTION)
    sample_size: int = Field(default=10, ge=0, le=50)

    @model_validator(mode="after")
    def _limits(self) -> SegmentPreviewRequest:
        _limited(self.rules)
        return self


class SegmentPreviewRead(BaseModel):
    count: int = Field(description="matching customers")
    organisations: int = Field(description="distinct organisations of the matching customers")
    sample: list[SegmentMemberRead]


def _etag(segment: Segment) -> str:
    return make_etag("segment", segment.id, segment.version)


def _read(segment: Segment, response: Response) -> SegmentRead:
    set_etag(response, _etag(segment))
    return SegmentRead.model_validate(segment)


def _member(member: SegmentMember) -> SegmentMemberRead:
    return SegmentMemberRead(**member.__dict__)


@router.get("/segments", response_model=SegmentPage)
def list_segments_endpoint(
    db: DbSession,
    _: Principal = Requires(Perm.SEGMENTS_READ),
    q: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")] = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> SegmentPage:
    page = list_segments(db, q=q, cursor=cursor, limit=limit)
    return SegmentPage(
        items=[SegmentRead.model_validate(s) for s in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/segments",
    response_model=SegmentRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
)
def create_segment_endpoint(
    body: SegmentCreate, response: Response, db: DbSession, _: Principal = Requires(Perm.SEGMENTS_WRITE)
) -> SegmentRead:
    segment = create_segment(db, name=body.name, description=body.description, rules=body.rules)
    response.headers["Location"] = f"/api/v1/segments/{segment.id}"
    return _read(segment, response)


@router.post("/segments/preview", response_model=SegmentPreviewRead)
def preview_segment_endpoint(
    body: SegmentPreviewRequest, db: DbSession, _: Principal = Requires(Perm.SEGMENTS_READ)
) -> SegmentPreviewRead:
    """The live count and a sample for unsaved rules (the console's segment builder)."""
    preview = preview_segment(db, body.rules, sample_size=body.sample_size)
    return SegmentPreviewRead(
        count=preview.count, organisations=preview.organisations, sample=[_member(m) for m in preview.sample]
    )


@router.get("/segments/{segment_id}", response_model=SegmentRead, responses=problem_responses(404))
def get_segment_endpoint(
    segment_id: str, response: Response, db: DbSession, _: Principal = Requires(Perm.SEGMENTS_READ)
) -> SegmentRead:
    return _read(get_segment(db, segment_id), response)


@router.patch(
    "/segments/{segment_id}", response_model=SegmentRead, responses=problem_responses(404, 409, 412)
)
def update_segment_endpoint(
    segment_id: str,
    body: SegmentUpdate,
    response: Response,
    db: DbSession,
    _: Principal = Requires(Perm.SEGMENTS_WRITE),
    if_match: IfMatch = None,
) -> SegmentRead:
    segment = get_segment(db, segment_id)
    check_if_match(if_match, _etag(segment))
    update_segment(db, segment, name=body.name, description=body.description, rules=body.rules)
    return _read(segment, response)


@router.delete(
    "/segments/{segment_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404, 412)
)
def delete_segment_endpoint(
    segment_id: str, db: DbSession, _: Principal = Requires(Perm.SEGMENTS_WRITE), if_match: IfMatch = None
) -> Response:
    segment = get_segment(db, segment_id)
    check_if_match(if_match, _etag(segment))
    delete_segment(db, segment)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/segments/{segment_id}/count", response_model=SegmentCount, responses=problem_responses(404))
def count_segment_endpoint(
    segment_id: str,
    db: DbSession,
    _: Principal = Requires(Perm.SEGMENTS_READ),
    by: Annotated[
        Literal["customer", "organisation"],
        Query(description="count customers, or the distinct organisations they belong to"),
    ] = "customer",
) -> SegmentCount:
    segment = get_segment(db, segment_id)
    return SegmentCount(segment_id=segment.id, by=by, count=count_segment(db, segment, by=by))


@router.get(
    "/segments/{segment_id}/members", response_model=SegmentMemberPage, responses=problem_responses(404)
)
def list_members_endpoint(
    segment_id: str,
    db: DbSession,
    _: Principal = Requires(Perm.SEGMENTS_READ),
    cursor: Cursor = None,
    limit: Limit = None,
) -> SegmentMemberPage:
    page = list_segment_members(db, get_segment(db, segment_id), cursor=cursor, limit=limit)
    return SegmentMemberPage(items=[_member(m) for m in page.items], next_cursor=page.next_cursor)
