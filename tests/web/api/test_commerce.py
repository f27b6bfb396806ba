"""Commerce over HTTP: products, orders, refunds, subscriptions; auth, ETags, strict money."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from patron.core.db import Database
from patron.core.outbox import OutboxEvent
from patron.customers import CustomerCreateInput, create_customer, get_traits
from tests.commerce.conftest import setup_business

API = "/api/v1"


@pytest.fixture
def customer_id(database: Database) -> str:
    with database.unit_of_work() as s:
        setup_business(s)
        return create_customer(
            s, CustomerCreateInput(first_name="Lan", last_name="Trần", email="lan@example.vn")
        ).id


def _order_body(customer_id: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "currency": "VND",
        "market": "VN",
        "channel": "app",
        "placed_at": "2026-03-10T09:00:00+07:00",
        "shipping": "20000",
        "lines": [
            {"sku": "TEA-1", "name": "Trà xanh", "quantity": 2, "unit_price": "55000"},
            {"sku": "CUP-1", "name": "Cốc", "quantity": 1, "unit_price": "80000"},
        ],
    }
    body.update(extra)
    return body


def _events(database: Database, name: str) -> int:
    with database.unit_of_work(write=False) as s:
        return int(
            s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.name == name)) or 0
        )


def test_order_lifecycle_over_http(api: TestClient, customer_id: str, database: Database) -> None:
    created = api.post(f"{API}/orders", json=_order_body(customer_id, external_id="APP-1"))
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["subtotal"] == "190000"
    assert order["total"] == "210000"
    assert order["status"] == "placed"
    assert order["market"] == "VN"
    assert created.headers["Location"] == f"/api/v1/orders/{order['id']}"
    assert _events(database, "order.placed") == 1

    got = api.get(f"{API}/orders/{order['id']}")
    assert got.status_code == 200
    etag = got.headers["ETag"]
    assert got.json() == order

    stale = api.post(f"{API}/orders/{order['id']}/fulfil", headers={"If-Match": 'W/"nope"'})
    assert stale.status_code == 412
    assert stale.json()["code"] == "etag_mismatch"

    fulfilled = api.post(f"{API}/orders/{order['id']}/fulfil", headers={"If-Match": etag})
    assert fulfilled.status_code == 200
    assert fulfilled.json()["fulfilment_status"] == "fulfilled"
    assert fulfilled.headers["ETag"] != etag
    again = api.post(f"{API}/orders/{order['id']}/fulfil")
    assert again.status_code == 409
    assert again.json()["code"] == "order_already_fulfilled"

    line = order["lines"][0]
    refund = api.post(
        f"{API}/orders/{order['id']}/refunds",
        json={"lines": [{"line_id": line["id"], "quantity": 1}], "reason": "leaked"},
    )
    assert refund.status_code == 201, refund.text
    body = refund.json()
    # line TEA-1 carries 110,000 of the 190,000 subtotal → 121,579 of the 210,000 total; one of two
    assert body["refunds"][0]["amount"] == {"amount": "60789", "currency": "VND"}
    assert body["order"]["status"] == "partially_refunded"
    assert body["order"]["refunded"] == "60789"

    too_many = api.post(
        f"{API}/orders/{order['id']}/refunds", json={"lines": [{"line_id": line["id"], "quantity": 2}]}
    )
    assert too_many.status_code == 422
    assert too_many.json()["code"] == "refund_quantity_exceeded"
    assert too_many.json()["errors"][0]["loc"] == ["body", "lines", 0, "quantity"]
    assert _events(database, "order.refunded") == 1

    delivered = api.post(f"{API}/orders/{order['id']}/deliver", json={"at": "2026-03-12T10:00:00+07:00"})
    assert delivered.status_code == 200
    assert delivered.json()["delivered_at"] == "2026-03-12T03:00:00Z"
    cancel = api.post(f"{API}/orders/{order['id']}/cancel")
    assert cancel.status_code == 409
    assert cancel.json()["code"] == "order_not_cancellable"

    with database.unit_of_work(write=False) as s:
        spent = get_traits(s, customer_id)["total_spent"].value
    # (210,000 − 60,789) VND × 0.000040 (March rate) = 5.97 EUR
    assert spent == Decimal("5.97")


def test_totals_are_validated_and_money_is_strict(
    api: TestClient, customer_id: str, database: Database
) -> None:
    wrong_total = api.post(f"{API}/orders", json=_order_body(customer_id, total="999"))
    assert wrong_total.status_code == 422
    assert wrong_total.json()["code"] == "order_total_mismatch"
    assert wrong_total.json()["errors"][0]["loc"] == ["body", "total"]

    wrong_subtotal = api.post(f"{API}/orders", json=_order_body(customer_id, subtotal="1"))
    assert wrong_subtotal.json()["code"] == "order_subtotal_mismatch"

    for bad in (12.5, True, 10, "1e3", "-1"):
        response = api.post(f"{API}/orders", json=_order_body(customer_id, shipping=bad))
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["loc"][:2] == ["body", "shipping"]
    quantity_float = _order_body(customer_id)
    quantity_float["lines"][0]["quantity"] = 2.0
    assert api.post(f"{API}/orders", json=quantity_float).status_code == 422
    unknown = api.post(f"{API}/orders", json=_order_body("00000000-0000-7000-8000-000000000000"))
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "unknown_customer"
    extra = api.post(f"{API}/orders", json=_order_body(customer_id, colour="red"))
    assert extra.status_code == 422
    # no failed request wrote an event
    assert _events(database, "order.placed") == 0
    listed = api.get(f"{API}/orders")
    assert listed.json() == {"items": [], "next_cursor": None}


def test_vnd_amounts_are_whole(api: TestClient, customer_id: str) -> None:
    body = _order_body(
        customer_id, shipping="20000.5", lines=[{"sku": "X", "quantity": 3, "unit_price": "33333.33"}]
    )
    response = api.post(f"{API}/orders", json=body)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["lines"][0]["unit_price"] == "33333"
    assert order["subtotal"] == "99999"
    assert order["shipping"] == "20001"
    assert order["total"] == "120000"


def test_duplicate_external_id_is_409(api: TestClient, customer_id: str) -> None:
    assert api.post(f"{API}/orders", json=_order_body(customer_id, external_id="D")).status_code == 201
    dup = api.post(f"{API}/orders", json=_order_body(customer_id, external_id="D"))
    assert dup.status_code == 409
    assert dup.json()["code"] == "duplicate_order"


def test_idempotent_order_creation(api: TestClient, customer_id: str, database: Database) -> None:
    headers = {"Idempotency-Key": "order-key-1"}
    first = api.post(f"{API}/orders", json=_order_body(customer_id), headers=headers)
    second = api.post(f"{API}/orders", json=_order_body(customer_id), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert _events(database, "order.placed") == 1


def test_list_filters_and_cursor(api: TestClient, customer_id: str, database: Database) -> None:
    with database.unit_of_work() as s:
        other = create_customer(s, CustomerCreateInput(first_name="Béla", email="bela@example.hu")).id
    for day in range(1, 6):
        body = _order_body(customer_id, placed_at=f"2026-03-0{day}T12:00:00+07:00")
        assert api.post(f"{API}/orders", json=body).status_code == 201
    assert api.post(f"{API}/orders", json=_order_body(other)).status_code == 201

    page = api.get(f"{API}/orders", params={"customer_id": customer_id, "limit": 2}).json()
    assert [o["placed_at"] for o in page["items"]] == ["2026-03-05T05:00:00Z", "2026-03-04T05:00:00Z"]
    page2 = api.get(
        f"{API}/orders", params={"customer_id": customer_id, "limit": 2, "cursor": page["next_cursor"]}
    ).json()
    assert [o["placed_at"] for o in page2["items"]] == ["2026-03-03T05:00:00Z", "2026-03-02T05:00:00Z"]
    window = api.get(
        f"{API}/orders",
        params={"placed_after": "2026-03-02T05:00:00Z", "placed_before": "2026-03-04T05:00:00Z"},
    ).json()
    assert [o["placed_at"] for o in window["items"]] == ["2026-03-03T05:00:00Z", "2026-03-02T05:00:00Z"]
    assert len(api.get(f"{API}/customers/{customer_id}/orders").json()["items"]) == 5
    assert api.get(f"{API}/orders", params={"status": "cancelled"}).json()["items"] == []
    assert api.get(f"{API}/orders", params={"status": "lost"}).status_code == 422
    assert api.get(f"{API}/orders", params={"limit": 500}).status_code == 422
    assert api.get(f"{API}/orders", params={"cursor": "%%%"}).status_code == 422
    missing = api.get(f"{API}/customers/00000000-0000-7000-8000-000000000000/orders")
    assert missing.status_code == 404
    assert missing.json()["code"] == "customer_not_found"


def test_products_crud_with_etags(api: TestClient) -> None:
    created = api.post(
        f"{API}/products",
        json={
            "sku": "TEA-1",
            "name": "Green tea",
            "category": "tea",
            "price": {"amount": "55000", "currency": "VND"},
        },
    )
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["price"] == {"amount": "55000", "currency": "VND"}
    dup = api.post(
        f"{API}/products", json={"sku": "TEA-1", "name": "X", "price": {"amount": "1", "currency": "VND"}}
    )
    assert dup.status_code == 409
    assert dup.json()["code"] == "duplicate_sku"
    bad = api.post(
        f"{API}/products", json={"sku": "F", "name": "X", "price": {"amount": 1.5, "currency": "EUR"}}
    )
    assert bad.status_code == 422

    got = api.get(f"{API}/products/{product['id']}")
    etag = got.headers["ETag"]
    stale = api.patch(f"{API}/products/{product['id']}", json={"name": "New"}, headers={"If-Match": '"x"'})
    assert stale.status_code == 412
    patched = api.patch(
        f"{API}/products/{product['id']}",
        headers={"If-Match": etag},
        json={"name": "Sencha", "price": {"amount": "60000.4", "currency": "VND"}},
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Sencha"
    assert patched.json()["price"] == {"amount": "60000", "currency": "VND"}
    assert patched.headers["ETag"] != etag

    api.post(
        f"{API}/products", json={"sku": "CUP-1", "name": "Cup", "price": {"amount": "1", "currency": "EUR"}}
    )
    page = api.get(f"{API}/products", params={"limit": 1}).json()
    assert [p["sku"] for p in page["items"]] == ["CUP-1"]
    page2 = api.get(f"{API}/products", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [p["sku"] for p in page2["items"]] == ["TEA-1"]
    assert page2["next_cursor"] is None
    assert api.delete(f"{API}/products/{product['id']}").status_code == 204
    gone = api.get(f"{API}/products/{product['id']}")
    assert gone.status_code == 404
    assert gone.json()["code"] == "product_not_found"


def test_subscriptions_over_http(api: TestClient, customer_id: str, database: Database) -> None:
    created = api.post(
        f"{API}/subscriptions",
        json={
            "customer_id": customer_id,
            "plan": "Tea club",
            "price": {"amount": "199000", "currency": "VND"},
            "interval": "year",
            "started_at": "2026-02-01T00:00:00+07:00",
        },
    )
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["renews_at"] == "2027-01-31T17:00:00Z"
    assert sub["status"] == "active"
    assert _events(database, "subscription.started") == 1
    listed = api.get(f"{API}/customers/{customer_id}/subscriptions").json()
    assert [s["id"] for s in listed["items"]] == [sub["id"]]
    assert api.get(f"{API}/subscriptions", params={"status": "active"}).json()["items"][0]["id"] == sub["id"]
    got = api.get(f"{API}/subscriptions/{sub['id']}")
    cancelled = api.post(f"{API}/subscriptions/{sub['id']}/cancel", headers={"If-Match": got.headers["ETag"]})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert api.post(f"{API}/subscriptions/{sub['id']}/cancel").json()["code"] == "subscription_not_active"
    assert api.get(f"{API}/subscriptions/nope").json()["code"] == "subscription_not_found"
    assert _events(database, "subscription.cancelled") == 1


ROUTES = [
    ("get", "/products", None),
    ("post", "/products", {"sku": "A", "name": "A", "price": {"amount": "1", "currency": "EUR"}}),
    ("get", "/orders", None),
    ("post", "/orders", {}),
    ("get", "/subscriptions", None),
    ("post", "/subscriptions", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_anonymous_is_401(client: TestClient, method: str, path: str, body: Any) -> None:
    response = client.request(method.upper(), f"{API}{path}", json=body)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_authorisation_matrix(client: TestClient, tokens: Any, customer_id: str) -> None:
    product = {"sku": "A", "name": "A", "price": {"amount": "1", "currency": "EUR"}}
    for role in ("viewer", "agent", "analyst", "marketer"):
        headers = tokens.headers(role)
        assert client.get(f"{API}/orders", headers=headers).status_code == 200, role
        assert client.get(f"{API}/products", headers=headers).status_code == 200, role
        denied = client.post(f"{API}/products", json=product, headers=headers)
        assert denied.status_code == 403, role
        assert denied.json()["code"] == "forbidden"
        assert client.post(f"{API}/orders", json=_order_body(customer_id), headers=headers).status_code == 403
    for role in ("admin", "owner"):
        headers = tokens.headers(role)
        assert (
            client.post(f"{API}/products", json={**product, "sku": role}, headers=headers).status_code == 201
        )


def test_unknown_order_is_404(api: TestClient) -> None:
    for method, path in (
        ("GET", "/orders/nope"),
        ("POST", "/orders/nope/fulfil"),
        ("POST", "/orders/nope/deliver"),
        ("POST", "/orders/nope/cancel"),
    ):
        response = api.request(method, f"{API}{path}")
        assert response.status_code == 404
        assert response.json()["code"] == "order_not_found"
    refund = api.post(f"{API}/orders/nope/refunds", json={"lines": [{"line_id": "x", "quantity": 1}]})
    assert refund.status_code == 404


def test_openapi_documents_commerce_statuses(api: TestClient) -> None:
    paths = api.get(f"{API}/openapi.json").json()["paths"]
    assert set(paths[f"{API}/orders/{{order_id}}/refunds"]["post"]["responses"]) == {
        "201",
        "401",
        "403",
        "404",
        "409",
        "412",
        "422",
    }
    assert set(paths[f"{API}/orders"]["post"]["responses"]) == {"201", "401", "403", "409", "422"}
    assert set(paths[f"{API}/products/{{product_id}}"]["patch"]["responses"]) == {
        "200",
        "401",
        "403",
        "404",
        "409",
        "412",
        "422",
    }
