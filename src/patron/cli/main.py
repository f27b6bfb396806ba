"""``patron`` — the command line. Every command reads ``PATRON_DATABASE_URL`` and never prompts when
standard input is not a terminal."""

from __future__ import annotations

import importlib
import logging
import os
from datetime import timedelta
from typing import Annotated

import typer

from patron.auth import Role, create_token, create_user, generate_password, get_user_by_email, list_tokens
from patron.auth import list_users as list_staff
from patron.auth import revoke_token as revoke
from patron.auth import set_password as set_user_password
from patron.auth.service import count_users
from patron.cli.common import console, fail, get_db, interactive, out, unit_of_work
from patron.core import migrate
from patron.core.clock import now
from patron.core.settings import get_settings

app = typer.Typer(
    help="Patron: customer relationships and loyalty.", no_args_is_help=True, pretty_exceptions_enable=False
)
users_app = typer.Typer(help="Staff users.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

# Other command modules register themselves on ``app`` when imported.
COMMAND_MODULES: tuple[str, ...] = (
    "patron.cli.data",
    "patron.cli.demo_cmd",
    "patron.cli.customers_cmd",
    "patron.cli.export_cmd",
    "patron.cli.loyalty_cmd",
    "patron.cli.analyze_cmd",
    "patron.cli.portal_cmd",
)


@app.command()
def init(
    owner_email: Annotated[str | None, typer.Option(envvar="PATRON_OWNER_EMAIL")] = None,
    owner_password: Annotated[str | None, typer.Option(envvar="PATRON_OWNER_PASSWORD")] = None,
) -> None:
    """Create or migrate the database; create the owner on first run."""
    db = get_db()
    migrate.upgrade(db.engine)
    console.print(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")
    with unit_of_work() as session:
        if count_users(session) > 0:
            return
        email = owner_email or "owner@example.com"
        password = owner_password or generate_password()
        create_user(session, email=email, password=password, role=Role.OWNER, name="Owner")
    console.print(f"owner created: {email}")
    if owner_password is None:
        out.print(f"owner password (shown once): {password}")


@app.command("check-migrations")
def check_migrations() -> None:
    """Fail if the models and the migrations disagree."""
    migrate.check(get_db().engine)
    console.print("models and migrations agree")


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(help="server processes")] = 1,
    dispatch: Annotated[bool, typer.Option(help="dispatch events in-process")] = True,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For and"
            " X-Forwarded-Proto are believed; default PATRON_FORWARDED_ALLOW_IPS, else none"
        ),
    ] = None,
    proxy_headers: Annotated[
        bool | None,
        typer.Option(
            "--proxy-headers/--no-proxy-headers",
            help="read X-Forwarded-* from the trusted proxies (default: on when any are given)",
        ),
    ] = None,
) -> None:
    """Serve the API and the staff console with uvicorn."""
    import uvicorn

    trusted = (
        get_settings().forwarded_allow_ips if forwarded_allow_ips is None else forwarded_allow_ips
    ).strip()
    use_proxy_headers = bool(trusted) if proxy_headers is None else proxy_headers
    if use_proxy_headers and not trusted:
        raise fail("--proxy-headers needs --forwarded-allow-ips (or PATRON_FORWARDED_ALLOW_IPS)")
    os.environ["PATRON_DISPATCH_IN_PROCESS"] = "1" if dispatch else "0"
    uvicorn.run(
        "patron.web.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=use_proxy_headers,
        # never uvicorn's own default (127.0.0.1, or $FORWARDED_ALLOW_IPS): only what is configured here
        forwarded_allow_ips=trusted if use_proxy_headers else "",
    )


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="drain due events and exit")] = False,
    interval: Annotated[float, typer.Option()] = 1.0,
) -> None:
    """Dispatch outbox events and run scheduled jobs."""
    from patron.core.outbox import Dispatcher
    from patron.worker.jobs import scheduled_jobs

    db = get_db()
    dispatcher = Dispatcher(db, interval=interval, jobs=scheduled_jobs(db))
    if once:
        n = dispatcher.run_once()
        console.print(f"dispatched {n} events")
        return
    logging.basicConfig(level=logging.INFO)
    console.print("worker running; Ctrl+C to stop")
    dispatcher.start()
    try:
        while True:
            dispatcher._stop.wait(3600)
    except KeyboardInterrupt:
        dispatcher.stop()


@users_app.command("add")
def users_add(
    email: Annotated[str, typer.Option()],
    role: Annotated[Role, typer.Option()],
    password: Annotated[str | None, typer.Option()] = None,
    name: Annotated[str, typer.Option()] = "",
) -> None:
    """Add a staff user (a password is generated and printed when none is given)."""
    pw = password or generate_password()
    with unit_of_work() as session:
        user = create_user(session, email=email, password=pw, role=role, name=name)
        out.print(f"user {user.email} ({user.role}) id={user.id}")
    if password is None:
        out.print(f"password (shown once): {pw}")


@users_app.command("list")
def users_list() -> None:
    with unit_of_work(write=False) as session:
        for user in list_staff(session):
            state = "active" if user.is_active else "disabled"
            out.print(f"{user.id}  {user.email:40}  {user.role:10}  {state}")


@users_app.command("set-password")
def users_set_password(
    email: Annotated[str, typer.Option()],
    password: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Reset a user's password (also unlocks the account and ends their sessions)."""
    if password is None and interactive():
        password = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    pw = password or generate_password()
    with unit_of_work() as session:
        set_user_password(session, get_user_by_email(session, email), pw)
    if password is None:
        out.print(f"new password (shown once): {pw}")
    else:
        console.print("password updated")


@tokens_app.command("create")
def tokens_create(
    email: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option()],
    role: Annotated[Role | None, typer.Option(help="defaults to the user's role")] = None,
    expires_days: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Create an API token; the token is printed on the last line."""
    expires = now() + timedelta(days=expires_days) if expires_days else None
    with unit_of_work() as session:
        token, secret = create_token(
            session, user=get_user_by_email(session, email), name=name, role=role, expires_at=expires
        )
        console.print(f"token {token.id} ({token.role}) for {email}")
    out.print(secret)


@tokens_app.command("list")
def tokens_list(email: Annotated[str | None, typer.Option()] = None) -> None:
    with unit_of_work(write=False) as session:
        user_id = get_user_by_email(session, email).id if email else None
        for t in list_tokens(session, user_id=user_id):
            state = "revoked" if t.revoked_at else "active"
            out.print(f"{t.id}  {t.prefix}…  {t.name:30}  {t.role:10}  {state}")


@tokens_app.command("revoke")
def tokens_revoke(token_id: str) -> None:
    with unit_of_work() as session:
        revoke(session, token_id)
    console.print("revoked")


def _load_command_modules() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def main() -> None:
    _load_command_modules()
    logging.basicConfig(level=get_settings().log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except KeyboardInterrupt as exc:
        raise fail("interrupted", 130) from exc


if __name__ == "__main__":
    main()
