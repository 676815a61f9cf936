"""The device registry: CSV and YAML files, clear errors, identity from the topic only."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry, RegistryFile
from edge.errors import RegistryError, UnknownDevice

PROFILES = ProfileRegistry.load(default_profile_dir())
SOS = PROFILES.get("tuya-sos-button")
SMOKE = PROFILES.get("zigbee-ias-smoke")


def _csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "devices.csv"
    path.write_text("device_id,model,community,building,unit\n" + "\n".join(rows) + "\n")
    return path


def test_a_csv_registry_places_devices_without_trusting_the_topic(tmp_path: Path) -> None:
    registry = DeviceRegistry.from_file(
        _csv(
            tmp_path, "sos-1,tuya-sos-button,garden,b3,1-202", "smk-1,zigbee-ias-smoke,garden,b3,"
        ),
        PROFILES,
    )
    assert len(registry) == 2
    ref = registry.resolve(SOS, "sos-1", {"device_id": "sos-1"})
    assert (ref.community, ref.building, ref.unit, ref.category) == ("garden", "b3", "1-202", "sos")
    assert registry.resolve(SMOKE, "smk-1", {}).unit is None
    with pytest.raises(UnknownDevice, match="not registered"):
        registry.resolve(SOS, "sos-2", {"community": "garden", "building": "b3"})
    with pytest.raises(UnknownDevice, match="registered as 'tuya-sos-button'"):
        registry.resolve(SMOKE, "sos-1", {})
    with pytest.raises(UnknownDevice, match="names 'elsewhere'"):
        registry.resolve(SOS, "sos-1", {"community": "elsewhere"})


def test_a_yaml_registry_with_a_devices_key(tmp_path: Path) -> None:
    path = tmp_path / "devices.yaml"
    path.write_text(
        "devices:\n  - {device_id: s1, model: tuya-sos-button, community: c, building: b}\n"
    )
    assert len(DeviceRegistry.from_file(path, PROFILES)) == 1


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("x1,toaster,c,b,", "device #2: unknown model 'toaster'"),
        ("sos-1,tuya-sos-button,c,b,", "device #2: duplicate device_id 'sos-1'"),
        (
            "bad/id,tuya-sos-button,c,b,",
            "device #2: device_id: Value error, not an identifier: character '/'",
        ),
        ("x2,tuya-sos-button,,b,", "device #2: community: Input should be a valid string"),
    ],
)
def test_a_bad_row_is_refused_naming_file_and_row(tmp_path: Path, row: str, problem: str) -> None:
    path = _csv(tmp_path, "sos-1,tuya-sos-button,c,b,", row)
    with pytest.raises(RegistryError) as caught:
        DeviceRegistry.from_file(path, PROFILES)
    assert str(caught.value).startswith(str(path))
    assert problem in str(caught.value)


def test_open_enrollment_takes_the_place_from_the_topic() -> None:
    registry = DeviceRegistry()
    ref = registry.resolve(SOS, "s1", {"community": "c", "building": "b", "device_id": "s1"})
    assert (ref.community, ref.building) == ("c", "b")
    assert registry.resolve(SOS, "s1", {"community": "c", "building": "b"}) is ref
    with pytest.raises(UnknownDevice, match="names no community"):
        registry.resolve(SOS, "s2", {"device_id": "s2"})


def test_an_unreadable_file_is_a_registry_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        DeviceRegistry.from_file(tmp_path / "missing.csv", PROFILES)


def test_personal_details_stay_in_the_registry_not_in_the_device_ref(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(
        "device_id,model,community,building,unit,install_date,resident_ref,emergency_contacts\n"
        "sos-1,tuya-sos-button,garden,b3,1-202,2026-03-01,R-0042,Li Na:13800138000; Wang:+86 139 0013 9000\n"
        "smk-1,zigbee-ias-smoke,garden,b3,,,,\n"
    )
    registry = DeviceRegistry.from_file(path, PROFILES)

    details = registry.details("sos-1")
    assert details is not None
    assert (str(details.install_date), details.resident_ref) == ("2026-03-01", "R-0042")
    assert [(c.name, c.phone) for c in details.emergency_contacts] == [
        ("Li Na", "13800138000"),
        ("Wang", "+86 139 0013 9000"),
    ]
    assert registry.details("smk-1") is None  # nothing personal: nothing kept
    ref = registry.resolve(SOS, "sos-1", {})
    assert "R-0042" not in repr(ref)
    assert "13800138000" not in repr(ref)


def test_every_bad_row_is_reported_with_its_line(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "sos-1,tuya-sos-button,c,b,",
        "x1,toaster,c,b,",
        "sos-1,tuya-sos-button,c,b,",
        "sos-2,tuya-sos-button,c",
    )
    with pytest.raises(RegistryError) as caught:
        DeviceRegistry.from_file(path, PROFILES)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}: 3 bad rows:"
    assert lines[1].startswith(f"{path}:3: device #2: unknown model 'toaster'")
    assert lines[2] == f"{path}:4: device #3: duplicate device_id 'sos-1' (first as device #1)"
    assert lines[3].startswith(f"{path}:5: device #4: building: Field required")


def test_a_bad_contact_cell_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(
        "device_id,model,community,building,emergency_contacts\ns1,tuya-sos-button,c,b,nobody\n"
    )
    with pytest.raises(RegistryError, match="expected 'name:phone' entries") as caught:
        DeviceRegistry.from_file(path, PROFILES)
    assert "nobody" not in str(caught.value)  # the cell is personal data: never echoed to logs


def test_a_registry_file_reloads_when_it_changes_and_keeps_the_old_one_on_a_bad_edit(
    tmp_path: Path,
) -> None:
    path = _csv(tmp_path, "sos-1,tuya-sos-button,c,b,")
    source = RegistryFile(path, PROFILES)
    assert source.reload() is None  # unchanged

    path.write_text(path.read_text() + "sos-2,tuya-sos-button,c,b,\n")
    reloaded = source.reload()
    assert reloaded is not None
    assert len(reloaded) == 2
    assert source.registry is reloaded

    path.write_text(path.read_text() + "x1,toaster,c,b,\n")
    assert source.reload() is None
    assert source.registry is reloaded  # still in force
    assert source.last_error is not None
    assert "unknown model 'toaster'" in source.last_error
    assert (source.reloads, source.failures) == (1, 1)

    path.unlink()
    assert source.reload() is None
    assert source.last_error is not None
    assert "cannot read" in source.last_error


def test_csv_line_ends_quoted_line_breaks_and_a_missing_last_newline(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_bytes(
        b"device_id,model,community,building,unit,resident_ref\r\n"
        b'sos-1,tuya-sos-button,c,b,1-101,"R-1\r\nsecond line"\r\n'
        b"sos-2,tuya-sos-button,c,b,1-102,\r\n"
        b"x1,toaster,c,b,,"  # no line end at all
    )
    with pytest.raises(RegistryError, match=rf"^{path}:5: device #3: unknown model 'toaster'"):
        DeviceRegistry.from_file(path, PROFILES)
    path.write_bytes(path.read_bytes().replace(b"toaster", b"zigbee-ias-smoke"))
    registry = DeviceRegistry.from_file(path, PROFILES)
    assert [(d.device_id, d.unit) for d in registry.devices()] == [
        ("sos-1", "1-101"),
        ("sos-2", "1-102"),
        ("x1", None),
    ]
    details = registry.details("sos-1")
    assert details is not None
    assert details.resident_ref == "R-1\nsecond line"  # read_text: universal newlines
