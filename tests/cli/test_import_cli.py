"""``patron import`` through the real executable: exit codes 0/3/1, the rejected-rows file, the
lines naming each rejected row, dry runs and undo."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from patron.core.db import Database
from patron.customers.models import Customer
from patron.imports.models import ImportBatch
from tests.imports.support import write_csv

PATRON = str(Path(sys.executable).with_name("patron"))
HEADER = ["external_id", "first_name", "last_name", "email", "phone", "birthday", "country"]
GOOD = [
    ["VN-1", "Văn Điền", "Nguyễn", "dien@example.vn", "0912 345 678", "31/05/1990", "VN"],
    ["HU-1", "Péter", "Kovács", "peter@example.hu", "+36 30 123 4567", "1979.03.02", "HU"],
    ["TH-1", "สมชาย", "ใจดี", "somchai@example.th", "081 234 5678", "15.01.1970", "TH"],
]
BAD = [
    ["VN-2", "Thị Hương", "Trần", "huong-at-example.vn", "", "", "VN"],
    ["HU-2", "Zsófia", "Szőke", "", "", "30/02/1990", "HU"],
]


def patron(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATRON_DATABASE_URL": db_url, "COLUMNS": "200"}
    return subprocess.run(
        [PATRON, *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def customers(database: Database) -> int:
    with database.unit_of_work(write=False) as s:
        return int(s.scalar(select(func.count()).select_from(Customer)) or 0)


def test_all_accepted_exits_0_and_a_rerun_changes_nothing(
    db_url: str, database: Database, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "customers.csv", [HEADER, *GOOD], delimiter=";", encoding="utf-8", bom=True)
    result = patron(db_url, "import", "customers", str(path))
    assert result.returncode == 0, result.stderr
    assert "3 rows: 3 accepted, 0 rejected" in result.stdout
    assert "customers: 3 created, 0 updated, 0 unchanged" in result.stdout
    assert not (tmp_path / "customers.csv.rejected.csv").exists()
    assert customers(database) == 3
    again = patron(db_url, "import", "customers", str(path))
    assert again.returncode == 0, again.stderr
    assert "customers: 0 created, 0 updated, 3 unchanged" in again.stdout
    assert customers(database) == 3


def test_rejected_rows_exit_3_are_named_and_written(db_url: str, database: Database, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "mixed.csv", [HEADER, GOOD[0], BAD[0], GOOD[1], BAD[1], GOOD[2]])
    result = patron(db_url, "import", "customers", str(path))
    assert result.returncode == 3, result.stderr
    lines = result.stdout.splitlines()
    assert "line 3 (VN-2): email: not a valid email address" in lines
    assert any(line.startswith("line 5 (HU-2): birthday: not a valid date") for line in lines)
    assert "5 rows: 3 accepted, 2 rejected" in result.stdout
    rejects = tmp_path / "mixed.csv.rejected.csv"
    assert f"rejected rows written to {rejects}" in result.stdout
    raw = rejects.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with rejects.open(encoding="utf-8-sig", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["_line", *HEADER, "_reasons"]
    assert table[1] == ["3", *BAD[0], "email: not a valid email address"]
    assert table[2][:-1] == ["5", *BAD[1]]
    assert table[2][-1].startswith("birthday: not a valid date")
    assert len(table) == 3
    assert customers(database) == 3

    # the corrected rejects file imports as it is (the _line and _reasons columns are skipped)
    fixed = [row[:] for row in table]
    fixed[1][4] = "huong@example.vn"
    fixed[2][6] = "28/02/1990"
    fixed_path = tmp_path / "fixed.csv"
    with fixed_path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(fixed)
    out = tmp_path / "out" / "fixed-rejects.csv"
    result = patron(db_url, "import", "customers", str(fixed_path), "--rejects", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not out.exists()
    assert customers(database) == 5


def test_fatal_errors_exit_1(db_url: str, database: Database, tmp_path: Path) -> None:
    unknown = write_csv(
        tmp_path / "unknown.csv", [["external_id", "first_name", "shoe_size"], ["X-1", "A", "42"]]
    )
    result = patron(db_url, "import", "customers", str(unknown))
    assert result.returncode == 1
    assert "unknown columns: shoe_size" in result.stderr
    mapped = patron(db_url, "import", "customers", str(unknown), "--map", "shoe_size=attributes.shoe_size")
    assert mapped.returncode == 0, mapped.stderr
    missing = patron(db_url, "import", "customers", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1
    assert "no such file" in missing.stderr
    bad_option = patron(db_url, "import", "customers", str(unknown), "--date-format", "whenever")
    assert bad_option.returncode == 1
    assert "unknown date format" in bad_option.stderr
    assert customers(database) == 1


def test_dry_run_writes_nothing_and_undo_takes_a_batch_back(
    db_url: str, database: Database, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", [HEADER, *GOOD, BAD[0]], encoding="utf-8")
    dry = patron(db_url, "import", "customers", str(path), "--dry-run", "--chunk-size", "2")
    assert dry.returncode == 3, dry.stderr
    assert "dry run: 4 rows: 3 accepted, 1 rejected" in dry.stdout
    assert "customers: 3 would be created, 0 would be updated, 0 unchanged" in dry.stdout
    assert customers(database) == 0
    with database.unit_of_work(write=False) as s:
        assert s.scalar(select(func.count()).select_from(ImportBatch)) == 0

    real = patron(db_url, "import", "customers", str(path))
    assert real.returncode == 3
    assert customers(database) == 3
    with database.unit_of_work(write=False) as s:
        batch_id = s.scalar(select(ImportBatch.id))
    assert f"batch {batch_id} (undo: patron import undo {batch_id})" in real.stdout
    shown = patron(db_url, "import", "show", str(batch_id), "--rejects")
    assert shown.returncode == 0
    assert "line 5 (VN-2): email: not a valid email address" in shown.stdout
    undone = patron(db_url, "import", "undo", str(batch_id))
    assert undone.returncode == 0, undone.stderr
    assert f"batch {batch_id} undone: 3 deleted, 0 restored" in undone.stdout
    assert customers(database) == 0
    twice = patron(db_url, "import", "undo", str(batch_id))
    assert twice.returncode == 1
    assert "already undone" in twice.stderr
    listed = patron(db_url, "import", "list")
    assert f"{batch_id}" in listed.stdout
    assert "undone" in listed.stdout


def test_without_a_terminal_progress_is_plain_lines(db_url: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", [HEADER, *GOOD])
    result = patron(db_url, "import", "customers", str(path))
    assert result.returncode == 0
    assert "importing customers from c.csv (csv, utf-8-sig, ,)" in result.stderr
    assert "\x1b[" not in result.stdout + result.stderr
