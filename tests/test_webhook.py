"""WebhookSink against a real local HTTP receiver that verifies signatures as a receiver would;
the forwarder's split down to one rejected event; the `webhooks` settings and their wiring.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge.clock import FakeClock
from edge.errors import SinkRejected, SinkUnavailable
from edge.model import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertStatus,
    DeviceRef,
    Reading,
    Severity,
)
from edge.outbox import Forwarder, Outbox
from edge.sinks import NoticeFormat, WebhookSink
from gateway.settings import ConfigurationError, load_settings
from gateway.wiring import build_gateway
from tests.http_receiver import HttpReceiver, state_of
from tests.servers import free_port

SECRET = "whsec-SECRET-0123456789abcdef"
REPLAY_WINDOW_S = 300


# -- a receiver, as a platform would write one -----------------------------------------------------


def verify(secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    """The receiver's check: HMAC-SHA256 of "<timestamp>.<body>", timestamp within 5 minutes."""
    timestamp = headers.get("x-community-edge-timestamp", "")
    given = headers.get("x-community-edge-signature", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > REPLAY_WINDOW_S:
        return False
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(given, f"sha256={mac.hexdigest()}")


@dataclass(frozen=True)
class Received:
    """One POST as the receiver saw it."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    verified: bool  # signed with the receiver's secret, within the replay window
    at: float  # time.monotonic() on arrival

    @property
    def events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = json.loads(self.body)["events"]
        return events


Answer = Callable[[Received], int]


def _always(status: int) -> Answer:
    return lambda _: status


@dataclass
class _State:
    secret: str | None
    answer: Answer
    echo: str = ""
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the sink's client expects

    def do_POST(self) -> None:
        state = state_of(self, _State)
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if len(body) < length:  # the sender was killed mid-request: nothing was delivered
            self.close_connection = True
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = state.secret is not None and verify(state.secret, headers, body, time.time())
        got = Received(self.path, headers, body, verified, time.monotonic())
        with state.lock:
            state.received.append(got)
        # an unsigned or stale request is refused as a real receiver would refuse it
        status = 401 if state.secret is not None and not verified else state.answer(got)
        if state.delay_s:
            time.sleep(state.delay_s)
        # a careless receiver that echoes what it knows: the sink must not repeat the secret
        reply = f"answer {status} {state.echo}".encode()
        with contextlib.suppress(ConnectionError):  # a client that timed out has gone
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        return None


class Receiver(HttpReceiver[_State]):
    """A webhook receiver on 127.0.0.1 in a thread; it may be started late on a chosen port.

    Args:
        secret: verify signatures with it (a bad one is answered 401); None accepts anything.
        answer: the status of every verified request, or a function of the request.
        port: 0 for any free port; give one to start the receiver where the agent already sends.
    """

    def __init__(
        self,
        secret: str | None,
        answer: int | Answer = 200,
        *,
        port: int = 0,
        echo: str = "",
        delay_s: float = 0.0,
    ) -> None:
        answers = _always(answer) if isinstance(answer, int) else answer
        state = _State(secret, answers, echo=echo, delay_s=delay_s)
        super().__init__(_Handler, state, port=port, name="webhook-receiver")

    @property
    def url(self) -> str:
        return f"{self.base_url}/alerts"

    @property
    def received(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.received)


# -- what is sent ----------------------------------------------------------------------------------

NOW = datetime.now(UTC).replace(
    microsecond=0
)  # the events' times; signing clocks come from `clock`


def _event(number: int, kind: AlertEventKind = AlertEventKind.OPENED) -> AlertEvent:
    at = NOW - timedelta(minutes=number)
    alert = Alert(
        id=f"alert-{number}",
        key=f"sos|sos-{number}",
        rule="sos",
        summary="Emergency button pressed",
        severity=Severity.CRITICAL,
        status=AlertStatus.ACTIVE,
        device_id=f"sos-{number}",
        model="tuya-sos-button",
        category="sos",
        community="c1",
        building="b1",
        unit="3-201",
        opened_at=at,
        updated_at=at,
        last_seen_at=at,
    )
    return AlertEvent(id=f"evt-{number}-{kind}", kind=kind, at=at, actor="rule", alert=alert)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    # the receiver checks timestamps against its own clock: anchored when the test runs, not
    # when the module was imported (a long suite would age it past the 5-minute replay window)
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def sink(receiver: Receiver, clock: FakeClock) -> AsyncIterator[WebhookSink]:
    webhook = WebhookSink("webhook-1", receiver.url, SECRET, timeout_s=5.0, clock=clock)
    yield webhook
    await webhook.close()


async def test_a_batch_is_one_signed_post_a_receiver_can_verify(
    sink: WebhookSink, receiver: Receiver, clock: FakeClock
) -> None:
    events = [_event(1), _event(2, AlertEventKind.ACKNOWLEDGED), _event(3)]

    await sink.write_events(events)

    [got] = receiver.received
    assert got.verified
    assert got.path == "/alerts"
    assert got.headers["content-type"] == "application/json"
    sent_at = int(clock.now().timestamp())
    assert got.headers["x-community-edge-timestamp"] == str(sent_at)
    mac = hmac.new(SECRET.encode(), f"{sent_at}.".encode() + got.body, "sha256")
    assert got.headers["x-community-edge-signature"] == "sha256=" + mac.hexdigest()
    ids = ",".join(sorted(e.id for e in events))
    assert got.headers["idempotency-key"] == hashlib.sha256(ids.encode()).hexdigest()
    assert json.loads(got.body) == {"events": [e.model_dump(mode="json") for e in events]}
    assert [AlertEvent.model_validate(e) for e in got.events] == events
    assert SECRET not in got.body.decode()


async def test_a_batch_carries_each_alerts_console_page_when_the_gateway_has_an_address(
    receiver: Receiver, clock: FakeClock
) -> None:
    """#15 item 7: what a receiver shows a person links to the console's alert page."""
    notices = NoticeFormat(ZoneInfo("Asia/Shanghai"), "https://gw.example")
    sink = WebhookSink("webhook-1", receiver.url, SECRET, clock=clock, link=notices.link)
    try:
        await sink.write_events([_event(1), _event(2)])
    finally:
        await sink.close()
    [got] = receiver.received
    assert got.verified
    assert json.loads(got.body)["links"] == {
        "alert-1": "https://gw.example/console/alerts/alert-1",
        "alert-2": "https://gw.example/console/alerts/alert-2",
    }


async def test_a_tampered_body_or_a_replay_does_not_verify(
    sink: WebhookSink, receiver: Receiver
) -> None:
    await sink.write_events([_event(1)])
    [got] = receiver.received
    now = time.time()

    assert verify(SECRET, got.headers, got.body, now)
    assert not verify(SECRET, got.headers, got.body.replace(b"c1", b"c2"), now)
    assert not verify("another-secret", got.headers, got.body, now)
    assert not verify(SECRET, got.headers, got.body, now + REPLAY_WINDOW_S + 5)


async def test_the_idempotency_key_names_the_batch_not_the_attempt(
    sink: WebhookSink, receiver: Receiver, clock: FakeClock
) -> None:
    started = int(clock.now().timestamp())
    await sink.write_events([_event(1), _event(2)])
    clock.advance(7)
    await sink.write_events([_event(2), _event(1)])  # the same batch, retried in another order
    await sink.write_events([_event(1)])

    first, retry, other = receiver.received
    assert retry.headers["idempotency-key"] == first.headers["idempotency-key"]
    assert other.headers["idempotency-key"] != first.headers["idempotency-key"]
    # each attempt is signed anew, with its own timestamp
    assert int(retry.headers["x-community-edge-timestamp"]) == started + 7
    assert (
        retry.headers["x-community-edge-signature"] != first.headers["x-community-edge-signature"]
    )
    assert all(r.verified for r in receiver.received)


async def test_without_a_secret_requests_are_not_signed() -> None:
    with Receiver(None) as receiver:
        sink = WebhookSink("webhook-1", receiver.url, None)
        try:
            await sink.write_events([_event(1)])
        finally:
            await sink.close()

    [got] = receiver.received
    assert "x-community-edge-signature" not in got.headers
    assert got.headers["x-community-edge-timestamp"].isdigit()


async def test_readings_and_empty_batches_send_nothing(
    sink: WebhookSink, receiver: Receiver
) -> None:
    device = DeviceRef("sos-1", "tuya-sos-button", "sos", "c1", "b1")
    reading = Reading(device=device, fields={"battery": 80.0}, at=NOW, received_at=NOW)

    await sink.write_readings([reading])
    await sink.write_events([])

    assert sink.lanes == frozenset({"events"})
    assert receiver.received == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, SinkRejected),
        (404, SinkRejected),
        (409, SinkRejected),
        (413, SinkRejected),  # the forwarder's split finds a size that passes
        (422, SinkRejected),
        (401, SinkUnavailable),  # a wrong secret: keep the events, retry until it is fixed
        (403, SinkUnavailable),
        (408, SinkUnavailable),
        (429, SinkUnavailable),
        (500, SinkUnavailable),
        (502, SinkUnavailable),
        (503, SinkUnavailable),
        (302, SinkUnavailable),  # redirects are not followed, and must not drop events
    ],
)
async def test_answers_are_translated_and_never_show_the_secret(
    status: int, error: type[Exception]
) -> None:
    with Receiver(SECRET, status, echo=f"I know your secret: {SECRET}") as receiver:
        sink = WebhookSink("webhook-1", receiver.url, SECRET)
        try:
            with pytest.raises(error) as caught:
                await sink.write_events([_event(1)])
        finally:
            await sink.close()

    assert receiver.received[0].verified
    message = str(caught.value)
    assert f"answered {status}" in message
    assert "webhook-1" in message
    assert SECRET not in message
    assert "<secret>" in message  # the echo was redacted, not dropped


async def test_a_wrong_secret_is_unavailable_not_rejected() -> None:
    with Receiver(SECRET) as receiver:
        sink = WebhookSink("webhook-1", receiver.url, "not-the-receivers-secret")
        try:
            with pytest.raises(SinkUnavailable, match="answered 401") as caught:
                await sink.write_events([_event(1)])
        finally:
            await sink.close()

    assert not receiver.received[0].verified
    assert "not-the-receivers-secret" not in str(caught.value)


async def test_a_stale_timestamp_is_refused_by_the_receiver() -> None:
    stale = FakeClock(NOW - timedelta(seconds=REPLAY_WINDOW_S + 60))
    with Receiver(SECRET) as receiver:
        sink = WebhookSink("webhook-1", receiver.url, SECRET, clock=stale)
        try:
            with pytest.raises(SinkUnavailable, match="answered 401"):
                await sink.write_events([_event(1)])
        finally:
            await sink.close()


async def test_a_receiver_not_listening_is_unavailable() -> None:
    url = f"http://user:{SECRET}@127.0.0.1:{free_port()}/alerts?token={SECRET}"
    sink = WebhookSink("webhook-7", url, SECRET)
    try:
        with pytest.raises(SinkUnavailable, match="unreachable") as caught:
            await sink.write_events([_event(1)])
    finally:
        await sink.close()

    message = str(caught.value)
    assert "webhook-7" in message
    assert "127.0.0.1" in message
    assert SECRET not in message  # neither the signing secret nor credentials in the URL


async def test_a_receiver_too_slow_is_unavailable() -> None:
    with Receiver(SECRET, delay_s=1.0) as receiver:
        sink = WebhookSink("webhook-1", receiver.url, SECRET, timeout_s=0.2)
        try:
            with pytest.raises(SinkUnavailable, match="Timeout"):
                await sink.write_events([_event(1)])
        finally:
            await sink.close()


async def test_a_closed_sink_refuses_to_write(sink: WebhookSink) -> None:
    await sink.close()
    await sink.close()  # closing twice is harmless

    with pytest.raises(RuntimeError, match="closed"):
        await sink.write_events([_event(1)])


async def test_the_forwarder_sets_aside_only_the_event_the_receiver_rejects(
    tmp_path: Path, clock: FakeClock
) -> None:
    events = [_event(n) for n in range(1, 10)]
    bad = events[6].id

    def answer(got: Received) -> int:
        return 422 if any(e["id"] == bad for e in got.events) else 200

    with Receiver(SECRET, answer) as receiver:
        sink = WebhookSink("webhook-1", receiver.url, SECRET, clock=clock)
        outbox = Outbox(tmp_path / "outbox.db", {sink.name: sink.lanes}, now=clock.now)
        try:
            await outbox.commit(events=events)
            forwarder = Forwarder(outbox, sink, clock=clock)
            moved = await forwarder.drain()
            depths = await outbox.depths()
        finally:
            await sink.close()
            await outbox.close()

    accepted = [e["id"] for r in receiver.received if bad not in r.body.decode() for e in r.events]
    assert sorted(accepted) == sorted(e.id for e in events if e.id != bad)
    assert moved == len(events)
    assert (forwarder.status.delivered, forwarder.status.rejected) == (9, 1)
    assert outbox.rejected_entries == 1
    assert [d.depth for d in depths] == [0]


# -- settings and wiring ---------------------------------------------------------------------------


@pytest.fixture
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("COMMUNITY_EDGE_"):
            monkeypatch.delenv(name)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "community-edge.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.usefixtures("_clean_environment")
def test_webhooks_from_the_file_get_default_names(tmp_path: Path) -> None:
    text = (
        "webhooks:\n"
        f'  - {{url: "http://127.0.0.1:9000/alerts/", secret: "{SECRET}"}}\n'
        '  - {url: "https://platform.example/hooks", name: duty-desk}\n'
        '  - {url: "http://[::1]:9001/x"}\n'
    )
    settings = load_settings(_config(tmp_path, text))

    first, second, third = settings.webhooks
    assert (first.name, second.name, third.name) == ("webhook-1", "duty-desk", "webhook-3")
    assert first.url == "http://127.0.0.1:9000/alerts/"  # kept as given, trailing slash too
    assert first.secret is not None
    assert first.secret.get_secret_value() == SECRET
    assert second.secret is None
    assert SECRET not in repr(settings)
    assert load_settings().webhooks == []


@pytest.mark.usefixtures("_clean_environment")
def test_webhooks_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = [{"url": "http://127.0.0.1:9000/alerts", "secret": SECRET}]
    monkeypatch.setenv("COMMUNITY_EDGE_WEBHOOKS", json.dumps(hooks))

    [hook] = load_settings().webhooks

    assert (hook.name, hook.url) == ("webhook-1", "http://127.0.0.1:9000/alerts")
    assert hook.secret is not None
    assert hook.secret.get_secret_value() == SECRET


@pytest.mark.usefixtures("_clean_environment")
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('webhooks: [{url: "ftp://host/x"}]', "webhooks.0.url: 'ftp://host/x' must be http"),
        ('webhooks: [{url: "http://host:99999/x"}]', "webhooks.0.url: 'http://host:99999/x' has"),
        ('webhooks: [{url: "http://a b/x"}]', "webhooks.0.url: 'http://a b/x' holds a space"),
        ("webhooks: [{name: x}]", "webhooks.0.url: Field required"),
        ('webhooks: [{url: "http://h/x", name: "Alerts_1"}]', "webhooks.0.name: String should"),
        ('webhooks: [{url: "http://h/x", secret: ""}]', "webhooks.0.secret: must not be empty"),
        ('webhooks: [{url: "http://h/x", retries: 3}]', "webhooks.0.retries: unknown setting"),
    ],
)
def test_bad_webhook_settings_name_the_key(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_config(tmp_path, text))
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.usefixtures("_clean_environment")
@pytest.mark.parametrize("name", ["alert-store", "local-readings", "tsdb"])
def test_a_webhook_cannot_take_another_sinks_name(tmp_path: Path, name: str) -> None:
    text = f'data_dir: "{tmp_path / "data"}"\nwebhooks: [{{url: "http://h/x", name: {name}}}]\n'
    settings = load_settings(_config(tmp_path, text))

    with pytest.raises(ConfigurationError, match=f"two sinks are named '{name}': .* and webhooks"):
        build_gateway(settings)
    assert not (tmp_path / "data").exists()  # refused before anything was opened
