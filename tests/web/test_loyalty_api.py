"""Loyalty over HTTP: the account contract, adjustments and redemptions with Idempotency-Key,
409 insufficient_points, strict points, hold/capture/release, events, simulation, settings, rules,
and orders credited end to end through the outbox."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from patron.auth import Role
from patron.core.db import Database
from patron.core.outbox import drain
from patron.customers import CustomerCreateInput, create_customer
from tests.conftest import Tokens
from tests.loyalty.conftest import setup_loyalty

API = "/api/v1/loyalty"
PROBLEM = "application/problem+json"


@pytest.fixture
def customer_id(database: Database) -> str:
    with database.unit_of_work() as s:
        setup_loyalty(s)
        return create_customer(
            s, CustomerCreateInput(first_name="Lan", last_name="Trần", email="lan@example.vn")
        ).id


def account(api: TestClient, customer_id: str) -> dict[str, Any]:
    r = api.get(f"{API}/accounts/{customer_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_new_account_reads_as_zeros(api: TestClient, customer_id: str) -> None:
    body = account(api, customer_id)
    assert {k: body[k] for k in ("available", "pending", "debt", "lifetime_earned", "tier", "enrolled")} == {
        "available": 0,
        "pending": 0,
        "debt": 0,
        "lifetime_earned": 0,
        "tier": None,
        "enrolled": True,
    }
    missing = api.get(f"{API}/accounts/00000000-0000-0000-0000-000000000000")
    assert (missing.status_code, missing.headers["content-type"], missing.json()["code"]) == (
        404,
        PROBLEM,
        "customer_not_found",
    )


def test_adjustments_are_idempotent_and_audited(api: TestClient, customer_id: str) -> None:
    url = f"{API}/accounts/{customer_id}/adjustments"
    first = api.post(url, json={"points": 120, "reason": "goodwill"}, headers={"Idempotency-Key": "adj-1"})
    assert first.status_code == 201, first.text
    again = api.post(url, json={"points": 120, "reason": "goodwill"}, headers={"Idempotency-Key": "adj-1"})
    assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert account(api, customer_id)["available"] == 120
    assert (first.json()["kind"], first.json()["points"]) == ("adjust", 120)
    audit = api.get("/api/v1/audit", params={"entity_type": "loyalty_account"})
    if audit.status_code == 200:
        assert any(e["action"] == "loyalty.points_adjusted" for e in audit.json()["items"])
    negative = api.post(url, json={"points": -500, "reason": "correction"})
    assert (negative.status_code, negative.headers["content-type"]) == (409, PROBLEM)
    assert negative.json()["code"] == "insufficient_points"
    assert account(api, customer_id)["available"] == 120


@pytest.mark.parametrize("points", ["5", True, 1.5, 0, None])
def test_points_are_strict_integers(api: TestClient, customer_id: str, points: object) -> None:
    r = api.post(f"{API}/accounts/{customer_id}/adjustments", json={"points": points, "reason": "x"})
    assert (r.status_code, r.headers["content-type"]) == (422, PROBLEM), r.text
    r = api.post(f"{API}/accounts/{customer_id}/redemptions", json={"points": points})
    assert r.status_code == 422, r.text
    assert account(api, customer_id)["available"] == 0


def test_pay_with_points(api: TestClient, customer_id: str) -> None:
    api.post(f"{API}/accounts/{customer_id}/adjustments", json={"points": 100, "reason": "goodwill"})
    url = f"{API}/accounts/{customer_id}/redemptions"
    spent = api.post(url, json={"points": 30, "market": "VN"}, headers={"Idempotency-Key": "pay-1"})
    assert spent.status_code == 201, spent.text
    body = spent.json()
    assert {k: body[k] for k in ("points", "status", "value", "currency")} == {
        "points": 30,
        "status": "captured",
        "value": "3000",
        "currency": "VND",
    }
    assert (
        api.post(url, json={"points": 30, "market": "VN"}, headers={"Idempotency-Key": "pay-1"}).json()["id"]
        == (body["id"])
    )
    held = api.post(url, json={"points": 50, "hold": True}).json()
    assert held["status"] == "held"
    assert {k: account(api, customer_id)[k] for k in ("available", "held")} == {"available": 20, "held": 50}
    short = api.post(url, json={"points": 21})
    assert (short.status_code, short.json()["code"]) == (409, "insufficient_points")
    released = api.post(f"{API}/redemptions/{held['id']}/release")
    assert (released.status_code, released.json()["status"]) == (200, "released")
    again = api.post(f"{API}/redemptions/{held['id']}/capture")
    assert (again.status_code, again.json()["code"]) == (409, "invalid_redemption_state")
    assert {k: account(api, customer_id)[k] for k in ("available", "held", "lifetime_redeemed")} == {
        "available": 70,
        "held": 0,
        "lifetime_redeemed": 30,
    }
    listed = api.get(f"{API}/accounts/{customer_id}/redemptions").json()["items"]
    assert [(r["points"], r["status"]) for r in listed] == [(50, "released"), (30, "captured")]
    ledger = api.get(f"{API}/accounts/{customer_id}/ledger").json()["items"]
    assert [(e["kind"], e["points"], e["held"]) for e in ledger] == [
        ("release", 50, -50),
        ("hold", -50, 50),
        ("redeem", -30, 0),
        ("adjust", 100, 0),
    ]
    assert api.get(f"{API}/reconciliation").json() == {"ok": True, "accounts": 1, "drift": []}


def test_events_pay_bonuses_once(api: TestClient, customer_id: str) -> None:
    rule = api.post(
        f"{API}/rules",
        json={
            "name": "Sign-up",
            "kind": "bonus",
            "event_type": "signup",
            "points": 100,
            "limit_per_customer": 1,
        },
    )
    assert rule.status_code == 201, rule.text
    event = {"customer_id": customer_id, "type": "signup", "occurred_at": "2026-03-15T10:00:00+07:00"}
    first = api.post(f"{API}/events", json=event)
    assert (first.status_code, first.json()["points"], first.json()["status"]) == (201, 100, "credited")
    second = api.post(f"{API}/events", json=event)  # the same event reported again by another system
    assert (second.json()["points"], second.json()["replayed"]) == (100, True)
    other = api.post(f"{API}/events", json={**event, "occurred_at": "2026-03-16T10:00:00+07:00"})
    assert (other.json()["points"], other.json()["explanation"][0]["code"]) == (0, "limit_reached")
    assert account(api, customer_id)["available"] == 100
    bad = api.post(f"{API}/events", json={**event, "occurred_at": "2026-03-16T10:00:00"})
    assert bad.status_code == 422


def test_simulate_explains_an_order(api: TestClient, customer_id: str) -> None:
    api.post(
        f"{API}/rules",
        json={
            "name": "Tea x3",
            "kind": "multiplier",
            "multiplier": "3",
            "conditions": {"categories": ["tea"]},
        },
    )
    r = api.post(
        f"{API}/simulate",
        json={
            "order": {
                "currency": "VND",
                "market": "VN",
                "placed_at": "2026-03-15T10:00:00+07:00",
                "lines": [
                    {"sku": "TEA-1", "category": "tea", "quantity": 1, "total": "100000"},
                    {"sku": "CUP-1", "category": "cups", "quantity": 1, "total": "55000"},
                ],
            }
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["points"], body["status"], body["lines"]) == (35, "simulated", {"line-1": 30, "line-2": 5})
    assert [e["code"] for e in body["explanation"]] == ["base_rate", "multiplier"]
    assert account(api, customer_id)["available"] == 0
    neither = api.post(f"{API}/simulate", json={})
    assert (neither.status_code, neither.json()["code"]) == (422, "invalid_simulation")
    unknown = api.post(f"{API}/simulate", json={"order": {"currency": "USD", "lines": [{"total": "1"}]}})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "loyalty_market_not_configured")


def test_programme_markets_and_rules_settings(api: TestClient, customer_id: str) -> None:
    got = api.get(f"{API}/programme")
    assert got.json()["pending_days"] == 14
    stale = api.patch(f"{API}/programme", json={"pending_days": 7}, headers={"If-Match": 'W/"nope"'})
    assert (stale.status_code, stale.json()["code"]) == (412, "etag_mismatch")
    ok = api.patch(f"{API}/programme", json={"pending_days": 7}, headers={"If-Match": got.headers["ETag"]})
    assert (ok.status_code, ok.json()["pending_days"]) == (200, 7)
    markets = api.get(f"{API}/markets").json()["items"]
    assert [(m["market_code"], m["earn_spend_amount"], m["point_value_amount"]) for m in markets] == [
        ("HU", "100", "1"),
        ("TH", "10", "0.1"),
        ("VN", "10000", "100"),
    ]
    put = api.put(
        f"{API}/markets/TH", json={"earn_spend_amount": "20", "point_value_amount": "0.2", "cap_per_day": 500}
    )
    assert (put.status_code, put.json()["cap_per_day"], put.json()["currency"]) == (200, 500, "THB")
    assert (
        api.put(f"{API}/markets/XX", json={"earn_spend_amount": "1", "point_value_amount": "1"}).status_code
        == 404
    )
    rule = api.post(f"{API}/rules", json={"name": "Double", "kind": "multiplier", "multiplier": "2"}).json()
    bad = api.post(f"{API}/rules", json={"name": "Bonus", "kind": "bonus", "points": 5})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_rule")
    etag = api.get(f"{API}/rules/{rule['id']}").headers["ETag"]
    changed = api.put(
        f"{API}/rules/{rule['id']}",
        json={"name": "Triple", "kind": "multiplier", "multiplier": "3"},
        headers={"If-Match": etag},
    )
    assert (changed.status_code, changed.json()["multiplier"]) == (200, "3")
    assert api.delete(f"{API}/rules/{rule['id']}").status_code == 204
    assert api.get(f"{API}/rules/{rule['id']}").status_code == 404


def test_roles(client: TestClient, tokens: Tokens, customer_id: str) -> None:
    agent = tokens.headers(Role.AGENT)
    assert client.get(f"{API}/accounts/{customer_id}", headers=agent).status_code == 200
    r = client.post(
        f"{API}/accounts/{customer_id}/adjustments", json={"points": 5, "reason": "x"}, headers=agent
    )
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    marketer = tokens.headers(Role.MARKETER)
    r = client.post(
        f"{API}/accounts/{customer_id}/adjustments", json={"points": 5, "reason": "x"}, headers=marketer
    )
    assert r.status_code == 201


def test_an_order_posted_over_http_is_credited_end_to_end(
    api: TestClient, customer_id: str, database: Database
) -> None:
    api.patch(f"{API}/programme", json={"pending_days": 0})
    order = api.post(
        "/api/v1/orders",
        json={
            "customer_id": customer_id,
            "currency": "VND",
            "market": "VN",
            "placed_at": "2026-03-10T09:00:00+07:00",
            "lines": [{"sku": "TEA-1", "quantity": 2, "unit_price": "55000"}],
        },
    )
    assert order.status_code == 201, order.text
    assert account(api, customer_id)["available"] == 0
    drain(database)
    body = account(api, customer_id)
    assert (body["available"], body["pending"]) == (0, 11)  # 110,000 VND → 11 points, pending
    assert api.post(f"/api/v1/orders/{order.json()['id']}/fulfil").status_code == 200
    drain(database)
    body = account(api, customer_id)
    assert (body["available"], body["pending"], body["lifetime_earned"]) == (11, 0, 11)
    refund = api.post(
        f"/api/v1/orders/{order.json()['id']}/refunds",
        json={"lines": [{"line_id": order.json()["lines"][0]["id"], "quantity": 1}]},
    )
    assert refund.status_code == 201, refund.text
    drain(database)
    assert account(api, customer_id)["available"] == 5  # keeps floor(11 × 1/2) = 5


def test_tiers_over_http(api: TestClient, customer_id: str) -> None:
    gold = {
        "code": "gold",
        "rank": 2,
        "threshold": "500",
        "multiplier": "1.5",
        "names": {"en": "Gold", "vi": "Vàng", "hu": "Arany", "th": "ทอง"},
        "perks": ["free shipping"],
    }
    created = api.post(f"{API}/tiers", json=gold)
    assert created.status_code == 201, created.text
    assert (created.json()["threshold"], created.json()["multiplier"]) == ("500", "1.5")
    assert api.post(f"{API}/tiers", json=gold).json()["code"] == "duplicate_tier"
    silver = {"code": "silver", "rank": 1, "threshold": "100", "names": {"en": "Silver"}}
    assert api.post(f"{API}/tiers", json=silver).status_code == 201
    assert [t["code"] for t in api.get(f"{API}/tiers").json()["items"]] == ["silver", "gold"]
    bad = api.post(f"{API}/tiers", json={**silver, "code": "Bad Code", "rank": 3})
    assert bad.status_code == 422
    api.post(f"{API}/rules", json={"name": "Review", "kind": "bonus", "event_type": "review", "points": 150})
    api.post(
        f"{API}/events",
        json={"customer_id": customer_id, "type": "review", "occurred_at": "2026-03-15T10:00:00+07:00"},
    )
    body = account(api, customer_id)
    assert body["tier"] == {"code": "silver", "name": "Silver"}
    progress = body["tier_progress"]
    assert (progress["basis"], progress["value"], progress["next"], progress["remaining"]) == (
        "points",
        "150",
        {"code": "gold", "name": "Gold"},
        "350",
    )
    etag = api.get(f"{API}/tiers/gold").headers["ETag"]
    changed = api.put(
        f"{API}/tiers/gold",
        json={**{k: v for k, v in gold.items() if k != "code"}, "threshold": "140"},
        headers={"If-Match": etag},
    )
    assert changed.status_code == 200, changed.text
    assert api.delete(f"{API}/tiers/silver").status_code == 204
    assert account(api, customer_id)["tier"] == {"code": "gold", "name": "Gold"}


def test_rewards_redemption_and_member_lookup_over_http(api: TestClient, customer_id: str) -> None:
    created = api.post(
        f"{API}/rewards",
        json={
            "kind": "discount_fixed",
            "cost_points": 100,
            "value_amount": "50000",
            "currency": "VND",
            "names": {"en": "Voucher", "vi": "Phiếu giảm giá"},
            "stock": 1,
        },
    )
    assert created.status_code == 201, created.text
    reward = created.json()
    assert (reward["name"], reward["value_amount"], reward["stock"]) == ("Voucher", "50000", 1)
    api.post(f"{API}/accounts/{customer_id}/adjustments", json={"points": 250, "reason": "opening"})
    url = f"{API}/accounts/{customer_id}/redemptions"
    both = api.post(url, json={"points": 5, "reward_id": reward["id"]})
    assert (both.status_code, both.json()["code"]) == (422, "invalid_redemption")
    redeemed = api.post(url, json={"reward_id": reward["id"]}, headers={"Idempotency-Key": "rw-1"})
    assert redeemed.status_code == 201, redeemed.text
    body = redeemed.json()
    assert {k: body[k] for k in ("points", "status", "value", "currency", "fulfilment_status", "kind")} == {
        "points": 100,
        "status": "captured",
        "value": "50000",
        "currency": "VND",
        "fulfilment_status": "pending",
        "kind": "reward",
    }
    assert len(body["code"]) == 14
    again = api.post(url, json={"reward_id": reward["id"]})
    assert again.status_code == 409, again.text
    assert (again.json()["code"], again.json()["reason"]) == ("reward_unavailable", "out_of_stock")
    short = api.post(url, json={"points": 151})
    assert (short.status_code, short.json()["code"]) == (409, "insufficient_points")
    cancelled = api.post(f"{API}/redemptions/{body['id']}/cancel", json={"reason": "wrong size"})
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert account(api, customer_id)["available"] == 250
    assert api.get(f"{API}/rewards/{reward['id']}").json()["stock"] == 1
    redeemed = api.post(url, json={"reward_id": reward["id"]}).json()
    fulfilled = api.post(f"{API}/redemptions/{redeemed['id']}/fulfil")
    assert fulfilled.json()["fulfilment_status"] == "fulfilled"
    assert (
        api.post(f"{API}/redemptions/{redeemed['id']}/cancel", json={}).json()["code"]
        == "invalid_redemption_state"
    )

    card = account(api, customer_id)["card_number"]
    found = api.get(f"{API}/members", params={"card": card})
    assert (found.status_code, found.json()["customer_id"]) == (200, customer_id)
    assert api.get(f"{API}/members", params={"email": "LAN@example.vn"}).json()["customer_id"] == customer_id
    missing = api.get(f"{API}/members", params={"email": "nobody@example.vn"})
    assert (missing.status_code, missing.json()["code"]) == (404, "member_not_found")
    assert api.get(f"{API}/members").json()["code"] == "missing_lookup"


def test_coupons_over_http(api: TestClient, customer_id: str) -> None:
    created = api.post(
        f"{API}/promotions",
        json={
            "name": "Tết",
            "discount_kind": "percent",
            "percent": "15",
            "min_spend": {"VND": "100000"},
            "usage": "multi_use",
            "limit_per_customer": 1,
        },
    )
    assert created.status_code == 201, created.text
    promotion = created.json()
    assert (promotion["percent"], promotion["min_spend"]) == ("15", {"VND": "100000"})
    generated = api.post(f"{API}/promotions/{promotion['id']}/codes", json={"count": 3, "prefix": "TET"})
    assert (generated.status_code, generated.json()["generated"]) == (201, 3)
    code = generated.json()["codes"][0]
    order = {"code": code, "customer_id": customer_id, "order_total": "250000", "currency": "VND"}
    valid = api.post("/api/v1/coupons/validate", json=order)
    assert valid.json() == {
        "valid": True,
        "reason": None,
        "discount": {"type": "percent", "percent": "15", "amount": "37500", "currency": "VND"},
    }
    low = api.post("/api/v1/coupons/validate", json={**order, "order_total": "99999"})
    assert low.json() == {"valid": False, "reason": "min_spend_not_met", "discount": None}
    redeemed = api.post("/api/v1/coupons/redeem", json=order, headers={"Idempotency-Key": "o-1"})
    assert redeemed.status_code == 201, redeemed.text
    replay = api.post("/api/v1/coupons/redeem", json=order, headers={"Idempotency-Key": "o-1"})
    assert (replay.status_code, replay.json()["id"]) == (201, redeemed.json()["id"])
    refused = api.post("/api/v1/coupons/redeem", json=order, headers={"Idempotency-Key": "o-2"})
    assert (refused.status_code, refused.headers["content-type"], refused.json()["code"]) == (
        409,
        PROBLEM,
        "customer_limit_reached",
    )
    float_total = api.post("/api/v1/coupons/validate", json={**order, "order_total": 250000})
    assert float_total.status_code == 422
    listed = api.get(f"{API}/promotions/{promotion['id']}/codes").json()["items"]
    assert sorted((c["code"], c["redemptions"]) for c in listed)[0][0].startswith("TET-")
    exported = api.get(f"{API}/promotions/{promotion['id']}/codes.csv")
    assert exported.status_code == 200
    assert exported.text.splitlines()[0] == "code,redemptions,customer_id"
    assert len(exported.text.splitlines()) == 4


def test_referrals_over_http(api: TestClient, customer_id: str, database: Database) -> None:
    patched = api.patch(
        f"{API}/programme",
        json={"referral_referrer_points": 300, "referral_trigger": "signup", "referral_cap": 5},
    )
    assert (patched.status_code, patched.json()["referral_cap"]) == (200, 5)
    assert api.patch(f"{API}/programme", json={"referral_cap": None}).json()["referral_cap"] is None
    code = api.post(f"{API}/accounts/{customer_id}/referral-code")
    assert code.status_code == 200, code.text
    body = code.json()
    assert body["link"] == f"/r/{body['code']}"
    friend = api.post(
        "/api/v1/customers",
        json={
            "first_name": "Mai",
            "last_name": "Lê",
            "email": "mai@example.vn",
            "referral_code": body["code"],
        },
    )
    assert friend.status_code == 201, friend.text
    drain(database)
    again = api.post(f"{API}/accounts/{customer_id}/referral-code").json()
    assert (again["code"], again["converted"]) == (body["code"], 1)
    assert account(api, customer_id)["available"] == 300
    stats = api.get(
        f"{API}/referrals/stats", params={"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
    )
    assert stats.json() == {"pending": 0, "converted": 1, "rejected": 0}


def test_liability_over_http(api: TestClient, customer_id: str) -> None:
    api.post(f"{API}/accounts/{customer_id}/adjustments", json={"points": 5, "reason": "x"})
    body = api.get(f"{API}/liability").json()
    assert (body["total_points"], body["markets"], body["breakage_rate"]) == (
        5,
        [{"market": None, "currency": None, "points": 5, "value": None, "reporting_value": None}],
        None,
    )


def test_validation_only_reads(api: TestClient, customer_id: str, database: Database) -> None:
    """``POST /coupons/validate`` and ``/loyalty/simulate`` are reads with a body: no write lock (on
    SQLite they answer while another connection holds it), and an Idempotency-Key stores nothing."""
    from sqlalchemy import func, select

    from patron.core.idempotency import IdempotencyRecord

    promotion = api.post(
        f"{API}/promotions",
        json={"name": "Read only", "discount_kind": "percent", "percent": "10", "usage": "multi_use"},
    ).json()
    code = api.post(f"{API}/promotions/{promotion['id']}/codes", json={"count": 1}).json()["codes"][0]
    order = {"code": code, "customer_id": customer_id, "order_total": "250000", "currency": "VND"}
    simulated = {"customer_id": customer_id, "event": {"type": "signup"}}
    with database.unit_of_work(write=False) as s:
        stored_before = s.scalar(select(func.count()).select_from(IdempotencyRecord))
    holder = database.engine.connect().execution_options(patron_write=True)
    holder.begin()  # on SQLite BEGIN IMMEDIATE: another writer holds the one write lock
    try:
        valid = api.post("/api/v1/coupons/validate", json=order, headers={"Idempotency-Key": "v-1"})
        assert (valid.status_code, valid.json()["valid"]) == (200, True)
        assert "Idempotent-Replayed" not in valid.headers
        again = api.post("/api/v1/coupons/validate", json=order, headers={"Idempotency-Key": "v-1"})
        assert "Idempotent-Replayed" not in again.headers
        sim = api.post(f"{API}/simulate", json=simulated, headers={"Idempotency-Key": "s-1"})
        assert sim.status_code == 200, sim.text
    finally:
        holder.rollback()
        holder.close()
    with database.unit_of_work(write=False) as s:
        assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == stored_before
