"""Per-customer analytics results published as customer traits (source ``analytics``), so segments
and journeys can filter on them: ``rfm_segment``, ``p_alive``, ``churn_risk``, ``churn_band``, ``clv``
and ``predicted_purchases`` (expected purchases over the run's horizon).

Probabilities and expected purchases are rounded to 4 decimals, CLV to the reporting currency's
digits. A figure the run could not compute (e.g. no transaction model: too few repeat buyers) removes
the trait rather than leaving last night's value; customers no longer in the analysis (no eligible
orders any more) lose all six traits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from patron.core.money import is_known_currency, quantize
from patron.customers import segment_customer_ids, set_traits_bulk

SOURCE = "analytics"
TRAIT_NAMES: tuple[str, ...] = (
    "rfm_segment",
    "p_alive",
    "churn_risk",
    "churn_band",
    "clv",
    "predicted_purchases",
)
_FOUR = Decimal("0.0001")
_CHUNK = 5000


def _fraction(value: Any) -> Decimal | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return Decimal(repr(number)).quantize(_FOUR)


def _money(value: Any, currency: str | None) -> Decimal | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    amount = Decimal(repr(number))
    if currency and is_known_currency(currency):
        return quantize(amount, currency)
    return amount.quantize(Decimal("0.01"))


def trait_rows(scores: Any, *, currency: str | None) -> Iterator[tuple[str, str, object]]:
    """``(customer_id, trait, value)`` for every scored customer (``None`` removes the trait)."""
    columns = {name: scores.column(name).to_pylist() for name in scores.column_names}
    for i, customer_id in enumerate(columns["customer_id"]):
        cid = str(customer_id)
        yield cid, "rfm_segment", columns["rfm_segment"][i]
        yield cid, "p_alive", _fraction(columns["p_alive"][i])
        yield cid, "churn_risk", _fraction(columns["churn_risk"][i])
        yield cid, "churn_band", columns["churn_band"][i]
        yield cid, "clv", _money(columns["clv"][i], currency)
        yield cid, "predicted_purchases", _fraction(columns["expected_purchases"][i])


def _holders(session: Session) -> set[str]:
    """Customers holding any analytics trait now, test customers included (a customer flagged as a
    test customer since the last run must lose them too)."""
    any_trait = {"type": "or", "rules": [{"type": "trait", "name": n, "op": "exists"} for n in TRAIT_NAMES]}
    test_or_not = {
        "type": "or",
        "rules": [{"type": "field", "field": "is_test", "op": "eq", "value": v} for v in (True, False)],
    }
    rule = {"type": "and", "rules": [any_trait, test_or_not]}
    return set(session.scalars(segment_customer_ids(session, rule)))


def publish_scores(session: Session, scores: Any, *, currency: str | None) -> int:
    """Write the traits of every scored customer (one bulk upsert per chunk, in the caller's
    transaction) and clear them from customers no longer scored. Returns the customers scored."""
    stale = _holders(session)
    rows: list[tuple[str, str, object]] = []
    scored = 0
    for row in trait_rows(scores, currency=currency):
        if row[1] == "rfm_segment":
            scored += 1
            stale.discard(row[0])
        rows.append(row)
        if len(rows) >= _CHUNK * len(TRAIT_NAMES):
            set_traits_bulk(session, rows, source=SOURCE)
            rows = []
    rows.extend(clear_rows(sorted(stale)))
    if rows:
        set_traits_bulk(session, rows, source=SOURCE)
    return scored


def clear_rows(customer_ids: Sequence[str]) -> list[tuple[str, str, object]]:
    return [(cid, name, None) for cid in customer_ids for name in TRAIT_NAMES]


def analytics_traits(session: Session, customer_id: str) -> dict[str, Any]:
    """The analytics traits of one customer (name → value), for tests and the console."""
    from patron.customers import get_traits

    return {
        name: view.value
        for name, view in get_traits(session, customer_id).items()
        if name in TRAIT_NAMES and view.source == SOURCE
    }
