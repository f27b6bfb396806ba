"""Pure earning rules, property-tested: allocation adds up, rounding is down once per order, caps
hold, reversal takes back exactly what a line earned, debt is paid first, expiry dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from patron.loyalty import rules
from patron.loyalty.rules import EarnRate, LineInput, RuleSpec

AT = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)

amounts = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)
line_lists = st.lists(
    st.tuples(st.sampled_from(["tea", "cups", None]), st.integers(1, 20), amounts), min_size=1, max_size=8
)


def make_lines(raw: list[tuple[str | None, int, Decimal]]) -> list[LineInput]:
    return [LineInput(f"l{i}", f"SKU-{i}", cat, qty, base) for i, (cat, qty, base) in enumerate(raw)]


@given(
    st.integers(0, 10**6),
    st.lists(st.decimals(min_value=0, max_value=10**6, places=3), min_size=1, max_size=12),
)
def test_allocate_adds_up_exactly(total: int, weights: list[Decimal]) -> None:
    parts = rules.allocate(total, weights)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)
    whole = sum(weights)
    if whole > 0:
        for part, weight in zip(parts, weights, strict=True):
            assert abs(Decimal(part) - Decimal(total) * weight / whole) < 1


@given(line_lists, st.integers(1, 5), st.sampled_from([Decimal(1), Decimal(10), Decimal(10000)]))
def test_order_points_round_down_once_per_order(
    raw: list[tuple[str | None, int, Decimal]], points: int, spend: Decimal
) -> None:
    lines = make_lines(raw)
    earning = rules.order_points(
        lines, EarnRate(spend, points), [], tier=None, channel="web", market="VN", at=AT
    )
    exact = sum((line.base for line in lines), Decimal(0)) * points / spend
    assert earning.points == int(exact)  # floor of the order's exact total (non-negative)
    assert sum(earning.lines.values()) == earning.points
    assert set(earning.lines) == {line.line_id for line in lines}


@given(line_lists, st.integers(0, 500), st.integers(0, 800), st.integers(0, 1000))
def test_caps_are_never_exceeded(
    raw: list[tuple[str | None, int, Decimal]], cap_order: int, cap_day: int, earned_today: int
) -> None:
    rate = EarnRate(Decimal(10), 1, cap_per_order=cap_order, cap_per_day=cap_day)
    earning = rules.order_points(
        make_lines(raw), rate, [], tier=None, channel=None, market=None, at=AT, earned_today=earned_today
    )
    assert 0 <= earning.points <= cap_order
    assert earning.points <= max(cap_day - earned_today, 0)


@given(line_lists)
def test_a_multiplier_never_lowers_points_and_matches_only_its_lines(
    raw: list[tuple[str | None, int, Decimal]],
) -> None:
    lines = make_lines(raw)
    rate = EarnRate(Decimal(10), 1)
    plain = rules.order_points(lines, rate, [], tier=None, channel=None, market=None, at=AT)
    tea = RuleSpec("r1", "Tea x2", "multiplier", multiplier=Decimal(2), categories=frozenset({"tea"}))
    boosted = rules.order_points(lines, rate, [tea], tier=None, channel=None, market=None, at=AT)
    tea_base = sum((line.base for line in lines if line.category == "tea"), Decimal(0))
    total_base = sum((line.base for line in lines), Decimal(0))
    assert boosted.points == int((total_base + tea_base) / 10)
    assert boosted.points >= plain.points


def test_rules_respect_context_and_windows() -> None:
    rule = RuleSpec(
        "r",
        "App week",
        "multiplier",
        multiplier=Decimal(3),
        channels=frozenset({"app"}),
        tiers=frozenset({"gold"}),
        starts_at=AT,
        ends_at=AT + timedelta(days=7),
    )
    assert rule.context_matches(tier="gold", channel="app", market=None, at=AT)
    assert not rule.context_matches(tier="gold", channel="web", market=None, at=AT)
    assert not rule.context_matches(tier=None, channel="app", market=None, at=AT)
    assert not rule.context_matches(tier="gold", channel="app", market=None, at=AT + timedelta(days=7))
    assert not rule.context_matches(tier="gold", channel="app", market=None, at=AT - timedelta(seconds=1))


def test_bonuses_respect_per_customer_limits() -> None:
    signup = RuleSpec("s", "Sign-up", "bonus", points=100, event_type="signup", limit_per_customer=1)
    review = RuleSpec("r", "Review", "bonus", points=20, event_type="review")
    first = rules.event_points("signup", [signup, review], tier=None, channel=None, market=None, at=AT)
    assert (first.points, first.bonus_rule_ids) == (100, ("s",))
    again = rules.event_points(
        "signup", [signup, review], tier=None, channel=None, market=None, at=AT, rule_uses={"s": 1}
    )
    assert (again.points, [r.code for r in again.reasons]) == (0, ["limit_reached"])
    unknown = rules.event_points("birthday", [signup], tier=None, channel=None, market=None, at=AT)
    assert (unknown.points, unknown.explanation()) == (0, [{"code": "no_rule", "event_type": "birthday"}])


@given(st.integers(0, 10**6), st.integers(1, 50), st.data())
def test_reversals_add_up_to_the_line_points(points: int, quantity: int, data: st.DataObject) -> None:
    left, reversed_total, reversed_qty = quantity, 0, 0
    while left:
        step = data.draw(st.integers(1, left))
        taken = rules.reversal(points, quantity, reversed_qty, step)
        assert taken >= 0
        reversed_total += taken
        reversed_qty += step
        left -= step
        # what the customer keeps is what the kept quantity earns, rounded down
        assert points - reversed_total == points * (quantity - reversed_qty) // quantity
    assert reversed_total == points


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_credits_pay_the_debt_first(debt: int, credit: int) -> None:
    paid, rest = rules.pay_debt(debt, credit)
    assert paid + rest == credit
    assert paid == min(debt, credit)
    assert rest == 0 or paid == debt


def test_lot_expiry_policies() -> None:
    earned = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    assert rules.lot_expiry(earned, "never", 12, "UTC") is None
    assert rules.lot_expiry(earned, "rolling", 0, "UTC") is None
    assert rules.lot_expiry(earned, "rolling", 1, "UTC") == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert rules.lot_expiry(earned, "rolling", 12, "UTC") == datetime(2027, 1, 31, 12, 0, tzinfo=UTC)
    # end of the calendar year (in the business time zone) in which earned + 12 months falls
    assert rules.lot_expiry(earned, "end_of_year", 12, "Asia/Bangkok") == datetime(
        2027, 12, 31, 17, 0, tzinfo=UTC
    )
    late = datetime(2026, 12, 31, 18, 0, tzinfo=UTC)  # already 2027-01-01 in Bangkok
    assert rules.lot_expiry(late, "end_of_year", 0, "Asia/Bangkok") == datetime(
        2027, 12, 31, 17, 0, tzinfo=UTC
    )
