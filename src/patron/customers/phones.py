"""Phone numbers to E.164: ``phonenumbers``' rules, with a fast path for the common shape.

``phonenumbers.parse`` spends most of its time on what plain numbers never need: Unicode digit
mapping, letters, extensions, ``tel:`` URIs. A number written with ASCII digits and the usual
separators (space, ``-``, ``.``), internationally (``+84 912 345 678``) or nationally for a known
region (``0912 345 678``), is read here with the library's own steps for the rest — country code,
national prefix, length test — and checked against the region's metadata patterns (the same test as
``is_valid_number``). Anything else, and every case that needs a judgement the fast path does not
make (an IDD prefix, a country code shared by several regions, a national number starting with the
country code), goes through ``phonenumbers`` itself. A property test checks both paths agree.

The fast path leans on helpers private to ``phonenumbers`` (pinned in ``pyproject.toml``); the
property test guards an upgrade.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import phonenumberutil as _util

_SIMPLE = re.compile(r"[0-9 .\-]+")
_SEPARATORS = str.maketrans("", "", " .-")
_MIN_NSN, _MAX_NSN = 2, 17
_NON_GEOGRAPHIC = "001"  # the region code of global services (+800 …)
_NOT_KEPT = (
    _util.ValidationResult.TOO_SHORT,
    _util.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    _util.ValidationResult.INVALID_LENGTH,
)
_TYPE_DESCS = (
    "fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "voip", "personal_number",
    "pager", "uan", "voicemail",
)  # fmt: skip


class PhoneParseError(ValueError):
    """Not a phone number at all (as opposed to a number that is not valid)."""


@dataclass(frozen=True, slots=True)
class ParsedPhone:
    country_code: int
    nsn: str  # national significant number
    valid: bool


Desc = tuple[frozenset[int], re.Pattern[str]]


@lru_cache(maxsize=512)
def _descs(region: str) -> tuple[Desc | None, tuple[Desc, ...]] | None:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    if meta is None:
        return None

    def desc(d: object) -> Desc | None:
        pattern = getattr(d, "national_number_pattern", None)
        if d is None or not pattern:
            return None
        return frozenset(getattr(d, "possible_length", ()) or ()), re.compile(pattern)

    kinds = tuple(x for x in (desc(getattr(meta, k, None)) for k in _TYPE_DESCS) if x is not None)
    return desc(meta.general_desc), kinds


def _matches(nsn: str, desc: Desc | None) -> bool:
    if desc is None:
        return False
    lengths, pattern = desc
    if lengths and len(nsn) not in lengths:
        return False
    return pattern.fullmatch(nsn) is not None


def _valid(country_code: int, nsn: str, region: str) -> bool:
    descs = _descs(region)
    if descs is None:
        return False
    general, kinds = descs
    return _matches(nsn, general) and any(_matches(nsn, d) for d in kinds)


def _finish(
    country_code: int, digits: str, meta: phonenumbers.PhoneMetadata, region: str
) -> ParsedPhone | None:
    """The national number (national prefix stripped when the library would) and its validity; None
    when a rule outside the fast path applies."""
    if len(digits) < _MIN_NSN:
        return None
    _, stripped, _ = _util._maybe_strip_national_prefix_carrier_code(digits, meta)
    nsn = stripped if _util._test_number_length(stripped, meta) not in _NOT_KEPT else digits
    if not _MIN_NSN <= len(nsn) <= _MAX_NSN:
        return None
    return ParsedPhone(country_code, nsn, _valid(country_code, nsn, region))


def _fast(raw: str, region: str | None) -> ParsedPhone | None:
    international = raw.startswith("+")
    body = raw[1:] if international else raw
    if not body or not _SIMPLE.fullmatch(body) or not body[0].isdigit() or not body[-1].isdigit():
        return None
    digits = body.translate(_SEPARATORS)
    if len(digits) < 3:
        return None
    if international:
        if digits[0] == "0" or len(digits) <= _MIN_NSN:
            return None
        country_code, rest = _util._extract_country_code(digits)
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
        if country_code == 0 or len(regions) != 1 or regions[0] == _NON_GEOGRAPHIC:
            return None
        meta = phonenumbers.PhoneMetadata.metadata_for_region(regions[0], None)
        if meta is None:
            return None
        return _finish(country_code, rest, meta, regions[0])
    if region is None:
        return None
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    if meta is None or meta.country_code is None:
        return None
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(meta.country_code, ())
    if len(regions) != 1:
        return None
    idd = meta.international_prefix
    if idd and re.match(idd, digits):
        return None  # dialled with the international prefix: the library decides
    if digits.startswith(str(meta.country_code)):
        return None  # maybe the country code without "+": the library decides
    return _finish(int(meta.country_code), digits, meta, region)


def parse_phone(raw: str, region: str | None) -> ParsedPhone:
    """Parse ``raw`` (``region``: for national numbers) like ``phonenumbers.parse`` followed by
    ``is_valid_number``. Raises :class:`PhoneParseError` when it is not a phone number."""
    fast = _fast(raw, region)
    if fast is not None:
        return fast
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneParseError(str(exc)) from exc
    return ParsedPhone(
        int(number.country_code or 0),
        phonenumbers.national_significant_number(number),
        phonenumbers.is_valid_number(number),
    )
