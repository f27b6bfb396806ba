"""Customer tables. (Owned by the customers domain; other domains reference ``customers.id``.)"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from patron.core.db import Base, JSONType, created_at_column, id_column, updated_at_column


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        Index(
            "ix_customers_email_folded",
            "email_folded",
            postgresql_ops={"email_folded": "varchar_pattern_ops"},
        ),
        Index("ix_customers_phone_e164", "phone_e164"),
        Index("ix_customers_created", "created_at", "id"),
        # partial: an index over the (mostly NULL) column would tempt planners away from better plans
        Index(
            "ix_customers_merged_into_id",
            "merged_into_id",
            sqlite_where=text("merged_into_id IS NOT NULL"),
            postgresql_where=text("merged_into_id IS NOT NULL"),
        ),
        # prefix search for queries shorter than a trigram (see queries.py)
        Index(
            "ix_customers_given_folded",
            "given_folded",
            postgresql_ops={"given_folded": "varchar_pattern_ops"},
        ),
        Index(
            "ix_customers_family_folded",
            "family_folded",
            postgresql_ops={"family_folded": "varchar_pattern_ops"},
        ),
    )

    id: Mapped[str] = id_column()
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    given_name: Mapped[str] = mapped_column(String(200), default="")
    family_name: Mapped[str] = mapped_column(String(200), default="")
    given_folded: Mapped[str] = mapped_column(String(200), default="")  # core.text.fold(given_name)
    family_folded: Mapped[str] = mapped_column(String(200), default="")
    form_of_address: Mapped[str | None] = mapped_column(String(50), default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    email_folded: Mapped[str | None] = mapped_column(String(320), default=None)
    phone_e164: Mapped[str | None] = mapped_column(String(20), default=None)
    language: Mapped[str] = mapped_column(String(8), default="en")
    preferred_channel: Mapped[str | None] = mapped_column(String(20), default=None)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    birthday: Mapped[date | None] = mapped_column(Date, default=None)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    referral_code: Mapped[str | None] = mapped_column(String(64), default=None)
    organisation_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("organisations.id", ondelete="SET NULL"), default=None, index=True
    )
    organisation_role: Mapped[str | None] = mapped_column(String(100), default=None)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    erased_at: Mapped[datetime | None] = mapped_column(default=None)
    merged_into_id: Mapped[str | None] = mapped_column(String(36), default=None)
    merged_at: Mapped[datetime | None] = mapped_column(default=None)
    # folded "|field|field|" text (names both orders, emails, phone digits); indexed by migration 0002
    search_text: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}


class CustomerEmail(Base):
    """Additional emails (the primary one lives on the customer row)."""

    __tablename__ = "customer_emails"

    id: Mapped[str] = id_column()
    customer_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    email_folded: Mapped[str] = mapped_column(String(320), index=True)
    label: Mapped[str | None] = mapped_column(String(50), default=None)


class CustomerPhone(Base):
    __tablename__ = "customer_phones"

    id: Mapped[str] = id_column()
    customer_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    phone_e164: Mapped[str] = mapped_column(String(20), index=True)
    label: Mapped[str | None] = mapped_column(String(50), default=None)


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[str] = id_column()
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    name: Mapped[str] = mapped_column(String(300))
    name_folded: Mapped[str] = mapped_column(String(300), default="", index=True)  # core.text.fold(name)
    industry: Mapped[str | None] = mapped_column(String(100), default=None)
    size: Mapped[str | None] = mapped_column(String(20), default=None)
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    account_owner_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}


class ConsentRecord(Base):
    """Append-only consent ledger: the latest record per (customer, purpose, channel) is in force."""

    __tablename__ = "consent_records"
    __table_args__ = (Index("ix_consent_current", "customer_id", "purpose", "channel", "recorded_at"),)

    id: Mapped[str] = id_column()
    customer_id: Mapped[str] = mapped_column(String(36), ForeignKey("customers.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10))  # granted | withdrawn
    source: Mapped[str] = mapped_column(String(100))
    proof: Mapped[str | None] = mapped_column(Text, default=None)
    recorded_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    actor: Mapped[str] = mapped_column(String(100), default="system")


class Interaction(Base):
    """The customer's timeline: every touch, in any channel, from any domain."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_customer_time", "customer_id", "occurred_at", "id"),)

    id: Mapped[str] = id_column()
    customer_id: Mapped[str] = mapped_column(String(36), ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10))  # inbound | outbound | internal
    kind: Mapped[str] = mapped_column(String(50))
    summary: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor: Mapped[str] = mapped_column(String(100), default="system")
    source: Mapped[str] = mapped_column(String(50), default="api")
    occurred_at: Mapped[datetime] = created_at_column()
    created_at: Mapped[datetime] = created_at_column()


class Trait(Base):
    """Named values published onto the customer by domains (tier, total spent, churn risk …)."""

    __tablename__ = "traits"
    __table_args__ = (Index("ix_traits_name_value", "name", "value_number"),)

    customer_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value_text: Mapped[str | None] = mapped_column(Text, default=None)
    value_number: Mapped[Decimal | None] = mapped_column(Numeric(24, 6), default=None)
    value_json: Mapped[Any] = mapped_column(JSONType, default=None)
    value_type: Mapped[str] = mapped_column(String(10), default="text")  # text|number|bool|date|datetime|json
    source: Mapped[str] = mapped_column(String(50))
    updated_at: Mapped[datetime] = updated_at_column()


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    __mapper_args__ = {"version_id_col": version}
