"""``patron export-customer`` and ``patron erase-customer`` through the real executable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from patron.core.db import Database
from patron.customers import CustomerCreateInput, create_customer, get_customer, record_interaction

PATRON = str(Path(sys.executable).with_name("patron"))


def run(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATRON_DATABASE_URL": db_url}
    return subprocess.run(
        [PATRON, *args], env=env, capture_output=True, text=True, input="", timeout=120, check=False
    )


def _customer(database: Database) -> str:
    with database.unit_of_work() as s:
        cid = create_customer(
            s,
            CustomerCreateInput(
                first_name="Thị Điền", last_name="Trần", email="dien@example.vn", country="VN"
            ),
        ).id
        record_interaction(
            s, cid, channel="phone", direction="inbound", kind="call", summary="asked about tea"
        )
    return cid


def test_export_customer(db_url: str, database: Database, tmp_path: Path) -> None:
    cid = _customer(database)
    shown = run(db_url, "export-customer", cid)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["customer_id"] == cid
    assert data["customers"]["profile"]["display_name"] == "Trần Thị Điền"
    assert [i["summary"] for i in data["customers"]["interactions"]] == ["asked about tea"]
    target = tmp_path / "out.json"
    written = run(db_url, "export-customer", cid, "--output", str(target))
    assert written.returncode == 0, written.stderr
    assert json.loads(target.read_text(encoding="utf-8"))["customers"] == data["customers"]
    missing = run(db_url, "export-customer", "01a00000-0000-7000-8000-000000000000")
    assert missing.returncode == 1
    assert "customer_not_found" in missing.stderr


def test_erase_customer_needs_yes_without_a_terminal(db_url: str, database: Database) -> None:
    cid = _customer(database)
    refused = run(db_url, "erase-customer", cid)
    assert refused.returncode == 1
    assert "standard input is not a terminal; pass --yes" in " ".join(refused.stderr.split())
    with database.unit_of_work(write=False) as s:
        assert get_customer(s, cid).erased_at is None
    erased = run(db_url, "erase-customer", cid, "--yes")
    assert erased.returncode == 0, erased.stderr
    with database.unit_of_work(write=False) as s:
        view = get_customer(s, cid)
    assert view.erased_at is not None
    assert (view.display_name, view.email) == ("", None)
