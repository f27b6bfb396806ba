"""The customers domain's own lifecycle handler: profile, emails, phones, consent, timeline, traits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from patron.core.clock import now
from patron.customers.models import (
    ConsentRecord,
    Customer,
    CustomerEmail,
    CustomerPhone,
    Interaction,
    Trait,
)
from patron.customers.queries import (
    consent_view,
    extra_contacts,
    interaction_view,
    jsonable,
    load_customer,
    to_view,
    trait_view,
)
from patron.customers.rules import fold_email
from patron.customers.service import _refresh_search

# profile fields a merge copies from the source when the target has none
_FILL = (
    "given_name", "family_name", "form_of_address", "email", "phone_e164", "preferred_channel", "country",
    "birthday", "referral_code", "organisation_id", "organisation_role",
)  # fmt: skip


class CustomerLifecycleHandler:
    name = "customers"

    def merge(self, session: Session, *, source_id: str, target_id: str) -> None:
        source = load_customer(session, source_id)
        target = load_customer(session, target_id)
        emails_by, phones_by = extra_contacts(session, [source.id, target.id])
        for field in _FILL:
            if getattr(target, field) in (None, "") and getattr(source, field) not in (None, ""):
                setattr(target, field, getattr(source, field))
                if field == "email":
                    source_email = source.email
                    emails_by[source.id] = [e for e in emails_by.get(source.id, []) if e != source_email]
                if field == "phone_e164":
                    phones_by[source.id] = [p for p in phones_by.get(source.id, []) if p != source.phone_e164]
        target.tags = list(dict.fromkeys([*(target.tags or []), *(source.tags or [])]))
        target.attributes = {**(source.attributes or {}), **(target.attributes or {})}
        # contacts: every email and phone of the source becomes an extra one of the target
        have_emails = {fold_email(e) for e in [target.email, *emails_by.get(target.id, [])] if e}
        new_emails = list(emails_by.get(target.id, []))
        for email in [source.email, *emails_by.get(source.id, [])]:
            if email and fold_email(email) not in have_emails:
                have_emails.add(fold_email(email))
                new_emails.append(email)
                session.add(CustomerEmail(customer_id=target.id, email=email, email_folded=fold_email(email)))
        have_phones = {p for p in [target.phone_e164, *phones_by.get(target.id, [])] if p}
        new_phones = list(phones_by.get(target.id, []))
        for phone in [source.phone_e164, *phones_by.get(source.id, [])]:
            if phone and phone not in have_phones:
                have_phones.add(phone)
                new_phones.append(phone)
                session.add(CustomerPhone(customer_id=target.id, phone_e164=phone))
        session.execute(delete(CustomerEmail).where(CustomerEmail.customer_id == source.id))
        session.execute(delete(CustomerPhone).where(CustomerPhone.customer_id == source.id))
        # history moves as it is
        session.execute(
            update(ConsentRecord).where(ConsentRecord.customer_id == source.id).values(customer_id=target.id)
        )
        session.execute(
            update(Interaction).where(Interaction.customer_id == source.id).values(customer_id=target.id)
        )
        # traits: the more recently updated value wins
        target_traits = {
            t.name: t for t in session.scalars(select(Trait).where(Trait.customer_id == target.id))
        }
        for trait in list(session.scalars(select(Trait).where(Trait.customer_id == source.id))):
            mine = target_traits.get(trait.name)
            if mine is None or trait.updated_at > mine.updated_at:
                if mine is not None:
                    session.delete(mine)
                    session.flush()
                session.add(
                    Trait(
                        customer_id=target.id, name=trait.name, value_type=trait.value_type,
                        value_text=trait.value_text, value_number=trait.value_number,
                        value_json=trait.value_json, source=trait.source, updated_at=trait.updated_at,
                    )
                )  # fmt: skip
            session.delete(trait)
        _refresh_search(target, new_emails, new_phones)
        target.updated_at = now()
        session.flush()

    def erase(self, session: Session, *, customer_id: str) -> None:
        customer = load_customer(session, customer_id)
        for field in (
            "given_name", "family_name", "given_folded", "family_folded", "search_text",
        ):  # fmt: skip
            setattr(customer, field, "")
        for field in (
            "form_of_address", "email", "email_folded", "phone_e164", "birthday", "external_id",
            "referral_code", "organisation_role", "preferred_channel",
        ):  # fmt: skip
            setattr(customer, field, None)
        customer.tags = []
        customer.attributes = {}
        customer.erased_at = now()
        customer.updated_at = now()
        session.execute(delete(CustomerEmail).where(CustomerEmail.customer_id == customer.id))
        session.execute(delete(CustomerPhone).where(CustomerPhone.customer_id == customer.id))
        session.execute(
            update(Interaction)
            .where(Interaction.customer_id == customer.id)
            .values(summary="", data={}, actor="erased")
        )
        session.execute(
            update(ConsentRecord).where(ConsentRecord.customer_id == customer.id).values(proof=None)
        )
        session.execute(
            update(Trait)
            .where(Trait.customer_id == customer.id, Trait.value_type != "number")
            .values(value_text=None, value_json=None)
        )
        session.flush()

    def export(self, session: Session, *, customer_id: str) -> dict[str, Any]:
        customer = load_customer(session, customer_id)
        emails_by, phones_by = extra_contacts(session, [customer.id])
        view = to_view(customer, emails_by.get(customer.id, []), phones_by.get(customer.id, []))
        profile = {k: jsonable(getattr(view, k)) for k in view.__dataclass_fields__}
        interactions = session.scalars(
            select(Interaction)
            .where(Interaction.customer_id == customer.id)
            .order_by(Interaction.occurred_at, Interaction.id)
        )
        consent = session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.customer_id == customer.id)
            .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
        )
        traits = session.scalars(
            select(Trait)
            .where(Trait.customer_id == customer.id)
            .order_by(Trait.name)
            .execution_options(populate_existing=True)
        )
        merged = session.scalars(
            select(Customer.id).where(Customer.merged_into_id == customer.id).order_by(Customer.id)
        )
        return {
            "profile": profile,
            "merged_from": list(merged),
            "consent": [jsonable(vars_of(consent_view(r))) for r in consent],
            "interactions": [jsonable(vars_of(interaction_view(r))) for r in interactions],
            "traits": {t.name: jsonable(vars_of(trait_view(t))) for t in traits},
        }


def vars_of(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}
