"""Console customer forms: add, edit (stale versions refused), merge, erase; roles."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from patron.auth import Role
from patron.core.db import Database
from patron.customers import CustomerCreateInput, create_customer, get_customer, list_customers
from tests.web.ui.conftest import csrf_of, post_form

Console = Callable[[Role | str], TestClient]


def _make(database: Database, **fields: object) -> str:
    with database.unit_of_work() as s:
        return create_customer(s, CustomerCreateInput(**fields)).id  # type: ignore[arg-type]


def test_add_a_customer(owner: TestClient, database: Database) -> None:
    assert 'href="/customers/new"' in owner.get("/customers").text
    response = post_form(
        owner,
        "/customers/new",
        "/customers/new",
        {"given_name": "Văn An", "family_name": "Nguyễn", "email": "an@example.vn", "phone": "0912 345 678",
         "country": "vn", "birthday": "1990-05-02", "tags": "vip, tea", "form_of_address": "anh"},
    )  # fmt: skip
    assert response.status_code == 303  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        found = list_customers(s, q="an@example.vn").items
        assert len(found) == 1
        c = found[0]
        assert (c.given_name, c.family_name, c.phone, c.country, c.language) == (
            "Văn An", "Nguyễn", "+84912345678", "VN", "vi",
        )  # fmt: skip
        assert c.tags == ("vip", "tea")
    assert response.headers["location"] == f"/customers/{c.id}?flash=customer_created"  # type: ignore[attr-defined]
    page = owner.get(response.headers["location"])  # type: ignore[attr-defined]
    assert "Nguyễn Văn An" in page.text
    assert "Customer added." in page.text


def test_add_shows_errors_inline_and_keeps_what_was_typed(owner: TestClient, database: Database) -> None:
    bad = post_form(
        owner,
        "/customers/new",
        "/customers/new",
        {
            "given_name": "Zsófia",
            "family_name": "Kovács",
            "email": "not-an-email",
            "phone": "12",
            "country": "HU",
        },
    )
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert 'data-error-for="email"' in bad.text  # type: ignore[attr-defined]
    assert 'data-error-for="phone"' in bad.text  # type: ignore[attr-defined]
    assert 'value="Zsófia"' in bad.text  # type: ignore[attr-defined]
    with database.unit_of_work(write=False) as s:
        assert list_customers(s).items == []


def test_a_shared_email_needs_a_confirmation(owner: TestClient, database: Database) -> None:
    _make(database, first_name="Anna", last_name="Nagy", email="family@example.hu")
    form = {"given_name": "Péter", "family_name": "Nagy", "email": "family@example.hu"}
    refused = post_form(owner, "/customers/new", "/customers/new", form)
    assert refused.status_code == 409  # type: ignore[attr-defined]
    assert 'name="allow_duplicate_email"' in refused.text  # type: ignore[attr-defined]
    allowed = owner.post(
        "/customers/new",
        data={**form, "allow_duplicate_email": "1", "csrf_token": csrf_of(refused.text)},  # type: ignore[attr-defined]
        follow_redirects=False,
    )
    assert allowed.status_code == 303
    with database.unit_of_work(write=False) as s:
        assert len(list_customers(s, q="family@example.hu").items) == 2


def test_edit_and_a_stale_form_is_refused(owner: TestClient, database: Database) -> None:
    cid = _make(database, first_name="Somchai", last_name="Jaidee", country="TH", email="s@example.th")
    url = f"/customers/{cid}/edit"
    assert f'href="{url}"' in owner.get(f"/customers/{cid}").text
    page = owner.get(url)
    assert 'name="version" value="1"' in page.text
    fields = {"given_name": "Somchai", "family_name": "Jaidee", "email": "s@example.th", "country": "TH",
              "phone": "081 234 5678", "version": "1", "csrf_token": csrf_of(page.text)}  # fmt: skip
    saved = owner.post(url, data=fields, follow_redirects=False)
    assert saved.status_code == 303
    with database.unit_of_work(write=False) as s:
        c = get_customer(s, cid)
        assert (c.phone, c.version) == ("+66812345678", 2)
    stale = owner.post(
        url, data={**fields, "given_name": "Somsak"}, follow_redirects=False
    )  # still version 1
    assert stale.status_code == 412
    assert 'name="version" value="2"' in stale.text  # the form now holds the current version
    with database.unit_of_work(write=False) as s:
        assert get_customer(s, cid).given_name == "Somchai"


def test_merge_moves_the_duplicate_into_the_kept_customer(owner: TestClient, database: Database) -> None:
    keep = _make(database, first_name="Thị Lan", last_name="Trần", email="lan@example.vn")
    dup = _make(database, first_name="Lan", last_name="Tran", email="lan.tran@example.vn")
    page = owner.get(f"/customers/{dup}/edit")
    missing = owner.post(
        f"/customers/{dup}/merge",
        data={"target_id": "", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert missing.status_code == 422
    merged = owner.post(
        f"/customers/{dup}/merge",
        data={"target_id": keep, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert merged.status_code == 303
    assert merged.headers["location"] == f"/customers/{keep}?flash=customer_merged"
    with database.unit_of_work(write=False) as s:
        assert get_customer(s, dup).merged_into_id == keep
        assert "lan.tran@example.vn" in get_customer(s, keep).emails


def test_erase_needs_the_typed_word_and_the_erase_permission(console: Console, database: Database) -> None:
    cid = _make(database, first_name="Ödön", last_name="Szabó", email="odon@example.hu")
    marketer = console(Role.MARKETER)  # may edit, may not erase
    page = marketer.get(f"/customers/{cid}/edit")
    assert page.status_code == 200
    forbidden = marketer.post(
        f"/customers/{cid}/erase",
        data={"confirm": "ERASE", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert forbidden.status_code == 403
    owner = console(Role.OWNER)
    page = owner.get(f"/customers/{cid}/edit")
    unconfirmed = owner.post(
        f"/customers/{cid}/erase",
        data={"confirm": "yes", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert unconfirmed.status_code == 422
    assert 'data-error-for="confirm"' in unconfirmed.text
    with database.unit_of_work(write=False) as s:
        assert get_customer(s, cid).erased_at is None
    erased = owner.post(
        f"/customers/{cid}/erase",
        data={"confirm": "ERASE", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert erased.status_code == 303
    with database.unit_of_work(write=False) as s:
        c = get_customer(s, cid)
        assert c.erased_at is not None
        assert c.email is None


def test_viewers_cannot_open_the_forms(console: Console, database: Database) -> None:
    cid = _make(database, first_name="An", last_name="Lê")
    viewer = console(Role.VIEWER)
    assert viewer.get("/customers/new").status_code == 403
    assert viewer.get(f"/customers/{cid}/edit").status_code == 403
    assert 'href="/customers/new"' not in viewer.get("/customers").text
    assert f'href="/customers/{cid}/edit"' not in viewer.get(f"/customers/{cid}").text
