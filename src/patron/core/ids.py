"""Identifiers: UUID strings on the wire and in storage (time-ordered UUIDv7, RFC 9562)."""

from __future__ import annotations

import os
import time
import uuid

_RAND_MASK = ((1 << 80) - 1) & ~(0xF << 76) & ~(0x3 << 62)
_FIXED = (0x7 << 76) | (0b10 << 62)


def new_id() -> str:
    """A UUIDv7 string: sortable by creation time, so indexes stay compact (~4 µs)."""
    value = (
        ((time.time_ns() // 1_000_000) << 80) | (int.from_bytes(os.urandom(10), "big") & _RAND_MASK) | _FIXED
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True
