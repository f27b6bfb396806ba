"""Publishing per-customer scores as customer traits: values, rounding, removal, segments over them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from patron.analytics.scores import churn_band
from patron.analytics.traits import SOURCE, TRAIT_NAMES, analytics_traits, publish_scores, trait_rows
from patron.customers import CustomerCreateInput, count_matching, create_customer, get_traits, set_traits


def scores_table(rows: list[dict[str, Any]]) -> pa.Table:
    names = ("customer_id", "rfm_segment", "p_alive", "churn_risk", "churn_band", "clv", "expected_purchases")
    types = (pa.string(), pa.string(), pa.float64(), pa.float64(), pa.string(), pa.float64(), pa.float64())
    return pa.table({n: pa.array([r.get(n) for r in rows], t) for n, t in zip(names, types, strict=True)})


def _customer(session: Any, name: str) -> str:
    return create_customer(
        session, CustomerCreateInput(first_name=name, last_name="T", email=f"{name}@example.com")
    ).id


def test_trait_values_are_rounded_and_missing_figures_remove_the_trait() -> None:
    table = scores_table(
        [
            {
                "customer_id": "a",
                "rfm_segment": "Champions",
                "p_alive": 0.912345678,
                "churn_risk": 0.087654322,
                "churn_band": "low",
                "clv": 1234.5678,
                "expected_purchases": 2.00005,
            },
            # no model: only the RFM segment survives
            {"customer_id": "b", "rfm_segment": "Lost"},
            {
                "customer_id": "c",
                "rfm_segment": "At risk",
                "p_alive": float("nan"),
                "churn_risk": float("nan"),
                "clv": float("inf"),
                "expected_purchases": 0.0,
            },
        ]
    )
    rows = list(trait_rows(table, currency="VND"))
    assert rows == [
        ("a", "rfm_segment", "Champions"),
        ("a", "p_alive", Decimal("0.9123")),
        ("a", "churn_risk", Decimal("0.0877")),
        ("a", "churn_band", "low"),
        ("a", "clv", Decimal("1235")),  # VND has no minor unit
        ("a", "predicted_purchases", Decimal("2.0000")),
        ("b", "rfm_segment", "Lost"),
        ("b", "p_alive", None),
        ("b", "churn_risk", None),
        ("b", "churn_band", None),
        ("b", "clv", None),
        ("b", "predicted_purchases", None),
        ("c", "rfm_segment", "At risk"),
        ("c", "p_alive", None),
        ("c", "churn_risk", None),
        ("c", "churn_band", None),
        ("c", "clv", None),
        ("c", "predicted_purchases", Decimal("0.0000")),
    ]
    eur = {(cid, name): v for cid, name, v in trait_rows(table, currency="EUR")}
    assert eur[("a", "clv")] == Decimal("1234.57")


@given(st.floats(min_value=0.0, max_value=1.0, allow_nan=False))
def test_rounded_probabilities_stay_in_range_and_bands_agree(p_alive: float) -> None:
    risk = 1.0 - p_alive
    table = scores_table(
        [
            {
                "customer_id": "x",
                "rfm_segment": "New",
                "p_alive": p_alive,
                "churn_risk": risk,
                "churn_band": churn_band(risk),
                "clv": 0.0,
                "expected_purchases": 0.0,
            }
        ]
    )
    values = {name: v for _, name, v in trait_rows(table, currency="EUR")}
    assert Decimal(0) <= values["p_alive"] <= Decimal(1)
    assert Decimal(0) <= values["churn_risk"] <= Decimal(1)
    assert abs(values["p_alive"] + values["churn_risk"] - 1) <= Decimal("0.0001")
    assert values["churn_band"] == churn_band(risk)


def test_publish_writes_traits_and_clears_customers_no_longer_scored(session: Any) -> None:
    a, b, c = (_customer(session, n) for n in ("ann", "bob", "cy"))
    set_traits(
        session, c, {"rfm_segment": "Loyal", "clv": Decimal("5.00"), "tier": "gold"}, source="analytics"
    )
    set_traits(session, b, {"tier": "silver"}, source="loyalty")
    table = scores_table(
        [
            {
                "customer_id": a,
                "rfm_segment": "Champions",
                "p_alive": 0.9,
                "churn_risk": 0.1,
                "churn_band": "low",
                "clv": 120.0,
                "expected_purchases": 3.5,
            },
            {
                "customer_id": b,
                "rfm_segment": "At risk",
                "p_alive": 0.25,
                "churn_risk": 0.75,
                "churn_band": "high",
                "clv": 10.0,
                "expected_purchases": 0.2,
            },
        ]
    )
    assert publish_scores(session, table, currency="EUR") == 2
    assert analytics_traits(session, a) == {
        "rfm_segment": "Champions",
        "p_alive": Decimal("0.9"),
        "churn_risk": Decimal("0.1"),
        "churn_band": "low",
        "clv": Decimal("120"),
        "predicted_purchases": Decimal("3.5"),
    }
    assert {n: t.source for n, t in get_traits(session, a).items()} == dict.fromkeys(TRAIT_NAMES, SOURCE)
    # cy is no longer scored: the analytics traits go, other traits stay; bob keeps his loyalty tier
    assert set(get_traits(session, c)) == {"tier"}
    assert get_traits(session, b)["tier"].value == "silver"
    # segments filter on the traits
    at_risk = {"type": "trait", "name": "rfm_segment", "op": "in", "value": ["At risk", "Can't lose them"]}
    assert count_matching(session, at_risk) == 1
    assert count_matching(session, {"type": "trait", "name": "churn_band", "op": "eq", "value": "high"}) == 1
    assert count_matching(session, {"type": "trait", "name": "clv", "op": "gte", "value": 100}) == 1
    assert count_matching(session, {"type": "trait", "name": "p_alive", "op": "exists"}) == 2
