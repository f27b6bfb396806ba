"""The CLI contract, through the real ``patron`` executable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

PATRON = str(Path(sys.executable).with_name("patron"))


def run(db_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATRON_DATABASE_URL": db_url}
    return subprocess.run(
        [PATRON, *args], env=env, capture_output=True, text=True, input=stdin or "", timeout=120, check=False
    )


def test_help_lists_the_commands(db_url: str) -> None:
    result = run(db_url, "--help")
    assert result.returncode == 0
    for command in ("init", "serve", "worker", "users", "tokens"):
        assert command in result.stdout


def test_init_users_tokens(db_url: str, app: object) -> None:
    first = run(db_url, "init")
    assert first.returncode == 0, first.stderr
    assert "owner password (shown once):" in first.stdout
    again = run(db_url, "init")
    assert again.returncode == 0
    assert "owner password" not in again.stdout

    added = run(
        db_url,
        "users",
        "add",
        "--email",
        "ana@example.com",
        "--password",
        "ana-password-123",
        "--role",
        "marketer",
    )
    assert added.returncode == 0, added.stderr
    dup = run(
        db_url,
        "users",
        "add",
        "--email",
        "ana@example.com",
        "--password",
        "ana-password-123",
        "--role",
        "marketer",
    )
    assert dup.returncode == 1
    assert "duplicate_user" in dup.stderr

    created = run(db_url, "tokens", "create", "--email", "ana@example.com", "--name", "integration")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("ptn_")

    with TestClient(app) as client:  # type: ignore[arg-type]
        me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.json()["email"] == "ana@example.com"
        assert me.json()["role"] == "marketer"

    listed = run(db_url, "tokens", "list")
    token_id = next(line.split()[0] for line in listed.stdout.splitlines() if "integration" in line)
    assert run(db_url, "tokens", "revoke", token_id).returncode == 0
    with TestClient(app) as client:  # type: ignore[arg-type]
        assert client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_set_password_never_prompts_without_a_terminal(db_url: str) -> None:
    run(db_url, "init", "--owner-email", "o@example.com", "--owner-password", "owner-password-1")
    result = run(db_url, "users", "set-password", "--email", "o@example.com")
    assert result.returncode == 0
    assert "new password (shown once):" in result.stdout


def test_unknown_user_is_a_clear_error(db_url: str) -> None:
    missing = "nobody@example.com"
    run(db_url, "init")
    result = run(db_url, "tokens", "create", "--email", missing, "--name", "x")
    assert result.returncode == 1
    assert "user_not_found" in result.stderr
