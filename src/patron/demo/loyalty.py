"""The demo's loyalty programme, and members' ledgers replayed from the demo's order history.

Everything goes through ``patron.loyalty``'s public functions — the same commands the API and the
event handlers use — with the clock set to the moment each thing happened: orders earn pending
points when placed, vest 14 days after fulfilment, refunds reverse them line by line, lots expire 12
months after they were credited, tiers are reviewed, members redeem rewards and pay with points at
the till, coupon codes are used on orders, referred customers convert on their first purchase. No
balance is written directly, so the reconciliation (balance = Σ ledger = Σ lots) holds by
construction.

History is not announced: the loyalty notifications the replay queued (``points.earned`` two years
ago, ``tier.changed`` …) are withdrawn from the outbox before the caller commits, just as the
commerce backfill emits no events. Only the rows the replay itself added are withdrawn (their ids are
recorded as the session flushes them): events other transactions queue meanwhile — a live server's —
are left alone.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session

from patron.commerce import get_order
from patron.core.clock import FrozenClock, use_clock
from patron.core.errors import PatronError
from patron.core.outbox import DomainEvent, OutboxEvent
from patron.demo.contracts import DemoPlan, PlannedOrder
from patron.demo.plan import referral_code_of
from patron.loyalty import (
    REFERRAL_CONVERTED,
    attribute_referral,
    create_promotion,
    create_reward,
    create_rule,
    create_tier,
    enrol_customer,
    events,
    expire_due,
    generate_coupons,
    get_account,
    list_market_settings,
    list_tiers,
    on_first_purchase,
    on_order_fulfilled,
    on_order_placed,
    on_order_refunded,
    put_market_settings,
    reconcile,
    redeem_coupon,
    redeem_points,
    redeem_reward,
    referral_code_for,
    report_event,
    review_tiers,
    update_programme,
    vest_due,
)

PENDING_DAYS = 14
REFERRAL_PAIRS = 4
COUPON_REDEEMED = "coupon.redeemed"  # patron.loyalty.coupons emits it; not exported
TICK_DAYS = 2
EXPIRY_MONTHS = 12

# market → (points, per spend, value of one point) — 1 point per 10,000 VND, per 100 HUF, per 10 THB,
# per 1 EUR/USD; a point is worth about 1 % of what earns it.
MARKET_EARNING: dict[str, tuple[int, Decimal, Decimal]] = {
    "VN": (1, Decimal(10000), Decimal(100)),
    "HU": (1, Decimal(100), Decimal(1)),
    "TH": (1, Decimal(10), Decimal("0.10")),
    "EU": (1, Decimal(1), Decimal("0.01")),
    "US": (1, Decimal(1), Decimal("0.01")),
}

TIERS: tuple[dict[str, Any], ...] = (
    {
        "code": "member",
        "rank": 0,
        "threshold": 0,
        "names": {"en": "Member", "vi": "Thành viên", "hu": "Tag", "th": "สมาชิก"},
        "perks": ["Birthday bonus"],
    },
    {
        "code": "silver",
        "rank": 1,
        "threshold": 300,
        "multiplier": "1.25",
        "names": {"en": "Silver", "vi": "Bạc", "hu": "Ezüst", "th": "ซิลเวอร์"},
        "perks": ["Birthday bonus", "Free shipping on orders over the minimum"],
    },
    {
        "code": "gold",
        "rank": 2,
        "threshold": 1000,
        "multiplier": "1.5",
        "names": {"en": "Gold", "vi": "Vàng", "hu": "Arany", "th": "โกลด์"},
        "perks": ["Birthday bonus", "Free shipping", "Tasting events"],
    },
)

REWARDS: tuple[dict[str, Any], ...] = (
    {
        "kind": "free_shipping",
        "cost_points": 150,
        "names": {
            "en": "Free shipping",
            "vi": "Miễn phí vận chuyển",
            "hu": "Ingyenes szállítás",
            "th": "จัดส่งฟรี",
        },
        "descriptions": {
            "en": "Free delivery on your next order.",
            "vi": "Miễn phí giao hàng cho đơn hàng tiếp theo.",
            "hu": "Ingyenes kiszállítás a következő rendelésnél.",
            "th": "จัดส่งฟรีสำหรับคำสั่งซื้อถัดไป",
        },
    },
    {
        "kind": "discount_percent",
        "cost_points": 300,
        "percent": "10",
        "names": {
            "en": "10 % off your next order",
            "vi": "Giảm 10 % cho đơn hàng tiếp theo",
            "hu": "10 % kedvezmény a következő rendelésből",
            "th": "ส่วนลด 10 % สำหรับคำสั่งซื้อถัดไป",
        },
    },
    {
        "kind": "discount_fixed",
        "cost_points": 500,
        "value_amount": "50000",
        "currency": "VND",
        "markets": ["VN"],
        "names": {
            "en": "50,000 VND voucher",
            "vi": "Phiếu mua hàng 50.000 ₫",
            "hu": "50 000 VND értékű utalvány",
            "th": "บัตรกำนัล 50,000 ดอง",
        },
    },
    {
        "kind": "discount_fixed",
        "cost_points": 500,
        "value_amount": "500",
        "currency": "HUF",
        "markets": ["HU"],
        "names": {
            "en": "500 HUF voucher",
            "vi": "Phiếu mua hàng 500 HUF",
            "hu": "500 Ft értékű utalvány",
            "th": "บัตรกำนัล 500 ฟอรินต์",
        },
    },
    {
        "kind": "discount_fixed",
        "cost_points": 500,
        "value_amount": "50",
        "currency": "THB",
        "markets": ["TH"],
        "names": {
            "en": "50 THB voucher",
            "vi": "Phiếu mua hàng 50 THB",
            "hu": "50 THB értékű utalvány",
            "th": "บัตรกำนัล 50 บาท",
        },
    },
    {
        "kind": "gift",
        "cost_points": 400,
        "stock": 150,
        "names": {
            "en": "Canvas tote bag",
            "vi": "Túi vải canvas",
            "hu": "Vászon bevásárlótáska",
            "th": "กระเป๋าผ้าแคนวาส",
        },
    },
    {
        "kind": "event",
        "cost_points": 800,
        "stock": 40,
        "tiers": ["gold"],
        "names": {
            "en": "Tasting evening for Gold members",
            "vi": "Buổi thưởng trà dành cho hội viên Vàng",
            "hu": "Kóstoló est Arany tagoknak",
            "th": "งานชิมชาสำหรับสมาชิกโกลด์",
        },
    },
)

EXPIRY_ZONE = "Europe/Budapest"

#: outbox rows withdrawn per DELETE (one bound parameter each; drivers cap them at 32,766–65,535)
WITHDRAW_CHUNK = 1000


@dataclass(frozen=True)
class LoyaltyDemoSummary:
    members: int
    drift: int
    redemptions: int
    coupon_redemptions: int
    referrals: int
    seconds: float
    cpu_seconds: float


def is_configured(session: Session) -> bool:
    """A programme that already has tiers or earning markets is left alone (``demo --force``)."""
    return bool(list_tiers(session) or list_market_settings(session))


@contextmanager
def _at(moment: datetime) -> Iterator[None]:
    with use_clock(FrozenClock(moment)):
        yield


@contextmanager
def _queued_by(session: Session, names: frozenset[str]) -> Iterator[list[str]]:
    """The ids of the outbox rows named ``names`` that ``session`` flushes inside the block."""
    ids: list[str] = []

    def record(_: Session, instance: object) -> None:
        if isinstance(instance, OutboxEvent) and instance.name in names:
            ids.append(instance.id)

    orm_event.listen(session, "pending_to_persistent", record)
    try:
        yield ids
    finally:
        orm_event.remove(session, "pending_to_persistent", record)


def _withdraw(session: Session, ids: list[str]) -> None:
    for start in range(0, len(ids), WITHDRAW_CHUNK):
        chunk = ids[start : start + WITHDRAW_CHUNK]
        session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(chunk)))


def _setup(session: Session, plan: DemoPlan) -> dict[str, str]:
    """The programme, markets, tiers, rules, rewards and a coupon promotion, as of the first day."""
    update_programme(
        session,
        name="Patron Tea & Coffee Club",
        enrolment="opt_in",
        pending_days=PENDING_DAYS,
        expiry_policy="rolling",
        expiry_months=EXPIRY_MONTHS,
        tier_basis="points",
        tier_window="rolling",
        tier_window_months=12,
        tier_grace_days=30,
        referral_referrer_points=200,
        referral_referred_points=100,
        referral_trigger="first_purchase",
        referral_cap=20,
    )
    known = {m.code for m in plan.markets}
    for code, (points, spend, value) in MARKET_EARNING.items():
        if code in known:
            put_market_settings(
                session, code, earn_spend_amount=spend, earn_points=points, point_value_amount=value
            )
    for tier in TIERS:
        create_tier(session, tier)
    zone = ZoneInfo(plan.time_zone)
    end = datetime.combine(plan.end, time(0), zone)
    double_start = (end - timedelta(days=75)).replace(hour=0, minute=0)
    create_rule(
        session,
        {
            "name": "Double points week",
            "kind": "multiplier",
            "multiplier": "2",
            "conditions": {
                "starts_at": double_start.isoformat(),
                "ends_at": (double_start + timedelta(days=7)).isoformat(),
            },
        },
    )
    create_rule(
        session,
        {
            "name": "Tea lovers: × 1.5 on tea",
            "kind": "multiplier",
            "multiplier": "1.5",
            "conditions": {"categories": ["Tea"]},
        },
    )
    create_rule(
        session,
        {
            "name": "Welcome bonus",
            "kind": "bonus",
            "points": 50,
            "event_type": "signup",
            "limit_per_customer": 1,
        },
    )
    create_rule(session, {"name": "Birthday bonus", "kind": "bonus", "points": 100, "event_type": "birthday"})
    rewards = {}
    for reward in REWARDS:
        view = create_reward(session, reward)
        rewards[f"{reward['kind']}:{reward.get('currency', '')}"] = view.id
    return rewards


@dataclass
class _Replay:
    session: Session
    plan: DemoPlan
    customer_ids: dict[str, str]
    order_ids: dict[str, str]
    rewards: dict[str, str]
    rng: random.Random
    redemptions: int = 0
    coupon_redemptions: int = 0
    referrals: int = 0

    def run(self, actions: list[tuple[datetime, int, Callable[[], None]]]) -> None:
        heapq.heapify(actions)
        while actions:
            moment, _, action = heapq.heappop(actions)
            with _at(moment):
                try:
                    action()
                except PatronError:  # a refusal (not enough points, out of stock …) is part of life
                    continue

    # --- what happens --------------------------------------------------------------------------

    def place(self, order: PlannedOrder) -> None:
        order_id = self.order_ids[order.external_id]
        customer_id = self.customer_ids[order.customer_external_id]
        event = DomainEvent(
            id=f"demo-placed-{order.external_id}",
            name="order.placed",
            payload={"order_id": order_id, "customer_id": customer_id, "market": order.market},
            occurred_at=order.placed_at,
        )
        on_first_purchase(self.session, event)
        on_order_placed(self.session, event)

    def fulfil(self, order: PlannedOrder) -> None:
        assert order.fulfilled_at is not None
        on_order_fulfilled(
            self.session,
            DomainEvent(
                id=f"demo-fulfilled-{order.external_id}",
                name="order.fulfilled",
                payload={
                    "order_id": self.order_ids[order.external_id],
                    "fulfilled_at": order.fulfilled_at.isoformat(),
                },
                occurred_at=order.fulfilled_at,
            ),
        )

    def refund(self, order: PlannedOrder, index: int) -> None:
        refund = order.refunds[index]
        record = get_order(self.session, self.order_ids[order.external_id])
        line = record.lines[refund.line_index]
        on_order_refunded(
            self.session,
            DomainEvent(
                id=f"demo-refund-{order.external_id}-{index}",
                name="order.refunded",
                payload={
                    "order_id": record.id,
                    "lines": [{"line_id": line.id, "quantity": refund.quantity}],
                },
                occurred_at=refund.refunded_at,
            ),
        )

    def tick(self, moment: datetime, review: bool) -> None:
        while vest_due(self.session, at=moment):
            pass
        while expire_due(self.session, at=moment):
            pass
        if review:
            review_tiers(self.session, at=moment)

    def spend(self, order: PlannedOrder, key: str) -> None:
        """At the till before an order: redeem the best reward the member can afford, or pay with
        points."""
        customer_id = self.customer_ids[order.customer_external_id]
        account = get_account(self.session, customer_id)
        if account.available < 150:
            return
        if self.rng.random() < 0.25:
            redeem_points(
                self.session,
                customer_id,
                min(account.available, 200),
                market_code=order.market,
                key=f"demo:{key}",
            )
            self.redemptions += 1
            return
        choices = [
            ("event:", 800, account.tier_code == "gold"),
            (f"discount_fixed:{order.currency}", 500, True),
            ("gift:", 400, True),
            ("discount_percent:", 300, True),
            ("free_shipping:", 150, True),
        ]
        for slot, cost, allowed in choices:
            if allowed and slot in self.rewards and cost <= account.available:
                redeem_reward(
                    self.session, customer_id, self.rewards[slot], market_code=order.market, key=f"demo:{key}"
                )
                self.redemptions += 1
                return

    def use_coupon(self, order: PlannedOrder, code: str) -> None:
        redeem_coupon(
            self.session,
            code,
            order_total=order.total,
            currency=order.currency,
            customer_id=self.customer_ids[order.customer_external_id],
            market=order.market,
            key=f"demo:{order.external_id}",
        )
        self.coupon_redemptions += 1

    def join(self, external_id: str) -> None:
        enrol_customer(self.session, self.customer_ids[external_id])

    def bonus(self, external_id: str, kind: str, moment: datetime) -> None:
        report_event(self.session, self.customer_ids[external_id], kind, occurred_at=moment)

    def refer(self, referrer: str, referred: str) -> None:
        code = referral_code_for(self.session, self.customer_ids[referrer])
        if attribute_referral(self.session, self.customer_ids[referred], code) is not None:
            self.referrals += 1

    def debt(self, order: PlannedOrder) -> None:
        """The debt case: a member spends everything just before a refund reverses vested points."""
        customer_id = self.customer_ids[order.customer_external_id]
        available = get_account(self.session, customer_id).available
        if available > 0:
            redeem_points(self.session, customer_id, available, market_code=order.market, key="demo:debt")
            self.redemptions += 1


def choose_members(
    plan: DemoPlan,
    orders_of: dict[str, list[PlannedOrder]],
    referrers: dict[str, str],
    count: int,
    rng: random.Random,
) -> set[str]:
    """Who joined the (opt-in) programme (external ids): the customer of the debt case, a few
    referrers with the buyers they referred, the most frequent buyers (a sixth) and a random sample
    of the other buyers."""
    members: set[str] = set()
    debt = _debt_candidate(plan, orders_of)
    if debt is not None:
        members.add(debt.customer_external_id)
    pairs = sorted((r, c) for c, r in referrers.items() if r in orders_of and c in orders_of and r != c)
    for referrer, referred in rng.sample(pairs, min(len(pairs), REFERRAL_PAIRS)):
        members |= {referrer, referred}
    buyers = sorted(orders_of, key=lambda ext: (-len(orders_of[ext]), ext))
    members |= set(buyers[: count // 6])
    rest = [b for b in buyers if b not in members]
    members |= set(rng.sample(rest, max(0, min(len(rest), count - len(members)))))
    return members


def seed_loyalty(
    session: Session,
    plan: DemoPlan,
    customer_ids: dict[str, str],
    order_ids: dict[str, str],
    *,
    seed: int,
    members: int,
) -> LoyaltyDemoSummary:
    """Set up the demo programme and replay the members' ledgers from the order history (``members``
    customers joined the opt-in programme; replaying every customer's ledger through the full
    domain path would take minutes)."""
    import time as timer

    started, cpu = timer.perf_counter(), timer.process_time()
    announced = frozenset((*events.ALL_EVENTS, REFERRAL_CONVERTED, COUPON_REDEEMED))
    with _queued_by(session, announced) as queued:
        summary = _replay(session, plan, customer_ids, order_ids, seed=seed, members=members)
        session.flush()  # whatever the replay left pending is recorded, too
    _withdraw(session, queued)
    session.flush()
    check = reconcile(session)
    return LoyaltyDemoSummary(
        members=check.accounts,
        drift=len(check.drift),
        redemptions=summary.redemptions,
        coupon_redemptions=summary.coupon_redemptions,
        referrals=summary.referrals,
        seconds=round(timer.perf_counter() - started, 2),
        cpu_seconds=round(timer.process_time() - cpu, 2),
    )


def _replay(
    session: Session,
    plan: DemoPlan,
    customer_ids: dict[str, str],
    order_ids: dict[str, str],
    *,
    seed: int,
    members: int,
) -> _Replay:
    zone = ZoneInfo(plan.time_zone)
    first = datetime.combine(plan.start, time(0), zone) - timedelta(days=1)
    with _at(first):
        rewards = _setup(session, plan)
        promotion = create_promotion(
            session,
            {
                "name": "Welcome 10 %",
                "discount_kind": "percent",
                "percent": "10",
                "usage": "single_use",
                "limit_per_customer": 1,
            },
        )
        codes = sorted(generate_coupons(session, promotion.id, 200, prefix="WELCOME"))
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    replay = _Replay(session, plan, customer_ids, order_ids, rewards, rng)
    actions: list[tuple[datetime, int, Callable[[], None]]] = []
    seq = iter(range(10**9))

    def add(moment: datetime, action: Callable[[], None]) -> None:
        actions.append((moment.astimezone(UTC), next(seq), action))

    start = datetime.combine(plan.start, time(0), zone)
    end = datetime.combine(plan.end, time(0), zone)
    by_code: dict[str, str] = {}
    for customer in plan.customers:
        if customer.external_id not in customer_ids:
            continue
        by_code.setdefault(referral_code_of(customer), customer.external_id)
    orders_of: dict[str, list[PlannedOrder]] = {}
    for order in plan.orders:
        if order.external_id in order_ids and order.customer_external_id in customer_ids:
            orders_of.setdefault(order.customer_external_id, []).append(order)
    referrers = {
        c.external_id: by_code[c.referral_code]
        for c in plan.customers
        if c.referral_code in by_code and c.external_id in customer_ids
    }
    joining = choose_members(plan, orders_of, referrers, members, rng)
    debt_order = _debt_candidate(plan, orders_of)
    coupons = iter(codes)
    for orders in orders_of.values():
        opening = next((o for o in orders if o.status != "cancelled"), None)
        if opening is not None and rng.random() < 0.1:
            code = next(coupons, None)
            if code is not None:
                add(opening.placed_at + timedelta(seconds=1), partial(replay.use_coupon, opening, code))
    for customer in plan.customers:
        ext = customer.external_id
        if ext not in customer_ids or ext not in joining:
            continue
        joined = max(customer.signed_up_at, start)
        add(joined - timedelta(seconds=1), partial(replay.join, ext))
        if customer.signed_up_at >= start:
            add(joined, partial(replay.bonus, ext, "signup", joined))
        referrer = referrers.get(ext)
        if referrer is not None and referrer != ext and referrer in joining:
            add(joined + timedelta(seconds=1), partial(replay.refer, referrer, ext))
        if customer.birthday is not None:
            for year in range(plan.start.year, plan.end.year + 1):
                try:
                    day = customer.birthday.replace(year=year)
                except ValueError:  # 29 February
                    continue
                moment = datetime.combine(day, time(9), ZoneInfo(customer.time_zone))
                if (
                    debt_order is not None
                    and debt_order.customer_external_id == ext
                    and moment > debt_order.refunds[0].refunded_at
                ):
                    continue  # the debt case keeps its debt: no bonus pays it afterwards
                if joined < moment < end and ext in orders_of:
                    add(moment, partial(replay.bonus, ext, "birthday", moment))
    for ext in sorted(joining):
        for index, order in enumerate(orders_of[ext]):
            if order.status == "cancelled":
                continue
            if index > 0 and rng.random() < 0.35:
                add(order.placed_at - timedelta(minutes=5), partial(replay.spend, order, order.external_id))
            add(order.placed_at, partial(replay.place, order))
            if order.fulfilled_at is not None:
                add(order.fulfilled_at, partial(replay.fulfil, order))
            for i, refund in enumerate(order.refunds):
                add(refund.refunded_at, partial(replay.refund, order, i))
    if debt_order is not None:
        refunded_at = debt_order.refunds[0].refunded_at
        add(refunded_at - timedelta(hours=1), partial(replay.debt, debt_order))
    # the worker's jobs, every other night: vest due order points, expire due lots; review tiers weekly
    day, index = start, 0
    while day <= end:
        tick = day + timedelta(hours=23, minutes=30)
        add(tick, partial(replay.tick, tick, index % (7 // TICK_DAYS) == 0))
        day += timedelta(days=TICK_DAYS)
        index += 1
    replay.run(actions)
    with _at(end):
        replay.tick(end, True)
    return replay


def _debt_candidate(plan: DemoPlan, orders_of: dict[str, list[PlannedOrder]]) -> PlannedOrder | None:
    """The latest refund of points that had vested, by a customer who orders nothing afterwards."""
    best: PlannedOrder | None = None
    for orders in orders_of.values():
        for order in orders:
            if not order.refunds or order.fulfilled_at is None or order.status == "cancelled":
                continue
            refunded_at = order.refunds[0].refunded_at
            if order.fulfilled_at + timedelta(days=PENDING_DAYS + 1) >= refunded_at:
                continue
            if any(o.placed_at > refunded_at for o in orders):
                continue
            if best is None or refunded_at > best.refunds[0].refunded_at:
                best = order
    return best
