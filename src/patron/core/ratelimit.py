"""A rate limiter shared by every server process: a sliding-window counter in the database.

Each limited key (``"portal_open:203.0.113.7"``) has one row holding the count of the current fixed
window and of the previous one. A hit is **one** conditional upsert (``INSERT … ON CONFLICT DO UPDATE
… RETURNING``, the same statement on SQLite and PostgreSQL) that moves the window forward when it has
passed and adds one, so concurrent hits from any number of processes are counted exactly (PostgreSQL
locks the row for the upsert; SQLite has one writer).

The decision uses the usual sliding-window estimate: ``previous × (1 − elapsed/window) + current``
(Cloudflare's counter): a burst at the edge of two windows cannot get twice the limit through, and
a steady client sees a smooth limit rather than a reset at each window boundary. A refused hit is
counted too (a client hammering while refused stays refused). ``Retry-After`` is the time until the
estimate drops below the limit again.

Limits are written ``"COUNT/SECONDS"`` (``"10/60"``: ten per minute); ``"0/60"`` or an empty string
switches a limit off. Rows idle for more than two windows are removed by :func:`purge_idle` (a worker
job).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Integer, String, bindparam, delete
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, Session, mapped_column

from patron.core.clock import now
from patron.core.db import Base, UTCDateTime
from patron.core.errors import TooManyRequests

MAX_KEY_LENGTH = 200


class RateLimitCounter(Base):
    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger)  # epoch seconds, a multiple of the window
    count: Mapped[int] = mapped_column(Integer)
    previous_count: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class Rate:
    """``limit`` hits per ``window`` seconds."""

    limit: int
    window: int

    @property
    def enabled(self) -> bool:
        return self.limit > 0 and self.window > 0

    def __str__(self) -> str:
        return f"{self.limit}/{self.window}"


def parse_rate(value: str) -> Rate:
    """``"10/60"`` → ten per sixty seconds; ``""`` or ``"0/…"`` → off."""
    value = value.strip()
    if not value:
        return Rate(0, 0)
    count, sep, seconds = value.partition("/")
    try:
        limit, window = int(count), int(seconds) if sep else 0
    except ValueError as exc:
        raise ValueError(f"a rate is written COUNT/SECONDS, e.g. 10/60, not {value!r}") from exc
    if limit < 0 or (limit > 0 and window <= 0):
        raise ValueError(f"a rate is written COUNT/SECONDS with positive numbers, not {value!r}")
    return Rate(limit, window)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    #: the sliding-window estimate after this hit (this hit included)
    estimate: float
    limit: int
    #: whole seconds until a hit would be allowed again (0 when allowed)
    retry_after: int


_UPSERT = sql_text(
    """
    INSERT INTO rate_limit_counters (key, window_start, count, previous_count, updated_at)
    VALUES (:key, :window_start, 1, 0, :at)
    ON CONFLICT (key) DO UPDATE SET
      previous_count = CASE
        WHEN rate_limit_counters.window_start >= excluded.window_start
          THEN rate_limit_counters.previous_count
        WHEN rate_limit_counters.window_start = excluded.window_start - :window
          THEN rate_limit_counters.count
        ELSE 0 END,
      count = CASE
        WHEN rate_limit_counters.window_start >= excluded.window_start
          THEN rate_limit_counters.count + 1
        ELSE 1 END,
      window_start = CASE
        WHEN rate_limit_counters.window_start >= excluded.window_start
          THEN rate_limit_counters.window_start
        ELSE excluded.window_start END,
      updated_at = excluded.updated_at
    RETURNING count, previous_count, window_start
    """
).bindparams(bindparam("at", type_=UTCDateTime()))
# A host whose clock is behind (another process, another machine) hits a row whose window is already
# the next one: it counts into that later window (the latest window always wins) instead of resetting.

_REFUND = sql_text(
    """
    UPDATE rate_limit_counters SET count = count - 1
    WHERE key = :key AND window_start = :window_start AND count > 0
    """
)


def hit(session: Session, key: str, rate: Rate, *, at: datetime | None = None) -> RateDecision:
    """Count one hit on ``key`` and decide. Runs in the caller's transaction: commit it even when the
    request it guards fails (the web layer uses a separate, short unit of work)."""
    if not rate.enabled:
        return RateDecision(True, 0.0, 0, 0)
    when = at or now()
    epoch = when.timestamp()
    window_start = int(epoch // rate.window) * rate.window
    row = session.execute(
        _UPSERT,
        {"key": key[:MAX_KEY_LENGTH], "window_start": window_start, "window": rate.window, "at": when},
    ).one()
    count, previous, window_start = int(row[0]), int(row[1]), int(row[2])
    elapsed = min(max((epoch - window_start) / rate.window, 0.0), 1.0)
    estimate = previous * (1.0 - elapsed) + count
    if estimate <= rate.limit:
        return RateDecision(True, estimate, rate.limit, 0)
    return RateDecision(False, estimate, rate.limit, _retry_after(count, previous, epoch, window_start, rate))


def refund(session: Session, key: str, rate: Rate, *, at: datetime | None = None) -> None:
    """Take back one hit counted by :func:`hit` in the current window (for limits that count only
    failures: hit before trying — atomically, so concurrent tries cannot all pass a peek — and give
    the hit back when the try succeeded)."""
    if not rate.enabled:
        return
    epoch = (at or now()).timestamp()
    window_start = int(epoch // rate.window) * rate.window
    session.execute(_REFUND, {"key": key[:MAX_KEY_LENGTH], "window_start": window_start})


def _retry_after(count: int, previous: int, epoch: float, window_start: int, rate: Rate) -> int:
    """Seconds until ``previous × (1 − elapsed) + count`` falls to ``limit − 1`` (room for one hit)."""
    target = rate.limit - 1
    if previous > 0 and count <= target:
        # still in this window: previous × (1 − t/window) + count ≤ target
        t = (1.0 - (target - count) / previous) * rate.window
        wait = window_start + t - epoch
    else:
        # next window: this window's count becomes "previous"
        next_start = window_start + rate.window
        if count <= target:
            wait = next_start - epoch
        else:
            t = (1.0 - target / count) * rate.window if count > 0 else 0.0
            wait = next_start + t - epoch
    return max(1, math.ceil(wait))


def peek(session: Session, key: str, rate: Rate, *, at: datetime | None = None) -> RateDecision:
    """Would one more hit on ``key`` be allowed? Reads only (for limits that count failures: look
    before trying, :func:`hit` after a failure)."""
    if not rate.enabled:
        return RateDecision(True, 0.0, 0, 0)
    when = at or now()
    epoch = when.timestamp()
    window_start = int(epoch // rate.window) * rate.window
    row = session.get(RateLimitCounter, key[:MAX_KEY_LENGTH], populate_existing=True)
    if row is None or row.window_start < window_start - rate.window:
        count, previous = 0, 0
    elif row.window_start == window_start:
        count, previous = row.count, row.previous_count
    elif row.window_start == window_start - rate.window:
        count, previous = 0, row.count
    else:  # a row from the future (clock moved back): count it as the current window
        count, previous = row.count, row.previous_count
    elapsed = (epoch - window_start) / rate.window
    estimate = previous * (1.0 - elapsed) + count + 1
    if estimate <= rate.limit:
        return RateDecision(True, estimate, rate.limit, 0)
    return RateDecision(False, estimate, rate.limit, _retry_after(count, previous, epoch, window_start, rate))


def check(session: Session, key: str, rate: Rate, *, at: datetime | None = None) -> RateDecision:
    """:func:`hit`, raising :class:`TooManyRequests` (``rate_limited``, with ``retry_after``) when refused."""
    decision = hit(session, key, rate, at=at)
    if not decision.allowed:
        raise TooManyRequests(
            "too many requests: try again later", extra={"retry_after": decision.retry_after}
        )
    return decision


def purge_idle(session: Session, *, older_than: timedelta = timedelta(days=1)) -> int:
    """Remove counters not hit for ``older_than`` (longer than any window in use)."""
    result = session.execute(delete(RateLimitCounter).where(RateLimitCounter.updated_at < now() - older_than))
    return int(result.rowcount)  # type: ignore[attr-defined]


__all__ = [
    "Rate",
    "RateDecision",
    "RateLimitCounter",
    "check",
    "hit",
    "parse_rate",
    "peek",
    "purge_idle",
    "refund",
]
