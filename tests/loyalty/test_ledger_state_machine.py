"""A hypothesis state machine over the real ledger (SQLite, or PostgreSQL when configured): for any
sequence of earn (orders), vest, refund, redeem, hold/capture/release, adjust, expire and replayed
idempotency keys — balances equal the ledger sums, lots cover the available balance, nothing is ever
negative, expired points are never redeemable and replays change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.commerce import RefundLineInput, fulfil_order, place_order, prepare_order, refund_lines
from patron.core.clock import FrozenClock, use_clock
from patron.core.errors import PatronError
from patron.loyalty import (
    InsufficientPoints,
    adjust_points,
    capture_redemption,
    expire_due,
    get_account,
    reconcile,
    redeem_points,
    release_redemption,
    update_programme,
    vest_due,
)
from patron.loyalty.models import LoyaltyAccount, LoyaltyLot
from tests.commerce.conftest import new_customer
from tests.loyalty.conftest import deliver


def test_the_ledger_keeps_its_invariants(loyal: Session) -> None:
    session = loyal
    update_programme(session, pending_days=3, expiry_policy="rolling", expiry_months=1)
    clock = FrozenClock(datetime(2026, 3, 15, 10, 0, tzinfo=UTC))

    class Ledger(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.customer = ""
            self.orders: list[tuple[str, str, int]] = []  # order id, line id, quantity
            self.held: list[str] = []
            self.keys: list[tuple[str, int, str]] = []  # kind, points, key
            self.n = 0

        @initialize()
        def start(self) -> None:
            self.customer = new_customer(session)
            adjust_points(session, self.customer, 1, reason="open")

        def balances(self) -> tuple[int, int, int, int]:
            a = get_account(session, self.customer)
            return a.available, a.pending, a.debt, a.held

        def key(self) -> str:
            self.n += 1
            return f"{self.customer}:{self.n}"

        @rule(amount=st.integers(1, 40), quantity=st.integers(1, 3))
        def place(self, amount: int, quantity: int) -> None:
            order = place_order(
                session,
                prepare_order(
                    {
                        "customer_id": self.customer,
                        "market": "VN",
                        "currency": "VND",
                        "placed_at": clock.now().isoformat(),
                        "lines": [{"sku": "TEA-1", "quantity": quantity, "unit_price": str(amount * 10000)}],
                    }
                ),
            )
            deliver(session)
            self.orders.append((order.id, order.lines[0].id, quantity))

        @precondition(lambda self: bool(self.orders))
        @rule(i=st.integers(0, 100))
        def fulfil(self, i: int) -> None:
            order_id = self.orders[i % len(self.orders)][0]
            try:
                fulfil_order(session, order_id)
            except PatronError:
                return  # already fulfilled or cancelled
            deliver(session)

        @precondition(lambda self: bool(self.orders))
        @rule(i=st.integers(0, 100), quantity=st.integers(1, 3))
        def refund(self, i: int, quantity: int) -> None:
            order_id, line_id, _ = self.orders[i % len(self.orders)]
            try:
                refund_lines(session, order_id, [RefundLineInput(line_id, quantity)])
            except PatronError:
                return  # nothing left to refund
            deliver(session)

        @rule(days=st.integers(1, 40))
        def time_passes(self, days: int) -> None:
            clock.advance(timedelta(days=days))
            vest_due(session)
            deliver(session)

        @rule()
        def expire(self) -> None:
            expire_due(session)

        @rule(points=st.integers(1, 60), hold=st.booleans())
        def redeem(self, points: int, hold: bool) -> None:
            before = self.balances()
            key = self.key()
            try:
                view = redeem_points(session, self.customer, points, hold=hold, key=key)
            except InsufficientPoints:
                after = self.balances()
                assert after[1:] == before[1:]  # only due lots may have expired
                assert after[0] <= before[0]
                assert after[0] < points
                return
            self.keys.append(("redeem", points, key))
            if hold:
                self.held.append(view.id)
            self.no_expired_points_left()

        @precondition(lambda self: bool(self.held))
        @rule(capture=st.booleans())
        def settle(self, capture: bool) -> None:
            redemption = self.held.pop(0)
            if capture:
                capture_redemption(session, redemption)
            else:
                release_redemption(session, redemption)

        @rule(points=st.integers(-50, 50).filter(bool))
        def adjust(self, points: int) -> None:
            key = self.key()
            try:
                adjust_points(session, self.customer, points, reason="test", key=key)
            except InsufficientPoints:
                return
            self.keys.append(("adjust", points, key))

        @precondition(lambda self: bool(self.keys))
        @rule(i=st.integers(0, 100))
        def replay(self, i: int) -> None:
            kind, points, key = self.keys[i % len(self.keys)]
            before = self.balances()
            if kind == "adjust":
                assert adjust_points(session, self.customer, points, reason="test", key=key).replayed
            else:
                assert redeem_points(session, self.customer, points, key=key).replayed
            assert self.balances() == before

        def no_expired_points_left(self) -> None:
            stale = session.scalar(
                select(func.count())
                .select_from(LoyaltyLot)
                .join(LoyaltyAccount, LoyaltyAccount.id == LoyaltyLot.account_id)
                .where(
                    LoyaltyAccount.customer_id == self.customer,
                    LoyaltyLot.remaining > 0,
                    LoyaltyLot.expires_at <= clock.now(),
                )
            )
            assert stale == 0

        @invariant()
        def balances_equal_the_ledger(self) -> None:
            if not self.customer:
                return
            available, pending, debt, held = self.balances()
            assert min(available, pending, debt, held) >= 0
            assert not (available > 0 and debt > 0)  # credits pay the debt first
            report = reconcile(session)
            assert report.drift == ()

    with use_clock(clock):
        run_state_machine_as_test(
            Ledger,
            settings=settings(
                max_examples=60,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            ),
        )


_: Any = None
