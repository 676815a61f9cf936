"""Checkpoints run on a thread of their own: commits reach the database file without a commit
paying for it, and the writer's own checkpoint is only a backstop."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from edge.checkpointer import BACKSTOP_PAGES, Checkpointer
from edge.database import open_database
from tests.waiting import wait_until

SCHEMA = "CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL);"


def _rows_in_the_file_alone(path: Path, copy: Path) -> int:
    """Rows the database file holds by itself, without its write-ahead log."""
    shutil.copyfile(path, copy)
    try:
        with closing(sqlite3.connect(copy)) as conn:
            return int(conn.execute("SELECT count(*) FROM rows").fetchone()[0])
    except sqlite3.DatabaseError:  # copied mid-checkpoint: not yet
        return -1


def test_commits_reach_the_database_file_on_the_checkpointer_s_thread(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = open_database(path, SCHEMA, check_same_thread=False)
    checkpointer = Checkpointer(path, writer, every_s=0.05)
    try:
        assert writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
        # 1,500 pages: past SQLite's default mark (1,000), where a commit would checkpoint
        for _ in range(1500):
            with writer:
                writer.execute("INSERT INTO rows (body) VALUES (?)", (bytes(3000),))
            checkpointer.committed()
        wait_until(
            lambda: _rows_in_the_file_alone(path, tmp_path / "copy.db") == 1500,
            timeout=20,
            what="every committed row in the database file itself",
        )
        assert checkpointer.checkpoints >= 1
        assert checkpointer.failures == 0
    finally:
        checkpointer.close()
        writer.close()


def test_a_closed_checkpointer_leaves_a_file_sqlite_reads_whole(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer = open_database(path, SCHEMA, check_same_thread=False)
    checkpointer = Checkpointer(path, writer, every_s=0.05)
    with writer:
        writer.executemany("INSERT INTO rows (body) VALUES (?)", [(b"x",)] * 10)
    checkpointer.committed()
    checkpointer.close()
    writer.close()
    with closing(open_database(path, SCHEMA)) as reopened:
        assert reopened.execute("SELECT count(*) FROM rows").fetchone()[0] == 10
