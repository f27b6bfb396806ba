"""Staff users, API tokens and console sessions. Commands flush; the adapter commits."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from patron.auth.models import ApiToken, ConsoleSession, User
from patron.auth.permissions import ROLE_PERMISSIONS, Perm, Role, can_grant
from patron.core.audit import record_audit
from patron.core.clock import ensure_aware, now
from patron.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    ValidationFailed,
)
from patron.core.settings import get_settings

TOKEN_PREFIX = "ptn_"  # noqa: S105 - a public prefix, not a secret
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str
    role: Role
    via: str  # "token" | "session" | "cli"
    token_id: str | None = None
    language: str = "en"
    time_zone: str = "UTC"
    csrf_token: str | None = None

    @property
    def scope(self) -> str:
        """Idempotency scope: per token, or per user for console sessions."""
        return f"token:{self.token_id}" if self.token_id else f"user:{self.user_id}"

    def can(self, perm: Perm) -> bool:
        return perm in ROLE_PERMISSIONS[self.role]

    def require(self, perm: Perm) -> None:
        if not self.can(perm):
            raise Forbidden(f"role {self.role.value!r} lacks permission {perm.value!r}", code="forbidden")


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    s = get_settings()
    return PasswordHasher(time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_cost, parallelism=1)


def hash_password(password: str) -> str:
    return str(_hasher().hash(password))


def verify_password(hashed: str, password: str) -> bool:
    try:
        return bool(_hasher().verify(hashed, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"password must have at least {MIN_PASSWORD} characters", code="weak_password")


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise ValidationFailed(f"not an email address: {email!r}", code="invalid_email")
    return email


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def user_snapshot(user: User) -> dict[str, object]:
    return {
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "is_active": user.is_active,
        "language": user.language,
    }


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    role: Role | str,
    name: str = "",
    language: str = "en",
    granted_by: Principal | None = None,
) -> User:
    role = Role(role)
    if granted_by is not None and not can_grant(granted_by.role, role):
        raise Forbidden(f"a {granted_by.role.value} cannot create an {role.value}", code="role_not_grantable")
    email = normalise_email(email)
    validate_password(password)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user with email {email} exists", code="duplicate_user")
    user = User(
        email=email, name=name, role=role.value, password_hash=hash_password(password), language=language
    )
    session.add(user)
    session.flush()
    record_audit(session, "user.created", "user", user.id, new=user_snapshot(user))
    return user


def get_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found", code="user_not_found")
    return user


def get_user_by_email(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"no user with email {email}", code="user_not_found")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def update_user(
    session: Session,
    user: User,
    *,
    role: str | None = None,
    name: str | None = None,
    is_active: bool | None = None,
    language: str | None = None,
    time_zone: str | None = None,
    actor: Principal | None = None,
) -> User:
    old = user_snapshot(user)
    if role is not None:
        new_role = Role(role)
        if actor is not None and (
            not can_grant(actor.role, new_role) or not can_grant(actor.role, Role(user.role))
        ):
            raise Forbidden("you cannot change this user's role", code="role_not_grantable")
        if Role(user.role) is Role.OWNER and new_role is not Role.OWNER:
            _ensure_other_owner(session, user)
        user.role = new_role.value
    if is_active is not None:
        if not is_active and Role(user.role) is Role.OWNER:
            _ensure_other_owner(session, user)
        user.is_active = is_active
    if name is not None:
        user.name = name
    if language is not None:
        user.language = language
    if time_zone is not None:
        user.time_zone = time_zone
    session.flush()
    record_audit(session, "user.updated", "user", user.id, old=old, new=user_snapshot(user))
    return user


def _ensure_other_owner(session: Session, user: User) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.OWNER.value, User.is_active.is_(True), User.id != user.id)
    )
    if not others:
        raise Conflict("the business must keep at least one active owner", code="last_owner")


def set_password(session: Session, user: User, password: str) -> None:
    validate_password(password)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    # a password change ends every console session of that user
    session.execute(update(ConsoleSession).where(ConsoleSession.user_id == user.id).values(expires_at=now()))
    session.flush()
    record_audit(session, "user.password_reset", "user", user.id)


def authenticate(session: Session, email: str, password: str) -> User:
    """Check a console login; counts failures and locks the account after too many."""
    settings = get_settings()
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active:
        verify_password(_DUMMY_HASH(), password)  # same cost whether or not the user exists
        raise Unauthenticated("wrong email or password", code="invalid_credentials")
    if user.locked_until is not None and ensure_aware(user.locked_until) > now():
        raise TooManyRequests("too many failed logins; try again later", code="account_locked")
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= settings.login_max_failures:
            user.locked_until = now() + timedelta(seconds=settings.login_lockout_seconds)
            user.failed_logins = 0
            record_audit(session, "user.locked", "user", user.id)
        session.flush()
        raise Unauthenticated("wrong email or password", code="invalid_credentials")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now()
    session.flush()
    return user


@lru_cache(maxsize=1)
def _dummy() -> str:
    return hash_password("not-a-real-password")


def _DUMMY_HASH() -> str:
    return _dummy()


def principal_for(
    user: User,
    *,
    via: str,
    role: Role | None = None,
    token_id: str | None = None,
    csrf_token: str | None = None,
) -> Principal:
    return Principal(
        user_id=user.id,
        email=user.email,
        role=role or Role(user.role),
        via=via,
        token_id=token_id,
        language=user.language,
        time_zone=user.time_zone,
        csrf_token=csrf_token,
    )


# ---- API tokens --------------------------------------------------------------------------------


def create_token(
    session: Session,
    *,
    user: User,
    name: str,
    role: Role | str | None = None,
    expires_at: datetime | None = None,
    granted_by: Principal | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the secret, which is shown once and stored only as a digest."""
    token_role = Role(role) if role else Role(user.role)
    if not can_grant(Role(user.role), token_role):
        raise Forbidden("a token cannot have more rights than its user", code="role_not_grantable")
    if granted_by is not None and granted_by.user_id != user.id and not granted_by.can(Perm.USERS_WRITE):
        raise Forbidden("you may only create tokens for yourself", code="forbidden")
    if expires_at is not None and expires_at <= now():
        raise ValidationFailed("expires_at must be in the future", code="invalid_expiry")
    if not name.strip():
        raise ValidationFailed("name is required", code="invalid_name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name.strip(),
        role=token_role.value,
        digest=digest(secret),
        prefix=secret[:10],
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    record_audit(
        session,
        "token.created",
        "api_token",
        token.id,
        new={"name": token.name, "role": token.role, "user_id": user.id},
    )
    return token, secret


def resolve_token(session: Session, secret: str) -> Principal:
    """The principal of an API token (one statement: the token and its user)."""
    found = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.digest == digest(secret))
    ).one_or_none()
    if found is None or found[0].revoked_at is not None:
        raise Unauthenticated("invalid or revoked token", code="invalid_token")
    token, user = found
    if token.expires_at is not None and ensure_aware(token.expires_at) <= now():
        raise Unauthenticated("token expired", code="token_expired")
    if not user.is_active:
        raise Unauthenticated("token's user is disabled", code="invalid_token")
    # a token never has more rights than its user has now
    role = Role(token.role)
    if not can_grant(Role(user.role), role):
        role = Role(user.role)
    return principal_for(user, via="token", role=role, token_id=token.id)


def list_tokens(session: Session, *, user_id: str | None = None) -> list[ApiToken]:
    stmt = select(ApiToken).order_by(ApiToken.created_at.desc())
    if user_id:
        stmt = stmt.where(ApiToken.user_id == user_id)
    return list(session.scalars(stmt))


def revoke_token(session: Session, token_id: str, *, actor: Principal | None = None) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("token not found", code="token_not_found")
    if actor is not None and token.user_id != actor.user_id and not actor.can(Perm.USERS_WRITE):
        raise NotFound("token not found", code="token_not_found")
    if token.revoked_at is None:
        token.revoked_at = now()
        session.flush()
        record_audit(session, "token.revoked", "api_token", token.id)
    return token


# ---- console sessions --------------------------------------------------------------------------


def open_console_session(session: Session, user: User) -> tuple[ConsoleSession, str]:
    secret = secrets.token_urlsafe(32)
    row = ConsoleSession(
        digest=digest(secret),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(24),
        expires_at=now() + timedelta(seconds=get_settings().session_max_age_seconds),
    )
    session.add(row)
    session.flush()
    return row, secret


def resolve_console_session(session: Session, secret: str) -> Principal:
    row = session.scalar(select(ConsoleSession).where(ConsoleSession.digest == digest(secret)))
    if row is None or ensure_aware(row.expires_at) <= now():
        raise Unauthenticated("session expired", code="session_expired")
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise Unauthenticated("session expired", code="session_expired")
    return principal_for(user, via="session", csrf_token=row.csrf_token)


def close_console_session(session: Session, secret: str) -> None:
    session.execute(
        update(ConsoleSession).where(ConsoleSession.digest == digest(secret)).values(expires_at=now())
    )
