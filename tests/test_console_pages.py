"""The console's pages beyond the board, over HTTP (in-process, a real agent, registry, reading
store and token store): the alert's readings and rule trace, incidents, devices, the building
board and silences; their roles, scopes, CSRF and languages. Browser behaviour is in
tests/test_console_pages_browser.py; the pure parts (trace, chart, floors) are tested here too.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry, DeviceState, Status
from edge.ingest import parse_mqtt_url
from edge.model import AlertStatus, DeviceRef, FieldValue, RawMessage
from edge.rule_spec import RuleSpec
from edge.rules import correlation_summary
from edge.sinks import ReadingStore
from gateway.api import create_app
from gateway.audit import AuditLog
from gateway.console.buildings import floor_of
from gateway.console.catalogue import WORDS
from gateway.console.chart import Series, fitted, series_of, svg
from gateway.console.device_status import DeviceStatus, reported_flags
from gateway.console.rule_trace import describe, trace
from gateway.console.summaries import summary_zh
from gateway.tokens import TokenStore

PROFILES = ProfileRegistry.load(default_profile_dir())
BOOTSTRAP = "bootstrap-admin-token"
HTMX = {"HX-Request": "true"}  # the board fragments answer htmx; a direct visit redirects
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_SIGNIN_CSRF = re.compile(r'name="signin_csrf" value="([^"]+)"')
ZH, EN = WORDS["zh"], WORDS["en"]


def _registry() -> DeviceRegistry:
    rows = [
        ("sos-101", "tuya-sos-button", "sos", "a", "a1", "101"),
        ("ias-302", "ias-sos-button", "sos", "a", "a1", "302"),
        ("smk-a1-f01", "zigbee-ias-smoke", "smoke", "a", "a1", None),
        ("sos-b101", "tuya-sos-button", "sos", "b", "b1", "101"),
    ]
    return DeviceRegistry(
        {
            d: DeviceRef(d, model, category, community, building, unit, slot)
            for slot, (d, model, category, community, building, unit) in enumerate(rows)
        }
    )


@dataclass
class _World:
    agent: Agent
    clock: FakeClock
    app: httpx.ASGITransport
    duty: str
    platform: str
    sos_a: str  # the SOS alert of sos-101 (community a)
    sos_b: str  # the SOS alert of sos-b101 (community b)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.app, base_url="http://gw")

    async def publish(self, topic: str, payload: bytes) -> None:
        self.clock.advance(1)
        raw = RawMessage(topic=topic, payload=payload, received_at=self.clock.now())
        out = self.agent.pipeline.handle(raw)
        await self.agent.outbox.commit([out.reading] if out.reading else [], out.events)
        for forwarder in self.agent.forwarders:
            await forwarder.drain()

    def alert_of(self, device: str, rule: str) -> str:
        found = [
            a
            for status in (AlertStatus.ACTIVE, AlertStatus.ACKNOWLEDGED)
            for a in self.agent.alert_store.list(
                communities=None, status=status, severity=None, limit=500, cursor=None
            ).items
            if a.device_id == device and a.rule == rule
        ]
        assert found, f"no open {rule} alert of {device}"
        return found[0].id


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[_World]:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5))
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    readings = ReadingStore(tmp_path / "readings.db")
    agent = Agent(config, PROFILES, _registry(), [readings], clock)
    tokens = TokenStore(tmp_path / "tokens.db")
    audit = AuditLog(tmp_path / "audit.db")
    _, duty = tokens.create("duty_officer", ["a"], name="王值班")
    _, platform = tokens.create("platform", ["a"], name="district")
    async with agent:
        app = create_app(agent, BOOTSTRAP, readings, tokens=tokens, audit=audit)
        world = _World(agent, clock, httpx.ASGITransport(app=app), duty, platform, "", "")
        for battery in (90, 88, 87):  # routine check-ins before the press
            await world.publish("ce/a/a1/tuya-sos-button/sos-101", b'{"battery": %d}' % battery)
        await world.publish("ce/a/a1/tuya-sos-button/sos-101", b'{"action": "sos", "battery": 86}')
        await world.publish("ce/b/b1/tuya-sos-button/sos-b101", b'{"action": "sos"}')
        world.sos_a = world.alert_of("sos-101", "sos")
        world.sos_b = world.alert_of("sos-b101", "sos")
        yield world


async def _sign_in(client: httpx.AsyncClient, token: str) -> None:
    form = await client.get("/console/sign-in")
    match = _SIGNIN_CSRF.search(form.text)
    assert match is not None, form.text
    signed = await client.post(
        "/console/sign-in", data={"token": token, "signin_csrf": match.group(1), "next": ""}
    )
    assert signed.status_code == 303


async def _csrf_of(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    match = _CSRF.search(page.text)
    assert match is not None, page.text
    return match.group(1)


# -- pure parts ------------------------------------------------------------------------------


def test_a_condition_reads_in_plain_words_and_is_checked_against_the_reading() -> None:
    rule = PROFILES.get("ias-sos-button").rules[2]  # low-battery: battery < 20 or the flag
    assert rule.when is not None
    assert describe(rule.when, "en") == "battery < 20 or battery_low = true"
    assert describe(rule.when, "zh") == "battery < 20 或 battery_low = true"
    found = trace(rule, {"battery": 15.0, "sos": False}, "en")
    assert found.met is True
    assert [(c.text, c.seen, c.held) for c in found.checks] == [
        ("battery < 20", 15.0, True),
        ("battery_low = true", None, None),  # not in the message
    ]
    assert found.clear is not None
    assert "battery ≥ 25" in found.clear
    held = RuleSpec.model_validate(
        {"id": "t", "summary": "s", "severity": "minor", "for_seconds": 300,
         "when": {"not": {"all": [{"field": "a", "gt": 1}, {"field": "b", "present": True}]}}}
    )  # fmt: skip
    assert held.when is not None
    assert describe(held.when, "zh") == "非(a > 1 且 带有 b)"
    assert ("tr_for", "300 s") in trace(held, None, "zh").details


def test_a_chinese_page_shows_the_rules_chinese_summary() -> None:
    sos = PROFILES.get("tuya-sos-button").rules[0]
    assert summary_zh("Emergency button pressed", sos) == "紧急按钮被按下"
    assert summary_zh("Something else", sos) == "Something else"  # never a wrong translation
    fire = RuleSpec.model_validate(
        {"id": "fire", "kind": "correlation", "summary": "Confirmed fire", "summary_zh": "确认火警",
         "severity": "critical", "within_seconds": 60, "min_devices": 2,
         "signals": [{"name": "smoke", "categories": ["smoke"]}]}
    )  # fmt: skip
    # another wording (an older agent's) keeps what it saw as written, after the Chinese line
    assert (
        summary_zh("Confirmed fire: smoke from 2 devices", fire)
        == "确认火警\uff1asmoke from 2 devices"
    )


def test_what_a_correlation_saw_reads_in_chinese() -> None:
    """The agent's wording (edge.rules.correlation_summary) and the console's parse agree: no
    English left on a Chinese page but the building and device names."""
    fire = RuleSpec.model_validate(
        {"id": "fire", "kind": "correlation", "summary": "Confirmed fire", "summary_zh": "确认火警",
         "severity": "critical", "within_seconds": 120, "min_devices": 2,
         "signals": [{"name": "smoke", "categories": ["smoke"]}]}
    )  # fmt: skip
    stored = correlation_summary("Confirmed fire", {"heat", "smoke"}, ["smk-2", "smk-1"], "b3", 120)
    assert stored == (
        "Confirmed fire: heat + smoke from 2 devices in building b3 within 120 s (smk-1, smk-2)"
    )
    assert (
        summary_zh(stored, fire)
        == "确认火警\uff1ab3 栋 120 秒内 2 个设备报高温 + 烟雾\uff08smk-1、smk-2\uff09"
    )
    one = correlation_summary("Confirmed fire", {"smoke"}, ["smk-1"], "b 3", 90.5)
    assert summary_zh(one, fire) == "确认火警\uff1ab 3 栋 90.5 秒内 1 个设备报烟雾\uff08smk-1\uff09"


def test_a_devices_own_tamper_and_battery_words_flag_it_without_a_rule() -> None:
    """DEVICES.md: Zigbee contacts send `tamper` and `battery_low`, Tuya smoke detectors
    `battery_state` low|middle|high; the device's own words flag it whether or not a rule of
    its model alerts on them (no rule reads `battery_state`)."""
    ref = DeviceRef("door-7", "zigbee-door-contact", "door", "a", "a1", "701", 0)
    state = DeviceState(Status.ONLINE, None, None, 90, None, 120, None)
    plain = DeviceStatus(ref, state, ())
    assert plain.flags == []
    newest_first: list[dict[str, FieldValue]] = [
        {"open": True, "linkquality": 80},
        {"tamper": True, "battery_state": "low"},
        {"tamper": False, "battery_low": False, "battery_state": "high"},
    ]
    reported = reported_flags(newest_first)
    assert reported == {"tamper": True, "battery_state": "low", "battery_low": False}
    flagged = DeviceStatus(ref, state, (), reported)
    assert flagged.flags == ["dev_tamper", "dev_low_battery"]
    assert not flagged.alarm  # a flag needs a person, not an alarm on the building board
    restored = DeviceStatus(ref, state, (), reported_flags(newest_first[2:]))
    assert restored.flags == []


def test_a_chart_is_an_svg_with_a_line_a_mark_and_a_name() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    readings: list[tuple[datetime, dict[str, FieldValue]]] = [
        (at + timedelta(minutes=m), {"battery": 90.0 - m, "sos": m == 3, "x": "s"})
        for m in range(5)
    ]
    charts = series_of(readings, first=("sos",))
    assert [(s.field, s.on_off) for s in charts] == [("sos", True), ("battery", False)]
    drawn = svg(charts[1], at, at + timedelta(minutes=5), UTC, at + timedelta(minutes=3), "电量")
    assert drawn.startswith("<svg")
    assert 'role="img"' in drawn
    assert "<title>电量</title>" in drawn
    assert "<polyline" in drawn
    assert 'class="mark"' in drawn
    assert " style=" not in drawn  # the console's CSP allows no inline style
    one = svg(Series("t", [(at, 5.0)], False), at, at + timedelta(minutes=1), UTC, None, "t")
    assert "<circle" in one
    assert "<polyline" not in one


def test_a_days_chart_says_the_dates_and_fits_its_readings() -> None:
    """A 24-hour chart read "12:01 … 12:01" with its line squeezed on the right (trial #4)."""
    end = datetime(2026, 12, 6, 4, 1, tzinfo=UTC)  # 12:01 in Shanghai
    start = end - timedelta(hours=24)
    zone = ZoneInfo("Asia/Shanghai")
    recent: list[tuple[datetime, dict[str, FieldValue]]] = [
        (end - timedelta(minutes=m), {"battery": 90.0 - m}) for m in range(30, 0, -1)
    ]
    (battery,) = series_of(recent)
    whole_day = svg(battery, start, end, zone, None, "电量")
    assert ">12-05 12:01<" in whole_day
    assert ">12-06 12:01<" in whole_day
    assert ">12-06 00:01<" in whole_day  # the middle of the day, with a grid line
    shown = fitted(start, end, [battery])
    assert end - shown < timedelta(hours=1)  # from a little before the first reading
    assert shown <= battery.points[0][0]
    drawn = svg(battery, shown, end, zone, None, "电量")
    xs = [float(x) for x in re.findall(r'<circle cx="([\d.]+)"', drawn)]
    assert max(xs) - min(xs) > 300  # spread over the plot, not a sliver at its right edge
    assert ">11:" in drawn  # a same-day window: times alone
    assert fitted(start, end, []) == start


def test_a_units_floor_is_read_from_its_number() -> None:
    assert floor_of("101") == 1
    assert floor_of("1203") == 12
    assert floor_of("2-302") == 3
    assert floor_of("g1") is None
    assert floor_of("12") is None


# -- the alert page: readings around the moment and the rule's trace ----------------------------


async def test_the_alert_page_shows_readings_around_the_moment_and_why_it_fired(
    world: _World,
) -> None:
    async with world.client() as client:
        await _sign_in(client, world.duty)
        page = await client.get(f"/console/alerts/{world.sos_a}")
        assert page.status_code == 200
        text = page.text
        assert "紧急按钮被按下" in text  # the rule's Chinese summary on a Chinese page
        assert ZH["why"] in text
        assert "<code>sos</code>" in text
        assert 'id="rule-when">action = emergency<' in text
        assert "check-held" in text  # the raising reading met it: action = emergency
        assert re.search(r'<figure class="chart-box" data-field="battery">', text)
        assert "<svg" in text
        assert 'class="mark"' in text
        assert ZH["readings_table"].format(n=4, total=4) in text
        assert ZH["rule_clear_person"] in text  # an SOS clears only by a person
        # the machine's words in Chinese (trial #3): the category, the chart's field, the actor
        assert "<dd>紧急求助</dd>" in text
        assert "<figcaption>电量 (%)</figcaption>" in text
        assert "· 规则</li>" in text  # who opened it: the rule, in Chinese
        wider = await client.get(f"/console/alerts/{world.sos_a}", params={"around": "60"})
        assert '<strong aria-current="true">' + ZH["around_min"].format(n=60) in wider.text
        english = await client.get(
            f"/console/alerts/{world.sos_a}", headers={"Accept-Language": "en"}
        )
        assert "Emergency button pressed" in english.text
        assert EN["why"] in english.text
        assert "http://" not in text
        assert " style=" not in text


async def test_a_repeated_alert_is_checked_against_the_reading_that_opened_it(
    world: _World,
) -> None:
    """The press that opened it, not a later check-in that happened to be nearer (trial #1)."""
    topic = "ce/a/a1/tuya-sos-button/sos-101"
    opened = world.agent.alert_store.get(world.sos_a)
    assert opened is not None
    # a check-in the device timed one second after the press: nearer, but not what raised it
    ts = int(opened.opened_at.timestamp()) + 1
    await world.publish(topic, b'{"battery": 85, "ts": %d}' % ts)
    await world.publish(topic, b'{"action": "sos", "battery": 84}')  # a repeat
    alert = world.agent.alert_store.get(world.sos_a)
    assert alert is not None
    assert alert.count == 2
    async with world.client() as client:
        await _sign_in(client, world.duty)
        text = (await client.get(f"/console/alerts/{world.sos_a}")).text
    checks = text[text.index('id="checks"') :]
    checks = checks[: checks.index("</ul>")]
    assert "check-held" in checks
    assert "check-not" not in checks
    assert "check-missing" not in checks


async def test_the_board_speaks_chinese_summaries(world: _World) -> None:
    async with world.client() as client:
        await _sign_in(client, world.duty)
        assert "紧急按钮被按下" in (await client.get("/console/board", headers=HTMX)).text
        client.cookies.set("ce_lang", "en", path="/console")
        assert "Emergency button pressed" in (await client.get("/console/board", headers=HTMX)).text


# -- silences ------------------------------------------------------------------------------------


async def test_a_silence_from_an_alert_is_listed_and_ends_early(world: _World) -> None:
    async with world.client() as client:
        await _sign_in(client, world.duty)
        csrf = await _csrf_of(client, f"/console/alerts/{world.sos_a}")
        form = {"alert": world.sos_a, "hours": "2", "reason": "更换电池"}
        refused = await client.post("/console/silences", data=form)
        assert refused.status_code == 403  # no CSRF token
        made = await client.post("/console/silences", data={**form, "csrf": csrf})
        assert made.status_code == 303
        listing = await client.get(made.headers["location"])
        assert "已屏蔽" in listing.text
        assert "更换电池" in listing.text
        assert "王值班" in listing.text
        (silence,) = world.agent.alert_store.silences(current_at=world.clock.now(), limit=10)
        assert silence.device_id == "sos-101"
        assert silence.community == "a"
        assert silence.ends_at == silence.starts_at + timedelta(hours=2)
        assert silence.created_by == "王值班"
        alert_page = (await client.get(f"/console/alerts/{world.sos_a}")).text
        assert 'id="silenced"' in alert_page  # the alert's page says its device is silenced
        assert 'id="incident-link"' in alert_page
        assert 'href="/console/devices/sos-101"' in alert_page
        bad = await client.post("/console/silences", data={**form, "csrf": csrf, "hours": "99"})
        assert bad.status_code == 400
        other = await client.post(
            "/console/silences", data={**form, "alert": world.sos_b, "csrf": csrf}
        )
        assert other.status_code == 404  # another community's alert
        ended = await client.post(f"/console/silences/{silence.id}/expire", data={"csrf": csrf})
        assert ended.status_code == 303
        assert world.agent.alert_store.silences(current_at=world.clock.now(), limit=10) == []
        again = await client.post(f"/console/silences/{silence.id}/expire", data={"csrf": csrf})
        assert again.status_code == 409
        assert 'id="silenced"' not in (await client.get(f"/console/alerts/{world.sos_a}")).text
        history = await client.get("/console/silences", params={"all": "1"})
        assert ZH["expired"] in history.text


async def test_a_read_only_role_sees_silences_without_buttons_and_is_refused(
    world: _World,
) -> None:
    async with world.client() as duty:
        await _sign_in(duty, world.duty)
        csrf = await _csrf_of(duty, f"/console/alerts/{world.sos_a}")
        await duty.post(
            "/console/silences",
            data={"alert": world.sos_a, "hours": "1", "reason": "r", "csrf": csrf},
        )
    async with world.client() as client:
        await _sign_in(client, world.platform)
        page = await client.get(f"/console/alerts/{world.sos_a}")
        assert 'id="silence-form"' not in page.text
        listing = await client.get("/console/silences")
        assert 'class="expire"' not in listing.text
        assert ZH["in_force"] in listing.text
        csrf = await _csrf_of(client, f"/console/alerts/{world.sos_a}")
        refused = await client.post(
            "/console/silences",
            data={"alert": world.sos_a, "hours": "1", "reason": "r", "csrf": csrf},
        )
        assert refused.status_code == 403


# -- incidents -----------------------------------------------------------------------------------


async def test_an_incident_is_listed_traced_and_closed_with_a_summary(world: _World) -> None:
    incident_id = world.agent.alert_store.get(world.sos_a).incident_id  # type: ignore[union-attr]
    assert incident_id is not None
    async with world.client() as client:
        await _sign_in(client, world.duty)
        listing = await client.get("/console/incidents")
        assert f'data-incident="{incident_id}"' in listing.text
        b_incident = world.agent.alert_store.get(world.sos_b).incident_id  # type: ignore[union-attr]
        assert f'data-incident="{b_incident}"' not in listing.text
        page = await client.get(f"/console/incidents/{incident_id}")
        assert page.status_code == 200
        assert f'data-alert="{world.sos_a}"' in page.text
        assert "紧急按钮被按下" in page.text
        assert ZH["ev_opened"] in page.text
        csrf = _CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        acked = await client.post(
            f"/console/incidents/{incident_id}/acknowledge", data={"csrf": csrf, "note": "在路上"}
        )
        assert acked.status_code == 303
        no_summary = await client.post(
            f"/console/incidents/{incident_id}/close", data={"csrf": csrf, "outcome": "real"}
        )
        assert no_summary.status_code == 400
        no_csrf = await client.post(
            f"/console/incidents/{incident_id}/close", data={"outcome": "real", "note": "x"}
        )
        assert no_csrf.status_code == 403
        closed = await client.post(
            f"/console/incidents/{incident_id}/close",
            data={"csrf": csrf, "outcome": "real", "note": "老人摔倒 已送医"},
        )
        assert closed.status_code == 303
        alert = world.agent.alert_store.get(world.sos_a)
        assert alert is not None
        assert alert.status is AlertStatus.RESOLVED
        assert alert.resolved_by == "王值班"
        assert alert.note == "[real] 老人摔倒 已送医"
        trail = (await client.get(f"/console/incidents/{incident_id}")).text
        assert trail.index(ZH["ev_acknowledged"]) < trail.index("[real] 老人摔倒 已送医")
        assert 'id="close-incident"' not in trail  # closed: nothing left to do
        twice = await client.post(
            f"/console/incidents/{incident_id}/acknowledge", data={"csrf": csrf}
        )
        assert twice.status_code == 409


async def test_a_whole_incident_is_assigned_to_a_person(world: _World) -> None:
    await world.publish("ce/a/a1/ias-sos-button/ias-302", b'{"sos": true}')
    second = world.alert_of("ias-302", "sos")
    incident_id = world.agent.alert_store.get(world.sos_a).incident_id  # type: ignore[union-attr]
    assert world.agent.alert_store.get(second).incident_id == incident_id  # type: ignore[union-attr]
    async with world.client() as client:
        await _sign_in(client, world.duty)
        path = f"/console/incidents/{incident_id}"
        csrf = await _csrf_of(client, path)
        no_csrf = await client.post(f"{path}/assign", data={"assignee": "李师傅"})
        assert no_csrf.status_code == 403
        nobody = await client.post(f"{path}/assign", data={"csrf": csrf, "assignee": " "})
        assert nobody.status_code == 400
        assert ZH["assignee_needed"] in nobody.text
        done = await client.post(f"{path}/assign", data={"csrf": csrf, "assignee": "李师傅"})
        assert done.status_code == 303
        for alert_id in (world.sos_a, second):  # both, through the alert API's assignment
            alert = world.agent.alert_store.get(alert_id)
            assert alert is not None
            assert alert.assignee == "李师傅"
            assert alert.status is AlertStatus.ACTIVE  # assigning does not acknowledge
            events = world.agent.alert_store.history(alert_id)
            assert [e.actor for e in events if e.kind == "assigned"] == ["王值班"]
        page = (await client.get(path)).text
        assert re.search(r'id="incident-assignee">李师傅<', page)
        assert page.count('class="assignee">李师傅<') == 2
        again = await client.post(f"{path}/assign", data={"csrf": csrf, "assignee": "李师傅"})
        assert again.status_code == 409  # nothing left to assign: said, not silently done
        assert ZH["nothing_to_do"] in again.text
    async with world.client() as client:
        await _sign_in(client, world.platform)
        viewed = await client.get(f"/console/incidents/{incident_id}")
        assert 'id="assign-incident"' not in viewed.text
        csrf = _CSRF.search(viewed.text).group(1)  # type: ignore[union-attr]
        refused = await client.post(
            f"/console/incidents/{incident_id}/assign", data={"csrf": csrf, "assignee": "x"}
        )
        assert refused.status_code == 403


async def test_another_communitys_incident_is_a_404_and_read_only_has_no_buttons(
    world: _World,
) -> None:
    b_incident = world.agent.alert_store.get(world.sos_b).incident_id  # type: ignore[union-attr]
    a_incident = world.agent.alert_store.get(world.sos_a).incident_id  # type: ignore[union-attr]
    async with world.client() as client:
        await _sign_in(client, world.platform)
        assert (await client.get(f"/console/incidents/{b_incident}")).status_code == 404
        page = await client.get(f"/console/incidents/{a_incident}")
        assert page.status_code == 200
        assert 'id="close-incident"' not in page.text
        assert ZH["read_only"] in page.text
        csrf = _CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        refused = await client.post(
            f"/console/incidents/{a_incident}/close",
            data={"csrf": csrf, "outcome": "real", "note": "x"},
        )
        assert refused.status_code == 403


# -- devices -------------------------------------------------------------------------------------


async def test_devices_show_status_flags_and_their_page_a_chart_and_alerts(world: _World) -> None:
    await world.publish("ce/a/a1/ias-sos-button/ias-302", b'{"tamper": true, "battery": 12}')
    async with world.client() as client:
        await _sign_in(client, world.duty)
        listing = await client.get("/console/devices")
        rows = dict(
            re.findall(
                r'data-device="([^"]+)" data-liveness="[^"]+" data-flags="([^"]*)"', listing.text
            )
        )
        assert rows == {
            "sos-101": "dev_alarm",
            "ias-302": "dev_tamper dev_low_battery",
            "smk-a1-f01": "",
        }  # community b's device is not listed
        assert 'data-liveness="online"' in listing.text
        assert 'data-liveness="unknown"' in listing.text
        tampered = await client.get("/console/devices", params={"flag": "tamper"})
        assert 'data-device="ias-302"' in tampered.text
        assert 'data-device="sos-101"' not in tampered.text
        assert ZH["unregistered"] not in listing.text  # the installer's view: admins only
        page = await client.get("/console/devices/sos-101")
        assert page.status_code == 200
        assert 'data-field="battery"' in page.text
        assert "<svg" in page.text
        assert f'data-alert="{world.sos_a}"' in page.text
        assert "101" in page.text
        assert (await client.get("/console/devices/sos-b101")).status_code == 404
    async with world.client() as platform:
        await _sign_in(platform, world.platform)
        page = await platform.get("/console/devices/sos-101")
        assert ZH["masked"] in page.text  # the unit is where a resident lives


async def test_admins_see_unregistered_devices(world: _World) -> None:
    await world.publish("ce/a/a1/tuya-sos-button/stranger-1", b'{"battery": 50}')
    async with world.client() as client:
        await _sign_in(client, BOOTSTRAP)
        listing = await client.get("/console/devices")
        assert ZH["unregistered"] in listing.text
        assert "ce/a/a1/tuya-sos-button/stranger-1" in listing.text
        assert ZH["cause_unknown_device"] in listing.text


# -- the building board --------------------------------------------------------------------------


async def test_the_building_board_colours_units_by_state(world: _World) -> None:
    async with world.client() as client:
        await _sign_in(client, world.duty)
        page = await client.get("/console/buildings")
        assert page.status_code == 200
        text = page.text
        assert 'data-building="a1" data-state="alarm"' in text
        assert 'data-building="b1"' not in text  # another community
        assert re.search(r'data-floor="3".*data-unit="302" data-state="ok"', text, re.S)
        assert re.search(r'data-floor="1".*data-unit="101" data-state="alarm"', text, re.S)
        assert text.index('data-floor="3"') < text.index('data-floor="1"')  # top floor first
        assert 'data-device="smk-a1-f01"' in text  # a device with no unit: common areas
        assert f'data-alarms="{world.sos_a}"' in text  # the big screen sounds the SOS too
        fragment = await client.get("/console/buildings/board", headers=HTMX)
        assert 'data-unit="101" data-state="alarm"' in fragment.text
        assert "<html" not in fragment.text
        # opened directly (a bookmark, a reload): the page, not a bare scrap (trial #10)
        direct = await client.get("/console/buildings/board", params={"community": "a"})
        assert direct.status_code == 303
        assert direct.headers["location"] == "/console/buildings?community=a"
        board = await client.get("/console/board", params={"all": "1"})
        assert board.status_code == 303
        assert board.headers["location"] == "/console/?all=1"
    async with world.client() as client:
        await _sign_in(client, world.platform)
        masked = (await client.get("/console/buildings")).text
        assert 'data-unit="101"' not in masked
        assert re.search(r'data-unit="h-[0-9a-f]{12}"', masked)


async def test_an_alert_event_fetches_only_its_building(world: _World) -> None:
    """The board swaps in the building of an alert event, not the whole board again."""
    async with world.client() as client:
        await _sign_in(client, world.duty)
        board = (await client.get("/console/buildings")).text
        key = re.search(
            r'<section class="building" id="(b-[0-9a-f]{12})" data-community="a" '
            r'data-building="a1" data-state="alarm" data-alarms="([^"]*)"',
            board,
        )
        assert key is not None
        assert key.group(2) == world.sos_a
        one = await client.get("/console/buildings/places", params={"alert": world.sos_a})
        assert one.status_code == 200
        assert "<html" not in one.text
        assert one.text.count("<section") == 1
        assert f'id="{key.group(1)}"' in one.text  # the board's own id: swapped in place
        assert 'data-unit="101" data-state="alarm"' in one.text
        # another community's alert, an unknown id, another community asked for: nothing
        for params in (
            {"alert": world.sos_b},
            {"alert": "no-such-alert"},
            {"alert": world.sos_a, "community": "b"},
        ):
            nothing = await client.get("/console/buildings/places", params=params)
            assert nothing.status_code == 200
            assert "<section" not in nothing.text
        two = await client.get(
            "/console/buildings/places", params=[("alert", world.sos_a), ("alert", world.sos_a)]
        )
        assert two.text.count("<section") == 1  # one building, however many of its alerts
        many = await client.get("/console/buildings/places", params=[("alert", world.sos_a)] * 51)
        assert many.status_code == 422  # the page redraws everything past 50 at once
    async with world.client() as client:
        await _sign_in(client, world.platform)
        masked = await client.get("/console/buildings/places", params={"alert": world.sos_a})
        assert 'data-unit="101"' not in masked.text
        assert re.search(r'data-unit="h-[0-9a-f]{12}" data-state="alarm"', masked.text)


async def test_a_masked_role_sees_a_redrawn_row_as_on_the_board(world: _World) -> None:
    """The board's row route masks as the board does: a platform token does not read the unit
    (where a resident lives), in the row alone as in the whole board."""
    row_of = re.compile(rf'<tr [^>]*data-alert="{world.sos_a}".*?</tr>', re.S)
    for token, sees_unit in ((world.platform, False), (world.duty, True)):
        async with world.client() as client:
            await _sign_in(client, token)
            board = await client.get("/console/board", headers=HTMX)
            alone = await client.get(
                "/console/board/rows", params={"alert": world.sos_a}, headers=HTMX
            )
            whole, one = row_of.search(board.text), row_of.search(alone.text)
            assert whole is not None
            assert one is not None
            assert one.group(0) == whole.group(0)
            assert ("· 101" in one.group(0)) is sees_unit


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize(
    ("text", "background"),
    [
        ("#14532d", "#e6f4ea"),  # an ok unit
        ("#ffffff", "#3d434b"),  # an offline unit
        ("#ffffff", "#b3261e"),  # a unit in alarm
        ("#ffffff", "#8f4700"),  # the tamper flag
        ("#ffffff", "#6b5800"),  # the low-battery flag
        ("#1d6b35", "#ffffff"),  # online, a met check
        ("#4d5560", "#ffffff"),  # unknown, muted text
        ("#1b1f24", "#ffffff"),  # chart labels
    ],
)
def test_the_new_colours_pass_wcag_aa(text: str, background: str) -> None:
    assert _contrast(text, background) >= 4.5


async def test_every_new_page_is_csp_clean_and_marks_itself_in_the_navigation(
    world: _World,
) -> None:
    incident = world.agent.alert_store.get(world.sos_a).incident_id  # type: ignore[union-attr]
    async with world.client() as client:
        await _sign_in(client, world.duty)
        for path in (
            "/console/incidents",
            f"/console/incidents/{incident}",
            "/console/devices",
            "/console/devices/sos-101",
            "/console/buildings",
            "/console/silences",
        ):
            page = await client.get(path)
            assert page.status_code == 200, path
            assert "script-src 'self'" in page.headers["content-security-policy"]
            assert page.headers["cache-control"] == "no-store"
            assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) is None, path
            assert " style=" not in page.text, path
            assert "http://" not in page.text, path
            assert "https://" not in page.text, path
            section = "/".join(path.split("/")[:3])
            assert f'<a href="{section}" aria-current="page">' in page.text, path


async def test_an_offline_alert_says_which_silence_raised_it(world: _World) -> None:
    await world.publish("ce/a/a1/tuya-sos-button/sos-101/availability", b'{"state": "offline"}')
    offline = world.alert_of("sos-101", "device-offline")
    async with world.client() as client:
        await _sign_in(client, world.duty)
        page = (await client.get(f"/console/alerts/{offline}")).text
        assert "设备停止上报" in page  # the default offline rule's Chinese summary
        assert ZH["kind_offline"] in page
        assert f"<dt>{ZH['tr_heartbeat']}</dt><dd>90000 s</dd>" in page
        assert 'id="checks"' not in page  # no reading raised it: silence did


async def test_not_found_names_what_and_keeps_the_menu(world: _World) -> None:
    """A missing device, incident or page says which, inside the menu and user bar (trial #11)."""
    async with world.client() as client:
        await _sign_in(client, world.duty)
        for path, words in [
            ("/console/devices/no-such-device", ZH["not_found_device"].format(id="no-such-device")),
            ("/console/incidents/nope", ZH["not_found_incident"].format(id="nope")),
            ("/console/nowhere", ZH["not_found_page"].format(id="/console/nowhere")),
        ]:
            page = await client.get(path)
            assert page.status_code == 404
            assert words in page.text
            assert '<nav class="pages"' in page.text
            assert "王值班</strong> (值班员)" in page.text  # the user bar, the role in Chinese
    async with world.client() as stranger:
        page = await stranger.get("/console/nowhere")
        assert page.status_code == 404
        assert '<nav class="pages"' not in page.text


async def test_the_favicon_is_the_consoles_own(world: _World) -> None:
    """No 404 for /favicon.ico in every browser's first visit (trial #11)."""
    async with world.client() as client:
        icon = await client.get("/favicon.ico")
        assert icon.status_code == 301
        assert icon.headers["location"].startswith("/console/static/favicon.svg?v=")
        svg = await client.get(icon.headers["location"])
        assert svg.status_code == 200
        assert svg.headers["content-type"].startswith("image/svg+xml")
        await _sign_in(client, world.duty)
        board = await client.get("/console/")
        assert (
            '<link rel="icon" type="image/svg+xml" href="/console/static/favicon.svg' in board.text
        )
