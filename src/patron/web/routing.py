"""The request's unit of work and idempotency keys, wrapped around every API route.

Each request gets one session (a write session, ``BEGIN IMMEDIATE`` on SQLite, for unsafe methods).
Endpoints flush; this wrapper commits when the response is a success and rolls back otherwise. For a
POST with an ``Idempotency-Key`` header, the stored response is replayed, or the new response is
stored in the same transaction as the effect; a concurrent duplicate that loses the race on the
unique key is rolled back and replays the winner's response.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from patron.core import idempotency
from patron.core.audit import Actor, current_actor
from patron.core.db import Database
from patron.core.i18n import current_language
from patron.web.security import CSRF_HEADER, authenticate_request, check_csrf

SAFE = {"GET", "HEAD", "OPTIONS"}
IDEMPOTENCY_HEADER = "Idempotency-Key"


def _replay(stored: idempotency.StoredResponse) -> Response:
    return Response(
        content=stored.body,
        status_code=stored.status_code,
        media_type=stored.content_type,
        headers={**stored.headers, "Idempotent-Replayed": "true"},
    )


#: write units of work one process lets *start* at a time: SQLite has one write lock; on PostgreSQL
#: the bound keeps threads and pooled connections free for the transactions that hold row locks to
#: commit (anyio's threadpool has 40 threads, the pool 20 + 20 connections)
WRITE_SLOTS: dict[str, int] = {"sqlite": 1, "postgresql": 8}


@asynccontextmanager
async def write_gate(request: Request, write: bool) -> AsyncIterator[None]:
    """Let at most ``WRITE_SLOTS[dialect]`` write units of work per process at a time *start*.

    A write transaction holds locks from its first write until it commits — SQLite's single write
    lock, PostgreSQL's row locks — and it needs threadpool threads to get there (the endpoint and the
    commit run in threads). Without this gate a burst of writes can fill every thread (or every pooled
    connection) with requests waiting for a lock while the holder waits for a thread to commit in: a
    deadlock until a timeout (seen on PostgreSQL with 50 concurrent redemptions of one account on
    one worker). Waiting here, on the event loop, costs no thread and no connection."""
    db: Database = request.app.state.database
    slots = WRITE_SLOTS.get(db.dialect)
    if not write or slots is None:
        yield
        return
    gate: asyncio.Semaphore | None = getattr(request.app.state, "write_gate", None)
    if gate is None:
        gate = request.app.state.write_gate = asyncio.Semaphore(slots)
    async with gate:
        yield


_READ_ONLY = "__patron_read_only__"
EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])


def read_only(endpoint: EndpointT) -> EndpointT:
    """Mark a POST endpoint that only reads (``/coupons/validate``, ``/loyalty/simulate``: a body too
    rich for a query string): it runs in a read unit of work — no write lock on SQLite, no write slot —
    and, having no effect to repeat, ignores ``Idempotency-Key`` (nothing is stored)."""
    setattr(endpoint, _READ_ONLY, True)
    return endpoint


class PatronRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        route_id = f"{','.join(sorted(self.methods or []))} {self.path_format}"
        reads_only = bool(getattr(self.endpoint, _READ_ONLY, False))

        async def handler(request: Request) -> Response:
            db: Database = request.app.state.database
            write = request.method not in SAFE and not reads_only
            keyed = request.method == "POST" and not reads_only
            key = request.headers.get(IDEMPOTENCY_HEADER) if keyed else None
            digest = ""
            if key is not None:
                idempotency.validate_key(key)
                body = await request.body()
                ctype = request.headers.get("content-type", "")
                if ctype.startswith("multipart/form-data") and "boundary=" in ctype:
                    # the boundary is random per request: a replayed upload must digest the same
                    boundary = ctype.split("boundary=", 1)[1].split(";")[0].strip().strip('"')
                    body = body.replace(boundary.encode(), b"--boundary--")
                digest = idempotency.request_digest(request.method, body)
            if write:
                await request.body()  # receive the whole body before taking any lock
            async with write_gate(request, write):
                return await self._unit_of_work(request, db, original, route_id, write, key, digest)

        return handler

    @staticmethod
    async def _unit_of_work(
        request: Request,
        db: Database,
        original: Callable[[Request], Coroutine[Any, Any, Response]],
        route_id: str,
        write: bool,
        key: str | None,
        digest: str,
    ) -> Response:
        for attempt in range(2):
            session = db.session(write=write)
            request.state.db = session
            try:
                principal = await run_in_threadpool(authenticate_request, request, session)
                request.state.principal = principal
                if principal is not None:
                    current_actor.set(Actor("user", principal.user_id, principal.email))
                    current_language.set(principal.language)
                    if write:
                        check_csrf(request, principal, request.headers.get(CSRF_HEADER))
                if key is not None and principal is not None:
                    stored = await run_in_threadpool(
                        idempotency.lookup, session, principal.scope, route_id, key, digest
                    )
                    if stored is not None:
                        return _replay(stored)
                response = await original(request)
                if key is not None and principal is not None and response.status_code < 400:
                    response_body = getattr(response, "body", None)
                    if isinstance(response_body, bytes | memoryview):
                        await run_in_threadpool(
                            idempotency.store,
                            session,
                            principal.scope,
                            route_id,
                            key,
                            digest,
                            idempotency.StoredResponse(
                                response.status_code,
                                bytes(response_body),
                                response.media_type or "application/json",
                                {
                                    name: value
                                    for name, value in response.headers.items()
                                    if name.lower() in idempotency.REPLAYED_HEADERS
                                },
                            ),
                        )
                if response.status_code < 400:
                    await run_in_threadpool(session.commit)
                    notify = getattr(request.app.state, "on_commit", None)
                    if notify is not None:
                        notify()
                else:
                    await run_in_threadpool(session.rollback)
                return response
            except IntegrityError:
                await run_in_threadpool(session.rollback)
                if key is None or attempt == 1:
                    raise
                continue  # lost a race on the idempotency key: replay the winner's response
            except BaseException:
                await run_in_threadpool(session.rollback)
                raise
            finally:
                await run_in_threadpool(session.close)
        raise RuntimeError("unreachable")  # pragma: no cover
