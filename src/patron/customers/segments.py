"""Segments: saved rule trees compiled to one SQL condition and evaluated in the database.

:func:`compile_rule` turns a validated rule tree (:mod:`patron.customers.segment_rules`) into a single
SQLAlchemy boolean expression over ``customers``; traits, tags, consent and organisation fields become
correlated ``EXISTS`` subqueries. Tags use ``json_each`` on SQLite and the jsonb ``?``/``?|``/``?&``
operators on PostgreSQL. Erased and merged customers never match; test customers match only when the
rule itself tests ``is_test``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    distinct,
    exists,
    extract,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from patron.core.audit import record_audit
from patron.core.clock import now
from patron.core.errors import Conflict, NotFound, ValidationFailed
from patron.core.pagination import Page, clamp_limit, decode_cursor, encode_cursor
from patron.core.text import fold
from patron.customers.models import ConsentRecord, Customer, Organisation, Segment, Trait
from patron.customers.segment_rules import (
    CUSTOMER_FIELDS,
    AndRule,
    ConsentRule,
    FieldRule,
    NotRule,
    OrganisationRule,
    OrRule,
    RuleNode,
    TagRule,
    TraitRule,
    ValueKind,
    check_limits,
    dump_rules,
    parse_operand,
    parse_rules,
    parse_trait_operand,
    references_field,
)

CountBy = Literal["customer", "organisation"]

_CUSTOMER_COLUMNS: dict[str, Any] = {
    "birthday": Customer.birthday,
    "country": Customer.country,
    "created_at": Customer.created_at,
    "email": Customer.email,
    "external_id": Customer.external_id,
    "family_name": Customer.family_name,
    "given_name": Customer.given_name,
    "is_test": Customer.is_test,
    "language": Customer.language,
    "organisation_id": Customer.organisation_id,
    "organisation_role": Customer.organisation_role,
    "phone": Customer.phone_e164,
    "preferred_channel": Customer.preferred_channel,
    "referral_code": Customer.referral_code,
    "time_zone": Customer.time_zone,
    "updated_at": Customer.updated_at,
}

_ORGANISATION_COLUMNS: dict[str, Any] = {
    "account_owner_id": Organisation.account_owner_id,
    "country": Organisation.country,
    "external_id": Organisation.external_id,
    "id": Organisation.id,
    "industry": Organisation.industry,
    "name": Organisation.name,
    "size": Organisation.size,
}


def _customer_column(field: str) -> Any:
    if field == "birthday_month":
        return extract("month", Customer.birthday)
    if field == "birthday_day":
        return extract("day", Customer.birthday)
    return _CUSTOMER_COLUMNS[field]


def _threshold(kind: ValueKind, at: datetime, days: int) -> date | datetime:
    moment = at - timedelta(days=days)
    return moment.date() if kind == "date" else moment


def _compare(
    column: Any, kind: ValueKind, op: str, operand: Any, at: datetime, folded: Any = None
) -> ColumnElement[bool]:
    """A two-valued comparison (never NULL): a missing value matches only the negative operators."""
    present: ColumnElement[bool] = column.is_not(None)
    if kind == "string":
        present = and_(present, column != "")
    if op == "exists":
        return present
    if op == "not_exists":
        return not_(present)
    if op == "ne":
        return not_(_compare(column, kind, "eq", operand, at, folded))
    if op == "not_in":
        return not_(_compare(column, kind, "in", operand, at, folded))
    condition: ColumnElement[bool]
    if op == "eq":
        condition = column == operand
    elif op == "in":
        condition = column.in_(operand)
    elif op == "gt":
        condition = column > operand
    elif op == "gte":
        condition = column >= operand
    elif op == "lt":
        condition = column < operand
    elif op == "lte":
        condition = column <= operand
    elif op == "between":
        condition = and_(column >= operand[0], column <= operand[1])
    elif op == "within_last_days":
        condition = column >= _threshold(kind, at, operand)
    elif op == "older_than_days":
        condition = column < _threshold(kind, at, operand)
    elif op == "contains":
        condition = (
            folded.contains(fold(operand), autoescape=True)
            if folded is not None
            else func.lower(column).contains(operand.lower(), autoescape=True)
        )
    elif op == "starts_with":
        condition = (
            folded.startswith(fold(operand), autoescape=True)
            if folded is not None
            else func.lower(column).startswith(operand.lower(), autoescape=True)
        )
    else:  # pragma: no cover - the rule model admits no other operator
        raise ValueError(op)
    return and_(present, condition)


def _field(rule: FieldRule, at: datetime) -> ColumnElement[bool]:
    kind = CUSTOMER_FIELDS[rule.field]
    operand = parse_operand(kind, rule.op, rule.value, field=rule.field)
    return _compare(_customer_column(rule.field), kind, rule.op, operand, at)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _trait_condition(op: str, operand: Any, at: datetime) -> ColumnElement[bool]:
    """The condition on one ``traits`` row (numbers against value_number, strings against value_text)."""
    if op == "in":
        numbers = [v for v in operand if isinstance(v, Decimal)]
        texts = [v for v in operand if isinstance(v, str)]
        parts = []
        if numbers:
            parts.append(Trait.value_number.in_(numbers))
        if texts:
            parts.append(Trait.value_text.in_(texts))
        return or_(*parts)
    if op == "within_last_days":
        return Trait.value_text >= _iso(at - timedelta(days=operand))
    if op == "older_than_days":
        return Trait.value_text < _iso(at - timedelta(days=operand))
    if op == "between":
        column = Trait.value_number if isinstance(operand[0], Decimal) else Trait.value_text
        return and_(column >= operand[0], column <= operand[1])
    if isinstance(operand, bool):
        return Trait.value_text == ("true" if operand else "false")
    column = Trait.value_number if isinstance(operand, Decimal) else Trait.value_text
    comparisons: dict[str, ColumnElement[bool]] = {
        "eq": column == operand,
        "gt": column > operand,
        "gte": column >= operand,
        "lt": column < operand,
        "lte": column <= operand,
    }
    return comparisons[op]


def _trait(rule: TraitRule, at: datetime) -> ColumnElement[bool]:
    operand = parse_trait_operand(rule.op, rule.value)
    negate = {"ne": "eq", "not_in": "in", "not_exists": "exists"}
    op = negate.get(rule.op, rule.op)
    query = select(literal(1)).where(Trait.customer_id == Customer.id, Trait.name == rule.name)
    if op != "exists":
        query = query.where(_trait_condition(op, operand, at))
    condition = exists(query.correlate(Customer))
    return not_(condition) if rule.op in negate else condition


def _tag(rule: TagRule, dialect: str) -> ColumnElement[bool]:
    tags = rule.tags
    if dialect == "postgresql":
        column = type_coerce(Customer.tags, JSONB)
        if rule.op == "has":
            expr = column.has_key(tags[0])
        elif rule.op == "has_any":
            expr = column.has_any(array(tags))
        else:
            expr = column.has_all(array(tags))
        return func.coalesce(expr, false())
    each = func.json_each(Customer.tags).table_valued("value")
    if rule.op == "has_all":
        matched = (
            (select(func.count(distinct(each.c.value))).select_from(each).where(each.c.value.in_(tags)))
            .correlate(Customer)
            .scalar_subquery()
        )
        return matched == len(tags)
    return exists(select(literal(1)).select_from(each).where(each.c.value.in_(tags)).correlate(Customer))


def _consent(rule: ConsentRule, at: datetime) -> ColumnElement[bool]:
    """The latest record (by recorded_at, then id) up to ``at`` is a grant that has not expired —
    the same reading as :func:`patron.customers.queries.get_consent`."""
    record = aliased(ConsentRecord)
    later = aliased(ConsentRecord)
    newer = exists(
        select(literal(1)).where(
            later.customer_id == record.customer_id,
            later.purpose == record.purpose,
            later.channel == record.channel,
            later.recorded_at <= at,
            or_(
                later.recorded_at > record.recorded_at,
                and_(later.recorded_at == record.recorded_at, later.id > record.id),
            ),
        )
    )
    return exists(
        select(literal(1))
        .select_from(record)
        .where(
            record.customer_id == Customer.id,
            record.purpose == rule.purpose,
            record.channel == rule.channel,
            record.status == "granted",
            record.recorded_at <= at,
            or_(record.expires_at.is_(None), record.expires_at > at),
            not_(newer),
        )
        .correlate(Customer)
    )


def _organisation(rule: OrganisationRule, at: datetime) -> ColumnElement[bool]:
    if rule.field is None:
        present = Customer.organisation_id.is_not(None)
        return present if rule.op == "exists" else not_(present)
    operand = parse_operand("string", rule.op, rule.value, field=rule.field)
    if rule.field == "id":
        return _compare(Customer.organisation_id, "string", rule.op, operand, at)
    negate = {"ne": "eq", "not_in": "in", "not_exists": "exists"}
    op = negate.get(rule.op, rule.op)
    folded = Organisation.name_folded if rule.field == "name" else None
    condition = exists(
        select(literal(1))
        .where(
            Organisation.id == Customer.organisation_id,
            _compare(_ORGANISATION_COLUMNS[rule.field], "string", op, operand, at, folded),
        )
        .correlate(Customer)
    )
    return not_(condition) if rule.op in negate else condition


def compile_rule(rule: RuleNode, *, dialect: str, at: datetime | None = None) -> ColumnElement[bool]:
    """The rule tree as one boolean SQL expression over ``customers`` (no base exclusions)."""
    at = at or now()
    if isinstance(rule, AndRule):
        return and_(true(), *(compile_rule(child, dialect=dialect, at=at) for child in rule.rules))
    if isinstance(rule, OrRule):
        return or_(false(), *(compile_rule(child, dialect=dialect, at=at) for child in rule.rules))
    if isinstance(rule, NotRule):
        return not_(compile_rule(rule.rule, dialect=dialect, at=at))
    if isinstance(rule, FieldRule):
        return _field(rule, at)
    if isinstance(rule, TagRule):
        return _tag(rule, dialect)
    if isinstance(rule, TraitRule):
        return _trait(rule, at)
    if isinstance(rule, ConsentRule):
        return _consent(rule, at)
    return _organisation(rule, at)


def as_rule(rules: RuleNode | dict[str, Any]) -> RuleNode:
    """A validated rule tree from JSON or an already parsed tree (size limits checked)."""
    if isinstance(rules, dict):
        return parse_rules(rules)
    try:
        return check_limits(rules)
    except ValueError as exc:
        raise ValidationFailed(
            "invalid segment rules",
            code="invalid_segment_rules",
            errors=[{"loc": ["rules"], "msg": str(exc), "type": "value_error"}],
        ) from exc


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def segment_condition(
    session: Session, rules: RuleNode | dict[str, Any], *, at: datetime | None = None
) -> ColumnElement[bool]:
    """Who is in the segment: the compiled rules, minus erased, merged and (unless the rules test
    ``is_test``) test customers."""
    rule = as_rule(rules)
    base = [Customer.erased_at.is_(None), Customer.merged_into_id.is_(None)]
    if not references_field(rule, "is_test"):
        base.append(Customer.is_test.is_(False))
    return and_(*base, compile_rule(rule, dialect=_dialect(session), at=at))


def segment_customer_ids(
    session: Session, rules: RuleNode | dict[str, Any], *, at: datetime | None = None
) -> Select[Any]:
    """``SELECT customers.id`` of the members, to embed in other queries (``IN (...)``)."""
    return select(Customer.id).where(segment_condition(session, rules, at=at))


def count_matching(
    session: Session,
    rules: RuleNode | dict[str, Any],
    *,
    by: CountBy = "customer",
    at: datetime | None = None,
) -> int:
    """How many customers match, or (``by="organisation"``) how many distinct organisations they
    belong to."""
    condition = segment_condition(session, rules, at=at)
    if by == "organisation":
        query = select(func.count(distinct(Customer.organisation_id))).where(
            condition, Customer.organisation_id.is_not(None)
        )
    else:
        query = select(func.count()).select_from(Customer).where(condition)
    return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class SegmentMember:
    id: str
    given_name: str
    family_name: str
    email: str | None
    phone: str | None
    country: str | None
    language: str
    organisation_id: str | None
    created_at: datetime


def _member(customer: Customer) -> SegmentMember:
    return SegmentMember(
        id=customer.id,
        given_name=customer.given_name,
        family_name=customer.family_name,
        email=customer.email,
        phone=customer.phone_e164,
        country=customer.country,
        language=customer.language,
        organisation_id=customer.organisation_id,
        created_at=customer.created_at,
    )


def _after_cursor(cursor: str | None) -> ColumnElement[bool] | None:
    values = decode_cursor(cursor)
    if values is None:
        return None
    try:
        created = datetime.fromisoformat(values[0])
        customer_id = str(values[1])
    except (IndexError, TypeError, ValueError) as exc:
        raise ValidationFailed("malformed cursor", code="invalid_cursor") from exc
    if created.tzinfo is None or len(values) != 2:
        raise ValidationFailed("malformed cursor", code="invalid_cursor")
    return tuple_(Customer.created_at, Customer.id) > tuple_(
        literal(created, Customer.created_at.type), literal(customer_id)
    )


def list_matching(
    session: Session,
    rules: RuleNode | dict[str, Any],
    *,
    cursor: str | None = None,
    limit: int | None = None,
    at: datetime | None = None,
) -> Page[SegmentMember]:
    """Members ordered by (created_at, id), a page at a time."""
    size = clamp_limit(limit)
    query = select(Customer).where(segment_condition(session, rules, at=at))
    after = _after_cursor(cursor)
    if after is not None:
        query = query.where(after)
    rows = list(session.scalars(query.order_by(Customer.created_at, Customer.id).limit(size + 1)))
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        next_cursor = encode_cursor([last.created_at.isoformat(), last.id])
    return Page(items=[_member(c) for c in rows], next_cursor=next_cursor)


def iter_matching_customers(
    session: Session,
    rules: RuleNode | dict[str, Any] | None = None,
    *,
    batch_size: int = 500,
    at: datetime | None = None,
) -> Iterator[Customer]:
    """Every member (every live customer when ``rules`` is None), fetched in keyset batches so
    memory stays flat however large the segment."""
    condition = segment_condition(session, rules if rules is not None else AndRule(type="and"), at=at)
    last: tuple[datetime, str] | None = None
    while True:
        query = select(Customer).where(condition)
        if last is not None:
            query = query.where(
                tuple_(Customer.created_at, Customer.id)
                > tuple_(literal(last[0], Customer.created_at.type), literal(last[1]))
            )
        rows = list(session.scalars(query.order_by(Customer.created_at, Customer.id).limit(batch_size)))
        yield from rows
        if len(rows) < batch_size:
            return
        last = (rows[-1].created_at, rows[-1].id)


@dataclass(frozen=True)
class SegmentPreview:
    count: int
    organisations: int
    sample: list[SegmentMember]


def preview_segment(
    session: Session, rules: RuleNode | dict[str, Any], *, sample_size: int = 10, at: datetime | None = None
) -> SegmentPreview:
    """The live count (customers and their distinct organisations) and a first page, without saving."""
    rule = as_rule(rules)
    at = at or now()
    return SegmentPreview(
        count=count_matching(session, rule, at=at),
        organisations=count_matching(session, rule, by="organisation", at=at),
        sample=list_matching(session, rule, limit=sample_size, at=at).items,
    )


# ------------------------------------------------------------------------------------- saved segments


def _snapshot(segment: Segment) -> dict[str, Any]:
    return {"name": segment.name, "description": segment.description, "rules": segment.rules}


def _flush_unique(session: Session, name: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a segment named {name!r} already exists", code="segment_name_taken") from exc


def _check_name(session: Session, name: str, *, exclude_id: str | None = None) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed(
            "a segment needs a name",
            code="invalid_segment_name",
            errors=[{"loc": ["name"], "msg": "must not be blank", "type": "value_error"}],
        )
    query = select(Segment.id).where(Segment.name == name)
    if exclude_id is not None:
        query = query.where(Segment.id != exclude_id)
    if session.scalar(query) is not None:
        raise Conflict(f"a segment named {name!r} already exists", code="segment_name_taken")
    return name


def create_segment(
    session: Session, *, name: str, rules: RuleNode | dict[str, Any], description: str = ""
) -> Segment:
    rule = as_rule(rules)
    segment = Segment(name=_check_name(session, name), description=description, rules=dump_rules(rule))
    session.add(segment)
    _flush_unique(session, segment.name)
    record_audit(session, "segment.created", "segment", segment.id, new=_snapshot(segment))
    return segment


def get_segment(session: Session, segment_id: str) -> Segment:
    plausible = 0 < len(segment_id) <= 36 and "\x00" not in segment_id
    segment = session.get(Segment, segment_id) if plausible else None
    if segment is None:
        raise NotFound("segment not found", code="segment_not_found")
    return segment


def segment_rules(segment: Segment) -> RuleNode:
    """The saved rules, validated."""
    return parse_rules(segment.rules)


def list_segments(
    session: Session, *, q: str | None = None, cursor: str | None = None, limit: int | None = None
) -> Page[Segment]:
    """Segments by name, a page at a time; ``q`` is a case-insensitive substring of the name."""
    size = clamp_limit(limit)
    query = select(Segment)
    if q:
        query = query.where(func.lower(Segment.name).contains(q.lower(), autoescape=True))
    values = decode_cursor(cursor)
    if values is not None:
        if len(values) != 2 or not all(isinstance(v, str) for v in values):
            raise ValidationFailed("malformed cursor", code="invalid_cursor")
        query = query.where(tuple_(Segment.name, Segment.id) > tuple_(literal(values[0]), literal(values[1])))
    rows = list(session.scalars(query.order_by(Segment.name, Segment.id).limit(size + 1)))
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = encode_cursor([rows[-1].name, rows[-1].id])
    return Page(items=rows, next_cursor=next_cursor)


def update_segment(
    session: Session,
    segment: Segment,
    *,
    name: str | None = None,
    description: str | None = None,
    rules: RuleNode | dict[str, Any] | None = None,
) -> Segment:
    old = _snapshot(segment)
    if name is not None:
        segment.name = _check_name(session, name, exclude_id=segment.id)
    if description is not None:
        segment.description = description
    if rules is not None:
        rule = as_rule(rules)
        segment.rules = dump_rules(rule)
    new = _snapshot(segment)
    if new != old:
        _flush_unique(session, segment.name)
        record_audit(session, "segment.updated", "segment", segment.id, old=old, new=new)
    return segment


def delete_segment(session: Session, segment: Segment) -> None:
    record_audit(session, "segment.deleted", "segment", segment.id, old=_snapshot(segment))
    session.delete(segment)
    session.flush()


def count_segment(session: Session, segment: Segment, *, by: CountBy = "customer") -> int:
    return count_matching(session, segment_rules(segment), by=by)


def list_segment_members(
    session: Session, segment: Segment, *, cursor: str | None = None, limit: int | None = None
) -> Page[SegmentMember]:
    return list_matching(session, segment_rules(segment), cursor=cursor, limit=limit)
