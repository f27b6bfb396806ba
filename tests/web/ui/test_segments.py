"""Segment list and builder pages (the live count itself is exercised in the browser tests)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from patron.auth import Role
from patron.core.db import Database
from patron.customers import CustomerCreateInput, create_customer, list_segments
from tests.web.ui.conftest import csrf_of, post_form

Console = Callable[[Role | str], TestClient]


@pytest.fixture
def customers(database: Database) -> None:
    with database.unit_of_work() as s:
        create_customer(
            s,
            CustomerCreateInput(
                first_name="Văn An", last_name="Nguyễn", country="VN", language="vi", tags=("vip",)
            ),
        )
        create_customer(
            s, CustomerCreateInput(first_name="Thị Lan", last_name="Trần", country="VN", language="vi")
        )
        create_customer(
            s, CustomerCreateInput(first_name="Anna", last_name="Kovács", country="HU", language="hu")
        )


VN = {"type": "and", "rules": [{"type": "field", "field": "country", "op": "eq", "value": "VN"}]}


def test_create_segment_and_see_its_count(owner: TestClient, customers: None, database: Database) -> None:
    page = owner.get("/segments/new")
    assert page.status_code == 200
    assert 'id="segment-builder-config"' in page.text
    assert '<script src="/static/segment-builder.js" defer></script>' in page.text
    response = post_form(
        owner,
        "/segments/new",
        "/segments",
        {"name": "Vietnam", "description": "VN customers", "rules": json.dumps(VN)},
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        segment = list_segments(s).items[0]
        assert (segment.name, segment.rules) == ("Vietnam", VN)
        segment_id = segment.id
    detail = owner.get(f"/segments/{segment_id}")
    assert '<span id="live-count" class="live-count">2</span>' in detail.text
    listing = owner.get("/segments")
    assert '<tr data-segment="Vietnam">' in listing.text
    assert '<td class="num">2</td>' in listing.text


def test_update_segment_rules(owner: TestClient, customers: None, database: Database) -> None:
    post_form(owner, "/segments/new", "/segments", {"name": "Vietnam", "rules": json.dumps(VN)})
    with database.unit_of_work() as s:
        segment_id = list_segments(s).items[0].id
    vip = {"type": "and", "rules": [VN["rules"][0], {"type": "tag", "op": "has", "value": "vip"}]}
    url = f"/segments/{segment_id}"
    response = post_form(
        owner, url, url, {"name": "Vietnam VIP", "description": "", "rules": json.dumps(vip)}
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert '<span id="live-count" class="live-count">1</span>' in owner.get(url).text


def test_invalid_rules_are_shown_and_nothing_saved(
    owner: TestClient, customers: None, database: Database
) -> None:
    bad = {"type": "and", "rules": [{"type": "field", "field": "country", "op": "gt", "value": None}]}
    response = post_form(owner, "/segments/new", "/segments", {"name": "Broken", "rules": json.dumps(bad)})
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert 'data-error-for="rules"' in response.text  # type: ignore[attr-defined]
    not_json = post_form(owner, "/segments/new", "/segments", {"name": "Broken", "rules": "{not json"})
    assert "The rules are not valid JSON." in not_json.text  # type: ignore[attr-defined]
    no_name = post_form(owner, "/segments/new", "/segments", {"name": " ", "rules": json.dumps(VN)})
    assert 'data-error-for="name">This field is required.' in no_name.text  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        assert list_segments(s).items == []


def test_duplicate_name_is_an_inline_error(owner: TestClient, customers: None) -> None:
    post_form(owner, "/segments/new", "/segments", {"name": "Vietnam", "rules": json.dumps(VN)})
    again = post_form(owner, "/segments/new", "/segments", {"name": "Vietnam", "rules": json.dumps(VN)})
    assert again.status_code == 422  # type: ignore[attr-defined]
    assert 'data-error-for="name"' in again.text  # type: ignore[attr-defined]


def test_delete_segment(owner: TestClient, customers: None, database: Database) -> None:
    post_form(owner, "/segments/new", "/segments", {"name": "Temp", "rules": json.dumps(VN)})
    with database.unit_of_work() as s:
        segment_id = list_segments(s).items[0].id
    response = post_form(owner, f"/segments/{segment_id}", f"/segments/{segment_id}/delete", {})
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert owner.get(f"/segments/{segment_id}").status_code == 404


def test_preview_api_accepts_the_console_session_with_csrf_header(owner: TestClient, customers: None) -> None:
    """The builder's fetch: cookie session + X-CSRF-Token header (without it: 403)."""
    token = csrf_of(owner.get("/segments/new").text)
    ok = owner.post(
        "/api/v1/segments/preview", json={"rules": VN, "sample_size": 5}, headers={"X-CSRF-Token": token}
    )
    assert ok.status_code == 200
    assert ok.json()["count"] == 2
    refused = owner.post("/api/v1/segments/preview", json={"rules": VN})
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"


def test_viewer_sees_builder_read_only(
    console: Console, owner: TestClient, customers: None, database: Database
) -> None:
    post_form(owner, "/segments/new", "/segments", {"name": "Vietnam", "rules": json.dumps(VN)})
    with database.unit_of_work() as s:
        segment_id = list_segments(s).items[0].id
    viewer = console(Role.VIEWER)
    listing = viewer.get("/segments")
    assert 'id="new-segment"' not in listing.text
    page = viewer.get(f"/segments/{segment_id}")
    assert page.status_code == 200
    assert 'data-readonly="1"' in page.text
    assert 'id="save-segment"' not in page.text
    assert viewer.get("/segments/new").status_code == 403
    refused = post_form(
        viewer, "/segments", f"/segments/{segment_id}", {"name": "Hijacked", "rules": json.dumps(VN)}
    )
    assert refused.status_code == 403  # type: ignore[attr-defined]
    with database.unit_of_work() as s:
        assert list_segments(s).items[0].name == "Vietnam"
