"""Pure commerce policy: row validation (``prepare_*``), totals, refund shares, delays, renewals.

``prepare_order(raw)`` turns one mapping (an API body, an import row) into an :class:`OrderInput`
or raises :class:`ValidationFailed` whose ``errors`` name every bad field (``loc``), with a stable
``type`` per problem. Amounts are decimal strings, ints or Decimals — floats and booleans are
refused — and are quantized to the currency's minor unit (VND 0 decimals, EUR 2 …).

Totals: each line's total is ``quantity × unit_price − discount``; the lines add up to the subtotal;
``total = subtotal − discount + tax + shipping``. Given totals must match exactly after quantization.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from patron.commerce.contracts import (
    CHANNELS,
    FULFILMENT_STATUSES,
    INPUT_ORDER_STATUSES,
    INTERVALS,
    SOURCES,
    SUBSCRIPTION_STATUSES,
    OrderInput,
    OrderLineInput,
    ProductInput,
    SubscriptionInput,
)
from patron.core.errors import ValidationFailed
from patron.core.money import Money, currency_exponent, is_known_currency, parse_decimal, quantize

MAX_LINES = 1000
MAX_QUANTITY = 1_000_000
MAX_AMOUNT = Decimal("1e15")

Loc = tuple[str | int, ...]


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, loc: Loc, msg: str, type_: str) -> None:
        self.items.append({"loc": list(loc), "msg": msg, "type": type_})

    def raise_if_any(self, what: str) -> None:
        if not self.items:
            return
        codes = {e["type"] for e in self.items}
        code = self.items[0]["type"] if len(codes) == 1 else "validation_failed"
        detail = f"invalid {what}: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in self.items[:5]
        )
        raise ValidationFailed(detail, code=code, errors=list(self.items))


_MISSING = object()


def _get(raw: Mapping[str, Any], key: str) -> Any:
    value = raw.get(key, _MISSING)
    if value is None or (isinstance(value, str) and not value.strip()):
        return _MISSING
    return value


def _text(
    raw: Mapping[str, Any],
    key: str,
    errs: _Errors,
    loc: Loc,
    *,
    required: bool = False,
    max_length: int = 200,
) -> str | None:
    value = _get(raw, key)
    if value is _MISSING:
        if required:
            errs.add(loc, "is required", "missing")
        return None
    if not isinstance(value, str):
        errs.add(loc, "must be a string", "string_type")
        return None
    value = value.strip()
    if len(value) > max_length:
        errs.add(loc, f"must be at most {max_length} characters", "string_too_long")
        return None
    return value


def _choice(
    raw: Mapping[str, Any], key: str, errs: _Errors, loc: Loc, choices: Sequence[str], default: str
) -> str:
    value = _get(raw, key)
    if value is _MISSING:
        return default
    if not isinstance(value, str) or value.strip().lower() not in choices:
        errs.add(loc, "must be one of " + ", ".join(choices), "invalid_choice")
        return default
    return value.strip().lower()


def _currency(raw: Mapping[str, Any], key: str, errs: _Errors, loc: Loc) -> str | None:
    value = _get(raw, key)
    if value is _MISSING:
        errs.add(loc, "is required", "missing")
        return None
    if not isinstance(value, str) or not is_known_currency(value.strip()):
        errs.add(loc, "must be an ISO 4217 currency code", "invalid_currency")
        return None
    return value.strip().upper()


def _amount(
    raw: Mapping[str, Any],
    key: str,
    errs: _Errors,
    loc: Loc,
    currency: str | None,
    *,
    required: bool = False,
    default: Decimal | None = None,
) -> Decimal | None:
    value = _get(raw, key)
    if value is _MISSING:
        if required:
            errs.add(loc, "is required", "missing")
        return default
    try:
        amount = parse_decimal(value)
    except ValidationFailed as exc:
        errs.add(loc, exc.detail, "invalid_amount")
        return None
    if amount < 0:
        errs.add(loc, "must not be negative", "negative_amount")
        return None
    if amount >= MAX_AMOUNT:
        errs.add(loc, "is too large", "amount_too_large")
        return None
    return quantize(amount, currency) if currency else amount


def _quantity(raw: Mapping[str, Any], key: str, errs: _Errors, loc: Loc) -> int | None:
    value = _get(raw, key)
    if value is _MISSING:
        errs.add(loc, "is required", "missing")
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        errs.add(loc, "must be a whole number", "int_type")
        return None
    if value < 1 or value > MAX_QUANTITY:
        errs.add(loc, f"must be between 1 and {MAX_QUANTITY}", "invalid_quantity")
        return None
    return value


def _timestamp(
    raw: Mapping[str, Any], key: str, errs: _Errors, loc: Loc, *, required: bool = False
) -> datetime | None:
    """An aware datetime or an ISO 8601 string with an offset; a date means 00:00 UTC."""
    value = _get(raw, key)
    if value is _MISSING:
        if required:
            errs.add(loc, "is required", "missing")
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            try:
                value = date.fromisoformat(value.strip())
            except ValueError:
                errs.add(loc, "must be an ISO 8601 timestamp with a UTC offset", "invalid_datetime")
                return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            errs.add(loc, "must carry a UTC offset", "naive_datetime")
            return None
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    errs.add(loc, "must be a timestamp", "invalid_datetime")
    return None


def _date(raw: Mapping[str, Any], key: str, errs: _Errors, loc: Loc) -> date | None:
    value = _get(raw, key)
    if value is _MISSING:
        return None
    if isinstance(value, datetime):
        errs.add(loc, "must be a date (YYYY-MM-DD), not a timestamp", "invalid_date")
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    errs.add(loc, "must be a date (YYYY-MM-DD)", "invalid_date")
    return None


def _bool(raw: Mapping[str, Any], key: str, errs: _Errors, loc: Loc, default: bool) -> bool:
    value = _get(raw, key)
    if value is _MISSING:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "false", "0", "no"}:
        return value.strip().lower() in {"true", "1", "yes"}
    errs.add(loc, "must be true or false", "bool_type")
    return default


def line_total(quantity: int, unit_price: Decimal, discount: Decimal, currency: str) -> Decimal:
    return quantize(unit_price * quantity - discount, currency)


def order_total(
    subtotal: Decimal, discount: Decimal, tax: Decimal, shipping: Decimal, currency: str
) -> Decimal:
    return quantize(subtotal - discount + tax + shipping, currency)


def _customer_ref(raw: Mapping[str, Any], errs: _Errors) -> tuple[str | None, str | None]:
    customer_id = _text(raw, "customer_id", errs, ("customer_id",), max_length=36)
    customer_external_id = _text(raw, "customer_external_id", errs, ("customer_external_id",))
    if (
        customer_id is None
        and customer_external_id is None
        and not any(e["loc"] and e["loc"][0] in {"customer_id", "customer_external_id"} for e in errs.items)
    ):
        errs.add(("customer_id",), "customer_id or customer_external_id is required", "missing")
    return customer_id, customer_external_id


def prepare_line(raw: Any, index: int, currency: str | None, errs: _Errors) -> OrderLineInput | None:
    base: Loc = ("lines", index)
    if not isinstance(raw, Mapping):
        errs.add(base, "must be an object", "object_type")
        return None
    before = len(errs.items)
    quantity = _quantity(raw, "quantity", errs, (*base, "quantity"))
    unit_price = _amount(raw, "unit_price", errs, (*base, "unit_price"), currency, required=True)
    discount = _amount(raw, "discount", errs, (*base, "discount"), currency, default=Decimal(0))
    given_total = _amount(raw, "total", errs, (*base, "total"), currency)
    sku = _text(raw, "sku", errs, (*base, "sku"), max_length=100)
    name = _text(raw, "name", errs, (*base, "name"), max_length=300)
    category = _text(raw, "category", errs, (*base, "category"))
    product_id = _text(raw, "product_id", errs, (*base, "product_id"), max_length=36)
    if sku is None and name is None and product_id is None:
        errs.add((*base, "sku"), "a line needs a sku, a name or a product_id", "missing")
    if len(errs.items) > before or currency is None:
        return None
    assert quantity is not None
    assert unit_price is not None
    assert discount is not None
    total = line_total(quantity, unit_price, discount, currency)
    if total < 0:
        errs.add((*base, "discount"), "the discount exceeds the line amount", "line_discount_too_large")
        return None
    if given_total is not None and given_total != total:
        errs.add(
            (*base, "total"),
            f"line total {given_total} does not equal quantity × unit_price − discount = {total}",
            "line_total_mismatch",
        )
        return None
    return OrderLineInput(
        quantity=quantity,
        unit_price=unit_price,
        total=total,
        discount=discount,
        sku=sku,
        name=name or "",
        category=category,
        product_id=product_id,
    )


def prepare_order(raw: Mapping[str, Any]) -> OrderInput:
    """Validate one order (with its ``lines``) and return it quantized; see the module docstring."""
    errs = _Errors()
    if not isinstance(raw, Mapping):
        errs.add((), "an order must be an object", "object_type")
        errs.raise_if_any("order")
    customer_id, customer_external_id = _customer_ref(raw, errs)
    external_id = _text(raw, "external_id", errs, ("external_id",))
    currency = _currency(raw, "currency", errs, ("currency",))
    market_code = _text(raw, "market", errs, ("market",), max_length=20) or _text(
        raw, "market_code", errs, ("market_code",), max_length=20
    )
    channel = _choice(raw, "channel", errs, ("channel",), CHANNELS, "web")
    status = _choice(raw, "status", errs, ("status",), INPUT_ORDER_STATUSES, "placed")
    fulfilment = _choice(
        raw, "fulfilment_status", errs, ("fulfilment_status",), FULFILMENT_STATUSES, "unfulfilled"
    )
    source = _choice(raw, "source", errs, ("source",), SOURCES, "api")
    placed_at = _timestamp(raw, "placed_at", errs, ("placed_at",))
    fulfilled_at = _timestamp(raw, "fulfilled_at", errs, ("fulfilled_at",))
    delivered_at = _timestamp(raw, "delivered_at", errs, ("delivered_at",))
    promised = _date(raw, "promised_delivery_date", errs, ("promised_delivery_date",))
    discount = _amount(raw, "discount", errs, ("discount",), currency, default=Decimal(0))
    tax = _amount(raw, "tax", errs, ("tax",), currency, default=Decimal(0))
    shipping = _amount(raw, "shipping", errs, ("shipping",), currency, default=Decimal(0))
    given_subtotal = _amount(raw, "subtotal", errs, ("subtotal",), currency)
    given_total = _amount(raw, "total", errs, ("total",), currency)

    raw_lines = raw.get("lines") or []
    lines: list[OrderLineInput] = []
    if not isinstance(raw_lines, Sequence) or isinstance(raw_lines, str | bytes):
        errs.add(("lines",), "must be a list", "list_type")
        raw_lines = []
    if len(raw_lines) > MAX_LINES:
        errs.add(("lines",), f"at most {MAX_LINES} lines", "too_many_lines")
        raw_lines = []
    lines_ok = True
    for i, raw_line in enumerate(raw_lines):
        line = prepare_line(raw_line, i, currency, errs)
        if line is None:
            lines_ok = False
        else:
            lines.append(line)
    if not raw_lines and given_subtotal is None:
        errs.add(("subtotal",), "an order without lines needs a subtotal", "missing")

    if fulfilment == "delivered" and delivered_at is None:
        errs.add(("delivered_at",), "a delivered order needs delivered_at", "missing")
    if fulfilment == "unfulfilled" and (fulfilled_at is not None or delivered_at is not None):
        errs.add(
            ("fulfilment_status",),
            "an unfulfilled order has no fulfilled_at or delivered_at",
            "inconsistent_fulfilment",
        )
    if placed_at is not None:
        for key, value in (("fulfilled_at", fulfilled_at), ("delivered_at", delivered_at)):
            if value is not None and value < placed_at:
                errs.add((key,), "is before placed_at", "before_placed_at")

    subtotal = given_subtotal
    if currency is not None and lines_ok and raw_lines:
        lines_sum = quantize(sum((line.total for line in lines), Decimal(0)), currency)
        if given_subtotal is not None and given_subtotal != lines_sum:
            errs.add(
                ("subtotal",),
                f"subtotal {given_subtotal} does not equal the sum of the line totals {lines_sum}",
                "order_subtotal_mismatch",
            )
        subtotal = lines_sum
    total: Decimal | None = None
    if currency is not None and subtotal is not None and None not in (discount, tax, shipping):
        total = order_total(
            subtotal, discount or Decimal(0), tax or Decimal(0), shipping or Decimal(0), currency
        )
        if total < 0:
            errs.add(("discount",), "the discount exceeds the subtotal", "order_discount_too_large")
        elif (
            given_total is not None
            and given_total != total
            and not any(e["type"] == "order_subtotal_mismatch" for e in errs.items)
        ):
            errs.add(
                ("total",),
                f"total {given_total} does not equal subtotal − discount + tax + shipping = {total}",
                "order_total_mismatch",
            )
    errs.raise_if_any("order")
    assert currency is not None
    assert subtotal is not None
    assert total is not None
    assert discount is not None
    assert tax is not None
    assert shipping is not None
    return OrderInput(
        currency=currency,
        subtotal=subtotal,
        total=total,
        lines=tuple(lines),
        discount=discount,
        tax=tax,
        shipping=shipping,
        customer_id=customer_id,
        customer_external_id=customer_external_id,
        external_id=external_id,
        market_code=market_code,
        channel=channel,
        status=status,
        placed_at=placed_at,
        promised_delivery_date=promised,
        fulfilment_status=fulfilment,
        fulfilled_at=fulfilled_at,
        delivered_at=delivered_at,
        source=source,
    )


def prepare_product(raw: Mapping[str, Any]) -> ProductInput:
    """Validate one product: ``sku``, ``name``, ``price`` (+ ``currency``), ``category``, ``active``.

    ``price`` may be an amount with a separate ``currency`` or a mapping ``{"amount", "currency"}``.
    """
    errs = _Errors()
    if not isinstance(raw, Mapping):
        errs.add((), "a product must be an object", "object_type")
        errs.raise_if_any("product")
    sku = _text(raw, "sku", errs, ("sku",), required=True, max_length=100)
    name = _text(raw, "name", errs, ("name",), required=True, max_length=300)
    category = _text(raw, "category", errs, ("category",))
    active = _bool(raw, "active", errs, ("active",), True)
    price = _money(raw, "price", errs)
    errs.raise_if_any("product")
    assert sku is not None
    assert name is not None
    assert price is not None
    return ProductInput(sku=sku, name=name, price=price, category=category, active=active)


def _money(raw: Mapping[str, Any], key: str, errs: _Errors) -> Money | None:
    value = _get(raw, key)
    if isinstance(value, Mapping):
        currency = _currency(value, "currency", errs, (key, "currency"))
        amount = _amount(value, "amount", errs, (key, "amount"), currency, required=True)
    else:
        currency = _currency(raw, "currency", errs, ("currency",))
        amount = _amount(raw, key, errs, (key,), currency, required=True)
    if currency is None or amount is None:
        return None
    return Money(amount, currency)


def prepare_subscription(raw: Mapping[str, Any]) -> SubscriptionInput:
    """Validate one subscription: customer, ``plan``, ``price`` (+ ``currency``), ``interval``,
    ``started_at``, ``renews_at``, ``cancelled_at``, ``status``, ``external_id``."""
    errs = _Errors()
    if not isinstance(raw, Mapping):
        errs.add((), "a subscription must be an object", "object_type")
        errs.raise_if_any("subscription")
    customer_id, customer_external_id = _customer_ref(raw, errs)
    external_id = _text(raw, "external_id", errs, ("external_id",))
    plan = _text(raw, "plan", errs, ("plan",), required=True)
    price = _money(raw, "price", errs)
    interval = _choice(raw, "interval", errs, ("interval",), INTERVALS, "month")
    status = _choice(raw, "status", errs, ("status",), SUBSCRIPTION_STATUSES, "active")
    source = _choice(raw, "source", errs, ("source",), SOURCES, "api")
    started_at = _timestamp(raw, "started_at", errs, ("started_at",))
    renews_at = _timestamp(raw, "renews_at", errs, ("renews_at",))
    cancelled_at = _timestamp(raw, "cancelled_at", errs, ("cancelled_at",))
    if status == "cancelled" and cancelled_at is None:
        errs.add(("cancelled_at",), "a cancelled subscription needs cancelled_at", "missing")
    if status == "active" and cancelled_at is not None:
        errs.add(("status",), "an active subscription has no cancelled_at", "inconsistent_status")
    if started_at is not None:
        for key, value in (("renews_at", renews_at), ("cancelled_at", cancelled_at)):
            if value is not None and value < started_at:
                errs.add((key,), "is before started_at", "before_started_at")
    errs.raise_if_any("subscription")
    assert plan is not None
    assert price is not None
    return SubscriptionInput(
        plan=plan,
        price=price,
        started_at=started_at,
        interval=interval,
        renews_at=renews_at,
        cancelled_at=cancelled_at,
        status=status,
        customer_id=customer_id,
        customer_external_id=customer_external_id,
        external_id=external_id,
        source=source,
    )


def add_interval(start: datetime, interval: str, count: int = 1) -> datetime:
    """``start`` plus ``count`` months or years, clamping the day (31 Jan + 1 month = 28/29 Feb)."""
    months = count * (12 if interval == "year" else 1)
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def refund_share(
    *,
    line_total: Decimal,
    line_quantity: int,
    refunded_quantity: int,
    refunded_amount: Decimal,
    quantity: int,
    currency: str,
) -> Decimal:
    """The default refund for ``quantity`` more units of a line: its proportional share, rounded
    down to the minor unit, except that refunding the last units returns exactly what is left (so
    a fully refunded line refunds its whole total)."""
    if refunded_quantity + quantity >= line_quantity:
        return line_total - refunded_amount
    unit = Decimal(1).scaleb(-currency_exponent(currency))
    share = (line_total * quantity / line_quantity).quantize(unit, rounding=ROUND_FLOOR)
    return min(share, line_total - refunded_amount)


def status_after_refund(lines: Sequence[tuple[int, int]]) -> str:
    """Order status from (quantity, refunded_quantity) per line."""
    if any(refunded for _, refunded in lines) and all(refunded >= qty for qty, refunded in lines):
        return "refunded"
    if any(refunded for _, refunded in lines):
        return "partially_refunded"
    return "placed"


def delivery_overdue(promised: date, local_today: date) -> bool:
    """A promised delivery date has passed once the market's local date is after it."""
    return local_today > promised


def local_date(at: datetime, zone: Any) -> date:
    return at.astimezone(zone).date()
