"""Sink names are unique, checked once where the gateway registers its sinks: a name keys a
sink's delivery cursor in the outbox, and two sinks sharing one would each see only part of it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import orjson
import pytest

from edge.alerts import AlertStore
from edge.errors import SinkNameTaken
from edge.model import Alert, AlertEvent, AlertEventKind, AlertStatus, Severity
from edge.outbox import check_sink_names
from gateway.cli import main
from gateway.settings import ConfigurationError, load_settings
from gateway.wiring import build_gateway
from tests.http_receiver import HttpReceiver

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("COMMUNITY_EDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_a_name_given_twice_names_both_owners() -> None:
    check_sink_names([("a", "first"), ("b", "second")])
    with pytest.raises(SinkNameTaken, match="two sinks are named 'a': first and third"):
        check_sink_names([("a", "first"), ("b", "second"), ("a", "third")])


CENTRAL_AND_A_CHANNEL = """
data_dir: "{data}"
central: {{url: "http://127.0.0.1:1", token: edge-token}}
channels: [{{name: central, type: webhook, url: "http://127.0.0.1:1/duty"}}]
"""


def test_a_channel_named_central_beside_the_central_api_fails_at_start(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CENTRAL_AND_A_CHANNEL.format(data=tmp_path / "data"), encoding="utf-8")

    with pytest.raises(ConfigurationError) as caught:
        build_gateway(load_settings(path))

    message = str(caught.value)
    assert "two sinks are named 'central'" in message
    assert "the central alert API (central.url)" in message
    assert "channels[0] (webhook)" in message
    assert not (tmp_path / "data").exists()  # refused before anything was opened


def test_run_exits_2_with_one_line_naming_both_owners(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CENTRAL_AND_A_CHANNEL.format(data=tmp_path / "data"), encoding="utf-8")

    assert main(["run", "--config", str(path), "--api-port", "0"]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()  # one line, no traceback
    assert line.startswith("community-edge: configuration error: two sinks are named 'central'")
    assert "central alert API" in line
    assert "channels[0]" in line


def test_two_webhooks_given_one_name_fail_at_start(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        'webhooks: [{url: "http://h/a", name: webhook-2}, {url: "http://h/b"}]\n',
        encoding="utf-8",
    )
    with pytest.raises(
        ConfigurationError,
        match=r"two sinks are named 'webhook-2': webhooks\[0\] and webhooks\[1\]",
    ):
        build_gateway(load_settings(path))


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[dict[str, list[str]]] = {}
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            self.received.setdefault(self.path, []).extend(e["id"] for e in body["events"])
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received = {}
    with HttpReceiver(_Receiver, None) as server:
        yield server.base_url


def _event(n: int) -> AlertEvent:
    alert = Alert(
        id=f"alert-{n}",
        key=f"sos|sos-{n}",
        rule="sos",
        summary="Emergency button pressed",
        severity=Severity.CRITICAL,
        status=AlertStatus.ACTIVE,
        device_id=f"sos-{n}",
        model="tuya-sos-button",
        category="sos",
        community="c1",
        building="b1",
        unit="3-201",
        opened_at=NOW,
        updated_at=NOW,
        last_seen_at=NOW,
    )
    return AlertEvent(id=f"evt-{n}", kind=AlertEventKind.OPENED, at=NOW, actor="rule", alert=alert)


async def test_two_channels_with_distinct_names_both_get_every_event(
    tmp_path: Path, receiver: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f'data_dir: "{tmp_path / "data"}"\n'
        "channels:\n"
        f'  - {{name: duty-a, type: webhook, url: "{receiver}/a"}}\n'
        f'  - {{name: duty-b, type: webhook, url: "{receiver}/b"}}\n',
        encoding="utf-8",
    )
    gateway = build_gateway(load_settings(path))
    events = [_event(n) for n in range(25)]
    try:
        async with gateway.agent as agent:
            await agent.outbox.commit(events=events)
            for forwarder in agent.forwarders:
                await forwarder.drain()
    finally:
        if gateway.deliveries is not None:
            await gateway.deliveries.close()

    expected = [e.id for e in events]
    assert sorted(_Receiver.received["/a"]) == sorted(expected)
    assert sorted(_Receiver.received["/b"]) == sorted(expected)
    store = AlertStore(tmp_path / "data" / "alerts.db")
    try:
        assert len(store.open_alerts()) == len(events)
    finally:
        store.close()
