"""Portal links and portal sessions.

A **portal link** is ``{public_url}/portal/t/{token}``; the token is ``[customer id, key version,
expiry]`` signed (itsdangerous, HMAC-SHA256) with a key derived from the signing secret
(:mod:`patron.core.signing`). Opening it checks, in this order: the signature (else
:class:`PortalLinkInvalid`, 403), the expiry, that the customer is neither erased nor merged away, and
that the key version is the customer's current one (else :class:`PortalLinkGone`, 410). Revoking
(:func:`revoke_portal_links`) raises the version, which voids every link and every open session.

A merged-away customer's links are refused rather than followed to the surviving customer: the link
was issued for a record that no longer exists on its own, and staff can issue a fresh link for the
survivor in a second.

A **portal session** is a short-lived signed cookie value ``[customer id, key version, nonce,
expiry]``; the CSRF token of the session's forms is an HMAC of its nonce, so it is bound to that
session and needs no storage. The expiry is read from the injectable clock, so tests freeze time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patron.core.audit import record_audit
from patron.core.clock import now
from patron.core.errors import PatronError, ValidationFailed
from patron.core.settings import get_settings
from patron.core.signing import derive_key
from patron.customers import CustomerErased, CustomerView, get_customer
from patron.portal.errors import PortalLinkGone, PortalLinkInvalid
from patron.portal.models import PortalAccess

LINK_PURPOSE = "patron.portal.link"
SESSION_PURPOSE = "patron.portal.session"
CSRF_PURPOSE = "patron.portal.csrf"
MAX_LINK_DAYS = 366
MAX_TOKEN_LENGTH = 400
#: HMAC-SHA256 signatures (itsdangerous defaults to SHA-1)
SIGNER = {"digest_method": hashlib.sha256}


@dataclass(frozen=True)
class PortalLink:
    customer_id: str
    url: str
    token: str
    expires_at: datetime
    version: int


@dataclass(frozen=True)
class PortalGrant:
    """A verified link: who it is for and the key version it carries."""

    customer_id: str
    version: int


@dataclass(frozen=True)
class PortalSession:
    customer_id: str
    version: int
    nonce: str
    expires_at: datetime
    csrf_token: str


def _serializer(session: Session, purpose: str) -> URLSafeSerializer:
    """For signing (creates the stored secret on first use)."""
    key = derive_key(session, purpose)
    assert key is not None
    return URLSafeSerializer(key, salt=purpose, signer_kwargs=SIGNER)


def _loads(session: Session, purpose: str, value: str) -> object:
    """Verify and decode; :class:`BadData` when forged — or when nothing was ever signed here."""
    key = derive_key(session, purpose, create=False)
    if key is None:
        raise BadData("no signing secret yet")
    return URLSafeSerializer(key, salt=purpose, signer_kwargs=SIGNER).loads(value)


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


def _from_epoch(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def key_version(session: Session, customer_id: str) -> int:
    version = session.scalar(select(PortalAccess.version).where(PortalAccess.customer_id == customer_id))
    return 1 if version is None else int(version)


def _active_customer(session: Session, customer_id: str) -> CustomerView:
    """The customer, refusing erased ones; merged ones resolve to the survivor (for issuing links)."""
    view = get_customer(session, customer_id)
    seen = {view.id}
    while view.merged_into_id is not None and view.merged_into_id not in seen:
        view = get_customer(session, view.merged_into_id)
        seen.add(view.id)
    if view.erased_at is not None:
        raise CustomerErased("the customer was erased")
    return view


def portal_customer_id(session: Session, customer_id: str) -> str:
    """The customer whose portal ``customer_id`` stands for: itself, or the survivor of a merge
    (:class:`CustomerErased` when erased)."""
    return _active_customer(session, customer_id).id


def portal_url(token: str) -> str:
    return f"{get_settings().public_url.rstrip('/')}/portal/t/{token}"


def issue_portal_link(session: Session, customer_id: str, *, days: int | None = None) -> PortalLink:
    """A signed link to the customer's portal, valid ``days`` (default: the ``portal_link_days``
    setting). A merged customer's id issues a link for the customer it was merged into. Audited
    (the expiry, never the token)."""
    valid_days = get_settings().portal_link_days if days is None else days
    if not 1 <= valid_days <= MAX_LINK_DAYS:
        raise ValidationFailed(
            f"a portal link is valid for 1 to {MAX_LINK_DAYS} days",
            code="invalid_days",
            errors=[{"loc": ["days"], "msg": f"1 to {MAX_LINK_DAYS}", "type": "invalid_days"}],
        )
    customer = _active_customer(session, customer_id)
    version = key_version(session, customer.id)
    expires_at = now().replace(microsecond=0) + timedelta(days=valid_days)
    token = str(_serializer(session, LINK_PURPOSE).dumps([customer.id, version, _epoch(expires_at)]))
    record_audit(
        session,
        "portal.link_issued",
        "customer",
        customer.id,
        new={"expires_at": expires_at.isoformat(), "key_version": version},
    )
    return PortalLink(customer.id, portal_url(token), token, expires_at, version)


def revoke_portal_links(session: Session, customer_id: str) -> int:
    """Void every portal link and open portal session of the customer (one atomic version bump);
    returns the new key version. Audited."""
    customer = _active_customer(session, customer_id)
    at = now()
    for _ in range(2):
        bumped = session.execute(
            update(PortalAccess)
            .where(PortalAccess.customer_id == customer.id)
            .values(version=PortalAccess.version + 1, revoked_at=at, updated_at=at)
            .returning(PortalAccess.version)
        ).scalar()
        if bumped is not None:
            version = int(bumped)
            break
        try:
            with session.begin_nested():
                session.add(PortalAccess(customer_id=customer.id, version=2, revoked_at=at, updated_at=at))
                session.flush()
            version = 2
            break
        except IntegrityError:
            continue  # a concurrent revocation created the row: bump it
    else:  # pragma: no cover - the row exists after the first failed insert
        raise RuntimeError("could not revoke portal links")
    record_audit(session, "portal.links_revoked", "customer", customer.id, new={"key_version": version})
    return version


def _check_customer(session: Session, customer_id: str, version: int) -> None:
    """The customer may still use the portal with ``version``: not erased, not merged, not revoked."""
    try:
        view = get_customer(session, customer_id)
    except PatronError as exc:
        raise PortalLinkGone() from exc
    if view.erased_at is not None or view.merged_into_id is not None:
        raise PortalLinkGone()
    if key_version(session, customer_id) != version:
        raise PortalLinkGone()


def open_portal_link(session: Session, token: str) -> PortalGrant:
    """Verify a link token: :class:`PortalLinkInvalid` (403) or :class:`PortalLinkGone` (410)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise PortalLinkInvalid()
    try:
        payload = _loads(session, LINK_PURPOSE, token)
    except BadData as exc:
        raise PortalLinkInvalid() from exc
    if (
        not isinstance(payload, list)
        or len(payload) != 3
        or not isinstance(payload[0], str)
        or not all(isinstance(p, int) and not isinstance(p, bool) for p in payload[1:])
    ):
        raise PortalLinkInvalid()
    customer_id, version, expires = payload
    if now() >= _from_epoch(expires):
        raise PortalLinkGone()
    _check_customer(session, customer_id, version)
    return PortalGrant(customer_id, version)


def csrf_token_for(session: Session, nonce: str) -> str:
    key = derive_key(session, CSRF_PURPOSE)
    assert key is not None
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()[:40]


def start_portal_session(session: Session, grant: PortalGrant) -> tuple[str, PortalSession]:
    """A new session for a verified link (or a fresh sign-up): ``(cookie value, session)``."""
    nonce = secrets.token_urlsafe(16)
    expires_at = now().replace(microsecond=0) + timedelta(seconds=get_settings().portal_session_seconds)
    payload = [grant.customer_id, grant.version, nonce, _epoch(expires_at)]
    value = str(_serializer(session, SESSION_PURPOSE).dumps(payload))
    return value, PortalSession(
        grant.customer_id, grant.version, nonce, expires_at, csrf_token_for(session, nonce)
    )


def grant_for_new_customer(session: Session, customer_id: str) -> PortalGrant:
    """The grant of a customer who just signed up through the portal (no link needed)."""
    return PortalGrant(customer_id, key_version(session, customer_id))


def unverified_session_customer(session: Session, cookie: str | None) -> str | None:
    """The customer id in a correctly signed session cookie, without the database checks (used to
    key rate limits per customer before the request's unit of work starts)."""
    if not cookie or len(cookie) > MAX_TOKEN_LENGTH:
        return None
    try:
        payload = _loads(session, SESSION_PURPOSE, cookie)
    except BadData:
        return None
    if isinstance(payload, list) and payload and isinstance(payload[0], str):
        return payload[0]
    return None


def resolve_portal_session(session: Session, cookie: str | None) -> PortalSession | None:
    """The session in a cookie, or None when it is missing, forged, expired, revoked or its customer
    is gone."""
    if not cookie or len(cookie) > MAX_TOKEN_LENGTH:
        return None
    try:
        payload = _loads(session, SESSION_PURPOSE, cookie)
    except BadData:
        return None
    if (
        not isinstance(payload, list)
        or len(payload) != 4
        or not isinstance(payload[0], str)
        or not isinstance(payload[2], str)
        or not all(isinstance(payload[i], int) and not isinstance(payload[i], bool) for i in (1, 3))
    ):
        return None
    customer_id, version, nonce, expires = payload
    expires_at = _from_epoch(expires)
    if now() >= expires_at:
        return None
    try:
        _check_customer(session, customer_id, version)
    except PortalLinkGone:
        return None
    return PortalSession(customer_id, version, nonce, expires_at, csrf_token_for(session, nonce))


__all__ = [
    "PortalGrant",
    "PortalLink",
    "PortalSession",
    "csrf_token_for",
    "grant_for_new_customer",
    "issue_portal_link",
    "key_version",
    "open_portal_link",
    "portal_customer_id",
    "portal_url",
    "resolve_portal_session",
    "revoke_portal_links",
    "start_portal_session",
    "unverified_session_customer",
]
