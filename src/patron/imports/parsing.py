"""Pure parsing rules for real-world files: text encodings, delimiters, decimal commas and dates.

No I/O here beyond the bytes and strings handed in, so every rule has a unit test.

* **Encodings** — a byte-order mark wins; otherwise a strict UTF-8 decode of the whole file decides
  (UTF-8 is self-validating: legacy text almost never decodes); otherwise the legacy code pages the
  markets use are scored on the non-ASCII text: Vietnamese ``cp1258``, Thai ``tis_620``, Hungarian
  ``cp1250``. Each candidate's decoding is scored by how much of it is made of its language's letters
  (Thai letters in runs of Thai, Latin letters next to Latin letters).
* **Numbers** — ``1.234,50``, ``1 234,50`` and ``1234,5`` (decimal comma) or ``1,234.50`` (decimal
  point); the mode is given, or detected from the values of the file.
* **Dates** — ISO ``2024-05-31``, ``31/05/2024``, ``31.05.2024``, ``31-05-2024``, Hungarian
  ``2024.05.31`` / ``2024. 05. 31.``, and Excel serial numbers (days since 1899-12-30).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum

LEGACY_ENCODINGS: tuple[str, ...] = ("cp1250", "cp1258", "tis_620")
DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Letters each legacy code page is chosen for. Vietnamese: its letters plus the five combining tone
# marks cp1258 writes after a base letter; Hungarian: its accented letters (Central European
# neighbours count for less).
_VIETNAMESE = frozenset(
    "ăâđêôơưĂÂĐÊÔƠƯàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
    "ÀÁẢÃẠẰẮẲẴẶẦẤẨẪẬÈÉẺẼẸỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌỒỐỔỖỘỜỚỞỠỢÙÚỦŨỤỪỨỬỮỰỲÝỶỸỴ"
    "\u0300\u0301\u0303\u0309\u0323"
)
_HUNGARIAN = frozenset("áéíóöőúüűÁÉÍÓÖŐÚÜŰ")
_CENTRAL_EUROPEAN = frozenset("ąćęłńśźżčďěňřšťůžĄĆĘŁŃŚŹŻČĎĚŇŘŠŤŮŽäôýÄÔÝ")
_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")


def detect_bom(head: bytes) -> tuple[str, int] | None:
    """The encoding named by a byte-order mark and the mark's length."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name, len(bom)
    return None


def _is_thai(ch: str) -> bool:
    return "\u0e01" <= ch <= "\u0e5b"


def score_decoding(text: str, encoding: str) -> float:
    """How plausible ``text`` (decoded with ``encoding``) is as that code page's language, in [-1, 1].

    Only non-ASCII characters are scored; each counts +1 when it is a letter of the language in a
    plausible place and -1 otherwise (symbols, replacement characters, Thai signs glued to Latin
    letters, Latin accents inside Thai)."""
    good = 0.0
    bad = 0.0
    n = len(text)
    for i, ch in enumerate(text):
        if ch < "\x80":
            continue
        prev = text[i - 1] if i > 0 else " "
        nxt = text[i + 1] if i + 1 < n else " "
        if ch == "\ufffd":
            bad += 3
        elif encoding == "tis_620":
            if (
                _is_thai(ch)
                and not (prev.isascii() and prev.isalpha())
                and not (nxt.isascii() and nxt.isalpha())
            ):
                good += 1
            else:
                bad += 1
        elif encoding == "cp1258":
            if ch in _TONE_MARKS:
                # a tone mark must follow a letter
                good += 1 if prev.isalpha() else -1
            elif ch in _VIETNAMESE and (prev.isalpha() or nxt.isalpha()):
                good += 1
            else:
                bad += 1
        elif encoding == "cp1250":
            if ch in _HUNGARIAN and (prev.isalpha() or nxt.isalpha()):
                good += 1
            elif ch in _CENTRAL_EUROPEAN and (prev.isalpha() or nxt.isalpha()):
                good += 0.5
            else:
                bad += 1
        else:
            good += 1 if ch.isalpha() else -1
    total = good + bad
    return 0.0 if total == 0 else (good - bad) / total


def guess_legacy_encoding(sample: bytes, candidates: tuple[str, ...] = LEGACY_ENCODINGS) -> str:
    """The best-scoring legacy code page for bytes that are not UTF-8."""
    best = candidates[0]
    best_score = -2.0
    for encoding in candidates:
        text = sample.decode(encoding, errors="replace")
        score = score_decoding(text, encoding)
        if score > best_score:
            best, best_score = encoding, score
    return best


class EncodingSniffer:
    """Feed a file's bytes block by block; ``result()`` names its encoding.

    UTF-8 is checked over the whole file with an incremental strict decoder; while it is checked, the
    lines that hold non-ASCII bytes are kept (up to ``sample_limit`` bytes) to score legacy code pages
    when the file turns out not to be UTF-8."""

    def __init__(self, sample_limit: int = 256 * 1024) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._utf8 = True
        self._first = True
        self._bom: str | None = None
        self._ascii = True
        self._sample = bytearray()
        self._limit = sample_limit

    @property
    def done(self) -> bool:
        """True once feeding more bytes cannot change the answer."""
        return self._bom is not None or (not self._utf8 and len(self._sample) >= self._limit)

    def feed(self, block: bytes, *, final: bool = False) -> None:
        if self._first:
            self._first = False
            bom = detect_bom(block)
            if bom is not None:
                self._bom = bom[0]
                return
        if self.done:
            return
        if not block.isascii():
            self._ascii = False
            if len(self._sample) < self._limit:
                for line in block.splitlines():
                    if not line.isascii():
                        self._sample += line + b"\n"
                        if len(self._sample) >= self._limit:
                            break
        if self._utf8:
            try:
                self._decoder.decode(block, final)
            except UnicodeDecodeError:
                self._utf8 = False

    def result(self) -> str:
        if self._bom is not None:
            return self._bom
        if self._utf8:
            try:
                self._decoder.decode(b"", True)
            except UnicodeDecodeError:
                self._utf8 = False
        if self._utf8 or self._ascii:
            return "utf-8"
        return guess_legacy_encoding(bytes(self._sample))


def detect_encoding(data: bytes) -> str:
    """The encoding of a whole byte string (see :class:`EncodingSniffer`)."""
    sniffer = EncodingSniffer()
    sniffer.feed(data, final=True)
    return sniffer.result()


def normalise_encoding(name: str) -> str:
    """Validate a user-given encoding name (``--encoding``); returns Python's codec name."""
    try:
        return codecs.lookup(name).name
    except LookupError as exc:
        raise ValueError(f"unknown encoding {name!r}") from exc


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the first lines of ``sample`` into the most, equally long records."""
    lines = sample.splitlines()[:50]
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line of a sample may be cut
    text = "\n".join(lines)
    best = ","
    best_key: tuple[int, int, int] = (-1, -1, -1)
    for delimiter in DELIMITERS:
        rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r]
        if not rows:
            continue
        widths = [len(r) for r in rows]
        header = widths[0]
        consistent = sum(1 for w in widths if w == header)
        key = (1 if header > 1 else 0, consistent if header > 1 else 0, header)
        if key > best_key:
            best, best_key = delimiter, key
    return best


def nfc(value: str) -> str:
    """NFC-normalise non-ASCII text (cp1258 and macOS files carry combining marks)."""
    if value.isascii() or unicodedata.is_normalized("NFC", value):
        return value
    return unicodedata.normalize("NFC", value)


# --- numbers -----------------------------------------------------------------------------------


class DecimalMode(StrEnum):
    AUTO = "auto"
    COMMA = "comma"
    POINT = "point"


_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009'")
_GROUPED = {".": re.compile(r"^\d{1,3}(\.\d{3})+$"), ",": re.compile(r"^\d{1,3}(,\d{3})+$")}
_PLAIN = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_COMMA_HINT = re.compile(r"(^|[^\d,.])[+-]?\d{1,3}(\.\d{3})+,\d*$|^[+-]?\d+,\d{1,2}$|^[+-]?\d+,\d{4,}$")
_POINT_HINT = re.compile(r"^[+-]?\d{1,3}(,\d{3})+\.\d*$|^[+-]?\d+\.\d{1,2}$|^[+-]?\d+\.\d{4,}$")


def decimal_hint(value: str) -> DecimalMode:
    """What a single value says about the file's decimal separator (AUTO when it says nothing:
    ``1,234`` and ``1.234`` are ambiguous)."""
    v = value.translate(_SPACES)
    if "," in v and "." in v:
        return DecimalMode.COMMA if v.rfind(",") > v.rfind(".") else DecimalMode.POINT
    if _COMMA_HINT.search(v):
        return DecimalMode.COMMA
    if _POINT_HINT.search(v):
        return DecimalMode.POINT
    if v.count(",") > 1:
        return DecimalMode.POINT  # 1,234,567: grouping commas
    if v.count(".") > 1:
        return DecimalMode.COMMA  # 1.234.567: grouping points
    return DecimalMode.AUTO


def detect_decimal_mode(values: list[str], delimiter: str | None = None) -> DecimalMode:
    """Decide COMMA or POINT from a file's numeric values; a tie falls back on the delimiter
    (``;``-separated files come from decimal-comma locales)."""
    comma = point = 0
    for value in values:
        hint = decimal_hint(value)
        if hint is DecimalMode.COMMA:
            comma += 1
        elif hint is DecimalMode.POINT:
            point += 1
    if comma > point:
        return DecimalMode.COMMA
    if point > comma:
        return DecimalMode.POINT
    return DecimalMode.COMMA if delimiter == ";" else DecimalMode.POINT


def parse_number(value: object, mode: DecimalMode = DecimalMode.POINT) -> Decimal:
    """A decimal from a cell: ``1.234,50`` (COMMA), ``1,234.50`` (POINT); numbers from Excel or
    Parquet are taken as they are (floats through their shortest repr, never binary noise)."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        v = value.translate(_SPACES)
        if mode is DecimalMode.AUTO:
            hint = decimal_hint(v)
            mode = DecimalMode.POINT if hint is DecimalMode.AUTO else hint
        decimal_sep, group_sep = (",", ".") if mode is DecimalMode.COMMA else (".", ",")
        if v.count(decimal_sep) > 1:
            raise ValueError(f"not a number: {value!r}")
        whole = v.split(decimal_sep, 1)[0].lstrip("+-")
        if group_sep in whole and not _GROUPED[group_sep].match(whole):
            raise ValueError(f"not a number: {value!r}")
        v = v.replace(group_sep, "").replace(decimal_sep, ".")
        if not _PLAIN.match(v):
            raise ValueError(f"not a number: {value!r}")
        try:
            result = Decimal(v)
        except InvalidOperation as exc:  # pragma: no cover - the pattern already checked
            raise ValueError(f"not a number: {value!r}") from exc
    else:
        raise ValueError(f"not a number: {value!r}")
    if not result.is_finite():
        raise ValueError(f"not a number: {value!r}")
    return result


def parse_integer(value: object, mode: DecimalMode = DecimalMode.POINT) -> int:
    number = parse_number(value, mode)
    if number != number.to_integral_value():
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


# --- dates -------------------------------------------------------------------------------------

EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_MAX = 2958465  # 9999-12-31

_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DMY = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4})\.?$")
_YMD = re.compile(r"^(\d{4})([./])\s?(\d{1,2})\2\s?(\d{1,2})\.?$")
_SERIAL = re.compile(r"^\d{1,7}(\.\d+)?$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?\s*(Z|[+-]\d{2}:?\d{2})?$")

DATE_FORMAT_ALIASES: dict[str, str] = {
    "iso": "%Y-%m-%d",
    "dmy": "%d/%m/%Y",
    "dd/mm/yyyy": "%d/%m/%Y",
    "dd.mm.yyyy": "%d.%m.%Y",
    "dd-mm-yyyy": "%d-%m-%Y",
    "mdy": "%m/%d/%Y",
    "mm/dd/yyyy": "%m/%d/%Y",
    "ymd": "%Y.%m.%d",
    "yyyy.mm.dd": "%Y.%m.%d",
    "yyyy-mm-dd": "%Y-%m-%d",
}


def normalise_date_format(fmt: str | None) -> str | None:
    """``--date-format``: a strptime pattern (``%d/%m/%Y``) or a name (``dmy``, ``dd.mm.yyyy`` …)."""
    if fmt is None or fmt == "" or fmt.lower() == "auto":
        return None
    named = DATE_FORMAT_ALIASES.get(fmt.lower())
    if named is not None:
        return named
    if "%" not in fmt:
        raise ValueError(f"unknown date format {fmt!r}: use a strptime pattern such as %d/%m/%Y")
    return fmt


def excel_serial_to_datetime(serial: float | Decimal | int) -> datetime:
    """An Excel (1900 system) serial day number as a naive datetime."""
    number = Decimal(repr(serial)) if isinstance(serial, float) else Decimal(serial)
    if number < 1 or number > _EXCEL_MAX:
        raise ValueError(f"not an Excel date serial: {serial}")
    days = int(number)
    seconds = int(((number - days) * 86400).to_integral_value())
    return datetime(EXCEL_EPOCH.year, EXCEL_EPOCH.month, EXCEL_EPOCH.day) + timedelta(  # noqa: DTZ001
        days=days, seconds=seconds
    )


def _date_from_text(text: str) -> date | None:
    m = _ISO_DATE.match(text)
    if m:
        return date(int(m[1]), int(m[2]), int(m[3]))
    m = _DMY.match(text)
    if m:
        return date(int(m[4]), int(m[3]), int(m[1]))
    m = _YMD.match(text)
    if m:
        return date(int(m[1]), int(m[3]), int(m[4]))
    return None


def parse_date(value: object, fmt: str | None = None) -> date:
    """A calendar date from a cell (see the module docstring for the accepted forms)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        raise ValueError("not a date")
    if isinstance(value, int | float | Decimal):
        return excel_serial_to_datetime(value).date()
    if not isinstance(value, str):
        raise ValueError(f"not a date: {value!r}")
    text = value.strip()
    try:
        if fmt is not None:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a date, no zone involved
        parsed = _date_from_text(text)
        if parsed is not None:
            return parsed
        if "T" in text or " " in text:
            head = text.replace("T", " ").split(" ", 1)[0]
            parsed = _date_from_text(head)
            if parsed is not None:
                return parsed
        if _SERIAL.match(text):
            return excel_serial_to_datetime(Decimal(text)).date()
    except ValueError as exc:
        raise ValueError(f"not a valid date: {value!r}") from exc
    raise ValueError(f"not a date: {value!r} (use YYYY-MM-DD, DD/MM/YYYY, DD.MM.YYYY or YYYY.MM.DD)")


def _offset(text: str) -> timedelta:
    if text == "Z":
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))


def parse_datetime(value: object, fmt: str | None = None) -> datetime:
    """A timestamp from a cell; naive when the cell names no offset (the caller picks the zone).

    Accepts ISO 8601 (``2024-05-31T14:05:00+07:00``, ``Z``), any accepted date followed by a time
    (``31/05/2024 14:05``), a bare date (midnight) and Excel serials with a day fraction."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)  # noqa: DTZ001 - naive on purpose
    if isinstance(value, bool):
        raise ValueError("not a timestamp")
    if isinstance(value, int | float | Decimal):
        return excel_serial_to_datetime(value)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    try:
        if fmt is not None:
            try:
                return datetime.strptime(text, fmt)  # noqa: DTZ007 - naive on purpose
            except ValueError:
                pass
        if _SERIAL.match(text) and len(text) != 8:
            return excel_serial_to_datetime(Decimal(text))
        if "T" in text or " " in text:
            head, tail = re.split(r"[T ]", text, maxsplit=1)
        else:
            head, tail = text, ""
        day = datetime.strptime(head, fmt).date() if fmt is not None and "%H" not in fmt else None  # noqa: DTZ007
        if day is None:
            day = _date_from_text(head)
        if day is None:
            raise ValueError(f"not a timestamp: {value!r}")
        tail = tail.strip()
        if not tail:
            return datetime(day.year, day.month, day.day)  # noqa: DTZ001 - naive on purpose
        m = _TIME.match(tail)
        if not m:
            raise ValueError(f"not a timestamp: {value!r}")
        micro = int((m[4] or "0").ljust(6, "0"))
        clock = time(int(m[1]), int(m[2]), int(m[3] or 0), micro)
        result = datetime.combine(day, clock)
        if m[5]:
            result = result.replace(tzinfo=UTC) - _offset(m[5])
        return result
    except ValueError as exc:
        raise ValueError(
            f"not a timestamp: {value!r} (use ISO 8601 such as 2024-05-31T14:05:00+07:00)"
        ) from exc
