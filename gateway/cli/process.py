"""What the commands share as a process: logging set up once, and signals that stop them in order."""

from __future__ import annotations

import argparse
import asyncio
import logging
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


def setup_logging(level: str, *, timestamps: bool = True) -> None:
    """Configure logging for this process; called once, by the command that runs."""
    logging.basicConfig(
        level=getattr(logging, level),
        format=_SERVICE_FORMAT if timestamps else _BRIEF_FORMAT,
        stream=sys.stderr,
    )
    for noisy in ("uvicorn", "uvicorn.error", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run `main(stop)`; SIGINT and SIGTERM set `stop` so everything shuts down in order."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())
