"""Loyalty commands: the programme and market settings, enrolment, and the ledger.

Every balance change is one ledger entry plus one conditional atomic UPDATE of the account row
(``available + delta >= 0`` and the same guard for pending, debt and held) in the same transaction,
together with the lot changes. The account UPDATE comes first in every command, so on PostgreSQL it
also serialises the lot changes of one account (its row lock is held until commit); on SQLite the
write transaction (``BEGIN IMMEDIATE``) does. Debits consume lots first-in-first-out; credits pay the
account's debt first. Every mutation carries an idempotency key (unique in the ledger): a replayed
key changes nothing and answers the first result.

Commands flush and never commit (the adapter owns the unit of work).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import Table, func, select, table, update
from sqlalchemy import column as table_column
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.core.audit import current_actor, record_audit
from patron.core.business import business_zone, get_market
from patron.core.clock import now
from patron.core.errors import Conflict, ValidationFailed
from patron.core.i18n import N_
from patron.core.ids import new_id
from patron.core.money import is_known_currency
from patron.core.outbox import batch_memo, emit_event
from patron.customers import CustomerErased, CustomerNotFound, record_interaction, set_traits
from patron.loyalty import events, rules
from patron.loyalty.contracts import (
    TRAIT_SOURCE,
    AccountView,
    Drift,
    EntryView,
    MarketSettingsView,
    ProgrammeView,
    Reconciliation,
    RedemptionView,
)
from patron.loyalty.errors import (
    AccountClosed,
    IdempotencyKeyReused,
    InsufficientPoints,
    MarketNotConfigured,
    NotEnrolled,
    RedemptionNotFound,
    RedemptionState,
)
from patron.loyalty.models import (
    PROGRAMME_ID,
    LoyaltyAccount,
    LoyaltyEntry,
    LoyaltyLot,
    LoyaltyLotUse,
    LoyaltyMarket,
    LoyaltyProgramme,
    LoyaltyRedemption,
)

_ACCOUNTS = cast(Table, LoyaltyAccount.__table__)
_LOTS = cast(Table, LoyaltyLot.__table__)
_REDEMPTIONS = cast(Table, LoyaltyRedemption.__table__)

#: the columns of the customers table that enrolment reads (a light read; the customers package
#: owns the table and its model)
_CUSTOMERS = table("customers", table_column("id"), table_column("merged_into_id"), table_column("erased_at"))

MAX_KEY = 300
_RETRIES = 20

T = TypeVar("T")


def memoised(session: Session, key: tuple[Any, ...], load: Callable[[], T]) -> T:
    """``load()`` once per dispatch batch (see :func:`patron.core.outbox.batch_memo`); outside a
    batch — requests, commands, tests — every call loads. For read-mostly configuration only."""
    memo = batch_memo(session)
    if memo is None:
        return load()
    full = ("loyalty", *key)
    if full not in memo:
        memo[full] = load()
    return cast(T, memo[full])


def _invalid(loc: list[str | int], msg: str, code: str) -> ValidationFailed:
    return ValidationFailed(msg, code=code, errors=[{"loc": loc, "msg": msg, "type": code}])


# --- programme and markets ------------------------------------------------------------------------


def _programme_row(session: Session) -> LoyaltyProgramme:
    memo = batch_memo(session)
    if memo is not None and ("loyalty", "programme") in memo:
        return cast(LoyaltyProgramme, memo["loyalty", "programme"])
    row = session.get(LoyaltyProgramme, PROGRAMME_ID)
    if row is not None and memo is not None:
        memo["loyalty", "programme"] = row  # a strong reference keeps it in the identity map
    if row is None:
        row = LoyaltyProgramme(id=PROGRAMME_ID)
        session.add(row)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:  # created concurrently
            row = session.get(LoyaltyProgramme, PROGRAMME_ID, populate_existing=True)
            assert row is not None
    return row


def programme_view(row: LoyaltyProgramme) -> ProgrammeView:
    return ProgrammeView(
        name=row.name,
        enrolment=row.enrolment,
        pending_days=row.pending_days,
        expiry_policy=row.expiry_policy,
        expiry_months=row.expiry_months,
        tier_basis=row.tier_basis,
        tier_window=row.tier_window,
        tier_window_months=row.tier_window_months,
        tier_grace_days=row.tier_grace_days,
        referral_referrer_points=row.referral_referrer_points,
        referral_referred_points=row.referral_referred_points,
        referral_trigger=row.referral_trigger,
        referral_cap=row.referral_cap,
        version=row.version,
        updated_at=row.updated_at,
    )


def get_programme(session: Session) -> ProgrammeView:
    return programme_view(_programme_row(session))


def update_programme(session: Session, **changes: Any) -> ProgrammeView:
    """Change the programme settings (audited with old and new values)."""
    row = _programme_row(session)
    errors: list[dict[str, Any]] = []
    allowed = {
        "name",
        "enrolment",
        "pending_days",
        "expiry_policy",
        "expiry_months",
        "tier_basis",
        "tier_window",
        "tier_window_months",
        "tier_grace_days",
        "referral_referrer_points",
        "referral_referred_points",
        "referral_trigger",
        "referral_cap",
    }
    for key in changes:
        if key not in allowed:
            errors.append({"loc": [key], "msg": "not a programme setting", "type": "unknown_field"})
    if "enrolment" in changes and changes["enrolment"] not in rules.ENROLMENTS:
        errors.append({"loc": ["enrolment"], "msg": "automatic or opt_in", "type": "invalid_choice"})
    if "expiry_policy" in changes and changes["expiry_policy"] not in rules.EXPIRY_POLICIES:
        errors.append(
            {"loc": ["expiry_policy"], "msg": "never, rolling or end_of_year", "type": "invalid_choice"}
        )
    if "tier_basis" in changes and changes["tier_basis"] not in rules.TIER_BASES:
        errors.append({"loc": ["tier_basis"], "msg": "points or spend", "type": "invalid_choice"})
    if "tier_window" in changes and changes["tier_window"] not in rules.TIER_WINDOWS:
        errors.append({"loc": ["tier_window"], "msg": "rolling or calendar_year", "type": "invalid_choice"})
    if "referral_trigger" in changes and changes["referral_trigger"] not in ("signup", "first_purchase"):
        errors.append(
            {"loc": ["referral_trigger"], "msg": "signup or first_purchase", "type": "invalid_choice"}
        )
    for key, top in (
        ("pending_days", 3650),
        ("expiry_months", 600),
        ("tier_window_months", 120),
        ("tier_grace_days", 3650),
        ("referral_referrer_points", 1_000_000),
        ("referral_referred_points", 1_000_000),
        ("referral_cap", 1_000_000),
    ):
        value = changes.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top
        ):
            errors.append({"loc": [key], "msg": f"a whole number from 0 to {top}", "type": "out_of_range"})
    name = changes.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 200):
        errors.append({"loc": ["name"], "msg": "1 to 200 characters", "type": "invalid"})
    if errors:
        raise ValidationFailed("invalid programme settings", code="invalid_programme", errors=errors)
    old = programme_view(row).__dict__.copy()
    for key, value in changes.items():
        if value is not None or key == "referral_cap":  # a null cap means no cap
            setattr(row, key, value.strip() if isinstance(value, str) and key == "name" else value)
    session.flush()
    new = programme_view(row)
    record_audit(
        session,
        "loyalty.programme_updated",
        "loyalty_programme",
        str(PROGRAMME_ID),
        old=old,
        new=new.__dict__,
    )
    return new


def market_view(row: LoyaltyMarket) -> MarketSettingsView:
    return MarketSettingsView(
        market_code=row.market_code,
        currency=row.currency,
        earn_spend_amount=Decimal(row.earn_spend_amount),
        earn_points=row.earn_points,
        earn_base=row.earn_base,
        point_value_amount=Decimal(row.point_value_amount),
        cap_per_order=row.cap_per_order,
        cap_per_day=row.cap_per_day,
        version=row.version,
    )


def list_market_settings(session: Session) -> list[MarketSettingsView]:
    return [
        market_view(r) for r in session.scalars(select(LoyaltyMarket).order_by(LoyaltyMarket.market_code))
    ]


def get_market_settings(session: Session, market_code: str) -> MarketSettingsView:
    row = session.scalar(select(LoyaltyMarket).where(LoyaltyMarket.market_code == market_code))
    if row is None:
        raise MarketNotConfigured(f"market {market_code!r} has no loyalty settings")
    return market_view(row)


def settings_for(session: Session, market_code: str | None, currency: str) -> MarketSettingsView | None:
    """The settings that apply to an order: its market's, else the first market in its currency."""
    return memoised(
        session, ("settings", market_code, currency), lambda: _settings_for(session, market_code, currency)
    )


def _settings_for(session: Session, market_code: str | None, currency: str) -> MarketSettingsView | None:
    row = None
    if market_code is not None:
        row = session.scalar(select(LoyaltyMarket).where(LoyaltyMarket.market_code == market_code))
    if row is None:
        row = session.scalar(
            select(LoyaltyMarket)
            .where(LoyaltyMarket.currency == currency)
            .order_by(LoyaltyMarket.market_code)
        )
    return None if row is None else market_view(row)


def _positive_int_or_none(value: Any) -> bool:
    return value is None or (
        not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= 1_000_000_000
    )


def put_market_settings(
    session: Session,
    market_code: str,
    *,
    earn_spend_amount: Decimal,
    earn_points: int = 1,
    earn_base: str = "net",
    point_value_amount: Decimal,
    cap_per_order: int | None = None,
    cap_per_day: int | None = None,
) -> MarketSettingsView:
    """Create or replace a market's earning settings (the market must exist; its currency is used)."""
    market = get_market(session, market_code)
    errors: list[dict[str, Any]] = []
    if (
        not isinstance(earn_spend_amount, Decimal)
        or not earn_spend_amount.is_finite()
        or earn_spend_amount <= 0
    ):
        errors.append({"loc": ["earn_spend_amount"], "msg": "must be > 0", "type": "out_of_range"})
    if isinstance(earn_points, bool) or not isinstance(earn_points, int) or not 0 <= earn_points <= 1_000_000:
        errors.append({"loc": ["earn_points"], "msg": "a whole number ≥ 0", "type": "out_of_range"})
    if earn_base not in rules.EARN_BASES:
        errors.append({"loc": ["earn_base"], "msg": "net or total", "type": "invalid_choice"})
    if (
        not isinstance(point_value_amount, Decimal)
        or not point_value_amount.is_finite()
        or point_value_amount < 0
    ):
        errors.append({"loc": ["point_value_amount"], "msg": "must be ≥ 0", "type": "out_of_range"})
    for name, value in (("cap_per_order", cap_per_order), ("cap_per_day", cap_per_day)):
        if not _positive_int_or_none(value):
            errors.append({"loc": [name], "msg": "a whole number ≥ 0 or null", "type": "out_of_range"})
    if errors:
        raise ValidationFailed("invalid market settings", code="invalid_market_settings", errors=errors)
    row = session.scalar(select(LoyaltyMarket).where(LoyaltyMarket.market_code == market.code))
    old = None if row is None else market_view(row).__dict__.copy()
    if row is None:
        row = LoyaltyMarket(market_code=market.code)
        session.add(row)
    row.currency = market.currency
    row.earn_spend_amount = earn_spend_amount
    row.earn_points = earn_points
    row.earn_base = earn_base
    row.point_value_amount = point_value_amount
    row.cap_per_order = cap_per_order
    row.cap_per_day = cap_per_day
    session.flush()
    view = market_view(row)
    record_audit(session, "loyalty.market_settings", "loyalty_market", row.id, old=old, new=view.__dict__)
    return view


# --- accounts ---------------------------------------------------------------------------------------


def _luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def new_card_number() -> str:
    """A 16-digit member card number (Luhn check digit), random so it cannot be guessed in sequence."""
    body = "9" + "".join(secrets.choice("0123456789") for _ in range(14))
    return body + _luhn_digit(body)


def _customer_link(session: Session, customer_id: str) -> tuple[str | None, bool]:
    """(merged into, erased) of a customer; :class:`CustomerNotFound` if there is none."""
    row = None
    if 0 < len(customer_id) <= 36 and "\x00" not in customer_id:
        row = session.execute(
            select(_CUSTOMERS.c.merged_into_id, _CUSTOMERS.c.erased_at).where(_CUSTOMERS.c.id == customer_id)
        ).first()
    if row is None:
        raise CustomerNotFound(f"no customer with id {customer_id!r}")
    return (None if row[0] is None else str(row[0])), row[1] is not None


def _current_customer(session: Session, customer_id: str) -> str:
    """The customer that holds the history now (merges followed); erased customers are refused."""
    current = customer_id
    merged_into, erased = _customer_link(session, current)
    seen = {current}
    while merged_into is not None and merged_into not in seen:
        current = merged_into
        merged_into, erased = _customer_link(session, current)
        seen.add(current)
    if erased:
        raise CustomerErased("the customer was erased")
    return current


def _account_row(session: Session, customer_id: str) -> LoyaltyAccount | None:
    return session.scalar(select(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id))


def _create_account(session: Session, customer_id: str) -> LoyaltyAccount:
    account = LoyaltyAccount(id=new_id(), customer_id=customer_id, card_number=new_card_number())
    session.add(account)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # enrolled concurrently (or, once in 10^14, a card number collision)
        found = _account_row(session, customer_id)
        if found is None:
            raise
        return found
    emit_event(session, events.LOYALTY_ENROLLED, {"customer_id": customer_id, "account_id": account.id})
    return account


def enrol_customer(session: Session, customer_id: str) -> AccountView:
    """Enrol a customer (opt-in, or automatic enrolment on ``customer.created``); idempotent."""
    current = _current_customer(session, customer_id)
    account = _account_row(session, current) or _create_account(session, current)
    return account_view(account)


def ensure_account(session: Session, customer_id: str, *, enrol: bool | None = None) -> LoyaltyAccount:
    """The customer's active account; created on first use when enrolment is automatic (or ``enrol``).
    Raises :class:`NotEnrolled` for an opt-in programme's non-member."""
    current = _current_customer(session, customer_id)
    account = _account_row(session, current)
    if account is None:
        automatic = _programme_row(session).enrolment == "automatic"
        if not (automatic if enrol is None else enrol):
            raise NotEnrolled("the customer has not joined the loyalty programme")
        account = _create_account(session, current)
    if account.status != "active":
        raise AccountClosed(f"the loyalty account is {account.status}")
    return account


def account_view(account: LoyaltyAccount) -> AccountView:
    return AccountView(
        customer_id=account.customer_id,
        account_id=account.id,
        enrolled=True,
        status=account.status,
        available=account.available,
        pending=account.pending,
        debt=account.debt,
        held=account.held,
        lifetime_earned=account.lifetime_earned,
        lifetime_redeemed=account.lifetime_redeemed,
        lifetime_expired=account.lifetime_expired,
        tier_code=account.tier_code,
        card_number=account.card_number,
        enrolled_at=account.enrolled_at,
    )


def get_account(session: Session, customer_id: str) -> AccountView:
    """A customer's balances; an enrolled customer without movements reads as zeros."""
    current = _current_customer(session, customer_id)
    account = session.scalar(
        select(LoyaltyAccount)
        .where(LoyaltyAccount.customer_id == current)
        .execution_options(populate_existing=True)
    )
    if account is not None:
        return account_view(account)
    enrolled = _programme_row(session).enrolment == "automatic"
    return AccountView(
        customer_id=current,
        account_id=None,
        enrolled=enrolled,
        status="active" if enrolled else "not_enrolled",
        available=0,
        pending=0,
        debt=0,
        held=0,
        lifetime_earned=0,
        lifetime_redeemed=0,
        lifetime_expired=0,
        tier_code=None,
        card_number=None,
        enrolled_at=None,
    )


# --- the ledger core --------------------------------------------------------------------------------


def entry_view(entry: LoyaltyEntry, *, replayed: bool = False) -> EntryView:
    return EntryView(
        id=entry.id,
        account_id=entry.account_id,
        kind=entry.kind,
        points=entry.points,
        pending=entry.pending,
        debt=entry.debt,
        held=entry.held,
        reason=entry.reason,
        source=entry.source,
        source_id=entry.source_id,
        actor=entry.actor,
        occurred_at=entry.occurred_at,
        data=dict(entry.data or {}),
        replayed=replayed,
    )


def _check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY or "\x00" in key:
        raise _invalid(["idempotency_key"], f"1 to {MAX_KEY} characters", "invalid_idempotency_key")
    return key


def find_entry(session: Session, key: str) -> LoyaltyEntry | None:
    return session.scalar(select(LoyaltyEntry).where(LoyaltyEntry.idempotency_key == key))


@dataclass(frozen=True)
class _Delta:
    points: int = 0
    pending: int = 0
    debt: int = 0
    held: int = 0
    earned: int = 0
    redeemed: int = 0
    expired: int = 0


def _apply(
    session: Session,
    account_id: str,
    delta: _Delta,
    *,
    expect_debt: int | None = None,
    expect_available: int | None = None,
    allow_closed: bool = False,
) -> bool:
    """The one conditional atomic UPDATE of an account's balances. False when a guard refused."""
    t = _ACCOUNTS
    conditions = [t.c.id == account_id]
    if not allow_closed:
        conditions.append(t.c.status == "active")
    for column, change in (
        (t.c.available, delta.points),
        (t.c.pending, delta.pending),
        (t.c.debt, delta.debt),
        (t.c.held, delta.held),
    ):
        if change < 0:
            conditions.append(column + change >= 0)
    if expect_debt is not None:
        conditions.append(t.c.debt == expect_debt)
    if expect_available is not None:
        conditions.append(t.c.available == expect_available)
    result = session.execute(
        update(t)
        .where(*conditions)
        .values(
            available=t.c.available + delta.points,
            pending=t.c.pending + delta.pending,
            debt=t.c.debt + delta.debt,
            held=t.c.held + delta.held,
            lifetime_earned=t.c.lifetime_earned + delta.earned,
            lifetime_redeemed=t.c.lifetime_redeemed + delta.redeemed,
            lifetime_expired=t.c.lifetime_expired + delta.expired,
            updated_at=now(),
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def _balances(session: Session, account_id: str) -> tuple[int, int, str]:
    row = session.execute(
        select(_ACCOUNTS.c.available, _ACCOUNTS.c.debt, _ACCOUNTS.c.status).where(
            _ACCOUNTS.c.id == account_id
        )
    ).one()
    return int(row[0]), int(row[1]), str(row[2])


def _add_entry(
    session: Session,
    account_id: str,
    kind: str,
    delta: _Delta,
    *,
    key: str,
    source: str,
    source_id: str | None = None,
    reason: str = "",
    data: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    quiet: bool = False,
) -> LoyaltyEntry:
    """Append a ledger entry; unless ``quiet`` (lifecycle transfers), publish the account's traits and
    a timeline entry for the movement."""
    entry = LoyaltyEntry(
        id=new_id(),
        account_id=account_id,
        kind=kind,
        points=delta.points,
        pending=delta.pending,
        debt=delta.debt,
        held=delta.held,
        reason=reason,
        source=source,
        source_id=source_id,
        actor=current_actor.get().ref[:100],
        idempotency_key=key,
        data=data or {},
        occurred_at=occurred_at or now(),
        created_at=now(),
    )
    session.add(entry)
    session.flush()
    if not quiet:
        publish_account(session, account_id, entry=entry)
    return entry


# what the customer's timeline says for each movement (translated when shown)
_TIMELINE: dict[str, str] = {
    "earn": N_("Points pending"),
    "vest": N_("Points earned"),
    "redeem": N_("Points redeemed"),
    "expire": N_("Points expired"),
    "adjust": N_("Points adjusted"),
    "reverse": N_("Points reversed"),
    "hold": N_("Points held"),
    "capture": N_("Held points spent"),
    "release": N_("Held points released"),
    "settle": N_("Points debt paid"),
    "opening": N_("Opening points balance"),
    "tier_changed": N_("Loyalty tier changed"),
}
EXPIRING_DAYS = 30
TRAIT_TIER = "tier"
TRAIT_BALANCE = "points_balance"
TRAIT_EXPIRING = "points_expiring_30d"


def expiring_points(session: Session, account_id: str, *, within_days: int = EXPIRING_DAYS) -> int:
    horizon = now() + timedelta(days=within_days)
    value = session.scalar(
        select(func.coalesce(func.sum(_LOTS.c.remaining), 0)).where(
            _LOTS.c.account_id == account_id,
            _LOTS.c.remaining > 0,
            _LOTS.c.expires_at.is_not(None),
            _LOTS.c.expires_at <= horizon,
        )
    )
    return int(value or 0)


def publish_account(
    session: Session,
    account_id: str,
    *,
    entry: LoyaltyEntry | None = None,
    timeline: tuple[str, dict[str, Any]] | None = None,
) -> None:
    """Publish the tier, points balance and points expiring within 30 days as customer traits, and
    append the movement (or ``timeline``: (kind, data)) to the customer's timeline."""
    row = session.execute(
        select(
            _ACCOUNTS.c.customer_id, _ACCOUNTS.c.status, _ACCOUNTS.c.available, _ACCOUNTS.c.tier_code
        ).where(_ACCOUNTS.c.id == account_id)
    ).one()
    customer_id, status, available, tier = str(row[0]), str(row[1]), int(row[2]), row[3]
    if status != "active":
        return
    set_traits(
        session,
        customer_id,
        {TRAIT_TIER: tier, TRAIT_BALANCE: available, TRAIT_EXPIRING: expiring_points(session, account_id)},
        source=TRAIT_SOURCE,
    )
    kind, data = timeline if timeline is not None else ("", {})
    if entry is not None:
        kind = "vest" if entry.kind == "earn" and entry.source == "event" else entry.kind
        data = {
            "entry_id": entry.id,
            "points": entry.points,
            "pending": entry.pending,
            "debt": entry.debt,
            "held": entry.held,
            "source": entry.source,
            "source_id": entry.source_id,
            "reason": entry.reason,
        }
    summary = _TIMELINE.get(kind)
    if summary is None:
        return
    record_interaction(
        session,
        customer_id,
        channel="loyalty",
        direction="internal",
        kind=f"loyalty.{kind}",
        summary=summary,
        data=data,
        occurred_at=entry.occurred_at if entry is not None else None,
        source=TRAIT_SOURCE,
    )


@contextmanager
def _once(session: Session) -> Iterator[None]:
    """A savepoint around one keyed mutation: a concurrent duplicate key rolls it back."""
    with session.begin_nested():
        yield


def _keyed(
    session: Session,
    key: str,
    work: Callable[[], T],
    replay: Callable[[LoyaltyEntry], T],
    *,
    looked_up: bool = False,
) -> T:
    """Run ``work`` once per idempotency key: an existing key replays; losing a race on the key to a
    concurrent transaction rolls this attempt back and replays the winner. ``looked_up``: the caller
    has just found no record written under the key in the same transaction as the entry would be
    (so the entry cannot exist either); the unique key still settles a race."""
    existing = None if looked_up else find_entry(session, key)
    if existing is not None:
        return replay(existing)
    try:
        with _once(session):
            return work()
    except IntegrityError:
        existing = find_entry(session, key)
        if existing is None:
            raise
        return replay(existing)


def _new_lot(
    session: Session, account_id: str, entry: LoyaltyEntry, points: int, earned_at: datetime
) -> None:
    if points <= 0:
        return
    programme = _programme_row(session)
    expires = rules.lot_expiry(
        earned_at, programme.expiry_policy, programme.expiry_months, str(business_zone(session))
    )
    session.add(
        LoyaltyLot(
            id=new_id(),
            account_id=account_id,
            entry_id=entry.id,
            points=points,
            remaining=points,
            earned_at=earned_at,
            expires_at=expires,
        )
    )
    session.flush()


def _consume_lots(session: Session, account_id: str, entry_id: str, points: int) -> None:
    """Take ``points`` from the account's lots, oldest first (the account row is already locked)."""
    left = points
    lots = session.execute(
        select(_LOTS.c.id, _LOTS.c.remaining)
        .where(_LOTS.c.account_id == account_id, _LOTS.c.remaining > 0)
        .order_by(_LOTS.c.earned_at, _LOTS.c.id)
    ).all()
    for lot_id, remaining in lots:
        if left <= 0:
            break
        take = min(int(remaining), left)
        result = session.execute(
            update(_LOTS)
            .where(_LOTS.c.id == lot_id, _LOTS.c.remaining >= take)
            .values(remaining=_LOTS.c.remaining - take)
        )
        if int(result.rowcount) != 1:  # type: ignore[attr-defined]
            raise Conflict("the account changed concurrently; retry", code="concurrent_update")
        session.add(LoyaltyLotUse(id=new_id(), lot_id=lot_id, entry_id=entry_id, points=take))
        left -= take
    if left > 0:
        raise Conflict("the account's lots do not cover its balance; run reconcile", code="ledger_drift")
    session.flush()


def credit(
    session: Session,
    account_id: str,
    points: int,
    *,
    kind: str,
    key: str,
    source: str,
    source_id: str | None = None,
    reason: str = "",
    data: dict[str, Any] | None = None,
    pending: int = 0,
    earned: bool = True,
    occurred_at: datetime | None = None,
) -> LoyaltyEntry:
    """Add ``points`` (> 0) to an account: the debt is paid first, the rest becomes available in a new
    lot. ``pending`` (≤ 0) moves points out of pending in the same entry (vesting). Not keyed: call it
    inside :func:`_keyed`."""
    for _ in range(_RETRIES):
        _, debt, status = _balances(session, account_id)
        if status != "active":
            raise AccountClosed(f"the loyalty account is {status}")
        paid, rest = rules.pay_debt(debt, points)
        delta = _Delta(points=rest, debt=-paid, pending=pending, earned=points if earned else 0)
        if _apply(session, account_id, delta, expect_debt=debt):
            entry = _add_entry(
                session,
                account_id,
                kind,
                delta,
                key=key,
                source=source,
                source_id=source_id,
                reason=reason,
                data={**(data or {}), **({"debt_paid": paid} if paid else {})},
                occurred_at=occurred_at,
            )
            _new_lot(session, account_id, entry, rest, entry.occurred_at)
            if earned and (rest or paid):
                customer_id = _customer_of(session, account_id)
                emit_event(
                    session,
                    events.POINTS_EARNED,
                    {
                        "customer_id": customer_id,
                        "account_id": account_id,
                        "entry_id": entry.id,
                        "points": rest,
                        "debt_paid": paid,
                        "source": source,
                        "source_id": source_id,
                    },
                )
            return entry
    raise Conflict("the account changed concurrently; retry", code="concurrent_update")


def _customer_of(session: Session, account_id: str) -> str:
    return str(session.scalar(select(_ACCOUNTS.c.customer_id).where(_ACCOUNTS.c.id == account_id)))


def debit(
    session: Session,
    account_id: str,
    points: int,
    *,
    kind: str,
    key: str,
    source: str,
    source_id: str | None = None,
    reason: str = "",
    data: dict[str, Any] | None = None,
    held: int = 0,
    redeemed: int = 0,
) -> LoyaltyEntry:
    """Take ``points`` (> 0) from the available balance (FIFO over lots), or raise
    :class:`InsufficientPoints` with nothing changed. Not keyed: call it inside :func:`_keyed`."""
    delta = _Delta(points=-points, held=held, redeemed=redeemed)
    if not _apply(session, account_id, delta):
        available, _, status = _balances(session, account_id)
        if status != "active":
            raise AccountClosed(f"the loyalty account is {status}")
        raise InsufficientPoints(
            f"{points} points needed, {available} available",
            extra={"available": available, "required": points},
        )
    entry = _add_entry(
        session,
        account_id,
        kind,
        delta,
        key=key,
        source=source,
        source_id=source_id,
        reason=reason,
        data=data,
    )
    _consume_lots(session, account_id, entry.id, points)
    return entry


def _positive(points: Any, loc: str = "points") -> int:
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0 or points > 1_000_000_000:
        raise _invalid([loc], "a whole number from 1 to 1,000,000,000", "invalid_points")
    return points


def adjust_points(
    session: Session, customer_id: str, points: int, *, reason: str, key: str | None = None
) -> EntryView:
    """A staff adjustment (positive or negative, with a reason); audited. A positive one pays the
    debt first; a negative one needs the points available (409 ``insufficient_points``)."""
    if isinstance(points, bool) or not isinstance(points, int) or points == 0 or abs(points) > 1_000_000_000:
        raise _invalid(
            ["points"], "a non-zero whole number (at most 1,000,000,000 either way)", "invalid_points"
        )
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500 or "\x00" in reason:
        raise _invalid(["reason"], "1 to 500 characters", "invalid_reason")
    account = ensure_account(session, customer_id)
    key = _check_key(f"adjust:{key}" if key else f"adjust:{new_id()}")

    def work() -> EntryView:
        before = account_view(_fresh(session, account.id))
        if points > 0:
            entry = credit(
                session,
                account.id,
                points,
                kind="adjust",
                key=key,
                source="staff",
                reason=reason.strip(),
                earned=False,
            )
        else:
            entry = debit(
                session, account.id, -points, kind="adjust", key=key, source="staff", reason=reason.strip()
            )
        after = account_view(_fresh(session, account.id))
        record_audit(
            session,
            "loyalty.points_adjusted",
            "loyalty_account",
            account.id,
            old={"available": before.available, "debt": before.debt},
            new={
                "available": after.available,
                "debt": after.debt,
                "points": points,
                "reason": reason.strip(),
            },
        )
        emit_event(
            session,
            events.POINTS_ADJUSTED,
            {
                "customer_id": account.customer_id,
                "account_id": account.id,
                "entry_id": entry.id,
                "points": points,
            },
        )
        return entry_view(entry)

    return _keyed(session, key, work, lambda e: _replay_same(e, account.id, points, reason))


def _replay_same(entry: LoyaltyEntry, account_id: str, points: int, reason: str) -> EntryView:
    if entry.account_id != account_id or entry.reason != reason.strip():
        raise IdempotencyKeyReused("the idempotency key was used for another adjustment")
    return entry_view(entry, replayed=True)


def _fresh(session: Session, account_id: str) -> LoyaltyAccount:
    account = session.scalar(
        select(LoyaltyAccount)
        .where(LoyaltyAccount.id == account_id)
        .execution_options(populate_existing=True)
    )
    assert account is not None
    return account


# --- pay with points: hold → capture / release; immediate redemption ----------------------------------


def redemption_view(row: LoyaltyRedemption, customer_id: str, *, replayed: bool = False) -> RedemptionView:
    return RedemptionView(
        id=row.id,
        account_id=row.account_id,
        customer_id=customer_id,
        kind=row.kind,
        points=row.points,
        status=row.status,
        market_code=row.market_code,
        value_amount=None if row.value_amount is None else Decimal(row.value_amount),
        currency=row.currency,
        created_at=row.created_at,
        updated_at=row.updated_at,
        replayed=replayed,
        reward_id=row.reward_id,
        code=row.code,
        fulfilment_status=row.fulfilment_status,
        fulfilled_at=row.fulfilled_at,
    )


def redeem_points(
    session: Session,
    customer_id: str,
    points: int,
    *,
    hold: bool = False,
    market_code: str | None = None,
    key: str | None = None,
) -> RedemptionView:
    """Pay with points: ``hold`` reserves them (capture or release later), otherwise they are spent at
    once. Due lots expire first, so expired points are never redeemable. The value is the points'
    worth in the market's currency when a market is given."""
    points = _positive(points)
    account = ensure_account(session, customer_id)
    settings = get_market_settings(session, market_code) if market_code is not None else None
    key = _check_key(f"redeem:{key}" if key else f"redeem:{new_id()}")
    existing = session.scalar(select(LoyaltyRedemption).where(LoyaltyRedemption.idempotency_key == key))
    if existing is not None:
        return _replay_redemption(existing, account, points)
    expire_due(session, account_id=account.id)

    def work() -> RedemptionView:
        redemption_id = new_id()
        entry = debit(
            session,
            account.id,
            points,
            kind="hold" if hold else "redeem",
            key=key,
            source="redemption",
            source_id=redemption_id,
            held=points if hold else 0,
            redeemed=0 if hold else points,
        )
        value = None if settings is None else rules.point_value(points, settings.point_value_amount)
        row = LoyaltyRedemption(
            id=redemption_id,
            account_id=account.id,
            kind="points",
            points=points,
            status="held" if hold else "captured",
            market_code=None if settings is None else settings.market_code,
            value_amount=value,
            currency=None if settings is None else settings.currency,
            debit_entry_id=entry.id,
            idempotency_key=key,
        )
        session.add(row)
        session.flush()
        emit_event(
            session,
            events.POINTS_REDEEMED,
            {
                "customer_id": account.customer_id,
                "account_id": account.id,
                "redemption_id": row.id,
                "points": points,
                "status": row.status,
            },
        )
        return redemption_view(row, account.customer_id)

    def replay(_: LoyaltyEntry) -> RedemptionView:
        row = session.scalar(select(LoyaltyRedemption).where(LoyaltyRedemption.idempotency_key == key))
        assert row is not None
        return _replay_redemption(row, account, points)

    # no redemption under the key (looked up above), so no ledger entry under it either
    return _keyed(session, key, work, replay, looked_up=True)


def _replay_redemption(row: LoyaltyRedemption, account: LoyaltyAccount, points: int) -> RedemptionView:
    if row.account_id != account.id or row.points != points:
        raise IdempotencyKeyReused("the idempotency key was used for another redemption")
    return redemption_view(row, account.customer_id, replayed=True)


def _redemption(session: Session, redemption_id: str) -> tuple[LoyaltyRedemption, str]:
    row = (
        session.get(LoyaltyRedemption, redemption_id, populate_existing=True)
        if len(redemption_id) <= 36
        else None
    )
    if row is None:
        raise RedemptionNotFound(f"no redemption with id {redemption_id!r}")
    return row, _customer_of(session, row.account_id)


def get_redemption(session: Session, redemption_id: str) -> RedemptionView:
    row, customer_id = _redemption(session, redemption_id)
    return redemption_view(row, customer_id)


def _transition(session: Session, row: LoyaltyRedemption, source: str, target: str) -> None:
    result = session.execute(
        update(_REDEMPTIONS)
        .where(_REDEMPTIONS.c.id == row.id, _REDEMPTIONS.c.status == source)
        .values(status=target, updated_at=now())
    )
    if int(result.rowcount) != 1:  # type: ignore[attr-defined]
        raise RedemptionState(f"the redemption is not {source}")


def capture_redemption(session: Session, redemption_id: str) -> RedemptionView:
    """Spend held points (idempotent: capturing a captured redemption answers it unchanged)."""
    row, customer_id = _redemption(session, redemption_id)
    key = f"capture:{row.id}"
    if row.status == "captured" and find_entry(session, key) is not None:
        return redemption_view(row, customer_id, replayed=True)
    if row.status != "held":
        raise RedemptionState(f"a {row.status} redemption cannot be captured")

    def work() -> RedemptionView:
        _transition(session, row, "held", "captured")
        if not _apply(
            session, row.account_id, _Delta(held=-row.points, redeemed=row.points), allow_closed=True
        ):
            raise Conflict("the held points are gone; run reconcile", code="ledger_drift")
        _add_entry(
            session,
            row.account_id,
            "capture",
            _Delta(held=-row.points),
            key=key,
            source="redemption",
            source_id=row.id,
        )
        return get_redemption(session, row.id)

    return _keyed(session, key, work, lambda _: get_redemption(session, row.id))


def release_redemption(session: Session, redemption_id: str) -> RedemptionView:
    """Give held points back (to the lots they came from; a lot that expired meanwhile expires again)."""
    row, customer_id = _redemption(session, redemption_id)
    key = f"release:{row.id}"
    if row.status == "released" and find_entry(session, key) is not None:
        return redemption_view(row, customer_id, replayed=True)
    if row.status != "held":
        raise RedemptionState(f"a {row.status} redemption cannot be released")

    def work() -> RedemptionView:
        _transition(session, row, "held", "released")
        delta = _Delta(points=row.points, held=-row.points)
        if not _apply(session, row.account_id, delta, allow_closed=True):
            raise Conflict("the held points are gone; run reconcile", code="ledger_drift")
        entry = _add_entry(
            session, row.account_id, "release", delta, key=key, source="redemption", source_id=row.id
        )
        _restore_lots(session, row.debit_entry_id, entry.id)
        return get_redemption(session, row.id)

    result = _keyed(session, key, work, lambda _: get_redemption(session, row.id))
    expire_due(session, account_id=row.account_id)
    settle_debt(session, row.account_id, key=f"{key}:settle", reason="debt paid from released points")
    return result


def settle_debt(session: Session, account_id: str, *, key: str, reason: str) -> int:
    """Pay an account's debt from its available points (after points come back without being an
    earning: a released hold, a merge), so an account never shows both. Returns the points paid."""
    if find_entry(session, key) is not None:
        return 0
    for _ in range(_RETRIES):
        available, debt, _ = _balances(session, account_id)
        settle = min(available, debt)
        if settle <= 0:
            return 0
        delta = _Delta(points=-settle, debt=-settle)
        if _apply(session, account_id, delta, expect_debt=debt, allow_closed=True):
            entry = _add_entry(session, account_id, "settle", delta, key=key, source="system", reason=reason)
            _consume_lots(session, account_id, entry.id, settle)
            return settle
    raise Conflict("the account changed concurrently; retry", code="concurrent_update")


def _restore_lots(session: Session, debit_entry_id: str, entry_id: str) -> None:
    uses = session.execute(
        select(LoyaltyLotUse.lot_id, LoyaltyLotUse.points).where(LoyaltyLotUse.entry_id == debit_entry_id)
    ).all()
    for lot_id, points in uses:
        session.execute(
            update(_LOTS).where(_LOTS.c.id == lot_id).values(remaining=_LOTS.c.remaining + points)
        )
        session.add(LoyaltyLotUse(id=new_id(), lot_id=lot_id, entry_id=entry_id, points=-int(points)))
    session.flush()


# --- expiry -----------------------------------------------------------------------------------------


def expire_due(
    session: Session, *, at: datetime | None = None, account_id: str | None = None, batch: int = 500
) -> int:
    """Expire the remaining points of every lot whose expiry has passed (all accounts, or one).
    Idempotent by state: a lot's remaining points are expired with a conditional UPDATE, once.
    Returns the number of points expired."""
    when = at or now()
    stmt = (
        select(_LOTS.c.id, _LOTS.c.account_id, _LOTS.c.remaining, _LOTS.c.expires_at)
        .where(_LOTS.c.remaining > 0, _LOTS.c.expires_at.is_not(None), _LOTS.c.expires_at <= when)
        .order_by(_LOTS.c.expires_at, _LOTS.c.id)
        .limit(batch)
    )
    if account_id is not None:
        stmt = stmt.where(_LOTS.c.account_id == account_id)
    total = 0
    for lot_id, lot_account, remaining, expires_at in session.execute(stmt).all():
        total += _expire_lot(session, lot_id, lot_account, int(remaining), expires_at)
    return total


def _expire_lot(session: Session, lot_id: str, account_id: str, remaining: int, expires_at: datetime) -> int:
    try:
        with session.begin_nested():
            delta = _Delta(points=-remaining, expired=remaining)
            if not _apply(session, account_id, delta, allow_closed=True):
                raise _Skip
            result = session.execute(
                update(_LOTS).where(_LOTS.c.id == lot_id, _LOTS.c.remaining == remaining).values(remaining=0)
            )
            if int(result.rowcount) != 1:  # type: ignore[attr-defined]
                raise _Skip  # consumed concurrently: roll back, the next run sees the new state
            entry = _add_entry(
                session,
                account_id,
                "expire",
                delta,
                key=f"expire:{lot_id}:{new_id()}",
                source="system",
                source_id=lot_id,
                reason="expired",
                data={"expires_at": expires_at.isoformat()},
            )
            session.add(LoyaltyLotUse(id=new_id(), lot_id=lot_id, entry_id=entry.id, points=remaining))
            session.flush()
            emit_event(
                session,
                events.POINTS_EXPIRED,
                {
                    "customer_id": _customer_of(session, account_id),
                    "account_id": account_id,
                    "entry_id": entry.id,
                    "points": remaining,
                },
            )
    except _Skip:
        return 0
    return remaining


class _Skip(Exception):
    pass


# --- reconciliation -----------------------------------------------------------------------------------


def reconcile(session: Session) -> Reconciliation:
    """Prove every account's cached balances equal its ledger sums and its lots; report any drift."""
    e = cast(Table, LoyaltyEntry.__table__)
    sums = (
        select(
            e.c.account_id,
            func.coalesce(func.sum(e.c.points), 0).label("points"),
            func.coalesce(func.sum(e.c.pending), 0).label("pending"),
            func.coalesce(func.sum(e.c.debt), 0).label("debt"),
            func.coalesce(func.sum(e.c.held), 0).label("held"),
        )
        .group_by(e.c.account_id)
        .subquery()
    )
    lots = (
        select(_LOTS.c.account_id, func.coalesce(func.sum(_LOTS.c.remaining), 0).label("remaining"))
        .group_by(_LOTS.c.account_id)
        .subquery()
    )
    a = _ACCOUNTS
    rows = session.execute(
        select(
            a.c.id,
            a.c.customer_id,
            a.c.available,
            a.c.pending,
            a.c.debt,
            a.c.held,
            func.coalesce(sums.c.points, 0),
            func.coalesce(sums.c.pending, 0),
            func.coalesce(sums.c.debt, 0),
            func.coalesce(sums.c.held, 0),
            func.coalesce(lots.c.remaining, 0),
        )
        .select_from(
            a.outerjoin(sums, sums.c.account_id == a.c.id).outerjoin(lots, lots.c.account_id == a.c.id)
        )
        .order_by(a.c.id)
    ).all()
    drift: list[Drift] = []
    for row in rows:
        account_id, customer_id = str(row[0]), str(row[1])
        checks = (
            ("available", row[2], row[6]),
            ("pending", row[3], row[7]),
            ("debt", row[4], row[8]),
            ("held", row[5], row[9]),
            ("lots", row[2], row[10]),
        )
        for name, balance, ledger in checks:
            if int(balance) != int(ledger):
                drift.append(Drift(account_id, customer_id, name, int(balance), int(ledger)))
    return Reconciliation(accounts=len(rows), drift=tuple(drift))


def validate_currency_code(code: str) -> str:
    if not is_known_currency(code):
        raise _invalid(["currency"], f"unknown currency {code!r}", "invalid_currency")
    return code.upper()


def notify_expiring(session: Session, *, at: datetime | None = None, within_days: int = EXPIRING_DAYS) -> int:
    """Emit one ``points.expiring`` notice per account for lots that expire within ``within_days``
    and were not announced yet (each lot is announced once), and refresh the account's
    ``points_expiring_30d`` trait. Returns the number of notices."""
    when = at or now()
    horizon = when + timedelta(days=within_days)
    rows = session.execute(
        select(_LOTS.c.account_id, func.sum(_LOTS.c.remaining), func.min(_LOTS.c.expires_at))
        .where(
            _LOTS.c.remaining > 0,
            _LOTS.c.notified_at.is_(None),
            _LOTS.c.expires_at.is_not(None),
            _LOTS.c.expires_at > when,
            _LOTS.c.expires_at <= horizon,
        )
        .group_by(_LOTS.c.account_id)
        .order_by(_LOTS.c.account_id)
    ).all()
    sent = 0
    for account_id, points, first in rows:
        customer_id, status = session.execute(
            select(_ACCOUNTS.c.customer_id, _ACCOUNTS.c.status).where(_ACCOUNTS.c.id == account_id)
        ).one()
        session.execute(
            update(_LOTS)
            .where(
                _LOTS.c.account_id == account_id,
                _LOTS.c.remaining > 0,
                _LOTS.c.notified_at.is_(None),
                _LOTS.c.expires_at > when,
                _LOTS.c.expires_at <= horizon,
            )
            .values(notified_at=when)
        )
        if status != "active":
            continue
        emit_event(
            session,
            events.POINTS_EXPIRING,
            {
                "customer_id": str(customer_id),
                "account_id": str(account_id),
                "points": int(points),
                "expires_at": first.isoformat() if isinstance(first, datetime) else str(first),
                "within_days": within_days,
            },
        )
        publish_account(session, str(account_id))
        sent += 1
    return sent
