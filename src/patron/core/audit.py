"""Audit log: who changed what, with old and new values."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from patron.core.db import Base, created_at_column, id_column


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff user (through the console, a token or the CLI) or the system."""

    kind: str  # "user" | "system" | "customer"
    id: str | None = None
    label: str = ""

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.id}" if self.id else self.kind


SYSTEM = Actor("system", None, "system")
current_actor: ContextVar[Actor] = ContextVar("patron_actor", default=SYSTEM)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity_type", "entity_id"),)

    id: Mapped[str] = id_column()
    occurred_at: Mapped[datetime] = created_at_column()
    actor: Mapped[str] = mapped_column(String(100))
    actor_label: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(100))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(36))
    old_values: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    new_values: Mapped[dict[str, Any] | None] = mapped_column(default=None)


def _jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str | int | float | bool) or value is None:
            out[key] = value
        elif isinstance(value, list | tuple):
            out[key] = [v if isinstance(v, str | int | float | bool) or v is None else str(v) for v in value]
        elif isinstance(value, dict):
            out[key] = _jsonable(value)
        else:
            out[key] = str(value)
    return out


def record_audit(
    session: Session,
    action: str,
    entity_type: str,
    entity_id: str | None,
    *,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> None:
    who = actor or current_actor.get()
    if old is not None and new is not None:
        changed = {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
        old = {k: v for k, v in old.items() if k in changed}
        new = {k: v for k, v in new.items() if k in changed}
    session.add(
        AuditEntry(
            actor=who.ref,
            actor_label=who.label,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            old_values=_jsonable(old),
            new_values=_jsonable(new),
        )
    )


def list_audit(
    session: Session, *, entity_type: str | None = None, entity_id: str | None = None, limit: int = 100
) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc()).limit(limit)
    if entity_type:
        stmt = stmt.where(AuditEntry.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    return list(session.scalars(stmt))
