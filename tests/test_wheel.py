"""Install without a clone: the wheel, built by the standard backend, works in a fresh venv.

The test builds the wheel from this tree, installs it with pip into a new venv in a temporary
directory and runs the installed `community-edge` from outside the source tree, so nothing can be
found by accident in the working copy (profiles, rules, migrations, console assets).
"""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from gateway.cli import version

_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this tree (hatchling from the dev group: no network needed for the backend)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(_ROOT),
        ],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("community_edge-*.whl")
    return built


def test_wheel_carries_the_data_files(wheel: Path) -> None:
    """Every non-Python file the package reads at run time is inside the wheel."""
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", "device_profiles", "gateway", "edge", "simulators"],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    missing = [path for path in tracked if Path(_ROOT / path).is_file() and path not in names]
    assert missing == []
    assert "device_profiles/community/default-rules.yaml" in names
    assert "gateway/central/migrations/script.py.mako" in names
    assert not [name for name in names if name.startswith("tests/") or "__pycache__" in name]


def test_fresh_venv_runs_the_installed_command(wheel: Path, tmp_path: Path) -> None:
    """pip installs the wheel into a new venv; `--version` and `profiles check` work from /."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    started = time.monotonic()
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        timeout=900,
    )
    print(
        f"installed {wheel.name} ({wheel.stat().st_size} bytes) in {time.monotonic() - started:.1f} s"
    )
    command = venv / "bin" / "community-edge"
    # from outside the source tree, with nothing of it on the path
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    shown = subprocess.run(
        [str(command), "--version"], cwd="/", env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"community-edge {version()}"
    checked = subprocess.run(
        [str(command), "profiles", "check"],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    shipped = len(list((_ROOT / "device_profiles").glob("*.yaml")))
    installed = str(venv / "lib")
    assert f"{shipped} profiles in {installed}" in checked.stdout
    assert "no problems" in checked.stdout
