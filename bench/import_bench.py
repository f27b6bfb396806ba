"""Benchmark of ``patron import`` — the shipped CLI, full validation — on SQLite and PostgreSQL.

Generates N customers and M order lines as CSV (seeded RNG, Vietnamese / Hungarian / Thai
customers with local names, phones, dates in the local formats, decimal commas for the
semicolon-separated order file), then runs ``patron import customers`` and ``patron import orders``
as child processes and records wall time, rows/s and the child's peak memory (``wait4`` rusage)
into ``bench/RESULTS.md`` (section "Import").

    .venv/bin/python bench/import_bench.py --customers 100000 --lines 500000
    .venv/bin/python bench/import_bench.py --customers 1000000 --lines 5000000 --db sqlite

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PATRON = str(Path(sys.executable).with_name("patron"))
RESULTS = ROOT / "bench" / "RESULTS.md"

VN_FAMILY = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
]
VN_GIVEN = [
    "Văn An",
    "Thị Hương",
    "Quốc Bảo",
    "Ngọc Ánh",
    "Minh Đức",
    "Thu Trang",
    "Văn Điền",
    "Thị Lan",
    "Hữu Phước",
    "Bảo Ngọc",
    "Gia Huy",
    "Khánh Linh",
    "Đức Thắng",
    "Mỹ Duyên",
]
HU_FAMILY = [
    "Nagy",
    "Kovács",
    "Tóth",
    "Szabó",
    "Horváth",
    "Varga",
    "Kiss",
    "Molnár",
    "Németh",
    "Farkas",
    "Balogh",
    "Papp",
    "Takács",
    "Szőke",
    "Fűzfa",
    "Juhász",
]
HU_GIVEN = [
    "László",
    "István",
    "Zoltán",
    "Péter",
    "Ödön",
    "Árpád",
    "Mária",
    "Erzsébet",
    "Zsófia",
    "Katalin",
    "Éva",
    "Ildikó",
    "Gyöngyi",
    "Ágnes",
]
TH_FAMILY = ["ใจดี", "รักไทย", "ศรีสุข", "สุขสวัสดิ์", "วงศ์สวัสดิ์", "บุญมา", "แสงทอง", "ทองดี", "มีสุข", "ประเสริฐ"]
TH_GIVEN = ["สมชาย", "สมหญิง", "ประยุทธ์", "วิภา", "กมล", "ณัฐพล", "สุดา", "อนันต์", "พิมพ์ชนก", "ธนากร"]
PRODUCTS = [
    ("CF-01", "Cà phê sữa đá", "45000", "VND"),
    ("BM-01", "Bánh mì", "25000", "VND"),
    ("PH-01", "Phở bò", "65000", "VND"),
    ("KV-01", "Kávé", "890", "HUF"),
    ("LA-01", "Lángos", "1490", "HUF"),
    ("TT-01", "ชาไทย", "45.50", "THB"),
    ("PT-01", "ผัดไทย", "89.00", "THB"),
    ("TS-01", "T-shirt", "19.90", "EUR"),
]


@dataclass
class Run:
    database: str
    kind: str
    rows: int
    seconds: float
    peak_mib: float
    exit_code: int
    summary: str
    cpu_seconds: float = 0.0  # the importing process's own user + system time (not the database server's)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def cpu_rate(self) -> float:
        return self.rows / self.cpu_seconds if self.cpu_seconds else 0.0


def _ascii(text: str) -> str:
    import unicodedata

    return "".join(
        c
        for c in unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
        if c.isascii() and c.isalnum()
    ).lower()


def generate_customers(path: Path, n: int, seed: int) -> list[str]:
    """Returns each customer's currency (for the orders file)."""
    rng = np.random.default_rng(seed)
    markets = rng.choice(4, size=n, p=[0.45, 0.25, 0.25, 0.05])
    fam = rng.integers(0, 10_000, size=n)
    giv = rng.integers(0, 10_000, size=n)
    phone = rng.integers(0, 100_000_000, size=n)
    days = rng.integers(0, 365 * 55, size=n)
    has_email = rng.random(n) < 0.8
    has_phone = rng.random(n) < 0.85
    fmt = rng.integers(0, 3, size=n)
    currencies: list[str] = []
    base = date(1950, 1, 1)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "external_id",
                "first_name",
                "last_name",
                "email",
                "phone",
                "birthday",
                "language",
                "time_zone",
                "country",
            ]
        )
        for i in range(n):
            m = int(markets[i])
            born = base + timedelta(days=int(days[i]))
            if m == 0:
                family, given = VN_FAMILY[fam[i] % len(VN_FAMILY)], VN_GIVEN[giv[i] % len(VN_GIVEN)]
                tel = f"09{phone[i] % 9:01d} {phone[i] // 10 % 1000:03d} {phone[i] // 10000 % 10000:04d}"
                bday = born.strftime("%d/%m/%Y") if fmt[i] else born.isoformat()
                lang, tz, country, cur, dom = "vi", "Asia/Ho_Chi_Minh", "VN", "VND", "example.vn"
            elif m == 1:
                family, given = HU_FAMILY[fam[i] % len(HU_FAMILY)], HU_GIVEN[giv[i] % len(HU_GIVEN)]
                tel = f"+36 30 {phone[i] % 1000:03d} {phone[i] // 1000 % 10000:04d}"
                bday = born.strftime("%Y.%m.%d") if fmt[i] else born.strftime("%d.%m.%Y")
                lang, tz, country, cur, dom = "hu", "Europe/Budapest", "HU", "HUF", "example.hu"
            elif m == 2:
                family, given = TH_FAMILY[fam[i] % len(TH_FAMILY)], TH_GIVEN[giv[i] % len(TH_GIVEN)]
                tel = f"08{phone[i] % 10} {phone[i] // 10 % 1000:03d} {phone[i] // 10000 % 10000:04d}"
                bday = str((born - date(1899, 12, 30)).days) if fmt[i] == 2 else born.isoformat()
                lang, tz, country, cur, dom = "th", "Asia/Bangkok", "TH", "THB", "example.th"
            else:
                family, given = "Smith", "Anna"
                tel = f"+44 7400 {phone[i] % 1000000:06d}"
                bday, lang, tz, country, cur, dom = (
                    born.isoformat(),
                    "en",
                    "Europe/London",
                    "GB",
                    "EUR",
                    "example.com",
                )
            local = _ascii(given)[:12] or "guest"
            email = f"{local}.{i}@{dom}" if has_email[i] else ""
            w.writerow(
                [f"C{i:08d}", given, family, email, tel if has_phone[i] else "", bday, lang, tz, country]
            )
            currencies.append(cur)
    return currencies


def generate_lines(path: Path, currencies: list[str], lines: int, seed: int) -> int:
    """Order lines, 1–9 per order (mean 5), grouped by order; amounts with decimal commas."""
    rng = np.random.default_rng(seed + 1)
    n_customers = len(currencies)
    by_currency = {c: [p for p in PRODUCTS if p[3] == c] for c in {"VND", "HUF", "THB", "EUR"}}
    start = datetime(2023, 1, 1, tzinfo=UTC)
    written = 0
    orders = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(
            [
                "order_id",
                "customer_id",
                "currency",
                "placed_at",
                "channel",
                "sku",
                "product_name",
                "quantity",
                "unit_price",
                "line_total",
                "total",
            ]
        )
        while written < lines:
            size = int(min(lines - written, rng.integers(1, 10)))
            cust = int(rng.integers(0, n_customers))
            currency = currencies[cust]
            catalogue = by_currency[currency]
            placed = (start + timedelta(minutes=int(rng.integers(0, 60 * 24 * 700)))).strftime(
                "%d/%m/%Y %H:%M"
            )
            channel = ("web", "store", "app", "phone", "marketplace")[int(rng.integers(0, 5))]
            picks = [catalogue[int(k)] for k in rng.integers(0, len(catalogue), size=size)]
            qtys = [int(q) for q in rng.integers(1, 4, size=size)]
            totals = [Decimal(p[2]) * q for p, q in zip(picks, qtys, strict=True)]
            total = sum(totals, Decimal(0))
            for j, (p, q, t) in enumerate(zip(picks, qtys, totals, strict=True)):
                w.writerow(
                    [
                        f"O{orders:09d}",
                        f"C{cust:08d}",
                        currency,
                        placed,
                        channel,
                        p[0],
                        p[1],
                        q,
                        p[2].replace(".", ","),
                        str(t).replace(".", ","),
                        str(total).replace(".", ",") if j == 0 else "",
                    ]
                )
            written += size
            orders += 1
    return orders


def _patron(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PATRON, *args], env=env, capture_output=True, text=True, check=False)


def run_child(env: dict[str, str], *args: str) -> tuple[float, float, int, str, float]:
    """Run ``patron`` as a child, reaping it with ``wait4`` to read its own peak memory and CPU time
    (wall time, peak MiB, exit code, output, CPU seconds). CPU time tells the importer's own cost
    apart from waiting for a busy machine or database server."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen([PATRON, *args], env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    return seconds, usage.ru_maxrss / 1024, int(child.returncode), text, usage.ru_utime + usage.ru_stime


def prepare_database(database: str, workdir: Path, pg_url: str) -> str:
    if database == "sqlite":
        path = workdir / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        base = make_url(pg_url)
        admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('DROP DATABASE IF EXISTS "patron_bench" WITH (FORCE)'))
            conn.execute(text('CREATE DATABASE "patron_bench"'))
        admin.dispose()
        url = base.set(database="patron_bench").render_as_string(hide_password=False)
    env = {**os.environ, "PATRON_DATABASE_URL": url}
    result = _patron(
        env, "init", "--owner-email", "bench@example.com", "--owner-password", "bench-password-1"
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    # reporting currency EUR: FX rates for the order currencies
    from patron.core.business import set_fx_rate
    from patron.core.db import Database, make_engine

    engine = make_engine(url)
    with Database(engine).unit_of_work() as session:
        for base_currency, rate in (("VND", "0.000037"), ("THB", "0.025"), ("HUF", "0.0025")):
            set_fx_rate(
                session, base=base_currency, quote="EUR", valid_on=date(2000, 1, 1), rate=Decimal(rate)
            )
    engine.dispose()
    return url


def bench(
    database: str,
    workdir: Path,
    pg_url: str,
    customers_csv: Path,
    lines_csv: Path,
    n: int,
    m: int,
    chunk: int,
) -> list[Run]:
    url = prepare_database(database, workdir, pg_url)
    env = {**os.environ, "PATRON_DATABASE_URL": url, "PATRON_LOG_LEVEL": "warning"}
    runs: list[Run] = []
    for kind, path, rows in (("customers", customers_csv, n), ("orders", lines_csv, m)):
        seconds, peak, code, output, cpu = run_child(
            env,
            "import",
            kind,
            str(path),
            "--chunk-size",
            str(chunk),
            "--rejects",
            str(workdir / f"{kind}.{database}.rejected.csv"),
        )
        summary = " / ".join(
            line for line in output.splitlines() if re.match(r"^(\d+ rows|customers:|orders:)", line)
        )
        runs.append(Run(database, kind, rows, seconds, peak, code, summary, cpu))
        print(
            f"{database:8} {kind:10} {rows:>9} rows  {seconds:8.1f} s  {rows / seconds:9.0f} rows/s  "
            f"cpu {cpu:7.1f} s  peak {peak:7.1f} MiB  exit {code}  {summary}",
            flush=True,
        )
    # the idempotent re-run of the customers file (every row unchanged)
    seconds, peak, code, output, cpu = run_child(
        env, "import", "customers", str(customers_csv), "--chunk-size", str(chunk)
    )
    summary = " / ".join(line for line in output.splitlines() if re.match(r"^(\d+ rows|customers:)", line))
    runs.append(Run(database, "customers re-run", n, seconds, peak, code, summary, cpu))
    print(
        f"{database:8} re-run     {n:>9} rows  {seconds:8.1f} s  {n / seconds:9.0f} rows/s  "
        f"peak {peak:7.1f} MiB",
        flush=True,
    )
    return runs


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{system}, {os.cpu_count()} × {cpu}{mem}, Python {platform.python_version()}"


def record(
    runs: list[Run], n: int, m: int, orders: int, chunk: int, sizes: tuple[int, int], notes: str
) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### {n:,} customers, {m:,} order lines ({orders:,} orders) — {stamp}",
        "",
        f"Machine: {machine()}. Chunk size {chunk}. "
        f"Files: customers {sizes[0] / 2**20:.0f} MiB (UTF-8, `,`), "
        f"order lines {sizes[1] / 2**20:.0f} MiB (UTF-8, `;`, decimal comma, dd/mm/yyyy hh:mm).",
        "",
        "| database | import | rows | seconds | rows/s | importer CPU s | rows per CPU s | peak RSS (MiB) "
        "| exit | result |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in runs:
        lines.append(
            f"| {r.database} | {r.kind} | {r.rows:,} | {r.seconds:,.1f} | {r.rate:,.0f} | "
            f"{r.cpu_seconds:,.1f} | {r.cpu_rate:,.0f} | {r.peak_mib:,.0f} | {r.exit_code} | {r.summary} |"
        )
    if notes:
        lines += ["", notes]
    block = "\n".join(lines) + "\n"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    header = "## Import"
    intro = (
        f"{header}\n\n`bench/import_bench.py` runs the real `patron import` CLI (full validation, upsert by "
        "external id, batch records for undo) as a child process; peak memory is the child's maximum "
        "resident set size (`wait4`); importer CPU is the child's user + system time (the PostgreSQL "
        "server's work is not in it). Newest runs first.\n\n"
    )
    if header in text:
        start = text.index(header)
        nxt = text.find("\n## ", start + len(header))
        section = text[start:] if nxt == -1 else text[start : nxt + 1]
        body = section.split("\n\n", 2)[2] if section.count("\n\n") >= 2 else ""
        new_section = intro + block + "\n" + body.lstrip("\n")
        text = text[:start] + new_section.rstrip("\n") + "\n" + ("" if nxt == -1 else "\n" + text[nxt + 1 :])
    else:
        text = text.rstrip("\n") + "\n\n" + intro + block
    RESULTS.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "PATRON_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20260315)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--notes", default="")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="patron-import-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    customers_csv, lines_csv = workdir / "customers.csv", workdir / "order_lines.csv"
    t0 = time.perf_counter()
    currencies = generate_customers(customers_csv, args.customers, args.seed)
    orders = generate_lines(lines_csv, currencies, args.lines, args.seed)
    print(
        f"generated {args.customers:,} customers and {args.lines:,} lines ({orders:,} orders) in "
        f"{time.perf_counter() - t0:.0f} s under {workdir}",
        flush=True,
    )
    runs: list[Run] = []
    for database in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        runs += bench(
            database,
            workdir,
            args.pg_url,
            customers_csv,
            lines_csv,
            args.customers,
            args.lines,
            args.chunk_size,
        )
    if not args.no_record:
        record(
            runs,
            args.customers,
            args.lines,
            orders,
            args.chunk_size,
            (customers_csv.stat().st_size, lines_csv.stat().st_size),
            args.notes,
        )
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
