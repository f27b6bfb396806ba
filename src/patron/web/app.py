"""The FastAPI application: REST API under /api/v1 and the staff console."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from patron import __version__
from patron.bootstrap import wire
from patron.core.db import Database, get_database
from patron.core.outbox import Dispatcher
from patron.core.settings import get_settings
from patron.web.api.v1 import api_router
from patron.web.problems import install_problem_handlers

log = logging.getLogger("patron.web")
STATIC_DIR = Path(__file__).resolve().parent / "static"

API_DESCRIPTION = """Patron's REST API. Authenticate with `Authorization: Bearer <token>`
(create one with `patron tokens create`). Errors are RFC 9457 `application/problem+json` with a
stable `code`. Every POST accepts an optional `Idempotency-Key` header."""


def create_app(database_url: str | None = None, *, dispatch: bool | None = None) -> FastAPI:
    wire()
    settings = get_settings()
    db: Database = get_database(database_url)
    run_dispatcher = settings.dispatch_in_process if dispatch is None else dispatch

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dispatcher: Dispatcher | None = None
        if run_dispatcher:
            from patron.worker.jobs import scheduled_jobs

            dispatcher = Dispatcher(db, interval=1.0, jobs=scheduled_jobs(db))
            dispatcher.start()
        yield
        if dispatcher is not None:
            dispatcher.stop()

    app = FastAPI(
        title="Patron API",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.database = db
    install_problem_handlers(app)
    app.include_router(api_router, prefix="/api/v1")
    from patron.web.ui import install_ui

    install_ui(app)
    from patron.web.portal import install_portal

    install_portal(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
