"""Organisations (B2B accounts) and their contacts: customers linked with a role.

A customer belongs to at most one organisation (``customers.organisation_id`` with
``organisation_role``). Deleting an organisation unlinks its contacts; erasing or merging a customer
never deletes an organisation (see :class:`OrganisationLifecycle`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.auth import get_user
from patron.core.audit import record_audit
from patron.core.errors import Conflict, NotFound, ValidationFailed
from patron.core.pagination import Page, clamp_limit, decode_cursor, encode_cursor
from patron.core.text import fold
from patron.customers.models import Customer, Organisation

SIZE_BANDS: tuple[str, ...] = ("1-10", "11-50", "51-200", "201-1000", "1000+")

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_FIELDS = ("name", "external_id", "industry", "size", "country", "account_owner_id", "attributes")


def _plausible_id(value: str) -> bool:
    """Ids are at most 36 characters; anything else (or a NUL byte) cannot exist."""
    return 0 < len(value) <= 36 and "\x00" not in value


def _invalid(field: str, message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, errors=[{"loc": [field], "msg": message, "type": code}])


def _snapshot(org: Organisation) -> dict[str, Any]:
    return {field: getattr(org, field) for field in _FIELDS}


def _clean(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise organisation fields (only the keys given)."""
    out = dict(values)
    if "name" in out:
        name = (out["name"] or "").strip()
        if not name:
            raise _invalid("name", "an organisation needs a name", "invalid_organisation_name")
        out["name"] = name
    if out.get("external_id") is not None:
        out["external_id"] = out["external_id"].strip() or None
    if out.get("industry") is not None:
        out["industry"] = out["industry"].strip() or None
    if out.get("size") is not None and out["size"] not in SIZE_BANDS:
        raise _invalid("size", "size must be one of " + ", ".join(SIZE_BANDS), "invalid_size_band")
    if out.get("country") is not None:
        country = out["country"].strip().upper()
        if not _COUNTRY.match(country):
            raise _invalid("country", "country must be an ISO 3166-1 alpha-2 code", "invalid_country")
        out["country"] = country
    if out.get("account_owner_id") is not None:
        try:
            get_user(session, out["account_owner_id"])
        except NotFound as exc:
            raise _invalid(
                "account_owner_id", "the account owner is not a staff user", "account_owner_not_found"
            ) from exc
    if "attributes" in out and out["attributes"] is None:
        out["attributes"] = {}
    return out


def _check_external_id(session: Session, external_id: str | None, exclude_id: str | None = None) -> None:
    if external_id is None:
        return
    query = select(Organisation.id).where(Organisation.external_id == external_id)
    if exclude_id is not None:
        query = query.where(Organisation.id != exclude_id)
    if session.scalar(query) is not None:
        raise Conflict(
            f"an organisation with external id {external_id!r} exists", code="duplicate_external_id"
        )


def _flush(session: Session, external_id: str | None) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # lost a race on the unique external id
        raise Conflict(
            f"an organisation with external id {external_id!r} exists", code="duplicate_external_id"
        ) from exc


def create_organisation(
    session: Session,
    *,
    name: str,
    external_id: str | None = None,
    industry: str | None = None,
    size: str | None = None,
    country: str | None = None,
    account_owner_id: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> Organisation:
    values = _clean(
        session,
        {
            "name": name,
            "external_id": external_id,
            "industry": industry,
            "size": size,
            "country": country,
            "account_owner_id": account_owner_id,
            "attributes": attributes or {},
        },
    )
    _check_external_id(session, values["external_id"])
    org = Organisation(**values, name_folded=fold(values["name"]))
    session.add(org)
    _flush(session, org.external_id)
    record_audit(session, "organisation.created", "organisation", org.id, new=_snapshot(org))
    return org


def get_organisation(session: Session, organisation_id: str) -> Organisation:
    org = session.get(Organisation, organisation_id) if _plausible_id(organisation_id) else None
    if org is None:
        raise NotFound("organisation not found", code="organisation_not_found")
    return org


def update_organisation(session: Session, org: Organisation, **changes: Any) -> Organisation:
    """Change the given fields (``None`` clears an optional one); audited with old and new values."""
    unknown = set(changes) - set(_FIELDS)
    if unknown:
        raise ValueError(f"unknown organisation fields: {sorted(unknown)}")
    values = _clean(session, changes)
    if "external_id" in values:
        _check_external_id(session, values["external_id"], exclude_id=org.id)
    old = _snapshot(org)
    for field, value in values.items():
        setattr(org, field, value)
    if "name" in values:
        org.name_folded = fold(org.name)
    new = _snapshot(org)
    if new != old:
        _flush(session, org.external_id)
        record_audit(session, "organisation.updated", "organisation", org.id, old=old, new=new)
    return org


def delete_organisation(session: Session, org: Organisation) -> None:
    """Delete the organisation; its contacts stay as customers, unlinked."""
    contacts = list(session.scalars(select(Customer.id).where(Customer.organisation_id == org.id)))
    session.execute(
        update(Customer)
        .where(Customer.organisation_id == org.id)
        .values(organisation_id=None, organisation_role=None, version=Customer.version + 1)
        .execution_options(synchronize_session="fetch")
    )
    record_audit(
        session, "organisation.deleted", "organisation", org.id, old={**_snapshot(org), "contacts": contacts}
    )
    session.delete(org)
    session.flush()


def list_organisations(
    session: Session, *, q: str | None = None, cursor: str | None = None, limit: int | None = None
) -> Page[Organisation]:
    """Organisations by name; ``q`` is a case- and accent-insensitive substring of the name."""
    size = clamp_limit(limit)
    query = select(Organisation)
    if q and q.strip():
        query = query.where(Organisation.name_folded.contains(fold(q.strip()), autoescape=True))
    values = decode_cursor(cursor)
    if values is not None:
        if len(values) != 2 or not all(isinstance(v, str) for v in values):
            raise ValidationFailed("malformed cursor", code="invalid_cursor")
        query = query.where(
            tuple_(Organisation.name_folded, Organisation.id) > tuple_(literal(values[0]), literal(values[1]))
        )
    rows = list(session.scalars(query.order_by(Organisation.name_folded, Organisation.id).limit(size + 1)))
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = encode_cursor([rows[-1].name_folded, rows[-1].id])
    return Page(items=rows, next_cursor=next_cursor)


# ------------------------------------------------------------------------------------------- contacts


@dataclass(frozen=True)
class OrganisationContact:
    customer_id: str
    organisation_id: str
    role: str | None
    given_name: str
    family_name: str
    email: str | None
    phone: str | None
    created_at: datetime


def _contact(customer: Customer) -> OrganisationContact:
    assert customer.organisation_id is not None
    return OrganisationContact(
        customer_id=customer.id,
        organisation_id=customer.organisation_id,
        role=customer.organisation_role,
        given_name=customer.given_name,
        family_name=customer.family_name,
        email=customer.email,
        phone=customer.phone_e164,
        created_at=customer.created_at,
    )


def _live_customer(session: Session, customer_id: str) -> Customer:
    customer = session.get(Customer, customer_id) if _plausible_id(customer_id) else None
    if customer is None or customer.erased_at is not None or customer.merged_into_id is not None:
        raise NotFound("customer not found", code="customer_not_found")
    return customer


def add_contact(
    session: Session, org: Organisation, customer_id: str, *, role: str | None = None
) -> OrganisationContact:
    """Link a customer to the organisation with a role (moving them from another one, if any)."""
    customer = _live_customer(session, customer_id)
    role = (role or "").strip() or None
    old = {"organisation_id": customer.organisation_id, "organisation_role": customer.organisation_role}
    customer.organisation_id = org.id
    customer.organisation_role = role
    session.flush()
    new = {"organisation_id": org.id, "organisation_role": role}
    if old != new:
        record_audit(session, "organisation.contact_added", "customer", customer.id, old=old, new=new)
    return _contact(customer)


def remove_contact(session: Session, org: Organisation, customer_id: str) -> None:
    customer = session.get(Customer, customer_id) if _plausible_id(customer_id) else None
    if customer is None or customer.organisation_id != org.id:
        raise NotFound("this customer is not a contact of the organisation", code="contact_not_found")
    old = {"organisation_id": customer.organisation_id, "organisation_role": customer.organisation_role}
    customer.organisation_id = None
    customer.organisation_role = None
    session.flush()
    record_audit(
        session,
        "organisation.contact_removed",
        "customer",
        customer.id,
        old=old,
        new={"organisation_id": None, "organisation_role": None},
    )


def list_contacts(
    session: Session, org: Organisation, *, cursor: str | None = None, limit: int | None = None
) -> Page[OrganisationContact]:
    """Live (not erased, not merged) contacts ordered by (created_at, id)."""
    size = clamp_limit(limit)
    query = select(Customer).where(
        Customer.organisation_id == org.id, Customer.erased_at.is_(None), Customer.merged_into_id.is_(None)
    )
    after = _after(cursor)
    if after is not None:
        query = query.where(after)
    rows = list(session.scalars(query.order_by(Customer.created_at, Customer.id).limit(size + 1)))
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = encode_cursor([rows[-1].created_at.isoformat(), rows[-1].id])
    return Page(items=[_contact(c) for c in rows], next_cursor=next_cursor)


def _after(cursor: str | None) -> ColumnElement[bool] | None:
    values = decode_cursor(cursor)
    if values is None:
        return None
    try:
        created = datetime.fromisoformat(values[0])
        customer_id = values[1]
    except (IndexError, TypeError, ValueError) as exc:
        raise ValidationFailed("malformed cursor", code="invalid_cursor") from exc
    if len(values) != 2 or created.tzinfo is None or not isinstance(customer_id, str):
        raise ValidationFailed("malformed cursor", code="invalid_cursor")
    return tuple_(Customer.created_at, Customer.id) > tuple_(
        literal(created, Customer.created_at.type), literal(customer_id)
    )


def count_contacts(session: Session, org: Organisation) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Customer)
            .where(
                Customer.organisation_id == org.id,
                Customer.erased_at.is_(None),
                Customer.merged_into_id.is_(None),
            )
        )
        or 0
    )


# ------------------------------------------------------------------------------------------ lifecycle


class OrganisationLifecycle:
    """Customer lifecycle hooks for organisation links.

    merge: the surviving customer keeps its own organisation; if it has none it takes the merged
    customer's link and role. erase: the link and role are removed; the organisation stays.
    """

    name = "organisations"

    def merge(self, session: Session, *, source_id: str, target_id: str) -> None:
        source = session.get(Customer, source_id)
        target = session.get(Customer, target_id)
        if source is None or target is None:
            return
        if target.organisation_id is None and source.organisation_id is not None:
            target.organisation_id = source.organisation_id
            target.organisation_role = source.organisation_role
        source.organisation_id = None
        source.organisation_role = None
        session.flush()

    def erase(self, session: Session, *, customer_id: str) -> None:
        customer = session.get(Customer, customer_id)
        if customer is None:
            return
        customer.organisation_id = None
        customer.organisation_role = None
        session.flush()

    def export(self, session: Session, *, customer_id: str) -> dict[str, Any]:
        customer = session.get(Customer, customer_id)
        if customer is None or customer.organisation_id is None:
            return {"organisation": None}
        org = session.get(Organisation, customer.organisation_id)
        return {
            "organisation": None
            if org is None
            else {
                "id": org.id,
                "name": org.name,
                "role": customer.organisation_role,
            }
        }
