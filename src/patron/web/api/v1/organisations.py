"""Organisations (B2B accounts) and their contacts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from patron.auth import Perm, Principal
from patron.customers import (
    Organisation,
    OrganisationContact,
    add_contact,
    create_organisation,
    delete_organisation,
    get_organisation,
    list_contacts,
    list_organisations,
    remove_contact,
    update_organisation,
)
from patron.web.api.v1.fields import Cursor, Limit
from patron.web.deps import DbSession, IfMatch, Requires, check_if_match, make_etag, set_etag
from patron.web.problems import problem_responses
from patron.web.routing import PatronRoute

router = APIRouter(
    route_class=PatronRoute, tags=["organisations"], responses=problem_responses(401, 403, 422)
)

SizeBand = Literal["1-10", "11-50", "51-200", "201-1000", "1000+"]


def _no_nul(value: Any) -> Any:
    """Reject NUL characters anywhere in a JSON value (PostgreSQL cannot store them)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _no_nul(item)
    elif isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
Attributes = Annotated[dict[str, Any], AfterValidator(_no_nul)]
SearchText = Annotated[
    str | None,
    Query(max_length=200, pattern=r"^[^\x00]*$", description="case- and accent-insensitive part of the name"),
]


class OrganisationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    external_id: str | None
    industry: str | None
    size: str | None = Field(description="size band: 1-10, 11-50, 51-200, 201-1000, 1000+")
    country: str | None
    account_owner_id: str | None = Field(description="staff user id of the account owner")
    attributes: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


class OrganisationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=300)
    external_id: Text | None = Field(default=None, max_length=200)
    industry: Text | None = Field(default=None, max_length=100)
    size: SizeBand | None = None
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2")
    account_owner_id: Text | None = Field(default=None, max_length=36)
    attributes: Attributes = Field(default_factory=dict)


class OrganisationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text | None = Field(default=None, min_length=1, max_length=300)
    external_id: Text | None = Field(default=None, max_length=200)
    industry: Text | None = Field(default=None, max_length=100)
    size: SizeBand | None = None
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")
    account_owner_id: Text | None = Field(default=None, max_length=36)
    attributes: Attributes | None = None


class OrganisationPage(BaseModel):
    items: list[OrganisationRead]
    next_cursor: str | None = None


class ContactRead(BaseModel):
    customer_id: str
    organisation_id: str
    role: str | None
    given_name: str
    family_name: str
    email: str | None
    phone: str | None
    created_at: datetime


class ContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: Text = Field(min_length=1, max_length=36)
    role: Text | None = Field(default=None, max_length=100, examples=["purchasing manager"])


class ContactPage(BaseModel):
    items: list[ContactRead]
    next_cursor: str | None = None


def _etag(org: Organisation) -> str:
    return make_etag("organisation", org.id, org.version)


def _read(org: Organisation, response: Response) -> OrganisationRead:
    set_etag(response, _etag(org))
    return OrganisationRead.model_validate(org)


def _contact(contact: OrganisationContact) -> ContactRead:
    return ContactRead(**contact.__dict__)


@router.get("/organisations", response_model=OrganisationPage)
def list_organisations_endpoint(
    db: DbSession,
    _: Principal = Requires(Perm.ORGANISATIONS_READ),
    q: SearchText = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> OrganisationPage:
    page = list_organisations(db, q=q, cursor=cursor, limit=limit)
    return OrganisationPage(
        items=[OrganisationRead.model_validate(o) for o in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/organisations",
    response_model=OrganisationRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
)
def create_organisation_endpoint(
    body: OrganisationCreate,
    response: Response,
    db: DbSession,
    _: Principal = Requires(Perm.ORGANISATIONS_WRITE),
) -> OrganisationRead:
    org = create_organisation(db, **body.model_dump())
    response.headers["Location"] = f"/api/v1/organisations/{org.id}"
    return _read(org, response)


@router.get(
    "/organisations/{organisation_id}", response_model=OrganisationRead, responses=problem_responses(404)
)
def get_organisation_endpoint(
    organisation_id: str, response: Response, db: DbSession, _: Principal = Requires(Perm.ORGANISATIONS_READ)
) -> OrganisationRead:
    return _read(get_organisation(db, organisation_id), response)


@router.patch(
    "/organisations/{organisation_id}",
    response_model=OrganisationRead,
    responses=problem_responses(404, 409, 412),
)
def update_organisation_endpoint(
    organisation_id: str,
    body: OrganisationUpdate,
    response: Response,
    db: DbSession,
    _: Principal = Requires(Perm.ORGANISATIONS_WRITE),
    if_match: IfMatch = None,
) -> OrganisationRead:
    org = get_organisation(db, organisation_id)
    check_if_match(if_match, _etag(org))
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        changes.pop("name")
    update_organisation(db, org, **changes)
    return _read(org, response)


@router.delete(
    "/organisations/{organisation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 412),
)
def delete_organisation_endpoint(
    organisation_id: str,
    db: DbSession,
    _: Principal = Requires(Perm.ORGANISATIONS_WRITE),
    if_match: IfMatch = None,
) -> Response:
    org = get_organisation(db, organisation_id)
    check_if_match(if_match, _etag(org))
    delete_organisation(db, org)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/organisations/{organisation_id}/contacts", response_model=ContactPage, responses=problem_responses(404)
)
def list_contacts_endpoint(
    organisation_id: str,
    db: DbSession,
    _: Principal = Requires(Perm.ORGANISATIONS_READ),
    cursor: Cursor = None,
    limit: Limit = None,
) -> ContactPage:
    page = list_contacts(db, get_organisation(db, organisation_id), cursor=cursor, limit=limit)
    return ContactPage(items=[_contact(c) for c in page.items], next_cursor=page.next_cursor)


@router.post(
    "/organisations/{organisation_id}/contacts",
    response_model=ContactRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404),
)
def add_contact_endpoint(
    organisation_id: str,
    body: ContactCreate,
    db: DbSession,
    _: Principal = Requires(Perm.ORGANISATIONS_WRITE),
) -> ContactRead:
    org = get_organisation(db, organisation_id)
    return _contact(add_contact(db, org, body.customer_id, role=body.role))


@router.delete(
    "/organisations/{organisation_id}/contacts/{customer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
)
def remove_contact_endpoint(
    organisation_id: str, customer_id: str, db: DbSession, _: Principal = Requires(Perm.ORGANISATIONS_WRITE)
) -> Response:
    remove_contact(db, get_organisation(db, organisation_id), customer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
