from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from patron.core.business import (
    create_market,
    fx_rate,
    get_business,
    set_fx_rate,
    to_reporting,
    update_business,
)
from patron.core.errors import Conflict, NotFound, ValidationFailed
from patron.core.money import Money


def test_defaults_and_update(session: Session) -> None:
    assert get_business(session).reporting_currency == "EUR"
    old, new = update_business(session, reporting_currency="usd", time_zone="Asia/Bangkok", week_start=6)
    assert old.reporting_currency == "EUR"
    assert (new.reporting_currency, new.time_zone, new.week_start) == ("USD", "Asia/Bangkok", 6)
    with pytest.raises(ValidationFailed) as err:
        update_business(session, time_zone="Mars/Olympus")
    assert err.value.code == "invalid_time_zone"


def test_markets(session: Session) -> None:
    market = create_market(
        session,
        code="VN",
        name="Vietnam",
        country="vn",
        currency="VND",
        locale="vi_VN",
        time_zone="Asia/Ho_Chi_Minh",
    )
    assert market.country == "VN"
    with pytest.raises(Conflict):
        create_market(
            session, code="VN", name="x", country="VN", currency="VND", locale="vi", time_zone="UTC"
        )
    with pytest.raises(ValidationFailed) as err:
        create_market(
            session, code="XX", name="x", country="XX", currency="ABC", locale="vi", time_zone="UTC"
        )
    assert err.value.code == "invalid_currency"


def test_dated_fx_rates(session: Session) -> None:
    set_fx_rate(session, base="EUR", quote="VND", valid_on=date(2025, 1, 1), rate=Decimal("26000"))
    set_fx_rate(session, base="EUR", quote="VND", valid_on=date(2025, 7, 1), rate=Decimal("30000"))
    assert fx_rate(session, "EUR", "VND", date(2025, 3, 1)) == Decimal("26000")
    assert fx_rate(session, "EUR", "VND", date(2025, 7, 1)) == Decimal("30000")
    assert fx_rate(session, "VND", "EUR", date(2025, 8, 1)) == Decimal(1) / Decimal(30000)
    with pytest.raises(NotFound) as err:
        fx_rate(session, "EUR", "VND", date(2024, 12, 31))
    assert err.value.code == "fx_rate_missing"
    assert to_reporting(session, Money.of("300000", "VND"), date(2025, 8, 1)) == Money.of("10.00", "EUR")
