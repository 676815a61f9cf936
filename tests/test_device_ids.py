"""Device ids and place names follow one rule (edge.identifier) wherever they enter: topics at
decode, the registry, households, the API's and the console's paths; and YAML numbers are finite."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, check_profiles, decode, default_profile_dir
from edge.enrich import DeviceRegistry, Household
from edge.errors import BadPayload, InvalidId, ProfileError, RegistryError, RuleError
from edge.identifier import ID_MAX_LENGTH, id_problem
from edge.ingest import parse_mqtt_url
from edge.model import RawMessage
from edge.rules import default_rules_file, load_rules_file
from edge.sinks import ReadingStore
from gateway.api import create_app
from gateway.audit import AuditLog
from gateway.cli import main
from gateway.demo_community import demo_fleet
from gateway.tokens import TokenStore
from simulators.community_file import build_from_spec, load_community
from tests.agent_process import AgentProcess, wait_for
from tests.in_process import handle_and_deliver
from tests.mqtt_publisher import publish
from tests.servers import MosquittoServer

PROFILES = ProfileRegistry.load(default_profile_dir())
TOKEN = "token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SOS = "tuya-sos-button"
COMMUNITY_FILE = (
    Path(__file__).parent.parent / "simulators" / "communities" / "sunshine-garden.yaml"
)
_SIGNIN_CSRF = re.compile(r'name="signin_csrf" value="([^"]+)"')

# what vendors call their devices (docs: README, "Device ids and place names")
VENDOR_IDS = [
    "a4:c1:38:0f:2e:91",  # MAC address
    "A4-C1-38-0F-2E-91",
    "0x00158d0001a2b3c4",  # Zigbee IEEE address, as Zigbee2MQTT names a device by default
    "867530012345678",  # IMEI (NB-IoT meters)
    "70B3D57ED0041234",  # LoRaWAN DevEUI
    "bf3a9c0e7d1f2a4b5cxk2p",  # Tuya device id, mixed case
    "DS-K1T671M-L20240311",  # Hikvision serial number
    "sos-b01-101",
    "x" * ID_MAX_LENGTH,
]
# (id, what the reason says)
BAD_IDS = [
    ("", "empty"),
    ("sos 1", "' ' (U+0020) at position 3"),
    ("sos,1", "','"),
    ("sos=1", "'='"),
    ('sos"1', "'\"'"),
    ("<b>sos", "'<' (U+003C) at position 0"),
    ("sos\n1", "'\\n' (U+000A)"),
    ("sos\u202e1", "U+202E"),
    ("3号楼", "'号' (U+53F7)"),
    ("sos%201", "'%'"),
    ("-sos", "starts with '-'"),
    ("..", "starts with '.'"),
    ("household:1201", "'household:' starts the ids of place alerts"),  # edge.rules.place
    ("building:b02", "'building:' starts the ids of place alerts"),
    ("x" * (ID_MAX_LENGTH + 1), "65 characters long, at most 64"),
    ("x" * 5000, "5,000 characters long"),
]


# -- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize("device_id", VENDOR_IDS)
def test_vendor_ids_are_identifiers(device_id: str) -> None:
    assert id_problem(device_id) is None


@pytest.mark.parametrize(("value", "why"), BAD_IDS)
def test_what_breaks_the_rule_is_named(value: str, why: str) -> None:
    problem = id_problem(value)
    assert problem is not None
    assert why in problem


def test_every_id_the_profiles_simulators_and_demo_use_is_admitted() -> None:
    used: set[str] = set()
    for profile in PROFILES:
        for example in profile.examples:
            _, values = PROFILES.match(example.topic)  # raises InvalidId if one is not
            used.update(values.values())
    for device in [
        *demo_fleet(PROFILES),
        *build_from_spec(load_community(COMMUNITY_FILE, PROFILES), PROFILES, seed=7),
    ]:
        used.update(
            v for v in (device.device_id, device.community, device.building, device.unit) if v
        )
    assert len(used) > 100
    assert {v: id_problem(v) for v in used if id_problem(v)} == {}


# -- topics, at decode ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "level"),
    [
        (f"ce/c1/b1/{SOS}/sos 1", "device_id"),
        (f"ce/c1/b1/{SOS}/sos,tag=x", "device_id"),
        (f"ce/c1/b1/{SOS}/{'x' * 5000}", "device_id"),
        (f"ce/c1/3号楼/{SOS}/sos-1", "building"),
        (f"ce/c 1/b1/{SOS}/sos-1", "community"),
        (f"ce/c1/b1/{SOS}/sos\u202e1/availability", "device_id"),
    ],
)
def test_a_topic_naming_a_bad_id_is_refused_and_not_remembered(topic: str, level: str) -> None:
    profiles = ProfileRegistry.load(default_profile_dir())
    for _ in range(2):
        with pytest.raises(InvalidId) as refused:
            profiles.match(topic)
        assert refused.value.cause == "invalid_id"
        assert refused.value.detail.startswith(f"{level} ")
        assert "1-64 characters" in refused.value.detail
    assert profiles.remembered == 0
    profiles.match(f"ce/c1/b1/{SOS}/sos-1")
    assert profiles.remembered == 1  # a good topic is remembered: checked once, not per message


# -- the pipeline and the API over a real agent -----------------------------------------------


@dataclass
class _Gateway:
    agent: Agent
    client: httpx.AsyncClient
    clock: FakeClock

    async def publish(self, topic: str, payload: bytes) -> None:
        self.clock.advance(1)
        raw = RawMessage(topic=topic, payload=payload, received_at=self.clock.now())
        await handle_and_deliver(self.agent, raw)


async def _sign_in(client: httpx.AsyncClient) -> None:
    """The console's sign-in form, as a browser posts it (its CSRF field included)."""
    form = await client.get("/console/sign-in")
    match = _SIGNIN_CSRF.search(form.text)
    assert match is not None, form.text
    signed = await client.post(
        "/console/sign-in", data={"token": TOKEN, "signin_csrf": match.group(1), "next": ""}
    )
    assert signed.status_code == 303


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[_Gateway]:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    readings = ReadingStore(tmp_path / "readings.db")
    # open enrollment: without a registry a topic's id is all there is to check
    agent = Agent(config, PROFILES, DeviceRegistry(), [readings], clock)
    tokens = TokenStore(tmp_path / "tokens.db")
    audit = AuditLog(tmp_path / "audit.db")
    async with agent:
        app = create_app(agent, TOKEN, readings, tokens=tokens, audit=audit)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gw", headers=AUTH
        ) as client:
            yield _Gateway(agent, client, clock)


async def test_bad_ids_become_dead_letters_with_their_reason_and_good_ones_flow(
    gateway: _Gateway,
) -> None:
    press = b'{"action": "emergency", "battery": 80}'
    for _ in range(3):
        await gateway.publish(f"ce/c1/b1/{SOS}/sos,device_id=forged", press)
    await gateway.publish(f"ce/c1/b 1/{SOS}/sos-2", press)
    await gateway.publish(f"ce/c1/b1/{SOS}/sos-1", press)

    letters = (await gateway.client.get("/v1/dead-letters")).json()
    assert [d["cause"] for d in letters] == ["invalid_id"] * 4
    assert letters[0]["detail"].startswith("building 'b 1' in the topic: character ' '")
    assert letters[-1]["detail"].startswith("device_id 'sos,device_id=forged' in the topic")
    metrics = (await gateway.client.get("/metrics")).text
    assert 'community_edge_dead_letters_total{cause="invalid_id"} 4' in metrics
    # no such device can be registered: not offered as an unregistered one, not enrolled
    assert (await gateway.client.get("/v1/devices/unregistered")).json() == []
    devices = (await gateway.client.get("/v1/devices")).json()["items"]
    assert [d["device_id"] for d in devices] == ["sos-1"]
    alerts = (await gateway.client.get("/v1/alerts")).json()["items"]
    assert [a["device_id"] for a in alerts] == ["sos-1"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/devices/sos%201",
        "/v1/devices/sos,x=1",
        "/v1/devices/%3Cb%3Esos",
        "/v1/devices/" + "x" * 5000,
        "/v1/devices/3%E5%8F%B7",
    ],
)
async def test_a_device_path_outside_the_rule_is_a_422_saying_why(
    gateway: _Gateway, path: str
) -> None:
    response = await gateway.client.get(path)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["message"].startswith("path.device_id: Value error, not an identifier")


@pytest.mark.parametrize("device_id", ["sos,1=x", "x" * 5000, "sos 1"])
async def test_readings_of_a_device_id_outside_the_rule_are_a_422_saying_why(
    gateway: _Gateway, device_id: str
) -> None:
    response = await gateway.client.get("/v1/readings", params={"device_id": device_id})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith(
        "query.device_id: Value error, not an identifier"
    )
    fine = await gateway.client.get("/v1/readings", params={"device_id": "a4:c1:38:0f:2e:91"})
    assert fine.status_code == 200, fine.text


async def test_an_unknown_device_is_a_404(gateway: _Gateway) -> None:
    response = await gateway.client.get("/v1/devices/sos-404")
    assert response.status_code == 404, response.text


@pytest.mark.parametrize(
    "url",
    [
        "/v1/devices?community=c%201&building=%3Cb%3E",
        "/v1/alerts?community=%22c1%22",
        "/v1/households/c%201/b1/1-101",
        "/v1/households/c1/b1/" + "x" * 5000,
        "/v1/households?community=c,1",
        "/v1/reports/c%201/2026-11",
        "/console/devices?building=%3Cb%3E",
    ],
)
async def test_ids_outside_the_rule_in_paths_and_queries_are_never_a_500(
    gateway: _Gateway, url: str
) -> None:
    if url.startswith("/console/"):
        await _sign_in(gateway.client)
    response = await gateway.client.get(url)
    assert response.status_code in (200, 404, 422), (response.status_code, response.text[:300])
    assert "<script>" not in response.text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("/console/devices/sos%201", "sos 1"),
        ("/console/devices/%3Cscript%3E", "&lt;script&gt;"),
        ("/console/devices/" + "x" * 5000, "设备 " + "x" * 200 + "\uff08"),  # 200 of them shown
        ("/console/households/c%201/b1/1-101", "c 1/b1/1-101"),
    ],
)
async def test_the_console_answers_an_id_outside_the_rule_with_its_not_found_page(
    gateway: _Gateway, url: str, shown: str
) -> None:
    await _sign_in(gateway.client)
    response = await gateway.client.get(url)
    assert response.status_code == 404, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    assert shown in response.text
    assert "<script>" not in response.text


async def test_a_device_named_by_its_mac_address_has_its_page_linked_from_its_alert(
    gateway: _Gateway,
) -> None:
    await gateway.publish(f"ce/c1/b1/{SOS}/a4:c1:38:0f:2e:91", b'{"action": "emergency"}')
    (alert,) = (await gateway.client.get("/v1/alerts")).json()["items"]
    assert alert["device_id"] == "a4:c1:38:0f:2e:91"
    form = await gateway.client.get("/console/sign-in")
    match = _SIGNIN_CSRF.search(form.text)
    assert match is not None, form.text
    await gateway.client.post(
        "/console/sign-in", data={"token": TOKEN, "signin_csrf": match.group(1), "next": ""}
    )
    page = await gateway.client.get(f"/console/alerts/{alert['id']}")
    assert page.status_code == 200, page.text[:300]
    link = re.search(r'href="(/console/devices/[^"]+)" id="device-link"', page.text)
    assert link is not None  # a ':' in a device id is a MAC address, not a place alert
    device = await gateway.client.get(link.group(1))
    assert device.status_code == 200, device.text[:300]
    assert "a4:c1:38:0f:2e:91" in device.text


async def test_a_household_with_a_bad_device_id_is_a_422_naming_the_field(
    gateway: _Gateway,
) -> None:
    body: dict[str, Any] = {
        "community": "c1",
        "building": "b1",
        "unit": "1-101",
        "device_ids": ["sos-1", "sos 2"],
    }
    response = await gateway.client.post("/v1/households", json=body)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert message.startswith("body.device_ids.1: Value error, not an identifier: character ' '")
    unit = await gateway.client.post(
        "/v1/households", json={**body, "device_ids": [], "unit": "1单元"}
    )
    assert unit.status_code == 422, unit.text
    assert unit.json()["error"]["message"].startswith("body.unit: Value error, not an identifier")
    assert gateway.agent.households.count() == 0


async def test_a_household_import_names_the_line_of_a_bad_device_not_its_value(
    gateway: _Gateway,
) -> None:
    text = (
        "小区,楼栋,楼层,房号,独居,照护等级,居民,家属,设备\n"
        "c1,b1,1,1-101,否,自理,,,sos-1\n"
        "c1,b1,1,1-102,否,自理,,,张桂英家\n"  # a name where a device id goes
    )
    response = await gateway.client.post(
        "/v1/households/import?community=c1", content=text.encode()
    )
    assert response.status_code == 422, response.text
    (problem,) = response.json()["error"]["details"]
    assert (int(problem["line"]), problem["column"]) == (3, "设备.0")
    assert "not an identifier" in problem["problem"]
    assert "张桂英家" not in response.text
    assert gateway.agent.households.count() == 0


async def test_a_household_stored_before_the_rule_still_loads_and_can_be_marked_away(
    gateway: _Gateway,
) -> None:
    valid = Household(community="c1", building="b1", unit="1-101", device_ids=("sos-1",))
    # as an older release stored it: a device id outside the rule (model_copy does not validate)
    older = valid.model_copy(update={"device_ids": ("sos 1",)})
    gateway.agent.households.put(older, gateway.clock.now())

    listed = await gateway.client.get("/v1/households")
    assert listed.status_code == 200, listed.text
    assert [h["device_ids"] for h in listed.json()["items"]] == [["sos 1"]]
    until = (gateway.clock.now() + timedelta(days=3)).isoformat()
    away = await gateway.client.put(
        "/v1/households/c1/b1/1-101/away", json={"away": True, "until": until}
    )
    assert away.status_code == 200, away.text
    # a new write of it is checked: the register's keeper fixes the id
    stored = (await gateway.client.get("/v1/households/c1/b1/1-101")).json()
    body = {k: stored[k] for k in ("community", "building", "unit", "device_ids", "revision")}
    again = await gateway.client.put("/v1/households/c1/b1/1-101", json=body)
    assert again.status_code == 422, again.text
    assert again.json()["error"]["message"].startswith("body.device_ids.0: Value error, not an")


# -- the registry -----------------------------------------------------------------------------


def test_a_registry_csv_names_the_file_line_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(
        "device_id,model,community,building,unit\n"
        f"sos-1,{SOS},c1,b1,1-101\n"
        f"{'x' * 65},{SOS},c1,b1,\n"
        f"sos-3,{SOS},c1,3号楼,\n"
    )
    with pytest.raises(RegistryError) as refused:
        DeviceRegistry.from_file(path, PROFILES)
    message = str(refused.value)
    assert (
        f"{path}:3: device #2: device_id: Value error, not an identifier: 65 characters" in message
    )
    assert (
        f"{path}:4: device #3: building: Value error, not an identifier: character '号'" in message
    )


def test_a_registry_yaml_names_the_device_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "devices.yaml"
    path.write_text(
        f"devices:\n  - {{device_id: sos-1, model: {SOS}, community: c1, building: b1}}\n"
        f"  - {{device_id: 'sos\"1', model: {SOS}, community: c1, building: b1}}\n"
    )
    with pytest.raises(RegistryError) as refused:
        DeviceRegistry.from_file(path, PROFILES)
    assert str(refused.value).startswith(f"{path}:3: device #2: device_id: Value error, not an")


def test_a_registry_yaml_names_the_line_of_the_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "devices.yaml"
    path.write_text(
        f"- device_id: sos-1\n  model: {SOS}\n  community: c1\n  building: b1\n"
        f"- device_id: sos-2\n  model: {SOS}\n  community: c1\n  building: b1\n"
        "  unit: 1单元101\n"
        f"- device_id: sos-3\n  model: toaster\n  community: c1\n  building: b1\n"
    )
    with pytest.raises(RegistryError) as refused:
        DeviceRegistry.from_file(path, PROFILES)
    lines = str(refused.value).splitlines()
    assert lines[0] == f"{path}: 2 bad rows:"
    assert lines[1].startswith(f"{path}:9: device #2: unit: Value error, not an identifier")
    assert lines[2].startswith(f"{path}:10: device #3: unknown model 'toaster'")


# -- numbers from YAML are finite -------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "key"),
    [
        ("maximum: 100}", "maximum: .nan}", "maximum"),
        ("percent, minimum: 0,", "percent, minimum: -.inf,", "minimum"),
        ("unit: percent,", "unit: percent, scale: .nan,", "scale"),
        ("when: {field: battery, lt: 20}", "when: {field: battery, lt: .nan}", "lt"),
    ],
)
def test_a_profile_with_a_non_finite_number_is_refused_naming_file_and_key(
    tmp_path: Path, before: str, after: str, key: str
) -> None:
    source = (default_profile_dir() / f"{SOS}.yaml").read_text()
    assert source.count(before) == 1
    (tmp_path / f"{SOS}.yaml").write_text(source.replace(before, after))
    with pytest.raises(ProfileError) as refused:
        ProfileRegistry.load(tmp_path)
    message = str(refused.value)
    assert message.startswith(str(tmp_path / f"{SOS}.yaml"))
    assert re.search(rf"\b{key}: Input should be a finite number", message), message


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("when: {field: temperature, ge: 57}", "when: {field: temperature, ge: .nan}"),
        (
            'window: {from: "07:00", to: "22:00"}',
            'window: {from: "07:00", to: "22:00"}\n    quiet_hours: .inf',
        ),
    ],
)
def test_a_rules_file_with_a_non_finite_number_is_refused(
    tmp_path: Path, before: str, after: str
) -> None:
    source = default_rules_file().read_text()
    assert source.count(before) == 1
    path = tmp_path / "rules.yaml"
    path.write_text(source.replace(before, after))
    with pytest.raises(RuleError) as refused:
        load_rules_file(path, PROFILES)
    assert "finite number" in str(refused.value)


def test_an_override_that_would_never_fire_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("overrides:\n  - {rule: low-battery, for_seconds: .inf}\n")
    with pytest.raises(RuleError) as refused:
        load_rules_file(path, PROFILES)
    assert "for_seconds: Input should be a finite number" in str(refused.value)


# -- through the real broker ------------------------------------------------------------------


def test_bad_ids_through_the_broker_are_dead_letters_and_the_sos_behind_them_is_raised(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    community = "ids-e2e"
    base = f"ce/{community}/b1/{SOS}"
    press = b'{"action": "emergency", "battery": 80}'
    bad = [
        f"{base}/sos 1",
        f"{base}/sos,device_id=forged",
        f'{base}/sos"1',
        f"{base}/<b>sos",
        f"{base}/{'x' * 300}",
        f"ce/{community}/3号楼/{SOS}/sos-2",
        f"{base}/sos\u202e1",  # mosquitto refuses control characters in a topic, not bidi ones
    ]
    with AgentProcess(tmp_path / "agent", mosquitto.url) as agent:
        publish(mosquitto.url, [*[(t, press) for t in bad] * 20, (f"{base}/sos-1", press)])
        metric = 'community_edge_dead_letters_total{cause="invalid_id"}'
        wait_for(lambda: agent.metrics().get(metric) == 140, what="140 invalid_id dead letters")
        alerts = wait_for(
            lambda: agent.get("/v1/alerts", community=community)["items"], what="the SOS alert"
        )
        assert [(a["rule"], a["device_id"]) for a in alerts] == [("sos", "sos-1")]
        letters = agent.get("/v1/dead-letters", limit=1000)
        assert len(letters) == 140
        assert {d["cause"] for d in letters} == {"invalid_id"}
        assert {d["topic"] for d in letters} == set(bad)
        devices = agent.get("/v1/devices", community=community)["items"]
        assert [d["device_id"] for d in devices] == ["sos-1"]
        assert agent.get("/v1/devices/unregistered") == []
        log = agent.log_path.read_text()
    # logged once per cause and topic, not once per message
    assert log.count("dead letter (invalid_id)") == len(bad)


def test_an_override_for_a_place_outside_the_rule_is_refused_naming_its_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "overrides:\n  - {rule: low-battery, building: b1}\n  - {rule: low-battery, building: 3号楼}\n"
    )
    with pytest.raises(RuleError) as refused:
        load_rules_file(path, PROFILES)
    assert f"{path}:3: overrides.1.building: Value error, not an identifier" in str(refused.value)


def test_simulate_refuses_a_community_the_agent_would_dead_letter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--community", "阳光花园", "--mqtt-url", "mqtt://127.0.0.1:1"])
    assert exited.value.code == 2
    assert "argument --community: '阳光花园' is not an identifier" in capsys.readouterr().err


def test_a_number_that_scales_past_a_float_is_a_dead_letter_not_a_reading(tmp_path: Path) -> None:
    """The one way into a reading (decode) refuses a non-finite value: no outbox row can hold
    one that orjson would write as null and the line protocol could not carry."""
    source = (default_profile_dir() / f"{SOS}.yaml").read_text()
    before = "unit: percent, minimum: 0, maximum: 100}"
    assert source.count(before) == 1
    (tmp_path / f"{SOS}.yaml").write_text(source.replace(before, "unit: percent, scale: 10}"))
    profiles = ProfileRegistry.load(tmp_path)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    raw = RawMessage(f"ce/c1/b1/{SOS}/sos-1", b'{"battery": 1.7e308}', at)
    with pytest.raises(BadPayload) as refused:
        decode(raw, profiles)
    assert refused.value.cause == "out_of_range"
    assert "not a finite number" in refused.value.detail


def test_the_profile_checker_points_an_example_with_a_bad_id_at_its_topic(tmp_path: Path) -> None:
    source = (default_profile_dir() / f"{SOS}.yaml").read_text()
    before = f"topic: ce/c1/b1/{SOS}/sos-1\n"
    assert before in source
    (tmp_path / f"{SOS}.yaml").write_text(
        source.replace(before, f"topic: ce/c1/b1/{SOS}/sos 1\n", 1)
    )
    problems = [str(p) for p in check_profiles(tmp_path).problems]
    assert len(problems) == 1, problems
    assert ".topic: does not decode (invalid_id): device_id 'sos 1' in the topic" in problems[0]
