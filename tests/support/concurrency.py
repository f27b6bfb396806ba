"""Run callables at the same moment from many threads (each with its own HTTP connection)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def concurrently(n: int, call: Callable[[int], T], *, timeout: float = 120.0) -> list[T]:
    """Call ``call(i)`` for i in 0..n-1 from ``n`` threads released together by a barrier.

    Exceptions propagate (the first one, in index order)."""
    barrier = threading.Barrier(n, timeout=timeout)

    def run(i: int) -> T:
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(run, i) for i in range(n)]
        return [f.result(timeout=timeout) for f in futures]
