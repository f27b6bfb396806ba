"""Segment rule validation and saved segments (create, update, delete, audit)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from patron.core.audit import AuditEntry
from patron.core.errors import Conflict, ValidationFailed
from patron.customers import (
    create_segment,
    delete_segment,
    get_segment,
    list_segments,
    parse_rules,
    update_segment,
)


def F(field: str, op: str, value: Any = None) -> dict[str, Any]:
    rule = {"type": "field", "field": field, "op": op}
    return rule if value is None else {**rule, "value": value}


def T(name: str, op: str, value: Any = None) -> dict[str, Any]:
    rule = {"type": "trait", "name": name, "op": op}
    return rule if value is None else {**rule, "value": value}


INVALID: list[tuple[dict[str, Any] | Any, list[Any]]] = [
    ({"type": "field", "field": "country", "op": "gt", "value": "VN"}, ["rules", "field"]),
    ({"type": "field", "field": "shoe_size", "op": "eq", "value": 42}, ["rules", "field", "field"]),
    (
        {"type": "and", "rules": [F("country", "eq", "VN"), T("total_spent", "between", [5])]},
        ["rules", "and", "rules", 1, "trait"],
    ),
    (
        {"type": "or", "rules": [{"type": "not", "rule": F("birthday_month", "eq", 13)}]},
        ["rules", "or", "rules", 0, "not", "rule", "field"],
    ),
    ({"type": "tag", "op": "has_all", "value": []}, ["rules", "tag"]),
    ({"type": "consent", "purpose": "marketing", "channel": "fax"}, ["rules", "consent", "channel"]),
    ({"type": "nope"}, ["rules"]),
    (F("created_at", "gt", "2026-01-01T00:00:00"), ["rules", "field"]),
    (F("created_at", "within_last_days", True), ["rules", "field"]),
    (T("total_spent", "gte", "abc\x00"), ["rules", "trait"]),
    (T("newsletter", "gt", True), ["rules", "trait"]),
    (F("country", "exists", "VN"), ["rules", "field"]),
    ({"type": "organisation", "op": "eq", "value": "x"}, ["rules", "organisation"]),
    (
        {"type": "field", "field": "country", "op": "eq", "value": "VN", "extra": 1},
        ["rules", "field", "extra"],
    ),
]


@pytest.mark.parametrize(("rules", "loc"), INVALID)
def test_invalid_rules_name_the_bad_node(rules: Any, loc: list[Any]) -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_rules(rules)
    assert err.value.code == "invalid_segment_rules"
    assert [e["loc"] for e in err.value.errors] == [loc]


def test_rule_trees_are_limited_in_depth() -> None:
    rule: dict[str, Any] = F("country", "eq", "VN")
    for _ in range(12):
        rule = {"type": "not", "rule": rule}
    with pytest.raises(ValidationFailed) as err:
        parse_rules(rule)
    assert err.value.errors[0]["msg"] == "rules nested deeper than 12 levels"


def test_saved_segment_lifecycle_is_audited(session: Session) -> None:
    rules = F("country", "eq", "VN")
    segment = create_segment(session, name="Vietnam", description="VN customers", rules=rules)
    assert segment.rules == {"type": "field", "field": "country", "op": "eq", "value": "VN"}
    with pytest.raises(Conflict) as err:
        create_segment(session, name="Vietnam", rules=rules)
    assert err.value.code == "segment_name_taken"
    create_segment(session, name="Thailand", rules=F("country", "eq", "TH"))
    assert [s.name for s in list_segments(session).items] == ["Thailand", "Vietnam"]
    assert [s.name for s in list_segments(session, q="viet").items] == ["Vietnam"]
    page = list_segments(session, limit=1)
    assert [s.name for s in list_segments(session, cursor=page.next_cursor).items] == ["Vietnam"]
    update_segment(session, segment, rules=F("country", "eq", "HU"))
    assert get_segment(session, segment.id).rules["value"] == "HU"
    delete_segment(session, segment)
    actions = [
        (a.action, a.old_values, a.new_values)
        for a in session.scalars(
            select(AuditEntry).where(AuditEntry.entity_id == segment.id).order_by(AuditEntry.occurred_at)
        )
    ]
    assert [a[0] for a in actions] == ["segment.created", "segment.updated", "segment.deleted"]
    assert actions[1][1] == {"rules": {"type": "field", "field": "country", "op": "eq", "value": "VN"}}
    assert actions[1][2] == {"rules": {"type": "field", "field": "country", "op": "eq", "value": "HU"}}
