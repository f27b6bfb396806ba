"""The database rate limiter: one upsert per hit, a sliding-window estimate, Retry-After, peek,
parsing and purging (the cross-process proof is in test_ratelimit_live.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.core.clock import FrozenClock
from patron.core.errors import TooManyRequests
from patron.core.ratelimit import Rate, RateLimitCounter, check, hit, parse_rate, peek, purge_idle, refund

T0 = datetime(2026, 3, 15, 10, 0, 0, tzinfo=UTC)  # a multiple of 60 s: the start of a window


def test_parse_rate() -> None:
    assert parse_rate("10/60") == Rate(10, 60)
    assert parse_rate(" 5/1 ") == Rate(5, 1)
    assert not parse_rate("").enabled
    assert not parse_rate("0/60").enabled
    for bad in ("ten/60", "10", "10/0", "-1/60", "10/x"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_the_limit_holds_within_a_window_and_refusals_count(session: Session) -> None:
    rate = Rate(3, 60)
    results = [hit(session, "k", rate, at=T0 + timedelta(seconds=i)) for i in range(5)]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    assert [r.estimate for r in results] == [1, 2, 3, 4, 5]
    assert session.scalar(select(RateLimitCounter.count).where(RateLimitCounter.key == "k")) == 5
    # other keys are independent
    assert hit(session, "other", rate, at=T0).allowed


def test_the_previous_window_weighs_in_and_fades(session: Session) -> None:
    rate = Rate(10, 60)
    for i in range(10):
        assert hit(session, "k", rate, at=T0 + timedelta(seconds=50 + i * 0.5)).allowed
    # 15 s into the next window: 10 × (1 − 15/60) = 7.5 of the previous window still count
    allowed = [hit(session, "k", rate, at=T0 + timedelta(seconds=75)).allowed for _ in range(3)]
    assert allowed == [True, True, False]  # 8.5, 9.5, 10.5
    # two windows later the old counts are gone
    assert hit(session, "k", rate, at=T0 + timedelta(seconds=181)).estimate == 1


def test_retry_after_is_when_a_hit_would_pass_again(session: Session) -> None:
    rate = Rate(2, 60)
    hit(session, "k", rate, at=T0)
    hit(session, "k", rate, at=T0)
    refused = hit(session, "k", rate, at=T0 + timedelta(seconds=10))
    assert not refused.allowed
    # count 3 in this window: next window previous=3, need 3 × (1 − t/60) ≤ 1 → t = 40 s → 50 + 40 = 90
    assert refused.retry_after == 90
    later = T0 + timedelta(seconds=10 + refused.retry_after)
    assert hit(session, "k", rate, at=later).allowed


def test_check_raises_rate_limited_with_retry_after(session: Session) -> None:
    rate = Rate(1, 60)
    check(session, "k", rate, at=T0)
    with pytest.raises(TooManyRequests) as refused:
        check(session, "k", rate, at=T0)
    assert (refused.value.status, refused.value.code) == (429, "rate_limited")
    assert refused.value.extra["retry_after"] >= 1


def test_peek_reads_without_counting(session: Session) -> None:
    rate = Rate(2, 60)
    assert peek(session, "k", rate, at=T0).allowed
    assert session.scalar(select(func.count()).select_from(RateLimitCounter)) == 0
    hit(session, "k", rate, at=T0)
    assert peek(session, "k", rate, at=T0).allowed
    hit(session, "k", rate, at=T0)
    decision = peek(session, "k", rate, at=T0 + timedelta(seconds=1))
    assert not decision.allowed
    assert decision.retry_after >= 1
    assert session.scalar(select(RateLimitCounter.count).where(RateLimitCounter.key == "k")) == 2


def test_a_disabled_rate_never_refuses_nor_writes(session: Session) -> None:
    for _ in range(5):
        assert hit(session, "k", parse_rate(""), at=T0).allowed
    assert session.scalar(select(func.count()).select_from(RateLimitCounter)) == 0


def test_idle_counters_are_purged(session: Session, frozen_clock: FrozenClock) -> None:
    hit(session, "old", Rate(5, 60))
    frozen_clock.advance(timedelta(days=2))
    hit(session, "new", Rate(5, 60))
    assert purge_idle(session) == 1
    assert session.scalars(select(RateLimitCounter.key)).all() == ["new"]


def test_a_host_with_a_clock_behind_counts_into_the_later_window(session: Session) -> None:
    rate = Rate(3, 60)
    for _ in range(3):
        assert hit(session, "k", rate, at=T0 + timedelta(seconds=61)).allowed  # the next window
    # another process whose clock is two seconds behind (still in the first window): no reset
    late = hit(session, "k", rate, at=T0 + timedelta(seconds=59))
    assert not late.allowed
    row = session.get(RateLimitCounter, "k", populate_existing=True)
    assert row is not None
    assert (row.window_start, row.count) == (int(T0.timestamp()) + 60, 4)
    assert not hit(session, "k", rate, at=T0 + timedelta(seconds=62)).allowed


def test_refund_gives_back_a_hit_of_the_current_window(session: Session) -> None:
    rate = Rate(2, 60)
    hit(session, "k", rate, at=T0)
    hit(session, "k", rate, at=T0)
    refund(session, "k", rate, at=T0 + timedelta(seconds=1))
    assert hit(session, "k", rate, at=T0 + timedelta(seconds=2)).allowed  # 2 again, not 3
    refund(session, "k", rate, at=T0 + timedelta(seconds=61))  # another window: nothing to give back
    assert session.scalar(select(RateLimitCounter.count).where(RateLimitCounter.key == "k")) == 2
    refund(session, "missing", rate, at=T0)  # no row: nothing happens
    assert session.get(RateLimitCounter, "missing") is None
