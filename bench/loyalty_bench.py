"""Loyalty through the shipped HTTP path: orders credited end to end, redemptions, coupon validation.

One command per backend (or both) builds a fresh database, seeds it through the public functions,
starts ``uvicorn patron.web.asgi:app --workers 2`` (no in-process dispatcher) plus ``patron worker``
process(es) that dispatch the outbox, and measures:

1. **Orders credited end to end** (closed model): ``--clients`` concurrent clients post ``--orders``
   orders (``POST /api/v1/orders``; VND/HUF/THB, 1–3 lines) as fast as the server answers; the clock
   runs from the first POST until every order's ``earn`` entry is in the points ledger (the bench polls
   the database: the outbox drained through ``order.placed`` → ``loyalty.order_placed``). Reports
   orders/s end to end, POST latency percentiles, and CPU milliseconds per order of the server
   processes, the dispatcher process(es) and (PostgreSQL) the database backends serving them.
2. **Redemptions** (open model, ``bench/load.py --requests``): ``POST
   /api/v1/loyalty/accounts/{id}/redemptions`` ``{"points": 1..19}`` with a fresh ``Idempotency-Key`` at
   ``--redeem-rate`` requests/s for ``--duration`` s, spread over members holding points.
3. **Coupon validation** (open model): ``POST /api/v1/coupons/validate`` at ``--rate``; 90 % valid
   codes of three promotions (fixed VND, percent, minimum spend), 5 % unknown, 5 % below the minimum.
4. **pgbench -b simple-update** (PostgreSQL only) on a scratch database with the same client count, as
   the ceiling of what this machine's PostgreSQL does with one small transaction per client round trip.

Each phase is repeated ``--runs`` times on the same server (the medians go to RESULTS.md). After the
runs the bench checks the guarantees: every posted order earned exactly one ledger entry, no event
failed, and the ledger reconciles (balance == ledger sum for every account).

Results: ``bench/results/loyalty-<backend>.json`` and the "Loyalty" section (plus the summary rows) of
``bench/RESULTS.md``.

    .venv/bin/python bench/loyalty_bench.py                       # both backends, defaults (~8 min)
    .venv/bin/python bench/loyalty_bench.py --backend postgresql --orders 5000 --runs 5
    .venv/bin/python bench/loyalty_bench.py --backend sqlite --skip-load --runs 1   # orders only, quick

Wall-clock numbers need an idle machine (2 cores here); CPU per order is the steadier figure while
other work runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support.live_server (the same launcher the tests use)

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from tests.support.live_server import LiveServer  # noqa: E402

from patron.auth import Role, create_token, create_user  # noqa: E402
from patron.bootstrap import wire  # noqa: E402
from patron.core import migrate  # noqa: E402
from patron.core.business import create_market, set_fx_rate, update_business  # noqa: E402
from patron.core.db import Database, make_engine  # noqa: E402
from patron.core.outbox import OutboxEvent, drain  # noqa: E402
from patron.customers import prepare_customer, upsert_customers_bulk  # noqa: E402
from patron.loyalty import (  # noqa: E402
    adjust_points,
    create_promotion,
    enrol_customer,
    generate_coupons,
    put_market_settings,
    reconcile,
    update_programme,
)
from patron.loyalty.models import LoyaltyEntry, LoyaltyOrderEarning  # noqa: E402

WORK = ROOT / "bench" / ".work"
RESULTS_DIR = ROOT / "bench" / "results"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
SECTION = "## Loyalty"
SUMMARY_TAG = "Loyalty:"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SEED = 20261125
CLK_TCK = os.sysconf("SC_CLK_TCK")
AIMS = {
    "orders_per_s_postgresql": 300.0,  # orders credited end to end per second, PostgreSQL
    "coupon_validate_p99_ms": 20.0,  # at 100 requests/s, PostgreSQL
}
MARKETS = (
    # code, name, country, currency, locale, zone, unit price range, FX to EUR
    ("VN", "Vietnam", "VN", "VND", "vi_VN", "Asia/Ho_Chi_Minh", (20_000, 600_000), Decimal("0.000036")),
    ("HU", "Hungary", "HU", "HUF", "hu_HU", "Europe/Budapest", (500, 30_000), Decimal("0.0025")),
    ("TH", "Thailand", "TH", "THB", "th_TH", "Asia/Bangkok", (50, 2_000), Decimal("0.026")),
)


# ---- processes and CPU ----------------------------------------------------------------------------


def load_average() -> float:
    """The 1-minute load average (other work on the machine distorts wall-clock figures)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Processes:
    server: list[int]  # uvicorn supervisor + workers
    dispatchers: list[int]
    database: list[int]  # PostgreSQL backends connected to the bench database

    def sample(self) -> dict[str, float]:
        return {
            "server": sum(cpu_seconds(p) for p in self.server),
            "dispatchers": sum(cpu_seconds(p) for p in self.dispatchers),
            "database": sum(cpu_seconds(p) for p in self.database),
        }


def pg_backends(url: str) -> list[int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        pids = conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalars()
        out = [int(p) for p in pids]
    engine.dispose()
    return out


class Dispatchers:
    """``patron worker`` processes (the shipped outbox dispatcher) for the bench database."""

    def __init__(self, url: str, count: int, interval: float, log: Path) -> None:
        self.url, self.count, self.interval, self.log = url, count, interval, log
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Dispatchers:
        env = dict(os.environ, PATRON_DATABASE_URL=self.url, PATRON_CONFIG=os.devnull, PYTHONUNBUFFERED="1")
        env["PATRON_LOG_LEVEL"] = "warning"
        for _ in range(self.count):
            with self.log.open("ab") as log:
                argv = [sys.executable, "-c", "from patron.cli.main import main; main()", "worker"]
                argv += ["--interval", str(self.interval)]
                self.procs.append(
                    subprocess.Popen(
                        argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                    )
                )
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def check(self) -> None:
        """Stop the bench with the dispatcher's own words when one of them has exited."""
        for proc in self.procs:
            if proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
                raise SystemExit(f"dispatcher (patron worker) exited with {proc.returncode}:\n{tail}")

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()  # SIGTERM: only the processes this bench started
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


# ---- database and seed ----------------------------------------------------------------------------


def database_url(backend: str) -> str:
    if backend == "sqlite":
        WORK.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{WORK / 'loyalty.db'}"
    base = make_url(os.environ.get("PATRON_BENCH_PG_ADMIN", PG_ADMIN))
    return base.set(database="patron_bench_loyalty").render_as_string(hide_password=False)


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


@dataclass
class Seed:
    token: str
    customers: list[tuple[str, str]]  # (customer id, market code)
    members_with_points: list[str]
    coupons: list[dict[str, Any]]  # validate bodies


def seed(url: str, customers: int, members_with_points: int, coupon_codes: int) -> Seed:
    """The business, markets, FX rates, the programme, customers (the import path), accounts, opening
    points for some members, and three promotions with codes — all through public functions."""
    rng = np.random.default_rng(SEED)
    engine = make_engine(url)
    db = Database(engine)
    with db.unit_of_work() as s:
        update_business(s, reporting_currency="EUR", time_zone="Europe/Budapest")
        for code, name, country, currency, locale, zone, _, rate in MARKETS:
            create_market(
                s, code=code, name=name, country=country, currency=currency, locale=locale, time_zone=zone
            )
            set_fx_rate(s, base=currency, quote="EUR", valid_on=date(2020, 1, 1), rate=rate)
        update_programme(s, pending_days=14, expiry_policy="rolling", expiry_months=12)
        put_market_settings(s, "VN", earn_spend_amount=Decimal(10000), point_value_amount=Decimal(100))
        put_market_settings(s, "HU", earn_spend_amount=Decimal(100), point_value_amount=Decimal(1))
        put_market_settings(s, "TH", earn_spend_amount=Decimal(10), point_value_amount=Decimal("0.10"))
        user = create_user(s, email="bench@example.com", password="bench password 123", role=Role.OWNER)
        _, token = create_token(s, user=user, name="loyalty bench")
    people = []
    for i in range(customers):
        code, *_ = MARKETS[i % len(MARKETS)]
        people.append(
            (
                prepare_customer(
                    {
                        "external_id": f"bench-{i}",
                        "first_name": f"Member{i}",
                        "last_name": ("Nguyễn", "Kovács", "ใจดี")[i % 3],
                        "email": f"member{i}@example.com",
                        "country": code,
                    },
                    today=date(2026, 11, 25),
                ),
                code,
            )
        )
    ids: list[tuple[str, str]] = []
    with db.unit_of_work() as s:
        results = upsert_customers_bulk(s, [p for p, _ in people])
        ids = [(str(r.customer_id), code) for r, (_, code) in zip(results, people, strict=True)]
    with db.unit_of_work() as s:
        for cid, _ in ids:
            enrol_customer(s, cid)
    with db.unit_of_work() as s:
        for cid, _ in ids[:members_with_points]:
            adjust_points(s, cid, 100_000, reason="bench opening balance", key=f"bench-{cid}")
    bodies: list[dict[str, Any]] = []
    with db.unit_of_work() as s:
        fixed = create_promotion(
            s,
            {
                "name": "50k off",
                "discount_kind": "fixed",
                "amount": "50000",
                "currency": "VND",
                "usage": "multi_use",
                "min_spend": {"VND": "300000"},
            },
        )
        percent = create_promotion(
            s, {"name": "10 %", "discount_kind": "percent", "percent": "10", "usage": "multi_use"}
        )
        limited = create_promotion(
            s,
            {
                "name": "Once each",
                "discount_kind": "percent",
                "percent": "15",
                "usage": "multi_use",
                "limit_per_customer": 1,
                "markets": ["HU", "TH"],
            },
        )
        per = max(1, coupon_codes // 3)
        codes_fixed = generate_coupons(s, fixed.id, per, prefix="VN")
        codes_percent = generate_coupons(s, percent.id, per)
        codes_limited = generate_coupons(s, limited.id, per, prefix="HT")
    for i in range(coupon_codes * 2):
        cid, _ = ids[int(rng.integers(len(ids)))]
        roll = rng.random()
        if roll < 0.05:
            bodies.append({"code": f"NOPE-{i:04d}-XXXX", "order_total": "120000", "currency": "VND"})
        elif roll < 0.10:
            code = codes_fixed[int(rng.integers(len(codes_fixed)))]
            bodies.append({"code": code, "order_total": "100000", "currency": "VND", "customer_id": cid})
        elif roll < 0.40:
            code = codes_fixed[int(rng.integers(len(codes_fixed)))]
            total = str(int(rng.integers(300, 3000)) * 1000)
            bodies.append(
                {"code": code, "order_total": total, "currency": "VND", "customer_id": cid, "market": "VN"}
            )
        elif roll < 0.70:
            code = codes_percent[int(rng.integers(len(codes_percent)))]
            bodies.append(
                {"code": code, "order_total": f"{int(rng.integers(10, 900))}.50", "currency": "EUR"}
            )
        else:
            code = codes_limited[int(rng.integers(len(codes_limited)))]
            body = {
                "code": code.lower(),
                "order_total": str(int(rng.integers(1000, 90000))),
                "currency": "HUF",
            }
            bodies.append({**body, "customer_id": cid, "market": "HU"})
    n_events = drain(db)  # enrolment events etc.: the measured dispatcher sees only the bench's orders
    engine.dispose()
    print(
        f"  seeded {customers:,} customers, {members_with_points:,} with points, {3 * per:,} codes"
        f" ({n_events} events drained)"
    )
    return Seed(token, ids, [c for c, _ in ids[:members_with_points]], bodies)


def order_bodies(customers: list[tuple[str, str]], n: int, seed_offset: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(SEED + seed_offset)
    markets = {m[0]: m for m in MARKETS}
    out = []
    for _ in range(n):
        cid, code = customers[int(rng.integers(len(customers)))]
        _, _, _, currency, _, _, (low, high), _ = markets[code]
        lines = []
        for j in range(int(rng.integers(1, 4))):
            price = int(rng.integers(low, high))
            if currency == "VND":
                price = price // 1000 * 1000
            lines.append(
                {
                    "sku": f"SKU-{code}-{j}",
                    "name": f"Item {j}",
                    "quantity": int(rng.integers(1, 4)),
                    "unit_price": str(price),
                }
            )
        out.append(
            {"customer_id": cid, "market": code, "currency": currency, "channel": "web", "lines": lines}
        )
    return out


# ---- phase 1: orders credited end to end ----------------------------------------------------------


def percentiles(values_ms: list[float]) -> dict[str, float]:
    if not values_ms:
        return {}
    ordered = sorted(values_ms)

    def rank(q: float) -> float:
        k = max(1, int(np.ceil(q / 100 * len(ordered))))
        return round(ordered[min(k, len(ordered)) - 1], 2)

    return {
        "p50": rank(50),
        "p90": rank(90),
        "p99": rank(99),
        "max": round(ordered[-1], 2),
        "mean": round(sum(ordered) / len(ordered), 2),
    }


def credited_count(engine: Any) -> int:
    with engine.connect() as conn:
        stmt = (
            select(func.count())
            .select_from(LoyaltyEntry)
            .where(LoyaltyEntry.kind == "earn", LoyaltyEntry.source == "order")
        )
        return int(conn.execute(stmt).scalar_one())


async def post_orders(
    base_url: str, token: str, bodies: list[dict[str, Any]], clients: int
) -> tuple[list[float], list[str], list[str], float, float]:
    """Closed model: ``clients`` loops, each posting the next order when its previous one answered."""
    latencies: list[float] = []
    ids: list[str] = []
    errors: list[str] = []
    queue = list(reversed(bodies))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60, limits=limits) as client:

        async def loop() -> None:
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                try:
                    response = await client.post("/api/v1/orders", json=body)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code == 201:
                    ids.append(response.json()["id"])
                else:
                    errors.append(f"{response.status_code}: {response.text[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        t1 = time.perf_counter()
    return latencies, ids, errors, t0, t1


def orders_run(
    base_url: str,
    token: str,
    engine: Any,
    procs: Processes,
    bodies: list[dict[str, Any]],
    clients: int,
    timeout: float,
    check: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    before = credited_count(engine)
    cpu0 = procs.sample()
    latencies, ids, errors, t0, t1 = asyncio.run(post_orders(base_url, token, bodies, clients))
    target = before + len(ids)
    deadline = time.perf_counter() + timeout
    credited = credited_count(engine)
    while credited < target and time.perf_counter() < deadline:
        check()
        time.sleep(0.02)
        credited = credited_count(engine)
    t2 = time.perf_counter()
    cpu1 = procs.sample()
    n = len(ids)
    cpu_ms = {k: round((cpu1[k] - cpu0[k]) * 1000 / max(n, 1), 3) for k in cpu0}
    return {
        "orders": len(bodies),
        "created": n,
        "errors": len(errors),
        "error_examples": list(dict.fromkeys(errors))[:5],
        "credited": credited - before,
        "complete": credited >= target,
        "post_seconds": round(t1 - t0, 3),
        "end_to_end_seconds": round(t2 - t0, 3),
        "drain_after_posts_seconds": round(t2 - t1, 3),
        "posted_per_s": round(n / (t1 - t0), 1),
        "credited_per_s": round((credited - before) / (t2 - t0), 1),
        "post_latency_ms": percentiles(latencies),
        "cpu_ms_per_order": cpu_ms,
        "cpu_ms_per_order_total": round(sum(cpu_ms.values()), 3),
        "load_average_after": load_average(),
    }


# ---- phases 2 and 3: open-model load ---------------------------------------------------------------


async def _warm(base_url: str, token: str, requests: list[dict[str, Any]], concurrency: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        queue = list(requests)

        async def loop() -> None:
            while queue:
                spec = queue.pop()
                await client.request(
                    spec["method"], spec["path"], json=spec.get("json"), headers=spec.get("headers")
                )

        await asyncio.gather(*(loop() for _ in range(concurrency)))


def warm_up(base_url: str, token: str, requests: list[dict[str, Any]]) -> None:
    """Unmeasured requests to the endpoint first: each server process builds a router's route state
    on its first request there (FastAPI; about a second of CPU), which would otherwise land in the
    measured tail; then wait until the server answers promptly again."""
    asyncio.run(_warm(base_url, token, requests, 8))
    settle(base_url)


def settle(base_url: str) -> None:
    """Wait (at most 15 s) until the server answers a health check within 20 ms: a previous phase's
    backlog must not spill into the next one's measurement."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        deadline = time.perf_counter() + 15
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            client.get("/api/v1/health")
            if time.perf_counter() - started < 0.02:
                break
            time.sleep(0.2)


def load_run(
    base_url: str,
    token: str,
    requests: list[dict[str, Any]],
    rate: float,
    duration: float,
    name: str,
    procs: Processes,
) -> dict[str, Any]:
    path = WORK / f"requests-{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in requests), encoding="utf-8")
    out = WORK / f"load-{name}.json"
    cmd = [
        sys.executable, str(ROOT / "bench" / "load.py"), "--url", base_url, "--requests", str(path),
        "--rate", str(rate), "--duration", str(duration), "--header", f"Authorization: Bearer {token}",
        "--out", str(out), "--max-requests", str(len(requests)),
    ]  # fmt: skip
    settle(base_url)
    cpu0 = procs.sample()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    cpu1 = procs.sample()
    result = json.loads(out.read_text())
    n = max(int(result.get("completed", 0)), 1)
    result["cpu_ms_per_request"] = {k: round((cpu1[k] - cpu0[k]) * 1000 / n, 3) for k in cpu0}
    result["load_average_after"] = load_average()
    return dict(result)


def redemption_requests(members: list[str], n: int, run: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(SEED + 100 + run)
    return [
        {
            "method": "POST",
            "path": f"/api/v1/loyalty/accounts/{members[int(rng.integers(len(members)))]}/redemptions",
            "json": {"points": int(rng.integers(1, 20))},
            "headers": {"Idempotency-Key": f"bench-{run}-{i}"},
        }
        for i in range(n)
    ]


def coupon_requests(bodies: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [
        {"method": "POST", "path": "/api/v1/coupons/validate", "json": bodies[i % len(bodies)]}
        for i in range(n)
    ]


# ---- pgbench ---------------------------------------------------------------------------------------


def pgbench(clients: int, seconds: float, scale: int) -> dict[str, Any]:
    exe = shutil.which("pgbench")
    if exe is None:
        return {"skipped": "pgbench not found (Debian: postgresql-client)"}
    admin = make_url(os.environ.get("PATRON_BENCH_PG_ADMIN", PG_ADMIN))
    name = "patron_bench_pgbench"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    conn_args = [
        "-h",
        admin.host or "127.0.0.1",
        "-p",
        str(admin.port or 5432),
        "-U",
        admin.username or "postgres",
    ]
    env = dict(os.environ)
    if admin.password:
        env["PGPASSWORD"] = admin.password
    subprocess.run(
        [exe, *conn_args, "-i", "-q", "-s", str(scale), name], check=True, env=env, capture_output=True
    )
    out = subprocess.run(
        [exe, *conn_args, "-b", "simple-update", "-c", str(clients), "-j", "2", "-T", str(int(seconds)),
         name],
        check=True, env=env, capture_output=True, text=True,
    )  # fmt: skip
    tps = None
    latency = None
    for line in out.stdout.splitlines():
        if line.startswith("tps ="):
            tps = float(line.split()[2])
        if line.startswith("latency average"):
            latency = float(line.split("=")[1].split()[0])
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
    return {"clients": clients, "seconds": seconds, "scale": scale, "tps": tps, "latency_avg_ms": latency}


# ---- checks ----------------------------------------------------------------------------------------


def checks(url: str, posted: int) -> dict[str, Any]:
    engine = make_engine(url)
    db = Database(engine)
    with db.unit_of_work(write=False) as s:
        earnings = int(s.scalar(select(func.count()).select_from(LoyaltyOrderEarning)) or 0)
        earn_entries = int(
            s.scalar(
                select(func.count())
                .select_from(LoyaltyEntry)
                .where(LoyaltyEntry.kind == "earn", LoyaltyEntry.source == "order")
            )
            or 0
        )
        failed = int(
            s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.last_error.is_not(None)))
            or 0
        )
        pending = int(
            s.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None)))
            or 0
        )
        report = reconcile(s)
    engine.dispose()
    return {
        "orders_posted": posted,
        "order_earnings": earnings,
        "order_earn_entries": earn_entries,
        "events_with_errors": failed,
        "events_undispatched": pending,
        "ledger_reconciles": bool(report.ok),
        "ok": earnings == posted == earn_entries and failed == 0 and bool(report.ok),
    }


# ---- the run ---------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False).stdout.splitlines()
    total = mem[1].split()[1] if len(mem) > 1 else "?"
    pg = ""
    if shutil.which("psql"):
        pg = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": str(os.cpu_count()),
        "memory": total,
        "cpu": cpu,
        "python": platform.python_version(),
        "postgresql_client": pg,
    }


def median_of(runs: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return round(statistics.median(values), 2) if values else None


def run_backend(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    wire()
    url = database_url(backend)
    dispatcher_count = args.dispatchers
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"[{backend}] building {url} …", flush=True)
    create_database(url)
    started = time.perf_counter()
    data = seed(url, args.customers, args.members, args.codes)
    seed_seconds = round(time.perf_counter() - started, 1)
    engine = make_engine(url)
    result: dict[str, Any] = {
        "backend": backend,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_average_before": Path("/proc/loadavg").read_text().split()[:3],
        "settings": {
            "server_workers": 2,
            "dispatchers": dispatcher_count,
            "dispatcher_interval_s": args.interval,
            "clients": args.clients,
            "orders_per_run": args.orders,
            "customers": args.customers,
            "rate": args.rate,
            "redeem_rate": args.redeem_rate,
            "duration_s": args.duration,
            "runs": args.runs,
        },
        "seed_seconds": seed_seconds,
        "orders": [],
        "redemptions": [],
        "coupon_validate": [],
    }
    log = WORK / f"loyalty-server-{backend}.log"
    log.unlink(missing_ok=True)
    worker_log = WORK / f"loyalty-worker-{backend}.log"
    worker_log.unlink(missing_ok=True)
    posted = 0
    with (
        LiveServer(url, workers=2, log_path=log, env={"PATRON_LOG_LEVEL": "warning"}) as server,
        Dispatchers(url, dispatcher_count, args.interval, worker_log) as dispatchers,
    ):
        # warm up: connections, caches, the first account rows
        warm = orders_run(
            server.url,
            data.token,
            engine,
            Processes([], [], []),
            order_bodies(data.customers, 100, 999),
            args.clients,
            120,
            dispatchers.check,
        )
        if not warm["complete"]:
            raise SystemExit(f"the warm-up orders were not credited within 120 s: {warm}")
        posted += warm["created"]
        procs = Processes(
            server=[server.pid, *server.worker_pids()],
            dispatchers=dispatchers.pids,
            database=pg_backends(url) if backend == "postgresql" else [],
        )
        print(f"[{backend}] pids: server {procs.server}, dispatchers {procs.dispatchers}", flush=True)
        for i in range(args.runs):
            bodies = order_bodies(data.customers, args.orders, i)
            run = orders_run(
                server.url,
                data.token,
                engine,
                procs,
                bodies,
                args.clients,
                args.drain_timeout,
                dispatchers.check,
            )
            posted += run["created"]
            result["orders"].append(run)
            print(
                f"[{backend}] orders run {i + 1}: {run['credited_per_s']} credited/s end to end "
                f"({run['posted_per_s']} posted/s; POST p50 {run['post_latency_ms'].get('p50')} ms, "
                f"p99 {run['post_latency_ms'].get('p99')} ms; CPU ms/order {run['cpu_ms_per_order']}; "
                f"errors {run['errors']}, complete {run['complete']})",
                flush=True,
            )
        if not args.skip_load:
            n = int(args.rate * args.duration)
            n_redeem = int(args.redeem_rate * args.duration)
            warm = [
                dict(r, headers={"Idempotency-Key": f"warm-{j}"})
                for j, r in enumerate(redemption_requests(data.members_with_points, 80, 999))
            ]
            warm_up(server.url, data.token, warm + coupon_requests(data.coupons[::-1], 80))
            for i in range(args.runs):
                red = load_run(
                    server.url,
                    data.token,
                    redemption_requests(data.members_with_points, n_redeem, i),
                    args.redeem_rate,
                    args.duration,
                    f"redeem-{backend}",
                    procs,
                )
                result["redemptions"].append(red)
                cou = load_run(
                    server.url,
                    data.token,
                    coupon_requests(data.coupons, n),
                    args.rate,
                    args.duration,
                    f"coupons-{backend}",
                    procs,
                )
                result["coupon_validate"].append(cou)
                print(
                    f"[{backend}] load run {i + 1}: redemptions at {args.redeem_rate:g}/s p50/p99 "
                    f"{red['latency_ms'].get('p50')}/{red['latency_ms'].get('p99')} ms "
                    f"({red['errors']} errors); coupon validation at {args.rate:g}/s p50/p99 "
                    f"{cou['latency_ms'].get('p50')}/{cou['latency_ms'].get('p99')} ms "
                    f"({cou['errors']} errors)",
                    flush=True,
                )
        server_log = server.log()
    engine.dispose()
    result["tracebacks_in_server_log"] = server_log.count("Traceback")
    result["tracebacks_in_worker_log"] = (
        worker_log.read_text(errors="replace").count("Traceback") if worker_log.exists() else 0
    )
    result["checks"] = checks(url, posted)
    if backend == "postgresql" and not args.skip_pgbench:
        result["pgbench"] = [pgbench(args.clients, args.pgbench_seconds, 10) for _ in range(args.runs)]
    result["median"] = {
        "credited_per_s": median_of(result["orders"], "credited_per_s"),
        "posted_per_s": median_of(result["orders"], "posted_per_s"),
        "post_p50_ms": median_of(result["orders"], "post_latency_ms", "p50"),
        "post_p99_ms": median_of(result["orders"], "post_latency_ms", "p99"),
        "cpu_ms_per_order_server": median_of(result["orders"], "cpu_ms_per_order", "server"),
        "cpu_ms_per_order_dispatchers": median_of(result["orders"], "cpu_ms_per_order", "dispatchers"),
        "cpu_ms_per_order_database": median_of(result["orders"], "cpu_ms_per_order", "database"),
        "cpu_ms_per_order_total": median_of(result["orders"], "cpu_ms_per_order_total"),
        "redeem_p50_ms": median_of(result["redemptions"], "latency_ms", "p50"),
        "redeem_p99_ms": median_of(result["redemptions"], "latency_ms", "p99"),
        "redeem_errors": median_of(result["redemptions"], "errors"),
        "redeem_cpu_ms_server": median_of(result["redemptions"], "cpu_ms_per_request", "server"),
        "validate_p50_ms": median_of(result["coupon_validate"], "latency_ms", "p50"),
        "validate_p99_ms": median_of(result["coupon_validate"], "latency_ms", "p99"),
        "validate_errors": median_of(result["coupon_validate"], "errors"),
        "validate_cpu_ms_server": median_of(result["coupon_validate"], "cpu_ms_per_request", "server"),
        "pgbench_tps": median_of(result.get("pgbench", []), "tps"),
    }
    print(f"[{backend}] checks: {result['checks']}", flush=True)
    return result


# ---- RESULTS.md ------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def write_section() -> None:
    results = [json.loads(p.read_text()) for p in sorted(RESULTS_DIR.glob("loyalty-*.json"))]
    if not results:
        return
    lines = [
        SECTION,
        "",
        "`bench/loyalty_bench.py` (one command: `.venv/bin/python bench/loyalty_bench.py`): a fresh",
        "database seeded through the public functions; `uvicorn patron.web.asgi:app --workers 2` with the",
        "in-process dispatcher off, plus `patron worker` process(es) dispatching the outbox; load from",
        "separate processes. **Orders**: a closed model — C clients each post the next",
        "`POST /api/v1/orders` (VND/HUF/THB, 1–3 lines) when the last one answered; *credited/s* counts",
        "from the first POST until every order's `earn` entry is in the points ledger (the outbox drained",
        'through `order.placed`). **Redemptions** (`{"points": n}` with an `Idempotency-Key`) and **coupon',
        "validation** (90 % valid codes of three promotions, 5 % unknown, 5 % under the minimum spend):",
        "open model through `bench/load.py --requests` at the stated rate (latency from the scheduled",
        "send). **pgbench `-b simple-update`** with the same client count on a scratch database is the",
        "ceiling for one small write transaction per client round trip. Medians of the runs; CPU is user +",
        "system time of the processes named, per order or request.",
        "",
        "| backend | date | runs | clients | dispatchers | orders credited/s end to end | orders posted/s "
        "| POST p50 / p99 ms | CPU ms per order: server / dispatcher / database "
        "| redemption p50 / p99 ms at rate | coupon validate p50 / p99 ms at rate "
        "| pgbench simple-update tps | checks | load avg before |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---|---|---:|---|---|",
    ]
    for r in sorted(results, key=lambda r: r["backend"]):
        m, st = r["median"], r["settings"]
        rate = f"{st['rate']:g}/s"
        redeem_rate = f"{st.get('redeem_rate', st['rate']):g}/s"
        cells = [
            r["backend"], r["date"], st["runs"], st["clients"], st["dispatchers"], _fmt(m["credited_per_s"]),
            _fmt(m["posted_per_s"]), f"{_fmt(m['post_p50_ms'])} / {_fmt(m['post_p99_ms'])}",
            " / ".join(
                [_fmt(m[f"cpu_ms_per_order_{k}"], 2) for k in ("server", "dispatchers")]
                + ["(in those)" if r["backend"] == "sqlite" else _fmt(m["cpu_ms_per_order_database"], 2)]
            ),
            f"{_fmt(m['redeem_p50_ms'])} / {_fmt(m['redeem_p99_ms'])} at {redeem_rate}",
            f"{_fmt(m['validate_p50_ms'])} / {_fmt(m['validate_p99_ms'])} at {rate}",
            _fmt(m.get("pgbench_tps")), "ok" if r["checks"]["ok"] else f"FAILED {r['checks']}",
            " ".join(r.get("load_average_before", [])),
        ]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines.append("")
    for m in sorted({json.dumps(r["machine"], sort_keys=True) for r in results}):
        d = json.loads(m)
        lines.append(
            f"Machine: {d['nproc']} CPUs ({d['cpu']}), {d['memory']} RAM, Python {d['python']}, "
            f"{d.get('postgresql_client', '')}."
        )
    lines.append("Per-run figures: `bench/results/loyalty-<backend>.json`.")
    notes = RESULTS_DIR / "loyalty-notes.md"
    if notes.exists():
        lines += ["", notes.read_text(encoding="utf-8").rstrip("\n")]
    body = "\n".join(lines) + "\n"
    current = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else "# Benchmark results\n"
    current = replace_section(current, body)
    RESULTS_MD.write_text(summary_rows(current, results), encoding="utf-8")


def replace_section(document: str, section: str) -> str:
    """Replace the ``## Loyalty`` section (up to the next ``## `` heading) or append it."""
    lines = document.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        return document.rstrip("\n") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


def summary_rows(document: str, results: list[dict[str, Any]]) -> str:
    """Put one row per aim (``| Loyalty: …``) at the end of the Summary table at the top."""
    by = {r["backend"]: r for r in results}
    rows = []
    for backend in ("postgresql", "sqlite"):
        r = by.get(backend)
        if r is None:
            continue
        m, st = r["median"], r["settings"]
        aim = (
            f"≥ {AIMS['orders_per_s_postgresql']:.0f}/s on PostgreSQL"
            if backend == "postgresql"
            else "(on PostgreSQL)"
        )
        met = (
            ("yes" if (m["credited_per_s"] or 0) >= AIMS["orders_per_s_postgresql"] else "no")
            if backend == "postgresql"
            else "—"
        )
        pg = f"; pgbench simple-update {_fmt(m.get('pgbench_tps'))} tps" if m.get("pgbench_tps") else ""
        what = (
            f"orders credited end to end, {backend}, 2 server workers + {st['dispatchers']} "
            f"dispatcher process(es), {st['clients']} clients"
        )
        measured = (
            f"{_fmt(m['credited_per_s'])} orders/s (POST p99 {_fmt(m['post_p99_ms'])} ms; "
            f"{_fmt(m['cpu_ms_per_order_total'], 2)} CPU ms/order{pg})"
        )
        rows.append(f"| {SUMMARY_TAG} {what} | {measured} | {aim} | {met} | |")
        if m["validate_p99_ms"] is not None:
            aim = (
                f"p99 ≤ {AIMS['coupon_validate_p99_ms']:.0f} ms at 100/s on PostgreSQL"
                if backend == "postgresql"
                else "(on PostgreSQL)"
            )
            ok = (
                m["validate_p99_ms"] <= AIMS["coupon_validate_p99_ms"]
                and st["rate"] >= 100
                and not m["validate_errors"]
            )
            met = ("yes" if ok else "no") if backend == "postgresql" else "—"
            what = f"`POST /coupons/validate`, {backend}, {st['rate']:g} req/s open model"
            measured = (
                f"p50 {_fmt(m['validate_p50_ms'])} ms, **p99 {_fmt(m['validate_p99_ms'])} ms**, "
                f"{_fmt(m['validate_errors'], 0)} errors"
            )
            rows.append(f"| {SUMMARY_TAG} {what} | {measured} | {aim} | {met} | |")
            what = (
                f"`POST /loyalty/accounts/{{id}}/redemptions`, {backend}, "
                f"{st.get('redeem_rate', st['rate']):g} req/s open model"
            )
            measured = (
                f"p50 {_fmt(m['redeem_p50_ms'])} ms, p99 {_fmt(m['redeem_p99_ms'])} ms, "
                f"{_fmt(m['redeem_errors'], 0)} errors"
            )
            rows.append(f"| {SUMMARY_TAG} {what} | {measured} | (p99 at a stated rate) | — | |")
    lines = [line for line in document.splitlines() if not line.startswith(f"| {SUMMARY_TAG}")]
    for i, row in enumerate(rows):  # the last column says when, and whether the machine was busy
        r = by["postgresql" if "postgresql," in row else "sqlite"]
        load = float((r.get("load_average_before") or ["0"])[0])
        when = f"{r['date']}" + (f", load avg {load:.1f}: preliminary (shared machine)" if load > 1.5 else "")
        rows[i] = row[: -len("| |")] + f"| {when} |"
    head = next((i for i, line in enumerate(lines) if line.startswith("## Summary")), None)
    if head is None:
        return "\n".join(lines) + "\n"
    i = head + 1
    while i < len(lines) and not lines[i].startswith("|"):
        i += 1
    while i < len(lines) and lines[i].startswith("|"):
        i += 1
    return "\n".join(lines[:i] + rows + lines[i:]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--orders", type=int, default=1500, help="orders posted per run (default 1500)")
    parser.add_argument(
        "--clients", type=int, default=16, help="concurrent order clients; also pgbench -c (16)"
    )
    parser.add_argument(
        "--dispatchers",
        type=int,
        default=1,
        help="`patron worker` processes (default 1; SQLite's one write lock makes more pointless, and on "
        "PostgreSQL two deadlock on shared accounts now and then: retried, not lost)",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="dispatcher idle poll interval, s (1.0)")
    parser.add_argument("--customers", type=int, default=3000, help="customers (all enrolled; default 3000)")
    parser.add_argument("--members", type=int, default=1000, help="customers given points to redeem (1000)")
    parser.add_argument("--codes", type=int, default=3000, help="coupon codes over three promotions (3000)")
    parser.add_argument("--rate", type=float, default=100.0, help="coupon validations per second (100)")
    parser.add_argument("--redeem-rate", type=float, default=50.0, help="redemptions per second (50)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of arrivals per load run (15)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each phase (3; medians reported)")
    parser.add_argument(
        "--drain-timeout", type=float, default=300.0, help="give up waiting for credits after (s)"
    )
    parser.add_argument("--pgbench-seconds", type=float, default=10.0, help="pgbench -T per run (10)")
    parser.add_argument("--skip-load", action="store_true", help="orders only (no redemption / coupon load)")
    parser.add_argument("--skip-pgbench", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="do not write results/RESULTS.md (trials)")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    started = time.perf_counter()
    for backend in backends:
        result = run_backend(args, backend)
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        if not args.no_write:
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            (RESULTS_DIR / f"loyalty-{backend}.json").write_text(
                json.dumps(result, indent=2, ensure_ascii=False) + "\n"
            )
            write_section()
        print(json.dumps(result["median"], indent=2), flush=True)
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
