"""Notification channels: routes on a fake clock, messages, the WeCom and DingTalk robots against
local endpoints that check format and signature as the vendors do, pacing and digests under the
rate limit, Channel's skips and the delivery log, the channel settings.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.clock import FakeClock
from edge.errors import SinkRejected, SinkUnavailable
from edge.model import Alert, AlertEvent, AlertEventKind, AlertStatus, Severity
from edge.outbox import Forwarder, Outbox
from edge.sinks import (
    Channel,
    DeliveryLog,
    DingtalkSink,
    NoticeFormat,
    RateWindow,
    RobotSink,
    Route,
    TimeWindow,
    WecomSink,
)
from edge.sinks.channels.delivery_log import DeliveryResult
from edge.sinks.channels.dingtalk import sign
from edge.sinks.channels.message import clean
from edge.sinks.memory import MemorySink
from gateway.settings import ConfigurationError, Settings, load_settings
from tests.robot_receivers import RobotReceiver, Vendor, dingtalk_sign
from tests.servers import free_port

SHANGHAI = ZoneInfo("Asia/Shanghai")
KEY = "wecom-KEY-693a91f6-7xxx"
TOKEN = "dingtalk-TOKEN-ff6cd723"
SECRET = "SECdingtalk0123456789abcdef"
NOW = datetime.now(UTC).replace(microsecond=0)  # DingTalk checks the timestamp against its clock


def event(
    number: int = 1,
    kind: AlertEventKind = AlertEventKind.OPENED,
    *,
    at: datetime = NOW,
    severity: Severity = Severity.CRITICAL,
    community: str = "c1",
    building: str = "b1",
    tier: str | None = None,
    notify: bool = True,
    summary: str = "Emergency button pressed",
    category: str = "sos",
) -> AlertEvent:
    alert = Alert(
        id=f"alert-{number}",
        key=f"sos|sos-{number}",
        rule="sos",
        summary=summary,
        severity=severity,
        status=AlertStatus.ACTIVE,
        device_id=f"sos-{number}",
        model="tuya-sos-button",
        category=category,
        community=community,
        building=building,
        unit="3-201",
        opened_at=at,
        updated_at=at,
        last_seen_at=at,
        acknowledged_by="duty-wang" if kind is AlertEventKind.ACKNOWLEDGED else None,
    )
    return AlertEvent(
        id=f"evt-{number}-{kind}",
        kind=kind,
        at=at,
        actor="rule",
        alert=alert,
        tier=tier,
        notify=notify,
    )


# -- routes ---------------------------------------------------------------------------------------


def _shanghai(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 1, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def test_a_night_window_wraps_past_midnight_in_the_local_zone() -> None:
    clock = FakeClock(_shanghai(21, 59))
    night = Route(hours=(TimeWindow.parse("22:00-07:00"),), zone=SHANGHAI)
    seen = []
    for _ in range(10 * 60):  # ten hours, a minute at a time
        seen.append(
            (
                clock.now().astimezone(SHANGHAI).strftime("%H:%M"),
                night.mismatch(event(at=clock.now(), category="water")) is None,
            )
        )
        clock.advance(60)
    taken = [t for t, ok in seen if ok]
    assert taken[0] == "22:00"
    assert taken[-1] == "06:59"
    assert len(taken) == 9 * 60  # 22:00 to 06:59, 540 minutes
    assert ("21:59", False) in seen
    assert ("07:00", False) in seen
    refused = night.mismatch(event(at=_shanghai(12), category="water"))
    assert refused == "time 12:00 outside 22:00-07:00"
    # rules of reach: an SOS ignores the hours (quiet hours do not apply to a life)
    assert night.mismatch(event(at=_shanghai(12))) is None
    # 22:00 in Shanghai is 14:00 UTC: a route in UTC would take noon instead
    assert (
        Route(hours=(TimeWindow.parse("22:00-07:00"),), zone=UTC).mismatch(
            event(at=_shanghai(22, 30), category="water")
        )
        == "time 14:30 outside 22:00-07:00"
    )


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("08:00-18:00", ["08:00", "17:59"], ["07:59", "18:00"]),
        ("00:00-24:00", ["00:00", "23:59"], []),
        ("18:00-24:00", ["18:00", "23:59"], ["17:59", "00:00"]),
    ],
)
def test_time_windows(text: str, inside: list[str], outside: list[str]) -> None:
    window = TimeWindow.parse(text)
    assert str(window) == text

    def at(hhmm: str) -> bool:
        h, m = hhmm.split(":")
        return window.contains(datetime(2026, 1, 1, int(h), int(m)).time())

    assert all(at(t) for t in inside)
    assert not any(at(t) for t in outside)


@pytest.mark.parametrize(
    "text", ["22:00", "25:00-07:00", "07:00-07:00", "24:30-01:00", "7:00-8:00"]
)
def test_bad_time_windows_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"HH:MM|empty|24:00"):
        TimeWindow.parse(text)


def test_routes_by_community_building_severity_kind_and_tier() -> None:
    route = Route(
        communities=frozenset({"c1"}),
        buildings=frozenset({"b1", "b2"}),
        severities=Route.at_least(Severity.MAJOR),
        kinds=frozenset({AlertEventKind.OPENED, AlertEventKind.ESCALATED}),
        tiers=frozenset({None, "duty_officer"}),
    )
    assert route.mismatch(event()) is None
    assert route.mismatch(event(building="b2", severity=Severity.MAJOR)) is None
    assert route.mismatch(event(kind=AlertEventKind.ESCALATED, tier="duty_officer")) is None
    assert route.mismatch(event(community="c2")) == "community c2"
    assert route.mismatch(event(building="b3")) == "building b3"
    assert route.mismatch(event(severity=Severity.MINOR)) == "severity minor"
    assert route.mismatch(event(kind=AlertEventKind.RESOLVED)) == "kind resolved"
    assert route.mismatch(event(kind=AlertEventKind.ESCALATED, tier="property_manager")) == (
        "tier property_manager"
    )
    assert Route(tiers=frozenset({"property_manager"})).mismatch(event()) == "tier default"
    assert Route().mismatch(event(tier="anyone", severity=Severity.INFO)) is None
    assert Route.at_least(Severity.CRITICAL) == {Severity.CRITICAL}
    assert Route.at_least(Severity.INFO) == set(Severity)


# -- messages -------------------------------------------------------------------------------------


def test_a_message_says_what_a_duty_officer_needs_and_nothing_personal() -> None:
    notices = NoticeFormat(SHANGHAI, "https://gw.example/")
    at = datetime(2026, 3, 1, 14, 5, 9, tzinfo=UTC)
    notice = notices.single(event(at=at, kind=AlertEventKind.ACKNOWLEDGED))

    assert notice.title == "【紧急 CRITICAL】告警已确认 Acknowledged"
    assert notice.lines == (
        "Emergency button pressed",
        "位置 Where: c1 / b1 / 3-201",
        "设备 Device: sos-1 (tuya-sos-button)",
        "时间 Time: 2026-03-01 22:05:09 UTC+08:00",
        "确认人 By: duty-wang",
        "告警编号 Alert: alert-1",
    )
    assert notice.link == "https://gw.example/console/alerts/alert-1"
    escalated = notices.single(event(kind=AlertEventKind.ESCALATED, tier="property_manager"))
    assert "升级至 Tier: property_manager" in escalated.lines
    assert NoticeFormat(SHANGHAI).single(event()).link is None


def test_a_message_says_the_rule_s_chinese_summary_first_and_never_fails_for_it() -> None:
    chinese = {"Emergency button pressed": "紧急按钮被按下"}

    def said(alert: Alert) -> str:
        if alert.summary == "boom":
            raise KeyError(alert.summary)
        return chinese.get(alert.summary, alert.summary)

    notices = NoticeFormat(SHANGHAI, chinese=said)
    assert notices.single(event()).lines[0] == "紧急按钮被按下 Emergency button pressed"
    assert "· 紧急按钮被按下 Emergency button pressed ·" in notices.line(event())
    # a rule without a Chinese line, or a lookup that fails: the stored words, still sent
    assert notices.single(event(summary="Water leak")).lines[0] == "Water leak"
    assert notices.single(event(summary="boom")).lines[0] == "boom"


def test_a_digest_links_to_the_console_too_never_to_a_json_route() -> None:
    """#15 item 7: a digest's link opens its one alert's page, or the board of its community."""
    notices = NoticeFormat(SHANGHAI, "https://gw.example/")
    one = [event(1), event(1, AlertEventKind.ESCALATED, tier="property_manager")]
    assert notices.digest(one).link == "https://gw.example/console/alerts/alert-1"
    several = [event(1), event(2), event(3)]
    assert notices.digest(several).link == "https://gw.example/console/?community=c1"
    mixed = [event(1), event(2, community="c2")]
    assert notices.digest(mixed).link == "https://gw.example/console/"
    assert "[查看详情 Details](https://gw.example/console/" in notices.digest(several).markdown()
    assert NoticeFormat(SHANGHAI).digest(several).link is None


def test_device_text_cannot_forge_lines_links_or_mentions() -> None:
    forged = "smoke\n> 位置 Where: elsewhere [click](http://evil) <@all> **x** # h"
    line = clean(forged)
    assert "\n" not in line
    assert not set(line) & set("<>[]*#`")
    notice = NoticeFormat(SHANGHAI).single(event(summary=forged))
    assert notice.markdown().count("\n> ") == len(notice.lines)  # no forged line
    assert "http://evil" in notice.markdown()  # kept as text, not a link
    assert "](" not in notice.markdown()


# -- the robots against local endpoints -----------------------------------------------------------


class _Sleeper:
    """asyncio.sleep for a FakeClock: moves the clock instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def sleeper(clock: FakeClock) -> _Sleeper:
    return _Sleeper(clock)


@pytest.fixture
def wecom_receiver() -> Iterator[RobotReceiver]:
    with RobotReceiver("wecom", KEY) as receiver:
        yield receiver


@pytest.fixture
def dingtalk_receiver() -> Iterator[RobotReceiver]:
    with RobotReceiver("dingtalk", TOKEN, SECRET) as receiver:
        yield receiver


def _wecom(base_url: str, clock: FakeClock, sleeper: _Sleeper, **kw: object) -> WecomSink:
    return WecomSink(
        "duty-wecom",
        str(kw.pop("key", KEY)),
        notices=NoticeFormat(SHANGHAI, "https://gw.example"),
        rate=RateWindow(20, 60.0, clock, sleeper),
        base_url=base_url,
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )


def _dingtalk(base_url: str, clock: FakeClock, sleeper: _Sleeper, **kw: object) -> DingtalkSink:
    return DingtalkSink(
        "night-dingtalk",
        str(kw.pop("token", TOKEN)),
        notices=NoticeFormat(SHANGHAI),
        rate=RateWindow(20, 60.0, clock, sleeper),
        secret=kw.pop("secret", SECRET),  # type: ignore[arg-type]
        base_url=base_url,
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def wecom(
    wecom_receiver: RobotReceiver, clock: FakeClock, sleeper: _Sleeper
) -> AsyncIterator[WecomSink]:
    sink = _wecom(wecom_receiver.base_url, clock, sleeper)
    yield sink
    await sink.close()


@pytest.fixture
async def dingtalk(
    dingtalk_receiver: RobotReceiver, clock: FakeClock, sleeper: _Sleeper
) -> AsyncIterator[DingtalkSink]:
    sink = _dingtalk(dingtalk_receiver.base_url, clock, sleeper)
    yield sink
    await sink.close()


async def test_wecom_gets_one_markdown_message_per_event(
    wecom: WecomSink, wecom_receiver: RobotReceiver
) -> None:
    await wecom.write_events([event(1), event(2, AlertEventKind.RESOLVED)])

    first, second = wecom_receiver.requests
    assert (first.errcode, second.errcode) == (0, 0)
    assert first.query == {"key": KEY}
    assert first.body["msgtype"] == "markdown"
    content = first.body["markdown"]["content"]
    assert content.startswith("**【紧急 CRITICAL】新告警 Opened**\n> Emergency button pressed\n")
    assert "> 告警编号 Alert: alert-1" in content
    assert content.endswith("[查看详情 Details](https://gw.example/console/alerts/alert-1)")
    assert "告警已解除 Resolved" in second.text
    assert wecom.messages == 2


async def test_wecom_with_mentions_sends_text_with_the_mobile_list(
    wecom_receiver: RobotReceiver, clock: FakeClock, sleeper: _Sleeper
) -> None:
    sink = _wecom(wecom_receiver.base_url, clock, sleeper, mention_mobiles=["13800001111"])
    try:
        await sink.write_events([event()])
    finally:
        await sink.close()

    [got] = wecom_receiver.requests
    assert got.errcode == 0
    assert got.body["msgtype"] == "text"
    assert got.body["text"]["mentioned_mobile_list"] == ["13800001111"]
    assert got.body["text"]["content"].startswith("【紧急 CRITICAL】新告警 Opened\nEmergency")


async def test_dingtalk_requests_are_signed_as_dingtalk_verifies(
    dingtalk: DingtalkSink, dingtalk_receiver: RobotReceiver, clock: FakeClock
) -> None:
    await dingtalk.write_events([event(1)])
    clock.advance(5)
    await dingtalk.write_events([event(2)])

    first, second = dingtalk_receiver.requests
    assert (first.errcode, second.errcode) == (0, 0)  # the endpoint recomputed each signature
    assert first.query["access_token"] == TOKEN
    assert first.query["timestamp"] == str(int(NOW.timestamp() * 1000))
    assert first.query["sign"] == dingtalk_sign(SECRET, first.query["timestamp"])
    assert first.query["sign"] == sign(SECRET, int(first.query["timestamp"]))
    assert int(second.query["timestamp"]) == int(first.query["timestamp"]) + 5000
    assert first.body["msgtype"] == "markdown"
    assert first.body["markdown"]["title"] == "【紧急 CRITICAL】新告警 Opened"
    assert "\n\n> 位置 Where: c1 / b1 / 3-201\n\n" in first.body["markdown"]["text"]
    assert first.body["at"] == {"atMobiles": [], "isAtAll": False}
    # the body itself holds no credentials
    assert SECRET.encode() not in first.raw
    assert TOKEN.encode() not in first.raw


async def test_dingtalk_refuses_a_wrong_secret_or_a_stale_timestamp_and_both_are_retried(
    dingtalk_receiver: RobotReceiver, clock: FakeClock, sleeper: _Sleeper
) -> None:
    wrong = _dingtalk(dingtalk_receiver.base_url, clock, sleeper, secret="SECnot-the-robots")
    stale_clock = FakeClock(NOW - timedelta(hours=1, minutes=1))
    stale = _dingtalk(dingtalk_receiver.base_url, stale_clock, _Sleeper(stale_clock))
    try:
        for sink in (wrong, stale):
            with pytest.raises(SinkUnavailable, match="errcode 310000") as caught:
                await sink.write_events([event()])
            assert SECRET not in str(caught.value)
            assert TOKEN not in str(caught.value)
            assert "SECnot-the-robots" not in str(caught.value)
    finally:
        await wrong.close()
        await stale.close()
    assert [r.errcode for r in dingtalk_receiver.requests] == [310000, 310000]


async def test_a_wrong_wecom_key_is_retried_and_never_shown(
    wecom_receiver: RobotReceiver, clock: FakeClock, sleeper: _Sleeper
) -> None:
    sink = _wecom(wecom_receiver.base_url, clock, sleeper, key="not-the-key")
    try:
        with pytest.raises(SinkUnavailable, match="errcode 93000") as caught:
            await sink.write_events([event()])
    finally:
        await sink.close()
    assert "not-the-key" not in str(caught.value)


@pytest.mark.parametrize(
    ("vendor", "errcode", "error"),
    [
        ("wecom", 45009, SinkUnavailable),  # rate limited
        ("wecom", 40058, SinkRejected),  # invalid parameter: this message
        ("wecom", 44004, SinkRejected),
        ("wecom", -1, SinkUnavailable),  # system busy
        ("wecom", 60020, SinkUnavailable),  # IP not allowed: configuration
        ("dingtalk", 130101, SinkUnavailable),  # sending too fast
        ("dingtalk", 40035, SinkRejected),
        ("dingtalk", 12345, SinkUnavailable),  # unknown: keep it and retry
    ],
)
async def test_errcodes_are_translated(
    vendor: Vendor, errcode: int, error: type[Exception], clock: FakeClock, sleeper: _Sleeper
) -> None:
    with RobotReceiver(
        vendor,
        KEY if vendor == "wecom" else TOKEN,
        None if vendor == "wecom" else SECRET,
        lambda _: errcode,
    ) as receiver:
        sink: RobotSink = (
            _wecom(receiver.base_url, clock, sleeper)
            if vendor == "wecom"
            else _dingtalk(receiver.base_url, clock, sleeper)
        )
        try:
            with pytest.raises(error, match=f"errcode {errcode}"):
                await sink.write_events([event()])
            paused = sink.rate.available() == 0
        finally:
            await sink.close()
    assert paused == (errcode in (45009, 130101))  # "too fast": the window pauses a minute


async def test_an_endpoint_not_listening_is_unavailable(
    clock: FakeClock, sleeper: _Sleeper
) -> None:
    sink = _wecom(f"http://127.0.0.1:{free_port()}", clock, sleeper)
    try:
        with pytest.raises(SinkUnavailable, match="unreachable") as caught:
            await sink.write_events([event()])
    finally:
        await sink.close()
    assert KEY not in str(caught.value)


async def test_behind_the_rate_limit_events_go_as_paced_digests_and_none_is_left_out(
    wecom: WecomSink, wecom_receiver: RobotReceiver, sleeper: _Sleeper
) -> None:
    events = [
        event(n, summary=f"烟雾报警 smoke alarm number {n} " + "x" * 60) for n in range(1, 501)
    ]

    await wecom.write_events(events[:15])  # the window has room: one message each
    await wecom.write_events(events[15:])  # 485 more with 5 slots left: digests

    got = wecom_receiver.requests
    assert all(r.errcode == 0 for r in got)
    singles, digests = got[:15], got[15:]
    assert all("告警汇总" not in r.text for r in singles)
    assert all(r.text.startswith("**告警汇总 Alert digest: ") for r in digests)
    assert all(len(r.text.encode()) <= 4096 for r in got)
    listed = [e.alert.id for e in events if any(f" · {e.alert.id}\n" in r.text + "\n" for r in got)]
    assert len(listed) == 500 - 15  # every digested event is in exactly one of the digests ...
    assert sum(r.text.count(" · alert-") for r in digests) == 485  # ... once
    assert len(digests) < 485 / 10  # several events per message
    # paced: 20 messages at once (the fake clock does not move), then a minute's wait per 20
    assert len(got) > 20
    assert sleeper.slept == [60.0] * ((len(got) - 1) // 20)
    assert wecom.rate.waited_s == pytest.approx(sum(sleeper.slept))
    assert wecom.messages == len(got)


async def test_the_rate_window_allows_20_in_any_60_seconds(
    clock: FakeClock, sleeper: _Sleeper
) -> None:
    window = RateWindow(20, 60.0, clock, sleeper)
    sent: list[float] = []
    for _ in range(65):
        await window.acquire()
        sent.append(clock.monotonic())
    for i in range(len(sent) - 20):
        assert sent[i + 20] - sent[i] >= 60.0
    assert sent[19] == 0.0  # the first 20 at once
    assert sent[20] == 60.0
    window.pause(60)
    assert window.available() == 0


async def test_a_batch_failing_part_way_says_what_was_delivered(
    clock: FakeClock, sleeper: _Sleeper
) -> None:
    answers = iter([None, None, 45009])
    with RobotReceiver("wecom", KEY, answer=lambda _: next(answers, None)) as receiver:
        sink = _wecom(receiver.base_url, clock, sleeper)
        try:
            with pytest.raises(SinkUnavailable) as caught:
                await sink.write_events([event(1), event(2), event(3)])
        finally:
            await sink.close()
    assert caught.value.delivered == ("evt-1-opened", "evt-2-opened")


# -- Channel: routes, notify, the delivery log ----------------------------------------------------


@pytest.fixture
async def log(tmp_path: Path, clock: FakeClock) -> AsyncIterator[DeliveryLog]:
    deliveries = DeliveryLog(tmp_path / "deliveries.db", now=clock.now)
    yield deliveries
    await deliveries.close()


async def test_a_channel_sends_what_its_route_takes_and_records_every_attempt(
    log: DeliveryLog, clock: FakeClock
) -> None:
    memory = MemorySink("night")
    channel = Channel(memory, Route(severities=Route.at_least(Severity.MAJOR)), log)
    events = [
        event(1),
        event(2, severity=Severity.INFO),
        event(3, notify=False),  # silenced by the lifecycle
        event(1, AlertEventKind.ACKNOWLEDGED),
    ]

    await channel.write_events(events)
    await channel.write_events(events)  # a retried batch: nothing is sent or recorded twice

    assert [e.id for e in memory.events] == ["evt-1-opened", "evt-1-acknowledged"]
    assert (channel.sent, channel.skipped) == (2, 2)
    one = await log.for_alert("alert-1")
    assert [(d.event_id, d.result, d.attempts) for d in one] == [
        ("evt-1-opened", DeliveryResult.DELIVERED, 1),
        ("evt-1-acknowledged", DeliveryResult.DELIVERED, 1),
    ]
    [info] = await log.for_alert("alert-2")
    assert (info.result, info.reason) == (DeliveryResult.SKIPPED, "route: severity info")
    [silenced] = await log.for_alert("alert-3")
    assert silenced.result is DeliveryResult.SKIPPED
    assert silenced.reason is not None
    assert "notify off" in silenced.reason
    assert info.sink == "night"


async def test_failed_attempts_are_one_row_per_event_with_a_count(
    log: DeliveryLog, clock: FakeClock, sleeper: _Sleeper
) -> None:
    sink = _wecom(f"http://127.0.0.1:{free_port()}", clock, sleeper)
    channel = Channel(sink, Route(), log)
    try:
        for _ in range(3):
            with pytest.raises(SinkUnavailable):
                await channel.write_events([event(1)])
            clock.advance(30)
    finally:
        await channel.close()

    [failed] = await log.for_alert("alert-1")
    assert (failed.result, failed.attempts) == (DeliveryResult.FAILED, 3)
    assert failed.last_at - failed.first_at == timedelta(seconds=60)
    assert failed.reason is not None
    assert "unreachable" in failed.reason
    assert KEY not in failed.reason


async def test_a_partial_batch_is_not_sent_again_on_retry(
    tmp_path: Path, log: DeliveryLog, clock: FakeClock, sleeper: _Sleeper
) -> None:
    answers = iter([None, 45009])  # the second message is refused as too fast
    with RobotReceiver("wecom", KEY, answer=lambda _: next(answers, None)) as receiver:
        channel = Channel(_wecom(receiver.base_url, clock, sleeper), Route(), log)
        outbox = Outbox(tmp_path / "outbox.db", {channel.name: channel.lanes}, now=clock.now)
        try:
            await outbox.commit(events=[event(1), event(2), event(3)])
            forwarder = Forwarder(outbox, channel, clock=clock)
            with pytest.raises(SinkUnavailable):
                await forwarder.drain()
            await forwarder.drain()
        finally:
            await channel.close()
            await outbox.close()

    sent = [r.text for r in receiver.accepted]
    # evt-1 alone; then, paused by "too fast" and so behind, evt-2 and evt-3 in one digest
    assert [r.errcode for r in receiver.requests] == [0, 45009, 0]
    assert sent[1].startswith("**告警汇总 Alert digest: 2 条 events")
    assert [sum(f"alert-{n}" in t for t in sent) for n in (1, 2, 3)] == [1, 1, 1]
    two = await log.for_alert("alert-2")
    assert [d.result for d in two] == [DeliveryResult.FAILED, DeliveryResult.DELIVERED]


async def test_the_log_keeps_its_newest_rows(tmp_path: Path, clock: FakeClock) -> None:
    log = DeliveryLog(tmp_path / "d.db", now=clock.now, max_rows=50)
    try:
        for n in range(300):
            await log.record("s", [event(n)], DeliveryResult.DELIVERED)
        assert await log.for_alert("alert-0") == []
        assert len(await log.for_alert("alert-299")) == 1
    finally:
        await log.close()


async def test_a_corrupt_log_is_moved_aside(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "deliveries.db"
    path.write_bytes(b"not a database" * 100)
    log = DeliveryLog(path, now=clock.now)
    try:
        await log.record("s", [event()], DeliveryResult.DELIVERED)
        assert len(await log.for_alert("alert-1")) == 1
    finally:
        await log.close()
    moved = [n for n in os.listdir(tmp_path) if n.startswith("deliveries.db.corrupt-")]
    assert moved == [next(n for n in moved if "-wal" not in n and "-shm" not in n)]
    # what /healthz says (degraded, naming the file and where it went)
    assert log.problem is not None
    assert log.problem.startswith(f"delivery log {path} was unreadable")
    assert moved[0] in log.problem


# -- settings -------------------------------------------------------------------------------------


@pytest.fixture
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("COMMUNITY_EDGE_"):
            monkeypatch.delenv(name)


CHANNELS = f"""
notifications: {{time_zone: Asia/Shanghai, public_url: "https://gw.example/"}}
webhooks: [{{name: platform, url: "https://platform.example/hooks"}}]
channels:
  - name: duty-wecom
    type: wecom
    key: "{KEY}"
    route: {{communities: [c1], min_severity: major, kinds: [opened, escalated], tiers: [default, duty_officer]}}
  - name: night-dingtalk
    type: dingtalk
    token: "{TOKEN}"
    secret: "{SECRET}"
    mention_mobiles: ["13800001111"]
    route: {{hours: ["22:00-07:00"]}}
  - {{name: feed, type: webhook, url: "http://127.0.0.1:9000/x", secret: s3cret}}
"""


@pytest.mark.usefixtures("_clean_environment")
def test_channel_settings_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CHANNELS, encoding="utf-8")
    settings = load_settings(path)

    wecom, dingtalk, feed = settings.channels
    assert (wecom.type, dingtalk.type, feed.type) == ("wecom", "dingtalk", "webhook")
    route = wecom.route.route(settings.notifications.zone)
    assert route.severities == frozenset({Severity.CRITICAL, Severity.MAJOR})
    assert route.tiers == frozenset({None, "duty_officer"})
    assert settings.notifications.public_url == "https://gw.example"
    for secret in (KEY, SECRET, TOKEN):
        assert secret not in repr(settings)
    assert Settings().channels == []


@pytest.mark.usefixtures("_clean_environment")
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "channels: [{name: a, type: slack}]",
            "does not match any of the expected tags: 'webhook', 'wecom', 'dingtalk'",
        ),
        ("channels: [{name: a, type: wecom}]", "channels.0.wecom.key: Field required"),
        ("channels: [{type: wecom, key: k}]", "channels.0.wecom.name: Field required"),
        ('channels: [{name: a, type: wecom, key: ""}]', "channels.0.wecom.key: must not be empty"),
        (
            "channels: [{name: a, type: dingtalk, token: t, route: {hours: ['22-7']}}]",
            "'22-7' is not a time window",
        ),
        (
            "channels: [{name: a, type: dingtalk, token: t, route: {min_severity: major, severities: [info]}}]",
            "give min_severity or severities, not both",
        ),
        (
            "channels: [{name: a, type: wecom, key: k, route: {communities: []}}]",
            "an empty list matches nothing",
        ),
        (
            "channels: [{name: a, type: wecom, key: k, route: {severity: major}}]",
            "channels.0.wecom.route.severity: unknown setting",
        ),
        (
            "channels: [{name: a, type: wecom, key: k, rate_per_minute: 30}]",
            "rate_per_minute: Input should be less than or equal to 20",
        ),
        (
            "channels: [{name: a, type: wecom, key: k, mention_mobiles: [zhang]}]",
            "mention_mobiles.0: String should match",
        ),
        ("channels: [{name: a, type: wecom, key: k, base_url: 'ftp://x'}]", "must be http"),
        ("notifications: {time_zone: Mars/Olympus}", "'Mars/Olympus' is not a time zone"),
    ],
)
def test_bad_channel_settings_name_the_key(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(path)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.usefixtures("_clean_environment")
def test_a_channel_cannot_take_a_built_in_sinks_name(tmp_path: Path) -> None:
    from gateway.wiring import build_gateway

    path = tmp_path / "c.yaml"
    path.write_text(
        f'data_dir: "{tmp_path / "data"}"\nchannels: [{{name: alert-store, type: wecom, key: k}}]\n'
    )
    with pytest.raises(
        ConfigurationError,
        match=r"two sinks are named 'alert-store': the gateway's alert store and channels\[0\] ",
    ):
        build_gateway(load_settings(path))
    assert not (tmp_path / "data").exists()
