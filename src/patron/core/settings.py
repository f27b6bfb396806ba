"""Settings from environment variables (``PATRON_*``) and an optional TOML config file.

Precedence: environment > config file (``PATRON_CONFIG`` or ``./patron.toml``) > defaults.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

#: a configured ``PATRON_SECRET_KEY`` shorter than this is refused (it could be guessed offline)
MIN_SECRET_KEY_LENGTH = 32


def _config_file_values() -> dict[str, Any]:
    path = Path(os.environ.get("PATRON_CONFIG", "patron.toml"))
    if not path.is_file():
        return {}
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    section = data.get("patron", data)
    return {str(k).lower(): v for k, v in section.items()}


class _TomlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return _config_file_values()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PATRON_", extra="ignore", hide_input_in_errors=True)

    database_url: str = Field(default="sqlite:///patron.db")
    secret_key: SecretStr = Field(default=SecretStr(""))
    session_max_age_seconds: int = 8 * 3600
    login_max_failures: int = 5
    login_lockout_seconds: int = 15 * 60
    idempotency_ttl_hours: int = 48
    outbox_retention_days: int = 30
    dispatch_in_process: bool = True
    default_language: str = "en"
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536
    log_level: str = "info"
    cookie_secure: bool = False
    # customer portal (docs/portal.md): where links point, how long they and the portal session last
    public_url: str = "http://127.0.0.1:8000"
    portal_link_days: int = 30
    portal_session_seconds: int = 3600
    # rate limits of the public endpoints, "COUNT/SECONDS" per client ("" or "0/…" switches one off)
    rate_limit_portal_open: str = "30/60"
    rate_limit_signup: str = "10/3600"
    rate_limit_redeem: str = "20/60"
    rate_limit_referral_page: str = "60/60"
    rate_limit_login: str = "60/60"  # failed console logins per client address, all emails
    rate_limit_login_email: str = "10/60"  # failed console logins per (client address, email)
    rate_limit_portal_link: str = "60/60"
    # ``patron serve``: trusted reverse proxies whose X-Forwarded-For/-Proto are believed ("" = none)
    forwarded_allow_ips: str = ""

    @field_validator("secret_key")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"PATRON_SECRET_KEY must be empty or have at least {MIN_SECRET_KEY_LENGTH} characters"
            )
        return value

    @field_validator(
        "rate_limit_portal_open",
        "rate_limit_signup",
        "rate_limit_redeem",
        "rate_limit_login",
        "rate_limit_login_email",
        "rate_limit_portal_link",
        "rate_limit_referral_page",
    )
    @classmethod
    def _rate_parses(cls, value: str) -> str:
        from patron.core.ratelimit import parse_rate

        parse_rate(value)  # ValueError when it is not COUNT/SECONDS
        return value

    @field_validator("portal_link_days")
    @classmethod
    def _link_days(cls, value: int) -> int:
        if not 1 <= value <= 366:
            raise ValueError("PATRON_PORTAL_LINK_DAYS must be 1 to 366")
        return value

    @field_validator("portal_session_seconds")
    @classmethod
    def _session_seconds(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("PATRON_PORTAL_SESSION_SECONDS must be positive")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1].strip("/")) == 0:
            raise ValueError("PATRON_PUBLIC_URL must be an http:// or https:// URL")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
