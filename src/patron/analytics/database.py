"""The live Patron database as a source, read through Ibis' own SQLite or PostgreSQL backend.

Left out: test customers, staff (tagged ``staff`` or sharing an email with a staff user), erased and
merged-away customers, and cancelled orders. Amounts are the orders' ``reporting_net_amount`` —
(total − refunded) converted to the business reporting currency with Patron's dated FX rate of the
order date. Timestamps become dates in the business time zone (or ``--timezone``). With products,
each order line adds a zero-amount row naming its product (SKU, else product id), so order counts and
revenue are unchanged.

A scope narrows the rows (analytics runs in the app): ``market`` keeps the orders placed in that
market only; ``customers`` keeps the orders (and page views) of those customers only. With
``market_currency`` a market's amounts are in the market's currency instead of the reporting one: an
order in that currency counts with its own net amount (total − refunded), an order in another currency
is converted with Patron's dated FX rate of its day (the business-local date, as the reporting
conversion does).

Referrals: a customer counts as referred when loyalty recorded a referral for them
(``loyalty_referrals``: the code was valid, the referrer is another customer) that was not rejected as
a self-referral; merged-away customers pass it on to the customer they were merged into. Without any
referral data (no referral code handed out, no referral recorded) the flag stays empty, so the
referral rate is null rather than 0.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from patron.analytics.contracts import AnalysisError, AnalyzeOptions, SourceInfo
from patron.analytics.engine import postgres_url_for_ibis
from patron.analytics.sources import FxRates, check_timezone, from_day_number, load_arrow
from patron.core.business import FxRate, fx_rate, get_business, get_market
from patron.core.db import Database, get_database
from patron.core.errors import NotFound

_FOUR = Decimal("0.0001")


def connect(url: str) -> Any:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database:
            raise AnalysisError("--database needs a file-backed SQLite database")
        return ibis.sqlite.connect(parsed.database)
    if parsed.get_backend_name() == "postgresql":
        return ibis.connect(postgres_url_for_ibis(url))
    raise AnalysisError(f"unsupported database {parsed.get_backend_name()!r}")


def eligible_customers(con: Any) -> Any:
    c = con.table("customers")
    users = con.table("users")
    staff_emails = users.select(email=users.email.lower())
    keep = c.filter(
        c.is_test == False,  # noqa: E712 - an Ibis expression, not a Python comparison
        c.erased_at.isnull(),
        c.merged_into_id.isnull(),
        ~c.tags.cast("string").contains('"staff"'),
    )
    keep = keep.filter(~(keep.email_folded.notnull() & keep.email_folded.isin(staff_emails.email)))
    return keep.select(cid="id")


def referred_customers(con: Any) -> pa.Array | None:
    """Ids of the customers referred by another customer (see the module's docstring), or None when
    the database holds no referral data at all."""
    codes = con.table("loyalty_referral_codes")
    refs = con.table("loyalty_referrals")
    if int(codes.count().to_pyarrow().as_py()) + int(refs.count().to_pyarrow().as_py()) == 0:
        return None
    counted = refs.filter(refs.reason.isnull() | (refs.reason != "self_referral"))
    c = con.table("customers")
    c = c.select(customer=c.id, merged_into=c.merged_into_id)
    j = counted.join(c, counted.referred_id == c.customer)
    ids = j.select(cid=ibis.coalesce(j.merged_into, j.customer).cast("string")).distinct()
    return ids.to_pyarrow().column("cid").combine_chunks()


def extract(
    url: str,
    options: AnalyzeOptions,
    *,
    market: str | None = None,
    customers: frozenset[str] | None = None,
    market_currency: bool = False,
) -> tuple[pa.Table, pa.Table | None, str, str]:
    """(order rows before the day conversion, with the ``referred`` flag; page views; the currency of
    the amounts; time zone). ``market`` and ``customers`` narrow the rows to a run's scope;
    ``market_currency`` puts the market's amounts in its own currency."""
    db = get_database(url)
    with db.unit_of_work(write=False) as session:
        business = get_business(session)
        currency = business.reporting_currency
        if market_currency:
            if market is None:
                raise AnalysisError("amounts in the market's currency need a market")
            try:
                currency = get_market(session, market).currency
            except NotFound as exc:
                raise AnalysisError(f"unknown market {market!r}") from exc
    tz = check_timezone(options.timezone or business.time_zone)
    con = connect(url)
    try:
        keep = eligible_customers(con)
        o = con.table("orders")
        o = o.filter(o.status != "cancelled")
        if market is not None:
            o = o.filter(o.market_code == market)
        o = o.join(keep, o.customer_id == keep.cid)
        base = o.select(
            customer_id=o.customer_id,
            order_id=o.id,
            placed_at=o.placed_at,
            amount=o.reporting_net_amount.cast("decimal(18, 4)"),
            market=o.market_code,
            product=ibis.null().cast("string"),
            line_only=ibis.literal(False),
            **(
                {
                    "order_currency": o.currency,
                    "gross": (o.total_amount - o.refunded_amount).cast("decimal(18, 4)"),
                }
                if market_currency
                else {}
            ),
        )
        parts = [base]
        if "recommendations" in options.sections:
            lines = con.table("order_lines")
            lines = lines.select(line_order="order_id", sku="sku", product_id="product_id")
            j = o.join(lines, o.id == lines.line_order)
            parts.append(
                j.select(
                    customer_id=j.customer_id,
                    order_id=j.line_order,
                    placed_at=j.placed_at,
                    amount=ibis.literal(0).cast("decimal(18, 4)"),
                    market=j.market_code,
                    product=ibis.coalesce(j.sku, j.product_id).cast("string"),
                    line_only=ibis.literal(True),
                    **(
                        {"order_currency": j.currency, "gross": ibis.literal(0).cast("decimal(18, 4)")}
                        if market_currency
                        else {}
                    ),
                )
            )
        expr = parts[0] if len(parts) == 1 else parts[0].union(parts[1])
        table = expr.to_pyarrow()
        views = page_views(con, keep).to_pyarrow() if "recommendations" in options.sections else None
        referred = referred_customers(con)
    finally:
        con.disconnect()
    if market_currency:
        table = in_currency(db, table, currency, tz, business.reporting_currency)
    if customers is not None:
        members = pa.array(sorted(customers), pa.string())
        table = table.filter(pc.is_in(table.column("customer_id").cast(pa.string()), value_set=members))
        if views is not None:
            views = views.filter(pc.is_in(views.column("customer_id").cast(pa.string()), value_set=members))
    if referred is None:
        flags = pa.nulls(table.num_rows, pa.bool_())
    else:
        flags = pc.is_in(table.column("customer_id").cast(pa.string()), value_set=referred.cast(pa.string()))
    table = table.append_column("referred", flags)
    return table, views, currency, tz


def _rate(session: Any, base: str, quote: str, on: date, reporting: str) -> Decimal:
    """Patron's rate base → quote on ``on``; without one, through the reporting currency."""
    try:
        return fx_rate(session, base, quote, on)
    except NotFound:
        pass
    try:
        return fx_rate(session, base, reporting, on) * fx_rate(session, reporting, quote, on)
    except NotFound as exc:
        raise AnalysisError(f"no FX rate {base}->{quote} on or before {on.isoformat()}") from exc


def in_currency(db: Database, table: pa.Table, currency: str, tz: str, reporting: str) -> pa.Table:
    """Replace ``amount`` by the order's net amount in ``currency``: its own (``gross``) when the
    order is in that currency, else converted with the dated rate of its local day (direct or inverse,
    else through the reporting currency)."""
    days = local_days(table.column("placed_at"), tz).to_pylist()
    own = table.column("order_currency").to_pylist()
    gross = table.column("gross").to_pylist()
    lines = table.column("line_only").to_pylist()
    rates: dict[tuple[str, int], Decimal] = {}
    amounts: list[Decimal] = []
    with db.unit_of_work(write=False) as session:
        for order_currency, value, line_only, day in zip(own, gross, lines, days, strict=True):
            if line_only or order_currency == currency:
                amounts.append(Decimal(value))
                continue
            key = (str(order_currency), int(day))
            if key not in rates:
                rates[key] = _rate(session, key[0], currency, from_day_number(key[1]), reporting)
            amounts.append((Decimal(value) * rates[key]).quantize(_FOUR))
    index = table.schema.get_field_index("amount")
    table = table.set_column(index, "amount", pa.array(amounts, pa.decimal128(18, 4)))
    return table.drop_columns(["order_currency", "gross"])


def page_views(con: Any, keep: Any) -> Any:
    """Timeline page views that name a product (``data.product``: a SKU or a product name), mapped
    to the product's SKU: the weak signals of the recommendations."""
    t = con.table("interactions")
    v = t.filter(t.kind == "page_view")
    v = v.select(
        customer_id=v.customer_id,
        placed_at=v.occurred_at,
        product_ref=v.data.cast("string").re_extract(r'"product": *"([^"]*)"', 1),
    )
    products = con.table("products")
    by_sku = products.select(lookup=products.sku.cast("string"), sku=products.sku.cast("string"))
    by_name = products.select(lookup=products.name.cast("string"), sku=products.sku.cast("string"))
    names = by_sku.union(by_name).distinct()
    j = v.join(names, v.product_ref == names.lookup).join(keep, v.customer_id == keep.cid)
    return j.select(customer_id=j.customer_id, placed_at=j.placed_at, product=j.sku)


def local_days(placed_at: pa.ChunkedArray, tz: str) -> pa.Array:
    """Stored UTC timestamps → days since 1970-01-01 of the local date in ``tz``."""
    ts = placed_at
    if pa.types.is_string(ts.type):
        ts = pc.strptime(pc.utf8_slice_codeunits(ts, 0, 19), format="%Y-%m-%d %H:%M:%S", unit="us")
    if ts.type.tz is None:
        ts = pc.assume_timezone(ts, "UTC")
    local = pc.local_timestamp(ts.cast(pa.timestamp("us", tz=tz)))
    return pc.cast(pc.cast(local, pa.date32()), pa.int32())


def database_loader(
    url: str,
    *,
    market: str | None = None,
    customers: frozenset[str] | None = None,
    market_currency: bool = False,
) -> Any:
    """The loader of ``patron analyze --database``; ``market`` / ``customers`` scope it (app runs)."""

    def load(duck: Any, options: AnalyzeOptions) -> SourceInfo:
        table, views, currency, tz = extract(
            url, options, market=market, customers=customers, market_currency=market_currency
        )
        if table.num_rows == 0:
            if market is not None or customers is not None:
                raise AnalysisError("no orders of eligible customers in this market or segment")
            raise AnalysisError("the database has no orders of eligible customers")
        days = local_days(table.column("placed_at"), tz)
        normalised = pa.table(
            {
                "customer_id": table.column("customer_id"),
                "order_id": table.column("order_id"),
                "day": days,
                "amount": table.column("amount"),
                "market": table.column("market"),
                "product": table.column("product"),
                "quantity": pa.nulls(table.num_rows, pa.decimal128(18, 4)),
                "referred": table.column("referred"),
                "line_only": table.column("line_only"),
            }
        )
        if views is not None:
            views = pa.table(
                {
                    "customer_id": views.column("customer_id"),
                    "day": local_days(views.column("placed_at"), tz),
                    "product": views.column("product"),
                }
            )
        return load_arrow(duck, normalised, options, currency, views=views)

    return load


def fx_rates(url: str) -> FxRates | None:
    """Patron's dated FX rates into the reporting currency (inverse rates used where only they
    exist), or None when there is no Patron database at ``url``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).is_file()):
        return None  # never create an empty database file just to look for rates
    try:
        db = get_database(url)
        with db.unit_of_work(write=False) as session:
            target = get_business(session).reporting_currency
            rows = list(session.execute(select(FxRate.base, FxRate.quote, FxRate.valid_on, FxRate.rate)))
    except SQLAlchemyError:
        return None
    rates: dict[tuple[str, date], Decimal] = {}
    for base, quote, valid_on, value in rows:
        if base == target and (quote, valid_on) not in rates:
            rates[(quote, valid_on)] = Decimal(1) / Decimal(value)
    for base, quote, valid_on, value in rows:
        if quote == target:
            rates[(base, valid_on)] = Decimal(value)  # a direct rate wins over an inverse one
    return FxRates(target, tuple((cur, on, value) for (cur, on), value in sorted(rates.items())))
