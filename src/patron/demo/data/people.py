"""The shape of a country's people table: names (with frequency weights), forms of address, phone
number plan, email domains, cities and time zones."""

from __future__ import annotations

from dataclasses import dataclass, field

Weighted = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class PeopleTable:
    country: str
    language: str
    # (value, relative weight)
    time_zones: Weighted
    family_names: Weighted
    male_given: tuple[str, ...]
    female_given: tuple[str, ...]
    # E.164 country calling code (digits) and the mobile prefixes that follow it
    calling_code: str
    mobile_prefixes: tuple[str, ...]
    subscriber_digits: int
    email_domains: Weighted
    cities: Weighted
    family_name_first: bool = False
    # Vietnamese middle names (tên đệm); empty elsewhere
    male_middle: tuple[str, ...] = ()
    female_middle: tuple[str, ...] = ()
    # forms of address: (for men, for women, for older customers of either sex)
    address_male: str = "Mr"
    address_female: str = "Ms"
    # romanisation of names written in a non-Latin script (Thai), used for email addresses
    romanised: dict[str, str] = field(default_factory=dict)
