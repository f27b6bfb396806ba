"""The nightly analytics run, off the dispatcher's thread.

The dispatcher (``patron worker``, or the one inside each ``patron serve`` process) checks every
10 minutes whether tonight's run is due. The check only *claims* the run — a queued row that at most
one worker can create per scope and local day (a unique constraint, so two workers checking at the
same moment start it once) — and then launches ``python -m patron.worker.analytics RUN_ID`` as a
process of its own, which executes it (then one run per market) and exits. The dispatcher goes on
delivering events meanwhile: the analysis uses its own process, memory and core, not the
dispatcher's thread or the GIL.

A watcher thread waits for the process; if it ends without recording an outcome (killed, out of
memory) the run is failed with its exit code, so it never blocks the next night; a process that
cannot be started at all fails the run at once. If the worker itself
stops, the analysis process finishes on its own.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence

from patron.analytics.jobs import claim_nightly, execute_nightly
from patron.analytics.runs import fail_unfinished_run
from patron.core.db import Database

log = logging.getLogger("patron.worker")

#: the processes launched by this worker (run id → process); finished ones are reaped by their watcher
launched: dict[str, subprocess.Popen[bytes]] = {}
_lock = threading.Lock()


#: the program that executes a claimed run (its id is appended): this interpreter and module
COMMAND: tuple[str, ...] = (sys.executable, "-m", "patron.worker.analytics")


def launch(db: Database, run_id: str, *, command: Sequence[str] = COMMAND) -> subprocess.Popen[bytes]:
    """Execute the claimed run ``run_id`` (and the market runs after it) in a new process."""
    env = {**os.environ, "PATRON_DATABASE_URL": db.engine.url.render_as_string(hide_password=False)}
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
        [*command, run_id],
        env=env,
        stdin=subprocess.DEVNULL,
    )
    with _lock:
        launched[run_id] = process
    threading.Thread(
        target=_watch, args=(db, run_id, process), name=f"patron-analytics-{run_id[:8]}", daemon=True
    ).start()
    log.info("nightly analytics run %s executes in process %s", run_id, process.pid)
    return process


def _watch(db: Database, run_id: str, process: subprocess.Popen[bytes]) -> None:
    code = process.wait()
    try:
        if code != 0 and fail_unfinished_run(
            db, run_id, f"the analysis process ended with exit code {code} before it finished"
        ):
            log.error("nightly analytics run %s: its process ended with exit code %s", run_id, code)
    except Exception:
        log.exception("could not record the end of analytics run %s", run_id)
    finally:
        with _lock:
            launched.pop(run_id, None)


def nightly_job(db: Database, *, command: Sequence[str] = COMMAND) -> None:
    """The dispatcher's job: claim tonight's run when due and launch it; returns at once. A process
    that cannot be started fails the run it claimed, so the run does not block the next ones."""
    view = claim_nightly(db)
    if view is None:
        return
    try:
        launch(db, view.id, command=command)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:  # raised by Popen: nothing runs
        log.error("nightly analytics run %s: could not start its process: %s", view.id, exc)
        fail_unfinished_run(db, view.id, f"could not start the analysis process: {exc}")


def main(argv: list[str]) -> int:
    """``python -m patron.worker.analytics RUN_ID``: execute a claimed nightly run."""
    from patron.bootstrap import database

    if len(argv) != 1:
        print("usage: python -m patron.worker.analytics RUN_ID", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO)
    db = database()
    done = execute_nightly(db, argv[0])
    # Each run records its own outcome, completed or failed. A run still queued or running here was
    # not claimed by this process (another one executes it): exit 0 so that our watcher does not fail
    # a run that is alive elsewhere. A crash exits non-zero, and the watcher fails the run.
    if done and not done[0].done:
        log.warning("analytics run %s is executed by another process (%s)", argv[0], done[0].status)
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a process by launch()
    raise SystemExit(main(sys.argv[1:]))
