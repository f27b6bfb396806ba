"""The customer portal's application layer: signed, expiring portal links bound to a per-customer key
version (revocable), short-lived portal sessions with their CSRF tokens, and sign-up from a referral
landing page. The web pages are in ``patron.web.portal``; see docs/portal.md."""

from __future__ import annotations

from patron.portal.errors import PortalLinkGone, PortalLinkInvalid, PortalSessionRequired
from patron.portal.service import (
    PortalGrant,
    PortalLink,
    PortalSession,
    csrf_token_for,
    grant_for_new_customer,
    issue_portal_link,
    key_version,
    open_portal_link,
    portal_customer_id,
    portal_url,
    resolve_portal_session,
    revoke_portal_links,
    start_portal_session,
    unverified_session_customer,
)
from patron.portal.signup import (
    MARKETING_CONSENT_TEXT,
    SignUp,
    SignUpResult,
    referrer_given_name,
    sign_up,
)

__all__ = [
    "MARKETING_CONSENT_TEXT",
    "PortalGrant",
    "PortalLink",
    "PortalLinkGone",
    "PortalLinkInvalid",
    "PortalSession",
    "PortalSessionRequired",
    "SignUp",
    "SignUpResult",
    "csrf_token_for",
    "grant_for_new_customer",
    "issue_portal_link",
    "key_version",
    "open_portal_link",
    "portal_customer_id",
    "portal_url",
    "referrer_given_name",
    "resolve_portal_session",
    "revoke_portal_links",
    "sign_up",
    "start_portal_session",
    "unverified_session_customer",
]
