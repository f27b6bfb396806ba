"""Idempotency keys, stored in the same transaction as the effect they guard."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, LargeBinary, String, UniqueConstraint, delete, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from patron.core.clock import now
from patron.core.db import Base, created_at_column, id_column
from patron.core.errors import ValidationFailed


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "route", "key"),)

    id: Mapped[str] = id_column()
    scope: Mapped[str] = mapped_column(String(100))
    route: Mapped[str] = mapped_column(String(300))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[bytes] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(String(100))
    headers: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = created_at_column()


#: response headers a replay repeats (the rest belong to the moment of the replay)
REPLAYED_HEADERS = ("etag", "location")


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


def request_digest(method: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\n" + body).hexdigest()


def validate_key(key: str) -> str:
    if not key or len(key) > 255 or not key.isprintable():
        raise ValidationFailed(
            "Idempotency-Key must be 1-255 printable characters", code="invalid_idempotency_key"
        )
    return key


def lookup(session: Session, scope: str, route: str, key: str, digest: str) -> StoredResponse | None:
    if session.get_bind().dialect.name == "postgresql":
        # Serialise requests sharing a key until the transaction ends: a concurrent duplicate waits for
        # the first to commit, then finds its stored response (under READ COMMITTED it would otherwise
        # run the effect too and could answer e.g. 409). SQLite's BEGIN IMMEDIATE already serialises.
        lock_id = int.from_bytes(
            hashlib.sha256(f"{scope}\n{route}\n{key}".encode()).digest()[:8], "big", signed=True
        )
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
    row = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope, IdempotencyRecord.route == route, IdempotencyRecord.key == key
        )
    )
    if row is None:
        return None
    if row.request_hash != digest:
        raise ValidationFailed(
            "this Idempotency-Key was used with a different request", code="idempotency_key_reused"
        )
    return StoredResponse(
        row.status_code,
        row.response_body,
        row.content_type,
        {str(k): str(v) for k, v in (row.headers or {}).items()},
    )


def store(session: Session, scope: str, route: str, key: str, digest: str, response: StoredResponse) -> None:
    session.add(
        IdempotencyRecord(
            scope=scope,
            route=route,
            key=key,
            request_hash=digest,
            status_code=response.status_code,
            response_body=response.body,
            content_type=response.content_type,
            headers=dict(response.headers) or None,
        )
    )
    session.flush()


def purge_expired(session: Session, ttl: timedelta) -> int:
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now() - ttl))
    return int(result.rowcount)  # type: ignore[attr-defined]


def forget_responses_mentioning(session: Session, needle: str) -> int:
    """Drop stored responses that mention ``needle`` (a customer id being erased): a replay must not
    bring personal data back. The table only holds the last ``idempotency_ttl_hours`` of keys."""
    marker = needle.encode()
    ids = [
        row_id
        for row_id, body in session.execute(select(IdempotencyRecord.id, IdempotencyRecord.response_body))
        if marker in bytes(body)
    ]
    if ids:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids)))
    return len(ids)
