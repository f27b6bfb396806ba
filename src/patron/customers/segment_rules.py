"""Segment rule trees: the JSON format, its validation and value parsing (pure, no I/O).

A rule is a JSON object with a ``type``::

    {"type": "and", "rules": [<rule>, ...]}            every child matches ([] matches everyone)
    {"type": "or", "rules": [<rule>, ...]}             at least one child matches ([] matches nobody)
    {"type": "not", "rule": <rule>}                    the child does not match
    {"type": "field", "field": "country", "op": "in", "value": ["VN", "TH"]}
    {"type": "tag", "op": "has_any", "value": ["vip", "wholesale"]}
    {"type": "trait", "name": "total_spent", "op": "gte", "value": 1000000}
    {"type": "consent", "purpose": "marketing", "channel": "email"}
    {"type": "organisation", "field": "industry", "op": "eq", "value": "retail"}

Every leaf is two-valued (a missing value never makes ``not`` misbehave): ``ne`` is exactly
``not eq`` and ``not_in`` exactly ``not in``, so a customer without a country matches
``country ne "VN"``. Relative dates (``within_last_days``, ``older_than_days``) take a whole number of
days counted back from now. Compilation to SQL lives in :mod:`patron.customers.segments`.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from patron.core.errors import ValidationFailed

MAX_DEPTH = 12
MAX_NODES = 500
MAX_LIST = 1000
MAX_STRING = 500
MAX_DAYS = 36_500
MAX_ABS_NUMBER = Decimal("1e18")

ValueKind = Literal["string", "integer", "boolean", "date", "datetime"]

#: Customer columns a ``field`` rule can test, with their kind.
CUSTOMER_FIELDS: dict[str, ValueKind] = {
    "birthday": "date",
    "birthday_day": "integer",
    "birthday_month": "integer",
    "country": "string",
    "created_at": "datetime",
    "email": "string",
    "external_id": "string",
    "family_name": "string",
    "given_name": "string",
    "is_test": "boolean",
    "language": "string",
    "organisation_id": "string",
    "organisation_role": "string",
    "phone": "string",
    "preferred_channel": "string",
    "referral_code": "string",
    "time_zone": "string",
    "updated_at": "datetime",
}

#: Organisation columns an ``organisation`` rule can test.
ORGANISATION_FIELDS: dict[str, ValueKind] = {
    "account_owner_id": "string",
    "country": "string",
    "external_id": "string",
    "id": "string",
    "industry": "string",
    "name": "string",
    "size": "string",
}

INTEGER_RANGES: dict[str, tuple[int, int]] = {"birthday_month": (1, 12), "birthday_day": (1, 31)}

CONSENT_PURPOSES = ("marketing", "profiling", "transactional")
CONSENT_CHANNELS = ("email", "line", "phone", "push", "sms", "zalo")

ScalarOp = Literal["eq", "ne", "gt", "gte", "lt", "lte"]
ListOp = Literal["in", "not_in"]
PresenceOp = Literal["exists", "not_exists"]
RelativeOp = Literal["within_last_days", "older_than_days"]
TextOp = Literal["contains", "starts_with"]
ComparisonOp = Literal[ScalarOp, ListOp, PresenceOp, RelativeOp, TextOp, "between"]

OPS_BY_KIND: dict[ValueKind, frozenset[str]] = {
    "string": frozenset({"eq", "ne", "in", "not_in", "exists", "not_exists", "contains", "starts_with"}),
    "integer": frozenset(
        {"eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists", "not_exists"}
    ),
    "boolean": frozenset({"eq", "ne"}),
    "date": frozenset(
        {
            "eq",
            "ne",
            "gt",
            "gte",
            "lt",
            "lte",
            "between",
            "exists",
            "not_exists",
            "within_last_days",
            "older_than_days",
        }
    ),
    "datetime": frozenset(
        {"gt", "gte", "lt", "lte", "between", "exists", "not_exists", "within_last_days", "older_than_days"}
    ),
}

TRAIT_OPS = frozenset(
    {
        "eq",
        "ne",
        "gt",
        "gte",
        "lt",
        "lte",
        "between",
        "in",
        "not_in",
        "exists",
        "not_exists",
        "within_last_days",
        "older_than_days",
    }
)

TAG_OPS = ("has", "has_any", "has_all")


# --------------------------------------------------------------------------------------------- values


def _check_string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    if len(value) > MAX_STRING:
        raise ValueError(f"string longer than {MAX_STRING} characters")
    if "\x00" in value:
        raise ValueError("string contains a NUL character")
    return value


def parse_number(value: Any) -> Decimal:
    """A JSON number (never a boolean) as a Decimal within ±1e18."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("expected a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("expected a finite number")
    number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if abs(number) >= MAX_ABS_NUMBER:
        raise ValueError("number out of range")
    return number


def parse_datetime(value: Any) -> datetime:
    """An ISO 8601 datetime with an offset, or a date (midnight UTC)."""
    text = _check_string(value)
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError("expected an ISO 8601 date or datetime") from exc
    if parsed.tzinfo is None:
        raise ValueError("a datetime needs a UTC offset, e.g. 2026-03-15T10:00:00+07:00")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("datetime out of range") from exc


def parse_date(value: Any) -> date:
    text = _check_string(value)
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError("expected an ISO 8601 date (YYYY-MM-DD)") from exc


def parse_scalar(kind: ValueKind, value: Any, *, field: str = "") -> Any:
    if kind == "string":
        return _check_string(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("expected a whole number")
        low, high = INTEGER_RANGES.get(field, (-(2**31), 2**31 - 1))
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value
    if kind == "date":
        return parse_date(value)
    return parse_datetime(value)


def parse_days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
        raise ValueError(f"expected a whole number of days from 0 to {MAX_DAYS}")
    return value


def _check_list(value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list")
    if len(value) > MAX_LIST:
        raise ValueError(f"at most {MAX_LIST} values")
    return value


def parse_pair(value: Any) -> tuple[Any, Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("'between' expects a list of two values [low, high]")
    return value[0], value[1]


def parse_operand(kind: ValueKind, op: str, value: Any, *, field: str = "") -> Any:
    """The value of a comparison, parsed for ``kind`` and ``op`` (``None`` for presence tests)."""
    if op in ("exists", "not_exists"):
        if value is not None:
            raise ValueError(f"'{op}' takes no value")
        return None
    if op in ("within_last_days", "older_than_days"):
        return parse_days(value)
    if op in ("in", "not_in"):
        return [parse_scalar(kind, v, field=field) for v in _check_list(value)]
    if op == "between":
        low, high = (parse_scalar(kind, v, field=field) for v in parse_pair(value))
        if low > high:
            raise ValueError("'between' expects low <= high")
        return low, high
    if op in ("contains", "starts_with"):
        text = _check_string(value)
        if not text:
            raise ValueError(f"'{op}' needs a non-empty string")
        return text
    return parse_scalar(kind, value, field=field)


def trait_scalar(value: Any) -> Decimal | str | bool:
    """A trait comparison value: numbers compare as numbers, strings as text (ISO dates sort)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _check_string(value)
    return parse_number(value)


def parse_trait_operand(op: str, value: Any) -> Any:
    if op in ("exists", "not_exists"):
        if value is not None:
            raise ValueError(f"'{op}' takes no value")
        return None
    if op in ("within_last_days", "older_than_days"):
        return parse_days(value)
    if op in ("in", "not_in"):
        items = [trait_scalar(v) for v in _check_list(value)]
        if any(isinstance(v, bool) for v in items):
            raise ValueError("'in' takes numbers or strings")
        return items
    if op == "between":
        low, high = (trait_scalar(v) for v in parse_pair(value))
        if isinstance(low, bool) or isinstance(high, bool) or type(low) is not type(high):
            raise ValueError("'between' expects two numbers or two strings")
        if low > high:  # type: ignore[operator]
            raise ValueError("'between' expects low <= high")
        return low, high
    scalar = trait_scalar(value)
    if isinstance(scalar, bool) and op not in ("eq", "ne"):
        raise ValueError(f"'{op}' does not compare true/false")
    return scalar


# ---------------------------------------------------------------------------------------------- nodes


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AndRule(_Node):
    """Every child rule matches (an empty list matches every customer)."""

    type: Literal["and"]
    rules: list[Rule] = Field(default_factory=list, max_length=100)


class OrRule(_Node):
    """At least one child rule matches (an empty list matches nobody)."""

    type: Literal["or"]
    rules: list[Rule] = Field(default_factory=list, max_length=100)


class NotRule(_Node):
    """The child rule does not match."""

    type: Literal["not"]
    rule: Rule


class FieldRule(_Node):
    """A customer column compared with a value."""

    type: Literal["field"]
    field: Literal[
        "birthday",
        "birthday_day",
        "birthday_month",
        "country",
        "created_at",
        "email",
        "external_id",
        "family_name",
        "given_name",
        "is_test",
        "language",
        "organisation_id",
        "organisation_role",
        "phone",
        "preferred_channel",
        "referral_code",
        "time_zone",
        "updated_at",
    ]
    op: ComparisonOp
    value: Any = None

    @model_validator(mode="after")
    def _check(self) -> FieldRule:
        kind = CUSTOMER_FIELDS[self.field]
        if self.op not in OPS_BY_KIND[kind]:
            allowed = ", ".join(sorted(OPS_BY_KIND[kind]))
            raise ValueError(f"operator '{self.op}' does not apply to field '{self.field}' (use {allowed})")
        parse_operand(kind, self.op, self.value, field=self.field)
        return self


class TagRule(_Node):
    """Tags: ``has`` one tag, ``has_any`` of a list, ``has_all`` of a list."""

    type: Literal["tag"]
    op: Literal["has", "has_any", "has_all"]
    value: str | list[str]

    @model_validator(mode="after")
    def _check(self) -> TagRule:
        if self.op == "has":
            if not isinstance(self.value, str):
                raise ValueError("'has' expects one tag (a string)")
            _check_string(self.value)
        else:
            for tag in _check_list(self.value):
                _check_string(tag)
        return self

    @property
    def tags(self) -> list[str]:
        return [self.value] if isinstance(self.value, str) else sorted(set(self.value))


class TraitRule(_Node):
    """A named trait (published by any domain) compared with a value."""

    type: Literal["trait"]
    name: str = Field(min_length=1, max_length=100)
    op: ComparisonOp
    value: Any = None

    @model_validator(mode="after")
    def _check(self) -> TraitRule:
        _check_string(self.name)
        if self.op not in TRAIT_OPS:
            raise ValueError(f"operator '{self.op}' does not apply to traits")
        parse_trait_operand(self.op, self.value)
        return self


class ConsentRule(_Node):
    """Consent in force (granted, latest record, not expired) for a purpose and channel."""

    type: Literal["consent"]
    purpose: Literal["marketing", "profiling", "transactional"]
    channel: Literal["email", "line", "phone", "push", "sms", "zalo"]


class OrganisationRule(_Node):
    """The customer's organisation: ``exists``/``not_exists`` without a field, or a field test."""

    type: Literal["organisation"]
    field: Literal["account_owner_id", "country", "external_id", "id", "industry", "name", "size"] | None = (
        None
    )
    op: ComparisonOp
    value: Any = None

    @model_validator(mode="after")
    def _check(self) -> OrganisationRule:
        if self.field is None:
            if self.op not in ("exists", "not_exists"):
                raise ValueError("without a 'field', an organisation rule takes 'exists' or 'not_exists'")
            if self.value is not None:
                raise ValueError(f"'{self.op}' takes no value")
            return self
        ops = OPS_BY_KIND["string"]
        if self.op not in ops:
            raise ValueError(f"operator '{self.op}' does not apply to organisation field '{self.field}'")
        parse_operand("string", self.op, self.value, field=self.field)
        return self


Rule = Annotated[
    AndRule | OrRule | NotRule | FieldRule | TagRule | TraitRule | ConsentRule | OrganisationRule,
    Field(discriminator="type"),
]

AndRule.model_rebuild()
OrRule.model_rebuild()
NotRule.model_rebuild()

RuleNode = AndRule | OrRule | NotRule | FieldRule | TagRule | TraitRule | ConsentRule | OrganisationRule

_ADAPTER: TypeAdapter[RuleNode] = TypeAdapter(Rule)

MATCH_ALL: dict[str, Any] = {"type": "and", "rules": []}


def _walk(rule: RuleNode, depth: int = 1) -> tuple[int, int]:
    """(node count, depth) of a rule tree."""
    if isinstance(rule, AndRule | OrRule):
        nodes, deepest = 1, depth
        for child in rule.rules:
            n, d = _walk(child, depth + 1)
            nodes, deepest = nodes + n, max(deepest, d)
        return nodes, deepest
    if isinstance(rule, NotRule):
        n, d = _walk(rule.rule, depth + 1)
        return n + 1, d
    return 1, depth


def check_limits(rule: RuleNode) -> RuleNode:
    nodes, depth = _walk(rule)
    if depth > MAX_DEPTH:
        raise ValueError(f"rules nested deeper than {MAX_DEPTH} levels")
    if nodes > MAX_NODES:
        raise ValueError(f"more than {MAX_NODES} rules")
    return rule


def references_field(rule: RuleNode, field: str) -> bool:
    if isinstance(rule, AndRule | OrRule):
        return any(references_field(child, field) for child in rule.rules)
    if isinstance(rule, NotRule):
        return references_field(rule.rule, field)
    return isinstance(rule, FieldRule) and rule.field == field


def parse_rules(data: Any, *, loc: tuple[str | int, ...] = ("rules",)) -> RuleNode:
    """Validate a JSON rule tree; 422 ``invalid_segment_rules`` with each bad node located."""
    try:
        rule = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        errors = [
            {"loc": [*loc, *err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False)
        ]
        raise ValidationFailed("invalid segment rules", code="invalid_segment_rules", errors=errors) from exc
    try:
        return check_limits(rule)
    except ValueError as exc:
        raise ValidationFailed(
            "invalid segment rules",
            code="invalid_segment_rules",
            errors=[{"loc": list(loc), "msg": str(exc), "type": "value_error"}],
        ) from exc


def dump_rules(rule: RuleNode) -> dict[str, Any]:
    """The canonical JSON form stored on the segment."""
    return rule.model_dump(mode="json", exclude_none=True)
