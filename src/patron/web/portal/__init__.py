"""The customer portal (``/portal``, ``/r/{code}``) and the staff console's portal-link actions.
:func:`install_portal` adds both to the app and keeps link tokens out of the access log. See
docs/portal.md."""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI

from patron.web.portal import pages, staff
from patron.web.problems import redact_path

router = APIRouter()
router.include_router(pages.router)
router.include_router(staff.router)


class RedactPortalTokens(logging.Filter):
    """Portal links are bearer tokens: an access log line shows ``/portal/t/[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            redacted = redact_path(args[2])
            if redacted != args[2]:
                record.args = (*args[:2], redacted, *args[3:])
        return True


def install_portal(app: FastAPI) -> None:
    app.include_router(router)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactPortalTokens) for f in access.filters):
        access.addFilter(RedactPortalTokens())


__all__ = ["RedactPortalTokens", "install_portal", "router"]
