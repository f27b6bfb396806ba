"""Customer search under an open-model load, through the shipped HTTP endpoint.

1. Builds a database of N customers (realistic Vietnamese, Hungarian, Thai and other names, emails and
   phones from the demo's people tables; seeded) through the shipped bulk path: every row validated by
   ``patron.customers.prepare_customer`` and written by ``patron.customers.upsert_customers_bulk`` (what
   ``patron import customers`` uses), on SQLite or PostgreSQL.
2. Starts ``uvicorn patron.web.asgi:app --workers 2`` on 127.0.0.1.
3. Runs ``bench/load.py`` in a separate process: a fixed arrival rate (default 100 requests/s) of
   ``GET /api/v1/customers?q=...`` for the given duration; the queries mix family and given names with
   and without accents, Thai names, partial emails, phone fragments (E.164 tail and national format)
   and misses.
4. Writes the result to ``bench/results/search-<backend>-<N>.json`` and rebuilds the "Search" section of
   ``bench/RESULTS.md`` from all such files.

    .venv/bin/python bench/search_bench.py --customers 100000                      # SQLite
    .venv/bin/python bench/search_bench.py --customers 100000 --backend postgresql
    .venv/bin/python bench/search_bench.py --customers 1000000 --reuse              # keep the built DB
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support.live_server (the same launcher the tests use)

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from tests.support.live_server import LiveServer  # noqa: E402

from patron.auth import Role, create_token, create_user  # noqa: E402
from patron.bootstrap import wire  # noqa: E402
from patron.core import migrate  # noqa: E402
from patron.core.db import Database, make_engine  # noqa: E402
from patron.core.text import fold  # noqa: E402
from patron.customers import prepare_customer, upsert_customers_bulk  # noqa: E402
from patron.customers.models import Customer  # noqa: E402
from patron.demo.data import PEOPLE, PeopleTable  # noqa: E402

WORK = ROOT / "bench" / ".work"
RESULTS_DIR = ROOT / "bench" / "results"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
SECTION = "## Search"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CHUNK = 5000
SEED = 20260315
TODAY = date(2026, 3, 15)
# share of customers per country: the first markets, then the rest of the demo's people tables
COUNTRY_MIX = {"VN": 0.35, "HU": 0.25, "TH": 0.25}


# ---- data -------------------------------------------------------------------------------------


_CUMULATIVE: dict[int, tuple[list[str], np.ndarray]] = {}


def _weighted(rng: np.random.Generator, pairs: tuple[tuple[str, int], ...]) -> str:
    cached = _CUMULATIVE.get(id(pairs))
    if cached is None:
        weights = np.cumsum([w for _, w in pairs], dtype=float)
        cached = _CUMULATIVE[id(pairs)] = ([v for v, _ in pairs], weights / weights[-1])
    values, cumulative = cached
    return values[int(np.searchsorted(cumulative, rng.random(), side="right"))]


def _ascii(value: str, table: PeopleTable) -> str:
    value = table.romanised.get(value, value)
    folded = fold(value)
    return "".join(ch for ch in folded.replace(" ", ".") if ch.isascii() and (ch.isalnum() or ch == "."))


def generate(n: int, seed: int = SEED) -> Iterator[dict[str, object]]:
    """n raw customer rows (API/import field names), deterministic for a seed: the first k rows are
    the same whatever n is (the query sample is drawn from them)."""
    rng = np.random.default_rng(seed)
    others = [c for c in PEOPLE if c not in COUNTRY_MIX]
    rest = (1 - sum(COUNTRY_MIX.values())) / len(others)
    countries = list(COUNTRY_MIX) + others
    cumulative = np.cumsum([COUNTRY_MIX.get(c, rest) for c in countries])
    cumulative /= cumulative[-1]
    for index in range(n):
        country = countries[int(np.searchsorted(cumulative, rng.random(), side="right"))]
        yield _person(rng, PEOPLE[country], index)


def _person(rng: np.random.Generator, table: PeopleTable, i: int) -> dict[str, object]:
    female = bool(rng.integers(2))
    given = table.female_given if female else table.male_given
    first = given[int(rng.integers(len(given)))]
    middles = table.female_middle if female else table.male_middle
    if middles:
        first = f"{middles[int(rng.integers(len(middles)))]} {first}"
    family = _weighted(rng, table.family_names)
    domain = _weighted(rng, table.email_domains)
    local_first = _ascii(first.split()[-1], table)
    local_family = _ascii(family, table)
    style = int(rng.integers(3))
    if style == 0:
        local = f"{local_first}.{local_family}{int(rng.integers(1, 9999))}"
    elif style == 1:
        local = f"{local_family}.{local_first}{int(rng.integers(60, 100))}"
    else:
        local = f"{local_first}{local_family}{i}"
    prefix = table.mobile_prefixes[int(rng.integers(len(table.mobile_prefixes)))]
    # a subscriber number never starts with 0 or 1 (North American exchange codes are 2-9)
    digits = [int(rng.integers(2, 10)), *rng.integers(0, 10, size=table.subscriber_digits - 1)]
    subscriber = "".join(str(d) for d in digits)
    return {
        "external_id": f"bench-{i}",
        "first_name": first,
        "last_name": family,
        "email": f"{local}@{domain}".lower(),
        "phone": f"+{table.calling_code}{prefix}{subscriber}",
        "country": table.country,
        "language": table.language,
        "time_zone": _weighted(rng, table.time_zones),
    }


def queries_from(sample: list[dict[str, object]], seed: int = SEED) -> list[str]:
    """Search strings a support agent types: names with and without accents, Thai names, partial
    emails, phone fragments in E.164 and national format, and a few misses."""
    rng = np.random.default_rng(seed + 1)
    out: list[str] = []
    for row in sample:
        first, last = str(row["first_name"]), str(row["last_name"])
        email, phone, country = str(row["email"]), str(row["phone"]), str(row["country"])
        given = first.split()[-1]
        kind = int(rng.integers(8))
        if kind == 0:
            out.append(fold(last))  # "nguyen", "kovacs", "ใจดี" (Thai folds to itself)
        elif kind == 1:
            out.append(given)  # with accents: "Điền", "Zsófia", "สมชาย"
        elif kind == 2:
            out.append(fold(given))  # without: "dien", "zsofia"
        elif kind == 3:
            out.append(f"{given} {last}" if country in {"TH", "DE", "AT", "FR", "US"} else f"{last} {first}")
        elif kind == 4:
            local = email.split("@")[0]
            out.append(local[: max(4, len(local) // 2)])  # partial email
        elif kind == 5:
            out.append(phone[-7:])  # tail of the number
        elif kind == 6 and country in {"VN", "TH"}:
            national = "0" + phone[3:]
            out.append(f"{national[:4]} {national[4:7]} {national[7:]}")  # "0912 345 678"
        elif kind == 6:
            out.append(phone[-9:-6] + " " + phone[-6:-3] + " " + phone[-3:])  # "345 678 901"
        else:
            letters = "bcdfghjklmnpqrstvwxz"
            out.append("".join(letters[int(j)] for j in rng.integers(0, len(letters), size=6)))  # a miss
    return out


# ---- database ---------------------------------------------------------------------------------


def database_url(backend: str, n: int) -> str:
    if backend == "sqlite":
        WORK.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{WORK / f'search-{n}.db'}"
    base = make_url(os.environ.get("PATRON_BENCH_PG_ADMIN", PG_ADMIN))
    return base.set(database=f"patron_bench_search_{n}").render_as_string(hide_password=False)


def create_database(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(make_url(url).database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        target = make_url(url)
        admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
        admin.dispose()
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()


def load_customers(url: str, n: int) -> dict[str, Any]:
    engine = make_engine(url)
    db = Database(engine)
    started = time.perf_counter()
    batch: list[Any] = []
    done = 0
    next_analyze = 10_000
    for raw in generate(n):
        batch.append(prepare_customer(raw, today=TODAY))
        if len(batch) == CHUNK:
            with db.unit_of_work() as session:
                upsert_customers_bulk(session, batch)
            done += len(batch)
            batch = []
            if db.dialect == "postgresql" and done >= next_analyze:
                # keep the planner's statistics current during the bulk load (as the importer does):
                # without them the per-chunk lookups turn into sequential scans (autovacuum lags)
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("ANALYZE customers, customer_emails, customer_phones"))
                next_analyze *= 2
            if done % 100_000 == 0:
                rate = done / (time.perf_counter() - started)
                print(f"  {done:,} customers ({rate:,.0f} rows/s)", flush=True)
    if batch:
        with db.unit_of_work() as session:
            upsert_customers_bulk(session, batch)
    seconds = time.perf_counter() - started
    if db.dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return {"load_seconds": round(seconds, 1), "load_rows_per_s": round(n / seconds)}


def ensure_search_indexes(url: str) -> None:
    """A reused PostgreSQL database gets the search indexes migration 0002 creates now but did not when
    the database was built (its statements are all ``IF NOT EXISTS``; at 1M customers a new GIN index
    takes a minute or two)."""
    if url.startswith("sqlite"):
        return
    import importlib.util
    import re

    path = ROOT / "src" / "patron" / "migrations" / "versions" / "0002_customer_search.py"
    spec = importlib.util.spec_from_file_location("customer_search_migration", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        present = set(conn.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'customers'")))
        wanted = [m.group(1) for s in module._PG_UP if (m := re.search(r"INDEX IF NOT EXISTS (\w+)", s))]
        missing = [name for name in wanted if name not in present]
        if missing:
            print(f"  creating {', '.join(missing)} (a minute or two at 1M customers) …", flush=True)
            conn.execute(text("SET maintenance_work_mem = '256MB'"))
        for statement in module._PG_UP:
            conn.execute(text(statement))
        if missing:
            conn.execute(text("ANALYZE customers"))
    engine.dispose()


def count_customers(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Customer)).scalar_one())
    except Exception:
        return -1
    finally:
        engine.dispose()


def owner_token(url: str) -> str:
    engine = make_engine(url)
    with Database(engine).unit_of_work() as session:
        email = f"bench-{int(time.time())}@example.com"
        user = create_user(session, email=email, password="bench password 123", role=Role.OWNER)
        _, secret = create_token(session, user=user, name="search bench")
    engine.dispose()
    return secret


# ---- run --------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout.splitlines()
    total = mem[1].split()[1] if len(mem) > 1 else "?"
    return {"nproc": str(os.cpu_count()), "memory": total, "cpu": cpu, "python": platform.python_version()}


def hit_rate(base_url: str, token: str, queries: list[str]) -> dict[str, float]:
    import httpx

    hits = 0
    timings = []
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for q in queries:
            started = time.perf_counter()
            response = client.get("/api/v1/customers", params={"q": q})
            timings.append(time.perf_counter() - started)
            response.raise_for_status()
            hits += bool(response.json()["items"])
    timings.sort()
    return {
        "hit_share": round(hits / len(queries), 3),
        "serial_median_ms": round(timings[len(timings) // 2] * 1000, 1),
        "serial_p90_ms": round(timings[int(len(timings) * 0.9)] * 1000, 1),
        "serial_max_ms": round(timings[-1] * 1000, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    wire()
    url = database_url(args.backend, args.customers)
    info: dict[str, Any] = {}
    if args.reuse and count_customers(url) == args.customers:
        print(f"reusing {url} ({args.customers:,} customers)")
        ensure_search_indexes(url)
    else:
        print(f"building {url} with {args.customers:,} customers …", flush=True)
        create_database(url)
        info.update(load_customers(url, args.customers))
        print(f"  loaded in {info['load_seconds']} s ({info['load_rows_per_s']:,} rows/s)")
    sample = [row for i, row in enumerate(generate(min(args.customers, 20_000))) if i % 10 == 0]
    queries = queries_from(sample)
    from urllib.parse import urlencode

    paths_file = WORK / f"queries-{args.backend}-{args.customers}.txt"
    WORK.mkdir(parents=True, exist_ok=True)
    paths_file.write_text("\n".join("/api/v1/customers?" + urlencode({"q": q}) for q in queries) + "\n")
    token = owner_token(url)
    log = WORK / f"server-{args.backend}-{args.customers}.log"
    with LiveServer(url, workers=2, log_path=log, env={"PATRON_LOG_LEVEL": "warning"}) as server:
        info.update(hit_rate(server.url, token, queries[:300]))  # also warms caches
        out = WORK / f"load-{args.backend}-{args.customers}.json"
        cmd = [
            sys.executable, str(ROOT / "bench" / "load.py"), "--url", server.url, "--paths", str(paths_file),
            "--rate", str(args.rate), "--duration", str(args.duration),
            "--header", f"Authorization: Bearer {token}", "--out", str(out),
        ]  # fmt: skip
        info["load_average_before"] = Path("/proc/loadavg").read_text().split()[0]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        load = json.loads(out.read_text())
    result = {
        "backend": args.backend,
        "customers": args.customers,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "queries": len(queries),
        **info,
        "load": load,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.rate == 100 else f"-r{args.rate:g}"
    (RESULTS_DIR / f"search-{args.backend}-{args.customers}{suffix}.json").write_text(
        json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    )
    write_section()
    return result


def write_section() -> None:
    results = [json.loads(p.read_text()) for p in sorted(RESULTS_DIR.glob("search-*.json"))]
    results.sort(key=lambda r: (r["backend"], r["customers"], -r["load"]["rate"]))
    lines = [
        SECTION,
        "",
        "Customer search `GET /api/v1/customers?q=…` through uvicorn with 2 worker processes, under an",
        "open-model load from a separate process (`bench/load.py`: requests sent at a fixed rate whatever",
        "the answers; latency from the scheduled send time to the end of the body). Queries: family and",
        "given names with and without accents, Thai names, partial emails, phone tails and national-format",
        "numbers, and misses (`bench/search_bench.py`). Data loaded through `prepare_customer` +",
        "`upsert_customers_bulk` (the import path). Reproduce: `.venv/bin/python bench/search_bench.py",
        "--customers N [--backend postgresql]`.",
        "",
        "| backend | customers | rate (req/s) | requests | errors | p50 ms | p90 ms | p99 ms | max ms "
        "| achieved req/s | serial p50 / p90 / max ms | hits | load avg before | date |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in results:
        load, lat = r["load"], r["load"].get("latency_ms", {})
        cells = [
            r["backend"], f"{r['customers']:,}", f"{load['rate']:g}", f"{load['scheduled']:,}",
            load["errors"],
            *(lat.get(k, "–") for k in ("p50", "p90", "p99", "max")), load.get("achieved_rate", "–"),
            " / ".join(str(r.get(f"serial_{k}_ms", "–")) for k in ("median", "p90", "max")),
            r.get("hit_share", "–"), r.get("load_average_before", "–"), r["date"],
        ]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    machines = {json.dumps(r["machine"], sort_keys=True) for r in results}
    lines.append("")
    for m in sorted(machines):
        d = json.loads(m)
        lines.append(f"Machine: {d['nproc']} CPUs ({d['cpu']}), {d['memory']} RAM, Python {d['python']}.")
    lines.append("")
    lines.append("Load time (bulk path, when the database was built in that run):")
    lines.append("")
    for r in results:
        if "load_seconds" in r:
            lines.append(
                f"- {r['backend']}, {r['customers']:,} customers: {r['load_seconds']} s "
                f"({r['load_rows_per_s']:,} rows/s)"
            )
    notes = RESULTS_DIR / "search-notes.md"
    if notes.exists():
        lines += ["", notes.read_text(encoding="utf-8").rstrip("\n")]
    body = "\n".join(lines) + "\n"
    current = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else "# Benchmark results\n"
    RESULTS_MD.write_text(replace_section(current, body), encoding="utf-8")


def replace_section(document: str, section: str) -> str:
    """Replace the ``## Search`` section (up to the next ``## `` heading) or append it."""
    lines = document.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        return document.rstrip("\n") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--reuse", action="store_true", help="reuse a database built by an earlier run")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
