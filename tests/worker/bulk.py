"""A generated shop written straight into the tables (tens of thousands of orders in seconds), for
tests that need an analysis that takes a while: seeded, with repeat buyers, in two markets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import insert

from patron.commerce.models import Order
from patron.core.business import create_market, update_business
from patron.core.db import Database
from patron.core.ids import new_id
from patron.customers.models import Customer

START = date(2024, 1, 1)


def bulk_shop(database: Database, *, customers: int, seed: int = 1, days: int = 600) -> int:
    """``customers`` customers with 1–12 orders each over ``days`` days in markets VN and HU (amounts
    in EUR, the reporting currency). Returns the number of orders."""
    rng = np.random.default_rng(seed)
    with database.unit_of_work() as session:
        update_business(session, reporting_currency="EUR", time_zone="UTC")
        for code, country in (("VN", "VN"), ("HU", "HU")):
            create_market(
                session, code=code, name=code, country=country, currency="EUR", locale="en", time_zone="UTC"
            )
    made = 0
    chunk = 5000
    for lo in range(0, customers, chunk):
        people: list[dict[str, Any]] = []
        orders: list[dict[str, Any]] = []
        for i in range(lo, min(customers, lo + chunk)):
            cid = new_id()
            people.append(
                {
                    "id": cid,
                    "given_name": f"G{i}",
                    "family_name": "Bulk",
                    "email": f"bulk{i}@example.com",
                    "email_folded": f"bulk{i}@example.com",
                    "tags": [],
                    "attributes": {},
                }
            )
            market = "VN" if i % 3 else "HU"
            day = int(rng.integers(0, days // 2))
            for _ in range(int(rng.integers(1, 13))):
                if day >= days:
                    break
                amount = Decimal(str(round(float(rng.gamma(4.0, 8.0)) + 1, 2)))
                placed = datetime.combine(START + timedelta(days=day), datetime.min.time(), tzinfo=UTC)
                orders.append(
                    {
                        "id": new_id(),
                        "customer_id": cid,
                        "market_code": market,
                        "currency": "EUR",
                        "subtotal_amount": amount,
                        "total_amount": amount,
                        "reporting_currency": "EUR",
                        "reporting_fx_rate": Decimal(1),
                        "reporting_net_amount": amount,
                        "placed_at": placed + timedelta(hours=int(rng.integers(8, 20))),
                        "live": False,
                        "source": "import",
                    }
                )
                day += int(rng.integers(5, 120))
        with database.unit_of_work() as session:
            session.execute(insert(Customer), people)
            session.execute(insert(Order), orders)
        made += len(orders)
    return made
