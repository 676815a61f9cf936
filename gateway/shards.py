"""`community-edge run --shards N`: N ingest processes under one supervisor.

Each shard is a whole `community-edge run` in a child process with its own MQTT client id and
persistent session, data dir (outbox, alert store, rule state), and a slice of the buildings
(`shard.index` / `shard.count`, edge/enrich/shard.py). Shard 0 serves the API on the configured
address for every shard (gateway/shard_desk.py); the others listen on loopback for what shard 0
asks of them (gateway/shard_link.py). A shard that exits is started again: its broker session kept what it
had not acknowledged, its outbox what it had. See docs/scale.md, "Shards".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.settings import ConfigurationError, Settings
from gateway.shard_link import API_URL_FILE
from gateway.systemd_notify import Notifier

_log = logging.getLogger(__name__)

MAX_SHARDS = 64  # also the stride of dead-letter ids on shard 0 (gateway/shard_desk.py)
RESTART_FIRST_S = 0.5  # the first restart is at once, nearly: a SIGKILLed shard loses little time
RESTART_MAX_S = 30.0  # a shard that keeps dying is restarted at most this often
STEADY_S = 60.0  # a shard that ran this long is well again: its next restart is quick
STOP_GRACE_S = 20.0  # after SIGTERM, the shard flushes its outbox; then SIGKILL
CONFIGURATION_ERROR = 2  # `community-edge run`'s exit code for settings it refuses


@dataclass
class ShardProcess:
    """One shard: its place in the gateway's slice, its command line and its restarts."""

    local: int  # 0..N-1 on this gateway
    index: int  # its global shard index (gateway split x local shards)
    count: int  # global shard count
    data_dir: Path
    client_id: str
    argv: list[str]
    restarts: int = 0
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    wall_started: float = 0.0  # to tell this start's api-url file from the last one's
    delay_s: float = RESTART_FIRST_S
    exits: list[int] = field(default_factory=list)


def shard_client_id(base: str, local: int) -> str:
    """The MQTT client id of local shard `local`: the gateway's id plus `-s<n>` (the alarm
    lane's session adds `-alarm`), so every shard of every gateway has its own session."""
    client_id = f"{base}-s{local}"
    if len(client_id) + len("-alarm") > 64:
        raise ConfigurationError(
            f"mqtt.client_id {base!r} is too long for shard ids ({client_id}-alarm > 64 chars)"
        )
    return client_id


def plan(settings: Settings, shards: int, passthrough: Sequence[str]) -> list[ShardProcess]:
    """The shards of this gateway. With `shard.count` C gateways splitting a community, this
    gateway (index G) runs global shards G, G+C, G+2C, ... of N*C: `h % (N*C) ≡ G (mod C)` holds
    exactly when `h % C == G`, so local shards split this gateway's slice and nothing else."""
    if not 1 <= shards <= MAX_SHARDS:
        raise ConfigurationError(f"--shards {shards}: between 1 and {MAX_SHARDS}")
    if settings.shard.peers:
        raise ConfigurationError("shard.peers is set by `run --shards`; leave it out of settings")
    gateways, gateway = settings.shard.count, settings.shard.index
    base = settings.data_dir
    out: list[ShardProcess] = []
    for local in range(shards):
        # shard 0 keeps the gateway's data dir (tokens, audit, action links, what one process
        # had before); the others live beside its files
        data_dir = base if local == 0 else base / f"shard-{local}"
        client_id = shard_client_id(settings.mqtt.client_id, local)
        index = local * gateways + gateway
        argv = [
            sys.executable,
            "-m",
            "gateway.cli",
            "run",
            *passthrough,
            "--data-dir",
            str(data_dir),
            "--client-id",
            client_id,
            "--shard-index",
            str(index),
            "--shard-count",
            str(shards * gateways),
        ]
        if local == 0:  # the public API, over every shard's alerts
            for peer in range(1, shards):
                argv += ["--shard-peer", str(base / f"shard-{peer}")]
        else:  # loopback only, for the actions shard 0 forwards
            argv += ["--api-host", "127.0.0.1", "--api-port", "0", "--shard-internal-api"]
            argv += ["--shard-home", str(base)]  # one household register, shard 0's silences
        out.append(ShardProcess(local, index, shards * gateways, data_dir, client_id, argv))
    return out


class Supervisor:
    """Starts every shard, restarts one that exits, stops them all on `stop`."""

    def __init__(self, shards: list[ShardProcess], env: dict[str, str]) -> None:
        self.shards = shards
        self._env = env
        self.failed: int | None = None  # a shard's exit code that stopped them all

    async def run(self, stop: asyncio.Event) -> None:
        # systemd (Type=notify, NotifyAccess=main) hears only this process: READY once every
        # shard has told us where its API listens, then the watchdog pings from this loop (a
        # shard that dies is restarted here; one that hangs is not seen by the watchdog)
        notifier = Notifier()
        try:
            async with asyncio.TaskGroup() as tg:
                for shard in self.shards:
                    tg.create_task(self._keep(shard, stop), name=f"shard-{shard.local}")
                watch = tg.create_task(notifier.supervise(self._not_ready), name="sd-notify")
                await stop.wait()
                notifier.notify(STOPPING=1, STATUS="stopping: the shards flush their outboxes")
                watch.cancel()
        finally:
            notifier.close()

    def _not_ready(self) -> str | None:
        for shard in self.shards:
            if shard.process is None or shard.process.returncode is not None:
                return f"shard {shard.local} not running"
            if not (shard.data_dir / API_URL_FILE).exists() or (
                (shard.data_dir / API_URL_FILE).stat().st_mtime < shard.wall_started
            ):
                return f"shard {shard.local} starting"
        return None

    async def _start(self, shard: ShardProcess) -> asyncio.subprocess.Process:
        shard.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        process = await asyncio.create_subprocess_exec(
            *shard.argv, env=self._env, start_new_session=False
        )
        shard.process = process
        shard.started_at = time.monotonic()
        shard.wall_started = time.time()
        _log.info(
            "shard %d (%d/%d, client id %s) started: pid %d",
            shard.local,
            shard.index,
            shard.count,
            shard.client_id,
            process.pid,
        )
        return process

    async def _keep(self, shard: ShardProcess, stop: asyncio.Event) -> None:
        while not stop.is_set():
            process = await self._start(shard)
            stopping = asyncio.create_task(stop.wait())
            exited = asyncio.create_task(process.wait())
            await asyncio.wait({stopping, exited}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                exited.cancel()
                await _terminate(process, shard.local)
                return
            stopping.cancel()
            code = exited.result()
            shard.exits.append(code)
            if code == CONFIGURATION_ERROR:  # it said why on stderr; a restart says it again
                _log.error(
                    "shard %d refused its configuration (exit %d): stopping every shard",
                    shard.local,
                    code,
                )
                self.failed = code
                stop.set()
                return
            ran_s = time.monotonic() - shard.started_at
            if ran_s >= STEADY_S:
                shard.delay_s = RESTART_FIRST_S
            shard.restarts += 1
            _log.error(
                "shard %d (pid %d) exited with %s after %.1f s; restart %d in %.1f s "
                "(its broker session and outbox keep what it had not finished)",
                shard.local,
                process.pid,
                _exit_text(code),
                ran_s,
                shard.restarts,
                shard.delay_s,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), shard.delay_s)
            shard.delay_s = min(shard.delay_s * 2, RESTART_MAX_S)


def _exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"code {code}"


async def _terminate(process: asyncio.subprocess.Process, local: int) -> None:
    """SIGTERM (the shard flushes and closes), SIGKILL after STOP_GRACE_S."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_GRACE_S)
    except TimeoutError:
        _log.error(
            "shard %d (pid %d) did not stop in %.0f s: killed", local, process.pid, STOP_GRACE_S
        )
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def child_env(token: str | None) -> dict[str, str]:
    """The shards' environment: ours, plus the API token they all share (kept out of `ps`),
    less systemd's notification socket (the supervisor speaks for them)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
    }
    if token is not None:
        env["COMMUNITY_EDGE_API__TOKEN"] = token
    return env
