"""The fast phone path agrees with ``phonenumbers`` (parse + is_valid_number) on every input."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.customers.phones import PhoneParseError, _fast, parse_phone
from patron.customers.rules import normalise_phone

REGIONS = [
    "VN",
    "HU",
    "TH",
    "DE",
    "AT",
    "FR",
    "US",
    "GB",
    "IT",
    "CI",
    "BR",
    "AR",
    "MX",
    "RU",
    "KZ",
    "CN",
    "JP",
]


def reference(raw: str, region: str | None) -> object:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return "error"
    return (
        number.country_code,
        phonenumbers.national_significant_number(number),
        phonenumbers.is_valid_number(number),
    )


def ours(raw: str, region: str | None) -> object:
    try:
        parsed = parse_phone(raw, region)
    except PhoneParseError:
        return "error"
    return (parsed.country_code, parsed.nsn, parsed.valid)


def _examples() -> list[tuple[str, str | None]]:
    cases: list[tuple[str, str | None]] = []
    fmt = phonenumbers.PhoneNumberFormat
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
                     phonenumbers.PhoneNumberType.TOLL_FREE):  # fmt: skip
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            cases.append((phonenumbers.format_number(number, fmt.E164), None))
            cases.append((phonenumbers.format_number(number, fmt.INTERNATIONAL), None))
            national = phonenumbers.format_number(number, fmt.NATIONAL)
            cases.append((national, region))
            cases.append((national.replace(" ", "-"), region))
            digits = phonenumbers.national_significant_number(number)
            cases.append((digits, region))
            cases.append((digits[:-1], region))  # one digit short
            cases.append((digits + "7", region))  # one digit long
    return cases


def test_agrees_with_phonenumbers_on_every_region_example() -> None:
    cases = _examples()
    assert len(cases) > 3000
    fast = 0
    for raw, region in cases:
        assert ours(raw, region) == reference(raw, region), (raw, region)
        fast += _fast(raw, region) is not None
    assert fast > len(cases) // 2  # the fast path carries most plain numbers


@settings(max_examples=3000, deadline=None)
@given(
    st.text(alphabet="0123456789 -.", min_size=1, max_size=22),
    st.sampled_from([None, *REGIONS]),
    st.sampled_from(["", "+", "00"]),
)
def test_agrees_with_phonenumbers_on_arbitrary_digit_strings(
    body: str, region: str | None, prefix: str
) -> None:
    raw = prefix + body
    assert ours(raw, region) == reference(raw, region)


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(["84", "36", "66", "49", "43", "33", "1", "44", "39", "7", "225", "54"]),
    st.text(alphabet="0123456789", min_size=4, max_size=13),
    st.sampled_from(["", " ", "-", "."]),
)
def test_agrees_on_plausible_international_numbers(cc: str, rest: str, sep: str) -> None:
    raw = "+" + cc + sep + (sep.join([rest[:3], rest[3:]]) if sep else rest)
    assert ours(raw, None) == reference(raw, None)


@pytest.mark.parametrize(
    ("raw", "country", "e164", "national"),
    [
        ("0912 345 678", "VN", "+84912345678", "0912345678"),
        ("+84 912-345-678", None, "+84912345678", "0912345678"),
        ("0084912345678", None, "+84912345678", "0912345678"),
        ("06 30 123 4567", "HU", "+36301234567", "06301234567"),
        ("+36 30 123 4567", "TH", "+36301234567", "06301234567"),
        ("081 234 5678", "TH", "+66812345678", "0812345678"),
        ("(+66) 81 234 5678", None, "+66812345678", "0812345678"),
        ("+1 (202) 555-0125", None, "+12025550125", "12025550125"),
    ],
)
def test_normalise_phone(raw: str, country: str | None, e164: str, national: str) -> None:
    phone = normalise_phone(raw, country)
    assert (phone.e164, phone.national_digits) == (e164, national)


@pytest.mark.parametrize(
    ("raw", "country"), [("12", "VN"), ("0912 345", "VN"), ("+99 123 456", None), ("abc", "HU")]
)
def test_normalise_phone_refuses(raw: str, country: str | None) -> None:
    with pytest.raises(ValueError):
        normalise_phone(raw, country)
