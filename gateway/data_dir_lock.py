"""One agent per data directory: an exclusive `flock` on `DATA_DIR/agent.lock` while it runs.

Two agents on one outbox would acknowledge each other's messages and deliver twice; a restore
under a running agent would swap its files from under it. The kernel drops the lock when the
process dies, SIGKILL included, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Self

LOCK_FILE = "agent.lock"


class DataDirBusy(Exception):
    """Another process holds the data directory (a running agent, a restore)."""


class DataDirLock:
    """Hold `DATA_DIR/agent.lock` exclusively; the file names the holder's pid for the message."""

    def __init__(self, data_dir: Path, holder: str = "agent") -> None:
        self.path = data_dir / LOCK_FILE
        self.holder = holder
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock now or raise DataDirBusy naming who has it."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DataDirBusy(
                f"{self.path.parent} is in use ({owner}); stop it first "
                "(systemctl stop community-edge)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self.holder} pid {os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays, harmless
            self._fd = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
