"""The secret that signs links and cookies given to people outside the staff (the customer portal).

``PATRON_SECRET_KEY`` when it is set; otherwise a random secret generated once and kept in the
database (table ``app_secrets``), so every web process, the CLI and every restart agree without any
configuration. Each use derives its own key (``derive_key(session, "portal.link")``), so a value
signed for one purpose never verifies for another. The secret is never logged or shown.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from patron.core.db import Base, created_at_column
from patron.core.settings import MIN_SECRET_KEY_LENGTH, get_settings

SIGNING_SECRET_NAME = "signing"  # noqa: S105 (the row's name, not a secret)
#: secrets shorter than this (from the environment) are refused: they could be guessed offline (the
#: settings already refuse them at start-up; this stays as a second check)
MIN_SECRET_LENGTH = MIN_SECRET_KEY_LENGTH


class AppSecret(Base):
    """Secrets the application generates for itself (one row per name)."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()

    def __repr__(self) -> str:  # never show the value
        return f"AppSecret(name={self.name!r})"


class WeakSecretKey(ValueError):
    """``PATRON_SECRET_KEY`` is set but too short."""


def _configured() -> str | None:
    value = get_settings().secret_key.get_secret_value()
    if not value:
        return None
    if len(value) < MIN_SECRET_LENGTH:
        raise WeakSecretKey(f"PATRON_SECRET_KEY must have at least {MIN_SECRET_LENGTH} characters")
    return value


def stored_secret(session: Session) -> str | None:
    """The configured secret, else the stored one, else None (nothing was ever signed: verifying
    needs no secret to be created, so a read-only request never writes)."""
    configured = _configured()
    if configured is not None:
        return configured
    stored = session.scalar(select(AppSecret.value).where(AppSecret.name == SIGNING_SECRET_NAME))
    return None if stored is None else str(stored)


def signing_secret(session: Session) -> str:
    """The configured secret, else the stored one (created on first use; concurrent first uses agree:
    the loser of the insert race reads the winner's row)."""
    existing = stored_secret(session)
    if existing is not None:
        return existing
    candidate = secrets.token_urlsafe(48)
    try:
        with session.begin_nested():
            session.add(AppSecret(name=SIGNING_SECRET_NAME, value=candidate))
            session.flush()
    except IntegrityError:
        pass
    stored = session.scalar(select(AppSecret.value).where(AppSecret.name == SIGNING_SECRET_NAME))
    assert stored is not None
    return str(stored)


def derive_key(session: Session, purpose: str, *, create: bool = True) -> bytes | None:
    """A key for one purpose (HMAC-SHA256 of the purpose under the signing secret). With
    ``create=False`` (verifying), None when no secret exists yet."""
    secret = signing_secret(session) if create else stored_secret(session)
    if secret is None:
        return None
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


__all__ = ["MIN_SECRET_LENGTH", "AppSecret", "WeakSecretKey", "derive_key", "signing_secret", "stored_secret"]
