"""Staff console (server-rendered). ``install_ui`` mounts every console page module, in order (fixed
paths such as ``/customers/new`` before ``/customers/{customer_id}``)."""

from __future__ import annotations

import importlib

from fastapi import FastAPI

PAGES: tuple[str, ...] = (
    "auth",
    "customer_forms",
    "customers",
    "organisations",
    "segments",
    "imports",
    "analytics",
    "loyalty",
    "settings",
)


def install_ui(app: FastAPI) -> None:
    for name in PAGES:
        try:
            module = importlib.import_module(f"patron.web.ui.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"patron.web.ui.{name}":
                raise
            continue
        app.include_router(module.router)
