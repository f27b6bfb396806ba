from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from patron.web.routing import PatronRoute

router = APIRouter(route_class=PatronRoute, tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/health", response_model=Health, summary="Liveness check (public)")
def health() -> Health:
    return Health(status="ok")
