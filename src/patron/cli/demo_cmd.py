"""``patron demo``: fill an empty database with the demo business."""

from __future__ import annotations

from typing import Annotated

import typer

from patron.cli.common import console, fail, out, unit_of_work
from patron.cli.main import app
from patron.demo import DatabaseNotEmpty, DemoOptions, seed_demo


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1, max=1_000_000, help="how many customers")] = 2000,
    years: Annotated[int, typer.Option(min=1, max=10, help="years of order history")] = 2,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same business")] = 42,
    award_points: Annotated[
        bool, typer.Option("--award-points", help="emit order events so loyalty awards points")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="run even if the database holds customers")] = False,
) -> None:
    """Create a demo business: customers in Vietnam, Hungary, Thailand, the EU and the US with
    orders, subscriptions, consent and timelines. Backfill: no events unless --award-points."""
    options = DemoOptions(customers=customers, years=years, seed=seed, award_points=award_points)
    console.print(f"creating the demo business ({customers} customers, {years} years, seed {seed}) …")
    try:
        with unit_of_work(actor="demo") as session:
            summary = seed_demo(session, options, force=force)
    except DatabaseNotEmpty as exc:
        raise fail(f"{exc.detail} ({exc.code})", 1) from exc
    by_country = ", ".join(f"{k} {v}" for k, v in summary.customers_by_country.items())
    by_currency = ", ".join(f"{k} {v}" for k, v in summary.orders_by_currency.items())
    out.print(f"customers: {summary.customers} ({by_country})")
    out.print(f"orders: {summary.orders} ({by_currency}); refunds: {summary.refunds}")
    out.print(
        f"organisations: {summary.organisations}; products: {summary.products}; "
        f"subscriptions: {summary.subscriptions}; segments: {summary.segments}"
    )
    out.print(
        f"consent records: {summary.consents}; timeline entries: {summary.interactions}; "
        f"FX rates: {summary.fx_rates}"
    )
    if summary.loyalty:
        lo = summary.loyalty
        out.print(
            f"loyalty: {lo['members']} members; {lo['redemptions']} redemptions; "
            f"{lo['coupon_redemptions']} coupon uses; {lo['referrals']} referrals; drift {lo['drift']}"
        )
    console.print(f"demo ready in {summary.seconds:.1f} s")
