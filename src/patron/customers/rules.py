"""Pure customer policy: validation and normalisation of a profile, name order, salutations, the
folded search text and how a search query is read. No I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import available_timezones

import phonenumbers
from babel import Locale

from patron.core.clock import now
from patron.core.errors import ValidationFailed
from patron.core.i18n import LANGUAGES, N_, normalise_language
from patron.core.text import digits_only, fold
from patron.customers.contracts import CONSENT_CHANNELS, PreparedCustomer
from patron.customers.phones import PhoneParseError, parse_phone

FAMILY_NAME_FIRST: frozenset[str] = frozenset({"vi", "hu"})
CHANNELS: tuple[str, ...] = CONSENT_CHANNELS
MAX_NAME = 200
MAX_EMAIL = 320
MAX_TAG = 50
MAX_TAGS = 100

# Default language and time zone for the first markets when the input names only the country.
COUNTRY_LANGUAGE: dict[str, str] = {"VN": "vi", "HU": "hu", "TH": "th"}
COUNTRY_TIME_ZONE: dict[str, str] = {
    "VN": "Asia/Ho_Chi_Minh",
    "HU": "Europe/Budapest",
    "TH": "Asia/Bangkok",
    "GB": "Europe/London",
    "DE": "Europe/Berlin",
    "FR": "Europe/Paris",
    "SG": "Asia/Singapore",
    "JP": "Asia/Tokyo",
}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
_PHONE_QUERY = re.compile(r"^[\d\s().\-/+]+$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_SEP = "|"


# ---- names --------------------------------------------------------------------------------------


class NameParts(Protocol):
    @property
    def given_name(self) -> str: ...

    @property
    def family_name(self) -> str: ...

    @property
    def language(self) -> str: ...

    @property
    def form_of_address(self) -> str | None: ...


def family_name_first(language: str | None) -> bool:
    return (language or "en") in FAMILY_NAME_FIRST


def full_name(given: str, family: str, language: str | None) -> str:
    """The name in the order of its language: family first for Vietnamese and Hungarian."""
    parts = [family, given] if family_name_first(language) else [given, family]
    return " ".join(p.strip() for p in parts if p and p.strip())


def display_name(customer: NameParts, language: str | None = None) -> str:
    """``Nguyễn Văn An`` (vi), ``Kovács Anna`` (hu), ``Anna Smith`` (en), ``สมชาย ใจดี`` (th).

    The order follows the language of the name — by default the customer's own language, since a
    Vietnamese or Hungarian name is written family name first."""
    return full_name(customer.given_name, customer.family_name, language or customer.language)


def salutation(customer: NameParts, language: str | None = None) -> str:
    """How to address the customer in a message: ``anh An`` / ``chị Lan`` (vi: form of address and the
    last word of the given name), ``Kovács Anna`` with Ön or ``Anna`` with te (hu), ``คุณสมชาย`` (th:
    คุณ and the given name), ``Ms Smith`` or ``Anna`` (en)."""
    lang = language or customer.language
    given = customer.given_name.strip()
    family = customer.family_name.strip()
    form = (customer.form_of_address or "").strip()
    name = display_name(customer, lang)
    if not given and not family:
        return form
    if lang == "vi":
        call = given.split()[-1] if given else family
        return f"{form} {call}" if form else name
    if lang == "hu":
        if form.casefold() == "te":
            return given or name
        return name
    if lang == "th":
        return f"{form or 'คุณ'}{given or family}"
    if form and family:
        return f"{form} {family}"
    return given or name


# ---- field validation ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    territories = [str(code) for code in Locale.parse("en").territories]
    excluded = {"EU", "EZ", "UN", "QO", "ZZ"}
    return frozenset(c for c in territories if len(c) == 2 and c.isalpha() and c not in excluded)


def is_time_zone(value: str) -> bool:
    return value in _time_zones()


def is_country(value: str) -> bool:
    return value in _countries()


def normalise_email(value: str) -> str:
    """Trim and lower-case the domain; the local part keeps its case (some servers care)."""
    value = value.strip()
    if len(value) > MAX_EMAIL or not _EMAIL.match(value):
        raise ValueError(N_("not a valid email address"))
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def fold_email(value: str) -> str:
    return fold(value.strip())


@dataclass(frozen=True)
class Phone:
    e164: str
    national_digits: str


def normalise_phone(value: str, country: str | None) -> Phone:
    """E.164 for a phone given internationally (``+84 …``, ``0084 …``) or nationally with the customer's
    country (``0912 345 678`` with VN → ``+84912345678``)."""
    raw = value.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    international = raw.lstrip("( ").startswith("+")
    if not international and not country:
        raise ValueError(N_("a national phone number needs the customer's country"))
    try:
        parsed = parse_phone(raw, None if international else country)
    except PhoneParseError as exc:
        raise ValueError(N_("not a phone number")) from exc
    if not parsed.valid:
        raise ValueError(N_("not a valid phone number"))
    return Phone(f"+{parsed.country_code}{parsed.nsn}", _national_prefix(parsed.country_code) + parsed.nsn)


def has_nul(value: object) -> bool:
    """NUL characters anywhere in a value (PostgreSQL cannot store them in text)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    value = value.strip()
    return value or None


def _parse_birthday(value: object) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(N_("birthday must be a date (YYYY-MM-DD)")) from exc
    raise ValueError(N_("birthday must be a date (YYYY-MM-DD)"))


def _parse_created_at(value: object) -> datetime | None:
    """An aware datetime (ISO 8601 with offset), or a date meaning midnight UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text) if ("T" in text or " " in text) else date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(N_("created_at must be an ISO 8601 date or date-time with offset")) from exc
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(N_("created_at needs a time zone offset"))
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise ValueError(N_("created_at must be an ISO 8601 date or date-time with offset"))


def _string_list(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [p.strip() for p in re.split(r"[;,]", value) if p.strip()]
    if isinstance(value, list | tuple | set | frozenset):
        out = []
        for item in value:
            if not isinstance(item, str):
                raise ValueError(N_("must be a list of strings"))
            if item.strip():
                out.append(item.strip())
        return out
    raise ValueError(N_("must be a list of strings"))


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if value is None or value == "":
        return False
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "y", "t"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "n", "f"}:
        return False
    raise ValueError(N_("must be true or false"))


# The raw keys prepare_customer reads; given/family are accepted as aliases of first/last.
ALIASES: dict[str, str] = {
    "first_name": "given_name",
    "given_name": "given_name",
    "last_name": "family_name",
    "family_name": "family_name",
    "phone": "phone_e164",
    "phone_e164": "phone_e164",
}
FIELDS: frozenset[str] = frozenset(
    {
        "given_name", "family_name", "form_of_address", "email", "emails", "phone_e164", "phones",
        "language", "preferred_channel", "time_zone", "country", "birthday", "tags", "attributes",
        "external_id", "referral_code", "organisation_id", "organisation_role", "is_test", "created_at",
    }
)  # fmt: skip


def prepare_customer(raw: Mapping[str, object], *, today: date | None = None) -> PreparedCustomer:
    """Validate and normalise one customer row. Raises :class:`ValidationFailed` whose ``errors`` name
    every bad field (``loc`` = [field]). Keys absent from ``raw`` are not "provided"; ``None`` or ""
    clears a field."""
    errors: list[dict[str, Any]] = []
    data: dict[str, Any] = {}
    provided: set[str] = set()
    unknown = []
    for key, value in raw.items():
        name = ALIASES.get(key, key)
        if name not in FIELDS:
            unknown.append(key)
            continue
        provided.add(name)
        if has_nul(value):
            errors.append({"loc": [key], "msg": "must not contain NUL characters", "type": "invalid_text"})
            continue
        data[name] = value
    for key in unknown:
        errors.append({"loc": [key], "msg": "unknown field", "type": "unknown_field"})

    def bad(field_name: str, msg: str, kind: str) -> None:
        errors.append({"loc": [field_name], "msg": msg, "type": kind})

    out: dict[str, Any] = {}
    for name in ("given_name", "family_name"):
        value = _text(data.get(name)) or ""
        if len(value) > MAX_NAME:
            bad(name, "too long", "too_long")
        out[name] = value
    form = _text(data.get("form_of_address"))
    if form is not None and len(form) > 50:
        bad("form_of_address", "too long", "too_long")
    out["form_of_address"] = form

    country = _text(data.get("country"))
    if country is not None:
        country = country.upper()
        if not is_country(country):
            bad("country", "not an ISO 3166-1 alpha-2 country code", "invalid_country")
            country = None
    out["country"] = country

    email = _text(data.get("email"))
    if email is not None:
        try:
            email = normalise_email(email)
        except ValueError as exc:
            bad("email", str(exc), "invalid_email")
    out["email"] = email
    emails: list[str] = []
    try:
        for item in _string_list(data.get("emails")):
            try:
                emails.append(normalise_email(item))
            except ValueError:
                bad("emails", f"not a valid email address: {item}", "invalid_email")
    except ValueError as exc:
        bad("emails", str(exc), "invalid_email")
    folded_primary = fold_email(email) if email else None
    seen = {folded_primary} if folded_primary else set()
    unique_emails = []
    for item in emails:
        f = fold_email(item)
        if f not in seen:
            seen.add(f)
            unique_emails.append(item)
    out["emails"] = tuple(unique_emails)

    national: list[str] = []
    phone = _text(data.get("phone_e164"))
    if phone is not None:
        try:
            parsed = normalise_phone(phone, country)
            phone = parsed.e164
            national.append(parsed.national_digits)
        except ValueError as exc:
            bad("phone", str(exc), "invalid_phone")
            phone = None
    out["phone_e164"] = phone
    phones: list[str] = []
    try:
        for item in _string_list(data.get("phones")):
            try:
                parsed = normalise_phone(item, country)
            except ValueError as exc:
                bad("phones", f"{exc}: {item}", "invalid_phone")
                continue
            if parsed.e164 != phone and parsed.e164 not in phones:
                phones.append(parsed.e164)
                national.append(parsed.national_digits)
    except ValueError as exc:
        bad("phones", str(exc), "invalid_phone")
    out["phones"] = tuple(phones)
    out["phone_national_digits"] = tuple(national)

    language_raw = _text(data.get("language"))
    language = normalise_language(language_raw) if language_raw else None
    if language_raw and language is None:
        bad("language", f"must be one of {', '.join(LANGUAGES)}", "invalid_language")
    out["language"] = language or COUNTRY_LANGUAGE.get(country or "", "en")

    tz = _text(data.get("time_zone"))
    if tz is not None and not is_time_zone(tz):
        bad("time_zone", "not an IANA time zone (e.g. Asia/Ho_Chi_Minh)", "invalid_time_zone")
        tz = None
    out["time_zone"] = tz or COUNTRY_TIME_ZONE.get(country or "", "UTC")

    channel = _text(data.get("preferred_channel"))
    if channel is not None:
        channel = channel.lower()
        if channel not in CHANNELS:
            bad("preferred_channel", f"must be one of {', '.join(CHANNELS)}", "invalid_channel")
            channel = None
    out["preferred_channel"] = channel

    try:
        birthday = _parse_birthday(data.get("birthday"))
    except ValueError as exc:
        bad("birthday", str(exc), "invalid_date")
        birthday = None
    if birthday is not None:
        limit = today or now().date()
        if birthday > limit or birthday.year < 1900:
            bad("birthday", "birthday must be between 1900 and today", "invalid_date")
            birthday = None
    out["birthday"] = birthday

    try:
        created_at = _parse_created_at(data.get("created_at"))
    except ValueError as exc:
        bad("created_at", str(exc), "invalid_datetime")
        created_at = None
    if created_at is not None and (created_at > now() or created_at.year < 1970):
        bad("created_at", "created_at must be between 1970 and now", "invalid_datetime")
        created_at = None
    out["created_at"] = created_at

    try:
        tags = list(dict.fromkeys(_string_list(data.get("tags"))))
    except ValueError as exc:
        bad("tags", str(exc), "invalid_tags")
        tags = []
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG for t in tags):
        bad("tags", f"at most {MAX_TAGS} tags of up to {MAX_TAG} characters", "invalid_tags")
    out["tags"] = tuple(tags)

    attributes = data.get("attributes")
    if attributes is None or attributes == "":
        attributes = {}
    if not isinstance(attributes, dict) or not all(isinstance(k, str) for k in attributes):
        bad("attributes", "must be a JSON object", "invalid_attributes")
        attributes = {}
    out["attributes"] = dict(attributes)

    for name, limit_len in (
        ("external_id", 200), ("referral_code", 64), ("organisation_id", 36), ("organisation_role", 100),
    ):  # fmt: skip
        value = _text(data.get(name))
        if value is not None and len(value) > limit_len:
            bad(name, "too long", "too_long")
        out[name] = value
    try:
        out["is_test"] = _bool(data.get("is_test"))
    except ValueError as exc:
        bad("is_test", str(exc), "invalid_bool")
    if errors:
        raise ValidationFailed(
            "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in errors), code="invalid_customer", errors=errors
        )
    return PreparedCustomer(provided=frozenset(provided), **out)


# ---- search ------------------------------------------------------------------------------------


def _clean(value: str) -> str:
    return " ".join(fold(value).replace(_SEP, " ").split())


def search_fields(
    given: str,
    family: str,
    emails: list[str],
    phones_e164: list[str],
    national_digits: list[str],
    *,
    folded: tuple[str, str] | None = None,
) -> list[str]:
    fields: list[str] = []
    if folded is not None:
        g, f = (" ".join(x.replace(_SEP, " ").split()) for x in folded)
    else:
        g, f = _clean(given), _clean(family)
    if g and f:
        fields += [f"{g} {f}", f"{f} {g}"]
    for part in (g, f):
        if part:
            fields.append(part)
    fields += [_clean(e) for e in emails if e]
    fields += [digits_only(p) for p in phones_e164 if p]
    fields += [d for d in national_digits if d]
    return list(dict.fromkeys(x for x in fields if x))


def build_search_text(
    given: str,
    family: str,
    emails: list[str],
    phones_e164: list[str],
    national_digits: list[str],
    *,
    folded: tuple[str, str] | None = None,
) -> str:
    """``|nguyen van an|van an nguyen|…|an@example.com|84912345678|0912345678|``: folded fields between
    separators, so a query can tell an exact field (``|q|``), a prefix (``|q`` or `` q``) and a
    substring apart (see :func:`patron.customers.queries.list_customers`)."""
    fields = search_fields(given, family, emails, phones_e164, national_digits, folded=folded)
    return _SEP + _SEP.join(fields) + _SEP if fields else ""


@lru_cache(maxsize=512)
def _national_prefix(country_code: int) -> str:
    region = phonenumbers.region_code_for_country_code(country_code)
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    return str(meta.national_prefix or "") if meta is not None else ""


def _national(number: phonenumbers.PhoneNumber) -> str:
    """The digits a person dials at home: national prefix + national number (``0912345678`` in VN,
    ``06301234567`` in HU)."""
    return _national_prefix(number.country_code) + phonenumbers.national_significant_number(number)


def national_digits_for(e164: str) -> str:
    try:
        return _national(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return ""


@dataclass(frozen=True)
class SearchQuery:
    text: str  # folded text or digits
    is_phone: bool


def read_query(q: str) -> SearchQuery | None:
    """``0912 345 678`` / ``+84 912…`` → digits; anything else → folded text with single spaces."""
    q = q.strip()
    if not q:
        return None
    if _PHONE_QUERY.match(q):
        digits = digits_only(q)
        if len(digits) >= 3 or (digits and len(digits) == len(q)):
            return SearchQuery(digits, True)
    text = _clean(q)
    return SearchQuery(text, False) if text else None


# ---- traits, timeline ------------------------------------------------------------------------


def encode_trait(value: object) -> tuple[str, str | None, Decimal | None, Any]:
    """(value_type, value_text, value_number, value_json) for a trait value."""
    if isinstance(value, bool):
        return "bool", "true" if value else "false", None, value
    if isinstance(value, int):
        return "number", None, Decimal(value), None
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("trait numbers must be finite")
        return "number", None, value, None
    if isinstance(value, float):
        try:
            return "number", None, Decimal(str(value)), None
        except InvalidOperation as exc:  # pragma: no cover - str(float) is always a decimal
            raise ValueError("not a number") from exc
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("trait datetimes must be aware")
        return "datetime", value.astimezone(UTC).isoformat(), None, None
    if isinstance(value, date):
        return "date", value.isoformat(), None, None
    if isinstance(value, str):
        return "text", value, None, None
    if isinstance(value, dict | list):
        return "json", None, None, value
    raise ValueError(f"unsupported trait value type: {type(value).__name__}")


def decode_trait(value_type: str, text: str | None, number: Decimal | None, json_value: Any) -> Any:
    if value_type == "number" and number is not None:
        number = Decimal(number)
        if number == number.to_integral_value():
            return int(number)
        return number.normalize()
    if value_type == "bool":
        return bool(json_value) if json_value is not None else text == "true"
    if value_type == "date" and text:
        return date.fromisoformat(text)
    if value_type == "datetime" and text:
        return datetime.fromisoformat(text)
    if value_type == "json":
        return json_value
    return text


def is_slug(value: str, max_length: int) -> bool:
    return 0 < len(value) <= max_length and bool(_SLUG.match(value))
