"""Portal links and sessions: issue, expiry (frozen clock), forgery, revocation, erased and merged
customers, the signing secret (configured or stored once in the database)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from itsdangerous import URLSafeSerializer
from itsdangerous.encoding import base64_decode
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patron.core.audit import AuditEntry
from patron.core.clock import FrozenClock
from patron.core.db import Database
from patron.core.errors import ValidationFailed
from patron.core.settings import get_settings, reset_settings_cache
from patron.core.signing import AppSecret, derive_key, signing_secret
from patron.customers import (
    CustomerCreateInput,
    CustomerErased,
    create_customer,
    erase_customer,
    merge_customers,
)
from patron.portal import (
    PortalLinkGone,
    PortalLinkInvalid,
    issue_portal_link,
    open_portal_link,
    resolve_portal_session,
    revoke_portal_links,
    start_portal_session,
)
from patron.portal.service import LINK_PURPOSE, SESSION_PURPOSE, _serializer


def _customer(session: Session, email: str = "an@example.vn") -> str:
    return create_customer(session, CustomerCreateInput(first_name="An", last_name="Nguyễn", email=email)).id


def test_a_link_opens_for_its_customer_until_it_expires(session: Session, frozen_clock: FrozenClock) -> None:
    cid = _customer(session)
    link = issue_portal_link(session, cid)
    assert link.url == f"http://127.0.0.1:8000/portal/t/{link.token}"
    assert link.expires_at == frozen_clock.now() + timedelta(days=30)
    assert open_portal_link(session, link.token).customer_id == cid
    frozen_clock.advance(timedelta(days=30) - timedelta(seconds=1))
    assert open_portal_link(session, link.token).customer_id == cid
    frozen_clock.advance(timedelta(seconds=1))
    with pytest.raises(PortalLinkGone) as gone:
        open_portal_link(session, link.token)
    assert (gone.value.status, gone.value.code) == (410, "portal_link_expired")


def test_days_are_configurable_per_link_and_by_setting(
    session: Session, frozen_clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = _customer(session)
    assert issue_portal_link(session, cid, days=2).expires_at == frozen_clock.now() + timedelta(days=2)
    monkeypatch.setenv("PATRON_PORTAL_LINK_DAYS", "7")
    reset_settings_cache()
    try:
        assert issue_portal_link(session, cid).expires_at == frozen_clock.now() + timedelta(days=7)
    finally:
        monkeypatch.delenv("PATRON_PORTAL_LINK_DAYS")
        reset_settings_cache()
    for bad in (0, 367):
        with pytest.raises(ValidationFailed):
            issue_portal_link(session, cid, days=bad)


def test_forged_or_mangled_tokens_are_refused(session: Session, frozen_clock: FrozenClock) -> None:
    cid = _customer(session)
    other = _customer(session, "lan@example.vn")
    token = issue_portal_link(session, cid).token
    payload, _, signature = token.rpartition(".")
    forged_signature = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    other_payload = issue_portal_link(session, other).token.rpartition(".")[0]
    for bad in (
        f"{payload}.{forged_signature}",  # wrong signature
        f"{other_payload}.{signature}",  # someone else's payload under this signature
        payload,  # no signature
        token[:-1],
        "",
        "x" * 500,
    ):
        with pytest.raises(PortalLinkInvalid) as refused:
            open_portal_link(session, bad)
        assert refused.value.status == 403
    assert open_portal_link(session, token).customer_id == cid  # the genuine one still works


def test_a_token_signed_for_sessions_is_not_a_link(session: Session, frozen_clock: FrozenClock) -> None:
    cid = _customer(session)
    cookie, _ = start_portal_session(
        session, open_portal_link(session, issue_portal_link(session, cid).token)
    )
    with pytest.raises(PortalLinkInvalid):
        open_portal_link(session, cookie)
    # a payload of the link's shape, validly signed for the *session* purpose, is still no link (the
    # purpose-bound key refuses it, not the shape check)
    expires = int((frozen_clock.now() + timedelta(days=1)).timestamp())
    session_signed = str(_serializer(session, SESSION_PURPOSE).dumps([cid, 1, expires]))
    with pytest.raises(PortalLinkInvalid):
        open_portal_link(session, session_signed)
    # ... and the reverse: a session-shaped payload signed for the *link* purpose is no session
    link_signed = str(_serializer(session, LINK_PURPOSE).dumps([cid, 1, "nonce", expires]))
    assert resolve_portal_session(session, link_signed) is None
    # (both verify under their own purpose: only the purpose refuses them)
    assert resolve_portal_session(
        session, str(_serializer(session, SESSION_PURPOSE).dumps([cid, 1, "nonce", expires]))
    )
    assert (
        open_portal_link(
            session, str(_serializer(session, LINK_PURPOSE).dumps([cid, 1, expires]))
        ).customer_id
        == cid
    )


def test_links_are_signed_with_hmac_sha256(session: Session, frozen_clock: FrozenClock) -> None:
    cid = _customer(session)
    token = issue_portal_link(session, cid).token
    signature = token.rpartition(".")[2]
    assert len(base64_decode(signature)) == 32  # SHA-256 (SHA-1 would be 20 bytes)
    # the same payload signed with itsdangerous's default (SHA-1) under the same key is refused
    key = derive_key(session, LINK_PURPOSE)
    assert key is not None
    sha1 = str(
        URLSafeSerializer(key, salt=LINK_PURPOSE).dumps(json.loads(base64_decode(token.split(".")[0])))
    )
    assert sha1.split(".")[0] == token.split(".")[0]
    with pytest.raises(PortalLinkInvalid):
        open_portal_link(session, sha1)


def test_revoking_voids_every_link_and_session_but_new_links_work(
    session: Session, frozen_clock: FrozenClock
) -> None:
    cid = _customer(session)
    first, second = issue_portal_link(session, cid), issue_portal_link(session, cid)
    cookie, portal = start_portal_session(session, open_portal_link(session, first.token))
    assert resolve_portal_session(session, cookie) == portal
    assert revoke_portal_links(session, cid) == 2
    for token in (first.token, second.token):
        with pytest.raises(PortalLinkGone):
            open_portal_link(session, token)
    assert resolve_portal_session(session, cookie) is None
    fresh = issue_portal_link(session, cid)
    assert open_portal_link(session, fresh.token).version == 2
    assert revoke_portal_links(session, cid) == 3
    with pytest.raises(PortalLinkGone):
        open_portal_link(session, fresh.token)
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.entity_id == cid).order_by(AuditEntry.occurred_at)
    ).all()
    assert actions.count("portal.link_issued") == 3
    assert actions.count("portal.links_revoked") == 2
    stored = session.scalars(select(AuditEntry.new_values).where(AuditEntry.entity_id == cid)).all()
    assert not any(first.token in str(values) for values in stored)  # the token is never stored


def test_erased_customers_links_and_sessions_stop_working(
    session: Session, frozen_clock: FrozenClock
) -> None:
    cid = _customer(session)
    token = issue_portal_link(session, cid).token
    cookie, _ = start_portal_session(session, open_portal_link(session, token))
    erase_customer(session, cid)
    with pytest.raises(PortalLinkGone):
        open_portal_link(session, token)
    assert resolve_portal_session(session, cookie) is None
    with pytest.raises(CustomerErased):
        issue_portal_link(session, cid)


def test_a_merged_away_customers_links_are_refused_and_staff_get_the_survivors(
    session: Session, frozen_clock: FrozenClock
) -> None:
    source, target = _customer(session), _customer(session, "an.other@example.vn")
    token = issue_portal_link(session, source).token
    merge_customers(session, source_id=source, target_id=target)
    with pytest.raises(PortalLinkGone):
        open_portal_link(session, token)
    survivor = issue_portal_link(session, source)
    assert survivor.customer_id == target
    assert open_portal_link(session, survivor.token).customer_id == target


def test_sessions_expire_after_the_session_lifetime(session: Session, frozen_clock: FrozenClock) -> None:
    cid = _customer(session)
    cookie, portal = start_portal_session(
        session, open_portal_link(session, issue_portal_link(session, cid).token)
    )
    assert portal.expires_at == frozen_clock.now() + timedelta(hours=1)
    frozen_clock.advance(timedelta(minutes=59))
    assert resolve_portal_session(session, cookie) is not None
    frozen_clock.advance(timedelta(minutes=1))
    assert resolve_portal_session(session, cookie) is None
    assert resolve_portal_session(session, cookie[:-3] + "abc") is None
    assert resolve_portal_session(session, None) is None


def test_the_stored_secret_is_created_once_and_shared(database: Database, frozen_clock: FrozenClock) -> None:
    with database.unit_of_work() as s:
        cid = _customer(s)
        token = issue_portal_link(s, cid).token
    with database.unit_of_work() as s:  # another unit of work (another process would do the same)
        assert open_portal_link(s, token).customer_id == cid
        assert s.scalar(select(func.count()).select_from(AppSecret)) == 1
        secret = signing_secret(s)
        assert len(secret) >= 60
        assert secret not in repr(s.get(AppSecret, "signing"))


def test_a_configured_secret_key_signs_instead(
    database: Database, frozen_clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with database.unit_of_work() as s:
        cid = _customer(s)
        stored_token = issue_portal_link(s, cid).token
    monkeypatch.setenv("PATRON_SECRET_KEY", "k" * 40)
    reset_settings_cache()
    try:
        with database.unit_of_work() as s:
            with pytest.raises(PortalLinkInvalid):
                open_portal_link(s, stored_token)
            token = issue_portal_link(s, cid).token
            assert open_portal_link(s, token).customer_id == cid
        # a short secret is refused when the settings load (at start-up), and never shown
        monkeypatch.setenv("PATRON_SECRET_KEY", "short-secret-value")
        reset_settings_cache()
        with pytest.raises(ValidationError) as refused:
            get_settings()
        assert "at least 32 characters" in str(refused.value)
        assert "short-secret-value" not in str(refused.value)
    finally:
        monkeypatch.delenv("PATRON_SECRET_KEY")
        reset_settings_cache()
    with database.unit_of_work() as s:
        with pytest.raises(PortalLinkInvalid):
            open_portal_link(s, token)
        assert open_portal_link(s, stored_token).customer_id == cid


def test_link_tokens_are_redacted_from_the_access_log() -> None:
    import logging

    from patron.web.portal import RedactPortalTokens

    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/portal/t/WyIwMWEy.q645b9_gZ", "1.1", 303), None,
    )  # fmt: skip
    assert RedactPortalTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /portal/t/[redacted] HTTP/1.1" 303'
    other = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/portal/history?cursor=abc", "1.1", 200), None,
    )  # fmt: skip
    RedactPortalTokens().filter(other)
    assert "/portal/history?cursor=abc" in other.getMessage()


def test_verifying_before_anything_was_signed_writes_nothing(session: Session) -> None:
    with pytest.raises(PortalLinkInvalid):
        open_portal_link(session, "WyJ4IiwxLDFd.c2lnbmF0dXJl")
    assert resolve_portal_session(session, "WyJ4IiwxLDFd.c2lnbmF0dXJl") is None
    assert session.scalar(select(func.count()).select_from(AppSecret)) == 0
