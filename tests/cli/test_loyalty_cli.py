"""``patron loyalty …`` through the real executable."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update

from patron.core.db import Database
from patron.customers import CustomerCreateInput, create_customer, find_customer_id_by_external_id
from patron.loyalty import create_promotion, create_tier, get_account, reconcile
from patron.loyalty.models import LoyaltyAccount, LoyaltyLot
from tests.loyalty.conftest import setup_loyalty

PATRON = str(Path(sys.executable).with_name("patron"))


def run(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATRON_DATABASE_URL": db_url}
    return subprocess.run(
        [PATRON, "loyalty", *args],
        env=env,
        capture_output=True,
        text=True,
        input="",
        timeout=120,
        check=False,
    )


def test_adjust_show_expire_and_reconcile(db_url: str, database: Database) -> None:
    with database.unit_of_work() as s:
        setup_loyalty(s)
        customer = create_customer(s, CustomerCreateInput(first_name="Somchai", last_name="Jaidee")).id

    result = run(db_url, "adjust", customer, "150", "--reason", "migration fix", "--key", "fix-1")
    assert result.returncode == 0, result.stderr
    assert "available 150" in result.stderr
    again = run(db_url, "adjust", customer, "150", "--reason", "migration fix", "--key", "fix-1")
    assert "already applied" in again.stderr
    short = run(db_url, "adjust", "--reason", "oops", "--", customer, "-500")
    assert short.returncode == 1
    assert "insufficient_points" in short.stderr

    shown = run(db_url, "account", customer)
    assert json.loads(shown.stdout)["available"] == 150
    programme = json.loads(run(db_url, "programme").stdout)
    assert (programme["pending_days"], [m["market_code"] for m in programme["markets"]]) == (
        14,
        ["HU", "TH", "VN"],
    )
    expired = run(db_url, "expire")
    assert (expired.returncode, expired.stderr.strip()) == (0, "vested 0 points, expired 0 points")

    ok = run(db_url, "reconcile")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"ok": True, "accounts": 1, "drift": []}
    with database.unit_of_work() as s:
        s.execute(update(LoyaltyAccount).values(available=999))
    drift = run(db_url, "reconcile")
    assert drift.returncode == 1
    assert [d["field"] for d in json.loads(drift.stdout)["drift"]] == ["available", "lots"]
    with database.unit_of_work(write=False) as s:
        assert get_account(s, customer).available == 999


def test_coupons_generate_and_export(db_url: str, database: Database, tmp_path: Path) -> None:
    with database.unit_of_work() as s:
        setup_loyalty(s)
        promotion = create_promotion(s, {"name": "Songkran", "discount_kind": "percent", "percent": "20"}).id
    made = run(db_url, "coupons", "generate", promotion, "--count", "25", "--prefix", "sk")
    assert made.returncode == 0, made.stderr
    codes = made.stdout.split()
    assert len(set(codes)) == 25
    assert all(c.startswith("SK-") for c in codes)
    target = tmp_path / "codes.csv"
    exported = run(db_url, "coupons", "export", promotion, "--output", str(target))
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0] == ["code", "redemptions", "customer_id"]
    assert sorted(r[0] for r in rows[1:]) == sorted(codes)
    missing = run(db_url, "coupons", "export", "no-such-promotion")
    assert (missing.returncode, "promotion_not_found" in missing.stderr) == (1, True)


def test_import_balances_from_another_system(db_url: str, database: Database, tmp_path: Path) -> None:
    with database.unit_of_work() as s:
        setup_loyalty(s)
        create_tier(s, {"code": "gold", "rank": 1, "threshold": 1000, "names": {"en": "Gold"}})
        for ext in ("M-1", "M-2"):
            create_customer(s, CustomerCreateInput(first_name="Nguyễn", last_name="An", external_id=ext))
    file = tmp_path / "balances.csv"
    file.write_text(
        "Mã khách hàng,Điểm,Hạng,Hạn sử dụng\nM-1,1200,gold,2026-12-31\nM-2,300,,\nM-404,10,,\nM-2,abc,,\n",
        encoding="utf-8",
    )
    dry = run(db_url, "import-balances", str(file), "--dry-run", "--rejects", str(tmp_path / "r.csv"))
    assert dry.returncode == 3, dry.stderr
    first = run(db_url, "import-balances", str(file), "--rejects", str(tmp_path / "r.csv"))
    assert first.returncode == 3, first.stderr  # two rows rejected: unknown customer, bad points
    assert "2 created" in first.stdout
    second = run(db_url, "import-balances", str(file), "--rejects", str(tmp_path / "r.csv"))
    assert "0 created" in second.stdout
    with database.unit_of_work(write=False) as s:
        m1 = get_account(s, find_customer_id_by_external_id(s, "M-1") or "")
        m2 = get_account(s, find_customer_id_by_external_id(s, "M-2") or "")
        assert (m1.available, m1.tier_code, m1.lifetime_earned) == (1200, "gold", 0)
        assert (m2.available, m2.tier_code) == (300, None)
        lot = s.scalars(select(LoyaltyLot).where(LoyaltyLot.account_id == m1.account_id)).one()
        assert lot.expires_at == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)  # end of 31 Dec, Budapest
        assert reconcile(s).ok
    batch = first.stdout.split("undo: patron import undo ")[1].split(")")[0]
    undone = subprocess.run(
        [PATRON, "import", "undo", batch],
        env={**os.environ, "PATRON_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        input="",
        timeout=120,
        check=False,
    )
    assert undone.returncode == 0, undone.stderr
    with database.unit_of_work(write=False) as s:
        assert get_account(s, find_customer_id_by_external_id(s, "M-1") or "").available == 0
        assert reconcile(s).ok
