"""Internationalisation: gettext catalogs (en, vi, hu, th) and locale-aware formatting.

Thai dates use the Buddhist era (พ.ศ. = Gregorian year + 543), which Babel lacks; HUF and VND are
shown without decimals. Catalogs are read from the ``.po`` files at start-up (no compile step).
"""

from __future__ import annotations

import gettext
import io
import re
from collections.abc import Callable
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from patron.core.money import Money, display_exponent

LANGUAGES: tuple[str, ...] = ("en", "vi", "hu", "th")
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "vi": "Tiếng Việt", "hu": "Magyar", "th": "ไทย"}
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"

current_language: ContextVar[str] = ContextVar("patron_language", default="en")


@lru_cache(maxsize=8)
def translations(language: str) -> gettext.NullTranslations:
    po_path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == "en" or not po_path.is_file():
        return gettext.NullTranslations()
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def normalise_language(value: str | None) -> str | None:
    if not value:
        return None
    base = value.strip().replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def negotiate(accept_language: str | None, default: str = "en") -> str:
    if accept_language:
        weighted: list[tuple[float, str]] = []
        for part in accept_language.split(","):
            pieces = part.strip().split(";q=")
            try:
                q = float(pieces[1]) if len(pieces) > 1 else 1.0
            except ValueError:
                q = 0.0
            lang = normalise_language(pieces[0])
            if lang:
                weighted.append((q, lang))
        if weighted:
            return max(weighted, key=lambda item: item[0])[1]
    return default


def gettext_for(language: str) -> Callable[[str], str]:
    return translations(language).gettext


def ngettext_for(language: str) -> Callable[[str, str, int], str]:
    return translations(language).ngettext


def _(message: str) -> str:
    """Translate into the current request's language."""
    return translations(current_language.get()).gettext(message)


def N_(message: str) -> str:
    return message


# ---- formatting -------------------------------------------------------------------------------

_LOCALES = {"en": "en_GB", "vi": "vi_VN", "hu": "hu_HU", "th": "th_TH"}


def babel_locale(language: str) -> str:
    return _LOCALES.get(language, language)


def format_money(money: Money, language: str) -> str:
    digits = display_exponent(money.currency)
    locale = babel_locale(language)
    pattern = Locale.parse(locale).currency_formats["standard"].pattern
    if digits == 0:
        pattern = re.sub(r"0\.0+", "0", pattern)
        amount = money.amount.quantize(Decimal(1))
    else:
        amount = money.amount
    return str(
        babel_numbers.format_currency(
            amount, money.currency, format=pattern, locale=locale, currency_digits=digits != 0
        )
    )


def format_decimal(value: Decimal | int, language: str) -> str:
    return str(babel_numbers.format_decimal(value, locale=babel_locale(language)))


def _buddhist(pattern: str, year: int) -> str:
    """Replace year fields (outside quoted literals) with the Buddhist-era year as a literal."""
    parts = re.split(r"('[^']*')", pattern)
    be = f"'{year + 543}'"
    return "".join(p if p.startswith("'") else re.sub(r"y+", be, p) for p in parts)


def format_date(value: date, language: str, fmt: str = "medium") -> str:
    locale = babel_locale(language)
    if language == "th":
        pattern = Locale.parse(locale).date_formats[fmt].pattern
        return str(babel_dates.format_date(value, format=_buddhist(pattern, value.year), locale=locale))
    return str(babel_dates.format_date(value, format=fmt, locale=locale))


def format_datetime(value: datetime, language: str, tz: str = "UTC", fmt: str = "medium") -> str:
    locale = babel_locale(language)
    local = value.astimezone(ZoneInfo(tz))
    if language == "th":
        loc = Locale.parse(locale)
        dpat = _buddhist(loc.date_formats[fmt].pattern, local.year)
        tpat = loc.time_formats["short"].pattern
        combined = str(loc.datetime_formats[fmt]).replace("{1}", dpat).replace("{0}", tpat)
        return str(babel_dates.format_datetime(local, format=combined, tzinfo=local.tzinfo, locale=locale))
    loc = Locale.parse(locale)
    dpat = loc.date_formats[fmt].pattern
    tpat = loc.time_formats["short"].pattern
    combined = str(loc.datetime_formats[fmt]).replace("{1}", dpat).replace("{0}", tpat)
    return str(babel_dates.format_datetime(local, format=combined, tzinfo=local.tzinfo, locale=locale))
