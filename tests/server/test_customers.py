"""Customers through HTTP against two uvicorn worker processes: idempotent creates, optimistic
concurrency with If-Match, and bursts of creates that must not fail on SQLite's write lock."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import func, select

from patron.core.db import Database, get_engine
from patron.core.outbox import OutboxEvent
from patron.customers.models import Customer
from tests.server.conftest import Live
from tests.support import concurrently

N = 20


def _db(live: Live) -> Database:
    return Database(get_engine(live.database_url))


def _customers_with_email(live: Live, email: str) -> int:
    with _db(live).unit_of_work(write=False) as session:
        return int(
            session.scalar(select(func.count()).select_from(Customer).where(Customer.email == email)) or 0
        )


def _create(live: Live, **fields: object) -> dict[str, object]:
    with live.client() as client:
        response = client.post("/api/v1/customers", json=fields)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_twenty_concurrent_creates_with_one_key_make_one_customer(live: Live) -> None:
    key = f"customer-{uuid.uuid4()}"
    body = {"first_name": "Điền", "last_name": "Nguyễn", "email": "dien.nguyen@example.com",
            "phone": "+84912345678", "country": "VN", "language": "vi"}  # fmt: skip

    def post(_: int) -> tuple[int, bytes, str | None]:
        with live.client() as client:
            r = client.post("/api/v1/customers", json=body, headers={"Idempotency-Key": key})
            return r.status_code, r.content, r.headers.get("Idempotent-Replayed")

    results = concurrently(N, post)

    assert [status for status, _, _ in results] == [201] * N
    assert len({content for _, content, _ in results}) == 1
    assert sorted(flag or "original" for _, _, flag in results) == ["original"] + ["true"] * (N - 1)
    assert _customers_with_email(live, "dien.nguyen@example.com") == 1
    customer_id = json.loads(results[0][1])["id"]
    with _db(live).unit_of_work(write=False) as session:
        events = session.scalars(select(OutboxEvent).where(OutboxEvent.name == "customer.created")).all()
        assert [e.payload["customer_id"] for e in events].count(customer_id) == 1


def test_concurrent_patches_with_one_etag_exactly_one_wins(live: Live) -> None:
    customer = _create(live, first_name="Zsófia", last_name="Kovács", email="zsofia.kovacs@example.com",
                       country="HU", language="hu")  # fmt: skip
    cid = customer["id"]
    with live.client() as client:
        read = client.get(f"/api/v1/customers/{cid}")
    etag = read.headers["ETag"]

    def patch(i: int) -> tuple[int, dict[str, object], str | None]:
        with live.client() as client:
            r = client.patch(f"/api/v1/customers/{cid}", json={"first_name": f"Zsófia {i}"},
                             headers={"If-Match": etag})  # fmt: skip
            return r.status_code, r.json(), r.headers.get("ETag")

    results = concurrently(N, patch)

    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] + [412] * (N - 1), [(s, b) for s, b, _ in results if s not in (200, 412)]
    (winner,) = [(body, new_etag) for status, body, new_etag in results if status == 200]
    assert all(body["code"] == "etag_mismatch" for status, body, _ in results if status == 412)
    with live.client() as client:
        final = client.get(f"/api/v1/customers/{cid}")
    assert final.json()["first_name"] == winner[0]["first_name"]
    assert final.json()["version"] == customer["version"] + 1  # type: ignore[operator]
    assert final.headers["ETag"] == winner[1] != etag
    # the old ETag stays stale; the new one works
    with live.client() as client:
        stale = client.patch(
            f"/api/v1/customers/{cid}", json={"last_name": "Nagy"}, headers={"If-Match": etag}
        )
        fresh = client.patch(f"/api/v1/customers/{cid}", json={"last_name": "Nagy"},
                             headers={"If-Match": str(winner[1])})  # fmt: skip
    assert stale.status_code == 412
    assert fresh.status_code == 200
    assert fresh.json()["last_name"] == "Nagy"


def test_a_burst_of_creates_and_searches_all_succeed(live: Live) -> None:
    writers, readers = 40, 20

    def call(i: int) -> tuple[str, int, str]:
        with live.client() as client:
            if i < writers:
                r = client.post("/api/v1/customers", json={
                    "first_name": "Somchai", "last_name": f"Burst{i}", "email": f"burst.{i}@example.com",
                    "phone": f"+6681234{i:04d}", "country": "TH", "language": "th",
                })  # fmt: skip
                return "write", r.status_code, r.text
            r = client.get("/api/v1/customers", params={"q": "somchai"})
            return "read", r.status_code, r.text

    results = concurrently(writers + readers, call)

    assert [(k, s, b) for k, s, b in results if s not in (200, 201)] == []
    assert [s for k, s, _ in results if k == "write"] == [201] * writers
    with live.client() as client:
        found = client.get("/api/v1/customers", params={"q": "somchai", "limit": 200}).json()["items"]
    assert {c["email"] for c in found} >= {f"burst.{i}@example.com" for i in range(writers)}


def test_concurrent_creates_with_one_new_email_make_one_customer(live: Live) -> None:
    """The duplicate-email rule holds under concurrency: one 201, the rest 409 ``duplicate_email``."""
    body = {"first_name": "Ploy", "last_name": "Srisuk", "email": "ploy.srisuk@example.com", "country": "TH"}

    def post(_: int) -> tuple[int, dict[str, object]]:
        with live.client() as client:
            r = client.post("/api/v1/customers", json=body)
            return r.status_code, r.json()

    results = concurrently(10, post)

    assert sorted(s for s, _ in results) == [201] + [409] * 9, results
    assert {b["code"] for s, b in results if s == 409} == {"duplicate_email"}
    assert _customers_with_email(live, "ploy.srisuk@example.com") == 1
