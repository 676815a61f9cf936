"""Settings: defaults, the YAML file, flags and environment, and one-line errors naming the key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import ConfigurationError, load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the developer's shell must not leak into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("COMMUNITY_EDGE_"):
            monkeypatch.delenv(name)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "community-edge.yaml"
    path.write_text(text, encoding="utf-8")
    return path


FILE = """\
data_dir: /var/lib/community-edge
log_level: WARNING
mqtt:
  url: mqtt://broker.local:1884
  client_id: gw-north
tsdb:
  url: http://tsdb.local:8428/
  bucket: north
api:
  host: 0.0.0.0
  port: 9090
  token: from-the-file
"""


def test_defaults() -> None:
    settings = load_settings()

    assert settings.data_dir == Path("data")
    assert settings.profiles_dir is None
    assert settings.devices_file is None
    assert settings.log_level == "INFO"
    assert settings.mqtt.url == "mqtt://127.0.0.1:1883"
    assert settings.mqtt.client_id.startswith("community-edge-")
    assert settings.tsdb.url is None
    assert settings.api.host == "127.0.0.1"
    assert settings.api.port == 8080
    assert settings.api.token is None


def test_file_values_are_read(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, FILE))

    assert settings.data_dir == Path("/var/lib/community-edge")
    assert settings.log_level == "WARNING"
    assert settings.mqtt.url == "mqtt://broker.local:1884"
    assert settings.mqtt.client_id == "gw-north"
    assert settings.tsdb.url == "http://tsdb.local:8428"  # trailing slash dropped
    assert settings.tsdb.bucket == "north"
    assert settings.tsdb.org == "community-edge"  # not in the file: the default
    assert (settings.api.host, settings.api.port) == ("0.0.0.0", 9090)
    assert settings.api.token is not None
    assert settings.api.token.get_secret_value() == "from-the-file"
    assert "from-the-file" not in repr(settings)


@pytest.mark.parametrize("text", ["", "# nothing set yet\n"])
def test_an_empty_file_means_defaults(tmp_path: Path, text: str) -> None:
    assert load_settings(_config(tmp_path, text)) == load_settings()


def test_flags_beat_the_file(tmp_path: Path) -> None:
    settings = load_settings(
        _config(tmp_path, FILE),
        {
            "mqtt.url": "mqtt://flag.local:1885",
            "api.port": 7070,
            "data_dir": Path("/srv/edge"),
            "mqtt.client_id": None,  # a flag not given leaves the file's value
            "api.token": None,
        },
    )

    assert settings.mqtt.url == "mqtt://flag.local:1885"
    assert settings.api.port == 7070
    assert settings.data_dir == Path("/srv/edge")
    assert settings.mqtt.client_id == "gw-north"
    assert settings.api.host == "0.0.0.0"
    assert settings.api.token is not None
    assert settings.api.token.get_secret_value() == "from-the-file"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMUNITY_EDGE_MQTT__URL", "mqtt://env.local:1886")
    monkeypatch.setenv("COMMUNITY_EDGE_API__PORT", "6060")
    monkeypatch.setenv("COMMUNITY_EDGE_DATA_DIR", "/env/data")

    settings = load_settings()

    assert settings.mqtt.url == "mqtt://env.local:1886"
    assert settings.api.port == 6060
    assert settings.data_dir == Path("/env/data")


def test_the_file_beats_the_environment_key_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMUNITY_EDGE_MQTT__URL", "mqtt://env.local:1886")
    monkeypatch.setenv("COMMUNITY_EDGE_MQTT__RECEIVE_MAXIMUM", "50")

    settings = load_settings(_config(tmp_path, "mqtt:\n  url: mqtt://file.local:1884\n"))

    assert settings.mqtt.url == "mqtt://file.local:1884"
    assert settings.mqtt.receive_maximum == 50  # the file does not set it: the environment does


def test_flags_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMMUNITY_EDGE_MQTT__URL", "mqtt://env.local:1886")

    settings = load_settings(overrides={"mqtt.url": "mqtt://flag.local:1885"})

    assert settings.mqtt.url == "mqtt://flag.local:1885"


def test_an_unknown_key_in_the_file_is_named(tmp_path: Path) -> None:
    path = _config(tmp_path, "mqtt:\n  urll: mqtt://typo.local\napi:\n  port: 9090\n")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "mqtt.urll: unknown setting" in message
    assert "\n" not in message


def test_an_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    path = _config(tmp_path, "log_levle: DEBUG\n")

    with pytest.raises(ConfigurationError, match=r"log_levle: unknown setting"):
        load_settings(path)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("mqtt.url", "http://x"),
        ("mqtt.url", "mqtt://"),
        ("mqtt.url", "mqtt://broker:99999"),
        ("mqtt.url", "mqtt://broker:1883/topic"),
        ("mqtt.client_id", "has spaces"),
        ("mqtt.receive_maximum", 0),
        ("tsdb.url", "ftp://tsdb.local"),
        ("tsdb.url", "http://"),
        ("tsdb.url", "http://tsdb.local:99999"),
        ("api.port", 65536),
        ("api.port", -1),
        ("api.port", "eighty"),
        ("log_level", "LOUD"),
        ("outbox_max_mb", 0),
    ],
)
def test_a_bad_value_is_an_error_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(overrides={key: value})

    message = str(caught.value)
    assert message.startswith(f"{key}: ")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("mqtt:\n  url: http://x\n", "mqtt.url"),
        ("tsdb:\n  url: tcp://tsdb.local\n", "tsdb.url"),
        ("api:\n  port: 70000\n", "api.port"),
    ],
)
def test_a_bad_value_in_the_file_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = _config(tmp_path, text)

    with pytest.raises(ConfigurationError) as caught:
        load_settings(path)

    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_a_bad_environment_value_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COMMUNITY_EDGE_MQTT__URL", "http://x")

    with pytest.raises(ConfigurationError, match=r"^mqtt\.url: "):
        load_settings()


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"

    with pytest.raises(ConfigurationError, match=r"cannot read") as caught:
        load_settings(path)

    assert str(caught.value).startswith(f"{path}: ")


def test_a_directory_is_not_a_settings_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot read") as caught:
        load_settings(tmp_path)

    assert str(caught.value).startswith(f"{tmp_path}: ")


@pytest.mark.parametrize("text", ["mqtt: [\n", "api: {port: 1\n", "a: b: c\n"])
def test_invalid_yaml_is_an_error_naming_the_file(tmp_path: Path, text: str) -> None:
    path = _config(tmp_path, text)

    with pytest.raises(ConfigurationError, match=r"not valid YAML") as caught:
        load_settings(path)

    assert str(caught.value).startswith(f"{path}: ")


def test_invalid_yaml_is_reported_on_one_line(tmp_path: Path) -> None:
    path = _config(tmp_path, "mqtt: [\n")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(path)

    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text", ["- mqtt\n- api\n", "just a string\n", "42\n"])
def test_a_file_that_is_not_a_mapping_is_an_error(tmp_path: Path, text: str) -> None:
    path = _config(tmp_path, text)

    with pytest.raises(ConfigurationError, match=r"expected a mapping"):
        load_settings(path)


def test_a_file_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("api:\n  host: caf\xe9\n".encode("latin-1"))

    with pytest.raises(ConfigurationError, match=r"cannot read"):
        load_settings(path)


def test_a_malformed_nested_environment_variable_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COMMUNITY_EDGE_MQTT", "mqtt://broker.local")

    with pytest.raises(ConfigurationError, match=r"COMMUNITY_EDGE_MQTT|mqtt"):
        load_settings()
