"""The systemd notification protocol (sd_notify): READY, WATCHDOG, STOPPING as datagrams.

systemd passes a unix datagram socket in `$NOTIFY_SOCKET` (a path, or `@name` in the abstract
namespace) and, with `WatchdogSec=`, the interval in `$WATCHDOG_USEC`. Each notification is one
datagram of `KEY=VALUE` lines. Without `$NOTIFY_SOCKET` (run by hand, in a container) every call
does nothing, so the agent runs the same under a supervisor or not.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

_log = logging.getLogger(__name__)

WAIT_POLL_S = 0.1  # how often readiness is looked at before READY=1 (cheap: a few attributes)
UNSUPERVISED_TICK_S = 10.0  # the status loop's pace when systemd set no watchdog


class Notifier:
    """Sends notifications to the service manager named by `$NOTIFY_SOCKET`, if any."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # abstract namespace: '@' stands for the leading NUL byte
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_s = _watchdog_interval(env)
        self._socket: socket.socket | None = None
        if self.address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # never block the event loop on a full receive queue: a lost ping is retried next time
            self._socket.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, **fields: str | int) -> bool:
        """Send one datagram (`notify(READY=1, STATUS="...")`); False when it was not sent."""
        if self._socket is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            self._socket.sendto(message.encode(), self.address)
        except OSError as exc:  # systemd gone or its queue full: the watchdog decides, not us
            _log.warning("sd_notify to %r failed: %s", self.address, exc)
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def supervise(self, not_ready: Callable[[], str | None]) -> None:
        """READY=1 once `not_ready()` returns None, then WATCHDOG=1 every half interval.

        Runs as a task of the event loop that does the work: if that loop hangs (a blocking
        call, a deadlock), the pings stop and systemd kills and restarts the service. While not
        ready (the broker unreachable at boot), each tick extends the start timeout, so a broker
        that is down is waited for rather than answered with a restart loop; the reason is the
        unit's STATUS (`systemctl status community-edge`).
        """
        tick = self._tick_s()
        loop = asyncio.get_running_loop()
        told: float | None = None
        while (reason := not_ready()) is not None:
            if told is None or loop.time() - told >= tick:
                told = loop.time()
                self.notify(
                    STATUS=f"waiting: {reason}",
                    EXTEND_TIMEOUT_USEC=int(tick * 4 * 1_000_000),
                    WATCHDOG=1,
                )
            await asyncio.sleep(WAIT_POLL_S)  # READY=1 goes out soon after, not a tick later
        self.notify(READY=1, STATUS="ready: broker sessions and outbox up")
        _log.info("ready (notified the service manager: %s)", self.enabled)
        if self.watchdog_s is None:
            return
        while True:
            await asyncio.sleep(tick)
            self.notify(WATCHDOG=1)

    def _tick_s(self) -> float:
        return UNSUPERVISED_TICK_S if self.watchdog_s is None else self.watchdog_s / 2


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """`$WATCHDOG_USEC` in seconds, when it is meant for this process (`$WATCHDOG_PID`)."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # inherited from a parent that systemd watches, not us
    return int(usec) / 1_000_000
