"""What the shards of `run --shards N` share beyond the alert list (docs/scale.md, "Shards").

- Silences: made and expired through shard 0's API, stored in shard 0's alert store. Every other
  shard follows that table (`HomeWatch`, every `FOLLOW_S`) into its own silence book and store,
  so a silence holds back the alerts of every shard's buildings, and its expiry ends it everywhere.
- The household register and visits: one file each, shard 0's (`AgentConfig.register_dir`).
  The other shards open the same SQLite files (WAL: readers and writers of several processes);
  `HomeWatch` sees a commit by another process (`PRAGMA data_version`) and brings the shard's
  away flags and sign-of-life watch in line at once instead of at the next periodic check.
- Devices: every other shard writes its devices and their liveness, and the topics it could not
  place (unregistered devices), to `liveness.json` in its data dir every `LIVENESS_S`
  (`write_liveness`); shard 0's desk lists them after its own (`read_liveness`), so
  `/v1/devices`, `/v1/devices/unregistered`, a device's page and the building board show every
  shard.
- The live stream: shard 0 follows every sibling's `alert_events` table (`SiblingEvents`) and
  publishes what they store on its own stream, so the console's board and `/v1/alerts/stream`
  show alerts of every shard.

Reading another process's SQLite file by polling costs one indexed query per file every
`FOLLOW_S`; a shard that is down leaves its file readable, so nothing here waits on a process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edge.agent import Agent
from edge.alerts import Silence
from edge.enrich import DeviceState, Status, Unregistered
from edge.model import AlertEvent, DeviceRef, epoch_ms

_log = logging.getLogger(__name__)

FOLLOW_S = 0.5  # how often a shard looks at the files of the others
RECENTLY_OVER = timedelta(hours=1)  # an expiry this recent is still passed on
LIVENESS_FILE = "liveness.json"  # a shard's devices and their liveness, for shard 0's desk
LIVENESS_S = 5.0  # how often a shard other than 0 writes it


def liveness_rows(agent: Agent) -> list[list[Any]]:
    """This shard's devices and their liveness, as `liveness.json` lists them (on the loop)."""
    rows: list[list[Any]] = []
    for ref in agent.registry.devices():
        state = agent.liveness.state(ref)
        seen = None if state.last_seen is None else epoch_ms(state.last_seen)
        rows.append(
            [
                ref.device_id,
                ref.model,
                ref.category,
                ref.community,
                ref.building,
                ref.unit,
                int(state.status),
                state.reason,
                seen,
                state.battery,
                state.battery_low,
                state.linkquality,
                state.heartbeat_seconds,
            ]
        )
    return rows


def unregistered_rows(agent: Agent) -> list[list[Any]]:
    """The topics this shard could not place (`/v1/devices/unregistered`), for shard 0's desk."""
    return [
        [
            e.topic,
            e.cause,
            e.model,
            e.device_id,
            epoch_ms(e.first_seen),
            epoch_ms(e.last_seen),
            e.count,
            base64.b64encode(e.sample).decode(),
            e.detail,
        ]
        for e in agent.pipeline.unregistered.entries()
    ]


def write_liveness(
    rows: list[list[Any]], shard: str, data_dir: Path, unregistered: list[list[Any]]
) -> None:
    """Write `liveness_rows` and `unregistered_rows` to `data_dir/liveness.json`, atomically
    (off the loop: 50,000 devices take about 0.2 s to encode)."""
    path = data_dir / LIVENESS_FILE
    tmp = path.with_suffix(".tmp")
    document = {"shard": shard, "devices": rows, "unregistered": unregistered}
    tmp.write_text(json.dumps(document), encoding="utf-8")
    os.replace(tmp, path)


def read_liveness(path: Path) -> tuple[list[tuple[DeviceRef, DeviceState]], list[Unregistered]]:
    """What `write_liveness` wrote: devices with their liveness, and the unregistered topics
    (OSError, ValueError when it cannot be read)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    unregistered = [
        Unregistered(
            topic=row[0],
            cause=row[1],
            model=row[2],
            device_id=row[3],
            first_seen=datetime.fromtimestamp(row[4] / 1000, UTC),
            last_seen=datetime.fromtimestamp(row[5] / 1000, UTC),
            count=row[6],
            sample=base64.b64decode(row[7]),
            detail=row[8],
        )
        for row in document.get("unregistered", [])
    ]
    out: list[tuple[DeviceRef, DeviceState]] = []
    for row in document["devices"]:
        device_id, model, category, community, building, unit = row[:6]
        status, reason, seen, battery, battery_low, linkquality, heartbeat = row[6:13]
        last_seen = None if seen is None else datetime.fromtimestamp(seen / 1000, UTC)
        out.append(
            (
                DeviceRef(device_id, model, category, community, building, unit),
                DeviceState(
                    Status(status), reason, last_seen, battery, battery_low, linkquality, heartbeat
                ),
            )
        )
    return out, unregistered


def _open_ro(path: Path) -> sqlite3.Connection | None:
    """A read-only connection to another process's SQLite file; None until it exists."""
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class HomeWatch:
    """On a shard other than 0: follow shard 0's silences and the shared household register,
    and report this shard's devices to shard 0 (`liveness.json`)."""

    def __init__(self, agent: Agent, home: Path) -> None:
        self._agent = agent
        self._alerts_path = home / "alerts.db"
        self._register_path = home / "households.db"  # AgentConfig.register_dir: the same
        self._alerts: sqlite3.Connection | None = None
        self._register: sqlite3.Connection | None = None
        self._register_version: int | None = None
        self.silences_followed = 0  # silences taken from shard 0 (new or changed) since start
        self.problem: str | None = None  # the last failure to read shard 0's files, if any

    def close(self) -> None:
        for conn in (self._alerts, self._register):
            if conn is not None:
                conn.close()
        self._alerts = self._register = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reported = 0.0
        while True:
            await self.check()
            if loop.time() - reported >= LIVENESS_S:
                reported = loop.time()
                await self.report_liveness()
            await asyncio.sleep(FOLLOW_S)

    async def report_liveness(self) -> None:
        """Tell shard 0 this shard's devices and their liveness (a failure is logged)."""
        rows = liveness_rows(self._agent)
        unregistered = unregistered_rows(self._agent)
        try:
            await asyncio.to_thread(
                write_liveness,
                rows,
                str(self._agent.shard),
                self._agent.config.data_dir,
                unregistered,
            )
        except OSError as exc:
            _log.error("shard %s: cannot write %s: %s", self._agent.shard, LIVENESS_FILE, exc)

    async def check(self) -> None:
        """One look at shard 0's silences and the register; failures are logged, not raised
        (the shard keeps handling alarms with what it had)."""
        try:
            self.follow_silences()
            if self._register_changed():
                await self._agent.away_keeper.check()
                self._agent.care_watch.check()
        except (sqlite3.Error, ValueError) as exc:
            if self.problem is None:
                _log.error("shard %s: cannot read shard 0's files: %s", self._agent.shard, exc)
            self.problem = str(exc)
            self.close()
        else:
            if self.problem is not None:
                _log.info("shard %s: reading shard 0's files again", self._agent.shard)
            self.problem = None

    def follow_silences(self) -> int:
        """Put shard 0's current (and recently ended) silences into this shard's book; how many
        were new or changed."""
        if self._alerts is None:
            self._alerts = _open_ro(self._alerts_path)
            if self._alerts is None:
                return 0
        now = self._agent.clock.now()
        rows = self._alerts.execute(
            "SELECT body FROM silences WHERE over_ms IS NULL OR over_ms > ?",
            (epoch_ms(now - RECENTLY_OVER),),
        ).fetchall()
        book = self._agent.alerts.silences
        store = self._agent.alert_store
        changed = 0
        for (body,) in rows:
            silence = Silence.model_validate_json(body)
            if store.silence(silence.id) != silence:
                # kept in this shard's store too: its alerts' `silenced_by` resolve here, and
                # a restart loads it into the book before shard 0 is read again
                store.put_silence(silence)
                changed += 1
            held = book.get(silence.id)
            if (held is None and not silence.over(now)) or (held is not None and held != silence):
                book.put(silence)  # an expired one replaces the one held; the book prunes it
        if changed:
            _log.info("shard %s: %d silences from shard 0", self._agent.shard, changed)
        self.silences_followed += changed
        return changed

    def _register_changed(self) -> bool:
        if self._register is None:
            self._register = _open_ro(self._register_path)
            if self._register is None:
                return False
        version = int(self._register.execute("PRAGMA data_version").fetchone()[0])
        changed = self._register_version is not None and version != self._register_version
        self._register_version = version
        return changed


class SiblingEvents:
    """On shard 0: the alert events the other shards store, published on shard 0's stream."""

    def __init__(self, agent: Agent, peers: Sequence[Path]) -> None:
        self._agent = agent
        self._paths = [peer / "alerts.db" for peer in peers]
        self._conns: dict[Path, sqlite3.Connection] = {}
        self._last: dict[Path, int] = {}  # the rowid of the last event passed on, per file
        self._looked = False  # after the first look, a file that appears is followed from 0
        self.published = 0

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    async def run(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(FOLLOW_S)

    def check(self) -> int:
        """Publish what the siblings stored since the last look; how many events."""
        total = 0
        for path in self._paths:
            try:
                total += self._follow(path)
            except (sqlite3.Error, ValueError) as exc:
                _log.warning("live stream: cannot read %s: %s", path, exc)
                conn = self._conns.pop(path, None)
                if conn is not None:
                    conn.close()
        self._looked = True
        self.published += total
        return total

    def _follow(self, path: Path) -> int:
        conn = self._conns.get(path)
        if conn is None:
            conn = _open_ro(path)
            if conn is None:
                return 0
            self._conns[path] = conn
        if path not in self._last:
            start = 0  # a sibling's file that appeared since the first look: all of it is new
            if not self._looked:  # what a sibling stored before shard 0 started is listed, not live
                (start,) = conn.execute(
                    "SELECT COALESCE(MAX(rowid), 0) FROM alert_events"
                ).fetchone()
            self._last[path] = int(start)
        rows = conn.execute(
            "SELECT rowid, body FROM alert_events WHERE rowid > ? ORDER BY rowid LIMIT 1000",
            (self._last[path],),
        ).fetchall()
        if not rows:
            return 0
        self._last[path] = int(rows[-1][0])
        self._agent.stream.publish([AlertEvent.model_validate_json(body) for _, body in rows])
        return len(rows)
