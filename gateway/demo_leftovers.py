"""What a killed `community-edge demo` leaves behind, cleared at the next start.

A demo stopped by a signal removes its temporary directories and stops its broker; one killed
outright (SIGKILL, a closed terminal's lost session) cannot. Each temporary directory it makes
holds an owner file with the demo's pid; the next demo removes the directories whose owner is gone,
and stops the broker it finds started from such a directory (its command line names the
directory's config file). A directory without an owner file, of another user, or whose owner
still runs is left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
from pathlib import Path

_log = logging.getLogger(__name__)

OWNER = "demo-owner.pid"
PREFIX = "community-edge-demo-"


def claim(directory: Path) -> None:
    """Mark `directory` as this process's, so a later demo knows when it is left over."""
    (directory / OWNER).write_text(f"{os.getpid()}\n", encoding="ascii")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _owner(directory: Path) -> int | None:
    try:
        text = (directory / OWNER).read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _stop_broker(directory: Path) -> None:
    """SIGTERM a mosquitto whose command line names this directory's config (its orphan)."""
    config = str(directory / "mosquitto.conf")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if config.encode() in words and any(b"mosquitto" in w for w in words[:1]):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGTERM)
                _log.info("stopped the broker (pid %s) a killed demo left running", entry.name)


def clean_stale(root: Path | None = None) -> list[Path]:
    """Remove the temporary directories of demos that are no longer running; returns them."""
    root = root or Path(tempfile.gettempdir())
    removed: list[Path] = []
    for directory in root.glob(f"{PREFIX}*"):
        try:
            if not directory.is_dir() or directory.is_symlink():
                continue
            if directory.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        pid = _owner(directory)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        _stop_broker(directory)
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    if removed:
        _log.warning(
            "removed %d temporary directories of demos that were killed: %s",
            len(removed),
            ", ".join(str(p) for p in removed),
        )
    return removed
