"""From file rows to the raw mappings the domains validate (pure; no I/O).

Each cell is converted by its field's type: dates and timestamps in the file's formats, numbers with
a decimal comma or point, Excel serials, lists. Blank cells are left out, so an update through an
import changes only the fields the row gives. Timestamps without an offset are read in the import's
time zone.

Orders come one row per order or one row per line: rows with the same order id form one order
(its lines in file order). Order-level cells must agree between the rows of an order — a blank
cell on a later row means "same as the order" — else the whole order is rejected, with a reason on
each of its rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from patron.core.i18n import N_
from patron.imports.mapping import ColumnPlan, FieldType, ImportKind, Level, Target
from patron.imports.parsing import DecimalMode, parse_date, parse_datetime, parse_integer, parse_number
from patron.imports.readers import Cell, SourceRow

_TRUE = frozenset({"1", "true", "yes", "y", "t", "x", "có", "co", "igen", "i", "ใช่", "จริง"})
_FALSE = frozenset({"0", "false", "no", "n", "f", "không", "khong", "nem", "ไม่", "ไม่ใช่", "เท็จ"})


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a row was rejected: the file column (when one is to blame), the field, a message and a
    stable code."""

    message: str
    code: str
    column: str | None = None
    field: str | None = None

    def text(self) -> str:
        where = self.column or self.field
        return f"{where}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column, "field": self.field, "message": self.message, "code": self.code}


@dataclass(frozen=True)
class ConvertOptions:
    decimal: DecimalMode = DecimalMode.POINT
    date_format: str | None = None
    time_zone: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.time_zone)


_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


def cell_text(value: Cell) -> str | None:
    """A cell as text, the way a person would type it (Excel numbers without a spurious ``.0``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return (
            value.isoformat(sep=" ") if value.time() != time(0) or value.tzinfo else value.date().isoformat()
        )
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


# Files repeat cells (an order's placed time on each of its lines, a product's price on every sale):
# text cells are converted once per distinct value. Results are immutable; errors are not cached.
@lru_cache(maxsize=8192)
def _number_text(value: str, mode: DecimalMode) -> Decimal:
    return parse_number(value, mode)


@lru_cache(maxsize=8192)
def _date_text(value: str, date_format: str | None) -> date:
    return parse_date(value, date_format)


@lru_cache(maxsize=8192)
def _stamp_text(value: str, date_format: str | None, time_zone: str) -> datetime:
    return _stamp(value, date_format, time_zone)


def _stamp(value: Cell, date_format: str | None, time_zone: str) -> datetime:
    stamp = parse_datetime(value, date_format)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_zone(time_zone))
    return stamp.astimezone(UTC)


def _convert(value: Cell, ftype: FieldType, options: ConvertOptions) -> Any:
    if ftype is FieldType.TEXT:
        return value if isinstance(value, str) else cell_text(value)
    if ftype is FieldType.DECIMAL:
        if isinstance(value, str):
            return _number_text(value, options.decimal)
        return parse_number(value, options.decimal)
    if ftype is FieldType.INTEGER:
        return parse_integer(value, options.decimal)
    if ftype is FieldType.DATE:
        if isinstance(value, str):
            return _date_text(value, options.date_format)
        return parse_date(value, options.date_format)
    if ftype is FieldType.DATETIME:
        if isinstance(value, str):
            return _stamp_text(value, options.date_format, options.time_zone)
        return _stamp(value, options.date_format, options.time_zone)
    if ftype is FieldType.BOOLEAN:
        if isinstance(value, bool):
            return value
        text = (cell_text(value) or "").strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(N_("must be yes or no (true/false, 1/0)"))
    if ftype is FieldType.LIST:
        text = cell_text(value) or ""
        sep = "|" if "|" in text else ";" if ";" in text else ","
        return [p.strip() for p in text.split(sep) if p.strip()]
    raise AssertionError(ftype)  # pragma: no cover


_TYPE_CODES = {
    FieldType.DECIMAL: "invalid_number",
    FieldType.INTEGER: "invalid_number",
    FieldType.DATE: "invalid_date",
    FieldType.DATETIME: "invalid_datetime",
    FieldType.BOOLEAN: "invalid_bool",
    FieldType.LIST: "invalid_list",
    FieldType.TEXT: "invalid_text",
}


@dataclass(slots=True)
class ConvertedRow:
    """One file row converted: record-level and line-level raw values, its key, its problems."""

    source: SourceRow
    key: str | None
    record: dict[str, Any]
    line: dict[str, Any]
    reasons: list[Reason] = field(default_factory=list)


def convert_row(plan: ColumnPlan, row: SourceRow, options: ConvertOptions, key_field: str) -> ConvertedRow:
    record: dict[str, Any] = {}
    line: dict[str, Any] = {}
    reasons: list[Reason] = []
    attributes: dict[str, Any] = {}
    values = row.values
    key: str | None = None
    if row.error is not None:
        reasons.append(Reason(row.error, "malformed_row"))
    target: Target
    for target in plan.targets:
        value = values[target.index]
        if value is None:
            continue
        spec = target.spec
        if spec is None:
            attributes[target.attribute or target.column] = cell_text(value)
            continue
        try:
            converted = _convert(value, spec.type, options)
        except ValueError as exc:
            reasons.append(Reason(str(exc), _TYPE_CODES[spec.type], target.column, spec.name))
            continue
        if spec.level is Level.LINE:
            line[spec.raw_key] = converted
        else:
            record[spec.raw_key] = converted
        if spec.name == key_field:
            key = converted if isinstance(converted, str) else cell_text(value)
    if attributes:
        record["attributes"] = attributes
    return ConvertedRow(row, key, record, line, reasons)


def row_values(plan: ColumnPlan, row: SourceRow) -> dict[str, str | None]:
    """The row as read, column by column (for the rejected-rows file)."""
    return {column: cell_text(row.values[i]) for i, column in enumerate(plan.columns)}


# --- grouping order lines ----------------------------------------------------------------------


@dataclass
class Unit:
    """One record to upsert, made of one or more rows (an order's lines)."""

    key: str | None
    rows: list[ConvertedRow]
    raw: dict[str, Any] = field(default_factory=dict)
    reasons: list[Reason] = field(default_factory=list)
    #: per-row reasons (by position in ``rows``), for problems of one line of an order
    row_reasons: dict[int, list[Reason]] = field(default_factory=dict)

    @property
    def first_line(self) -> int:
        return self.rows[0].source.line

    @property
    def rejected(self) -> bool:
        return bool(self.reasons or self.row_reasons)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return bool(a == b)


def build_unit(kind: ImportKind, key: str | None, rows: list[ConvertedRow], plan: ColumnPlan) -> Unit:
    """Merge rows into one unit; the rows' own conversion problems become the unit's."""
    unit = Unit(key, rows)
    for i, row in enumerate(rows):
        if row.reasons:
            unit.row_reasons[i] = list(row.reasons)
    if kind is not ImportKind.ORDERS:
        unit.raw = dict(rows[0].record)
        if kind is ImportKind.SUBSCRIPTIONS:
            unit.raw.setdefault("source", "import")
        return unit
    record: dict[str, Any] = {}
    origin: dict[str, int] = {}
    columns = {t.spec.raw_key: t.column for t in plan.targets if t.spec is not None}
    for i, row in enumerate(rows):
        for name, value in row.record.items():
            if name not in record:
                record[name] = value
                origin[name] = i
            elif not _same(record[name], value):
                first = rows[origin[name]].source.line
                unit.row_reasons.setdefault(i, []).append(
                    Reason(
                        N_("disagrees with line %(line)d of the same order") % {"line": first},
                        "order_rows_disagree",
                        columns.get(name),
                        name,
                    )
                )
    if plan.has_lines:
        record["lines"] = [row.line for row in rows]
    record.setdefault("source", "import")
    unit.raw = record
    return unit


def group_rows(kind: ImportKind, rows: Iterable[ConvertedRow]) -> list[tuple[str | None, list[ConvertedRow]]]:
    """Rows in file order, grouped by key for orders (first appearance order); one group per row
    otherwise."""
    if kind is not ImportKind.ORDERS:
        return [(row.key, [row]) for row in rows]
    groups: dict[str, list[ConvertedRow]] = {}
    out: list[tuple[str | None, list[ConvertedRow]]] = []
    for row in rows:
        if row.key is None:
            out.append((None, [row]))
            continue
        folded = row.key
        group = groups.get(folded)
        if group is None:
            group = groups[folded] = []
            out.append((folded, group))
        group.append(row)
    return out


def domain_reasons(
    errors: Iterable[Mapping[str, Any]], plan: ColumnPlan, n_rows: int
) -> tuple[list[Reason], dict[int, list[Reason]]]:
    """Map a domain's ``ValidationFailed.errors`` (``loc``, ``msg``, ``type``) onto the file: an
    order's ``lines.<i>.<field>`` go to the i-th row of the order, the rest to the whole unit."""
    record_columns: dict[str, str] = {}
    line_columns: dict[str, str] = {}
    for t in plan.targets:
        if t.spec is None:
            continue
        if t.spec.level is Level.LINE:
            line_columns[t.spec.raw_key] = t.column
        else:
            record_columns[t.spec.raw_key] = t.column
            record_columns.setdefault(t.spec.name, t.column)
    whole: list[Reason] = []
    per_row: dict[int, list[Reason]] = {}
    for err in errors:
        loc = [str(p) if not isinstance(p, int) else p for p in err.get("loc", [])]
        msg = str(err.get("msg", ""))
        code = str(err.get("type", "invalid"))
        if len(loc) >= 2 and loc[0] == "lines" and isinstance(loc[1], int) and 0 <= loc[1] < n_rows:
            name = str(loc[2]) if len(loc) > 2 else None
            per_row.setdefault(loc[1], []).append(Reason(msg, code, line_columns.get(name or ""), name))
            continue
        name = str(loc[0]) if loc else None
        if name == "phone_e164":
            name = "phone"
        column = record_columns.get(name or "")
        if column is None and name in {"given_name", "family_name"}:
            column = record_columns.get("first_name" if name == "given_name" else "last_name")
        whole.append(Reason(msg, code, column, name))
    return whole, per_row


def unit_row_reasons(unit: Unit, columns: tuple[str, ...] = ()) -> list[list[Reason]]:
    """The reasons to report on each row of a rejected unit — its own and the unit's, in the order of
    the file's columns — and for an order a pointer to the lines that sank it."""
    order = {c: i for i, c in enumerate(columns)}
    bad_lines = [unit.rows[i].source.line for i in sorted(unit.row_reasons)]
    out: list[list[Reason]] = []
    for i, _row in enumerate(unit.rows):
        reasons = list(unit.reasons) + list(unit.row_reasons.get(i, []))
        reasons.sort(key=lambda r: order.get(r.column or "", len(order)))
        others = [line for line in bad_lines if line != unit.rows[i].source.line]
        if others and len(unit.rows) > 1:
            reasons.append(
                Reason(
                    N_("the order is rejected because of line(s) %(lines)s")
                    % {"lines": ", ".join(str(n) for n in others)},
                    "order_line_rejected",
                )
            )
        out.append(reasons)
    return out


def decimal_samples(plan: ColumnPlan, rows: Iterable[SourceRow], limit: int = 2000) -> list[str]:
    """Text values of the decimal columns, to detect the file's decimal separator."""
    indexes = [t.index for t in plan.targets if t.spec is not None and t.spec.type is FieldType.DECIMAL]
    out: list[str] = []
    if not indexes:
        return out
    for row in rows:
        for i in indexes:
            value = row.values[i]
            if isinstance(value, str):
                out.append(value)
        if len(out) >= limit:
            break
    return out
