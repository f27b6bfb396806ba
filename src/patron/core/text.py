"""Text folding for accent- and case-insensitive search (Vietnamese đ→d included)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SPECIAL = str.maketrans({"đ": "d", "Đ": "d", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l", "ß": "ss"})
_DIGITS = re.compile(r"\d")


def fold(value: str) -> str:
    """Lower-case, strip combining marks (except Thai vowels/tones, which carry meaning)."""
    if value.isascii():  # nothing to decompose or strip: the same result, much faster
        return value.lower()
    return _fold_unicode(value)


@lru_cache(maxsize=65536)  # names repeat: a customer file holds far fewer distinct names than rows
def _fold_unicode(value: str) -> str:
    value = value.translate(_SPECIAL)
    decomposed = unicodedata.normalize("NFKD", value)
    kept = [ch for ch in decomposed if not (unicodedata.combining(ch) and not ("\u0e00" <= ch <= "\u0e7f"))]
    return unicodedata.normalize("NFC", "".join(kept)).casefold()


def digits_only(value: str) -> str:
    return "".join(_DIGITS.findall(value))
