"""The `community-edge` command in-process: exit codes and one clear line for every set-up mistake."""

from __future__ import annotations

import os
import shutil
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.decode import ProfileRegistry, default_profile_dir
from gateway.cli import main
from gateway.settings import ConfigurationError, load_settings
from gateway.wiring import api_token
from tests.servers import free_port, give_back_port

CONFIG_ERROR = "community-edge: configuration error: "


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No settings from the shell; a default ./data lands in the test's own directory; the API
    port is a free one, not the default 8080 (a demo or a gateway on this machine may hold it,
    and `run` checks the port before the files it names)."""
    for name in list(os.environ):
        if name.upper().startswith("COMMUNITY_EDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    port = free_port()
    monkeypatch.setenv("COMMUNITY_EDGE_API__PORT", str(port))
    yield
    give_back_port(port)


def _one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, f"expected one line, got {lines!r}"
    return lines[0]


# -- profiles check ------------------------------------------------------------------------------


def test_profiles_check_lists_the_shipped_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = ProfileRegistry.load(default_profile_dir())

    assert main(["profiles", "check"]) == 0

    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    for name in shipped.names():
        assert any(line.startswith(f"ok  {name} ") for line in lines), name
    assert lines[-1] == f"{len(shipped)} profiles in {default_profile_dir()}: no problems"


def _profiles_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "profiles"
    shutil.copytree(default_profile_dir(), directory)
    return directory


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("category: smoke\n", "category: smoke\ncolour: red\n", "colour"),
        ("severity: critical", "severity: urgent", "rules.0.severity"),
        ("type: bool, required: true", "type: boolean, required: true", "fields.0.type"),
    ],
    ids=["unknown-key", "bad-severity", "bad-field-type"],
)
def test_profiles_check_names_the_broken_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, key: str
) -> None:
    directory = _profiles_copy(tmp_path)
    broken = directory / "zigbee-ias-smoke.yaml"
    text = broken.read_text(encoding="utf-8")
    assert old in text
    edited = text.replace(old, new, 1)
    broken.write_text(edited, encoding="utf-8")
    # the line of the broken key: where its last part is first written from the edit on
    line = 1 + edited[: edited.index(key.rsplit(".", 1)[-1] + ":", text.index(old))].count("\n")

    assert main(["profiles", "check", str(directory)]) == 1

    out, err = capsys.readouterr()
    assert "no problems" not in out
    assert "ok  zigbee-ias-smoke " not in out
    assert "ok  tuya-sos-button " in out  # the other profiles are still checked
    problem, summary = err.splitlines()
    assert problem.startswith(f"{broken}:{line}: {key}: ")
    assert summary == f"1 problem in {directory}"


def test_profiles_check_lists_every_problem_of_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _profiles_copy(tmp_path)
    smoke = directory / "zigbee-ias-smoke.yaml"
    smoke.write_text(
        smoke.read_text(encoding="utf-8")
        .replace("severity: critical", "severity: urgent", 1)
        .replace("type: bool, required: true", "type: boolean, required: true", 1),
        encoding="utf-8",
    )
    water = directory / "nbiot-water-meter.yaml"
    water.write_text(
        water.read_text(encoding="utf-8").replace(
            "water_temperature: 9.0", "water_temperature: 8.0"
        ),
        encoding="utf-8",
    )

    assert main(["profiles", "check", str(directory)]) == 1

    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 2)[1] for line in lines[:-1]] == [
        "examples.0.fields",
        "fields.0.type",
        "rules.0.severity",
    ]
    assert "water_temperature: decodes to 9.0, expected 8.0" in lines[0]
    assert lines[-1] == f"3 problems in {directory}"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("empty", "no *.yaml device profiles found"),
        ("missing", "does not exist"),
        ("not-yaml", "not valid YAML"),
    ],
)
def test_profiles_check_refuses_a_directory_without_valid_profiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, expected: str
) -> None:
    directory = tmp_path / "profiles"
    if setup != "missing":
        directory.mkdir()
    if setup == "not-yaml":
        (directory / "broken.yaml").write_text("name: [unclosed\n", encoding="utf-8")

    assert main(["profiles", "check", str(directory)]) == 1

    assert expected in capsys.readouterr().err


# -- run: set-up mistakes exit 2 with one line ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--mqtt-url", "http://nope"], "mqtt.url"),
        (["--mqtt-url", "mqtt://"], "mqtt.url"),
        (["--profiles-dir", "/nonexistent-profiles"], "/nonexistent-profiles"),
        (["--tsdb-url", "tcp://tsdb.local"], "tsdb.url"),
        (["--api-port", "70000"], "api.port"),
        (["--client-id", "two words"], "mqtt.client_id"),
        (["--config", "{tmp}/missing.yaml"], "missing.yaml: cannot read"),
    ],
)
def test_run_refuses_bad_settings_with_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    argv = ["run", *(a.replace("{tmp}", str(tmp_path)) for a in args)]

    assert main(argv) == 2

    out, err = capsys.readouterr()
    assert out == ""
    line = _one_line(err)
    assert line.startswith(CONFIG_ERROR)
    assert named in line


def test_run_names_the_devices_file_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--devices", "/nonexistent.yaml", "--data-dir", str(tmp_path / "data")])

    assert code == 2
    line = _one_line(capsys.readouterr().err)
    assert line == f"{CONFIG_ERROR}/nonexistent.yaml: cannot read: No such file or directory"


def test_run_refuses_a_devices_file_with_an_unknown_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = tmp_path / "devices.yaml"
    devices.write_text(
        "- {device_id: d1, model: no-such-model, community: c1, building: b1}\n", encoding="utf-8"
    )

    assert main(["run", "--devices", str(devices), "--data-dir", str(tmp_path / "data")]) == 2

    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"{CONFIG_ERROR}{devices}:1: device #1: ")  # YAML too names its line
    assert "no-such-model" in line


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(
            b"mqtt: [\n",
            id="invalid-yaml",
        ),
        pytest.param(
            "api:\n  host: caf\xe9\n".encode("latin-1"),
            id="not-utf8",
        ),
        pytest.param(b"mqtt:\n  urll: mqtt://x\n", id="unknown-key"),
        pytest.param(b"- a list\n", id="not-a-mapping"),
    ],
)
def test_run_refuses_a_bad_config_file_with_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: bytes
) -> None:
    path = tmp_path / "community-edge.yaml"
    path.write_bytes(config)

    assert main(["run", "--config", str(path)]) == 2

    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"{CONFIG_ERROR}{path}: ")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that this test already listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_run_refuses_a_busy_api_port_with_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], busy_port: int
) -> None:
    code = main(
        [
            "run",
            "--mqtt-url",
            "mqtt://127.0.0.1:1",
            "--api-host",
            "127.0.0.1",
            "--api-port",
            str(busy_port),
            "--api-token",
            "token",
            "--data-dir",
            str(tmp_path / "data"),
        ]
    )

    assert code == 2
    out, err = capsys.readouterr()
    assert out == ""  # never announced as ready
    line = _one_line(err)
    assert line.startswith(CONFIG_ERROR)
    assert f"127.0.0.1:{busy_port}" in line


# -- simulate ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--mqtt-url", "mqtt://127.0.0.1:1", "--devices", "2", "--rate", "1"],
            "cannot connect to MQTT broker at mqtt://127.0.0.1:1",
        ),
        (["--mqtt-url", "http://nope", "--devices", "2", "--rate", "1"], "http://nope"),
        (["--mqtt-url", "mqtt://127.0.0.1:1", "--devices", "0", "--rate", "1"], "devices"),
        (["--mqtt-url", "mqtt://127.0.0.1:1", "--devices", "2", "--rate", "0"], "rate"),
    ],
    ids=["nothing-listens", "not-mqtt", "no-devices", "no-rate"],
)
def test_simulate_fails_clearly_with_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    assert main(["simulate", *args, "--duration", "1"]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    line = _one_line(err)
    assert line.startswith("community-edge simulate: ")
    assert expected in line


# -- the API token -------------------------------------------------------------------------------


def test_api_token_is_created_once_owner_only_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"  # does not exist yet
    settings = load_settings(overrides={"data_dir": data_dir})
    path = data_dir / "api-token"

    token, source = api_token(settings)

    assert len(token) >= 32
    assert source == f"{path} (new)"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8") == token + "\n"
    assert api_token(settings) == (token, str(path))
    assert api_token(load_settings(overrides={"data_dir": data_dir})) == (token, str(path))


def test_api_token_from_settings_wins_and_writes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = load_settings(overrides={"data_dir": data_dir, "api.token": "s3cret"})

    assert api_token(settings) == ("s3cret", "settings")
    assert not (data_dir / "api-token").exists()


def test_api_token_written_by_an_operator_is_used_as_is(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "api-token").write_text("  chosen-by-hand \n", encoding="utf-8")

    token, _ = api_token(load_settings(overrides={"data_dir": data_dir}))

    assert token == "chosen-by-hand"


def test_an_empty_api_token_file_is_a_configuration_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "api-token").write_text("\n", encoding="utf-8")

    with pytest.raises(ConfigurationError, match="api-token"):
        api_token(load_settings(overrides={"data_dir": data_dir}))


# -- help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["demo", "run"])
def test_demo_and_run_describe_themselves_and_every_option(command: str) -> None:
    """A new user reads `--help` first (trial #7): a description, and help for every option."""
    import argparse

    from gateway.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub = commands.choices[command]
    assert sub.description, f"{command} has no description"
    silent = [
        a.option_strings[0]
        for a in sub._actions
        if a.option_strings and a.help is None and a.dest != "help"
    ]
    assert silent == [], f"{command} options without help: {silent}"
    text = sub.format_help()
    if command == "run":
        assert "mqtts://" in text
        assert "USER:PASSWORD@" in text
    else:
        assert "default 20.0" in text
