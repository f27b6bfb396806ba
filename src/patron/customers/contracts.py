"""Contracts the customers domain shares with other domains and adapters (frozen, no ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

PURPOSES: tuple[str, ...] = ("marketing", "transactional", "profiling")
CONSENT_CHANNELS: tuple[str, ...] = ("email", "sms", "zalo", "line", "phone", "push")
CONSENT_STATUSES: tuple[str, ...] = ("granted", "withdrawn")
DIRECTIONS: tuple[str, ...] = ("inbound", "outbound", "internal")

TraitValue = str | int | Decimal | bool | date | datetime | None


@dataclass(frozen=True)
class CustomerCreateInput:
    """A new customer as given by a caller (API, demo, importer). Validated by :func:`prepare_customer`."""

    first_name: str = ""
    last_name: str = ""
    form_of_address: str | None = None
    email: str | None = None
    emails: tuple[str, ...] = ()
    phone: str | None = None
    phones: tuple[str, ...] = ()
    language: str | None = None
    preferred_channel: str | None = None
    time_zone: str | None = None
    country: str | None = None
    birthday: date | str | None = None
    tags: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    referral_code: str | None = None
    organisation_id: str | None = None
    organisation_role: str | None = None
    is_test: bool = False

    def as_raw(self) -> dict[str, object]:
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "form_of_address": self.form_of_address,
            "email": self.email,
            "emails": list(self.emails),
            "phone": self.phone,
            "phones": list(self.phones),
            "language": self.language,
            "preferred_channel": self.preferred_channel,
            "time_zone": self.time_zone,
            "country": self.country,
            "birthday": self.birthday,
            "tags": list(self.tags),
            "attributes": dict(self.attributes),
            "external_id": self.external_id,
            "referral_code": self.referral_code,
            "organisation_id": self.organisation_id,
            "organisation_role": self.organisation_role,
            "is_test": self.is_test,
        }


@dataclass(frozen=True)
class PreparedCustomer:
    """One validated, normalised customer row (what :func:`prepare_customer` returns).

    ``provided`` names the fields present in the input; an update (bulk upsert, PATCH) changes only
    those. Derived fields (folded names, email_folded, phone digits) are filled in."""

    provided: frozenset[str]
    given_name: str = ""
    family_name: str = ""
    form_of_address: str | None = None
    email: str | None = None
    emails: tuple[str, ...] = ()
    phone_e164: str | None = None
    phones: tuple[str, ...] = ()
    language: str = "en"
    preferred_channel: str | None = None
    time_zone: str = "UTC"
    country: str | None = None
    birthday: date | None = None
    tags: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)
    external_id: str | None = None
    referral_code: str | None = None
    organisation_id: str | None = None
    organisation_role: str | None = None
    is_test: bool = False
    # search helpers: national-format digits of every phone (e.g. "0912345678")
    phone_national_digits: tuple[str, ...] = ()
    # when the customer first became one (backfill from another system); None = now
    created_at: datetime | None = None


@dataclass(frozen=True)
class CustomerView:
    id: str
    external_id: str | None
    given_name: str
    family_name: str
    display_name: str
    salutation: str
    form_of_address: str | None
    email: str | None
    emails: tuple[str, ...]
    phone: str | None
    phones: tuple[str, ...]
    language: str
    preferred_channel: str | None
    time_zone: str
    country: str | None
    birthday: date | None
    tags: tuple[str, ...]
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

    @property
    def first_name(self) -> str:
        return self.given_name

    @property
    def last_name(self) -> str:
        return self.family_name


@dataclass(frozen=True)
class TraitView:
    name: str
    value: TraitValue | dict[str, Any] | list[Any]
    value_type: str
    source: str
    updated_at: datetime


@dataclass(frozen=True)
class InteractionView:
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


@dataclass(frozen=True)
class ConsentRecordView:
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


@dataclass(frozen=True)
class ConsentStateView:
    """The consent in force for one purpose × channel: granted, withdrawn, expired or unknown."""

    purpose: str
    channel: str
    status: str
    recorded_at: datetime | None
    expires_at: datetime | None
    source: str | None


@dataclass(frozen=True)
class ConsentLedgerView:
    current: list[ConsentStateView]
    history: list[ConsentRecordView]


@dataclass(frozen=True)
class UpsertResult:
    """One bulk-upsert row: ``action`` is "created", "updated" or "unchanged"; ``before`` (updates only) is a
    JSON-serialisable snapshot that :func:`restore_customers` puts back."""

    customer_id: str
    action: str
    before: dict[str, Any] | None = None


@dataclass(frozen=True)
class DuplicatePair:
    customer_ids: tuple[str, str]
    reasons: tuple[str, ...]
