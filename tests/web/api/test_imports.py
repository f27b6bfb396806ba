"""/api/v1/imports: upload jobs (multipart), status and counts, rejected rows, undo — with the
401/403/404/409/413/422 answers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from patron.auth import Role
from tests.imports.support import csv_text, to_cp1258

API = "/api/v1/imports"
PROBLEM = "application/problem+json"
HEADER = ["external_id", "first_name", "last_name", "email", "phone", "birthday", "country"]
ROWS = [
    ["VN-1", "Văn Điền", "Nguyễn", "dien@example.vn", "0912 345 678", "31/05/1990", "VN"],
    ["VN-2", "Thị Hương", "Trần", "huong-at-example.vn", "", "", "VN"],
    ["VN-3", "Quốc Bảo", "Lê", "", "", "1985.12.01", "VN"],
]


def upload(
    client: TestClient,
    data: bytes,
    *,
    name: str = "customers.csv",
    kind: str = "customers",
    headers: dict[str, str] | None = None,
    **form: Any,
) -> Any:
    return client.post(
        API, data={"kind": kind, **form}, files={"file": (name, data, "text/csv")}, headers=headers or {}
    )


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["code"], body["status"]) == (code, status)
    return body


def customer_names(api: TestClient) -> dict[str, tuple[str, str]]:
    response = api.get("/api/v1/customers", params={"limit": 200})
    assert response.status_code == 200, response.text
    return {c["external_id"]: (c["first_name"], c["last_name"]) for c in response.json()["items"]}


def test_upload_runs_the_job_and_reports(api: TestClient) -> None:
    data = to_cp1258(csv_text([HEADER, *ROWS], ";"))
    started = upload(api, data, map=["phone=phone"])
    assert started.status_code == 202, started.text
    batch = started.json()
    assert (batch["status"], batch["kind"], batch["file_name"], batch["file_size"]) == (
        "queued",
        "customers",
        "customers.csv",
        len(data),
    )
    # the job ran after the response (TestClient waits for background tasks)
    got = api.get(f"{API}/{batch['id']}")
    assert got.status_code == 200
    assert got.headers["ETag"].startswith('W/"')
    done = got.json()
    assert (done["status"], done["encoding"], done["delimiter"], done["file_format"]) == (
        "completed",
        "cp1258",
        ";",
        "csv",
    )
    assert (done["rows_total"], done["rows_accepted"], done["rows_rejected"]) == (3, 2, 1)
    assert (done["created"], done["updated"], done["unchanged"], done["progress"]) == (2, 0, 0, 1.0)
    assert done["options"]["mapping"] == {"phone": "phone"}
    assert done["actor_label"] == "owner@example.com"
    assert done["started_at"] is not None
    assert done["finished_at"] is not None
    assert customer_names(api) == {"VN-1": ("Văn Điền", "Nguyễn"), "VN-3": ("Quốc Bảo", "Lê")}

    rejects = api.get(f"{API}/{batch['id']}/rejects")
    assert rejects.status_code == 200
    assert rejects.json() == {
        "items": [{
            "line": 3, "external_id": "VN-2", "message": "email: not a valid email address",
            "reasons": [{"column": "email", "field": "email", "message": "not a valid email address",
                         "code": "invalid_email"}],
            "values": dict(zip(HEADER, ["VN-2", "Thị Hương", "Trần", "huong-at-example.vn", None, None, "VN"],
                               strict=True)),
        }],
        "next_cursor": None,
    }  # fmt: skip

    listed = api.get(API)
    assert [b["id"] for b in listed.json()["items"]] == [batch["id"]]


def test_rerun_undo_and_conflicts(api: TestClient) -> None:
    data = csv_text([HEADER, ROWS[0], ROWS[2]]).encode()
    first = upload(api, data).json()["id"]
    second = upload(api, data).json()["id"]
    again = api.get(f"{API}/{second}").json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    changed = csv_text([HEADER, [*ROWS[0][:3], "new@example.vn", *ROWS[0][4:]]]).encode()
    third = upload(api, changed).json()["id"]
    assert api.get(f"{API}/{third}").json()["updated"] == 1

    blocked = problem(api.post(f"{API}/{first}/undo"), 409, "import_undo_blocked")
    assert blocked["blocking_batches"] == [third]
    undone = api.post(f"{API}/{third}/undo")
    assert undone.status_code == 200, undone.text
    body = undone.json()
    assert (body["deleted"], body["restored"], body["batch"]["status"]) == (0, 1, "undone")
    assert body["batch"]["undone_by"].startswith("user:")
    problem(api.post(f"{API}/{third}/undo"), 409, "import_already_undone")
    emails = {c["external_id"]: c["email"] for c in api.get("/api/v1/customers").json()["items"]}
    assert emails["VN-1"] == "dien@example.vn"
    assert api.post(f"{API}/{first}/undo").json()["deleted"] == 2
    assert customer_names(api) == {}


def test_dry_run_through_the_api(api: TestClient) -> None:
    started = upload(api, csv_text([HEADER, *ROWS]).encode(), dry_run="true")
    batch = api.get(f"{API}/{started.json()['id']}").json()
    assert (batch["dry_run"], batch["status"], batch["created"], batch["rows_rejected"]) == (
        True,
        "completed",
        2,
        1,
    )
    assert customer_names(api) == {}
    problem(api.post(f"{API}/{batch['id']}/undo"), 409, "import_not_undoable")


def test_files_that_cannot_be_imported_answer_422_and_create_no_batch(api: TestClient) -> None:
    body = problem(upload(api, b"external_id,first_name,shoe size\nX,A,42\n"), 422, "unknown_columns")
    assert "shoe size" in body["detail"]
    problem(upload(api, b"first_name\nA\n"), 422, "missing_key_column")
    problem(upload(api, b"", name="empty.csv"), 422, "empty_file")
    problem(upload(api, b"PK\x03\x04garbage", name="book.xlsx"), 422, "bad_xlsx")
    problem(upload(api, b"a,b\n", date_format="whenever"), 422, "bad_date_format")
    problem(upload(api, b"a,b\n", map=["nonsense"]), 422, "bad_mapping")
    problem(upload(api, b"external_id\nX\n", kind="planets"), 422, "validation_failed")
    assert api.get(API).json()["items"] == []


def test_upload_size_limit(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from patron.web import uploads

    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 100)
    problem(upload(api, b"external_id\n" + b"X\n" * 100), 413, "import_file_too_large")
    assert api.get(API).json()["items"] == []


def test_not_found(api: TestClient) -> None:
    problem(api.get(f"{API}/nope"), 404, "import_not_found")
    problem(api.get(f"{API}/nope/rejects"), 404, "import_not_found")
    problem(api.post(f"{API}/nope/undo"), 404, "import_not_found")


def test_pagination(api: TestClient) -> None:
    ids = [upload(api, csv_text([HEADER, ROWS[1]]).encode()).json()["id"] for _ in range(3)]
    page = api.get(API, params={"limit": 2}).json()
    assert [b["id"] for b in page["items"]] == ids[::-1][:2]
    rest = api.get(API, params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert ([b["id"] for b in rest["items"]], rest["next_cursor"]) == ([ids[0]], None)
    bad = [HEADER, *([["", "x", "y", "", "", "", ""]] * 3)]
    batch = upload(api, csv_text(bad).encode()).json()["id"]
    first = api.get(f"{API}/{batch}/rejects", params={"limit": 2}).json()
    assert [r["line"] for r in first["items"]] == [2, 3]
    second = api.get(f"{API}/{batch}/rejects", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert ([r["line"] for r in second["items"]], second["next_cursor"]) == ([4], None)


def test_idempotency_key_replays_the_upload(api: TestClient) -> None:
    data = csv_text([HEADER, ROWS[0]]).encode()
    first = upload(api, data, headers={"Idempotency-Key": "import-1"})
    again = upload(api, data, headers={"Idempotency-Key": "import-1"})
    assert again.status_code == 202
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len(api.get(API).json()["items"]) == 1


@pytest.mark.parametrize(
    ("role", "status"), [(None, 401), (Role.VIEWER, 403), (Role.AGENT, 403), (Role.MARKETER, 202)]
)
def test_who_may_import(client: TestClient, tokens: Any, role: Role | None, status: int) -> None:
    headers = {} if role is None else tokens.headers(role)
    response = upload(client, csv_text([HEADER, ROWS[0]]).encode(), headers=headers)
    assert response.status_code == status, response.text
    listed = client.get(API, headers=headers)
    assert listed.status_code == (200 if status == 202 else status)
