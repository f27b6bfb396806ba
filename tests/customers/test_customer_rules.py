"""Pure customer rules: name order, salutations, phone and field normalisation, search text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from patron.core.errors import ValidationFailed
from patron.core.text import fold
from patron.customers import display_name, normalise_phone, prepare_customer, salutation
from patron.customers.rules import build_search_text, decode_trait, encode_trait, read_query


@dataclass(frozen=True)
class Person:
    given_name: str
    family_name: str
    language: str
    form_of_address: str | None = None


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        (Person("Văn An", "Nguyễn", "vi"), "Nguyễn Văn An"),
        (Person("Anna", "Kovács", "hu"), "Kovács Anna"),
        (Person("Anna", "Smith", "en"), "Anna Smith"),
        (Person("สมชาย", "ใจดี", "th"), "สมชาย ใจดี"),
        (Person("", "Nguyễn", "vi"), "Nguyễn"),
        (Person("Anna", "", "hu"), "Anna"),
        (Person("", "", "en"), ""),
    ],
)
def test_display_name_follows_the_language_of_the_name(person: Person, expected: str) -> None:
    assert display_name(person) == expected


def test_display_name_language_can_be_overridden() -> None:
    assert display_name(Person("Anna", "Kovács", "hu"), "en") == "Anna Kovács"
    assert display_name(Person("An", "Nguyen", "en"), "vi") == "Nguyen An"


@pytest.mark.parametrize(
    ("person", "expected"),
    [
        (Person("Văn An", "Nguyễn", "vi", "anh"), "anh An"),
        (Person("Thị Lan", "Trần", "vi", "chị"), "chị Lan"),
        (Person("Thị Lan", "Trần", "vi"), "Trần Thị Lan"),
        (Person("Anna", "Kovács", "hu", "Ön"), "Kovács Anna"),
        (Person("Anna", "Kovács", "hu", "te"), "Anna"),
        (Person("สมชาย", "ใจดี", "th"), "คุณสมชาย"),
        (Person("Jane", "Smith", "en", "Ms"), "Ms Smith"),
        (Person("Jane", "Smith", "en"), "Jane"),
    ],
)
def test_salutation(person: Person, expected: str) -> None:
    assert salutation(person) == expected


_word = st.text(alphabet=st.characters(categories=("L",)), min_size=1, max_size=12)


@given(given_name=_word, family_name=_word, language=st.sampled_from(["en", "vi", "hu", "th"]))
def test_name_order_property(given_name: str, family_name: str, language: str) -> None:
    name = display_name(Person(given_name, family_name, language))
    if language in {"vi", "hu"}:
        assert name == f"{family_name} {given_name}"
    else:
        assert name == f"{given_name} {family_name}"


@pytest.mark.parametrize(
    ("raw", "country", "e164", "national"),
    [
        ("0912 345 678", "VN", "+84912345678", "0912345678"),
        ("+84 912 345 678", None, "+84912345678", "0912345678"),
        ("0084912345678", None, "+84912345678", "0912345678"),
        ("06 30 123 4567", "HU", "+36301234567", "0630 1234567".replace(" ", "")),
        ("081 234 5678", "TH", "+66812345678", "0812345678"),
        ("+36 (30) 123-4567", "VN", "+36301234567", "06301234567"),
    ],
)
def test_phone_normalisation(raw: str, country: str | None, e164: str, national: str) -> None:
    phone = normalise_phone(raw, country)
    assert phone.e164 == e164
    assert phone.national_digits == national


@pytest.mark.parametrize(
    ("raw", "country"), [("0912 345 678", None), ("12", "VN"), ("not a phone", "VN"), ("+84 1", None)]
)
def test_bad_phones_are_rejected(raw: str, country: str | None) -> None:
    with pytest.raises(ValueError):
        normalise_phone(raw, country)


@given(
    region=st.sampled_from(["VN", "HU", "TH", "GB", "DE", "US"]),
    tail=st.integers(min_value=0, max_value=999),
    separator=st.sampled_from(["", " ", "-", "."]),
)
def test_national_and_international_forms_agree(region: str, tail: int, separator: str) -> None:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    nsn = phonenumbers.national_significant_number(example)
    candidate = phonenumbers.parse(nsn[:-3] + f"{tail:03d}", region)
    assume(phonenumbers.is_valid_number(candidate))
    expected = phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
    national = phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    from_national = normalise_phone(national.replace(" ", separator), region)
    assert from_national.e164 == expected
    assert normalise_phone(international, None).e164 == expected
    assert normalise_phone(international, "VN").e164 == expected  # the country only reads national numbers
    # whatever way a person types it, the search finds it
    text = build_search_text("", "", [], [expected], [from_national.national_digits])
    for typed in (national, international, expected):
        query = read_query(typed)
        assert query is not None
        assert query.is_phone
        assert query.text in text


def test_prepare_customer_normalises() -> None:
    prepared = prepare_customer(
        {
            "first_name": "  Văn An ",
            "last_name": "Nguyễn",
            "email": " An.Nguyen@Example.COM ",
            "emails": ["an@work.example", "AN.NGUYEN@example.com"],
            "phone": "0912 345 678",
            "phones": ["+84 912 345 678", "028 3822 1234"],
            "country": "vn",
            "birthday": "1990-05-17",
            "tags": "vip, hanoi;vip",
            "is_test": "yes",
            "external_id": "C-1",
        },
        today=date(2026, 3, 15),
    )
    assert prepared.given_name == "Văn An"
    assert prepared.email == "An.Nguyen@example.com"
    assert prepared.emails == ("an@work.example",)  # the second is the primary again (folded)
    assert prepared.phone_e164 == "+84912345678"
    assert prepared.phones == ("+842838221234",)  # the duplicate of the primary is dropped
    assert prepared.phone_national_digits == ("0912345678", "02838221234")
    assert prepared.country == "VN"
    assert prepared.language == "vi"  # from the country
    assert prepared.time_zone == "Asia/Ho_Chi_Minh"
    assert prepared.birthday == date(1990, 5, 17)
    assert prepared.tags == ("vip", "hanoi")
    assert prepared.is_test is True
    assert "language" not in prepared.provided
    assert {"given_name", "family_name", "email", "phone_e164", "country"} <= prepared.provided


def test_prepare_customer_names_every_bad_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        prepare_customer(
            {
                "email": "not-an-email",
                "phone": "0912 345 678",
                "country": "XX",
                "language": "de",
                "time_zone": "Mars/Olympus",
                "birthday": "2030-01-01",
                "preferred_channel": "fax",
                "attributes": ["x"],
                "shoe_size": 44,
            },
            today=date(2026, 3, 15),
        )
    errors = caught.value.errors
    assert caught.value.code == "invalid_customer"
    assert sorted(e["loc"][0] for e in errors) == sorted(
        [
            "email",
            "phone",
            "country",
            "language",
            "time_zone",
            "birthday",
            "preferred_channel",
            "attributes",
            "shoe_size",
        ]
    )
    by_field = {e["loc"][0]: e["type"] for e in errors}
    assert by_field["phone"] == "invalid_phone"  # national without a (valid) country
    assert by_field["time_zone"] == "invalid_time_zone"
    assert by_field["shoe_size"] == "unknown_field"


def test_prepare_customer_rejects_nul_characters() -> None:
    with pytest.raises(ValidationFailed) as caught:
        prepare_customer({"first_name": "A\x00B", "attributes": {"k": "v\x00"}})
    assert [e["loc"] for e in caught.value.errors] == [["first_name"], ["attributes"]]


def test_search_text_and_queries() -> None:
    text = build_search_text("Thị Điền", "Trần", ["Dien.Tran@Example.com"], ["+84912345678"], ["0912345678"])
    assert text == (
        "|thi dien tran|tran thi dien|thi dien|tran|dien.tran@example.com|84912345678|0912345678|"
    )
    assert read_query("ĐIỀN").text == "dien"  # type: ignore[union-attr]
    assert read_query("  Trần   Thị ").text == "tran thi"  # type: ignore[union-attr]
    phone = read_query("0912 345 678")
    assert phone is not None
    assert phone.is_phone
    assert phone.text == "0912345678"
    assert read_query("(+84) 912-345.678").text == "84912345678"  # type: ignore[union-attr]
    assert read_query("   ") is None
    assert read_query("||") is None


@given(st.text(min_size=3, max_size=30))
def test_any_slice_of_a_name_is_found(name: str) -> None:
    text = build_search_text(name, "", [], [], [])
    folded = " ".join(fold(name).replace("|", " ").split())
    assume(len(folded) >= 3)
    query = read_query(folded[1:])
    assume(query is not None and not query.is_phone)
    assert query is not None
    assert query.text in text


@pytest.mark.parametrize(
    ("value", "kind", "back"),
    [
        (5, "number", 5),
        (Decimal("12.50"), "number", Decimal("12.5")),
        (True, "bool", True),
        ("gold", "text", "gold"),
        (date(2026, 1, 2), "date", date(2026, 1, 2)),
        (datetime(2026, 1, 2, 3, 4, tzinfo=UTC), "datetime", datetime(2026, 1, 2, 3, 4, tzinfo=UTC)),
        ({"a": [1]}, "json", {"a": [1]}),
    ],
)
def test_trait_values_round_trip(value: object, kind: str, back: object) -> None:
    encoded = encode_trait(value)
    assert encoded[0] == kind
    assert decode_trait(*encoded) == back
