"""Disk hygiene: retention per kind of record, the data dir on /metrics and /healthz, journald lines."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from edge.alerts import AlertStore
from edge.clock import FakeClock
from edge.model import DeadLetter
from edge.outbox import Outbox
from edge.sinks import DeliveryLog
from edge.sinks.channels.delivery_log import DeliveryResult
from gateway.audit import AuditLog
from gateway.disk import DiskWatch
from gateway.retention import Retention, RetentionPolicy
from gateway.settings import ConfigurationError, RetentionSettings, load_settings
from tests.agent_process import AgentProcess
from tests.lifecycle import SMOKE, START, book, cleared, device, raised
from tests.servers import MosquittoServer

DAY_S = 86_400.0
POLICY = RetentionPolicy(
    resolved_alerts_days=365, deliveries_days=90, dead_letters_days=30, audit_days=1095
)


def test_defaults_keep_the_audit_longest() -> None:
    defaults = RetentionSettings()
    assert defaults.audit_days == 1095
    assert defaults.audit_days >= max(
        defaults.resolved_alerts_days, defaults.deliveries_days, defaults.dead_letters_days
    )
    with pytest.raises(ConfigurationError, match="audit_days"):
        load_settings(None, {"retention.audit_days": 10})


async def test_retention_deletes_only_what_is_past_its_time(tmp_path: Path) -> None:
    clock = FakeClock(START)
    alerts = AlertStore(tmp_path / "alerts.db")
    outbox = Outbox(tmp_path / "outbox.db", {"alert-store": frozenset({"events"})}, now=clock.now)
    deliveries = DeliveryLog(tmp_path / "deliveries.db", now=clock.now)
    audit = AuditLog(tmp_path / "audit.db")
    alert_book = book(clock)
    try:
        # two years ago: one alert resolved, one still open (never deleted, however old)
        old = [raised(alert_book, SMOKE, device("old"), clock)]
        old.append(cleared(alert_book, SMOKE, device("old"), clock))
        still_open = raised(alert_book, SMOKE, device("open"), clock)
        alerts.apply([*old, still_open])
        await deliveries.record("wecom", old, DeliveryResult.DELIVERED)
        await outbox.commit(
            dead_letters=[
                DeadLetter(
                    topic="t/old",
                    payload=b"x",
                    cause="not_json",
                    detail="d",
                    received_at=clock.now(),
                )
            ]
        )
        audit.record(
            actor="t1", role="admin", community="c1", object="alert:x", action="resolve",
            result="ok", request_id="r1",
        )  # fmt: skip
        clock.advance(730 * DAY_S)
        recent = [raised(alert_book, SMOKE, device("new"), clock)]
        recent.append(cleared(alert_book, SMOKE, device("new"), clock))
        alerts.apply(recent)
        await deliveries.record("wecom", recent, DeliveryResult.DELIVERED)
        await outbox.commit(
            dead_letters=[
                DeadLetter(
                    topic="t/new",
                    payload=b"x",
                    cause="not_json",
                    detail="d",
                    received_at=clock.now(),
                )
            ]
        )

        retention = Retention(
            POLICY,
            now=clock.now,
            alerts=alerts,
            outbox=outbox,
            deliveries=deliveries,
            audit=audit,
            check_s=3600,
        )
        # the audit record was written with the wall clock (now): not yet past three years
        assert await retention.prune() == {
            "alerts": 1,
            "deliveries": 2,  # the old alert's two events, one record each
            "dead_letters": 1,
            "audit": 0,
        }
        assert alerts.get(old[0].alert.id) is None
        assert alerts.history(old[0].alert.id) == []
        assert alerts.get(still_open.alert.id) is not None  # open: kept
        assert alerts.get(recent[0].alert.id) is not None
        assert len(alerts.history(recent[0].alert.id)) == 2
        assert [d.topic for d in await outbox.dead_letters()] == ["t/new"]
        assert await deliveries.for_alert(old[0].alert.id) == []
        assert len(await deliveries.for_alert(recent[0].alert.id)) == 2
        assert await retention.prune() == dict.fromkeys(retention.deleted, 0)  # nothing twice
        assert retention.deleted["alerts"] == 1
    finally:
        alerts.close()
        await outbox.close()
        await deliveries.close()
        audit.close()


def test_audit_prune_leaves_a_mark_and_nothing_else_can_delete(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.db")
    try:
        for n in range(3):
            audit.record(
                actor="t1", role="admin", community="c1", object=f"alert:{n}",
                action="resolve", result="ok", request_id=f"r{n}",
            )  # fmt: skip
        conn = sqlite3.connect(tmp_path / "audit.db")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit WHERE id = 3")
        conn.close()
        assert audit.prune(START) == 0  # all newer than 2026-03-02
        assert audit.prune(START + timedelta(days=100_000)) == 3
        assert audit.count() == 0
        conn = sqlite3.connect(tmp_path / "audit.db")
        marks = conn.execute("SELECT upto_id, deleted FROM audit_pruned").fetchall()
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit_pruned")
        conn.close()
        assert marks == [(3, 3)]
        audit.record(
            actor="t1", role="admin", community="c1", object="alert:9",
            action="resolve", result="ok", request_id="r9",
        )  # fmt: skip
        conn = sqlite3.connect(tmp_path / "audit.db")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit")  # past the mark: refused again
        conn.close()
    finally:
        audit.close()


def test_old_audit_file_gets_the_guarded_trigger(tmp_path: Path) -> None:
    """A file written by the first release (an unconditional trigger) can be pruned after open."""
    path = tmp_path / "audit.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
            actor TEXT NOT NULL, role TEXT NOT NULL, community TEXT, object TEXT NOT NULL,
            action TEXT NOT NULL, result TEXT NOT NULL, request_id TEXT NOT NULL);
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        INSERT INTO audit (at, actor, role, community, object, action, result, request_id)
            VALUES ('2020-01-01T00:00:00+00:00', 't', 'admin', 'c1', 'alert:1', 'resolve', 'ok', 'r');
        """
    )
    conn.close()
    audit = AuditLog(path)
    try:
        assert audit.prune(START) == 1
    finally:
        audit.close()


def test_disk_warning_thresholds(tmp_path: Path) -> None:
    (tmp_path / "outbox.db").write_bytes(b"x" * 1000)
    (tmp_path / "outbox.db-wal").write_bytes(b"x" * 24)
    (tmp_path / "before-restore-1").mkdir()
    (tmp_path / "before-restore-1" / "alerts.db").write_bytes(b"x" * 5)
    usage = DiskWatch(tmp_path, warn_free_percent=0, warn_free_mb=0).usage()
    assert usage.stores == {"outbox.db": 1024, "before-restore-1": 5}
    assert usage.free_bytes > 0
    assert DiskWatch(tmp_path, warn_free_percent=0, warn_free_mb=0).warning(usage) is None
    full = DiskWatch(tmp_path, warn_free_percent=100, warn_free_mb=0).warning(usage)
    assert full is not None
    assert full.startswith("disk nearly full")
    huge = DiskWatch(tmp_path, warn_free_percent=0, warn_free_mb=10**9).warning(usage)
    assert huge is not None


@pytest.mark.broker
def test_metrics_show_the_data_dir_and_healthz_warns(tmp_path: Path) -> None:
    with MosquittoServer() as broker:
        env = {
            "COMMUNITY_EDGE_DISK__WARN_FREE_PERCENT": "0",
            "COMMUNITY_EDGE_DISK__WARN_FREE_MB": "0",
        }
        with AgentProcess(tmp_path / "data", broker.url, env=env) as agent:
            metrics = agent.metrics()
            assert metrics['community_edge_data_dir_bytes{file="outbox.db"}'] > 0
            assert metrics["community_edge_disk_free_bytes"] > 0
            assert metrics['community_edge_retention_deleted_total{kind="alerts"}'] == 0
            # the details are an admin's (the agent's bootstrap token): they map the deployment
            health = httpx.get(f"{agent.url}/healthz", headers=agent.headers, timeout=5).json()
            assert health["disk"]["warning"] is None
            assert health["status"] == "ok"
        # a threshold no disk meets: degraded, with the reason
        env = {"COMMUNITY_EDGE_DISK__WARN_FREE_PERCENT": "100"}
        with AgentProcess(tmp_path / "data", broker.url, env=env) as agent:
            anonymous = httpx.get(f"{agent.url}/healthz", timeout=5).json()
            assert anonymous == {"status": "degraded"}
            health = httpx.get(f"{agent.url}/healthz", headers=agent.headers, timeout=5).json()
            assert health["status"] == "degraded"
            assert health["disk"]["warning"].startswith("disk nearly full")


def _log_line(tmp_path: Path, env: dict[str, str], journal: bool) -> str:
    err = tmp_path / "stderr"
    with err.open("wb") as out:
        if journal:
            st = os.fstat(out.fileno())
            env = {**env, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import logging; from gateway.cli.process import setup_logging; "
                "setup_logging('INFO'); logging.getLogger('edge.x').warning('lost %d', 3)",
            ],
            stderr=out,
            env={**os.environ, **env},
            check=True,
            timeout=60,
        )
    return err.read_text().strip()


def test_journald_lines_have_a_priority_and_no_timestamp(tmp_path: Path) -> None:
    assert _log_line(tmp_path, {}, journal=True) == "<4>WARNING edge.x: lost 3"
    plain = _log_line(tmp_path, {}, journal=False)
    assert plain.endswith("WARNING edge.x: lost 3")
    assert plain[:4].isdigit()  # a timestamp first
    # inherited from a parent whose stderr was the journal, while ours is a file: timestamps
    assert _log_line(tmp_path, {"JOURNAL_STREAM": "1:2"}, journal=False)[:4].isdigit()
