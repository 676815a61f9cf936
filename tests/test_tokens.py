"""API tokens (hashed, scoped, revocable), the tokens command, and the append-only audit log."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.audit import AuditLog
from gateway.tokens import Role, TokenError, TokenStore


def test_a_token_is_shown_once_and_only_its_hash_is_stored(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.db")
    token_id, token = store.create("property_manager", ["garden", "lakeside"], "pm")

    principal = store.verify(token)

    assert principal is not None
    assert (principal.token_id, principal.role) == (token_id, Role.PROPERTY_MANAGER)
    assert principal.communities == {"garden", "lakeside"}
    assert token.split("_", 2)[2].encode() not in (tmp_path / "tokens.db").read_bytes()
    assert (tmp_path / "tokens.db").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("mangle", [lambda t: t + "x", lambda t: t[:-1], lambda t: "xx" + t[2:]])
def test_a_wrong_or_malformed_token_is_refused(
    tmp_path: Path, mangle: Callable[[str], str]
) -> None:
    store = TokenStore(tmp_path / "tokens.db")
    _, token = store.create("duty_officer", ["garden"])
    assert store.verify(mangle(token)) is None
    assert store.verify("") is None
    assert store.verify("ce__") is None


def test_a_revoked_token_fails_at_once(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.db")
    token_id, token = store.create("duty_officer", ["garden"])
    other = TokenStore(tmp_path / "tokens.db")  # a running API holds its own connection

    store.revoke(token_id)

    assert other.verify(token) is None
    with pytest.raises(TokenError, match="already revoked"):
        store.revoke(token_id)
    with pytest.raises(TokenError, match="no token 'nope'"):
        store.revoke("nope")
    (info,) = store.list()
    assert info.revoked_at is not None


@pytest.mark.parametrize(
    ("role", "communities", "problem"),
    [
        ("janitor", ["a"], "unknown role 'janitor'"),
        ("duty_officer", [], "at least one --community"),
        ("duty_officer", ["*"], "only admin and platform"),
        ("platform", ["a,b"], "invalid community id"),
    ],
)
def test_bad_token_requests_are_refused(
    tmp_path: Path, role: str, communities: list[str], problem: str
) -> None:
    with pytest.raises(TokenError, match=problem):
        TokenStore(tmp_path / "tokens.db").create(role, communities)


def test_scope_narrows_a_query_to_the_tokens_communities(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.db")
    _, scoped = store.create("duty_officer", ["a", "b"])
    _, platform = store.create("platform", ["*"])
    a_and_b = store.verify(scoped)
    everyone = store.verify(platform)
    assert a_and_b is not None
    assert everyone is not None
    assert a_and_b.scope(None) == ["a", "b"]
    assert a_and_b.scope(["b", "c"]) == ["b"]
    assert a_and_b.scope(["c"]) == []
    assert everyone.scope(None) is None
    assert everyone.scope(["c"]) == ["c"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "tokens", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_tokens_command_creates_lists_and_revokes(tmp_path: Path) -> None:
    created = _cli(
        "create", "--data-dir", str(tmp_path), "--role", "duty_officer", "--community", "garden"
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    principal = TokenStore(tmp_path / "tokens.db").verify(token)
    assert principal is not None
    listed = _cli("list", "--data-dir", str(tmp_path))
    assert principal.token_id in listed.stdout
    assert token not in listed.stdout

    revoked = _cli("revoke", "--data-dir", str(tmp_path), principal.token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert TokenStore(tmp_path / "tokens.db").verify(token) is None
    again = _cli("revoke", "--data-dir", str(tmp_path), principal.token_id)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"community-edge tokens: token {principal.token_id!r} is already revoked"
    )
    actions = [r.action for r in AuditLog(tmp_path / "audit.db").query()]
    assert actions == ["token_revoke", "token_create"]  # the refused revoke changed nothing


def test_the_audit_log_is_append_only(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    log.record(
        actor="t1",
        role="duty_officer",
        community="garden",
        object="alert:a1",
        action="acknowledge",
        result="ok",
        request_id="r1",
    )
    conn = sqlite3.connect(tmp_path / "audit.db")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET result = 'refused'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit")
    (record,) = log.query(community="garden")
    assert (record.actor, record.object, record.action, record.result) == (
        "t1",
        "alert:a1",
        "acknowledge",
        "ok",
    )


def test_a_token_expires_and_an_old_tokens_file_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    old = sqlite3.connect(path)  # a tokens.db from before tokens could expire
    old.execute(
        "CREATE TABLE tokens (id TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, "
        "communities TEXT NOT NULL, name TEXT, created_at TEXT NOT NULL, revoked_at TEXT)"
    )
    old.close()
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    store = TokenStore(path, now=lambda: now[0])
    token_id, token = store.create("duty_officer", ["garden"], valid_for=timedelta(hours=8))
    _, lasting = store.create("duty_officer", ["garden"])

    now[0] += timedelta(hours=7, minutes=59)
    assert store.verify(token) is not None
    assert store.active(token_id)
    now[0] += timedelta(minutes=1)
    assert store.verify(token) is None
    assert not store.active(token_id)
    assert store.verify(lasting) is not None
    expiry = {info.id: info.expires_at for info in store.list()}
    assert expiry[token_id] == datetime(2026, 1, 1, 8, tzinfo=UTC)
    with pytest.raises(TokenError, match="lifetime must be positive"):
        store.create("duty_officer", ["garden"], valid_for=timedelta(0))


def test_the_tokens_command_refuses_a_missing_data_dir_and_says_when_there_are_none(
    tmp_path: Path,
) -> None:
    """A mistyped --data-dir is refused by list and revoke, not created empty; create makes a
    fresh install's dir and says so; an empty list says so (trial #6)."""
    missing = tmp_path / "no" / "such"
    for action in (["list"], ["revoke", "abc"]):
        refused = _cli(*action, "--data-dir", str(missing))
        assert refused.returncode == 2, action
        assert f"no data dir {missing}" in refused.stderr
    assert not (tmp_path / "no").exists()
    fresh = _cli("create", "--data-dir", str(missing), "--role", "admin", "--community", "*")
    assert fresh.returncode == 0, fresh.stderr
    assert f"created the data dir {missing}" in fresh.stderr
    assert (missing / "tokens.db").exists()
    listed = _cli("list", "--data-dir", str(tmp_path))
    assert listed.returncode == 2
    assert "no tokens in" in listed.stderr
    assert not (tmp_path / "tokens.db").exists()
    created = _cli("create", "--data-dir", str(tmp_path), "--role", "admin", "--community", "*")
    assert created.returncode == 0, created.stderr
    revoked = created.stdout.splitlines()[0].split()[1].rstrip(":")
    assert _cli("revoke", "--data-dir", str(tmp_path), revoked).returncode == 0
    listed = _cli("list", "--data-dir", str(tmp_path))
    assert listed.stdout.splitlines()[0].split()[:3] == ["id", "role", "communities"]
    assert revoked in listed.stdout.splitlines()[1]
