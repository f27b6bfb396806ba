"""The demo business, its markets and the FX rates it starts from.

The business is a Budapest-based tea, coffee and tableware brand selling in Vietnam, Hungary,
Thailand, the rest of the EU and the US. It reports in EUR (its books are kept in the euro area
group currency) and runs on Budapest time.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

BUSINESS_NAME = "Lotus & Linden Tea House"
REPORTING_CURRENCY = "EUR"
BUSINESS_TIME_ZONE = "Europe/Budapest"


@dataclass(frozen=True)
class MarketSpec:
    code: str
    name: str
    country: str
    currency: str
    locale: str
    time_zone: str
    # VAT / sales tax in percent, included in the shelf price except in the US
    tax_percent: Decimal
    tax_included: bool
    # flat shipping and the order value from which shipping is free (local currency)
    shipping: Decimal
    free_shipping_from: Decimal
    # channel weights: web, store, app, phone, marketplace
    channels: tuple[tuple[str, int], ...]


MARKETS: tuple[MarketSpec, ...] = (
    MarketSpec(
        "VN",
        "Việt Nam",
        "VN",
        "VND",
        "vi_VN",
        "Asia/Ho_Chi_Minh",
        Decimal(10),
        True,
        Decimal(30000),
        Decimal(500000),
        (("web", 25), ("app", 25), ("marketplace", 30), ("store", 15), ("phone", 5)),
    ),
    MarketSpec(
        "HU",
        "Magyarország",
        "HU",
        "HUF",
        "hu_HU",
        "Europe/Budapest",
        Decimal(27),
        True,
        Decimal(1490),
        Decimal(15000),
        (("web", 45), ("store", 35), ("app", 10), ("phone", 5), ("marketplace", 5)),
    ),
    MarketSpec(
        "TH",
        "ประเทศไทย",
        "TH",
        "THB",
        "th_TH",
        "Asia/Bangkok",
        Decimal(7),
        True,
        Decimal(50),
        Decimal(1000),
        (("marketplace", 35), ("app", 25), ("web", 20), ("store", 15), ("phone", 5)),
    ),
    MarketSpec(
        "EU",
        "European Union",
        "EU",
        "EUR",
        "en_IE",
        "Europe/Berlin",
        Decimal(19),
        True,
        Decimal("4.90"),
        Decimal(50),
        (("web", 75), ("app", 15), ("phone", 5), ("marketplace", 5)),
    ),
    MarketSpec(
        "US",
        "United States",
        "US",
        "USD",
        "en_US",
        "America/New_York",
        Decimal(8),
        False,
        Decimal("7.99"),
        Decimal(75),
        (("web", 75), ("app", 15), ("phone", 5), ("marketplace", 5)),
    ),
)

MARKET_BY_CODE: dict[str, MarketSpec] = {m.code: m for m in MARKETS}

# Which market serves customers living in a country.
MARKET_FOR_COUNTRY: dict[str, str] = {
    "VN": "VN",
    "HU": "HU",
    "TH": "TH",
    "DE": "EU",
    "AT": "EU",
    "FR": "EU",
    "US": "US",
}

# Units of the currency for one EUR at the start of the demo period, and the yearly drift of the
# rate (percent; positive means the currency weakens against the euro).
FX_START: dict[str, tuple[Decimal, Decimal]] = {
    "VND": (Decimal("27150"), Decimal("3.5")),
    "HUF": (Decimal("387.5"), Decimal("2.0")),
    "THB": (Decimal("37.80"), Decimal("0.5")),
    "USD": (Decimal("1.0850"), Decimal("-1.5")),
}

# Share of customers per country (must add up to 100).
COUNTRY_SHARES: tuple[tuple[str, int], ...] = (
    ("VN", 35),
    ("HU", 25),
    ("TH", 25),
    ("DE", 5),
    ("AT", 2),
    ("FR", 3),
    ("US", 5),
)
