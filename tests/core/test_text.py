"""Text folding: the ASCII fast path and the cached Unicode path fold alike."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from patron.core.text import _fold_unicode, fold


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_fast_path_equals_the_unicode_fold(value: str) -> None:
    assert fold(value) == _fold_unicode(value)


@given(st.text())
def test_fold_is_idempotent_and_lower_case(value: str) -> None:
    once = fold(value)
    assert fold(once) == once


def test_examples() -> None:
    assert [fold(v) for v in ("Nguyễn", "ĐIỀN", "Szőke Ödön", "ทองดี", "Straße", "ANNA@X.HU")] == [
        "nguyen", "dien", "szoke odon", "ทองดี", "strasse", "anna@x.hu",
    ]  # fmt: skip
