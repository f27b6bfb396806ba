"""Wire the domains together at start-up: event handlers and customer lifecycle handlers.

Every adapter (web app, CLI, worker) calls :func:`wire` once. Each domain exposes a ``register()``
that adds its handlers to the core registries; domains never import each other for this.
"""

from __future__ import annotations

import importlib

from patron.core.db import Database, get_database

DOMAINS: tuple[str, ...] = ("patron.customers", "patron.commerce", "patron.loyalty", "patron.imports")

_wired = False


def wire() -> None:
    global _wired
    if _wired:
        return
    for name in DOMAINS:
        module = importlib.import_module(name)
        register = getattr(module, "register", None)
        if register is not None:
            register()
    _wired = True


def database(url: str | None = None) -> Database:
    wire()
    return get_database(url)
