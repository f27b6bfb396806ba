"""Which file column feeds which field: the fields of each kind of import, their types and the
column names recognised without a mapping (English, Vietnamese, Hungarian and Thai headings).

A column is matched on its folded name (case, accents, spaces and punctuation ignored), so
``First Name``, ``first_name`` and ``FIRSTNAME`` all mean ``first_name``, and ``Số điện thoại``
means ``phone``. ``--map COLUMN=FIELD`` overrides; ``--map COLUMN=`` skips a column; on customers
``--map COLUMN=attributes.NAME`` stores the column as a custom attribute. Columns whose name starts
with ``_`` (such as ``_line`` and ``_reasons`` in a rejected-rows file) are skipped, so a corrected
rejects file can be imported again as it is.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from patron.core.text import fold
from patron.imports.errors import ImportFileError


class ImportKind(StrEnum):
    CUSTOMERS = "customers"
    ORDERS = "orders"
    PRODUCTS = "products"
    SUBSCRIPTIONS = "subscriptions"
    LOYALTY_BALANCES = "loyalty-balances"


class FieldType(StrEnum):
    TEXT = "text"
    DATE = "date"
    DATETIME = "datetime"
    DECIMAL = "decimal"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    LIST = "list"


class Level(StrEnum):
    """For orders given one row per line: a field of the order or of the line."""

    RECORD = "record"
    LINE = "line"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType = FieldType.TEXT
    aliases: tuple[str, ...] = ()
    level: Level = Level.RECORD
    #: the key in the raw mapping handed to the domain's ``prepare_*`` (defaults to ``name``)
    key: str | None = None

    @property
    def raw_key(self) -> str:
        return self.key or self.name


T, D, DT, DEC, INT, BOOL, LIST = (
    FieldType.TEXT,
    FieldType.DATE,
    FieldType.DATETIME,
    FieldType.DECIMAL,
    FieldType.INTEGER,
    FieldType.BOOLEAN,
    FieldType.LIST,
)
LINE = Level.LINE

CUSTOMER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "external_id",
        T,
        (
            "id",
            "customer_id",
            "customer_external_id",
            "external id",
            "customer_number",
            "customer_no",
            "customer_code",
            "ma_khach_hang",
            "ma_kh",
            "ugyfelazonosito",
            "azonosito",
            "ugyfelkod",
            "รหัสลูกค้า",
            "รหัส",
        ),
    ),
    FieldSpec(
        "first_name",
        T,
        ("given_name", "firstname", "first", "forename", "ten", "keresztnev", "utonev", "ชื่อ", "ชื่อจริง"),
    ),
    FieldSpec(
        "last_name",
        T,
        ("family_name", "surname", "lastname", "last", "ho", "vezeteknev", "csaladnev", "นามสกุล"),
    ),
    FieldSpec(
        "email", T, ("e-mail", "email_address", "mail", "emailcim", "e_mail_cim", "dia_chi_email", "อีเมล")
    ),
    FieldSpec(
        "phone",
        T,
        (
            "phone_number",
            "mobile",
            "mobile_phone",
            "telephone",
            "tel",
            "cell",
            "so_dien_thoai",
            "dien_thoai",
            "sdt",
            "telefon",
            "telefonszam",
            "mobil",
            "เบอร์โทร",
            "เบอร์โทรศัพท์",
            "โทรศัพท์",
        ),
    ),
    FieldSpec(
        "birthday",
        D,
        (
            "birth_date",
            "date_of_birth",
            "dob",
            "birthdate",
            "ngay_sinh",
            "szuletesi_datum",
            "szuletesnap",
            "วันเกิด",
        ),
    ),
    FieldSpec("language", T, ("lang", "preferred_language", "ngon_ngu", "nyelv", "ภาษา")),
    FieldSpec("time_zone", T, ("timezone", "tz", "mui_gio", "idozona", "เขตเวลา")),
    FieldSpec("country", T, ("country_code", "quoc_gia", "orszag", "ประเทศ")),
    FieldSpec("form_of_address", T, ("salutation", "title", "xung_ho", "megszolitas", "คำนำหน้า")),
    FieldSpec("preferred_channel", T, ("channel", "kenh")),
    FieldSpec("referral_code", T, ("referral", "ma_gioi_thieu")),
    FieldSpec("tags", LIST, ("labels", "the", "cimkek")),
    FieldSpec("organisation_role", T, ("role", "organization_role")),
    FieldSpec(
        "created_at",
        DT,
        (
            "customer_since",
            "signed_up_at",
            "signup_date",
            "registered_at",
            "ngay_dang_ky",
            "regisztracio",
            "วันที่สมัคร",
        ),
    ),
)

ORDER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "external_id",
        T,
        (
            "order_id",
            "order_external_id",
            "order_number",
            "order_no",
            "order",
            "id",
            "ma_don_hang",
            "rendelesszam",
            "rendeles_azonosito",
            "เลขที่คำสั่งซื้อ",
        ),
    ),
    FieldSpec(
        "customer_external_id",
        T,
        (
            "customer_id",
            "customer",
            "customer_number",
            "customer_no",
            "ma_khach_hang",
            "ugyfelazonosito",
            "รหัสลูกค้า",
        ),
    ),
    FieldSpec("currency", T, ("currency_code", "tien_te", "penznem", "สกุลเงิน")),
    FieldSpec("market", T, ("market_code", "thi_truong", "piac")),
    FieldSpec("channel", T, ("sales_channel", "kenh")),
    FieldSpec("status", T, ("order_status", "trang_thai", "allapot")),
    FieldSpec(
        "placed_at",
        DT,
        (
            "order_date",
            "placed",
            "created",
            "date",
            "ordered_at",
            "ngay_dat",
            "rendeles_datuma",
            "datum",
            "วันที่สั่งซื้อ",
        ),
    ),
    FieldSpec("promised_delivery_date", D, ("promised_date", "delivery_date", "promised_delivery")),
    FieldSpec("fulfilment_status", T, ("fulfillment_status", "fulfilment", "fulfillment")),
    FieldSpec("fulfilled_at", DT, ("fulfilled", "shipped_at")),
    FieldSpec("delivered_at", DT, ("delivered",)),
    FieldSpec("subtotal", DEC, ("sub_total",)),
    FieldSpec("discount", DEC, ("order_discount",)),
    FieldSpec("tax", DEC, ("vat", "afa", "thue")),
    FieldSpec("shipping", DEC, ("shipping_fee", "delivery_fee", "phi_van_chuyen", "szallitasi_dij")),
    FieldSpec("total", DEC, ("order_total", "grand_total", "tong_tien", "vegosszeg", "osszesen")),
    FieldSpec("sku", T, ("product_sku", "product_code", "item_sku", "ma_san_pham", "cikkszam"), LINE),
    FieldSpec(
        "name",
        T,
        ("product_name", "product", "item", "item_name", "ten_san_pham", "termek", "termeknev"),
        LINE,
    ),
    FieldSpec("category", T, ("product_category", "item_category"), LINE),
    FieldSpec("quantity", INT, ("qty", "so_luong", "mennyiseg", "จำนวน"), LINE),
    FieldSpec("unit_price", DEC, ("price", "item_price", "don_gia", "egysegar"), LINE),
    FieldSpec("line_discount", DEC, ("item_discount",), LINE, key="discount"),
    FieldSpec("line_total", DEC, ("item_total", "line_amount", "thanh_tien"), LINE, key="total"),
)

PRODUCT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "sku",
        T,
        ("external_id", "id", "product_id", "product_code", "code", "ma_san_pham", "cikkszam", "รหัสสินค้า"),
    ),
    FieldSpec("name", T, ("product_name", "title", "ten_san_pham", "termeknev", "nev", "ชื่อสินค้า")),
    FieldSpec("category", T, ("product_category", "danh_muc", "kategoria", "หมวดหมู่")),
    FieldSpec("price", DEC, ("unit_price", "list_price", "gia", "ar", "ราคา")),
    FieldSpec("currency", T, ("currency_code", "tien_te", "penznem", "สกุลเงิน")),
    FieldSpec("active", BOOL, ("is_active", "enabled")),
)

SUBSCRIPTION_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("external_id", T, ("subscription_id", "subscription_external_id", "id")),
    FieldSpec(
        "customer_external_id",
        T,
        ("customer_id", "customer", "customer_number", "ma_khach_hang", "ugyfelazonosito"),
    ),
    FieldSpec("plan", T, ("plan_name", "plan_code", "goi", "csomag")),
    FieldSpec("price", DEC, ("amount", "plan_price", "gia", "ar")),
    FieldSpec("currency", T, ("currency_code", "tien_te", "penznem")),
    FieldSpec("interval", T, ("billing_interval", "period")),
    FieldSpec("status", T, ("subscription_status", "trang_thai", "allapot")),
    FieldSpec("started_at", DT, ("start", "start_date", "started", "ngay_bat_dau", "kezdete")),
    FieldSpec("renews_at", DT, ("renewal", "renewal_date", "next_renewal", "renews")),
    FieldSpec("cancelled_at", DT, ("canceled_at", "cancelled", "cancellation_date", "cancel_date")),
)

LOYALTY_BALANCE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("external_id", T, ("balance_id", "id")),
    FieldSpec(
        "customer_external_id",
        T,
        ("customer", "customer_number", "member_id", "member_number", "ma_khach_hang", "ugyfelazonosito"),
    ),
    FieldSpec("customer_id", T, ("patron_customer_id",)),
    FieldSpec(
        "points", INT, ("balance", "points_balance", "point_balance", "diem", "so_diem", "pont", "pontok")
    ),
    FieldSpec("tier", T, ("tier_code", "level", "member_tier", "hang", "hang_thanh_vien", "szint")),
    FieldSpec("expires_on", D, ("expires_at", "expiry", "expiry_date", "expires", "han_su_dung", "lejarat")),
    FieldSpec("earned_at", DT, ("earned", "since", "balance_date")),
)

FIELDS: dict[ImportKind, tuple[FieldSpec, ...]] = {
    ImportKind.CUSTOMERS: CUSTOMER_FIELDS,
    ImportKind.ORDERS: ORDER_FIELDS,
    ImportKind.PRODUCTS: PRODUCT_FIELDS,
    ImportKind.SUBSCRIPTIONS: SUBSCRIPTION_FIELDS,
    ImportKind.LOYALTY_BALANCES: LOYALTY_BALANCE_FIELDS,
}

#: the field that identifies a row's record (upsert key)
KEY_FIELD: dict[ImportKind, str] = {
    ImportKind.CUSTOMERS: "external_id",
    ImportKind.ORDERS: "external_id",
    ImportKind.PRODUCTS: "sku",
    ImportKind.SUBSCRIPTIONS: "external_id",
    ImportKind.LOYALTY_BALANCES: "customer_external_id",
}

ATTRIBUTE_PREFIX = "attributes."


def column_key(name: str) -> str:
    """A column name folded for matching: case, accents, spaces and punctuation ignored (Thai
    vowel and tone marks are kept)."""
    folded = fold(name)
    return "".join(ch for ch in folded if ch.isalnum() or unicodedata.category(ch).startswith("M"))


def _lookup(kind: ImportKind) -> dict[str, FieldSpec]:
    table: dict[str, FieldSpec] = {}
    for spec in FIELDS[kind]:
        for alias in spec.aliases:
            table.setdefault(column_key(alias), spec)
    for spec in FIELDS[kind]:  # a field's own name wins over another field's alias
        table[column_key(spec.name)] = spec
    return table


_LOOKUPS: dict[ImportKind, dict[str, FieldSpec]] = {kind: _lookup(kind) for kind in ImportKind}


def field_spec(kind: ImportKind, name: str) -> FieldSpec | None:
    for spec in FIELDS[kind]:
        if spec.name == name:
            return spec
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """Where one column goes: a field, a custom attribute (``attribute``), or nowhere."""

    index: int
    column: str
    spec: FieldSpec | None
    attribute: str | None = None


@dataclass(frozen=True)
class ColumnPlan:
    kind: ImportKind
    columns: tuple[str, ...]
    targets: tuple[Target, ...]
    ignored: tuple[str, ...]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(t.spec.name for t in self.targets if t.spec is not None)

    def index_of(self, field: str) -> int | None:
        for t in self.targets:
            if t.spec is not None and t.spec.name == field:
                return t.index
        return None

    @property
    def has_lines(self) -> bool:
        return any(t.spec is not None and t.spec.level is Level.LINE for t in self.targets)

    def describe(self) -> dict[str, str | None]:
        """column → field (None when skipped), for reports and the batch's stored options."""
        out: dict[str, str | None] = dict.fromkeys(self.columns)
        for t in self.targets:
            out[t.column] = t.spec.name if t.spec is not None else f"{ATTRIBUTE_PREFIX}{t.attribute}"
        return out


def parse_mapping(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["Col A=first_name", "Notes="]`` → ``{"Col A": "first_name", "Notes": ""}``."""
    mapping: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise ImportFileError(f"--map needs COLUMN=FIELD, got {item!r}", code="bad_mapping")
        column, field = item.rsplit("=", 1)
        column = column.strip()
        if not column:
            raise ImportFileError(f"--map needs a column name, got {item!r}", code="bad_mapping")
        mapping[column] = field.strip()
    return mapping


def plan_columns(kind: ImportKind, columns: tuple[str, ...], mapping: Mapping[str, str]) -> ColumnPlan:
    """Match every column to a field (raises :class:`ImportFileError` for unknown columns, a mapping
    to an unknown field, two columns for one field, or no key column)."""
    lookup = _LOOKUPS[kind]
    by_key = {column_key(c): c for c in columns}
    explicit: dict[str, str] = {}
    for column, field in mapping.items():
        actual = column if column in columns else by_key.get(column_key(column))
        if actual is None:
            raise ImportFileError(
                f"--map names column {column!r}, which the file does not have "
                f"(columns: {', '.join(columns)})",
                code="unknown_mapped_column",
            )
        explicit[actual] = field
    targets: list[Target] = []
    ignored: list[str] = []
    unknown: list[str] = []
    used: dict[str, str] = {}
    for index, column in enumerate(columns):
        if column in explicit:
            field = explicit[column]
            if field == "":
                ignored.append(column)
                continue
            if field.startswith(ATTRIBUTE_PREFIX) and kind is ImportKind.CUSTOMERS:
                attribute = field[len(ATTRIBUTE_PREFIX) :]
                if not attribute:
                    raise ImportFileError(f"--map {column}=attributes.NAME needs a NAME", code="bad_mapping")
                targets.append(Target(index, column, None, attribute))
                continue
            spec = field_spec(kind, field)
            if spec is None:
                names = ", ".join(s.name for s in FIELDS[kind])
                raise ImportFileError(
                    f"--map {column}={field}: {kind} have no field {field!r} (fields: {names})",
                    code="unknown_field",
                )
        elif column.startswith("_"):
            ignored.append(column)
            continue
        else:
            found = lookup.get(column_key(column))
            if found is None:
                unknown.append(column)
                continue
            spec = found
        if spec.name in used:
            raise ImportFileError(
                f"columns {used[spec.name]!r} and {column!r} both give {spec.name}: map one of them "
                f"(--map {column!r}=… or --map {column!r}= to skip it)",
                code="duplicate_field",
            )
        used[spec.name] = column
        targets.append(Target(index, column, spec))
    if unknown:
        hint = " ".join(f"--map {c!r}=FIELD" for c in unknown[:3])
        raise ImportFileError(
            f"unknown columns: {', '.join(unknown)}. Map them ({hint}) or skip them (--map COLUMN=)",
            code="unknown_columns",
            extra={"columns": unknown},
        )
    key = KEY_FIELD[kind]
    if key not in used:
        raise ImportFileError(
            f"the file has no {key} column: map one with --map COLUMN={key}", code="missing_key_column"
        )
    return ColumnPlan(kind, columns, tuple(targets), tuple(ignored))
