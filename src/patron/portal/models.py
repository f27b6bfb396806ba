"""Portal state: per customer, the version that every portal link and portal session carries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from patron.core.db import Base, UTCDateTime, updated_at_column


class PortalAccess(Base):
    """A customer's portal key version: links and sessions signed with an older version are void.
    A customer without a row is at version 1 (nothing revoked yet)."""

    __tablename__ = "portal_access"

    # no foreign key: a customer hard-deleted by an import undo must not be held back by this row
    customer_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    updated_at: Mapped[datetime] = updated_at_column()
