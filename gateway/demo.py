"""`community-edge demo`: a broker, the agent with its embedded store, the API and a simulated community.

Uses a local mosquitto when one is installed, else the embedded Python broker. Nothing to set up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from gateway.embedded_broker import EmbeddedBroker
from gateway.settings import load_settings
from gateway.wiring import Gateway, serve

_log = logging.getLogger(__name__)

SCENARIO_ORDER = ("elder-sos", "smoke-alarm", "fall", "door-forced")


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


def _mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


@contextlib.asynccontextmanager
async def _broker(data_dir: Path, embedded: bool) -> AsyncIterator[tuple[str, str]]:
    """A broker on a free port: (url, what it is)."""
    binary = None if embedded else _mosquitto_binary()
    port = _free_port()
    if binary is None:
        async with EmbeddedBroker(port=port) as broker:
            yield f"mqtt://127.0.0.1:{broker.port}", "embedded Python broker"
        return
    config = data_dir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 100000\n",
        encoding="utf-8",
    )
    process = await asyncio.create_subprocess_exec(
        binary,
        "-c",
        str(config),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches us, not the broker: it stops after the agent
    )
    try:
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                await writer.wait_closed()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}", f"mosquitto ({binary})"
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


def _simulate(url: str, rate: float, stop: threading.Event) -> None:
    from simulators.load import run_load, run_scenario

    rounds = 0
    while not stop.is_set():
        try:
            run_load(url, devices=60, rate=rate, duration=3.0, community="demo")
            rounds += 1
            if rounds % 3 == 1 and not stop.is_set():
                name = SCENARIO_ORDER[(rounds // 3) % len(SCENARIO_ORDER)]
                _log.warning("demo: playing scenario %s", name)
                run_scenario(url, name, "demo")
        except (ConnectionError, OSError) as exc:
            _log.warning("demo simulator: %s; retrying", exc)
            time.sleep(1.0)


async def run_demo(
    stop: asyncio.Event,
    data_dir: Path | None,
    api_port: int,
    rate: float,
    embedded_broker: bool = False,
) -> None:
    """Run everything until `stop` is set."""
    directory = data_dir or Path(tempfile.mkdtemp(prefix="community-edge-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    port = api_port if _port_free(api_port) else _free_port()
    async with _broker(directory, embedded_broker) as (mqtt_url, broker_kind):
        settings = load_settings(
            None,
            {
                "data_dir": directory,
                "mqtt.url": mqtt_url,
                "mqtt.client_id": "community-edge-demo",
                "api.port": port,
                "log_level": "WARNING",
            },
        )
        sim_stop = threading.Event()
        ready = asyncio.Event()

        def on_ready(gateway: Gateway, url: str) -> None:
            print(
                "\ncommunity-edge demo is running\n"
                f"  broker:     {mqtt_url}  ({broker_kind})\n"
                f"  data dir:   {directory}\n"
                f"  API:        {url}   docs: {url}/docs\n"
                f"  API token:  {gateway.token}\n\n"
                "Try:\n"
                f"  curl -s -H 'Authorization: Bearer {gateway.token}' {url}/v1/alerts\n"
                f"  curl -s -H 'Authorization: Bearer {gateway.token}' '{url}/v1/readings?limit=5'\n"
                f"  curl -s {url}/healthz\n\n"
                "A simulated community of 60 devices is publishing; an SOS, smoke, fall or forced "
                "door scenario plays every 15 s or so (a smoke alarm clears itself when the "
                "detector next reports clear air; an SOS waits for a person). "
                "Ctrl-C stops everything.\n",
                flush=True,
            )
            ready.set()

        async def simulate() -> None:
            await ready.wait()
            await asyncio.to_thread(_simulate, mqtt_url, rate, sim_stop)

        async def stop_simulator() -> None:
            await stop.wait()
            sim_stop.set()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(serve(settings, stop, on_ready), name="gateway")
            tg.create_task(stop_simulator(), name="stop-simulator")
            tg.create_task(simulate(), name="simulator")
        print("demo stopped", flush=True)
