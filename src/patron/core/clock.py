"""The injectable clock: the only place that reads the wall time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


class Clock:
    """Wall clock in aware UTC. Tests swap in a :class:`FrozenClock`."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self, tz: str = "UTC") -> date:
        return self.now().astimezone(ZoneInfo(tz)).date()


class FrozenClock(Clock):
    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)


_clock: Clock = Clock()


def get_clock() -> Clock:
    return _clock


def now() -> datetime:
    return _clock.now()


def set_clock(clock: Clock) -> Clock:
    global _clock
    previous, _clock = _clock, clock
    return previous


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)


def ensure_aware(value: datetime) -> datetime:
    """Stored timestamps come back naive from SQLite: they are UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
