from __future__ import annotations

from datetime import UTC, date, datetime

from patron.core.i18n import format_date, format_datetime, format_money, negotiate
from patron.core.money import Money


def test_thai_dates_use_the_buddhist_era() -> None:
    assert format_date(date(2026, 11, 25), "th") == "25 พ.ย. 2569"
    assert "2567" in format_date(date(2024, 1, 1), "th", "long")
    assert "2024" not in format_date(date(2024, 1, 1), "th", "long")
    assert "2569" in format_datetime(datetime(2026, 11, 25, 8, 0, tzinfo=UTC), "th", "Asia/Bangkok")


def test_datetime_shown_in_the_viewers_time_zone() -> None:
    moment = datetime(2026, 11, 25, 20, 30, tzinfo=UTC)
    assert "03:30" in format_datetime(moment, "vi", "Asia/Ho_Chi_Minh")
    assert "26" in format_datetime(moment, "vi", "Asia/Ho_Chi_Minh")
    assert "21:30" in format_datetime(moment, "hu", "Europe/Budapest")


def test_huf_is_shown_without_decimals() -> None:
    assert format_money(Money.of("1234567.50", "HUF"), "hu") == "1\xa0234\xa0568\xa0Ft"
    assert format_money(Money.of("1234567", "VND"), "vi") == "1.234.567\xa0₫"
    assert format_money(Money.of("1234.5", "THB"), "th") == "฿1,234.50"
    assert format_money(Money.of("1234.5", "EUR"), "en") == "€1,234.50"


def test_gregorian_years_elsewhere() -> None:
    assert format_date(date(2026, 11, 25), "en") == "25 Nov 2026"
    assert format_date(date(2026, 11, 25), "hu") == "2026. nov. 25."


def test_language_negotiation() -> None:
    assert negotiate("vi-VN,vi;q=0.9,en;q=0.8") == "vi"
    assert negotiate("fr-FR,th;q=0.5") == "th"
    assert negotiate("fr-FR") == "en"
    assert negotiate(None, default="hu") == "hu"
