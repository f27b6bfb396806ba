"""Import every ORM model so the metadata is complete (migrations, tests)."""

from __future__ import annotations

import importlib

MODEL_MODULES: tuple[str, ...] = (
    "patron.core.outbox",
    "patron.core.business",
    "patron.core.idempotency",
    "patron.core.audit",
    "patron.core.signing",
    "patron.core.ratelimit",
    "patron.auth.models",
    "patron.customers.models",
    "patron.commerce.models",
    "patron.loyalty.models",
    "patron.imports.models",
    "patron.analytics.runs",
    "patron.portal.models",
)


def import_all_models() -> None:
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
