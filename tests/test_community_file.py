"""Community files: validation naming the key, the devices they build, the registry CSV they
write, and realistic traffic (heartbeats, routine events, rare alarms) over a whole community."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry
from gateway.cli import main
from simulators.behaviour import ROUTINE_PER_HOUR, Timeline
from simulators.community_file import CommunityFileError, build_from_spec, load_community
from simulators.registry_csv import HEADER
from simulators.sensors import Event
from tests.mqtt_recorder import Recorder
from tests.servers import MosquittoServer

PROFILES = ProfileRegistry.load(default_profile_dir())
EXAMPLE = Path(__file__).resolve().parent.parent / "simulators/communities/sunshine-garden.yaml"
SMALL = """
id: small
devices:
  unit: {tuya-sos-button: 1, zigbee-door-contact: 2}
  floor: {zigbee-ias-smoke: 1}
  building: {hikvision-access-controller: 1}
buildings:
  - {id: b01, floors: 2, units: 4}
  - {id: gate, units: 0, devices: {building: {hikvision-access-controller: 2}}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "community.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_community_file_builds_its_units_floors_and_shared_devices(tmp_path: Path) -> None:
    spec = load_community(_write(tmp_path, SMALL), PROFILES)
    devices = build_from_spec(spec, PROFILES)
    where = {d.device_id: (d.profile.name, d.building, d.unit) for d in devices}
    assert where == {
        "acc-b01": ("hikvision-access-controller", "b01", None),
        "smk-b01-f01": ("zigbee-ias-smoke", "b01", None),
        "smk-b01-f02": ("zigbee-ias-smoke", "b01", None),
        **{f"sos-b01-{u}": ("tuya-sos-button", "b01", u) for u in ("101", "102", "201", "202")},
        **{
            f"dor-b01-{u}-{n}": ("zigbee-door-contact", "b01", u)
            for u in ("101", "102", "201", "202")
            for n in (1, 2)
        },
        "acc-gate-1": ("hikvision-access-controller", "gate", None),
        "acc-gate-2": ("hikvision-access-controller", "gate", None),
    }
    assert {d.community for d in devices} == {"small"}
    for device in devices:
        assert PROFILES.match(device.topic)[0].name == device.profile.name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: x\nbuildings: []\n", "buildings: List should have at least 1 item"),
        ("id: x\nbuilding: []\n", "building: Extra inputs are not permitted"),
        ("id: x\nbuildings: [{id: b1, units: 2, flors: 3}]\n", "buildings.0.flors: Extra inputs"),
        ("id: x\nbuildings: [{id: b1}]\n", "buildings.0.units: Field required"),
        (
            "id: x\nbuildings: [{id: b1, units: -1}]\n",
            "buildings.0.units: Value error, expected a count of units (0 or more) or a list",
        ),
        (
            "id: x\nbuildings: [{id: b/1, units: 1}]\n",
            "buildings.0.id: Value error, not an identifier",
        ),
        ("id: x\nbuildings: [{id: b1, units: [a, a]}]\n", "units named twice: a"),
        (
            "id: x\nbuildings: [{id: b1, units: 1}, {id: b1, units: 1}]\n",
            "building ids used twice: b1",
        ),
        (
            "id: x\ndevices: {unit: {tuya-sos-button: -1}}\nbuildings: [{id: b1, units: 1}]\n",
            "devices.unit.tuya-sos-button: Input should be greater than or equal to 0",
        ),
        (
            "id: x\ndevices: {room: {}}\nbuildings: [{id: b1, units: 1}]\n",
            "devices.room: Extra inputs are not permitted",
        ),
        (
            "id: x\nbuildings: [{id: b1, units: 1, devices: {floor: {acme-gas: 1}}}]\n",
            "buildings.0.devices.floor.acme-gas: unknown device model (known: fall-wearable, ",
        ),
        ("- just a list\n", "expected a mapping at the top level"),
        ("id: [unclosed\n", "not valid YAML"),
    ],
)
def test_community_file_errors_name_the_file_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(CommunityFileError) as error:
        load_community(path, PROFILES)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_registry_csv_is_the_community_and_the_agent_loads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "devices.csv"
    assert main(["simulate", "--community-file", str(EXAMPLE), "--registry-out", str(out)]) == 0
    devices = build_from_spec(load_community(EXAMPLE, PROFILES), PROFILES)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(HEADER) == "device_id,model,community,building,unit"
    assert lines[1:] == [
        f"{d.device_id},{d.profile.name},{d.community},{d.building},{d.unit or ''}" for d in devices
    ]
    assert f"wrote {len(devices)} devices to {out}" in capsys.readouterr().err
    registry = DeviceRegistry.from_file(out, PROFILES)
    assert len(registry) == len(devices) == 2 * (6 + 1 + 24 * 3) + 4 * 4 + 2


def test_realistic_traffic_has_heartbeats_routine_and_rare_alarms() -> None:
    devices = build_from_spec(load_community(EXAMPLE, PROFILES), PROFILES, seed=1)
    day = 24 * 3600.0
    sent: Counter[tuple[str, Event]] = Counter()
    for due in Timeline(devices, seed=1):
        if due.at > day:
            break
        sent[due.device.profile.name, due.event] += 1
    count = Counter(d.profile.name for d in devices)
    # heartbeats: one a heartbeat_seconds per device, within the random first phase
    for model, n in count.items():
        beats = day / (PROFILES.get(model).heartbeat_seconds or 3600) * n
        assert beats - n <= sent[model, Event.REPORT] <= beats + n, model
    # routine: access readers are busy, door contacts less so, smoke detectors not at all
    readers = sent["hikvision-access-controller", Event.ROUTINE]
    assert readers == pytest.approx(24 * ROUTINE_PER_HOUR["access"] * 4, rel=0.15)
    assert sent["zigbee-door-contact", Event.ROUTINE] == pytest.approx(
        24 * ROUTINE_PER_HOUR["door"] * count["zigbee-door-contact"], rel=0.15
    )
    assert sent["zigbee-ias-smoke", Event.ROUTINE] == 0
    # a day of a 176-device estate: no fire, a few held-open gates, maybe a monthly self-test
    assert sent["zigbee-ias-smoke", Event.SMOKE] == 0
    assert sent["hikvision-access-controller", Event.DOOR_HELD_OPEN] <= 5
    boosted = Counter(
        due.event
        for due, _ in zip(Timeline(devices, seed=1, alarm_scale=1000), range(20_000), strict=False)
    )
    assert boosted[Event.SOS] > 0
    assert boosted[Event.SMOKE] > 0


def test_simulate_drives_a_community_file_through_the_broker(
    mosquitto: MosquittoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, SMALL.replace("id: small", "id: file-cli"))
    args = ["--community-file", str(path), "--events", "realistic", "--messages", "200"]
    with Recorder(mosquitto.url, "ce/file-cli/#") as recorder:
        code = main(["simulate", "--mqtt-url", mosquitto.url, *args, "--rate", "800", "--json"])
        received = recorder.wait_for(200)
    assert code == 0
    summary = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["sent"] == summary["messages"] == len(received) == 200
    assert sum(summary["by_event"].values()) == 200
    assert summary["faults"] == {}
    built = {d.topic for d in build_from_spec(load_community(path, PROFILES), PROFILES)}
    assert {topic for topic, _ in received} <= built
    assert "hikvision-access-controller" in summary["by_model"]
