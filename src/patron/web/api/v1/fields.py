"""Field and parameter types the API modules share (one definition each, so the rules and the
OpenAPI descriptions cannot drift apart)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, Field


def no_nul(value: str) -> str:
    """Reject NUL characters (PostgreSQL cannot store them in text)."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(no_nul)]
Amount = Annotated[
    str,
    Field(
        pattern=r"^\d{1,15}(\.\d{1,10})?$",
        description='a non-negative decimal amount as a string, e.g. "123.45" (never a JSON number)',
        examples=["123.45"],
    ),
]
Cursor = Annotated[str | None, Query(max_length=500)]
Limit = Annotated[int | None, Query(ge=1, le=200, description="page size (default 50)")]
