"""Pure loyalty policy (no I/O): earning per order and per event, caps, rounding, line allocation,
reversal on refunds, debt repayment and lot expiry. Property-tested in tests/loyalty.

Rounding (documented in docs/loyalty.md): an order's points are the *sum* of its lines' exact
(Decimal) points, multipliers included, rounded **down once per order**; bonuses are whole points and
added after rounding; then the per-order cap, then what is left of the per-day cap. The final points
are spread over the lines in proportion to their exact points (largest remainder), so refunds can be
reversed line by line and reversing every line reverses exactly what the order earned.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

ENROLMENTS = ("automatic", "opt_in")
EXPIRY_POLICIES = ("never", "rolling", "end_of_year")
EARN_BASES = ("net", "total")
RULE_KINDS = ("multiplier", "bonus")
TIER_BASES = ("points", "spend")
TIER_WINDOWS = ("rolling", "calendar_year")
#: the event type of the bonus rules that apply to every qualifying order
ORDER_EVENT = "order"
CONDITION_KEYS = ("categories", "skus", "tiers", "channels", "markets", "starts_at", "ends_at")


@dataclass(frozen=True)
class RuleSpec:
    """An earning rule as data. ``conditions`` may hold ``categories``/``skus`` (line filters for
    multipliers), ``tiers``, ``channels``, ``markets`` (lists) and ``starts_at``/``ends_at``
    (aware datetimes: a date window, end exclusive)."""

    id: str
    name: str
    kind: str
    multiplier: Decimal = Decimal(1)
    points: int = 0
    event_type: str | None = None
    categories: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    markets: frozenset[str] = frozenset()
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    limit_per_customer: int | None = None

    def context_matches(
        self, *, tier: str | None, channel: str | None, market: str | None, at: datetime
    ) -> bool:
        if self.tiers and (tier is None or tier not in self.tiers):
            return False
        if self.channels and (channel is None or channel not in self.channels):
            return False
        if self.markets and (market is None or market not in self.markets):
            return False
        if self.starts_at is not None and at < self.starts_at:
            return False
        return not (self.ends_at is not None and at >= self.ends_at)

    def line_matches(self, *, sku: str | None, category: str | None) -> bool:
        if not self.categories and not self.skus:
            return True
        return (sku is not None and sku in self.skus) or (
            category is not None and category in self.categories
        )


@dataclass(frozen=True)
class EarnRate:
    """``points`` per ``spend`` of the market's currency (e.g. 1 point per 10,000 VND)."""

    spend: Decimal
    points: int
    cap_per_order: int | None = None
    cap_per_day: int | None = None


@dataclass(frozen=True)
class LineInput:
    line_id: str
    sku: str | None
    category: str | None
    quantity: int
    base: Decimal  # the line's share of the earn base, in the order's currency


@dataclass(frozen=True)
class Reason:
    """One step of an explanation (``simulate`` shows them)."""

    code: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, **self.detail}


@dataclass(frozen=True)
class Earning:
    points: int
    lines: dict[str, int]
    reasons: tuple[Reason, ...]
    bonus_rule_ids: tuple[str, ...] = ()

    def explanation(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.reasons]


def allocate(total: int, weights: Sequence[Decimal]) -> list[int]:
    """Split ``total`` whole points over ``weights`` (≥ 0) proportionally; parts add up exactly
    (largest remainder, ties to the earlier part). All-zero weights put everything on the first."""
    if not weights:
        return []
    if total == 0:
        return [0] * len(weights)
    whole = sum(weights, Decimal(0))
    if whole <= 0:
        return [total] + [0] * (len(weights) - 1)
    raw = [Decimal(total) * w / whole for w in weights]
    floors = [int(r.to_integral_value(ROUND_FLOOR)) for r in raw]
    left = total - sum(floors)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return floors


def order_points(
    lines: Sequence[LineInput],
    rate: EarnRate,
    rules: Sequence[RuleSpec],
    *,
    tier: str | None,
    channel: str | None,
    market: str | None,
    at: datetime,
    earned_today: int = 0,
    rule_uses: Mapping[str, int] | None = None,
) -> Earning:
    """What an order earns, and why."""
    uses = rule_uses or {}
    reasons: list[Reason] = []
    live = [r for r in rules if r.context_matches(tier=tier, channel=channel, market=market, at=at)]
    multipliers = [r for r in live if r.kind == "multiplier"]
    exact: list[Decimal] = []
    for line in lines:
        base = max(line.base, Decimal(0))
        value = base * rate.points / rate.spend
        factor = Decimal(1)
        for rule in multipliers:
            if rule.line_matches(sku=line.sku, category=line.category):
                factor *= rule.multiplier
                reasons.append(
                    Reason(
                        "multiplier",
                        {
                            "rule_id": rule.id,
                            "rule": rule.name,
                            "line_id": line.line_id,
                            "multiplier": str(rule.multiplier),
                        },
                    )
                )
        exact.append(value * factor)
    raw_total = sum(exact, Decimal(0))
    points = int(raw_total.to_integral_value(ROUND_FLOOR))
    reasons.insert(
        0,
        Reason(
            "base_rate",
            {
                "spend": str(rate.spend),
                "points": rate.points,
                "exact": str(raw_total),
                "rounded_down": points,
            },
        ),
    )
    bonus_ids: list[str] = []
    for rule in live:
        if rule.kind != "bonus" or rule.event_type != ORDER_EVENT or rule.points <= 0:
            continue
        if rule.limit_per_customer is not None and uses.get(rule.id, 0) >= rule.limit_per_customer:
            reasons.append(Reason("limit_reached", {"rule_id": rule.id, "rule": rule.name}))
            continue
        points += rule.points
        bonus_ids.append(rule.id)
        reasons.append(Reason("bonus", {"rule_id": rule.id, "rule": rule.name, "points": rule.points}))
    points = _capped(points, rate, earned_today, reasons)
    weights = exact if raw_total > 0 else [Decimal(line.quantity) for line in lines]
    parts = allocate(points, weights)
    return Earning(
        points=points,
        lines={line.line_id: p for line, p in zip(lines, parts, strict=True)},
        reasons=tuple(reasons),
        bonus_rule_ids=tuple(bonus_ids),
    )


def _capped(points: int, rate: EarnRate, earned_today: int, reasons: list[Reason]) -> int:
    if rate.cap_per_order is not None and points > rate.cap_per_order:
        reasons.append(Reason("cap_per_order", {"cap": rate.cap_per_order, "before": points}))
        points = rate.cap_per_order
    if rate.cap_per_day is not None:
        left = max(rate.cap_per_day - max(earned_today, 0), 0)
        if points > left:
            reasons.append(
                Reason(
                    "cap_per_day", {"cap": rate.cap_per_day, "earned_today": earned_today, "before": points}
                )
            )
            points = left
    return points


def event_points(
    event_type: str,
    rules: Sequence[RuleSpec],
    *,
    tier: str | None,
    channel: str | None,
    market: str | None,
    at: datetime,
    rule_uses: Mapping[str, int] | None = None,
) -> Earning:
    """Fixed bonuses for a reported event: every matching active bonus rule pays once (per-customer
    limits respected); multipliers do not apply to events."""
    uses = rule_uses or {}
    reasons: list[Reason] = []
    points = 0
    paid: list[str] = []
    for rule in rules:
        if rule.kind != "bonus" or rule.event_type != event_type:
            continue
        if not rule.context_matches(tier=tier, channel=channel, market=market, at=at):
            continue
        if rule.limit_per_customer is not None and uses.get(rule.id, 0) >= rule.limit_per_customer:
            reasons.append(Reason("limit_reached", {"rule_id": rule.id, "rule": rule.name}))
            continue
        points += rule.points
        paid.append(rule.id)
        reasons.append(Reason("bonus", {"rule_id": rule.id, "rule": rule.name, "points": rule.points}))
    if not paid and not reasons:
        reasons.append(Reason("no_rule", {"event_type": event_type}))
    return Earning(points=points, lines={}, reasons=tuple(reasons), bonus_rule_ids=tuple(paid))


def reversal(points: int, quantity: int, reversed_quantity: int, refund_quantity: int) -> int:
    """Points to take back when ``refund_quantity`` more of a line's ``quantity`` are refunded.

    The customer keeps what the *kept* quantity earns, rounded down: after the refund the line keeps
    ``floor(points × kept / quantity)``; a fully refunded line keeps nothing."""
    if quantity <= 0 or refund_quantity <= 0:
        return 0
    before_kept = quantity - reversed_quantity
    after_kept = max(before_kept - refund_quantity, 0)

    def kept(q: int) -> int:
        return points * q // quantity

    return kept(before_kept) - kept(after_kept)


def pay_debt(debt: int, credit: int) -> tuple[int, int]:
    """A credit pays the debt first: ``(paid to the debt, left for the available balance)``."""
    paid = min(max(debt, 0), max(credit, 0))
    return paid, credit - paid


def add_months(at: datetime, months: int) -> datetime:
    month0 = at.month - 1 + months
    year = at.year + month0 // 12
    month = month0 % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def lot_expiry(earned_at: datetime, policy: str, months: int, time_zone: str) -> datetime | None:
    """When a lot earned at ``earned_at`` expires: ``rolling`` — ``months`` after it was earned;
    ``end_of_year`` — at the end of the calendar year (in the business time zone) in which
    ``earned_at`` + ``months`` falls; ``never`` (or 0 months with ``rolling``) — never."""
    if policy == "never" or (policy == "rolling" and months <= 0):
        return None
    if policy == "rolling":
        return add_months(earned_at, months).astimezone(UTC)
    zone = ZoneInfo(time_zone)
    local = add_months(earned_at.astimezone(zone), months)
    return datetime(local.year + 1, 1, 1, tzinfo=zone).astimezone(UTC)


def point_value(points: int, value_per_point: Decimal) -> Decimal:
    return Decimal(points) * value_per_point


# --- tiers --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierSpec:
    code: str
    rank: int
    threshold: Decimal


def qualified_tier(tiers: Sequence[TierSpec], value: Decimal) -> TierSpec | None:
    """The highest-ranked tier whose threshold the qualifying value reaches (None below them all)."""
    best: TierSpec | None = None
    for tier in tiers:
        if value >= tier.threshold and (best is None or tier.rank > best.rank):
            best = tier
    return best


def next_tier(tiers: Sequence[TierSpec], current: TierSpec | None) -> TierSpec | None:
    """The lowest-ranked tier above ``current`` (progress: "1,200 points to Gold")."""
    above = [t for t in tiers if current is None or t.rank > current.rank]
    return min(above, key=lambda t: t.rank) if above else None


def window_start(end: datetime, window: str, months: int, time_zone: str) -> datetime:
    """Where the qualifying window ending at ``end`` starts: ``rolling`` — ``months`` earlier;
    ``calendar_year`` — 1 January (business time zone) of the year that contains the instant just
    before ``end`` (so a review on 1 January looks at the year that has just ended)."""
    if window == "rolling":
        return add_months(end, -months).astimezone(UTC)
    zone = ZoneInfo(time_zone)
    year = (end - timedelta(microseconds=1)).astimezone(zone).year
    return datetime(year, 1, 1, tzinfo=zone).astimezone(UTC)


def next_review(at: datetime, window: str, months: int, time_zone: str) -> datetime:
    """When a tier reached or confirmed at ``at`` is reviewed next: ``rolling`` — ``months`` later;
    ``calendar_year`` — on 1 January after the year that follows ``at`` (a tier earned in 2026 is
    kept through 2027 and reviewed on 1 January 2028 against 2027)."""
    if window == "rolling":
        return add_months(at, months).astimezone(UTC)
    zone = ZoneInfo(time_zone)
    return datetime(at.astimezone(zone).year + 2, 1, 1, tzinfo=zone).astimezone(UTC)


def tier_decision(
    tiers: Sequence[TierSpec],
    current: str | None,
    value: Decimal,
    *,
    review: bool,
    grace_pending: bool,
    grace_over: bool,
) -> tuple[str, str | None]:
    """What happens to a member's tier: ``("upgrade", code)`` at once when a higher tier is reached;
    at a review ``("keep", current)`` when still qualified, ``("grace", current)`` when not (first
    time, with a grace period), ``("downgrade", code)`` when the grace is over (or there is none);
    ``("none", current)`` otherwise."""
    by_code = {t.code: t for t in tiers}
    now_tier = by_code.get(current) if current is not None else None
    reached = qualified_tier(tiers, value)
    reached_rank = reached.rank if reached is not None else -1
    current_rank = now_tier.rank if now_tier is not None else -1
    if current is not None and now_tier is None:  # the tier was deleted: take what is reached now
        return ("downgrade" if reached is None else "upgrade", None if reached is None else reached.code)
    if reached_rank > current_rank:
        assert reached is not None
        return "upgrade", reached.code
    if not review or current is None:
        return "none", current
    if reached_rank == current_rank:
        return "keep", current
    if grace_pending and not grace_over:
        return "grace", current
    return "downgrade", None if reached is None else reached.code


# --- coupons ------------------------------------------------------------------------------------------

#: every refusal has one of these stable reason codes (checked in this order)
COUPON_REASONS = (
    "unknown_code",
    "inactive",
    "not_started",
    "expired",
    "wrong_market",
    "not_for_customer",
    "currency_mismatch",
    "min_spend_not_met",
    "not_stackable",
    "used_up",
    "customer_required",
    "customer_limit_reached",
)


@dataclass(frozen=True)
class CouponSpec:
    discount_kind: str  # fixed | percent | free_shipping
    amount: Decimal | None = None
    currency: str | None = None
    percent: Decimal | None = None
    min_spend: Mapping[str, Decimal] = field(default_factory=dict)
    markets: frozenset[str] = frozenset()
    max_redemptions: int | None = None
    limit_per_customer: int | None = None
    stackable: bool = False
    starts_at: datetime | None = None
    expires_at: datetime | None = None
    active: bool = True
    owner_id: str | None = None  # a personal code


def coupon_refusal(
    spec: CouponSpec,
    *,
    redemptions: int,
    order_total: Decimal,
    currency: str,
    at: datetime,
    customer_id: str | None = None,
    customer_uses: int = 0,
    market: str | None = None,
    others_stackable: Sequence[bool] = (),
) -> str | None:
    """Why the code cannot be used on this order (a stable reason code), or None."""
    if not spec.active:
        return "inactive"
    if spec.starts_at is not None and at < spec.starts_at:
        return "not_started"
    if spec.expires_at is not None and at >= spec.expires_at:
        return "expired"
    if spec.markets and market not in spec.markets:
        return "wrong_market"
    if spec.owner_id is not None and customer_id != spec.owner_id:
        return "not_for_customer"
    if spec.discount_kind == "fixed" and spec.currency != currency:
        return "currency_mismatch"
    minimum = spec.min_spend.get(currency)
    if minimum is not None and order_total < minimum:
        return "min_spend_not_met"
    if others_stackable and (not spec.stackable or not all(others_stackable)):
        return "not_stackable"
    if spec.max_redemptions is not None and redemptions >= spec.max_redemptions:
        return "used_up"
    if spec.limit_per_customer is not None:
        if customer_id is None:
            return "customer_required"
        if customer_uses >= spec.limit_per_customer:
            return "customer_limit_reached"
    return None


def coupon_discount(spec: CouponSpec, order_total: Decimal, currency: str, exponent: int) -> dict[str, Any]:
    """The discount on an order: a fixed amount (never more than the order), a percentage rounded
    half-up to the currency's minor unit, or free shipping."""
    unit = Decimal(1).scaleb(-exponent)
    if spec.discount_kind == "fixed":
        assert spec.amount is not None
        amount = min(spec.amount, max(order_total, Decimal(0)))
        return {"type": "fixed", "amount": str(amount.quantize(unit)), "currency": currency}
    if spec.discount_kind == "percent":
        assert spec.percent is not None
        amount = (max(order_total, Decimal(0)) * spec.percent / 100).quantize(unit, rounding="ROUND_HALF_UP")
        return {
            "type": "percent",
            "percent": format(spec.percent.normalize(), "f"),
            "amount": str(amount),
            "currency": currency,
        }
    return {"type": "free_shipping"}
