"""Race-safety through HTTP against two uvicorn worker processes (SQLite and PostgreSQL): 50 clients
redeem at once from a balance that covers 10 → exactly 10 succeed, the rest get 409
``insufficient_points``, and the ledger reconciles (no lost update, available never negative)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from patron.auth import Role
from patron.core.db import Database, get_engine
from patron.customers import CustomerCreateInput, create_customer
from patron.loyalty import (
    adjust_points,
    create_promotion,
    generate_coupons,
    get_account,
    iter_coupons,
    reconcile,
)
from patron.loyalty.models import LoyaltyRedemption
from tests.loyalty.conftest import setup_loyalty
from tests.server.conftest import Live
from tests.support import LiveServer, concurrently, create_staff_token, fresh_database_url

pytestmark = pytest.mark.server

CLIENTS = 50
COVERED = 10


@pytest.fixture(scope="module")
def live(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    url = fresh_database_url(template_db, tmp_path_factory.mktemp("loyalty-live"))
    token = create_staff_token(url, Role.OWNER)
    with Database(get_engine(url)).unit_of_work() as s:
        setup_loyalty(s)
    log = tmp_path_factory.mktemp("loyalty-live-log") / "server.log"
    with LiveServer(url, workers=2, log_path=log) as server:
        assert len(server.worker_pids()) == 2, server.log()
        yield Live(server=server, database_url=url, owner_token=token)
        log_text = server.log()
    assert "Traceback" not in log_text, log_text


def _member(live: Live, email: str, points: int) -> str:
    with Database(get_engine(live.database_url)).unit_of_work() as s:
        customer = create_customer(
            s, CustomerCreateInput(first_name="Anna", last_name="Kovács", email=email)
        ).id
        adjust_points(s, customer, points, reason="opening")
    return customer


@pytest.mark.parametrize("hold", [False, True], ids=["redeem", "hold"])
def test_fifty_redemptions_from_a_balance_that_covers_ten(live: Live, hold: bool) -> None:
    customer = _member(live, f"race-{hold}@example.com", COVERED * 3)

    def call(i: int) -> tuple[int, str]:
        with live.client() as client:
            r = client.post(
                f"/api/v1/loyalty/accounts/{customer}/redemptions", json={"points": 3, "hold": hold}
            )
            body = r.json()
            return r.status_code, body["status"] if r.status_code == 201 else body["code"]

    results = concurrently(CLIENTS, call)
    assert sorted(results).count((201, "held" if hold else "captured")) == COVERED, live.server.log()[-3000:]
    assert sorted(results).count((409, "insufficient_points")) == CLIENTS - COVERED, live.server.log()[-3000:]
    db = Database(get_engine(live.database_url))
    with db.unit_of_work(write=False) as s:
        account = get_account(s, customer)
        assert (account.available, account.held, account.lifetime_redeemed) == (
            (0, COVERED * 3, 0) if hold else (0, 0, COVERED * 3)
        )
        count = s.scalar(
            select(func.count())
            .select_from(LoyaltyRedemption)
            .where(LoyaltyRedemption.account_id == account.account_id)
        )
        assert count == COVERED
        assert reconcile(s).ok


def test_one_idempotency_key_sent_by_fifty_clients_redeems_once(live: Live) -> None:
    customer = _member(live, "same-key@example.com", 100)

    def call(i: int) -> tuple[int, str]:
        with live.client() as client:
            r = client.post(
                f"/api/v1/loyalty/accounts/{customer}/redemptions",
                json={"points": 7},
                headers={"Idempotency-Key": "checkout-42"},
            )
            return r.status_code, r.json()["id"]

    results = concurrently(CLIENTS, call)
    assert {status for status, _ in results} == {201}
    assert len({rid for _, rid in results}) == 1
    with Database(get_engine(live.database_url)).unit_of_work(write=False) as s:
        assert get_account(s, customer).available == 93
        assert reconcile(s).ok


def test_a_single_use_coupon_redeemed_by_fifty_clients_succeeds_once(live: Live) -> None:
    with Database(get_engine(live.database_url)).unit_of_work() as s:
        promotion = create_promotion(
            s, {"name": "Race", "discount_kind": "fixed", "amount": "50000", "currency": "VND"}
        )
        (code,) = generate_coupons(s, promotion.id, 1)

    def call(i: int) -> tuple[int, str]:
        with live.client() as client:
            r = client.post(
                "/api/v1/coupons/redeem",
                json={"code": code, "order_total": "300000", "currency": "VND"},
                headers={"Idempotency-Key": f"order-{i}"},
            )
            body = r.json()
            return r.status_code, body["code"]

    results = concurrently(CLIENTS, call)
    assert sorted(results).count((201, code)) == 1, live.server.log()[-3000:]
    assert sorted(results).count((409, "used_up")) == CLIENTS - 1, live.server.log()[-3000:]
    with Database(get_engine(live.database_url)).unit_of_work(write=False) as s:
        assert [r for _, r, _ in iter_coupons(s, promotion.id)] == [1]
