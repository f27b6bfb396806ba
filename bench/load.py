"""An open-model HTTP load generator (run it as its own process).

Requests are scheduled at a fixed arrival rate — request *i* is due at ``start + i / rate`` — and each
is sent when due whether or not earlier ones have answered, so a slow server faces a growing queue
instead of a politely waiting client (no coordinated omission). Latency is measured from the
*scheduled* time to the end of the response body; how late the generator itself sent requests is
reported separately, so a saturated generator is visible rather than hidden.

Bounded: at most ``--rate × --duration`` requests (and ``--max-requests``), at most
``--max-in-flight`` outstanding (a later arrival is counted as dropped, never delayed), stopped after
``--duration`` plus ``--timeout`` seconds whatever happens, and only to 127.0.0.1 / localhost.

    python bench/load.py --url http://127.0.0.1:8000 --paths queries.txt --rate 100 --duration 60 \\
        --header "Authorization: Bearer ..." --out result.json

``--paths`` holds one request path (with query string) per line; the generator cycles through them
in a seeded random order. Instead, ``--requests`` holds one JSON object per line —
``{"method": "POST", "path": "/api/v1/coupons/validate", "json": {...}, "headers": {...}}`` (``method``
defaults to GET; ``json`` and ``headers`` are optional) — for requests with a body or per-request
headers such as an ``Idempotency-Key``. The result is JSON (also printed): counts, errors by status,
and latency percentiles in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ALLOWED_HOSTS = {"127.0.0.1", "localhost"}

#: one request: a path for a GET, or {"method", "path", "json"?, "headers"?}
RequestSpec = str | dict[str, Any]


@dataclass
class Sample:
    scheduled: float
    sent: float
    done: float
    status: int  # 0 for a transport error or timeout
    error: str = ""


@dataclass
class Result:
    url: str
    rate: float
    duration_s: float
    scheduled: int
    completed: int
    ok: int
    errors: int
    error_statuses: dict[str, int] = field(default_factory=dict)
    error_examples: list[str] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)
    send_lag_ms: dict[str, float] = field(default_factory=dict)
    achieved_rate: float = 0.0
    wall_s: float = 0.0
    max_in_flight: int = 0


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(values_s: list[float]) -> dict[str, float]:
    ordered = sorted(v * 1000 for v in values_s)
    if not ordered:
        return {}
    return {
        "p50": round(percentile(ordered, 50), 2),
        "p90": round(percentile(ordered, 90), 2),
        "p99": round(percentile(ordered, 99), 2),
        "max": round(ordered[-1], 2),
        "mean": round(sum(ordered) / len(ordered), 2),
    }


def check_local(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in ALLOWED_HOSTS:
        raise SystemExit(f"refusing to load-test {host!r}: only 127.0.0.1 / localhost")


async def run(
    url: str,
    paths: list[RequestSpec],
    *,
    rate: float,
    duration: float,
    headers: dict[str, str],
    timeout: float = 10.0,
    max_requests: int = 100_000,
    max_in_flight_cap: int = 256,
    seed: int = 1,
) -> Result:
    check_local(url)
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    total = min(int(rate * duration), max_requests)
    order = list(paths)
    random.Random(seed).shuffle(order)
    samples: list[Sample] = []
    in_flight = 0
    max_in_flight = 0
    dropped = 0
    limits = httpx.Limits(max_connections=max_in_flight_cap, max_keepalive_connections=max_in_flight_cap)
    client = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout, limits=limits)

    async def one(spec: RequestSpec, scheduled: float) -> None:
        nonlocal in_flight, max_in_flight
        in_flight += 1
        max_in_flight = max(max_in_flight, in_flight)
        sent = time.perf_counter()
        try:
            if isinstance(spec, str):
                response = await client.get(spec)
            else:
                response = await client.request(
                    spec.get("method", "GET"),
                    spec["path"],
                    json=spec.get("json"),
                    headers=spec.get("headers"),
                )
            body = response.text[:200] if response.status_code >= 400 else ""
            samples.append(Sample(scheduled, sent, time.perf_counter(), response.status_code, body))
        except (httpx.HTTPError, OSError) as exc:
            samples.append(Sample(scheduled, sent, time.perf_counter(), 0, f"{type(exc).__name__}: {exc}"))
        finally:
            in_flight -= 1

    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.05
    hard_stop = start + duration + timeout
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.perf_counter() > hard_stop:
            dropped += total - i  # the generator fell this far behind: count the rest as not served
            break
        if in_flight >= max_in_flight_cap:
            dropped += 1  # open model: an arrival never waits for a free slot; it fails
            continue
        tasks.append(asyncio.create_task(one(order[i % len(order)], due)))
    pending = [t for t in tasks if not t.done()]
    if pending:
        _, still = await asyncio.wait(pending, timeout=max(0.0, hard_stop - time.perf_counter()))
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=5)
    wall = time.perf_counter() - start
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.aclose(), timeout=5)

    ok = [s for s in samples if 200 <= s.status < 300]
    bad = [s for s in samples if not 200 <= s.status < 300]
    unanswered = total - len(samples) - dropped
    statuses = Counter(str(s.status) for s in bad)
    if unanswered:
        statuses["unanswered"] += unanswered
    if dropped:
        statuses["dropped"] += dropped
    return Result(
        url=url,
        rate=rate,
        duration_s=duration,
        scheduled=total,
        completed=len(samples),
        ok=len(ok),
        errors=len(bad) + unanswered + dropped,
        error_statuses=dict(statuses),
        error_examples=list(dict.fromkeys(s.error for s in bad))[:5],
        latency_ms=summarise([s.done - s.scheduled for s in ok]),
        send_lag_ms=summarise([s.sent - s.scheduled for s in samples]),
        achieved_rate=round(len(samples) / wall, 2) if wall > 0 else 0.0,
        wall_s=round(wall, 2),
        max_in_flight=max_in_flight,
    )


def parse_headers(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep:
            raise SystemExit(f"bad header {value!r}: use 'Name: value'")
        out[name.strip()] = content.strip()
    return out


def read_requests(path: Path) -> list[RequestSpec]:
    """The ``--requests`` file: one JSON object per line (blank lines skipped)."""
    out: list[RequestSpec] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        spec = json.loads(line)
        if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
            raise SystemExit(f"{path}:{number}: an object with a 'path' is needed")
        out.append(spec)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="base URL (127.0.0.1 only)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--paths", type=Path, help="file with one path per line (GET)")
    source.add_argument(
        "--requests", type=Path, help="file with one JSON request per line: method, path, json, headers"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of arrivals")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout (s)")
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument(
        "--max-in-flight", type=int, default=256, help="arrivals beyond this many outstanding are dropped"
    )
    parser.add_argument("--header", action="append", default=[], help="'Name: value' (repeatable)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args(argv)
    paths: list[RequestSpec]
    if args.paths is not None:
        paths = [line.strip() for line in args.paths.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        paths = read_requests(args.requests)
    if not paths:
        raise SystemExit("no paths given")
    result = asyncio.run(
        run(
            args.url,
            paths,
            rate=args.rate,
            duration=args.duration,
            headers=parse_headers(args.header),
            timeout=args.timeout,
            max_requests=args.max_requests,
            seed=args.seed,
        )
    )
    text = json.dumps(result.__dict__, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
