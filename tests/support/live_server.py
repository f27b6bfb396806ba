"""Real server processes for tests and benchmarks that must cross process boundaries.

``LiveServer`` starts ``uvicorn patron.web.asgi:app --workers N`` (or the shipped ``patron serve``) in
a subprocess on a free 127.0.0.1 port, with ``PATRON_DATABASE_URL`` pointing to the given database;
it waits until every worker has started and ``/api/v1/health`` answers, and stops the whole process
group on exit. Server output goes to a log file whose tail is shown when start-up fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx
from sqlalchemy import text

from patron.auth import Role, create_token, create_user
from patron.core.db import Database, get_engine, is_sqlite

STAFF_PASSWORD = "correct horse battery"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_database_url(template_db: str, directory: Path, name: str = "live.db") -> str:
    """A migrated, empty database that other processes can open.

    ``template_db`` is the ``template_db`` fixture's value: a migrated SQLite file (copied to
    ``directory/name``) or a PostgreSQL URL (all tables truncated, the URL is returned).
    """
    if "://" in template_db and not is_sqlite(template_db):
        engine = get_engine(template_db)
        with engine.begin() as conn:
            query = text(
                "SELECT tablename FROM pg_tables"
                " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
            names = conn.execute(query).scalars().all()
            if names:
                tables = ", ".join(f'"{n}"' for n in names)
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        return template_db
    target = directory / name
    shutil.copyfile(template_db, target)
    return f"sqlite:///{target}"


def create_staff_token(database_url: str, role: Role | str, *, email: str | None = None) -> str:
    """Create a staff user with ``role`` and an API token for it; returns the token secret."""
    role = Role(role)
    db = Database(get_engine(database_url))
    with db.unit_of_work() as session:
        user = create_user(
            session,
            email=email or f"{role.value}@example.com",
            password=STAFF_PASSWORD,
            role=role,
            name=role.value.title(),
        )
        _, secret = create_token(session, user=user, name="live-server-test")
    return secret


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces: split after the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            out.append(int(entry.name))
    return sorted(out)


class LiveServerError(RuntimeError):
    pass


class LiveServer:
    """A real Patron server in a subprocess.

    ``command="uvicorn"`` runs ``uvicorn patron.web.asgi:app``; ``command="serve"`` runs the shipped
    ``patron serve`` (which also starts the in-process event dispatcher unless ``dispatch=False``).
    """

    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 2,
        dispatch: bool = False,
        command: Literal["uvicorn", "serve"] = "uvicorn",
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.database_url = database_url
        self.workers = workers
        self.dispatch = dispatch
        self.command = command
        self.log_path = log_path
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise LiveServerError("server not started")
        return self._proc.pid

    def worker_pids(self) -> list[int]:
        """The pids of the server's worker processes (children of the uvicorn supervisor)."""
        return [p for p in _children(self.pid) if self._is_worker(p)]

    @staticmethod
    def _is_worker(pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        # uvicorn spawns workers through multiprocessing; its resource tracker is not a worker
        return b"resource_tracker" not in cmdline

    def _argv(self) -> list[str]:
        if self.command == "serve":
            return [
                sys.executable,
                "-c",
                "from patron.cli.main import main; main()",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--dispatch" if self.dispatch else "--no-dispatch",
            ]
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "patron.web.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--no-access-log",
            "--log-level",
            "info",
            "--timeout-graceful-shutdown",
            "5",
        ]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "PATRON_DATABASE_URL": self.database_url,
                "PATRON_DISPATCH_IN_PROCESS": "1" if self.dispatch else "0",
                "PATRON_ARGON2_TIME_COST": os.environ.get("PATRON_ARGON2_TIME_COST", "1"),
                "PATRON_ARGON2_MEMORY_COST": os.environ.get("PATRON_ARGON2_MEMORY_COST", "8192"),
                "PATRON_CONFIG": os.devnull,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.pop("PYTEST_XDIST_WORKER", None)
        env.update(self.extra_env)
        return env

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def start(self) -> LiveServer:
        if self._proc is not None:
            raise LiveServerError("server already started")
        if self.log_path is None:
            import tempfile

            fd, name = tempfile.mkstemp(prefix="patron-live-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        for _attempt in range(3):  # the free port may be taken between probing and binding
            self.port = free_port()
            log = self.log_path.open("wb")
            self._proc = subprocess.Popen(
                self._argv(),
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            log.close()
            try:
                self._wait_ready()
                return self
            except LiveServerError:
                output = self.log()
                self.stop()
                if "address already in use" not in output.lower():
                    raise
        raise LiveServerError("could not bind a free port")

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    raise LiveServerError(
                        f"server exited with {self._proc.returncode}:\n{self.log()[-4000:]}"
                    )
                started = self.log().count("Application startup complete")
                if started >= self.workers:
                    try:
                        response = client.get(f"{self.url}/api/v1/health")
                    except httpx.TransportError:
                        response = None
                    if response is not None and response.status_code == 200:
                        return
                time.sleep(0.1)
        raise LiveServerError(
            f"server did not become ready in {self.startup_timeout}s:\n{self.log()[-4000:]}"
        )

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # our own process group (start_new_session)
            proc.wait(timeout=15)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
