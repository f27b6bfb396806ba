"""Settings from environment variables (``PATRON_*``) and an optional TOML config file.

Precedence: environment > config file (``PATRON_CONFIG`` or ``./patron.toml``) > defaults.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


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
    model_config = SettingsConfigDict(env_prefix="PATRON_", extra="ignore")

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
