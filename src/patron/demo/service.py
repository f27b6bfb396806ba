"""Write the demo plan through the domains' public functions, in the caller's transaction.

Backfill, like an import: orders, subscriptions and refunds are recorded without events (so no
messages) unless ``award_points`` is set, in which case ``order.placed`` and the other commerce
events are emitted as if the orders had just happened. With ``loyalty`` (the default) the demo
loyalty programme is set up and members' ledgers are replayed from the order history at the times
things happened (``patron.demo.loyalty``).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from sqlalchemy.orm import Session

from patron.commerce import (
    OrderInput,
    OrderLineInput,
    ProductInput,
    RefundLineInput,
    SubscriptionInput,
    get_order,
    refund_lines,
    upsert_orders_bulk,
    upsert_products_bulk,
    upsert_subscriptions_bulk,
)
from patron.core.business import create_market, list_markets, set_fx_rate, update_business
from patron.core.clock import now
from patron.core.errors import Conflict, PatronError
from patron.core.money import Money, quantize
from patron.customers import (
    create_organisation,
    create_segment,
    iter_matching_customers,
    list_customers,
    list_organisations,
    list_segments,
    prepare_customer,
    record_consent,
    record_interaction,
    upsert_customers_bulk,
)
from patron.demo.contracts import DemoOptions, DemoPlan, DemoSummary, PlannedCustomer, PlannedOrder
from patron.demo.loyalty import is_configured, seed_loyalty
from patron.demo.plan import build_plan


class DatabaseNotEmpty(Conflict):
    code = "database_not_empty"
    title = "The database already holds customers"


class DemoRejected(PatronError):
    """A planned record was refused by a domain (a bug in the generator, never expected)."""

    status = 500
    code = "demo_rejected"
    title = "Demo data rejected"


def database_is_empty(session: Session) -> bool:
    return not list_customers(session, limit=1, include_merged=True, include_erased=True).items


def seed_demo(session: Session, options: DemoOptions, *, force: bool = False) -> DemoSummary:
    """Fill the database with the demo business. Refuses a database that already holds customers
    unless ``force`` (then demo records are upserted by their external ids, others are kept)."""
    started = time.perf_counter()
    if not force and not database_is_empty(session):
        raise DatabaseNotEmpty(
            "the database already holds customers; run `patron demo --force` to add the demo anyway"
        )
    plan = build_plan(options, now=now())
    _business(session, plan)
    product_count = _products(session, plan)
    org_ids = _organisations(session, plan)
    customer_ids, created = _customers(session, plan, org_ids)
    order_ids = _orders(session, plan, options)
    refunds = _refunds(session, plan, order_ids, options)
    _subscriptions(session, plan, options)
    # Load every customer once so the per-record consent and timeline writes find them in the
    # session instead of querying one by one (the list keeps them referenced).
    loaded = list(iter_matching_customers(session, None, batch_size=1000))
    _consents(session, plan, customer_ids, created)
    _interactions(session, plan, customer_ids, created)
    del loaded
    segments = _segments(session, plan)
    loyalty: dict[str, int | float] = {}
    if options.loyalty and not is_configured(session):
        replayed = seed_loyalty(
            session, plan, customer_ids, order_ids, seed=options.seed, members=_members(options)
        )
        loyalty = dict(replayed.__dict__)
    session.flush()
    return DemoSummary(
        customers=len(plan.customers),
        customers_by_country=dict(sorted(Counter(c.country for c in plan.customers).items())),
        organisations=len(org_ids),
        products=product_count,
        orders=len(plan.orders),
        orders_by_currency=dict(sorted(Counter(o.currency for o in plan.orders).items())),
        refunds=refunds,
        subscriptions=len(plan.subscriptions),
        consents=len(plan.consents),
        interactions=len(plan.interactions),
        segments=segments,
        fx_rates=len(plan.fx_rates),
        seconds=round(time.perf_counter() - started, 2),
        loyalty=loyalty,
    )


def _members(options: DemoOptions) -> int:
    """How many customers join the demo loyalty programme: ``loyalty_members``, fewer for a small
    demo (one in 40 customers, at least 10) — each member's ledger is replayed command by command."""
    return min(options.loyalty_members, max(10, options.customers // 40))


def _business(session: Session, plan: DemoPlan) -> None:
    update_business(
        session,
        name=plan.business_name,
        reporting_currency=plan.reporting_currency,
        time_zone=plan.time_zone,
    )
    existing = {m.code for m in list_markets(session)}
    for market in plan.markets:
        if market.code not in existing:
            create_market(
                session,
                code=market.code,
                name=market.name,
                country=market.country,
                currency=market.currency,
                locale=market.locale,
                time_zone=market.time_zone,
            )
    for rate in plan.fx_rates:
        set_fx_rate(
            session, base=rate.base, quote=rate.quote, valid_on=rate.valid_on, rate=rate.rate, source="demo"
        )


def _products(session: Session, plan: DemoPlan) -> int:
    inputs = [
        ProductInput(sku=p.sku, name=p.name, price=Money(p.price, p.currency), category=p.category)
        for p in plan.products
    ]
    _check("product", upsert_products_bulk(session, inputs))
    return len(inputs)


def _organisations(session: Session, plan: DemoPlan) -> dict[str, str]:
    existing: dict[str, str] = {}
    cursor: str | None = None
    while True:
        page = list_organisations(session, cursor=cursor, limit=200)
        existing.update({org.external_id: org.id for org in page.items if org.external_id})
        cursor = page.next_cursor
        if cursor is None:
            break
    ids: dict[str, str] = {}
    for org in plan.organisations:
        if org.external_id in existing:
            ids[org.external_id] = existing[org.external_id]
            continue
        created = create_organisation(
            session,
            name=org.name,
            external_id=org.external_id,
            industry=org.industry,
            size=org.size,
            country=org.country,
        )
        ids[org.external_id] = created.id
    return ids


def _customer_row(customer: PlannedCustomer, org_ids: dict[str, str]) -> dict[str, object]:
    attributes: dict[str, Any] = dict(customer.attributes)
    attributes["signed_up_at"] = customer.signed_up_at.isoformat()
    return {
        "external_id": customer.external_id,
        "created_at": customer.signed_up_at,
        "given_name": customer.given_name,
        "family_name": customer.family_name,
        "form_of_address": customer.form_of_address,
        "email": customer.email,
        "phone": customer.phone,
        "language": customer.language,
        "preferred_channel": customer.preferred_channel,
        "time_zone": customer.time_zone,
        "country": customer.country,
        "birthday": customer.birthday,
        "tags": list(customer.tags),
        "attributes": attributes,
        "referral_code": customer.referral_code,
        "organisation_id": org_ids.get(customer.organisation_external_id or ""),
        "organisation_role": customer.organisation_role,
    }


def _customers(session: Session, plan: DemoPlan, org_ids: dict[str, str]) -> tuple[dict[str, str], set[str]]:
    """Upsert the customers; returns their ids by external id and the external ids created now
    (a re-run with ``force`` updates the others and does not repeat their ledgers)."""
    today = plan.end
    rows = [prepare_customer(_customer_row(c, org_ids), today=today) for c in plan.customers]
    results = upsert_customers_bulk(session, rows, live=False)
    ids = {c.external_id: r.customer_id for c, r in zip(plan.customers, results, strict=True)}
    created = {c.external_id for c, r in zip(plan.customers, results, strict=True) if r.action == "created"}
    return ids, created


def _order_input(order: PlannedOrder, source: str) -> OrderInput:
    lines = tuple(
        OrderLineInput(
            quantity=line.quantity,
            unit_price=line.unit_price,
            total=quantize(line.unit_price * line.quantity, order.currency),
            sku=line.sku,
            name=line.name,
            category=line.category,
        )
        for line in order.lines
    )
    return OrderInput(
        currency=order.currency,
        subtotal=order.subtotal,
        total=order.total,
        lines=lines,
        discount=order.discount,
        tax=order.tax,
        shipping=order.shipping,
        customer_external_id=order.customer_external_id,
        external_id=order.external_id,
        market_code=order.market,
        channel=order.channel,
        status=order.status,
        placed_at=order.placed_at,
        promised_delivery_date=order.promised_delivery_date,
        fulfilment_status=order.fulfilment_status,
        fulfilled_at=order.fulfilled_at,
        delivered_at=order.delivered_at,
        source=source,
    )


def _orders(session: Session, plan: DemoPlan, options: DemoOptions) -> dict[str, str]:
    inputs = [_order_input(order, "demo") for order in plan.orders]
    results = upsert_orders_bulk(session, inputs, emit_events=options.award_points, record_timeline=True)
    _check("order", results)
    return {order.external_id: str(r.id) for order, r in zip(plan.orders, results, strict=True)}


def _refunds(session: Session, plan: DemoPlan, order_ids: dict[str, str], options: DemoOptions) -> int:
    count = 0
    for order in plan.orders:
        if not order.refunds:
            continue
        record = get_order(session, order_ids[order.external_id])
        if record.refunds:  # a re-run with --force: already refunded
            continue
        for refund in order.refunds:
            line = record.lines[refund.line_index]
            refund_lines(
                session,
                record.id,
                [RefundLineInput(line_id=line.id, quantity=refund.quantity)],
                kind=refund.kind,
                reason=refund.reason,
                at=refund.refunded_at,
                emit_events=options.award_points,
                record_timeline=True,
            )
            count += 1
    return count


def _subscriptions(session: Session, plan: DemoPlan, options: DemoOptions) -> None:
    inputs = [
        SubscriptionInput(
            plan=s.plan,
            price=Money(s.price, s.currency),
            started_at=s.started_at,
            interval=s.interval,
            renews_at=s.renews_at,
            cancelled_at=s.cancelled_at,
            status=s.status,
            customer_external_id=s.customer_external_id,
            external_id=s.external_id,
            source="demo",
        )
        for s in plan.subscriptions
    ]
    _check(
        "subscription",
        upsert_subscriptions_bulk(session, inputs, emit_events=options.award_points, record_timeline=True),
    )


def _consents(session: Session, plan: DemoPlan, customer_ids: dict[str, str], created: set[str]) -> None:
    for consent in plan.consents:
        if consent.customer_external_id not in created:
            continue
        record_consent(
            session,
            customer_ids[consent.customer_external_id],
            purpose=consent.purpose,
            channel=consent.channel,
            status=consent.status,
            source=consent.source,
            proof=consent.proof,
            expires_at=consent.expires_at,
            recorded_at=consent.recorded_at,
            live=False,
        )


def _interactions(session: Session, plan: DemoPlan, customer_ids: dict[str, str], created: set[str]) -> None:
    for item in plan.interactions:
        if item.customer_external_id not in created:
            continue
        record_interaction(
            session,
            customer_ids[item.customer_external_id],
            channel=item.channel,
            direction=item.direction,
            kind=item.kind,
            summary=item.summary,
            data=item.data,
            actor=item.actor,
            occurred_at=item.occurred_at,
            source="demo",
        )


def _segments(session: Session, plan: DemoPlan) -> int:
    existing = {s.name for s in list_segments(session, limit=200).items}
    created = 0
    for segment in plan.segments:
        if segment.name in existing:
            continue
        create_segment(session, name=segment.name, rules=segment.rules, description=segment.description)
        created += 1
    return created


def _check(what: str, results: list[Any]) -> None:
    rejected = [r for r in results if r.action == "rejected"]
    if rejected:
        first = rejected[0]
        raise DemoRejected(f"{len(rejected)} demo {what}s rejected; first: {first.key}: {list(first.errors)}")
