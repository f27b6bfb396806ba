"""Customer commands: validate, write, audit, emit events. They flush; the adapter commits."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, exists, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from patron.core.audit import AuditEntry, current_actor, record_audit
from patron.core.bulk import insert_rows
from patron.core.clock import ensure_aware, now
from patron.core.errors import PreconditionFailed, ValidationFailed
from patron.core.idempotency import forget_responses_mentioning
from patron.core.ids import new_id
from patron.core.lifecycle import lifecycle
from patron.core.outbox import emit_event, scrub_dispatched_payloads
from patron.core.text import fold
from patron.customers import events
from patron.customers.contracts import (
    CONSENT_CHANNELS,
    CONSENT_STATUSES,
    DIRECTIONS,
    PURPOSES,
    ConsentRecordView,
    CustomerCreateInput,
    CustomerView,
    PreparedCustomer,
    UpsertResult,
)
from patron.customers.errors import CustomerErased, CustomerMerged, DuplicateEmail, DuplicateExternalId
from patron.customers.models import (
    ConsentRecord,
    Customer,
    CustomerEmail,
    CustomerPhone,
    Interaction,
    Organisation,
    Trait,
)
from patron.customers.queries import (
    consent_view,
    extra_contacts,
    get_customer,
    get_traits,
    jsonable,
    load_customer,
    resolve_customer,
    views,
)
from patron.customers.rules import (
    ALIASES,
    build_search_text,
    encode_trait,
    fold_email,
    has_nul,
    is_slug,
    national_digits_for,
    prepare_customer,
)

PROFILE_FIELDS: tuple[str, ...] = (
    "external_id", "given_name", "family_name", "form_of_address", "email", "phone_e164", "language",
    "preferred_channel", "time_zone", "country", "birthday", "tags", "attributes", "referral_code",
    "organisation_id", "organisation_role", "is_test",
)  # fmt: skip


def _invalid(field: str, message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, errors=[{"loc": [field], "msg": message, "type": code}])


def _snapshot(customer: Customer, emails: Sequence[str], phones: Sequence[str]) -> dict[str, Any]:
    snap: dict[str, Any] = {f: getattr(customer, f) for f in PROFILE_FIELDS}
    snap["birthday"] = customer.birthday.isoformat() if customer.birthday else None
    snap["tags"] = list(customer.tags or [])
    snap["attributes"] = dict(customer.attributes or {})
    snap["emails"] = list(emails)
    snap["phones"] = list(phones)
    return snap


def _active(session: Session, customer_id: str) -> Customer:
    customer = load_customer(session, customer_id)
    if customer.erased_at is not None:
        raise CustomerErased(f"customer {customer_id} was erased")
    if customer.merged_into_id is not None:
        raise CustomerMerged(
            f"customer {customer_id} was merged into {customer.merged_into_id}",
            extra={"merged_into_id": customer.merged_into_id},
        )
    return customer


def _writable(session: Session, customer_id: str) -> Customer:
    """For sub-resources (timeline, consent, traits): merged customers resolve to their target."""
    customer = resolve_customer(session, customer_id)
    if customer.erased_at is not None:
        raise CustomerErased(f"customer {customer_id} was erased")
    return customer


def find_email_owner(session: Session, emails: Sequence[str], *, exclude_id: str | None = None) -> str | None:
    """An active customer holding one of these emails (folded: case- and accent-insensitive)."""
    folded = list({fold_email(e) for e in emails if e})
    if not folded:
        return None
    if session.get_bind().dialect.name == "postgresql":
        # hold each email until commit so two concurrent writers cannot both find it free
        # (SQLite's BEGIN IMMEDIATE already serialises writers)
        for value in sorted(folded):
            session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"email:{value}"}
            )
    active = (Customer.erased_at.is_(None), Customer.merged_into_id.is_(None))
    stmt = select(Customer.id).where(
        *active,
        or_(
            Customer.email_folded.in_(folded),
            exists().where(CustomerEmail.customer_id == Customer.id, CustomerEmail.email_folded.in_(folded)),
        ),
    )
    if exclude_id is not None:
        stmt = stmt.where(Customer.id != exclude_id)
    return session.scalar(stmt.order_by(Customer.id).limit(1))


def _check_external_id(session: Session, external_id: str | None, *, exclude_id: str | None = None) -> None:
    if external_id is None:
        return
    stmt = select(Customer.id).where(Customer.external_id == external_id)
    if exclude_id is not None:
        stmt = stmt.where(Customer.id != exclude_id)
    owner = session.scalar(stmt)
    if owner is not None:
        raise DuplicateExternalId(
            f"external id {external_id!r} belongs to customer {owner}", extra={"customer_id": owner}
        )


def _check_organisation(session: Session, organisation_id: str | None) -> None:
    if organisation_id is None:
        return
    if session.get(Organisation, organisation_id) is None:
        raise _invalid(
            "organisation_id", f"no organisation with id {organisation_id!r}", "organisation_not_found"
        )


def _refresh_search(customer: Customer, emails: Sequence[str], phones: Sequence[str]) -> None:
    customer.given_folded = fold(customer.given_name)[:200]
    customer.family_folded = fold(customer.family_name)[:200]
    customer.email_folded = fold_email(customer.email) if customer.email else None
    all_phones = [p for p in [customer.phone_e164, *phones] if p]
    customer.search_text = build_search_text(
        customer.given_name,
        customer.family_name,
        [e for e in [customer.email, *emails] if e],
        all_phones,
        [national_digits_for(p) for p in all_phones],
    )


def _replace_contacts(
    session: Session, customer_id: str, emails: Sequence[str] | None, phones: Sequence[str] | None
) -> None:
    if emails is not None:
        session.execute(delete(CustomerEmail).where(CustomerEmail.customer_id == customer_id))
        for email in emails:
            session.add(CustomerEmail(customer_id=customer_id, email=email, email_folded=fold_email(email)))
    if phones is not None:
        session.execute(delete(CustomerPhone).where(CustomerPhone.customer_id == customer_id))
        for phone in phones:
            session.add(CustomerPhone(customer_id=customer_id, phone_e164=phone))


# ---- create / update -------------------------------------------------------------------------


def create_customer(
    session: Session, data: CustomerCreateInput, *, allow_duplicate_email: bool = False
) -> CustomerView:
    """Create a customer. An email already held by an active customer (primary or extra, folded) is a
    409 ``duplicate_email`` unless ``allow_duplicate_email``; emails and phones are never unique."""
    prepared = prepare_customer(data.as_raw(), today=now().date())
    _check_external_id(session, prepared.external_id)
    _check_organisation(session, prepared.organisation_id)
    if not allow_duplicate_email:
        owner = find_email_owner(session, [e for e in [prepared.email, *prepared.emails] if e])
        if owner is not None:
            raise DuplicateEmail(
                "a customer with this email exists; send allow_duplicate_email=true to create another",
                extra={"customer_id": owner},
            )
    customer = Customer(id=new_id(), **{f: getattr(prepared, f) for f in PROFILE_FIELDS})
    customer.tags = list(prepared.tags)
    _refresh_search(customer, prepared.emails, prepared.phones)
    session.add(customer)
    session.flush()
    _replace_contacts(session, customer.id, prepared.emails, prepared.phones)
    session.flush()
    record_audit(
        session, "customer.created", "customer", customer.id,
        new=_snapshot(customer, prepared.emails, prepared.phones),
    )  # fmt: skip
    emit_event(session, events.CUSTOMER_CREATED, {"customer_id": customer.id})
    return views(session, [customer])[0]


def update_customer(
    session: Session,
    customer_id: str,
    changes: Mapping[str, object],
    *,
    expected_version: int | None = None,
    allow_duplicate_email: bool = False,
) -> CustomerView:
    """Change the given fields (keys as for :func:`prepare_customer`; ``None`` clears). A national phone
    is read with the new country if one is given, else the stored one. ``expected_version`` mismatch →
    412 ``etag_mismatch``."""
    customer = _active(session, customer_id)
    if expected_version is not None and customer.version != expected_version:
        raise PreconditionFailed("the customer changed since you read it", code="etag_mismatch")
    emails_by, phones_by = extra_contacts(session, [customer.id])
    old_emails, old_phones = emails_by.get(customer.id, []), phones_by.get(customer.id, [])
    before = _snapshot(customer, old_emails, old_phones)
    base: dict[str, object] = {k: v for k, v in before.items() if k not in {"emails", "phones"}}
    base.update({"emails": old_emails, "phones": old_phones})
    # ``changes`` may use the API names (first_name/last_name/phone) or the stored ones
    raw = dict(base)
    requested = frozenset(ALIASES.get(k, k) for k in changes)
    for key, value in changes.items():
        target = {"first_name": "given_name", "last_name": "family_name", "phone": "phone_e164"}.get(key, key)
        raw[target] = value
    prepared = prepare_customer(raw, today=now().date())
    if "external_id" in requested:
        _check_external_id(session, prepared.external_id, exclude_id=customer.id)
    if "organisation_id" in requested:
        _check_organisation(session, prepared.organisation_id)
    new_emails = list(prepared.emails) if "emails" in requested else old_emails
    new_phones = list(prepared.phones) if "phones" in requested else old_phones
    if not allow_duplicate_email and ({"email", "emails"} & requested):
        added = [e for e in [prepared.email, *new_emails] if e and e not in [customer.email, *old_emails]]
        owner = find_email_owner(session, added, exclude_id=customer.id)
        if owner is not None:
            raise DuplicateEmail(
                "a customer with this email exists; send allow_duplicate_email=true to use it again",
                extra={"customer_id": owner},
            )
    for name in requested - {"emails", "phones"}:
        value = getattr(prepared, name)
        setattr(customer, name, list(value) if name == "tags" else value)
    _refresh_search(customer, new_emails, new_phones)
    _replace_contacts(
        session, customer.id,
        new_emails if "emails" in requested else None, new_phones if "phones" in requested else None,
    )  # fmt: skip
    after = _snapshot(customer, new_emails, new_phones)
    changed = sorted(k for k in after if after[k] != before[k])
    if changed:
        customer.updated_at = now()
        session.flush()
        record_audit(session, "customer.updated", "customer", customer.id, old=before, new=after)
        emit_event(session, events.CUSTOMER_UPDATED, {"customer_id": customer.id, "fields": changed})
    return get_customer(session, customer.id)


# ---- lifecycle: erase, merge, export -------------------------------------------------------------


def erase_customer(session: Session, customer_id: str) -> None:
    """Anonymise the customer in every domain (each lifecycle handler, in this transaction). Rows stay
    (ledgers and counts stay consistent); personal data goes, also from the audit trail. Erasing an
    erased customer does nothing."""
    customer = load_customer(session, customer_id)
    if customer.erased_at is not None:
        return
    for handler in lifecycle.all():
        handler.erase(session, customer_id=customer.id)
    session.execute(
        update(AuditEntry)
        .where(AuditEntry.entity_type == "customer", AuditEntry.entity_id == customer.id)
        .values(old_values=None, new_values=None)
    )
    forget_responses_mentioning(session, customer.id)
    scrub_dispatched_payloads(session, customer.id)
    record_audit(session, "customer.erased", "customer", customer.id)
    emit_event(session, events.CUSTOMER_ERASED, {"customer_id": customer.id})


def merge_customers(session: Session, *, source_id: str, target_id: str) -> CustomerView:
    """Move everything of ``source`` to ``target`` through every lifecycle handler; the source stays as
    a tombstone with ``merged_into_id``."""
    if source_id == target_id:
        raise _invalid("source_id", "a customer cannot be merged into itself", "merge_into_self")
    target = _active(session, target_id)
    source = _active(session, source_id)
    before = {"target": target.id, "source": source.id}
    for handler in lifecycle.all():
        handler.merge(session, source_id=source.id, target_id=target.id)
    source.merged_into_id = target.id
    source.merged_at = now()
    session.execute(
        update(Customer).where(Customer.merged_into_id == source.id).values(merged_into_id=target.id)
    )
    session.flush()
    record_audit(
        session, "customer.merged", "customer", target.id, old=before, new={"merged_source": source.id}
    )
    record_audit(session, "customer.merged_into", "customer", source.id, new={"merged_into_id": target.id})
    emit_event(session, events.CUSTOMER_MERGED, {"source_id": source.id, "target_id": target.id})
    session.refresh(target)
    return get_customer(session, target.id)


def export_customer(session: Session, customer_id: str) -> dict[str, Any]:
    """Everything every domain holds about the customer, JSON-serialisable, keyed by handler name."""
    customer = load_customer(session, customer_id)
    out: dict[str, Any] = {"customer_id": customer.id, "exported_at": now().isoformat()}
    for handler in lifecycle.all():
        out[handler.name] = handler.export(session, customer_id=customer.id)
    return out


# ---- timeline, consent, traits ----------------------------------------------------------------


def record_interaction(
    session: Session,
    customer_id: str,
    *,
    channel: str,
    direction: str,
    kind: str,
    summary: str,
    data: Mapping[str, object] | None = None,
    actor: str | None = None,
    occurred_at: datetime | None = None,
    source: str = "api",
) -> str:
    """Append to the customer's timeline (a merged customer's id resolves to its target); returns the id.
    ``channel`` and ``kind`` are lower-case slugs (``web``/``page_view``, ``email``/``newsletter.sent``)."""
    errors = []
    if not is_slug(channel, 20):
        errors.append(
            {"loc": ["channel"], "msg": "a lower-case slug of up to 20 characters", "type": "invalid"}
        )
    if direction not in DIRECTIONS:
        errors.append({"loc": ["direction"], "msg": f"one of {', '.join(DIRECTIONS)}", "type": "invalid"})
    if not is_slug(kind, 50):
        errors.append({"loc": ["kind"], "msg": "a lower-case slug of up to 50 characters", "type": "invalid"})
    if occurred_at is not None and occurred_at.tzinfo is None:
        errors.append({"loc": ["occurred_at"], "msg": "needs a time zone offset", "type": "invalid"})
    if len(summary) > 2000:
        errors.append({"loc": ["summary"], "msg": "at most 2000 characters", "type": "too_long"})
    for name, value in (("summary", summary), ("data", dict(data or {})), ("actor", actor)):
        if has_nul(value):
            errors.append({"loc": [name], "msg": "must not contain NUL characters", "type": "invalid_text"})
    if errors:
        raise ValidationFailed("invalid interaction", code="invalid_interaction", errors=errors)
    customer = _writable(session, customer_id)
    row = Interaction(
        id=new_id(), customer_id=customer.id, channel=channel, direction=direction, kind=kind,
        summary=summary, data=dict(data or {}), actor=actor or current_actor.get().ref, source=source[:50],
        occurred_at=occurred_at or now(), created_at=now(),
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row.id


def record_consent(
    session: Session,
    customer_id: str,
    *,
    purpose: str,
    channel: str,
    status: str,
    source: str,
    proof: str | None = None,
    expires_at: datetime | None = None,
    recorded_at: datetime | None = None,
    live: bool = True,
) -> ConsentRecordView:
    """Append a consent decision to the ledger; the latest per purpose × channel is in force.
    Backfill (``live=False``, e.g. the demo) records no ``consent.changed`` event."""
    errors = []
    if purpose not in PURPOSES:
        errors.append({"loc": ["purpose"], "msg": f"one of {', '.join(PURPOSES)}", "type": "invalid"})
    if channel not in CONSENT_CHANNELS:
        errors.append({"loc": ["channel"], "msg": f"one of {', '.join(CONSENT_CHANNELS)}", "type": "invalid"})
    if status not in CONSENT_STATUSES:
        errors.append({"loc": ["status"], "msg": f"one of {', '.join(CONSENT_STATUSES)}", "type": "invalid"})
    if not source.strip() or len(source) > 100:
        errors.append({"loc": ["source"], "msg": "1 to 100 characters", "type": "invalid"})
    for name, value in (("source", source), ("proof", proof)):
        if has_nul(value):
            errors.append({"loc": [name], "msg": "must not contain NUL characters", "type": "invalid_text"})
    at = recorded_at or now()
    if at.tzinfo is None or at > now():
        errors.append({"loc": ["recorded_at"], "msg": "an aware time not in the future", "type": "invalid"})
    if expires_at is not None and (expires_at.tzinfo is None or (at.tzinfo is not None and expires_at <= at)):
        errors.append({"loc": ["expires_at"], "msg": "an aware time after recorded_at", "type": "invalid"})
    if errors:
        raise ValidationFailed("invalid consent record", code="invalid_consent", errors=errors)
    customer = _writable(session, customer_id)
    row = ConsentRecord(
        id=new_id(), customer_id=customer.id, purpose=purpose, channel=channel, status=status,
        source=source.strip(), proof=proof, recorded_at=at, expires_at=expires_at,
        actor=current_actor.get().ref,
    )  # fmt: skip
    session.add(row)
    session.flush()
    record_audit(
        session, "consent.recorded", "customer", customer.id,
        new={"purpose": purpose, "channel": channel, "status": status, "source": row.source},
    )  # fmt: skip
    if live:
        emit_event(
            session, events.CONSENT_CHANGED,
            {"customer_id": customer.id, "purpose": purpose, "channel": channel, "status": status},
        )  # fmt: skip
    return consent_view(row)


def _trait_insert(session: Session) -> Any:
    return sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert


def set_traits(session: Session, customer_id: str, values: Mapping[str, object], *, source: str) -> None:
    """Set named traits (``None`` deletes one). Numbers go to ``value_number``, text, dates and
    datetimes (ISO 8601) to ``value_text``, booleans and JSON to ``value_json``. One upsert per call;
    a merged customer's id resolves to its target. Erased customers keep taking numeric traits."""
    if not values:
        return
    bad = [n for n in values if not isinstance(n, str) or not is_slug(n, 100)]
    if bad or not source or len(source) > 50 or has_nul(source):
        errors = [
            {"loc": ["traits", str(n)], "msg": "a lower-case slug name", "type": "invalid"} for n in bad
        ]
        if not source or len(source) > 50 or has_nul(source):
            errors.append({"loc": ["source"], "msg": "1 to 50 characters", "type": "invalid"})
        raise ValidationFailed("invalid traits", code="invalid_traits", errors=errors)
    customer = resolve_customer(session, customer_id)
    rows, removed = [], []
    errors = []
    stamp = now()
    for name, value in values.items():
        if value is None:
            removed.append(name)
            continue
        if has_nul(value):
            errors.append(
                {"loc": ["traits", name], "msg": "must not contain NUL characters", "type": "invalid"}
            )
            continue
        try:
            kind, text_value, number, json_value = encode_trait(value)
        except ValueError as exc:
            errors.append({"loc": ["traits", name], "msg": str(exc), "type": "invalid"})
            continue
        rows.append(
            {
                "customer_id": customer.id, "name": name, "value_type": kind, "value_text": text_value,
                "value_number": number, "value_json": json_value, "source": source, "updated_at": stamp,
            }
        )  # fmt: skip
    if errors:
        raise ValidationFailed("invalid traits", code="invalid_traits", errors=errors)
    if removed:
        session.execute(delete(Trait).where(Trait.customer_id == customer.id, Trait.name.in_(removed)))
    if rows:
        stmt = _trait_insert(session)(Trait).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Trait.customer_id, Trait.name],
            set_={
                c: getattr(stmt.excluded, c)
                for c in ("value_type", "value_text", "value_number", "value_json", "source", "updated_at")
            },
        )
        session.execute(stmt)


def put_traits(session: Session, customer_id: str, values: Mapping[str, object], *, source: str) -> None:
    """:func:`set_traits` for a person (API): audited with old and new values."""
    old = {n: jsonable(t.value) for n, t in get_traits(session, customer_id).items() if n in values}
    set_traits(session, customer_id, values, source=source)
    new = {n: jsonable(v) for n, v in values.items()}
    record_audit(
        session, "traits.set", "customer", resolve_customer(session, customer_id).id, old=old, new=new
    )


# ---- bulk: import and undo -------------------------------------------------------------------

_TABLE: Table = Customer.__table__  # type: ignore[assignment]
_EMAILS: Table = CustomerEmail.__table__  # type: ignore[assignment]
_PHONES: Table = CustomerPhone.__table__  # type: ignore[assignment]
_CHUNK = 500
_EMAIL_COLUMNS = ("id", "customer_id", "email", "email_folded", "label")
_PHONE_COLUMNS = ("id", "customer_id", "phone_e164", "label")
_BULK = 5000


_TRAIT_COLUMNS = ("value_type", "value_text", "value_number", "value_json", "source", "updated_at")


def _resolve_many(session: Session, customer_ids: Sequence[str]) -> dict[str, str]:
    """{given id: id of the customer that holds the history now} (merges followed), in a few set-wise
    queries; an unknown id raises :class:`CustomerNotFound` like :func:`resolve_customer`."""
    merged_into: dict[str, str | None] = {}
    pending = [cid for cid in dict.fromkeys(customer_ids) if cid]
    for _ in range(20):
        wanted = [cid for cid in pending if cid not in merged_into]
        if not wanted:
            break
        for start in range(0, len(wanted), _CHUNK):
            part = wanted[start : start + _CHUNK]
            for cid, target in session.execute(
                select(_TABLE.c.id, _TABLE.c.merged_into_id).where(_TABLE.c.id.in_(part))
            ):
                merged_into[cid] = target
        for cid in wanted:
            if cid not in merged_into:
                load_customer(session, cid)  # raises CustomerNotFound
        pending = [t for t in merged_into.values() if t is not None and t not in merged_into]
    resolved: dict[str, str] = {}
    for cid in dict.fromkeys(customer_ids):
        current, seen = cid, {cid}
        while (target := merged_into.get(current)) is not None and target not in seen:
            current = target
            seen.add(current)
        resolved[cid] = current
    return resolved


def set_traits_bulk(session: Session, rows: Sequence[tuple[str, str, object]], *, source: str) -> None:
    """:func:`set_traits` for many customers at once: ``rows`` are ``(customer_id, name, value)``
    (``None`` deletes the trait; a later row for the same customer and name wins). Same validation and
    encoding, merged ids resolve to their target; written with one executemany upsert and one delete
    per trait name instead of statements per customer (imports refresh thousands of customers)."""
    if not rows:
        return
    bad = list(dict.fromkeys(n for _, n, _ in rows if not isinstance(n, str) or not is_slug(n, 100)))
    if bad or not source or len(source) > 50 or has_nul(source):
        errors = [
            {"loc": ["traits", str(n)], "msg": "a lower-case slug name", "type": "invalid"} for n in bad
        ]
        if not source or len(source) > 50 or has_nul(source):
            errors.append({"loc": ["source"], "msg": "1 to 50 characters", "type": "invalid"})
        raise ValidationFailed("invalid traits", code="invalid_traits", errors=errors)
    resolved = _resolve_many(session, [cid for cid, _, _ in rows])
    latest: dict[tuple[str, str], object] = {}
    for cid, name, value in rows:
        key = (resolved[cid], name)
        latest.pop(key, None)  # keep the order of the last write
        latest[key] = value
    upserts: list[dict[str, Any]] = []
    removed: dict[str, list[str]] = {}
    errors = []
    stamp = now()
    for (cid, name), value in latest.items():
        if value is None:
            removed.setdefault(name, []).append(cid)
            continue
        if has_nul(value):
            errors.append(
                {"loc": ["traits", name], "msg": "must not contain NUL characters", "type": "invalid"}
            )
            continue
        try:
            kind, text_value, number, json_value = encode_trait(value)
        except ValueError as exc:
            errors.append({"loc": ["traits", name], "msg": str(exc), "type": "invalid"})
            continue
        upserts.append(
            {
                "customer_id": cid, "name": name, "value_type": kind, "value_text": text_value,
                "value_number": number, "value_json": json_value, "source": source, "updated_at": stamp,
            }
        )  # fmt: skip
    if errors:
        raise ValidationFailed("invalid traits", code="invalid_traits", errors=errors)
    traits: Table = Trait.__table__  # type: ignore[assignment]
    for name, ids in removed.items():
        for start in range(0, len(ids), _CHUNK):
            session.execute(
                delete(traits).where(
                    traits.c.name == name, traits.c.customer_id.in_(ids[start : start + _CHUNK])
                )
            )
    if upserts:
        stmt = _trait_insert(session)(traits)
        stmt = stmt.on_conflict_do_update(
            index_elements=[traits.c.customer_id, traits.c.name],
            set_={c: getattr(stmt.excluded, c) for c in _TRAIT_COLUMNS},
        )
        for start in range(0, len(upserts), _BULK):
            session.execute(stmt, upserts[start : start + _BULK])


def _row_search(
    row: Mapping[str, Any],
    emails: Sequence[str],
    phones: Sequence[str],
    known: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    all_phones = [p for p in [row.get("phone_e164"), *phones] if p]
    known = known or {}
    given, family = fold(row.get("given_name") or ""), fold(row.get("family_name") or "")
    return {
        "given_folded": given[:200],
        "family_folded": family[:200],
        "email_folded": fold_email(row["email"]) if row.get("email") else None,
        "search_text": build_search_text(
            "", "", [e for e in [row.get("email"), *emails] if e], all_phones,
            [known.get(p) or national_digits_for(p) for p in all_phones], folded=(given, family),
        ),
    }  # fmt: skip


def _row_snapshot(row: Mapping[str, Any], emails: Sequence[str], phones: Sequence[str]) -> dict[str, Any]:
    snap: dict[str, Any] = {"id": row["id"]}
    for f in PROFILE_FIELDS:
        value = row[f]
        snap[f] = value.isoformat() if isinstance(value, date) else value
    snap["tags"] = list(row["tags"] or [])
    snap["attributes"] = dict(row["attributes"] or {})
    snap["emails"] = list(emails)
    snap["phones"] = list(phones)
    created = row.get("created_at")
    if isinstance(created, datetime):  # "customer since": an import may correct it, an undo restores it
        snap["created_at"] = ensure_aware(created).isoformat()
    return snap


def _fts_delete(session: Session, ids: Sequence[str]) -> None:
    """Remove these customers' current text from the SQLite FTS index (before their rows change)."""
    for start in range(0, len(ids), _BULK):
        session.execute(
            text(
                "INSERT INTO customer_search_fts (customer_search_fts, rowid, search_text) "
                "SELECT 'delete', s.id, c.search_text FROM customer_search s JOIN customers c "
                "ON c.id = s.customer_id WHERE s.customer_id IN (SELECT value FROM json_each(:ids))"
            ),
            {"ids": json.dumps(list(ids[start : start + _BULK]))},
        )


def _fts_index_new(session: Session, rows: Sequence[tuple[str, str]]) -> None:
    """Index new customers (id, search text) in the SQLite FTS index: each gets the next rowid of
    ``customer_search`` (the write lock is held, so no one else numbers rows meanwhile)."""
    if not rows:
        return
    first = int(session.scalar(text("SELECT coalesce(max(id), 0) FROM customer_search")) or 0) + 1
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.executemany(
            "INSERT INTO customer_search (id, customer_id) VALUES (?, ?)",
            [(first + i, cid) for i, (cid, _) in enumerate(rows)],
        )
        cursor.executemany(
            "INSERT INTO customer_search_fts (rowid, search_text) VALUES (?, ?)",
            [(first + i, search) for i, (_, search) in enumerate(rows)],
        )
    finally:
        cursor.close()


def _fts_insert(session: Session, created: Sequence[str], changed: Sequence[str]) -> None:
    """Index these customers' current text in the SQLite FTS index (new rows get their rowid first)."""
    for start in range(0, len(created), _BULK):
        session.execute(
            text("INSERT INTO customer_search (customer_id) SELECT value FROM json_each(:ids)"),
            {"ids": json.dumps(list(created[start : start + _BULK]))},
        )
    ids = [*created, *changed]
    for start in range(0, len(ids), _BULK):
        session.execute(
            text(
                "INSERT INTO customer_search_fts (rowid, search_text) "
                "SELECT s.id, c.search_text FROM customer_search s JOIN customers c "
                "ON c.id = s.customer_id WHERE s.customer_id IN (SELECT value FROM json_each(:ids))"
            ),
            {"ids": json.dumps(list(ids[start : start + _BULK]))},
        )


def upsert_customers_bulk(
    session: Session, rows: Sequence[PreparedCustomer], *, live: bool = False
) -> list[UpsertResult]:
    """Insert or update (by ``external_id``) many prepared rows with executemany statements: no ORM
    objects, no per-row flush. An update changes only the row's ``provided`` fields. The search index
    is kept by the database (triggers on SQLite; the GIN index on PostgreSQL). Backfill by default: no
    events and no per-row audit unless ``live``. Returns one result per input row, in order."""
    stamp = now()
    ext_ids = list(dict.fromkeys(r.external_id for r in rows if r.external_id))
    existing: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ext_ids), _CHUNK):
        chunk = ext_ids[start : start + _CHUNK]
        for found in session.execute(select(_TABLE).where(_TABLE.c.external_id.in_(chunk))).mappings():
            existing[found["external_id"]] = dict(found)
    emails_by, phones_by = (
        extra_contacts(session, [r["id"] for r in existing.values()]) if existing else ({}, {})
    )

    working: dict[str, dict[str, Any]] = {}  # key -> row values (new or updated)
    lists: dict[str, tuple[list[str], list[str], bool, bool]] = {}
    befores: dict[str, dict[str, Any] | None] = {}
    created: set[str] = set()
    seen: set[str] = set()
    results: list[UpsertResult] = []
    known: dict[str, str] = {}
    for index, prepared in enumerate(rows):
        phones_of_row = [p for p in (prepared.phone_e164, *prepared.phones) if p]
        known.update(zip(phones_of_row, prepared.phone_national_digits, strict=False))
        key = prepared.external_id or f"#row{index}"
        values = working.get(key)
        if values is None and prepared.external_id in existing:
            values = dict(existing[prepared.external_id])
            cid = values["id"]
            emails, phones = list(emails_by.get(cid, [])), list(phones_by.get(cid, []))
            befores[key] = _row_snapshot(values, emails, phones)
            lists[key] = (emails, phones, False, False)
            working[key] = values
            fields = prepared.provided - {"emails", "phones"}
        elif values is None:
            values = {f: getattr(prepared, f) for f in PROFILE_FIELDS}
            values.update(id=new_id(), created_at=prepared.created_at or stamp, version=1, erased_at=None,
                          merged_into_id=None, merged_at=None)  # fmt: skip
            values["tags"] = list(prepared.tags)
            lists[key] = (list(prepared.emails), list(prepared.phones), True, True)
            working[key] = values
            created.add(key)
            befores[key] = None
            fields = frozenset()
        else:
            fields = prepared.provided - {"emails", "phones"}
        for name in fields:
            value = getattr(prepared, name)
            if name == "created_at" and value is None:
                continue  # a blank "customer since" never clears it
            values[name] = list(value) if name == "tags" else value
        emails, phones, emails_set, phones_set = lists[key]
        if "emails" in prepared.provided and key not in created:
            emails, emails_set = list(prepared.emails), True
        if "phones" in prepared.provided and key not in created:
            phones, phones_set = list(prepared.phones), True
        lists[key] = (emails, phones, emails_set, phones_set)
        action = "created" if key in created and key not in seen else "updated"
        seen.add(key)
        results.append(UpsertResult(values["id"], action, befores[key]))

    inserts, updates = [], []
    email_rows, phone_rows, clear_emails, clear_phones = [], [], [], []
    unchanged: set[str] = set()  # rows an import gives again as they are: no write, no version bump
    for key, values in working.items():
        emails, phones, emails_set, phones_set = lists[key]
        if key not in created and _row_snapshot(values, emails, phones) == befores[key]:
            unchanged.add(values["id"])
            continue
        values.update(_row_search(values, emails, phones, known))
        values["updated_at"] = stamp
        cid = values["id"]
        if key in created:
            inserts.append(values)
        else:
            values["version"] = int(values["version"]) + 1
            updates.append(values)
            if emails_set:
                clear_emails.append(cid)
            if phones_set:
                clear_phones.append(cid)
        if emails_set:
            email_rows += [
                {"id": new_id(), "customer_id": cid, "email": e, "email_folded": fold_email(e), "label": None}
                for e in emails
            ]
        if phones_set:
            phone_rows += [
                {"id": new_id(), "customer_id": cid, "phone_e164": p, "label": None} for p in phones
            ]
    columns = [c.name for c in _TABLE.columns]
    sqlite = session.get_bind().dialect.name == "sqlite"
    if sqlite:  # maintain the FTS index set-wise below instead of row by row in triggers
        session.execute(text("INSERT INTO customer_search_suspended (id) VALUES (1)"))
        _fts_delete(session, [v["id"] for v in updates])
    if inserts:
        insert_rows(session, _TABLE, columns, [tuple(map(v.get, columns)) for v in inserts])
    if updates:
        stmt = (
            update(_TABLE)
            .where(_TABLE.c.id == bindparam("_id"))
            .values({c: bindparam(c) for c in columns if c != "id"})
        )
        params = []
        for v in updates:
            p = {c: v.get(c) for c in columns if c != "id"}
            p["_id"] = v["id"]
            params.append(p)
        session.execute(stmt, params)
    if sqlite:
        _fts_index_new(session, [(v["id"], v["search_text"]) for v in inserts])
        _fts_insert(session, [], [v["id"] for v in updates])
        session.execute(text("DELETE FROM customer_search_suspended"))
    for ids, table in ((clear_emails, _EMAILS), (clear_phones, _PHONES)):
        for start in range(0, len(ids), _CHUNK):
            session.execute(delete(table).where(table.c.customer_id.in_(ids[start : start + _CHUNK])))
    if email_rows:
        insert_rows(
            session, _EMAILS, _EMAIL_COLUMNS, [tuple(r[c] for c in _EMAIL_COLUMNS) for r in email_rows]
        )
    if phone_rows:
        insert_rows(
            session, _PHONES, _PHONE_COLUMNS, [tuple(r[c] for c in _PHONE_COLUMNS) for r in phone_rows]
        )
    if updates:
        session.expire_all()  # ORM objects loaded earlier must not shadow the new values
    if live:
        for values in inserts:
            emit_event(session, events.CUSTOMER_CREATED, {"customer_id": values["id"]})
        for values in updates:
            emit_event(session, events.CUSTOMER_UPDATED, {"customer_id": values["id"], "fields": ["import"]})
    if unchanged:
        results = [UpsertResult(r.customer_id, "unchanged", r.before) if r.customer_id in unchanged else r
                   for r in results]  # fmt: skip
    return results


def delete_customers_hard(session: Session, ids: Sequence[str]) -> int:
    """Delete customers and their rows outright (import undo of created rows). Returns the count."""
    deleted = 0
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        for model in (CustomerEmail, CustomerPhone, ConsentRecord, Interaction, Trait):
            session.execute(delete(model).where(model.customer_id.in_(chunk)))
        result = session.execute(delete(_TABLE).where(_TABLE.c.id.in_(chunk)))
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


def restore_customers(session: Session, snapshots: Sequence[Mapping[str, Any]]) -> int:
    """Put back customers as :func:`upsert_customers_bulk` reported them in ``before`` (import undo).
    Customers deleted since are skipped. Returns how many were restored."""
    restored = 0
    stamp = now()
    for snap in snapshots:
        cid = str(snap["id"])
        current = session.execute(select(_TABLE.c.version).where(_TABLE.c.id == cid)).scalar()
        if current is None:
            continue
        values: dict[str, Any] = {f: snap.get(f) for f in PROFILE_FIELDS}
        birthday = values.get("birthday")
        values["birthday"] = date.fromisoformat(birthday) if isinstance(birthday, str) else birthday
        values["tags"] = list(values.get("tags") or [])
        values["attributes"] = dict(values.get("attributes") or {})
        values["is_test"] = bool(values.get("is_test"))
        emails, phones = list(snap.get("emails") or []), list(snap.get("phones") or [])
        values.update(_row_search(values, emails, phones))
        values.update(version=int(current) + 1, updated_at=stamp)
        if isinstance(snap.get("created_at"), str):
            values["created_at"] = datetime.fromisoformat(snap["created_at"])
        session.execute(update(_TABLE).where(_TABLE.c.id == cid).values(**values))
        session.execute(delete(_EMAILS).where(_EMAILS.c.customer_id == cid))
        session.execute(delete(_PHONES).where(_PHONES.c.customer_id == cid))
        if emails:
            session.execute(
                insert(_EMAILS),
                [
                    {"id": new_id(), "customer_id": cid, "email": e, "email_folded": fold_email(e)}
                    for e in emails
                ],
            )
        if phones:
            session.execute(
                insert(_PHONES), [{"id": new_id(), "customer_id": cid, "phone_e164": p} for p in phones]
            )
        restored += 1
    session.expire_all()
    return restored
