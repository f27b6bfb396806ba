"""Text folding for accent- and case-insensitive search (Vietnamese đ→d included)."""

from __future__ import annotations

import re
import unicodedata

_SPECIAL = str.maketrans({"đ": "d", "Đ": "d", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l", "ß": "ss"})
_DIGITS = re.compile(r"\d")


def fold(value: str) -> str:
    """Lower-case, strip combining marks (except Thai vowels/tones, which carry meaning)."""
    value = value.translate(_SPECIAL)
    decomposed = unicodedata.normalize("NFKD", value)
    kept = [ch for ch in decomposed if not (unicodedata.combining(ch) and not ("\u0e00" <= ch <= "\u0e7f"))]
    return unicodedata.normalize("NFC", "".join(kept)).casefold()


def digits_only(value: str) -> str:
    return "".join(_DIGITS.findall(value))
