"""Shared CLI plumbing: the database, the acting user, never prompting without a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from patron.bootstrap import database
from patron.core.audit import Actor, current_actor
from patron.core.db import Database
from patron.core.errors import PatronError

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)  # never wrap: scripts read what we print


def get_db() -> Database:
    return database()


def interactive() -> bool:
    return sys.stdin.isatty()


def fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


@contextmanager
def unit_of_work(*, write: bool = True, actor: str = "cli") -> Iterator[Session]:
    db = get_db()
    token = current_actor.set(Actor("system", None, actor))
    try:
        with db.unit_of_work(write=write) as session:
            yield session
    except PatronError as exc:
        raise fail(f"{exc.detail} ({exc.code})") from exc
    finally:
        current_actor.reset(token)
