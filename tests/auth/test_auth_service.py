from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from patron.auth import (
    Perm,
    Role,
    authenticate,
    can_grant,
    create_token,
    create_user,
    has_permission,
    resolve_token,
    revoke_token,
    set_password,
    update_user,
)
from patron.auth.models import ApiToken
from patron.auth.service import digest
from patron.core.clock import FrozenClock
from patron.core.errors import Conflict, Forbidden, TooManyRequests, Unauthenticated, ValidationFailed

PW = "a-long-enough-password"


def test_permission_table() -> None:
    assert has_permission(Role.OWNER, Perm.OWNERSHIP)
    assert not has_permission(Role.ADMIN, Perm.OWNERSHIP)
    assert has_permission(Role.ADMIN, Perm.USERS_WRITE)
    assert has_permission(Role.MARKETER, Perm.SEGMENTS_WRITE)
    assert has_permission(Role.MARKETER, Perm.EXPORTS_RUN)
    assert not has_permission(Role.MARKETER, Perm.USERS_WRITE)
    assert has_permission(Role.AGENT, Perm.CUSTOMERS_READ)
    assert has_permission(Role.AGENT, Perm.TIMELINE_WRITE)
    assert has_permission(Role.AGENT, Perm.CONSENT_WRITE)
    assert not has_permission(Role.AGENT, Perm.CUSTOMERS_WRITE)
    assert has_permission(Role.ANALYST, Perm.ANALYTICS_RUN)
    assert has_permission(Role.ANALYST, Perm.EXPORTS_RUN)
    assert not has_permission(Role.ANALYST, Perm.CUSTOMERS_WRITE)
    assert not has_permission(Role.VIEWER, Perm.EXPORTS_RUN)
    assert not has_permission(Role.VIEWER, Perm.CUSTOMERS_WRITE)
    assert can_grant(Role.ADMIN, Role.MARKETER)
    assert not can_grant(Role.ADMIN, Role.OWNER)
    assert not can_grant(Role.MARKETER, Role.ANALYST)  # analyst may run analytics, marketer may not


def test_passwords_are_argon2_and_emails_unique(session: Session) -> None:
    user = create_user(session, email="Ana@Example.com", password=PW, role=Role.MARKETER)
    assert user.email == "ana@example.com"
    assert user.password_hash.startswith("$argon2id$")
    assert PW not in user.password_hash
    with pytest.raises(Conflict) as err:
        create_user(session, email="ana@example.com", password=PW, role=Role.VIEWER)
    assert err.value.code == "duplicate_user"
    with pytest.raises(ValidationFailed) as err2:
        create_user(session, email="b@example.com", password="short", role=Role.VIEWER)
    assert err2.value.code == "weak_password"


def test_lockout_after_repeated_failures(session: Session, frozen_clock: FrozenClock) -> None:
    create_user(session, email="a@example.com", password=PW, role=Role.AGENT)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            authenticate(session, "a@example.com", "wrong-password!")
    with pytest.raises(TooManyRequests) as err:
        authenticate(session, "a@example.com", PW)
    assert err.value.code == "account_locked"
    frozen_clock.advance(timedelta(minutes=16))
    assert authenticate(session, "a@example.com", PW).email == "a@example.com"


def test_password_reset_unlocks(session: Session, frozen_clock: FrozenClock) -> None:
    user = create_user(session, email="a@example.com", password=PW, role=Role.AGENT)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            authenticate(session, "a@example.com", "nope-nope-nope")
    set_password(session, user, "another-long-password")
    assert authenticate(session, "a@example.com", "another-long-password").id == user.id


def test_tokens_stored_as_digest_expire_and_revoke(session: Session, frozen_clock: FrozenClock) -> None:
    user = create_user(session, email="a@example.com", password=PW, role=Role.ADMIN)
    token, secret = create_token(
        session, user=user, name="ci", role=Role.VIEWER, expires_at=frozen_clock.now() + timedelta(days=1)
    )
    stored = session.get(ApiToken, token.id)
    assert stored is not None
    assert stored.digest == digest(secret)
    assert secret not in stored.digest
    principal = resolve_token(session, secret)
    assert principal.role is Role.VIEWER
    assert principal.scope == f"token:{token.id}"
    frozen_clock.advance(timedelta(days=2))
    with pytest.raises(Unauthenticated) as err:
        resolve_token(session, secret)
    assert err.value.code == "token_expired"
    _, secret2 = create_token(session, user=user, name="ci2")
    revoke_token(session, resolve_token(session, secret2).token_id or "")
    with pytest.raises(Unauthenticated) as err2:
        resolve_token(session, secret2)
    assert err2.value.code == "invalid_token"


def test_token_cannot_exceed_user_role(session: Session) -> None:
    user = create_user(session, email="m@example.com", password=PW, role=Role.MARKETER)
    with pytest.raises(Forbidden):
        create_token(session, user=user, name="x", role=Role.ADMIN)


def test_token_follows_a_demoted_user(session: Session) -> None:
    owner = create_user(session, email="o@example.com", password=PW, role=Role.OWNER)
    user = create_user(session, email="m@example.com", password=PW, role=Role.ADMIN)
    _, secret = create_token(session, user=user, name="x")
    update_user(session, user, role=Role.VIEWER)
    assert resolve_token(session, secret).role is Role.VIEWER
    with pytest.raises(Conflict) as err:
        update_user(session, owner, role=Role.ADMIN)
    assert err.value.code == "last_owner"
