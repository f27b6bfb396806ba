"""Analytics runs scoped to a market or a segment, and the referral rate from loyalty's referrals.

A market run analyses the orders placed in that market only; a segment run the orders of the
segment's members when the run starts; both are compared with the same analysis of a CSV holding
exactly those orders (hand-made data), and neither touches the customers' traits."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from patron.analytics import AnalyzeOptions, Columns
from patron.analytics.runner import file_loader, run
from patron.analytics.runs import (
    RunOptions,
    create_run,
    execute_run,
    get_run,
    latest_completed_run,
    latest_market_runs,
    list_runs,
    scope_key,
    start_run,
)
from patron.analytics.traits import analytics_traits
from patron.commerce import place_order, prepare_order
from patron.core.business import create_market, list_markets, set_fx_rate, update_business
from patron.core.db import Database
from patron.core.errors import Conflict, ValidationFailed
from patron.core.outbox import drain
from patron.customers import CustomerCreateInput, create_customer, create_segment
from patron.loyalty import referral_code_for

START = date(2025, 1, 6)


def _order(session: Any, customer_id: str, day: int, amount: str, currency: str, market: str) -> None:
    placed = datetime.combine(START + timedelta(days=day), datetime.min.time(), tzinfo=UTC)
    place_order(
        session,
        prepare_order(
            {
                "customer_id": customer_id,
                "currency": currency,
                "market": market,
                "placed_at": (placed + timedelta(hours=10)).isoformat(),
                "lines": [{"sku": "TEA", "name": "Tea", "quantity": 1, "unit_price": amount}],
            }
        ),
        emit_events=False,
    )


def seed_markets(database: Database) -> dict[str, Any]:
    """Two markets: VN orders in VND (1 EUR = 25,000 VND), HU orders in EUR; the reporting currency is
    EUR. Customer ``both`` buys in both markets. Returns the ids and the expected EUR rows per market."""
    with database.unit_of_work() as session:
        update_business(session, reporting_currency="EUR", time_zone="UTC")
        create_market(
            session, code="VN", name="Vietnam", country="VN", currency="VND", locale="vi", time_zone="UTC"
        )
        create_market(
            session, code="HU", name="Hungary", country="HU", currency="EUR", locale="hu", time_zone="UTC"
        )
        set_fx_rate(session, base="EUR", quote="VND", valid_on=date(2024, 1, 1), rate=Decimal(25000))
        ids: dict[str, str] = {}
        for name in ("an", "binh", "chi", "anna", "bela", "both"):
            ids[name] = create_customer(
                session, CustomerCreateInput(first_name=name, last_name="Test", email=f"{name}@example.com")
            ).id
        plan = [
            # (customer, day, amount, currency, market)
            ("an", 0, "250000", "VND", "VN"),
            ("an", 30, "500000", "VND", "VN"),
            ("binh", 10, "125000", "VND", "VN"),
            ("chi", 40, "1000000", "VND", "VN"),
            ("chi", 41, "250000", "VND", "VN"),
            ("chi", 90, "250000", "VND", "VN"),
            ("anna", 5, "20.00", "EUR", "HU"),
            ("bela", 15, "7.50", "EUR", "HU"),
            ("bela", 60, "12.50", "EUR", "HU"),
            ("both", 20, "50000", "VND", "VN"),
            ("both", 70, "30.00", "EUR", "HU"),
        ]
        rows: dict[str, list[tuple[str, str, str, str]]] = {"VN": [], "HU": []}
        for n, (who, day, amount, currency, market) in enumerate(plan):
            _order(session, ids[who], day, amount, currency, market)
            eur = Decimal(amount) / 25000 if currency == "VND" else Decimal(amount)
            rows[market].append((who, (START + timedelta(days=day)).isoformat(), f"{eur:.4f}", f"o{n}"))
    return {"ids": ids, "rows": rows}


def _csv_results(tmp_path: Path, name: str, rows: list[tuple[str, str, str, str]], **options: Any) -> Any:
    path = tmp_path / f"{name}.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(("customer_id", "date", "amount", "order"))
        writer.writerows(rows)
    sections = options.pop("sections", ("kpis", "cohorts", "rfm"))
    return run(
        file_loader(str(path)),
        AnalyzeOptions(columns=Columns(order="order"), sections=sections, **options),
    )


def test_a_market_run_analyses_that_markets_orders_only(database: Database, tmp_path: Path) -> None:
    seeded = seed_markets(database)
    view = start_run(database, RunOptions(market="VN", sections=("kpis", "cohorts", "rfm")))
    assert view.status == "completed", view.error
    assert (view.scope, view.market, view.segment_id) == ("market:VN", "VN", None)
    with database.unit_of_work(write=False) as session:
        results = get_run(session, view.id).results
    assert results is not None
    # an, binh, chi and both (only its VN order): 4 customers, 7 orders, amounts in EUR
    assert (results["customers"], results["orders"], results["currency"]) == (4, 7, "EUR")
    assert view.options["market"] == "VN"
    assert view.options["publish_traits"] is False
    expected = _csv_results(tmp_path, "vn", seeded["rows"]["VN"])
    # money in the JSON is rounded to the currency's digits
    assert results["kpis"]["average_order_value"] == round(float(expected.kpis["average_order_value"]), 2)
    assert results["kpis"]["average_order_value"] == round(2425000 / 25000 / 7, 2)
    assert results["kpis"]["repeat_purchase_rate"] == pytest.approx(0.5)  # an and chi
    assert results["kpis"]["by_market"] == {
        "VN": {"customers": 4, "orders": 7, "revenue": 97.0, "average_order_value": round(97.0 / 7, 2)}
    }
    assert {k: v["customers"] for k, v in results["rfm"]["segments"].items() if v["customers"]} == {
        k: v["customers"] for k, v in expected.rfm["segments"].items() if v["customers"]
    }
    assert [c["size"] for c in results["cohorts"]] == [c.size for c in expected.cohorts]
    # a scoped run writes no traits
    with database.unit_of_work(write=False) as session:
        assert all(analytics_traits(session, cid) == {} for cid in seeded["ids"].values())
    assert view.traits_published == 0


def test_a_segment_run_takes_the_members_when_it_starts(database: Database, tmp_path: Path) -> None:
    seeded = seed_markets(database)
    ids = seeded["ids"]
    with database.unit_of_work() as session:
        segment = create_segment(
            session,
            name="A-names",
            rules={"type": "field", "field": "given_name", "op": "starts_with", "value": "an"},
        )
        queued = create_run(session, RunOptions(segment_id=segment.id, sections=("kpis", "rfm")))
    assert queued.segment_name == "A-names"
    # membership is evaluated when the run starts, not when it is queued: bela joins now
    with database.unit_of_work() as session:
        from patron.customers import update_customer

        update_customer(session, ids["bela"], {"first_name": "Anbela"})
    done = execute_run(database, queued.id)
    assert done.status == "completed", done.error
    with database.unit_of_work(write=False) as session:
        results = get_run(session, done.id).results
    assert results is not None
    # an (VN, 2 orders), anna (HU, 1), bela (HU, 2): 3 customers, 5 orders
    assert (results["customers"], results["orders"]) == (3, 5)
    assert results["kpis"]["average_order_value"] == (10 + 20 + 20 + 7.5 + 12.5) / 5
    assert done.scope == f"segment:{segment.id}"

    # market and segment together: the members' orders in that market
    both = start_run(database, RunOptions(market="HU", segment_id=segment.id, sections=("kpis",)))
    assert both.status == "completed", both.error
    assert both.scope == f"market:HU/segment:{segment.id}"
    with database.unit_of_work(write=False) as session:
        results = get_run(session, both.id).results
    assert results is not None
    assert (results["customers"], results["orders"]) == (2, 3)


def test_scopes_are_validated_and_run_one_at_a_time_each(database: Database) -> None:
    seed_markets(database)
    with database.unit_of_work() as session:
        with pytest.raises(ValidationFailed) as unknown:
            create_run(session, RunOptions(market="XX"))
        assert unknown.value.code == "invalid_analytics_scope"
        with pytest.raises(ValidationFailed) as no_segment:
            create_run(session, RunOptions(segment_id="00000000-0000-0000-0000-000000000000"))
        assert no_segment.value.code == "invalid_analytics_scope"
        with pytest.raises(ValidationFailed) as traits:
            create_run(session, RunOptions(market="VN", publish_traits=True))
        assert traits.value.code == "invalid_analytics_options"
        whole = create_run(session)
        vn = create_run(session, RunOptions(market="VN"))  # another scope: allowed alongside
        with pytest.raises(Conflict) as busy:
            create_run(session, RunOptions(market="VN"))
        assert busy.value.extra == {"run_id": vn.id}
        hu = create_run(session, RunOptions(market="HU"))
    with database.unit_of_work(write=False) as session:
        assert [r.id for r in list_runs(session, market="VN")] == [vn.id]
        assert [r.id for r in list_runs(session, scope="all")] == [whole.id]
        assert {r.id for r in list_runs(session)} == {whole.id, vn.id, hu.id}
    assert scope_key() == "all"
    assert scope_key("VN", "s1") == "market:VN/segment:s1"


def test_a_market_scope_is_a_market_code_not_its_id(database: Database) -> None:
    """The scope key, the loader's filter and the report all use the market's code: an id is refused
    (422) instead of starting a run that would analyse no orders under a scope no one can find."""
    seed_markets(database)
    with database.unit_of_work() as session:
        vn = next(m for m in list_markets(session) if m.code == "VN")
        with pytest.raises(ValidationFailed) as by_id:
            create_run(session, RunOptions(market=vn.id))
        assert (by_id.value.status, by_id.value.code) == (422, "invalid_analytics_scope")
        assert by_id.value.errors[0]["loc"] == ["market"]
        assert create_run(session, RunOptions(market="VN")).scope == "market:VN"
    with database.unit_of_work(write=False) as session:
        assert [r.scope for r in list_runs(session)] == ["market:VN"]


def test_whole_database_and_market_runs_side_by_side(database: Database) -> None:
    seeded = seed_markets(database)
    whole = start_run(database, RunOptions(sections=("kpis", "rfm")))
    vn = start_run(database, RunOptions(market="VN", sections=("kpis", "rfm")))
    hu = start_run(database, RunOptions(market="HU", sections=("kpis", "rfm")))
    assert (whole.status, vn.status, hu.status) == ("completed", "completed", "completed")
    with database.unit_of_work(write=False) as session:
        latest = latest_completed_run(session)
        markets = latest_market_runs(session)
        traits = analytics_traits(session, seeded["ids"]["an"])
    assert latest is not None
    assert latest.id == whole.id  # the default scope is the whole database
    assert {k: v.id for k, v in markets.items()} == {"HU": hu.id, "VN": vn.id}
    assert markets["HU"].results is not None
    assert markets["HU"].results["customers"] == 3
    assert traits["rfm_segment"]  # the whole-database run published traits
    assert whole.traits_published == 6


def _customers_with_orders(database: Database, n: int) -> list[str]:
    ids: list[str] = []
    with database.unit_of_work() as session:
        update_business(session, reporting_currency="EUR", time_zone="UTC")
        for i in range(n):
            cid = create_customer(
                session, CustomerCreateInput(first_name=f"N{i}", last_name="New", email=f"n{i}@example.com")
            ).id
            ids.append(cid)
    return ids


def _buy(database: Database, ids: list[str]) -> None:
    with database.unit_of_work() as session:
        for i, cid in enumerate(ids):
            _order(session, cid, i, "10.00", "EUR", "")


def test_referral_rate_from_loyaltys_referrals(database: Database) -> None:
    """10 new customers, 3 referred by an existing customer (through the referral code captured at
    creation and attributed by loyalty), 1 self-referral and 1 unknown code that do not count."""
    referrers = _customers_with_orders(database, 2)
    with database.unit_of_work() as session:
        code = referral_code_for(session, referrers[0])
        other = referral_code_for(session, referrers[1])
        referred = [
            create_customer(
                session,
                CustomerCreateInput(
                    first_name=f"R{i}", last_name="Ref", email=f"r{i}@example.com", referral_code=c
                ),
            ).id
            for i, c in enumerate((code, code, other))
        ]
        # same email as the referrer: a self-referral (rejected by loyalty)
        selfish = create_customer(
            session,
            CustomerCreateInput(
                first_name="Self", last_name="Ref", emails=["n0@example.com"], referral_code=code
            ),
            allow_duplicate_email=True,
        ).id
        typo = create_customer(
            session,
            CustomerCreateInput(
                first_name="Typo", last_name="Ref", email="t@example.com", referral_code="NOPE-0"
            ),
        ).id
        plain = [
            create_customer(
                session, CustomerCreateInput(first_name=f"P{i}", last_name="Plain", email=f"p{i}@example.com")
            ).id
            for i in range(3)
        ]
    drain(database)  # customer.created → loyalty attributes the referrals
    _buy(database, [*referrers, *referred, selfish, typo, *plain])
    view = start_run(database, RunOptions(sections=("kpis",), publish_traits=False))
    assert view.status == "completed", view.error
    with database.unit_of_work(write=False) as session:
        results = get_run(session, view.id).results
    assert results is not None
    assert results["customers"] == 10
    assert results["kpis"]["referral_rate"] == pytest.approx(0.3)


def test_referral_rate_is_null_without_referral_data(database: Database) -> None:
    ids = _customers_with_orders(database, 10)
    _buy(database, ids)
    view = start_run(database, RunOptions(sections=("kpis",), publish_traits=False))
    assert view.status == "completed", view.error
    with database.unit_of_work(write=False) as session:
        results = get_run(session, view.id).results
    assert results is not None
    assert results["kpis"]["referral_rate"] is None
    # a referral programme handing out codes, nobody referred yet: 0, not null
    with database.unit_of_work() as session:
        referral_code_for(session, ids[0])
    again = start_run(database, RunOptions(sections=("kpis",), publish_traits=False))
    with database.unit_of_work(write=False) as session:
        results = get_run(session, again.id).results
    assert results is not None
    assert results["kpis"]["referral_rate"] == 0


def test_a_market_run_in_the_markets_own_currency(database: Database) -> None:
    """VN in VND: orders in VND count with their own amounts, an EUR order placed in VN is converted
    with the dated rate (1 EUR = 25,000 VND); the market comparison keeps reporting-currency runs."""
    seeded = seed_markets(database)
    with database.unit_of_work() as session:
        _order(session, seeded["ids"]["binh"], 50, "4.00", "EUR", "VN")  # 100,000 VND
    local = start_run(database, RunOptions(market="VN", currency="market", sections=("kpis", "rfm")))
    assert local.status == "completed", local.error
    with database.unit_of_work(write=False) as session:
        results = get_run(session, local.id).results
        assert latest_market_runs(session) == {}  # not comparable with other markets
    assert results is not None
    assert (results["currency"], local.currency, results["orders"]) == ("VND", "VND", 8)
    assert results["kpis"]["average_order_value"] == round((2425000 + 100000) / 8)  # VND: no decimals
    assert results["kpis"]["by_market"]["VN"]["revenue"] == 2525000
    assert local.options["currency"] == "market"

    reporting = start_run(database, RunOptions(market="VN", sections=("kpis",)))
    with database.unit_of_work(write=False) as session:
        results = get_run(session, reporting.id).results
        assert set(latest_market_runs(session)) == {"VN"}
    assert results is not None
    assert (results["currency"], results["kpis"]["by_market"]["VN"]["revenue"]) == ("EUR", 101.0)
    with database.unit_of_work() as session, pytest.raises(ValidationFailed) as bad:
        create_run(session, RunOptions(currency="market"))  # no market: no market currency
    assert bad.value.errors[0]["loc"] == ["currency"]


def test_a_market_currency_run_converts_other_currencies_by_date(database: Database) -> None:
    """HU (EUR) with THB orders: the rate of each order's day (inverse of EUR→THB); VN (VND) with a
    THB order: no THB↔VND rate, so through the reporting currency (THB → EUR → VND)."""
    seeded = seed_markets(database)
    with database.unit_of_work() as session:
        set_fx_rate(session, base="EUR", quote="THB", valid_on=date(2024, 1, 1), rate=Decimal(40))
        set_fx_rate(session, base="EUR", quote="THB", valid_on=START + timedelta(days=10), rate=Decimal(50))
        _order(session, seeded["ids"]["anna"], 3, "400", "THB", "HU")  # 40 THB/EUR then: 10 EUR
        _order(session, seeded["ids"]["anna"], 20, "500", "THB", "HU")  # 50 THB/EUR then: 10 EUR
        _order(session, seeded["ids"]["an"], 20, "100", "THB", "VN")  # 2 EUR = 50,000 VND
    hu = start_run(database, RunOptions(market="HU", currency="market", sections=("kpis",)))
    vn = start_run(database, RunOptions(market="VN", currency="market", sections=("kpis",)))
    assert (hu.status, vn.status) == ("completed", "completed"), (hu.error, vn.error)
    with database.unit_of_work(write=False) as session:
        hu_results = get_run(session, hu.id).results
        vn_results = get_run(session, vn.id).results
    assert hu_results is not None
    assert vn_results is not None
    assert hu_results["kpis"]["by_market"]["HU"]["revenue"] == 20 + 7.5 + 12.5 + 30 + 10 + 10
    assert vn_results["kpis"]["by_market"]["VN"]["revenue"] == 2425000 + 50000


def test_a_segment_deleted_before_the_run_starts_fails_it(database: Database) -> None:
    from patron.customers import delete_segment

    seed_markets(database)
    with database.unit_of_work() as session:
        segment = create_segment(
            session, name="Gone", rules={"type": "field", "field": "given_name", "op": "eq", "value": "an"}
        )
        queued = create_run(session, RunOptions(segment_id=segment.id, sections=("kpis",)))
    with database.unit_of_work() as session:
        delete_segment(session, segment)
    done = execute_run(database, queued.id)
    assert (done.status, done.error) == (
        "failed",
        f"the segment {segment.id} was deleted before the run started",
    )
    assert (done.segment_name, done.results) == ("Gone", None)
