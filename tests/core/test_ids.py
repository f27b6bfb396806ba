from __future__ import annotations

import time
import uuid

from patron.core.ids import is_uuid, new_id


def test_new_ids_are_uuid7_unique_and_time_ordered() -> None:
    ids = []
    for _ in range(2000):
        ids.append(new_id())
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 7 for u in parsed)
    assert all(u.variant == uuid.RFC_4122 for u in parsed)
    assert len(set(ids)) == len(ids)
    before = new_id()
    time.sleep(0.002)
    after = new_id()
    assert before[:13] < after[:13]
    assert is_uuid(before)
    assert not is_uuid("not-a-uuid")
