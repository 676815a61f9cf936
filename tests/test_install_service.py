"""`community-edge install-service`: the unit and the settings file, and the unit checked by systemd."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.service_unit import ServiceLayout, render_config, render_unit
from gateway.settings import MqttSettings, load_settings

_ROOT = Path(__file__).resolve().parents[1]
_EXECUTABLE = Path(sys.prefix) / "bin" / "community-edge"  # the dev venv's, as a wheel's would be
# keys systemd 252 (Debian 12) does not know and ignores: the back-off of systemd 254+
_NEWER_KEYS = {"RestartSteps", "RestartMaxDelaySec"}


def _install(root: Path, *extra: str) -> int:
    return main(["install-service", "--root", str(root), "--executable", str(_EXECUTABLE), *extra])


def test_deploy_files_are_the_rendered_defaults() -> None:
    """deploy/ holds what install-service writes for the default paths, so the two never drift."""
    layout = ServiceLayout()
    url = MqttSettings.model_fields["url"].default
    assert (_ROOT / "deploy" / "community-edge.service").read_text() == render_unit(layout)
    assert (_ROOT / "deploy" / "config.yaml").read_text() == render_config(layout, url)


def test_unit_is_hardened_and_supervised() -> None:
    unit = render_unit(ServiceLayout())
    lines = set(unit.splitlines())
    for line in (
        "Type=notify",
        "WatchdogSec=30",
        "User=community-edge",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/community-edge",
        "StateDirectory=community-edge",
        "Restart=on-failure",
        "StartLimitIntervalSec=0",
        "ExecStart=/opt/community-edge/bin/community-edge run --config "
        "/etc/community-edge/config.yaml",
    ):
        assert line in lines, line
    assert len([line for line in lines if line.startswith("ReadWritePaths=")]) == 1


def test_install_writes_unit_and_config_and_keeps_an_edited_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _install(tmp_path, "--mqtt-url", "mqtt://10.0.0.5:1883") == 0
    unit = tmp_path / "etc/systemd/system/community-edge.service"
    config = tmp_path / "etc/community-edge/config.yaml"
    assert f"ExecStart={_EXECUTABLE} run --config /etc/community-edge/config.yaml" in (
        unit.read_text()
    )
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    settings = load_settings(config)
    assert settings.data_dir == Path("/var/lib/community-edge")
    assert settings.mqtt.url == "mqtt://10.0.0.5:1883"
    assert "systemctl enable --now community-edge" in capsys.readouterr().out

    config.write_text("data_dir: /srv/edge\n")
    assert _install(tmp_path) == 0
    assert config.read_text() == "data_dir: /srv/edge\n"  # the installer's settings are kept
    assert "kept" in capsys.readouterr().out


def test_missing_executable_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["install-service", "--root", str(tmp_path), "--executable", "/nonexistent/ce"])
    assert code == 2
    assert "--executable" in capsys.readouterr().err
    assert not (tmp_path / "etc").exists()


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    """systemd's own checker on the unit as written (Debian's `systemd` package provides it)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    assert _install(tmp_path) == 0
    unit = tmp_path / "etc/systemd/system/community-edge.service"
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    version = int(re.search(r"systemd (\d+)", _version(analyze)).group(1))  # type: ignore[union-attr]
    unknown = set(re.findall(r"Unknown key '(\w+)'", result.stderr))
    assert unknown <= (_NEWER_KEYS if version < 254 else set()), result.stderr
    problems = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not any(f"Unknown key '{key}'" in line for key in _NEWER_KEYS)
    ]
    assert problems == []


def _version(analyze: str) -> str:
    return subprocess.run(
        [analyze, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
