"""``patron export-customer`` and ``patron erase-customer``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from patron.cli.common import console, fail, interactive, out, unit_of_work
from patron.cli.main import app
from patron.customers import erase_customer, export_customer, get_customer


@app.command("export-customer")
def export_customer_command(
    customer_id: Annotated[str, typer.Argument(help="the customer's id")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write to FILE instead of stdout")
    ] = None,
) -> None:
    """Everything Patron holds about one customer, as JSON (one key per domain)."""
    with unit_of_work(write=False) as session:
        data = export_customer(session, customer_id)
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)
    if output is None:
        out.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    output.write_text(text + "\n", encoding="utf-8")
    console.print(f"exported customer {customer_id} to {output}")


@app.command("erase-customer")
def erase_customer_command(
    customer_id: Annotated[str, typer.Argument(help="the customer's id")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Erase (anonymise) a customer across every domain. This cannot be undone."""
    if not yes:
        if not interactive():
            raise fail("refusing to erase without confirmation: standard input is not a terminal; pass --yes")
        with unit_of_work(write=False) as session:
            name = get_customer(session, customer_id).display_name or customer_id
        if not typer.confirm(f"Erase customer {name} ({customer_id})? This cannot be undone."):
            raise fail("not erased", 1)
    with unit_of_work() as session:
        erase_customer(session, customer_id)
    console.print(f"customer {customer_id} erased")
