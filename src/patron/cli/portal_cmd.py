"""``patron portal …``: issue a customer's portal link (printed once) or revoke all their links."""

from __future__ import annotations

from typing import Annotated

import typer

from patron.cli.common import console, out, unit_of_work
from patron.cli.main import app
from patron.portal import issue_portal_link, revoke_portal_links

portal_app = typer.Typer(
    help="The customer portal: signed links to a customer's own pages.", no_args_is_help=True
)
app.add_typer(portal_app, name="portal")


@portal_app.command("link")
def link_command(
    customer_id: Annotated[str, typer.Argument(help="the customer's id")],
    days: Annotated[
        int | None, typer.Option("--days", min=1, max=366, help="days the link is valid (default 30)")
    ] = None,
) -> None:
    """Print a signed link to the customer's portal (base URL: PATRON_PUBLIC_URL)."""
    with unit_of_work() as session:
        link = issue_portal_link(session, customer_id, days=days)
    out.print(link.url, markup=False, highlight=False)
    console.print(f"valid until {link.expires_at.isoformat()}")


@portal_app.command("revoke")
def revoke_command(customer_id: Annotated[str, typer.Argument(help="the customer's id")]) -> None:
    """Void every portal link and open portal session of the customer."""
    with unit_of_work() as session:
        version = revoke_portal_links(session, customer_id)
    console.print(f"portal links revoked (key version {version})")
