from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patron.core.errors import ValidationFailed
from patron.core.pagination import clamp_limit, decode_cursor, encode_cursor


@given(st.lists(st.one_of(st.text(), st.integers(), st.none()), max_size=4))
def test_cursor_round_trip(values: list[object]) -> None:
    assert decode_cursor(encode_cursor(values)) == values


def test_bad_cursor_and_limits() -> None:
    with pytest.raises(ValidationFailed) as err:
        decode_cursor("!!!not-base64")
    assert err.value.code == "invalid_cursor"
    assert clamp_limit(None) == 50
    assert clamp_limit(200) == 200
    with pytest.raises(ValidationFailed):
        clamp_limit(201)
    with pytest.raises(ValidationFailed):
        clamp_limit(0)
