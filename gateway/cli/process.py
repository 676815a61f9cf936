"""What the commands share as a process: logging set up once, and signals that stop them in order."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeAlias, get_args

from gateway.settings import Settings

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""Where each command module adds its subparser (`register(commands)`)."""

LOG_LEVELS: list[str] = list(get_args(Settings.model_fields["log_level"].annotation))

_SERVICE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_BRIEF_FORMAT = "%(levelname)s %(name)s: %(message)s"  # short-lived client commands


# journald's priorities (syslog's): what `journalctl -p warning` filters on
_PRIORITIES = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class _JournalFormatter(logging.Formatter):
    """`<priority>LEVEL name: message`: journald stamps the time and reads the `<N>` prefix."""

    def __init__(self) -> None:
        super().__init__(_BRIEF_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_PRIORITIES.get(record.levelno, 6)}>{super().format(record)}"


def to_journal() -> bool:
    """True when stderr is systemd's journal stream (`$JOURNAL_STREAM` is its device:inode)."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):  # stderr closed or not a file
        return False
    # inherited by a child whose stderr was redirected elsewhere: not the journal
    return stat.st_dev == int(device) and stat.st_ino == int(inode)


def setup_logging(level: str, *, timestamps: bool = True) -> None:
    """Configure logging for this process; called once, by the command that runs.

    Under systemd the lines go to the journal without our own timestamps (it adds its own) and
    with their priority, so `journalctl -u community-edge -p warning` shows warnings and worse.
    """
    handler = logging.StreamHandler(sys.stderr)
    if to_journal():
        handler.setFormatter(_JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter(_SERVICE_FORMAT if timestamps else _BRIEF_FORMAT))
    logging.basicConfig(level=getattr(logging, level), handlers=[handler])
    for noisy in ("uvicorn", "uvicorn.error", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _print_tasks() -> None:
    """Every asyncio task and where it waits, to stderr (SIGUSR2): what a stop waits for."""
    out = sys.__stderr__ or sys.stderr
    for task in asyncio.all_tasks():
        print(f"task {task.get_name()}: {task!r}", file=out)
        task.print_stack(file=out)
    out.flush()


def run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run `main(stop)`; SIGINT and SIGTERM set `stop` so everything shuts down in order.

    SIGUSR1 writes every thread's Python stack to stderr (the journal) and goes on, SIGUSR2 every
    asyncio task's: what a process that does not stop, or stalls, is waiting for.
    """
    if sys.__stderr__ is not None:  # fd 2, whatever sys.stderr was replaced with
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR2, _print_tasks)
        await main(stop)

    asyncio.run(runner())
