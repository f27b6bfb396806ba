"""``patron loyalty …``: show the programme and an account, adjust points, vest and expire due
points, reconcile balances against the ledger, generate and export coupon codes, import opening
balances."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from patron.cli import data
from patron.cli.common import console, fail, out, unit_of_work
from patron.cli.main import app
from patron.imports import DEFAULT_CHUNK_SIZE, ImportKind
from patron.loyalty import (
    adjust_points,
    expire_due,
    generate_coupons,
    get_account,
    get_programme,
    iter_coupons,
    liability,
    list_market_settings,
    reconcile,
    vest_due,
)

loyalty_app = typer.Typer(help="The loyalty programme: points, ledger, reconciliation.", no_args_is_help=True)
app.add_typer(loyalty_app, name="loyalty")


def _print(data: Any) -> None:
    out.print(json.dumps(data, ensure_ascii=False, indent=2, default=str), markup=False, highlight=False)


@loyalty_app.command("programme")
def programme_command() -> None:
    """Show the programme settings and the per-market earning settings (JSON)."""
    with unit_of_work(write=False) as session:
        programme = get_programme(session)
        markets = list_market_settings(session)
    _print({**programme.__dict__, "markets": [m.__dict__ for m in markets]})


@loyalty_app.command("account")
def account_command(customer_id: Annotated[str, typer.Argument(help="the customer's id")]) -> None:
    """Show a customer's balances (JSON)."""
    with unit_of_work(write=False) as session:
        _print(get_account(session, customer_id).__dict__)


@loyalty_app.command("adjust")
def adjust_command(
    customer_id: Annotated[str, typer.Argument(help="the customer's id")],
    points: Annotated[int, typer.Argument(help="points to add (negative to remove)")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="why (kept in the ledger and the audit log)")],
    key: Annotated[
        str | None, typer.Option("--key", help="idempotency key: running the command again changes nothing")
    ] = None,
) -> None:
    """Adjust a customer's points (audited). A negative adjustment needs the points available."""
    with unit_of_work(actor="cli") as session:
        entry = adjust_points(session, customer_id, points, reason=reason, key=f"cli:{key}" if key else None)
        account = get_account(session, customer_id)
    note = " (already applied)" if entry.replayed else ""
    console.print(f"adjusted {customer_id} by {points} points{note}; available {account.available}")


@loyalty_app.command("expire")
def expire_command() -> None:
    """Vest order points whose pending period has passed, then expire lots past their expiry."""
    with unit_of_work() as session:
        vested = vest_due(session, batch=100_000)
    with unit_of_work() as session:
        expired = expire_due(session, batch=100_000)
    console.print(f"vested {vested} points, expired {expired} points")


@loyalty_app.command("liability")
def liability_command() -> None:
    """Outstanding points per market, their value in the market's and the reporting currency, and the
    breakage estimate (JSON)."""
    with unit_of_work(write=False) as session:
        report = liability(session)
    _print(
        {
            **{k: v for k, v in report.__dict__.items() if k != "markets"},
            "markets": [m.__dict__ for m in report.markets],
        }
    )


@loyalty_app.command("reconcile")
def reconcile_command() -> None:
    """Prove every balance equals its ledger sum and its lots; exit 1 and list the drift if not."""
    with unit_of_work(write=False) as session:
        report = reconcile(session)
    _print({"ok": report.ok, "accounts": report.accounts, "drift": [d.__dict__ for d in report.drift]})
    if not report.ok:
        raise fail(f"{len(report.drift)} balance(s) disagree with the ledger", 1)


coupons_app = typer.Typer(help="Coupon codes of a promotion.", no_args_is_help=True)
loyalty_app.add_typer(coupons_app, name="coupons")


@coupons_app.command("generate")
def coupons_generate_command(
    promotion_id: Annotated[str, typer.Argument(help="the promotion's id")],
    count: Annotated[int, typer.Option("--count", "-n", help="how many codes", min=1, max=100_000)],
    prefix: Annotated[str | None, typer.Option("--prefix", help="e.g. TET → TET-K7QM-4XTB-9HZD")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="also write the new codes to FILE")
    ] = None,
) -> None:
    """Generate unique, readable codes (no 0/O, 1/I/L) for a promotion; prints them one per line."""
    with unit_of_work() as session:
        codes = sorted(generate_coupons(session, promotion_id, count, prefix=prefix))
    text = "\n".join(codes) + "\n"
    if output is not None:
        output.write_text(text, encoding="utf-8")
    out.print(text, end="", markup=False, highlight=False)
    console.print(f"generated {len(codes)} codes")


@coupons_app.command("export")
def coupons_export_command(
    promotion_id: Annotated[str, typer.Argument(help="the promotion's id")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write to FILE instead of stdout")
    ] = None,
) -> None:
    """Every code of a promotion as CSV (code, redemptions, customer_id)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["code", "redemptions", "customer_id"])
    with unit_of_work(write=False) as session:
        count = 0
        for code, redemptions, customer in iter_coupons(session, promotion_id):
            writer.writerow([code, redemptions, customer or ""])
            count += 1
    if output is None:
        out.print(buffer.getvalue(), end="", markup=False, highlight=False)
    else:
        output.write_text(buffer.getvalue(), encoding="utf-8")
    console.print(f"exported {count} codes")


@loyalty_app.command("import-balances")
def import_balances_command(
    file: data.FileArg,
    mapping: data.MapOpt = None,
    encoding: data.EncodingOpt = None,
    delimiter: data.DelimiterOpt = None,
    decimal: data.DecimalOpt = None,
    date_format: data.DateFormatOpt = None,
    time_zone: data.TimeZoneOpt = None,
    sheet: data.SheetOpt = None,
    dry_run: data.DryRunOpt = False,
    rejects: data.RejectsOpt = None,
) -> None:
    """Opening balances from another loyalty system: one row per customer (customer_external_id,
    points, tier, expires_at). Same as ``patron import loyalty-balances``: dry runs, rejects, undo;
    re-running the file changes nothing. Opening balances are not earnings (no points.earned)."""
    data._run(
        ImportKind.LOYALTY_BALANCES,
        file,
        mapping=mapping,
        encoding=encoding,
        delimiter=delimiter,
        decimal=decimal,
        date_format=date_format,
        time_zone=time_zone,
        sheet=sheet,
        live=False,
        dry_run=dry_run,
        rejects=rejects,
        chunk_size=DEFAULT_CHUNK_SIZE,
    )
