"""API v1. Each domain module exposes ``router``; add it to ``MODULES`` to publish it."""

from __future__ import annotations

import importlib

from fastapi import APIRouter

from patron.web.routing import PatronRoute

MODULES: tuple[str, ...] = (
    "health",
    "users",
    "settings",
    "customers",
    "organisations",
    "segments",
    "commerce",
    "loyalty",
    "loyalty_coupons",
    "imports",
    "exports",
    "audit",
    "analytics",
    "portal",
)

api_router = APIRouter(route_class=PatronRoute)
for _name in MODULES:
    try:
        _module = importlib.import_module(f"patron.web.api.v1.{_name}")
    except ModuleNotFoundError as exc:  # a module not written yet
        if exc.name != f"patron.web.api.v1.{_name}":
            raise
        continue
    api_router.include_router(_module.router)
