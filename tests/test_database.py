"""Schema versions on every store: stamped, migrated forward under a lock, a newer file refused."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pytest

from edge.alerts import AlertStore
from edge.database import open_database, open_or_set_aside, schema_version
from edge.enrich import HouseholdStore, VisitStore
from edge.errors import StoreVersionError
from edge.outbox import Outbox
from edge.rules import RuleStateStore
from edge.sinks import DeliveryLog, PhoneBook, ReadingStore
from gateway.audit import AuditLog
from gateway.short_links import ShortLinks
from gateway.tokens import TokenStore
from tests.agent_process import AgentProcess, wait_for
from tests.mqtt_publisher import publish
from tests.servers import MosquittoServer, free_port

V1 = "CREATE TABLE IF NOT EXISTS t (a TEXT NOT NULL);\n"
V2 = "CREATE TABLE IF NOT EXISTS t (a TEXT NOT NULL, b INTEGER NOT NULL DEFAULT 7);\n"
TO_V2 = "ALTER TABLE t ADD COLUMN b INTEGER NOT NULL DEFAULT 7;\n"


class _SetAside(Protocol):
    """A store that sets an unreadable file aside and says so."""

    problem: str | None

    def close(self) -> None: ...


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return schema_version(conn)
    finally:
        conn.close()


def test_new_file_is_stamped_and_gets_the_whole_schema(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "s.db", V2, migrations=[TO_V2])
    conn.execute("INSERT INTO t (a) VALUES ('x')")
    assert conn.execute("SELECT a, b FROM t").fetchall() == [("x", 7)]
    conn.close()
    assert _version(tmp_path / "s.db") == 2


def test_first_release_file_migrates_forward_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    old = sqlite3.connect(path)  # as the first release left it: no user_version
    old.executescript(V1 + "INSERT INTO t (a) VALUES ('kept');")
    old.close()
    conn = open_database(path, V2, migrations=[TO_V2])
    assert conn.execute("SELECT a, b FROM t").fetchall() == [("kept", 7)]
    conn.close()
    assert _version(path) == 2
    conn = open_database(path, V2, migrations=[TO_V2])  # again: nothing to do
    conn.close()
    assert _version(path) == 2


def test_newer_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = open_database(path, V2, migrations=[TO_V2])
    conn.execute("INSERT INTO t (a) VALUES ('from the future')")
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    with pytest.raises(StoreVersionError, match=r"newer community-edge \(schema version 3"):
        open_database(path, V2, migrations=[TO_V2])
    assert _version(path) == 3
    check = sqlite3.connect(path)
    assert check.execute("SELECT a FROM t").fetchall() == [("from the future",)]
    check.close()


def test_concurrent_openers_migrate_once(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE is the lock: of eight openers at once, one migrates, the others wait."""
    path = tmp_path / "s.db"
    open_database(path, V1 + "CREATE TABLE IF NOT EXISTS ran (n INTEGER);\n").close()
    migration = TO_V2 + "INSERT INTO ran VALUES (1);\n"
    schema = V2 + "CREATE TABLE IF NOT EXISTS ran (n INTEGER);\n"
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            start.wait()
            open_database(path, schema, migrations=[migration]).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    check = sqlite3.connect(path)
    assert check.execute("SELECT count(*) FROM ran").fetchone() == (1,)
    check.close()
    assert _version(path) == 2


async def test_every_store_carries_a_version(tmp_path: Path) -> None:
    now = lambda: datetime(2026, 1, 1, tzinfo=UTC)  # noqa: E731
    AlertStore(tmp_path / "alerts.db").close()
    await Outbox(tmp_path / "outbox.db", {}, now=now).close()
    await DeliveryLog(tmp_path / "deliveries.db", now=now).close()
    await ReadingStore(tmp_path / "readings.db").close()
    AuditLog(tmp_path / "audit.db").close()
    TokenStore(tmp_path / "tokens.db").close()
    HouseholdStore(tmp_path / "households.db").close()
    RuleStateStore(tmp_path / "rules.db").close()
    # readings.db is at 2: its readings carry the flags of what the gateway replaced (#14)
    versions = {"alerts": 1, "outbox": 1, "deliveries": 1, "readings": 2, "audit": 1, "tokens": 1}
    versions["households"] = versions["rules"] = 1
    for name, version in versions.items():
        assert _version(tmp_path / f"{name}.db") == version, name


def test_agent_refuses_a_newer_data_dir_with_a_clear_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    AlertStore(data / "alerts.db").close()
    conn = sqlite3.connect(data / "alerts.db")
    conn.execute("PRAGMA user_version = 9")
    conn.close()
    before = (data / "alerts.db").read_bytes()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "run",
            "--data-dir",
            str(data),
            "--api-port",
            str(free_port()),
            "--mqtt-url",
            f"mqtt://127.0.0.1:{free_port()}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "alerts.db: written by a newer community-edge (schema version 9" in result.stderr
    assert "Traceback" not in result.stderr
    assert (data / "alerts.db").read_bytes() == before
    assert not list(data.glob("alerts.db.corrupt-*"))


@pytest.mark.parametrize(
    ("name", "open_store", "said"),
    [
        ("households.db", lambda d: HouseholdStore(d / "households.db"), "household register"),
        ("visits.db", lambda d: VisitStore(d / "visits.db"), "visit log"),
        ("phone-sends.db", lambda d: PhoneBook(d / "phone-sends.db"), "phone book"),
        ("short-links.db", ShortLinks, "short links"),
        ("audit.db", lambda d: AuditLog(d / "audit.db"), "audit log"),
    ],
)
def test_an_unreadable_store_is_set_aside_logged_and_said_so(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    name: str,
    open_store: Callable[[Path], _SetAside],
    said: str,
) -> None:
    (tmp_path / name).write_bytes(b"this is not a database" * 100)
    store = open_store(tmp_path)
    try:
        moved = list(tmp_path.glob(f"{name}.corrupt-*"))
        assert len(moved) == 1
        assert moved[0].read_bytes() == b"this is not a database" * 100
        assert store.problem is not None
        assert store.problem.startswith(f"{said} {tmp_path / name} was unreadable (")
        assert f"moved to {moved[0]}, started empty; " in store.problem
        assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [store.problem]
        assert _version(tmp_path / name) == 1  # the new, empty file
    finally:
        store.close()
    again = open_store(tmp_path)
    assert again.problem is None
    again.close()


def test_a_newer_file_is_not_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_database(path, V2, migrations=[TO_V2]).close()
    with pytest.raises(StoreVersionError, match="newer community-edge"):
        open_or_set_aside(path, V1, "test store")
    assert not list(tmp_path.glob("s.db.corrupt-*"))
    assert _version(path) == 2


def test_a_rules_file_from_before_versions_keeps_its_state_and_is_stamped_1(tmp_path: Path) -> None:
    path = tmp_path / "rules.db"
    old = sqlite3.connect(path)  # as the releases before versions wrote it
    old.execute(
        "CREATE TABLE rule_state (section TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, "
        "PRIMARY KEY (section, key)) WITHOUT ROWID"
    )
    old.execute("INSERT INTO rule_state VALUES ('away', 'c1/b1/101', '\"2026-01-02\"')")
    old.commit()
    old.close()
    assert _version(path) == 0
    store = RuleStateStore(path)
    try:
        assert store.load() == {"away": {"c1/b1/101": "2026-01-02"}}
    finally:
        store.close()
    assert _version(path) == 1
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_rules_file_of_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "rules.db"
    RuleStateStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreVersionError, match=r"rules\.db: written by a newer community-edge"):
        RuleStateStore(path)
    assert path.read_bytes() == before


@pytest.mark.broker
def test_a_gateway_with_an_unreadable_audit_log_keeps_handling_alarms_and_says_so(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "audit.db").write_bytes(b"not a database" * 100)
    with AgentProcess(data, mosquitto.url) as agent:
        health = agent.get("/healthz")
        assert health["status"] == "degraded"
        (problem,) = health["stores"]["problems"]
        assert problem.startswith(f"audit log {data / 'audit.db'} was unreadable (")
        assert "keep it with the trail" in problem
        # an SOS still becomes an alert, and acting on it is audited again
        publish(
            mosquitto.url,
            [("ce/audit-lost/b1/tuya-sos-button/sos-1", b'{"action": "emergency"}')],
        )
        (alert,) = wait_for(
            lambda: agent.get("/v1/alerts", community="audit-lost")["items"], what="the SOS"
        )
        assert agent.post(f"/v1/alerts/{alert['id']}/ack").status_code == 200
        assert [r["action"] for r in agent.get("/v1/audit")][:1] == ["acknowledge"]
    (moved,) = data.glob("audit.db.corrupt-*")
    assert moved.read_bytes() == b"not a database" * 100
