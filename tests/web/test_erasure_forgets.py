"""Erasure also forgets what Patron kept for replays and dispatched events."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from patron.core.db import Database
from patron.core.idempotency import IdempotencyRecord
from patron.core.outbox import OutboxEvent, drain


def test_erasure_drops_idempotent_responses_and_event_payloads(api: TestClient, database: Database) -> None:
    created = api.post(
        "/api/v1/customers",
        json={"first_name": "Mai", "last_name": "Nguyễn", "email": "mai@example.vn", "country": "VN"},
        headers={"Idempotency-Key": "create-mai"},
    )
    assert created.status_code == 201
    customer_id = created.json()["id"]
    drain(database)
    with database.unit_of_work() as s:
        bodies = [bytes(b) for b in s.scalars(select(IdempotencyRecord.response_body))]
        assert any(b"mai@example.vn" in b for b in bodies)
    assert api.delete(f"/api/v1/customers/{customer_id}").status_code == 204
    with database.unit_of_work() as s:
        bodies = [bytes(b) for b in s.scalars(select(IdempotencyRecord.response_body))]
        assert not any(customer_id.encode() in b for b in bodies)
        payloads = [
            e.payload for e in s.scalars(select(OutboxEvent).where(OutboxEvent.dispatched_at.is_not(None)))
        ]
        assert payloads
        assert all("mai@example.vn" not in str(p) for p in payloads)
