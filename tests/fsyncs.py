"""The fsyncs Python makes (`os.fsync`), noted: which file, and whether on the main thread.
SQLite's own syncs happen in C and are not seen here."""

from __future__ import annotations

import os
import threading

import pytest

Fsync = tuple[str, bool]  # (the file's name, whether the main thread made it)


def note_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[Fsync]:
    """From now on every `os.fsync` is noted in the returned list, then made."""
    noted: list[Fsync] = []
    fsync = os.fsync

    def noting(descriptor: int) -> None:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{descriptor}"))
        noted.append((name, threading.current_thread() is threading.main_thread()))
        fsync(descriptor)

    monkeypatch.setattr(os, "fsync", noting)
    return noted
