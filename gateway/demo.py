"""`community-edge demo`: a private mosquitto, the agent with its embedded store, the API and a
simulated community.

The broker is Debian's `mosquitto` (`apt-get install mosquitto`; scripts/demo.sh installs it),
started on a free port in a temporary directory and stopped when the demo stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from edge.decode import ProfileRegistry, default_profile_dir
from gateway.demo_community import (
    COMMUNITY_FILE,
    ScenarioRotation,
    demo_fleet,
    place_of,
    registry_csv,
)
from gateway.demo_leftovers import PREFIX, claim, clean_stale
from gateway.settings import load_settings
from gateway.tokens import TokenStore
from gateway.wiring import Gateway, serve
from simulators.sensors import SimulatedDevice

_log = logging.getLogger(__name__)

DEMO_USER = "王芳"  # the demo's duty officer, signed in by the link the demo prints
DEMO_PLATFORM = "区平台"  # a district platform's read-only view: homes masked for its role
SCENARIO_EVERY_S = 15.0
# Debian installs daemons into sbin directories that a non-root PATH lacks
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_BROKER_START_S = 10.0
_BROKER_STOP_S = 10.0


class BrokerUnavailable(RuntimeError):
    """mosquitto is missing or would not start; the message says what to do."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def find_mosquitto() -> str:
    """The mosquitto binary: PATH first, then the sbin directories; else BrokerUnavailable."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path=os.pathsep.join(SBIN_DIRS))
    if found is None:
        raise BrokerUnavailable(
            f"mosquitto is not installed (looked in PATH and {', '.join(SBIN_DIRS)}); "
            "the demo runs its own broker: install it with `sudo apt-get install mosquitto` "
            "(or run scripts/demo.sh, which does)"
        )
    return found


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@contextlib.asynccontextmanager
async def _mosquitto() -> AsyncIterator[tuple[str, str]]:
    """A private mosquitto on a free port of 127.0.0.1: (url, what it is); stopped on exit."""
    binary = find_mosquitto()
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}mosquitto-") as directory:
        claim(Path(directory))  # a killed demo's broker and directory: cleared at the next start
        port = _free_port()
        config = Path(directory) / "mosquitto.conf"
        # set_tcp_nodelay: an SOS reaches the agent at once (deploy/mosquitto-gateway.conf says why)
        config.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n",
            encoding="utf-8",
        )
        log = Path(directory) / "mosquitto.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                binary,
                "-c",
                str(config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd=directory,
                start_new_session=True,  # Ctrl-C reaches us, not the broker: it stops after the agent
            )
        try:
            deadline = time.monotonic() + _BROKER_START_S
            while not await _accepts(port):
                if process.returncode is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace").strip().splitlines()[-1:]
                    raise BrokerUnavailable(
                        f"{binary} did not start on 127.0.0.1:{port}"
                        + (f": {tail[0]}" if tail else "")
                    )
                await asyncio.sleep(0.05)
            _log.info("mosquitto (pid %d) on 127.0.0.1:%d", process.pid, port)
            yield f"mqtt://127.0.0.1:{port}", f"mosquitto ({binary})"
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), _BROKER_STOP_S)
                except TimeoutError:
                    process.kill()
                    await process.wait()


def _simulate(
    url: str, rate: float, stop: threading.Event, fleet: list[SimulatedDevice], every_s: float
) -> None:
    """Routine traffic from every registered device, and a scenario in another home every
    `every_s` seconds (the first at once, so the board has something to show)."""
    from simulators.load import publish_steps, run_traffic

    rotation = ScenarioRotation(fleet)
    due = time.monotonic()
    while not stop.is_set():
        try:
            if time.monotonic() >= due:
                due = time.monotonic() + every_s
                name, device, steps = rotation.next()
                # the demo's own narration, not a problem: printed, not logged as a warning
                print(f"demo: {name} at {place_of(device)} ({device.device_id})", flush=True)
                publish_steps(url, steps)
            run_traffic(url, fleet, rate, min(3.0, max(0.5, due - time.monotonic())))
        except (ConnectionError, OSError) as exc:
            _log.warning("demo simulator: %s; retrying", exc)
            time.sleep(1.0)


async def run_demo(
    stop: asyncio.Event,
    data_dir: Path | None,
    api_port: int,
    rate: float,
) -> None:
    """Run everything until `stop` is set."""
    # a temporary data dir (with its API token) goes when the demo stops; --data-dir keeps one
    temporary = data_dir is None
    clean_stale()  # the temporary directories (and broker) of a demo that was killed
    directory = data_dir or Path(tempfile.mkdtemp(prefix=PREFIX))
    directory.mkdir(parents=True, exist_ok=True)
    if temporary:
        claim(directory)
    port = api_port if _port_free(api_port) else _free_port()
    # every device registered to its building and unit, with a household (gateway.demo_community)
    fleet = demo_fleet(ProfileRegistry.load(default_profile_dir()))
    devices_file = directory / "devices.csv"
    devices_file.write_text(registry_csv(fleet), encoding="utf-8")
    community = fleet[0].community
    async with _mosquitto() as (mqtt_url, broker_kind):
        settings = load_settings(
            None,
            {
                "data_dir": directory,
                "devices_file": devices_file,
                "mqtt.url": mqtt_url,
                "mqtt.client_id": "community-edge-demo",
                "api.port": port,
                "log_level": "WARNING",
            },
        )
        sim_stop = threading.Event()
        ready = asyncio.Event()

        tokens = TokenStore(directory / "tokens.db")
        # the demo's duty officer: a token of the community's own, revoked when the demo stops
        person_id, person_token = tokens.create("duty_officer", [community], name=DEMO_USER)
        platform_id, platform_token = tokens.create("platform", [community], name=DEMO_PLATFORM)

        def on_ready(gateway: Gateway, url: str) -> None:
            links = gateway.sign_in_links
            link = url + links.path(links.issue(person_token, DEMO_USER))
            platform_link = url + links.path(links.issue(platform_token, DEMO_PLATFORM))
            print(
                "\ncommunity-edge demo is running\n"
                f"  console:    {url}/console/\n"
                f"  sign in:    {link}\n"
                f"              (one-time link, {gateway.sign_in_links.ttl_s / 60:.0f} min: signs "
                f"you in as duty officer {DEMO_USER}; afterwards use the API token below)\n"
                f"  read only:  {platform_link}\n"
                f"              (one-time link as {DEMO_PLATFORM}, a district platform: no "
                "actions, homes masked)\n"
                f"  broker:     {mqtt_url}  ({broker_kind})\n"
                f"  data dir:   {directory}"
                f"{'  (temporary: removed when the demo stops)' if temporary else ''}\n"
                f"  API:        {url}   docs: {url}/docs\n"
                f"  API token:  {gateway.token}  (also in {directory / 'api-token'})\n"
                f"  community:  {community}\n\n"
                "Try:\n"
                f"  community-edge tokens create --data-dir {directory} --role duty_officer "
                f"--community {community} --name 你的名字\n"
                "      (a token of your own: paste it on the console's sign-in page)\n"
                f"  curl -s -H 'Authorization: Bearer {gateway.token}' {url}/v1/alerts\n"
                f"  curl -s -H 'Authorization: Bearer {gateway.token}' '{url}/v1/readings?limit=5'\n"
                f"  curl -s {url}/healthz\n\n"
                f"{len(fleet)} devices of {community} ({COMMUNITY_FILE.name}: two towers of "
                "flats, garden homes, the gate) are registered with their homes and publishing; "
                f"every {SCENARIO_EVERY_S:.0f} s an SOS, smoke, fall or forced-door scenario plays "
                "in another home (a smoke alarm clears itself when the detector next reports "
                "clear air; an SOS waits for a person). Ctrl-C stops everything.\n",
                flush=True,
            )
            ready.set()

        async def simulate() -> None:
            await ready.wait()
            await asyncio.to_thread(_simulate, mqtt_url, rate, sim_stop, fleet, SCENARIO_EVERY_S)

        async def stop_simulator() -> None:
            await stop.wait()
            sim_stop.set()

        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(serve(settings, stop, on_ready), name="gateway")
                tg.create_task(stop_simulator(), name="stop-simulator")
                tg.create_task(simulate(), name="simulator")
        finally:
            tokens.revoke(person_id)
            tokens.revoke(platform_id)
            tokens.close()
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
            print(f"demo stopped; its temporary data dir {directory} is removed", flush=True)
        else:
            print(f"demo stopped; its data dir {directory} is kept", flush=True)
