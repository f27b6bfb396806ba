"""Imports page: upload, batch with counts and rejected rows, undo."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from patron.auth import Role
from patron.core.db import Database
from patron.customers import list_customers
from tests.web.ui.conftest import csrf_of

Console = Callable[[Role | str], TestClient]

CSV = (
    "external_id;first_name;last_name;email;phone;country;language\n"
    "c-1;Văn An;Nguyễn;an@example.vn;0912345678;VN;vi\n"
    "c-2;Anna;Kovács;not-an-email;;HU;hu\n"
    "c-3;สมชาย;ใจดี;somchai@example.th;;TH;th\n"
).encode()


def _upload(client: TestClient, content: bytes, *, name: str = "customers.csv", **fields: str) -> object:
    token = csrf_of(client.get("/imports").text)
    return client.post(
        "/imports",
        data={"csrf_token": token, "kind": "customers", **fields},
        files={"file": (name, content, "text/csv")},
        follow_redirects=False,
    )


def test_upload_imports_and_shows_rejects_then_undo(owner: TestClient, database: Database) -> None:
    response = _upload(owner, CSV)
    assert response.status_code == 303  # type: ignore[attr-defined]
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert location.endswith("?flash=import_queued")
    batch_url = location.split("?")[0]
    page = owner.get(batch_url)
    assert page.status_code == 200
    assert 'id="batch-status" data-status="completed"' in page.text
    assert '<dd id="rows-accepted">2</dd>' in page.text
    assert '<dd id="rows-rejected">1</dd>' in page.text
    assert '<tr data-line="3"><td class="num">3</td><td>c-2</td>' in page.text
    with database.unit_of_work() as s:
        assert {c.external_id for c in list_customers(s).items} == {"c-1", "c-3"}
    listing = owner.get("/imports")
    assert "customers.csv" in listing.text
    undo = owner.post(f"{batch_url}/undo", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert undo.status_code == 303
    assert 'data-status="undone"' in owner.get(batch_url).text
    with database.unit_of_work() as s:
        assert list_customers(s).items == []
    again = owner.post(f"{batch_url}/undo", data={"csrf_token": csrf_of(page.text)})
    assert again.status_code == 409


def test_unreadable_file_is_refused_inline(owner: TestClient) -> None:
    response = _upload(owner, b"nothing,useful\n1,2\n", name="junk.csv")
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert 'data-error-for="file"' in response.text  # type: ignore[attr-defined]
    missing = _upload(owner, b"", name="")
    assert missing.status_code == 422  # type: ignore[attr-defined]


def test_dry_run_changes_nothing_and_cannot_be_undone(owner: TestClient, database: Database) -> None:
    response = _upload(owner, CSV, dry_run="1")
    batch_url = response.headers["location"].split("?")[0]  # type: ignore[attr-defined]
    page = owner.get(batch_url)
    assert "dry run" in page.text
    assert 'id="undo-import"' not in page.text
    with database.unit_of_work() as s:
        assert list_customers(s).items == []


def test_roles_without_imports_cannot_upload(console: Console) -> None:
    viewer = console(Role.VIEWER)
    assert viewer.get("/imports").status_code == 403
    assert 'data-nav="/imports"' not in viewer.get("/customers").text
    token = csrf_of(viewer.get("/customers").text)
    refused = viewer.post(
        "/imports",
        data={"csrf_token": token, "kind": "customers"},
        files={"file": ("c.csv", CSV, "text/csv")},
    )
    assert refused.status_code == 403
