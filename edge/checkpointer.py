"""Checkpoints off the commit path: a thread with a connection of its own moves the commits in a
SQLite write-ahead log into the database file, so that no commit waits for it.

SQLite checkpoints inside the commit that takes the log past `wal_autocheckpoint` pages (1,000 by
default): that commit copies the pages into the database file and fsyncs it before it returns.
At 500 msgs/s the outbox crossed the mark every 2 s, and the commit that paid (an SOS's as often
as any other) took 5-30 ms instead of 1-2 on this project's test machine: the tail of the SOS
latency. Here a thread of its own checkpoints (PASSIVE: it neither waits for nor blocks the
writer) at most once every `every_s` while anything was committed, and the writer's own
checkpoint stays as a backstop at `BACKSTOP_PAGES`, for a log that grows faster than this thread
empties it.

Durability is SQLite's: the checkpointing connection runs with `synchronous=FULL`, so it syncs
the log before it copies and the database file after, and the writer starts the log afresh only
once every commit in it is in the synced database.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

_log = logging.getLogger(__name__)

BACKSTOP_PAGES = 10_000  # the writer's `wal_autocheckpoint` (40 MB of 4 KB pages)
# the log holds at most this long's commits (~6 MB at 500 msgs/s); each checkpoint writes a page
# changed since the last one once, so a shorter wait writes the busy pages more often (every
# 1 s: +10-15 % bytes written per message at 500 msgs/s)
EVERY_S = 5.0


class Checkpointer:
    """Checkpoints one database's write-ahead log on a thread of its own."""

    def __init__(self, path: Path, writer: sqlite3.Connection, *, every_s: float = EVERY_S) -> None:
        """`writer`: the connection that commits to `path`; its own checkpoints become the
        backstop (`BACKSTOP_PAGES`)."""
        self.path = path
        self.every_s = every_s
        self.checkpoints = 0
        self.failures = 0
        writer.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA synchronous=FULL")  # sync the log before, the file after
        self._due = threading.Event()  # something was committed since the last checkpoint
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, name=f"checkpoint-{path.name}", daemon=True
        )
        self._thread.start()

    def committed(self) -> None:
        """A commit went into the log (cheap: called after every one)."""
        self._due.set()

    def close(self) -> None:
        """Stop the thread; SQLite checkpoints what is left when the writer closes the file."""
        self._stopping.set()
        self._due.set()
        self._thread.join()
        self._conn.close()

    def _serve(self) -> None:
        while True:
            self._due.wait()  # no commits, no wake-ups
            if self._stopping.wait(self.every_s):
                return
            self._due.clear()
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:  # the writer's backstop checkpoints meanwhile
                self.failures += 1
                _log.warning("checkpoint of %s failed: %s", self.path, exc)
            else:
                self.checkpoints += 1
