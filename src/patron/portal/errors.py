"""Why a portal link or session is refused. The codes are stable; people see one translated
sentence per status, never which check failed."""

from __future__ import annotations

from patron.core.errors import Forbidden, PatronError


class PortalLinkInvalid(Forbidden):
    """Not signed by us (forged, mangled, truncated)."""

    code = "portal_link_invalid"
    title = "The portal link is not valid"


class PortalLinkGone(PatronError):
    """Signed by us but no longer usable: expired, revoked, or its customer was erased or merged."""

    status = 410
    code = "portal_link_expired"
    title = "The portal link has expired or was withdrawn"


class PortalSessionRequired(PatronError):
    status = 401
    code = "portal_session_required"
    title = "Open your portal link again"
