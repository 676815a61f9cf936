"""Device liveness: online, offline after the model's interval, the broker outage, restarts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from edge.agent import Agent, AgentConfig
from edge.agent.liveness_monitor import BROKER_LOST, LivenessMonitor
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.decode.profiles import load_profile
from edge.enrich import DeviceHealth, DeviceRegistry, Status
from edge.enrich.liveness import DEFAULT_OFFLINE_RULE, offline_rule
from edge.errors import ProfileError
from edge.ingest import parse_mqtt_url
from edge.ingest.session import SessionStatus
from edge.model import AlertEvent, AlertEventKind, AlertStatus, RawMessage, Severity
from edge.sinks import ReadingStore

PROFILES = ProfileRegistry.load(default_profile_dir())
SOS = "tuya-sos-button"  # heartbeat_seconds 90000 (25 h), alarm lane
DOOR = "zigbee-door-contact"  # 90000, telemetry lane
ACCESS = "hikvision-access-controller"  # 600: mains powered


def _registry(*devices: tuple[str, str]) -> DeviceRegistry:
    registry = DeviceRegistry()
    for device_id, model in devices:
        registry.resolve(PROFILES.get(model), device_id, {"community": "c1", "building": "b1"})
    return registry


def test_a_device_is_unknown_until_heard_then_online() -> None:
    clock = FakeClock()
    health = DeviceHealth(clock, PROFILES)
    (ref,) = _registry(("s1", SOS)).devices()
    assert health.state(ref).status is Status.UNKNOWN

    assert health.seen(ref, {"battery": 80, "linkquality": 144}) == "online"
    assert health.seen(ref, {"battery": 79}) is None  # already online: nothing changed

    state = health.state(ref)
    assert (state.status, state.battery, state.linkquality) == (Status.ONLINE, 79, 144)
    assert state.last_seen == clock.now()
    assert state.heartbeat_seconds == 90000


def test_a_device_goes_offline_after_its_models_interval_and_not_before() -> None:
    clock = FakeClock()
    health = DeviceHealth(clock, PROFILES)
    access, sos = _registry(("gate-1", ACCESS), ("s1", SOS)).devices()
    health.seen(access, {})
    health.seen(sos, {})

    clock.advance(599)
    assert list(health.overdue([access, sos])) == []
    clock.advance(1)
    assert list(health.overdue([access, sos])) == [access]  # 10 min: the mains device only
    assert list(health.overdue([access, sos])) == []  # reported once, not every round

    state = health.state(access)
    assert state.status is Status.OFFLINE
    assert state.reason == "no message for 10 min (the model checks in every 10 min at most)"
    assert health.seen(access, {}) == "online"
    assert health.state(access).reason is None


def test_silence_counts_from_the_later_of_the_last_message_and_the_baseline() -> None:
    clock = FakeClock()
    health = DeviceHealth(clock, PROFILES)
    (access,) = _registry(("gate-1", ACCESS)).devices()
    health.seen(access, {})
    clock.advance(500)
    health.baseline = clock.monotonic()  # the broker came back: what was queued arrives now
    clock.advance(500)

    assert list(health.overdue([access])) == []
    clock.advance(100)
    assert list(health.overdue([access])) == [access]


def test_a_device_never_heard_since_start_goes_offline_with_that_reason() -> None:
    clock = FakeClock()
    health = DeviceHealth(clock, PROFILES)
    (access,) = _registry(("gate-1", ACCESS)).devices()
    clock.advance(600)

    assert list(health.overdue([access])) == [access]
    assert health.state(access).reason == "no message for 10 min since the gateway started"


def test_the_wall_clock_stepping_back_neither_hides_nor_invents_silence() -> None:
    clock = FakeClock()
    health = DeviceHealth(clock, PROFILES)
    (access,) = _registry(("gate-1", ACCESS)).devices()
    health.seen(access, {})
    clock._now -= timedelta(days=1)  # NTP steps the gateway clock back; monotonic time goes on
    clock.advance(300)
    assert list(health.overdue([access])) == []
    clock.advance(300)
    assert list(health.overdue([access])) == [access]


def test_an_availability_topic_saying_offline_marks_the_device_at_once() -> None:
    clock = FakeClock()
    health = DeviceHealth(clock, PROFILES)
    (sos,) = _registry(("s1", SOS)).devices()
    health.seen(sos, {})

    assert health.seen(sos, {"availability": "offline"}) == "offline"
    assert health.seen(sos, {"availability": "offline"}) is None
    assert health.state(sos).reason == "reported offline on its availability topic"
    assert health.seen(sos, {"availability": "online"}) == "online"


def test_rebind_keeps_the_state_of_devices_a_reloaded_registry_still_has() -> None:
    clock = FakeClock()
    health = DeviceHealth(clock, PROFILES)
    _, b = _registry(("a", SOS), ("b", SOS)).devices()
    health.seen(b, {"battery": 42})

    health.rebind([(b.slot, 0)], slots=3)  # b is now first; two new devices follow

    assert bytes(health._status) == bytes([Status.ONLINE, Status.UNKNOWN, Status.UNKNOWN])
    assert health._battery[0] == 42
    assert health.counts() == {"unknown": 2, "online": 1, "offline": 0}


def test_every_model_with_a_heartbeat_has_an_offline_rule_safety_devices_major() -> None:
    for profile in PROFILES:
        rule = offline_rule(profile)
        if profile.heartbeat_seconds is None:
            assert rule is None
            continue
        assert rule is not None
        assert rule.id == DEFAULT_OFFLINE_RULE
        assert rule.severity == (Severity.MAJOR if profile.lane == "alarm" else Severity.MINOR)


def _profile_with(tmp_path: Path, extra: str) -> Path:
    text = (default_profile_dir() / f"{DOOR}.yaml").read_text(encoding="utf-8")
    path = tmp_path / f"{DOOR}.yaml"
    rules_end = text.index("\nexamples:")  # the extra rule goes last in `rules:`
    path.write_text(text[: rules_end + 1] + extra + text[rules_end + 1 :], encoding="utf-8")
    return path


def test_a_profile_may_give_its_own_offline_rule(tmp_path: Path) -> None:
    extra = "  - {id: door-silent, kind: offline, summary: Door sensor silent, severity: warning}\n"
    profile = load_profile(_profile_with(tmp_path, extra))
    rule = offline_rule(profile)
    assert rule is not None
    assert (rule.id, rule.severity) == ("door-silent", Severity.WARNING)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            "  - {id: x, kind: offline, summary: s, severity: minor, when: {field: open, eq: true}}\n",
            "takes no 'when' or 'clear'",
        ),
        ("  - {id: x, summary: s, severity: minor}\n", "needs a 'when' condition"),
    ],
)
def test_offline_rules_are_checked_at_load(tmp_path: Path, extra: str, problem: str) -> None:
    with pytest.raises(ProfileError, match=problem):
        load_profile(_profile_with(tmp_path, extra))


# -- the monitor, over an agent entered in-process (no broker: session states are set here) ------


class _Sessions:
    """Stand-ins for the lanes' sessions: only their status is read by the monitor."""

    def __init__(self, count: int) -> None:
        self.items = [_Holder() for _ in range(count)]

    def connect(self) -> None:
        for item in self.items:
            item.status.connected = True
            item.status.connects += 1

    def drop(self) -> None:
        for item in self.items:
            item.status.connected = False


class _Holder:
    def __init__(self) -> None:
        self.status = SessionStatus()


async def _agent(tmp_path: Path, clock: FakeClock, devices_csv: str | None = None) -> Agent:
    registry = DeviceRegistry()
    if devices_csv is not None:
        path = tmp_path / "devices.csv"
        path.write_text("device_id,model,community,building,unit\n" + devices_csv)
        registry = DeviceRegistry.from_file(path, PROFILES)
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw-1", data_dir=tmp_path / "data"
    )
    readings = ReadingStore(tmp_path / "readings.db")
    return Agent(config, PROFILES, registry, [readings], clock)


async def _publish(agent: Agent, topic: str, payload: bytes) -> list[AlertEvent]:
    raw = RawMessage(topic=topic, payload=payload, received_at=agent.clock.now())
    out = agent.pipeline.handle(raw)
    await agent.outbox.commit([out.reading] if out.reading else [], out.events)
    return out.events


def _monitor(agent: Agent, sessions: _Sessions) -> LivenessMonitor:
    monitor = agent.monitor
    monitor.sessions = sessions.items  # type: ignore[assignment]
    return monitor


def _kinds(events: list[AlertEvent]) -> list[tuple[str, str, str]]:
    return [(e.kind, e.alert.rule, e.alert.device_id) for e in events]


async def test_a_silent_device_raises_one_offline_alert_and_its_next_message_clears_it(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    agent = await _agent(tmp_path, clock, "gate-1,hikvision-access-controller,c1,b1,\n")
    async with agent:
        sessions = _Sessions(1)
        monitor = _monitor(agent, sessions)
        sessions.connect()
        await monitor.check()
        heartbeat = b'{"eventType": "heartBeat", "dateTime": "2026-01-01T08:00:00+08:00"}'
        assert await _publish(agent, "ce/c1/b1/hikvision-access-controller/gate-1", heartbeat) == []

        clock.advance(601)
        raised = await monitor.check()
        assert _kinds(raised) == [("opened", DEFAULT_OFFLINE_RULE, "gate-1")]
        assert raised[0].alert.severity == Severity.MAJOR
        clock.advance(601)
        assert await monitor.check() == []  # still offline: no second alert

        back = await _publish(agent, "ce/c1/b1/hikvision-access-controller/gate-1", heartbeat)
        assert _kinds(back) == [("resolved", DEFAULT_OFFLINE_RULE, "gate-1")]
        assert back[0].alert.resolved_by == "device"


async def test_a_broker_outage_is_one_gateway_alert_and_no_device_alerts(tmp_path: Path) -> None:
    clock = FakeClock()
    rows = "".join(f"gate-{i},hikvision-access-controller,c1,b1,\n" for i in range(50))
    agent = await _agent(tmp_path, clock, rows)
    async with agent:
        sessions = _Sessions(2)
        monitor = _monitor(agent, sessions)
        sessions.connect()
        await monitor.check()
        sessions.drop()
        clock.advance(30)
        assert await monitor.check() == []  # a blip is not an outage
        clock.advance(3600)  # an hour without a broker: every device is silent

        raised = await monitor.check()

        assert _kinds(raised) == [("opened", BROKER_LOST.id, "gw-1")]
        assert (raised[0].alert.severity, raised[0].alert.community) == (Severity.CRITICAL, "c1")
        assert await monitor.check() == []
        sessions.connect()
        cleared = await monitor.check()
        assert _kinds(cleared) == [("resolved", BROKER_LOST.id, "gw-1")]
        clock.advance(599)  # silence counts from the reconnection
        assert await monitor.check() == []
        clock.advance(1)
        assert len(await monitor.check()) == 50


async def test_an_offline_alert_open_before_a_restart_is_not_raised_twice(tmp_path: Path) -> None:
    clock = FakeClock()
    rows = "gate-1,hikvision-access-controller,c1,b1,\n"
    agent = await _agent(tmp_path, clock, rows)
    async with agent:
        sessions = _Sessions(1)
        monitor = _monitor(agent, sessions)
        sessions.connect()
        await monitor.check()
        clock.advance(600)
        assert len(await monitor.check()) == 1
        for forwarder in agent.forwarders:
            await forwarder.drain()

    again = await _agent(tmp_path, clock, rows)
    async with again:
        (ref,) = again.registry.devices()
        assert again.liveness.state(ref).status is Status.OFFLINE
        sessions = _Sessions(1)
        monitor = _monitor(again, sessions)
        sessions.connect()
        clock.advance(3600)
        assert await monitor.check() == []
        (alert,) = again.alerts.open_alerts()
        assert (alert.rule, alert.status) == (DEFAULT_OFFLINE_RULE, AlertStatus.ACTIVE)


async def test_an_availability_offline_message_raises_at_once(tmp_path: Path) -> None:
    clock = FakeClock()
    agent = await _agent(tmp_path, clock)
    async with agent:
        topic = "ce/c1/b1/tuya-sos-button/sos-1"
        assert await _publish(agent, topic, b'{"battery": 90}') == []
        events = await _publish(agent, topic + "/availability", b'{"state": "offline"}')
        assert _kinds(events) == [(AlertEventKind.OPENED, DEFAULT_OFFLINE_RULE, "sos-1")]
        events = await _publish(agent, topic + "/availability", b'{"state": "online"}')
        assert _kinds(events) == [(AlertEventKind.RESOLVED, DEFAULT_OFFLINE_RULE, "sos-1")]


async def test_a_stall_of_the_agent_is_logged_and_is_no_broker_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGSTOP past the keep-alive: the broker drops the sessions because the agent did not
    answer; the stall is not time the broker was missing, nor time the devices were silent."""
    clock = FakeClock()
    rows = "".join(f"gate-{i},hikvision-access-controller,c1,b1,\n" for i in range(5))
    agent = await _agent(tmp_path, clock, rows)
    async with agent:
        sessions = _Sessions(2)
        monitor = _monitor(agent, sessions)
        monitor.check_s = 30
        monitor.broker_lost_after_s = 60
        sessions.connect()
        heartbeat = b'{"eventType": "heartBeat", "dateTime": "2026-01-01T08:00:00+08:00"}'
        for i in range(5):
            await _publish(agent, f"ce/c1/b1/hikvision-access-controller/gate-{i}", heartbeat)
        await monitor.check()
        sessions.drop()  # the broker drops the stalled agent's sessions (seen before the sleep
        await monitor.check()  # here, so that the 30 s of the sleep itself count)
        slept_at, wall = clock.monotonic(), clock.now()
        clock.advance(30 + 900)  # the timer of a 30 s sleep fires 15 minutes late

        assert monitor.woke(slept_at, wall) == 900
        assert await monitor.check() == []  # 30 s down, not 930

        assert (monitor.stalls, monitor.stalled_s, monitor.clock_steps) == (1, 900, 0)
        assert "the agent stalled for 900.0 s" in caplog.text
        clock.advance(29)
        assert await monitor.check() == []  # 59 s without a broker, not counting the stall
        clock.advance(1)
        assert _kinds(await monitor.check()) == [("opened", BROKER_LOST.id, "gw-1")]
        sessions.connect()
        await monitor.check()
        clock.advance(599)  # device silence counts from the stall's end, not from before it
        assert await monitor.check() == []


async def test_timers_on_time_and_a_stepped_wall_clock_are_no_stall(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    agent = await _agent(tmp_path, clock)
    async with agent:
        monitor = agent.monitor
        slept_at, wall = clock.monotonic(), clock.now()
        clock.advance(monitor.check_s + 1.5)  # a busy loop is late, but not stalled
        assert monitor.woke(slept_at, wall) == 0.0
        slept_at, wall = clock.monotonic(), clock.now()
        clock.advance(monitor.check_s)
        clock._now -= timedelta(minutes=5)  # NTP stepped the wall clock back
        assert monitor.woke(slept_at, wall) == 0.0
        assert (monitor.stalls, monitor.clock_steps) == (0, 1)
        assert "the wall clock moved -300.0 s" in caplog.text
