"""Commerce: products, orders (fulfil, deliver, refund, cancel), subscriptions, and the orders and
subscriptions of a customer.

Money on the wire is a decimal string (``"123.45"``) — with the order's ``currency`` beside it, or
as ``{"amount": "123.45", "currency": "EUR"}`` for prices. Numbers and booleans are refused for
money, so no amount ever passes through a float.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from patron.auth import Perm, Principal
from patron.commerce import (
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    RefundLineInput,
    RefundRecord,
    SubscriptionRecord,
    cancel_order,
    cancel_subscription,
    create_product,
    delete_product,
    fulfil_order,
    get_order,
    get_product,
    get_subscription,
    list_orders,
    list_products,
    list_subscriptions,
    mark_delivered,
    place_order,
    prepare_order,
    prepare_product,
    prepare_subscription,
    refund_lines,
    start_subscription,
    update_product,
)
from patron.core.errors import NotFound, ValidationFailed
from patron.core.money import Money
from patron.customers import customer_exists
from patron.web.api.v1.fields import Amount, Cursor, Limit, Text
from patron.web.deps import DbSession, IfMatch, Requires, check_if_match, make_etag, set_etag
from patron.web.problems import problem_responses
from patron.web.routing import PatronRoute

router = APIRouter(route_class=PatronRoute, tags=["commerce"], responses=problem_responses(401, 403, 422))

T = TypeVar("T")


Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$", description="ISO 4217 code", examples=["EUR"])]
Id = Annotated[str, Field(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")]
Channel = Literal["web", "store", "app", "phone", "marketplace"]
OrderStatus = Literal["placed", "cancelled", "refunded", "partially_refunded"]
SubscriptionStatus = Literal["active", "cancelled", "expired"]


def _body_errors(call: Callable[[], T]) -> T:
    """Run a domain call; its validation errors point into the request body (``loc`` starts "body")."""
    try:
        return call()
    except ValidationFailed as exc:
        for err in exc.errors:
            loc = list(err.get("loc") or [])
            if not loc or loc[0] not in ("body", "query", "path"):
                err["loc"] = ["body", *loc]
        raise


# --- schemas --------------------------------------------------------------------------------------


class MoneyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Amount
    currency: Currency


class MoneyRead(BaseModel):
    amount: str = Field(examples=["123.45"])
    currency: str = Field(examples=["EUR"])

    @classmethod
    def of(cls, money: Money) -> MoneyRead:
        return cls(amount=str(money.amount), currency=money.currency)


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: Text = Field(min_length=1, max_length=100)
    name: Text = Field(min_length=1, max_length=300)
    category: Text | None = Field(default=None, max_length=200)
    price: MoneyIn
    active: StrictBool = True


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: Text | None = Field(default=None, min_length=1, max_length=100)
    name: Text | None = Field(default=None, min_length=1, max_length=300)
    category: Text | None = Field(default=None, max_length=200)
    price: MoneyIn | None = None
    active: StrictBool | None = None


class ProductRead(BaseModel):
    id: str
    sku: str
    name: str
    category: str | None
    price: MoneyRead
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: ProductRecord) -> ProductRead:
        return cls(
            id=p.id,
            sku=p.sku,
            name=p.name,
            category=p.category,
            price=MoneyRead.of(p.price),
            active=p.active,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class ProductPage(BaseModel):
    items: list[ProductRead]
    next_cursor: str | None = None


class OrderLineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_id: Id | None = None
    sku: Text | None = Field(default=None, min_length=1, max_length=100)
    name: Text | None = Field(default=None, max_length=300)
    category: Text | None = Field(default=None, max_length=200)
    quantity: StrictInt = Field(ge=1, le=1_000_000)
    unit_price: Amount
    discount: Amount | None = None
    total: Amount | None = Field(default=None, description="checked: quantity × unit_price − discount")


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: Text | None = Field(default=None, min_length=1, max_length=200)
    customer_id: Id
    market: Text | None = Field(default=None, min_length=1, max_length=20, description="market code")
    channel: Channel = "web"
    currency: Currency
    lines: list[OrderLineCreate] = Field(min_length=1, max_length=1000)
    subtotal: Amount | None = Field(default=None, description="checked: the sum of the line totals")
    discount: Amount | None = None
    tax: Amount | None = None
    shipping: Amount | None = None
    total: Amount | None = Field(default=None, description="checked: subtotal − discount + tax + shipping")
    placed_at: AwareDatetime | None = Field(default=None, description="default: now")
    promised_delivery_date: date | None = None


class OrderLineRead(BaseModel):
    id: str
    position: int
    product_id: str | None
    sku: str | None
    name: str
    category: str | None
    quantity: int
    unit_price: str
    discount: str
    total: str
    refunded_quantity: int
    refunded: str

    @classmethod
    def of(cls, line: OrderLineRecord) -> OrderLineRead:
        return cls(
            id=line.id,
            position=line.position,
            product_id=line.product_id,
            sku=line.sku,
            name=line.name,
            category=line.category,
            quantity=line.quantity,
            unit_price=str(line.unit_price.amount),
            discount=str(line.discount.amount),
            total=str(line.total.amount),
            refunded_quantity=line.refunded_quantity,
            refunded=str(line.refunded.amount),
        )


class RefundRead(BaseModel):
    id: str
    line_id: str
    quantity: int
    amount: MoneyRead
    kind: Literal["refund", "return"]
    reason: str
    refunded_at: datetime

    @classmethod
    def of(cls, r: RefundRecord) -> RefundRead:
        return cls(
            id=r.id,
            line_id=r.order_line_id,
            quantity=r.quantity,
            amount=MoneyRead.of(r.amount),
            kind=r.kind,
            reason=r.reason,
            refunded_at=r.refunded_at,
        )


class OrderRead(BaseModel):
    id: str
    external_id: str | None
    customer_id: str
    market: str | None
    channel: Channel
    currency: str
    subtotal: str
    discount: str
    tax: str
    shipping: str
    total: str
    refunded: str
    status: OrderStatus
    placed_at: datetime
    promised_delivery_date: date | None
    fulfilment_status: Literal["unfulfilled", "fulfilled", "delivered"]
    fulfilled_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    delayed_notified_at: datetime | None
    source: Literal["api", "import", "demo"]
    created_at: datetime
    updated_at: datetime
    lines: list[OrderLineRead]
    refunds: list[RefundRead]

    @classmethod
    def of(cls, o: OrderRecord) -> OrderRead:
        data: dict[str, Any] = {
            "id": o.id,
            "external_id": o.external_id,
            "customer_id": o.customer_id,
            "market": o.market_code,
            "channel": o.channel,
            "currency": o.currency,
            "subtotal": str(o.subtotal.amount),
            "discount": str(o.discount.amount),
            "tax": str(o.tax.amount),
            "shipping": str(o.shipping.amount),
            "total": str(o.total.amount),
            "refunded": str(o.refunded.amount),
            "status": o.status,
            "placed_at": o.placed_at,
            "promised_delivery_date": o.promised_delivery_date,
            "fulfilment_status": o.fulfilment_status,
            "fulfilled_at": o.fulfilled_at,
            "delivered_at": o.delivered_at,
            "cancelled_at": o.cancelled_at,
            "delayed_notified_at": o.delayed_notified_at,
            "source": o.source,
            "created_at": o.created_at,
            "updated_at": o.updated_at,
            "lines": [OrderLineRead.of(line) for line in o.lines],
            "refunds": [RefundRead.of(r) for r in o.refunds],
        }
        return cls.model_validate(data)


class OrderPage(BaseModel):
    items: list[OrderRead]
    next_cursor: str | None = None


class OrderAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: AwareDatetime | None = Field(default=None, description="when it happened (default: now)")


class OrderCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(default="", max_length=500)


class RefundLineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    line_id: Id
    quantity: StrictInt = Field(ge=1, le=1_000_000)
    amount: Amount | None = Field(
        default=None, description="default: the quantity's share of the line's part of the order total"
    )


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lines: list[RefundLineCreate] = Field(min_length=1, max_length=1000)
    kind: Literal["refund", "return"] = "refund"
    reason: Text = Field(default="", max_length=500)
    refunded_at: AwareDatetime | None = None


class RefundResult(BaseModel):
    order: OrderRead
    refunds: list[RefundRead]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: Text | None = Field(default=None, min_length=1, max_length=200)
    customer_id: Id
    plan: Text = Field(min_length=1, max_length=200)
    price: MoneyIn
    interval: Literal["month", "year"] = "month"
    started_at: AwareDatetime | None = Field(default=None, description="default: now")
    renews_at: AwareDatetime | None = Field(default=None, description="default: one interval after start")


class SubscriptionRead(BaseModel):
    id: str
    external_id: str | None
    customer_id: str
    plan: str
    price: MoneyRead
    interval: Literal["month", "year"]
    status: SubscriptionStatus
    started_at: datetime
    renews_at: datetime | None
    cancelled_at: datetime | None
    source: Literal["api", "import", "demo"]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: SubscriptionRecord) -> SubscriptionRead:
        data: dict[str, Any] = {
            "id": s.id,
            "external_id": s.external_id,
            "customer_id": s.customer_id,
            "plan": s.plan,
            "price": MoneyRead.of(s.price),
            "interval": s.interval,
            "status": s.status,
            "started_at": s.started_at,
            "renews_at": s.renews_at,
            "cancelled_at": s.cancelled_at,
            "source": s.source,
            "created_at": s.created_at,
            "updated_at": s.updated_at,
        }
        return cls.model_validate(data)


class SubscriptionPage(BaseModel):
    items: list[SubscriptionRead]
    next_cursor: str | None = None


class SubscriptionCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: AwareDatetime | None = Field(default=None, description="when it was cancelled (default: now)")


def _product_etag(p: ProductRecord) -> str:
    return make_etag("product", p.id, p.version)


def _order_etag(o: OrderRecord) -> str:
    return make_etag("order", o.id, o.version)


def _subscription_etag(s: SubscriptionRecord) -> str:
    return make_etag("subscription", s.id, s.version)


_ONE = problem_responses(404)
_ACTION = problem_responses(404, 409, 412)


# --- products -------------------------------------------------------------------------------------


@router.get("/products", response_model=ProductPage)
def list_products_endpoint(
    db: DbSession,
    _: Principal = Requires(Perm.COMMERCE_READ),
    cursor: Cursor = None,
    limit: Limit = None,
    category: Annotated[Text | None, Query(max_length=200)] = None,
    active: Annotated[bool | None, Query()] = None,
    sku: Annotated[Text | None, Query(max_length=100)] = None,
) -> ProductPage:
    page = list_products(db, category=category, active=active, sku=sku, cursor=cursor, limit=limit)
    return ProductPage(items=[ProductRead.of(p) for p in page.items], next_cursor=page.next_cursor)


@router.post(
    "/products",
    response_model=ProductRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
)
def create_product_endpoint(
    body: ProductCreate, db: DbSession, response: Response, _: Principal = Requires(Perm.COMMERCE_WRITE)
) -> ProductRead:
    data = _body_errors(lambda: prepare_product(body.model_dump()))
    product = create_product(db, data)
    set_etag(response, _product_etag(product))
    response.headers["Location"] = f"/api/v1/products/{product.id}"
    return ProductRead.of(product)


@router.get("/products/{product_id}", response_model=ProductRead, responses=_ONE)
def get_product_endpoint(
    product_id: str, db: DbSession, response: Response, _: Principal = Requires(Perm.COMMERCE_READ)
) -> ProductRead:
    product = get_product(db, product_id)
    set_etag(response, _product_etag(product))
    return ProductRead.of(product)


@router.patch(
    "/products/{product_id}", response_model=ProductRead, responses=problem_responses(404, 409, 412)
)
def update_product_endpoint(
    product_id: str,
    body: ProductUpdate,
    db: DbSession,
    response: Response,
    _: Principal = Requires(Perm.COMMERCE_WRITE),
    if_match: IfMatch = None,
) -> ProductRead:
    current = get_product(db, product_id)
    check_if_match(if_match, _product_etag(current))
    changes = body.model_dump(exclude_unset=True)
    product = _body_errors(lambda: update_product(db, product_id, changes, expected_version=current.version))
    set_etag(response, _product_etag(product))
    return ProductRead.of(product)


@router.delete(
    "/products/{product_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 412),
)
def delete_product_endpoint(
    product_id: str, db: DbSession, _: Principal = Requires(Perm.COMMERCE_WRITE), if_match: IfMatch = None
) -> Response:
    check_if_match(if_match, _product_etag(get_product(db, product_id)))
    delete_product(db, product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- orders ---------------------------------------------------------------------------------------


def _orders_page(
    db: DbSession,
    *,
    customer_id: str | None,
    status_: str | None,
    placed_after: datetime | None,
    placed_before: datetime | None,
    cursor: str | None,
    limit: int | None,
) -> OrderPage:
    page = list_orders(
        db,
        customer_id=customer_id,
        status=status_,
        placed_after=placed_after,
        placed_before=placed_before,
        cursor=cursor,
        limit=limit,
    )
    return OrderPage(items=[OrderRead.of(o) for o in page.items], next_cursor=page.next_cursor)


PlacedAfter = Annotated[AwareDatetime | None, Query(description="placed at or after (inclusive)")]
PlacedBefore = Annotated[AwareDatetime | None, Query(description="placed before (exclusive)")]


@router.get("/orders", response_model=OrderPage)
def list_orders_endpoint(
    db: DbSession,
    _: Principal = Requires(Perm.COMMERCE_READ),
    cursor: Cursor = None,
    limit: Limit = None,
    customer_id: Annotated[Id | None, Query()] = None,
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
    placed_after: PlacedAfter = None,
    placed_before: PlacedBefore = None,
) -> OrderPage:
    """Orders, newest first."""
    return _orders_page(
        db,
        customer_id=customer_id,
        status_=status_,
        placed_after=placed_after,
        placed_before=placed_before,
        cursor=cursor,
        limit=limit,
    )


@router.post(
    "/orders",
    response_model=OrderRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
)
def create_order_endpoint(
    body: OrderCreate, db: DbSession, response: Response, _: Principal = Requires(Perm.COMMERCE_WRITE)
) -> OrderRead:
    """Place an order; totals are checked (lines add up to the subtotal; total = subtotal − discount
    + tax + shipping) and amounts rounded to the currency (VND whole dong)."""
    raw = body.model_dump(exclude_none=True)
    raw["source"] = "api"
    order = _body_errors(lambda: place_order(db, prepare_order(raw)))
    set_etag(response, _order_etag(order))
    response.headers["Location"] = f"/api/v1/orders/{order.id}"
    return OrderRead.of(order)


@router.get("/orders/{order_id}", response_model=OrderRead, responses=_ONE)
def get_order_endpoint(
    order_id: str, db: DbSession, response: Response, _: Principal = Requires(Perm.COMMERCE_READ)
) -> OrderRead:
    order = get_order(db, order_id)
    set_etag(response, _order_etag(order))
    return OrderRead.of(order)


def _order_action(
    db: DbSession,
    response: Response,
    order_id: str,
    if_match: str | None,
    action: Callable[[], OrderRecord],
) -> OrderRead:
    check_if_match(if_match, _order_etag(get_order(db, order_id)))
    order = _body_errors(action)
    set_etag(response, _order_etag(order))
    return OrderRead.of(order)


@router.post("/orders/{order_id}/fulfil", response_model=OrderRead, responses=_ACTION)
def fulfil_order_endpoint(
    order_id: str,
    db: DbSession,
    response: Response,
    _: Principal = Requires(Perm.COMMERCE_WRITE),
    body: OrderAction | None = None,
    if_match: IfMatch = None,
) -> OrderRead:
    """Mark the order fulfilled (emits ``order.fulfilled``); 409 ``order_already_fulfilled``."""
    at = body.at if body else None
    return _order_action(db, response, order_id, if_match, lambda: fulfil_order(db, order_id, at=at))


@router.post("/orders/{order_id}/deliver", response_model=OrderRead, responses=_ACTION)
def deliver_order_endpoint(
    order_id: str,
    db: DbSession,
    response: Response,
    _: Principal = Requires(Perm.COMMERCE_WRITE),
    body: OrderAction | None = None,
    if_match: IfMatch = None,
) -> OrderRead:
    """Mark the order delivered (emits ``order.delivered``); 409 ``order_already_delivered``."""
    at = body.at if body else None
    return _order_action(db, response, order_id, if_match, lambda: mark_delivered(db, order_id, at=at))


@router.post("/orders/{order_id}/cancel", response_model=OrderRead, responses=_ACTION)
def cancel_order_endpoint(
    order_id: str,
    db: DbSession,
    response: Response,
    _: Principal = Requires(Perm.COMMERCE_WRITE),
    body: OrderCancel | None = None,
    if_match: IfMatch = None,
) -> OrderRead:
    """Cancel an unfulfilled, unrefunded order; 409 ``order_not_cancellable`` otherwise."""
    reason = body.reason if body else ""
    return _order_action(db, response, order_id, if_match, lambda: cancel_order(db, order_id, reason=reason))


@router.post(
    "/orders/{order_id}/refunds",
    response_model=RefundResult,
    status_code=status.HTTP_201_CREATED,
    responses=_ACTION,
)
def refund_order_endpoint(
    order_id: str,
    body: RefundCreate,
    db: DbSession,
    response: Response,
    _: Principal = Requires(Perm.COMMERCE_WRITE),
    if_match: IfMatch = None,
) -> RefundResult:
    """Refund or record the return of quantities of order lines (emits ``order.refunded``). Each
    line is bounded by its quantity (422 ``refund_quantity_exceeded``) and by its share of the order
    total (422 ``refund_amount_exceeded``)."""
    check_if_match(if_match, _order_etag(get_order(db, order_id)))
    items = [
        RefundLineInput(
            line.line_id, line.quantity, Decimal(line.amount) if line.amount is not None else None
        )
        for line in body.lines
    ]
    refunds = _body_errors(
        lambda: refund_lines(db, order_id, items, kind=body.kind, reason=body.reason, at=body.refunded_at)
    )
    order = get_order(db, order_id)
    set_etag(response, _order_etag(order))
    return RefundResult(order=OrderRead.of(order), refunds=[RefundRead.of(r) for r in refunds])


# --- subscriptions --------------------------------------------------------------------------------


@router.get("/subscriptions", response_model=SubscriptionPage)
def list_subscriptions_endpoint(
    db: DbSession,
    _: Principal = Requires(Perm.COMMERCE_READ),
    cursor: Cursor = None,
    limit: Limit = None,
    customer_id: Annotated[Id | None, Query()] = None,
    status_: Annotated[SubscriptionStatus | None, Query(alias="status")] = None,
) -> SubscriptionPage:
    page = list_subscriptions(db, customer_id=customer_id, status=status_, cursor=cursor, limit=limit)
    return SubscriptionPage(items=[SubscriptionRead.of(s) for s in page.items], next_cursor=page.next_cursor)


@router.post(
    "/subscriptions",
    response_model=SubscriptionRead,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409),
)
def create_subscription_endpoint(
    body: SubscriptionCreate, db: DbSession, response: Response, _: Principal = Requires(Perm.COMMERCE_WRITE)
) -> SubscriptionRead:
    raw = body.model_dump(exclude_none=True)
    raw["source"] = "api"
    sub = _body_errors(lambda: start_subscription(db, prepare_subscription(raw)))
    set_etag(response, _subscription_etag(sub))
    response.headers["Location"] = f"/api/v1/subscriptions/{sub.id}"
    return SubscriptionRead.of(sub)


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionRead, responses=_ONE)
def get_subscription_endpoint(
    subscription_id: str, db: DbSession, response: Response, _: Principal = Requires(Perm.COMMERCE_READ)
) -> SubscriptionRead:
    sub = get_subscription(db, subscription_id)
    set_etag(response, _subscription_etag(sub))
    return SubscriptionRead.of(sub)


@router.post("/subscriptions/{subscription_id}/cancel", response_model=SubscriptionRead, responses=_ACTION)
def cancel_subscription_endpoint(
    subscription_id: str,
    db: DbSession,
    response: Response,
    _: Principal = Requires(Perm.COMMERCE_WRITE),
    body: SubscriptionCancel | None = None,
    if_match: IfMatch = None,
) -> SubscriptionRead:
    """Cancel an active subscription (emits ``subscription.cancelled``); 409 ``subscription_not_active``."""
    check_if_match(if_match, _subscription_etag(get_subscription(db, subscription_id)))
    at = body.at if body else None
    sub = _body_errors(lambda: cancel_subscription(db, subscription_id, at=at))
    set_etag(response, _subscription_etag(sub))
    return SubscriptionRead.of(sub)


# --- a customer's orders and subscriptions --------------------------------------------------------


def _require_customer(db: DbSession, customer_id: str) -> None:
    if not customer_exists(db, customer_id):
        raise NotFound(f"customer {customer_id!r} not found", code="customer_not_found")


@router.get("/customers/{customer_id}/orders", response_model=OrderPage, responses=_ONE)
def customer_orders_endpoint(
    customer_id: str,
    db: DbSession,
    _: Principal = Requires(Perm.COMMERCE_READ),
    cursor: Cursor = None,
    limit: Limit = None,
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
    placed_after: PlacedAfter = None,
    placed_before: PlacedBefore = None,
) -> OrderPage:
    """The customer's orders, newest first."""
    _require_customer(db, customer_id)
    return _orders_page(
        db,
        customer_id=customer_id,
        status_=status_,
        placed_after=placed_after,
        placed_before=placed_before,
        cursor=cursor,
        limit=limit,
    )


@router.get("/customers/{customer_id}/subscriptions", response_model=SubscriptionPage, responses=_ONE)
def customer_subscriptions_endpoint(
    customer_id: str,
    db: DbSession,
    _: Principal = Requires(Perm.COMMERCE_READ),
    cursor: Cursor = None,
    limit: Limit = None,
    status_: Annotated[SubscriptionStatus | None, Query(alias="status")] = None,
) -> SubscriptionPage:
    _require_customer(db, customer_id)
    page = list_subscriptions(db, customer_id=customer_id, status=status_, cursor=cursor, limit=limit)
    return SubscriptionPage(items=[SubscriptionRead.of(s) for s in page.items], next_cursor=page.next_cursor)
