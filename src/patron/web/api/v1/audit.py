"""The audit log: who changed what, with old and new values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from patron.auth import Perm, Principal
from patron.core.audit import list_audit
from patron.web.deps import DbSession, Requires
from patron.web.problems import problem_responses
from patron.web.routing import PatronRoute

router = APIRouter(route_class=PatronRoute, tags=["audit"], responses=problem_responses(401, 403, 422))


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    occurred_at: datetime
    actor: str
    actor_label: str
    action: str
    entity_type: str
    entity_id: str | None
    old_values: dict[str, Any] | None
    new_values: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditRead]
    next_cursor: str | None = None


@router.get("/audit", response_model=AuditPage, summary="Audit log, newest first")
def audit_log(
    db: DbSession,
    entity_type: str | None = Query(default=None, max_length=50),
    entity_id: str | None = Query(default=None, max_length=36),
    limit: int = Query(default=100, ge=1, le=500),
    _: Principal = Requires(Perm.AUDIT_READ),
) -> AuditPage:
    rows = list_audit(db, entity_type=entity_type, entity_id=entity_id, limit=limit)
    return AuditPage(items=[AuditRead.model_validate(r) for r in rows])
