"""`community-edge backup` under load and `restore`: nothing acknowledged before the backup is missing.

The agent runs against a real mosquitto while a publisher presses SOS buttons, one new device per
press, in order; the alarm lane acknowledges them in that order, so its acked count read just
before the backup starts names exactly the presses that must be in the copy.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.backup import BackupError, backup, restore, stores
from gateway.data_dir_lock import DataDirBusy, DataDirLock
from tests.agent_process import AgentProcess, wait_for
from tests.mqtt_publisher import Publisher
from tests.servers import MosquittoServer

ACKED_ALARM = 'community_edge_messages_acked_total{lane="alarm"}'


def _store(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(f"row {n}",) for n in range(rows)])
    conn.commit()
    conn.close()


def _rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        count: int = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        return count
    finally:
        conn.close()


def test_stores_are_copied_upstream_first(tmp_path: Path) -> None:
    for name in ("tokens.db", "alerts.db", "outbox.db", "zz-extra.db", "rules.db", "audit.db"):
        _store(tmp_path / name, 1)
    assert stores(tmp_path) == [
        "rules.db",
        "outbox.db",
        "alerts.db",
        "audit.db",
        "tokens.db",
        "zz-extra.db",
    ]


def test_backup_and_restore_round_trip_keeps_replaced_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _store(data / "outbox.db", 100)
    _store(data / "alerts.db", 7)
    (data / "api-token").write_text("secret\n")
    copy = tmp_path / "copy"
    copied = backup(data, copy)
    assert [c.name for c in copied] == ["outbox.db", "alerts.db", "api-token"]
    assert (copy / "manifest.json").is_file()
    assert not list(copy.glob("*-wal"))  # a backup is self-contained files
    assert {oct(p.stat().st_mode & 0o777) for p in copy.iterdir()} == {"0o600"}

    _store(data / "alerts.db-new", 0)  # not a store name: left alone
    conn = sqlite3.connect(data / "alerts.db")
    conn.execute("DELETE FROM t")
    conn.commit()
    conn.close()
    _, aside = restore(copy, data)
    assert _rows(data / "alerts.db") == 7
    assert _rows(data / "outbox.db") == 100
    assert (data / "api-token").read_text() == "secret\n"
    assert aside is not None
    assert _rows(aside / "alerts.db") == 0  # what it replaced is kept


def test_refusals(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(BackupError, match=r"no outbox\.db"):
        backup(data, tmp_path / "copy")
    _store(data / "outbox.db", 1)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(BackupError, match="not empty"):
        backup(data, tmp_path / "full")
    copy = tmp_path / "copy"
    backup(data, copy)
    (copy / "manifest.json").unlink()  # as if the backup had been interrupted
    with pytest.raises(BackupError, match="interrupted"):
        restore(copy, data)


def test_restore_refused_while_an_agent_holds_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _store(data / "outbox.db", 3)
    copy = tmp_path / "copy"
    backup(data, copy)
    with DataDirLock(data):
        with pytest.raises(DataDirBusy, match="in use"):
            DataDirLock(data).acquire()
        result = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "restore", str(copy), "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert "in use (agent pid" in result.stderr
    assert not list(data.glob("before-restore-*"))


class _Presser:
    """Presses the SOS button of device 0, 1, 2, ... in order until stopped."""

    def __init__(self, url: str, community: str) -> None:
        self.url = url
        self.community = community
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def topic(self, n: int) -> str:
        return f"ce/{self.community}/b01/tuya-sos-button/sos-{n:05d}"

    def _run(self) -> None:
        try:
            with Publisher(self.url, timeout=60.0, max_inflight=100) as pub:
                while not self._stop.is_set():
                    batch = [
                        (
                            self.topic(n),
                            {"action": "emergency", "battery": 80, "seq": 1, "ts": _now_ms()},
                        )
                        for n in range(self.sent, self.sent + 20)
                    ]
                    pub.publish_many(batch)
                    self.sent += len(batch)
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> _Presser:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        assert self.error is None, self.error


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _alerted_devices(agent: AgentProcess, community: str) -> list[str]:
    devices: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, object] = {"community": community, "limit": 500}
        if cursor is not None:
            params["cursor"] = cursor
        page = agent.get("/v1/alerts", **params)
        devices += [a["device_id"] for a in page["items"] if a["rule"] == "sos"]
        cursor = page["next_cursor"]
        if cursor is None:
            return devices


@pytest.mark.broker
def test_backup_under_load_restores_everything_acknowledged_before_it(tmp_path: Path) -> None:
    community = "backup-load"
    with MosquittoServer() as broker:
        agent = AgentProcess(tmp_path / "live", broker.url)
        with agent, _Presser(broker.url, community) as presser:
            wait_for(lambda: agent.metrics().get(ACKED_ALARM, 0) >= 300, 60, "300 presses acked")
            acked_before = int(agent.metrics()[ACKED_ALARM])
            # in this process, so that the count above is read moments before the copy starts
            started = time.monotonic()
            copied = backup(agent.data_dir, tmp_path / "copy")
            took = time.monotonic() - started
            acked_after = int(agent.metrics()[ACKED_ALARM])
            size = sum(c.bytes for c in copied)
            print(f"backup under load: {len(copied)} files, {size:,} bytes in {took:.2f} s")
        assert acked_after > acked_before, "the agent did not ingest while the backup ran"

        restored = tmp_path / "restored"  # its own client id: the broker gives it nothing old
        code = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "restore",
                str(tmp_path / "copy"),
                "--data-dir",
                str(restored),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert code.returncode == 0, code.stderr
        with AgentProcess(restored, broker.url) as again:
            devices = _alerted_devices(again, community)
    assert len(devices) == len(set(devices))  # no alert twice
    expected = {f"sos-{n:05d}" for n in range(acked_before)}
    assert expected - set(devices) == set()  # every press acknowledged before the backup
    assert len(devices) <= acked_after + 20  # and nothing invented beyond what was sent
    print(
        f"acked before the backup {acked_before}, in the restored copy {len(devices)}, "
        f"acked when it ended {acked_after}, sent {presser.sent}"
    )
