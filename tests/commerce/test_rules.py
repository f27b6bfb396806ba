"""Pure validation of rows: totals, rounding per currency, strict money, named bad fields."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patron.commerce import prepare_order, prepare_product, prepare_subscription
from patron.commerce.rules import add_interval, refund_share, status_after_refund
from patron.core.errors import ValidationFailed
from patron.core.money import currency_exponent


def raw_order(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "customer_id": "c1",
        "currency": "EUR",
        "placed_at": "2026-03-10T09:00:00+07:00",
        "lines": [{"sku": "A", "quantity": 2, "unit_price": "10.00", "discount": "1.00"}],
    }
    raw.update(overrides)
    return raw


def errors_of(raw: dict[str, Any], fn: Any = prepare_order) -> list[tuple[list[Any], str]]:
    with pytest.raises(ValidationFailed) as info:
        fn(raw)
    assert info.value.status == 422
    return [(e["loc"], e["type"]) for e in info.value.errors]


def test_totals_are_computed_and_checked() -> None:
    order = prepare_order(raw_order(tax="3.80", shipping="2", discount="0.80", total="24.00"))
    assert order.lines[0].total == Decimal("19.00")
    assert order.subtotal == Decimal("19.00")
    assert order.total == Decimal("24.00")  # 19.00 − 0.80 + 3.80 + 2.00
    assert order.placed_at == datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


def test_total_mismatch_has_its_own_code() -> None:
    with pytest.raises(ValidationFailed) as info:
        prepare_order(raw_order(total="20.00"))
    assert info.value.code == "order_total_mismatch"
    assert info.value.errors[0]["loc"] == ["total"]


def test_subtotal_must_equal_the_lines() -> None:
    with pytest.raises(ValidationFailed) as info:
        prepare_order(raw_order(subtotal="20.00", total="20.00"))
    assert info.value.code == "order_subtotal_mismatch"
    assert [e["type"] for e in info.value.errors] == ["order_subtotal_mismatch"]


def test_line_total_mismatch_names_the_line() -> None:
    raw = raw_order(
        lines=[
            {"sku": "A", "quantity": 1, "unit_price": "1.00"},
            {"sku": "B", "quantity": 3, "unit_price": "2.00", "total": "7.00"},
        ]
    )
    assert errors_of(raw) == [(["lines", 1, "total"], "line_total_mismatch")]


def test_every_bad_field_is_named() -> None:
    raw = {
        "currency": "XXX1",
        "channel": "fax",
        "placed_at": "2026-03-10T09:00:00",
        "lines": [{"quantity": 0, "unit_price": 1.5}, {"sku": "B", "quantity": True, "unit_price": "x"}],
        "discount": False,
        "promised_delivery_date": "tomorrow",
    }
    assert errors_of(raw) == [
        (["customer_id"], "missing"),
        (["currency"], "invalid_currency"),
        (["channel"], "invalid_choice"),
        (["placed_at"], "naive_datetime"),
        (["promised_delivery_date"], "invalid_date"),
        (["discount"], "invalid_amount"),
        (["lines", 0, "quantity"], "invalid_quantity"),
        (["lines", 0, "unit_price"], "invalid_amount"),
        (["lines", 0, "sku"], "missing"),
        (["lines", 1, "quantity"], "int_type"),
        (["lines", 1, "unit_price"], "invalid_amount"),
    ]


def test_naive_timestamps_and_floats_are_refused() -> None:
    assert errors_of(raw_order(placed_at=datetime(2026, 1, 1))) == [(["placed_at"], "naive_datetime")]
    assert errors_of(raw_order(shipping=2.5)) == [(["shipping"], "invalid_amount")]
    assert errors_of(raw_order(tax="-1")) == [(["tax"], "negative_amount")]


def test_vnd_has_no_decimals_and_rounds_half_up() -> None:
    order = prepare_order(
        raw_order(
            currency="VND",
            lines=[{"sku": "A", "quantity": 3, "unit_price": "10000.5"}],
            shipping="15000.49",
        )
    )
    assert order.lines[0].unit_price == Decimal("10001")
    assert order.lines[0].total == Decimal("30003")
    assert order.shipping == Decimal("15000")
    assert order.total == Decimal("45003")
    assert order.total.as_tuple().exponent == 0


def test_order_without_lines_needs_a_subtotal() -> None:
    assert errors_of(raw_order(lines=[])) == [(["subtotal"], "missing")]
    order = prepare_order(raw_order(lines=[], subtotal="99.999", tax="1"))
    assert order.subtotal == Decimal("100.00")
    assert order.total == Decimal("101.00")


def test_discount_larger_than_subtotal_is_refused() -> None:
    assert errors_of(raw_order(discount="100")) == [(["discount"], "order_discount_too_large")]


def test_fulfilment_consistency() -> None:
    assert errors_of(raw_order(fulfilment_status="delivered")) == [(["delivered_at"], "missing")]
    assert errors_of(raw_order(delivered_at="2026-03-11T00:00:00Z")) == [
        (["fulfilment_status"], "inconsistent_fulfilment")
    ]
    assert errors_of(raw_order(fulfilment_status="fulfilled", fulfilled_at="2026-03-01T00:00:00Z")) == [
        (["fulfilled_at"], "before_placed_at")
    ]


def test_import_style_rows_are_accepted() -> None:
    order = prepare_order(
        {
            "customer_external_id": "EXT-9",
            "external_id": "O-1",
            "currency": "huf",
            "market": "HU",
            "placed_at": date(2025, 12, 24),
            "status": "cancelled",
            "source": "import",
            "lines": [{"sku": "A", "quantity": "4", "unit_price": 2500}],
        }
    )
    assert order.currency == "HUF"
    assert order.customer_external_id == "EXT-9"
    assert order.placed_at == datetime(2025, 12, 24, tzinfo=UTC)
    assert order.total == Decimal("10000.00")
    assert order.status == "cancelled"
    assert errors_of(raw_order(status="refunded")) == [(["status"], "invalid_choice")]


def test_prepare_product_and_subscription() -> None:
    product = prepare_product({"sku": "S", "name": "Tea", "price": {"amount": "1.005", "currency": "EUR"}})
    assert product.price.amount == Decimal("1.01")
    assert errors_of({"sku": "", "price": 3.0, "currency": "EUR"}, prepare_product) == [
        (["sku"], "missing"),
        (["name"], "missing"),
        (["price"], "invalid_amount"),
    ]
    sub = prepare_subscription(
        {
            "customer_id": "c",
            "plan": "Gold",
            "price": "99000",
            "currency": "VND",
            "interval": "year",
            "started_at": "2026-01-31T00:00:00Z",
        }
    )
    assert sub.price.amount == Decimal("99000")
    assert errors_of(
        {"customer_id": "c", "plan": "G", "price": "1", "currency": "EUR", "status": "cancelled"},
        prepare_subscription,
    ) == [(["cancelled_at"], "missing")]


def test_add_interval_clamps_the_day() -> None:
    start = datetime(2026, 1, 31, 8, 0, tzinfo=UTC)
    assert add_interval(start, "month") == datetime(2026, 2, 28, 8, 0, tzinfo=UTC)
    assert add_interval(datetime(2024, 2, 29, tzinfo=UTC), "year") == datetime(2025, 2, 28, tzinfo=UTC)
    assert add_interval(datetime(2026, 12, 15, tzinfo=UTC), "month") == datetime(2027, 1, 15, tzinfo=UTC)


def test_status_after_refund() -> None:
    assert status_after_refund([(2, 0), (1, 0)]) == "placed"
    assert status_after_refund([(2, 1), (1, 0)]) == "partially_refunded"
    assert status_after_refund([(2, 2), (1, 1)]) == "refunded"


CURRENCIES = st.sampled_from(["VND", "HUF", "THB", "EUR", "USD", "JPY", "KWD"])
AMOUNTS = st.decimals(min_value=Decimal(0), max_value=Decimal("1000000"), places=4, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    currency=CURRENCIES,
    lines=st.lists(st.tuples(st.integers(1, 50), AMOUNTS), min_size=1, max_size=5),
    tax=AMOUNTS,
    shipping=AMOUNTS,
)
def test_totals_are_quantized_per_currency_and_add_up(
    currency: str, lines: list[tuple[int, Decimal]], tax: Decimal, shipping: Decimal
) -> None:
    order = prepare_order(
        {
            "customer_id": "c",
            "currency": currency,
            "tax": str(tax),
            "shipping": str(shipping),
            "lines": [
                {"sku": f"S{i}", "quantity": q, "unit_price": str(p)} for i, (q, p) in enumerate(lines)
            ],
        }
    )
    exponent = -currency_exponent(currency)
    for amount in (
        order.subtotal,
        order.total,
        order.tax,
        order.shipping,
        *(line.total for line in order.lines),
        *(line.unit_price for line in order.lines),
    ):
        assert amount.as_tuple().exponent == exponent
    assert order.subtotal == sum((line.total for line in order.lines), Decimal(0))
    assert order.total == order.subtotal - order.discount + order.tax + order.shipping
    # the same row with the computed totals given is accepted unchanged
    again = prepare_order(
        {
            "customer_id": "c",
            "currency": currency,
            "tax": str(tax),
            "shipping": str(shipping),
            "subtotal": str(order.subtotal),
            "total": str(order.total),
            "lines": [
                {"sku": f"S{i}", "quantity": q, "unit_price": str(p), "total": str(line.total)}
                for i, ((q, p), line) in enumerate(zip(lines, order.lines, strict=True))
            ],
        }
    )
    assert again == order


@settings(max_examples=200, deadline=None)
@given(
    currency=CURRENCIES,
    total=AMOUNTS,
    quantity=st.integers(1, 30),
    steps=st.lists(st.integers(1, 5), min_size=1, max_size=30),
)
def test_refund_shares_never_exceed_and_end_exactly(
    currency: str, total: Decimal, quantity: int, steps: list[int]
) -> None:
    from patron.core.money import quantize

    line_total = quantize(total, currency)
    refunded_qty, refunded = 0, Decimal(0)
    for step in steps:
        qty = min(step, quantity - refunded_qty)
        if qty == 0:
            break
        share = refund_share(
            line_total=line_total,
            line_quantity=quantity,
            refunded_quantity=refunded_qty,
            refunded_amount=refunded,
            quantity=qty,
            currency=currency,
        )
        assert share >= 0
        refunded_qty += qty
        refunded += share
        assert refunded <= line_total
    if refunded_qty == quantity:
        assert refunded == line_total
