"""The console's Jinja2 environment: gettext in the viewer's language, locale-aware filters.

Templates translate every visible string with ``{{ _("...") }}`` or ``{% trans %}``; the gettext
callables read the language of the current request (``patron.core.i18n.current_language``), so one
shared environment serves every language. Money, dates and times are formatted with the
``money``, ``date`` and ``datetime`` filters in the viewer's language and time zone (Thai dates in
the Buddhist era).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context

from patron.core.i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    current_language,
    format_date,
    format_datetime,
    format_decimal,
    format_money,
    gettext_for,
    ngettext_for,
)
from patron.core.money import Money

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def _gettext(message: str) -> str:
    return gettext_for(current_language.get())(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return ngettext_for(current_language.get())(singular, plural, n)


def _lang(ctx: Context) -> str:
    lang = ctx.get("lang")
    return lang if isinstance(lang, str) and lang in LANGUAGES else current_language.get()


def _tz(ctx: Context) -> str:
    tz = ctx.get("tz")
    return tz if isinstance(tz, str) and tz else "UTC"


@pass_context
def money_filter(ctx: Context, value: Money | Decimal | str | None, currency: str | None = None) -> str:
    """``{{ order.total | money }}`` or ``{{ amount | money("VND") }}`` for a bare Decimal/str."""
    if value is None or value == "":
        return ""
    if not isinstance(value, Money):
        if currency is None:
            raise TypeError("money filter needs a Money or a currency")
        value = Money(Decimal(str(value)), currency)
    return format_money(value, _lang(ctx))


@pass_context
def date_filter(ctx: Context, value: date | datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        from zoneinfo import ZoneInfo

        value = value.astimezone(ZoneInfo(_tz(ctx))).date()
    return format_date(value, _lang(ctx), fmt)


@pass_context
def datetime_filter(ctx: Context, value: datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    return format_datetime(value, _lang(ctx), _tz(ctx), fmt)


@pass_context
def number_filter(ctx: Context, value: Decimal | int | None) -> str:
    if value is None:
        return ""
    return format_decimal(value, _lang(ctx))


def build_environment(directory: Path = TEMPLATES_DIR) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(directory)),
        autoescape=select_autoescape(["html", "xml"], default_for_string=True, default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = money_filter
    env.filters["date"] = date_filter
    env.filters["datetime"] = datetime_filter
    env.filters["number"] = number_filter
    env.globals["LANGUAGES"] = LANGUAGES
    env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
    return env


_ENV: Environment | None = None


def environment() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = build_environment()
    return _ENV


def render_template(name: str, context: Mapping[str, Any]) -> str:
    """Render ``name`` in the language given by ``context["lang"]`` (default: the current one)."""
    lang = context.get("lang")
    token = current_language.set(lang) if isinstance(lang, str) and lang in LANGUAGES else None
    try:
        return environment().get_template(name).render(**context)
    finally:
        if token is not None:
            current_language.reset(token)
