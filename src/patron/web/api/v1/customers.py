"""Customers: CRUD, search, duplicates, merge, erasure, export, timeline, consent and traits."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from patron.auth import Perm, Principal
from patron.customers import (
    ConsentRecordView,
    CustomerCreateInput,
    CustomerView,
    InteractionView,
    TraitView,
    create_customer,
    erase_customer,
    export_customer,
    get_consent,
    get_customer,
    get_interaction,
    get_traits,
    list_customers,
    list_duplicates,
    list_timeline,
    merge_customers,
    put_traits,
    record_consent,
    record_interaction,
    update_customer,
)
from patron.web.deps import DbSession, IfMatch, Requires, check_if_match, make_etag, set_etag
from patron.web.problems import problem_responses
from patron.web.routing import PatronRoute

router = APIRouter(route_class=PatronRoute, tags=["customers"], responses=problem_responses(401, 403, 422))

Purpose = Literal["marketing", "transactional", "profiling"]
ConsentChannel = Literal["email", "sms", "zalo", "line", "phone", "push"]
Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")]
Limit = Annotated[int | None, Query(ge=1, le=200, description="page size (default 50, max 200)")]
Name = Annotated[str, Field(max_length=200)]
Str = Annotated[str, Field(max_length=320)]


def etag_of(customer: CustomerView) -> str:
    return make_etag("customer", customer.id, customer.version)


# ---- schemas ------------------------------------------------------------------------------------


class CustomerFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    first_name: Name | None = Field(default=None, description="given name")
    last_name: Name | None = Field(default=None, description="family name")
    form_of_address: Annotated[str, Field(max_length=50)] | None = Field(
        default=None, description="e.g. anh, chị (vi); Ön, te (hu); คุณ (th); Ms, Mr (en)"
    )
    email: Str | None = None
    emails: list[Str] | None = Field(default=None, max_length=20, description="additional emails")
    phone: Annotated[str, Field(max_length=40)] | None = Field(
        default=None, description="E.164, or national with `country` (e.g. 0912 345 678 + VN)"
    )
    phones: list[Annotated[str, Field(max_length=40)]] | None = Field(default=None, max_length=20)
    language: Literal["en", "vi", "hu", "th"] | None = None
    preferred_channel: ConsentChannel | None = None
    time_zone: Annotated[str, Field(max_length=64)] | None = Field(default=None, description="IANA zone")
    country: Annotated[str, Field(min_length=2, max_length=2)] | None = Field(
        default=None, description="ISO 3166-1 alpha-2"
    )
    birthday: date | None = None
    tags: list[Annotated[str, Field(max_length=50)]] | None = Field(default=None, max_length=100)
    attributes: dict[str, Any] | None = None
    external_id: Annotated[str, Field(max_length=200)] | None = None
    referral_code: Annotated[str, Field(max_length=64)] | None = None
    organisation_id: Annotated[str, Field(max_length=36)] | None = None
    organisation_role: Annotated[str, Field(max_length=100)] | None = None
    is_test: StrictBool | None = None


class CustomerCreate(CustomerFields):
    allow_duplicate_email: StrictBool = Field(
        default=False, description="create even if an active customer has this email"
    )


class CustomerUpdate(CustomerFields):
    pass


class CustomerRead(BaseModel):
    id: str
    external_id: str | None
    first_name: str = Field(description="given name")
    last_name: str = Field(description="family name")
    display_name: str = Field(description="full name in the order of the customer's language")
    salutation: str
    form_of_address: str | None
    email: str | None
    emails: list[str]
    phone: str | None
    phones: list[str]
    language: str
    preferred_channel: str | None
    time_zone: str
    country: str | None
    birthday: date | None
    tags: list[str]
    attributes: dict[str, Any]
    referral_code: str | None
    organisation_id: str | None
    organisation_role: str | None
    is_test: bool
    erased_at: datetime | None
    merged_into_id: str | None
    merged_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: CustomerView) -> CustomerRead:
        return cls(
            id=view.id, external_id=view.external_id, first_name=view.given_name, last_name=view.family_name,
            display_name=view.display_name, salutation=view.salutation, form_of_address=view.form_of_address,
            email=view.email, emails=list(view.emails), phone=view.phone, phones=list(view.phones),
            language=view.language, preferred_channel=view.preferred_channel, time_zone=view.time_zone,
            country=view.country, birthday=view.birthday, tags=list(view.tags), attributes=view.attributes,
            referral_code=view.referral_code, organisation_id=view.organisation_id,
            organisation_role=view.organisation_role, is_test=view.is_test, erased_at=view.erased_at,
            merged_into_id=view.merged_into_id, merged_at=view.merged_at, version=view.version,
            created_at=view.created_at, updated_at=view.updated_at,
        )  # fmt: skip


class CustomerPage(BaseModel):
    items: list[CustomerRead]
    next_cursor: str | None


class DuplicateRead(BaseModel):
    customer_ids: list[str] = Field(description="the pair, lower id first")
    reasons: list[Literal["same_email", "same_phone", "same_name_and_birthday"]]


class DuplicatePage(BaseModel):
    items: list[DuplicateRead]
    next_cursor: str | None


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source_id: Annotated[str, Field(min_length=1, max_length=36)] = Field(
        description="the customer merged into this one (kept as a tombstone with merged_into_id)"
    )


class InteractionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Annotated[str, Field(min_length=1, max_length=20)] = Field(
        description="lower-case slug: web, app, email, sms, zalo, line, phone, push, store, …"
    )
    direction: Literal["inbound", "outbound", "internal"]
    kind: Annotated[str, Field(min_length=1, max_length=50)] = Field(
        description="lower-case slug, e.g. page_view, note, call"
    )
    summary: Annotated[str, Field(max_length=2000)] = ""
    data: dict[str, Any] = Field(default_factory=dict)
    actor: Annotated[str, Field(max_length=100)] | None = None
    occurred_at: datetime | None = Field(default=None, description="ISO 8601 with offset; default now")


class InteractionRead(BaseModel):
    id: str
    customer_id: str
    channel: str
    direction: str
    kind: str
    summary: str
    data: dict[str, Any]
    actor: str
    source: str
    occurred_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, view: InteractionView) -> InteractionRead:
        return cls(**{k: getattr(view, k) for k in cls.model_fields})


class InteractionPage(BaseModel):
    items: list[InteractionRead]
    next_cursor: str | None


class ConsentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Purpose
    channel: ConsentChannel
    status: Literal["granted", "withdrawn"]
    source: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        description="where the decision was made, e.g. signup_form, store, support_call"
    )
    proof: Annotated[str, Field(max_length=4000)] | None = Field(
        default=None, description="evidence: form version, IP, recording id …"
    )
    recorded_at: datetime | None = Field(default=None, description="when it was given; default now")
    expires_at: datetime | None = None


class ConsentRecordRead(BaseModel):
    id: str
    customer_id: str
    purpose: str
    channel: str
    status: str
    source: str
    proof: str | None
    recorded_at: datetime
    expires_at: datetime | None
    actor: str

    @classmethod
    def of(cls, view: ConsentRecordView) -> ConsentRecordRead:
        return cls(**{k: getattr(view, k) for k in cls.model_fields})


class ConsentStateRead(BaseModel):
    purpose: str
    channel: str
    status: Literal["granted", "withdrawn", "expired", "unknown"]
    recorded_at: datetime | None
    expires_at: datetime | None
    source: str | None


class ConsentRead(BaseModel):
    customer_id: str
    current: list[ConsentStateRead] = Field(description="every purpose × channel")
    history: list[ConsentRecordRead] = Field(description="the ledger, newest first")


TraitInputValue = StrictStr | StrictBool | StrictInt | StrictFloat | dict[str, Any] | list[Any] | None


class TraitsPut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Annotated[str, Field(min_length=1, max_length=50)]
    traits: dict[Annotated[str, Field(max_length=100)], TraitInputValue] = Field(
        description="name → value; null deletes the trait", max_length=200
    )


class TraitRead(BaseModel):
    value: Any = Field(description="numbers with a fraction are decimal strings")
    value_type: Literal["text", "number", "bool", "date", "datetime", "json"]
    source: str
    updated_at: datetime


class TraitsRead(BaseModel):
    customer_id: str
    traits: dict[str, TraitRead]


def _trait(view: TraitView) -> TraitRead:
    value: Any = view.value
    if isinstance(value, Decimal):
        value = str(value)
    elif isinstance(value, datetime | date):
        value = value.isoformat()
    return TraitRead(value=value, value_type=view.value_type, source=view.source, updated_at=view.updated_at)


def _changes(body: CustomerFields) -> dict[str, object]:
    changes: dict[str, object] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        changes[name] = list(value) if isinstance(value, list) else value
    return changes


# ---- routes -------------------------------------------------------------------------------------


@router.get("/customers", response_model=CustomerPage)
def list_customers_endpoint(
    db: DbSession,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^[^\x00]*$",
            description="case- and accent-insensitive substring of a name, email or phone; ordered by "
            "relevance (exact field, then prefix, then substring), then id",
        ),
    ] = None,
    tag: Annotated[str | None, Query(max_length=50, pattern=r"^[^\x00]*$")] = None,
    country: Annotated[str | None, Query(min_length=2, max_length=2, pattern="^[A-Za-z]{2}$")] = None,
    language: Literal["en", "vi", "hu", "th"] | None = None,
    organisation_id: Annotated[str | None, Query(max_length=36, pattern=r"^[^\x00]*$")] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    include_erased: bool = False,
    include_merged: bool = False,
    limit: Limit = None,
    cursor: Cursor = None,
    _: Principal = Requires(Perm.CUSTOMERS_READ),
) -> CustomerPage:
    page = list_customers(
        db, q=q, tag=tag, country=country, language=language, organisation_id=organisation_id,
        created_after=created_after, created_before=created_before, include_erased=include_erased,
        include_merged=include_merged, limit=limit, cursor=cursor,
    )  # fmt: skip
    return CustomerPage(items=[CustomerRead.of(c) for c in page.items], next_cursor=page.next_cursor)


@router.post(
    "/customers", response_model=CustomerRead, status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
)  # fmt: skip
def create_customer_endpoint(
    body: CustomerCreate,
    response: Response,
    db: DbSession,
    allow_duplicate_email: Annotated[bool, Query(description="same as the body field")] = False,
    _: Principal = Requires(Perm.CUSTOMERS_WRITE),
) -> CustomerRead:
    data = CustomerCreateInput(
        first_name=body.first_name or "", last_name=body.last_name or "",
        form_of_address=body.form_of_address, email=body.email, emails=tuple(body.emails or ()),
        phone=body.phone, phones=tuple(body.phones or ()), language=body.language,
        preferred_channel=body.preferred_channel, time_zone=body.time_zone, country=body.country,
        birthday=body.birthday, tags=tuple(body.tags or ()), attributes=dict(body.attributes or {}),
        external_id=body.external_id, referral_code=body.referral_code, organisation_id=body.organisation_id,
        organisation_role=body.organisation_role, is_test=bool(body.is_test),
    )  # fmt: skip
    view = create_customer(
        db, data, allow_duplicate_email=allow_duplicate_email or body.allow_duplicate_email
    )
    set_etag(response, etag_of(view))
    response.headers["Location"] = f"/api/v1/customers/{view.id}"
    return CustomerRead.of(view)


@router.get("/customers/duplicates", response_model=DuplicatePage)
def list_duplicates_endpoint(
    db: DbSession, limit: Limit = None, cursor: Cursor = None, _: Principal = Requires(Perm.CUSTOMERS_READ)
) -> DuplicatePage:
    """Suggested merges: pairs sharing an email, a phone, or the same name and birthday."""
    page = list_duplicates(db, limit=limit, cursor=cursor)
    items = [DuplicateRead(customer_ids=list(p.customer_ids), reasons=list(p.reasons)) for p in page.items]
    return DuplicatePage(items=items, next_cursor=page.next_cursor)


@router.get("/customers/{customer_id}", response_model=CustomerRead, responses=problem_responses(404))
def get_customer_endpoint(
    customer_id: str, response: Response, db: DbSession, _: Principal = Requires(Perm.CUSTOMERS_READ)
) -> CustomerRead:
    view = get_customer(db, customer_id)
    set_etag(response, etag_of(view))
    return CustomerRead.of(view)


@router.patch(
    "/customers/{customer_id}", response_model=CustomerRead, responses=problem_responses(404, 409, 412)
)
def update_customer_endpoint(
    customer_id: str,
    body: CustomerUpdate,
    response: Response,
    db: DbSession,
    if_match: IfMatch = None,
    allow_duplicate_email: Annotated[bool, Query()] = False,
    _: Principal = Requires(Perm.CUSTOMERS_WRITE),
) -> CustomerRead:
    """Change the fields given (null clears one). ``If-Match`` with the ETag of a previous read guards
    against lost updates (412 ``etag_mismatch``)."""
    current = get_customer(db, customer_id)
    check_if_match(if_match, etag_of(current))
    view = update_customer(
        db, customer_id, _changes(body), expected_version=current.version,
        allow_duplicate_email=allow_duplicate_email,
    )  # fmt: skip
    set_etag(response, etag_of(view))
    return CustomerRead.of(view)


@router.delete(
    "/customers/{customer_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404)
)
def erase_customer_endpoint(
    customer_id: str, db: DbSession, _: Principal = Requires(Perm.CUSTOMERS_ERASE)
) -> Response:
    """Erasure: anonymise the customer across every domain. The row stays (ledgers stay consistent)."""
    erase_customer(db, customer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/customers/{customer_id}/merge", response_model=CustomerRead, responses=problem_responses(404, 409)
)
def merge_customer_endpoint(
    customer_id: str,
    body: MergeRequest,
    response: Response,
    db: DbSession,
    _: Principal = Requires(Perm.CUSTOMERS_WRITE),
) -> CustomerRead:
    """Merge ``source_id`` into this customer, moving all its history; returns the surviving customer."""
    view = merge_customers(db, source_id=body.source_id, target_id=customer_id)
    set_etag(response, etag_of(view))
    return CustomerRead.of(view)


@router.get(
    "/customers/{customer_id}/export", response_model=dict[str, Any], responses=problem_responses(404)
)
def export_customer_endpoint(
    customer_id: str, db: DbSession, _: Principal = Requires(Perm.EXPORTS_RUN)
) -> dict[str, Any]:
    """Everything Patron holds about the customer (one key per domain)."""
    return export_customer(db, customer_id)


@router.get(
    "/customers/{customer_id}/timeline", response_model=InteractionPage, responses=problem_responses(404)
)
def list_timeline_endpoint(
    customer_id: str,
    db: DbSession,
    channel: Annotated[str | None, Query(max_length=20, pattern=r"^[^\x00]*$")] = None,
    kind: Annotated[str | None, Query(max_length=50, pattern=r"^[^\x00]*$")] = None,
    limit: Limit = None,
    cursor: Cursor = None,
    _: Principal = Requires(Perm.CUSTOMERS_READ),
) -> InteractionPage:
    """Newest first."""
    page = list_timeline(db, customer_id, channel=channel, kind=kind, limit=limit, cursor=cursor)
    return InteractionPage(items=[InteractionRead.of(i) for i in page.items], next_cursor=page.next_cursor)


@router.post(
    "/customers/{customer_id}/timeline", response_model=InteractionRead, status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409),
)  # fmt: skip
def record_interaction_endpoint(
    customer_id: str, body: InteractionCreate, db: DbSession, me: Principal = Requires(Perm.TIMELINE_WRITE)
) -> InteractionRead:
    """Append an interaction: a note, a call, or a web event such as a page view."""
    interaction_id = record_interaction(
        db, customer_id, channel=body.channel, direction=body.direction, kind=body.kind, summary=body.summary,
        data=body.data, actor=body.actor or f"user:{me.user_id}", occurred_at=body.occurred_at, source="api",
    )  # fmt: skip
    return InteractionRead.of(get_interaction(db, interaction_id))


@router.get("/customers/{customer_id}/consent", response_model=ConsentRead, responses=problem_responses(404))
def get_consent_endpoint(
    customer_id: str, db: DbSession, _: Principal = Requires(Perm.CUSTOMERS_READ)
) -> ConsentRead:
    ledger = get_consent(db, customer_id)
    owner = get_customer(db, customer_id)
    return ConsentRead(
        customer_id=owner.merged_into_id or owner.id,
        current=[ConsentStateRead(**vars_of(s)) for s in ledger.current],
        history=[ConsentRecordRead.of(r) for r in ledger.history],
    )


@router.post(
    "/customers/{customer_id}/consent", response_model=ConsentRecordRead, status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409),
)  # fmt: skip
def record_consent_endpoint(
    customer_id: str, body: ConsentCreate, db: DbSession, _: Principal = Requires(Perm.CONSENT_WRITE)
) -> ConsentRecordRead:
    record = record_consent(
        db, customer_id, purpose=body.purpose, channel=body.channel, status=body.status, source=body.source,
        proof=body.proof, expires_at=body.expires_at, recorded_at=body.recorded_at,
    )  # fmt: skip
    return ConsentRecordRead.of(record)


def _traits_read(db: DbSession, customer_id: str) -> TraitsRead:
    traits = get_traits(db, customer_id)
    owner = get_customer(db, customer_id)
    return TraitsRead(
        customer_id=owner.merged_into_id or owner.id, traits={n: _trait(t) for n, t in traits.items()}
    )


@router.get("/customers/{customer_id}/traits", response_model=TraitsRead, responses=problem_responses(404))
def get_traits_endpoint(
    customer_id: str, db: DbSession, _: Principal = Requires(Perm.CUSTOMERS_READ)
) -> TraitsRead:
    return _traits_read(db, customer_id)


@router.put("/customers/{customer_id}/traits", response_model=TraitsRead, responses=problem_responses(404))
def put_traits_endpoint(
    customer_id: str, body: TraitsPut, db: DbSession, _: Principal = Requires(Perm.TRAITS_WRITE)
) -> TraitsRead:
    """Set the named traits (null deletes one); other traits stay as they are."""
    values: dict[str, object] = {
        name: Decimal(str(value)) if isinstance(value, float) else value
        for name, value in body.traits.items()
    }
    put_traits(db, customer_id, values, source=body.source)
    return _traits_read(db, customer_id)


def vars_of(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}
