"""The data dir on its disk: bytes per store, the filesystem's free space, and when to warn.

A gateway has a small disk (often 8-32 GB of eMMC) and runs for years; /metrics shows what each
store takes and /healthz says `degraded` with a warning before the filesystem is full, while
there is still room to act (retention shorter, a larger disk, readings to a remote store).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DiskUsage:
    """One look at the data dir and its filesystem."""

    stores: dict[str, int]  # file name (a store with its -wal and -shm) -> bytes
    free_bytes: int  # available to this (unprivileged) process
    total_bytes: int

    @property
    def data_bytes(self) -> int:
        return sum(self.stores.values())

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes else 0.0


class DiskWatch:
    """Measures the data dir; `warning()` is None until free space is below either threshold."""

    def __init__(self, data_dir: Path, *, warn_free_percent: float, warn_free_mb: int) -> None:
        self.data_dir = data_dir
        self.warn_free_percent = warn_free_percent
        self.warn_free_bytes = warn_free_mb * 1024 * 1024

    def usage(self) -> DiskUsage:
        """Bytes of every file under the data dir, grouped by store; a few stat calls."""
        stores: dict[str, int] = {}
        for path in self.data_dir.rglob("*"):
            try:
                if not path.is_file():
                    continue
                size = path.stat().st_size
            except OSError:  # removed while we looked (a WAL checkpointed away)
                continue
            relative = path.relative_to(self.data_dir)
            # a restore's replaced files count as one: they are the operator's to remove
            name = relative.parts[0] if len(relative.parts) > 1 else relative.name
            name = name.removesuffix("-wal").removesuffix("-shm")
            stores[name] = stores.get(name, 0) + size
        fs = os.statvfs(self.data_dir)
        return DiskUsage(
            stores=stores,
            free_bytes=fs.f_bavail * fs.f_frsize,
            total_bytes=fs.f_blocks * fs.f_frsize,
        )

    def warning(self, usage: DiskUsage) -> str | None:
        """What /healthz says when the disk is filling up; None while there is room."""
        low_percent = usage.free_percent < self.warn_free_percent
        if not low_percent and usage.free_bytes >= self.warn_free_bytes:
            return None
        return (
            f"disk nearly full: {usage.free_bytes / 1024**2:.0f} MB ({usage.free_percent:.1f} %) "
            f"free on the data dir's filesystem (warning below {self.warn_free_percent:g} % or "
            f"{self.warn_free_bytes // 1024**2} MB); the data dir holds "
            f"{usage.data_bytes / 1024**2:.0f} MB"
        )
