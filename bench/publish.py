"""Publishers in several processes: as fast as the broker takes them, or paced at a steady rate.

Each process generates its share of the traffic (payloads from `simulators`) before the start
signal, so the time measured is publishing only, and publishes it through a lean socket publisher
(`bench.wire`) within the broker's receive maximum. A message counts as sent when the broker's
PUBACK arrives (QoS 1).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from bench.traffic import Traffic, messages
from bench.wire import Packet, Publisher, encode

_WINDOW = 1000  # unacknowledged messages per publisher (the broker may ask for fewer)
_TICK_S = 0.005  # pacing: publish what is due every tick
_REPLY_TIMEOUT_S = 300.0


class PublishError(RuntimeError):
    """A publisher process failed or did not answer in time."""


@dataclass(frozen=True)
class PartResult:
    """One process's share: counts and its monotonic start and end (the clock is system-wide)."""

    sent: int
    failed: int
    started: float
    finished: float


@dataclass(frozen=True)
class PublishResult:
    """All processes together: `seconds` from the first publish to the last PUBACK."""

    sent: int
    failed: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def combine(cls, parts: Iterable[PartResult]) -> PublishResult:
        parts = list(parts)
        return cls(
            sent=sum(p.sent for p in parts),
            failed=sum(p.failed for p in parts),
            seconds=max(p.finished for p in parts) - min(p.started for p in parts),
        )


def _burst(publisher: Publisher, packets: list[Packet]) -> PartResult:
    """Publish every packet as fast as the broker's window allows; wait for the last PUBACK."""
    started = time.monotonic()
    done = 0
    while done < len(packets):
        room = publisher.window - publisher.in_flight
        if room <= 0:
            publisher.receive(block=True)
            continue
        publisher.send(packets[done : done + room])
        done += min(room, len(packets) - done)
        publisher.receive(block=False)
    publisher.drain()
    return PartResult(publisher.acked, publisher.refused, started, time.monotonic())


def _paced(
    publisher: Publisher, packets: list[Packet], rate: float, control: Connection
) -> PartResult:
    """Publish at `rate` msgs/s, round the packets again if need be, until told to stop."""
    started = time.monotonic()
    published = 0
    while packets and not control.poll():
        due = int((time.monotonic() - started) * rate)
        while published < due:
            room = min(publisher.window - publisher.in_flight, due - published)
            if room <= 0:
                publisher.receive(block=True)
                continue
            first = published % len(packets)
            batch = packets[first : first + room]
            publisher.send(batch)
            published += len(batch)
        publisher.receive(block=False)
        time.sleep(_TICK_S)
    control.recv()  # the stop command
    publisher.drain()
    return PartResult(publisher.acked, publisher.refused, started, time.monotonic())


def _serve(control: Connection, host: str, port: int, client_id: str) -> None:
    """A publisher process: obeys commands from the pool until told to close."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the pool's to handle
    try:
        control.send(("up", None))
        while True:
            command, *args = control.recv()
            if command == "close":
                return
            traffic, part, parts, rate = args
            packets = [encode(m) for m in messages(traffic, part, parts)]
            publisher = Publisher(host, port, f"{client_id}-{time.monotonic_ns()}", _WINDOW)
            control.send(("ready", len(packets)))
            try:
                control.recv()  # go
                if rate is None:
                    result = _burst(publisher, packets)
                else:
                    result = _paced(publisher, packets, rate, control)
            finally:
                publisher.close()
            control.send(("done", result))
    except (EOFError, BrokenPipeError):
        return  # the pool went away
    except BaseException:
        control.send(("error", traceback.format_exc()))


class PublisherPool:
    """`processes` publisher processes connected to one broker, reused across phases."""

    def __init__(self, host: str, port: int, processes: int) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self._controls: list[Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        try:
            for number in range(processes):
                ours, theirs = context.Pipe()
                process = context.Process(
                    target=_serve,
                    args=(theirs, host, port, f"bench-pub-{os.getpid()}-{number}"),
                    name=f"bench-publisher-{number}",
                    daemon=True,
                )
                process.start()
                theirs.close()
                self._controls.append(ours)
                self._processes.append(process)
            self._collect("up", 60.0)
        except BaseException:
            self.close()
            raise

    @property
    def size(self) -> int:
        return len(self._controls)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.pid is not None]

    def _collect(self, expected: str, timeout: float) -> list[Any]:
        replies = []
        for number, control in enumerate(self._controls):
            if not control.poll(timeout):
                raise PublishError(f"publisher {number} did not answer within {timeout:.0f} s")
            kind, value = control.recv()
            if kind == "error":
                raise PublishError(f"publisher {number} failed:\n{value}")
            if kind != expected:
                raise PublishError(f"publisher {number} answered {kind!r}, not {expected!r}")
            replies.append(value)
        return replies

    def prepare(self, traffic: Traffic, rate: float | None = None) -> int:
        """Each process generates its share of `traffic`; returns the number of messages.

        With `rate` (msgs/s in all), `go()` starts a paced load that runs until `stop()`;
        without, a burst that `finish()` waits for.
        """
        share = None if rate is None else rate / self.size
        for number, control in enumerate(self._controls):
            control.send(("prepare", traffic, number, self.size, share))
        return sum(self._collect("ready", _REPLY_TIMEOUT_S))

    def go(self) -> float:
        """Start publishing what `prepare` generated; returns the monotonic start time."""
        started = time.monotonic()
        for control in self._controls:
            control.send(("go",))
        return started

    def finish(self) -> PublishResult:
        """Wait until every process has its PUBACKs."""
        return PublishResult.combine(self._collect("done", _REPLY_TIMEOUT_S))

    def publish(self, traffic: Traffic) -> PublishResult:
        """Publish the whole traffic as fast as possible and wait for every PUBACK."""
        self.prepare(traffic)
        self.go()
        return self.finish()

    def stop(self) -> PublishResult:
        """End a paced load; wait for its PUBACKs."""
        for control in self._controls:
            control.send(("stop",))
        return self.finish()

    def close(self) -> None:
        """Close every process; terminate what does not exit at once."""
        for control in self._controls:
            with contextlib.suppress(OSError):
                control.send(("close",))
        for process in self._processes:
            process.join(5)
            if process.is_alive():
                process.terminate()
                process.join(5)
        for control in self._controls:
            control.close()
        self._controls.clear()
        self._processes.clear()
