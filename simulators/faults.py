"""Faults injected into simulated traffic at a chosen rate, reproducible by seed, counted exactly.

A faulty message is what real fleets send: the same message twice (QoS 1 redelivery, a retrying
gateway), a message held back behind a later one, a device clock gone wrong, garbage, a payload cut
short by a flaky link, a firmware dumping its diagnostics into one message.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import orjson

from edge.decode import DeviceProfile
from simulators.sensors import Message

_log = logging.getLogger(__name__)

# Above the agent's 64 KiB payload limit (MAX_PAYLOAD_BYTES in edge/decode.py) with room to spare.
# Our own number, not an import: the simulator is an outside client and must not lean on the agent.
OVERSIZED_BYTES = 65 * 1024
_FAR_FUTURE = timedelta(days=3650)  # a device whose clock was never set jumps a decade ahead
_HOUR = timedelta(hours=1)  # a device that missed the switch to / from daylight saving time


class FaultKind(StrEnum):
    """What goes wrong with one message."""

    DUPLICATE = "duplicate"  # published twice: the second copy carries the fault
    OUT_OF_ORDER = "out_of_order"  # held back, published after the next message
    SKEWED_TIME = "skewed_time"  # device time 0, seconds for ms, far future, an hour behind
    MALFORMED = "malformed"  # not JSON, or a field of the wrong JSON type
    TRUNCATED = "truncated"  # cut short: never valid JSON
    OVERSIZED = "oversized"  # over OVERSIZED_BYTES, still valid JSON


SKEWS = ("zero", "seconds_for_ms", "far_future", "hour_behind")


def parse_kinds(text: str) -> list[FaultKind]:
    """`duplicate,truncated` -> the kinds; ValueError naming an unknown one and the known ones."""
    kinds: list[FaultKind] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            kind = FaultKind(item)
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            raise ValueError(f"unknown fault kind {item!r} (known: {known})") from None
        if kind not in kinds:
            kinds.append(kind)
    if not kinds:
        raise ValueError("no fault kinds given")
    return kinds


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One publish: the message and the fault it carries, if any."""

    message: Message
    fault: FaultKind | None


class FaultInjector:
    """Turns each message into what is published: itself, faulty, twice, or held for later.

    `counts` says how many publishes carried each fault; an out-of-order message counts when it
    goes out after a later one (one still held when the run ends goes out plain).
    """

    def __init__(
        self, rate: float, kinds: Iterable[FaultKind] = tuple(FaultKind), *, seed: int = 0
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, got {rate}")
        self.rate = rate
        self.kinds = tuple(dict.fromkeys(kinds))
        if not self.kinds:
            raise ValueError("no fault kinds given")
        self.counts: dict[FaultKind, int] = dict.fromkeys(self.kinds, 0)
        self._rng = random.Random(f"faults:{seed}")
        self._held: Message | None = None

    def apply(self, message: Message, profile: DeviceProfile) -> list[Outgoing]:
        """What to publish now for `message` (sent by a device of `profile`), in order."""
        out: list[Outgoing] = []
        if self._rng.random() < self.rate:
            kind = self._choose(message, profile)
            if kind is FaultKind.OUT_OF_ORDER:
                self._held = message
                return []
            if kind is FaultKind.DUPLICATE:
                out = [Outgoing(message, None), Outgoing(message, kind)]
            elif kind is not None:
                out = [Outgoing(self._damage(message, profile, kind), kind)]
        if not out:
            out = [Outgoing(message, None)]
        if self._held is not None:
            out.append(Outgoing(self._held, FaultKind.OUT_OF_ORDER))
            self._held = None
        for item in out:
            if item.fault is not None:
                self.counts[item.fault] += 1
        return out

    def flush(self) -> list[Outgoing]:
        """The message still held back, if any: it goes out plain, no later one came."""
        held, self._held = self._held, None
        return [] if held is None else [Outgoing(held, None)]

    def summary(self) -> dict[str, int]:
        return {kind.value: count for kind, count in self.counts.items()}

    def _choose(self, message: Message, profile: DeviceProfile) -> FaultKind | None:
        eligible = [
            kind
            for kind in self.kinds
            if not (kind is FaultKind.OUT_OF_ORDER and self._held is not None)
            and not (kind is FaultKind.SKEWED_TIME and _stamp(message, profile) is None)
            and not (kind is FaultKind.TRUNCATED and len(message.payload) < 2)
        ]
        return self._rng.choice(eligible) if eligible else None

    def _damage(self, message: Message, profile: DeviceProfile, kind: FaultKind) -> Message:
        rng = self._rng
        if kind is FaultKind.TRUNCATED:
            # a proper prefix of a JSON object never closes it, so it is never valid JSON
            payload = message.payload[: rng.randrange(1, len(message.payload))]
        elif kind is FaultKind.OVERSIZED:
            document = orjson.loads(message.payload)
            document["diagnostics"] = "0" * OVERSIZED_BYTES  # a firmware dumping its log
            payload = orjson.dumps(document)
        elif kind is FaultKind.SKEWED_TIME:
            payload = _skew(message, profile, rng.choice(SKEWS))
        else:
            payload = _malform(message, profile, rng)
        return dataclasses.replace(message, payload=payload)


def _stamp(message: Message, profile: DeviceProfile) -> tuple[dict[str, Any], float] | None:
    """The parsed document and its device time (epoch seconds), when it carries one."""
    spec = profile.timestamp
    if spec is None:
        return None
    document = orjson.loads(message.payload)
    value = _get(document, spec.path)
    if spec.format == "iso8601":
        if not isinstance(value, str):
            return None
        return document, datetime.fromisoformat(value).timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    seconds = value if spec.format == "epoch_s" or value < 1e11 else value / 1000
    return document, float(seconds)


def _skew(message: Message, profile: DeviceProfile, skew: str) -> bytes:
    found = _stamp(message, profile)
    spec = profile.timestamp
    assert found is not None
    assert spec is not None
    document, at = found
    moment = datetime.fromtimestamp(at, UTC)
    wrong: Any
    if skew == "seconds_for_ms":
        # seconds where ms are expected; ms where seconds are; a bare number for an ISO field
        wrong = int(at * 1000) if spec.format == "epoch_s" else int(at)
    else:
        if skew == "zero":
            moment = datetime.fromtimestamp(0, UTC)
        elif skew == "far_future":
            moment += _FAR_FUTURE
        else:
            moment -= _HOUR
        if spec.format == "iso8601":
            tz = _offset(_get(document, spec.path))
            wrong = moment.astimezone(tz).isoformat(timespec="seconds")
        elif spec.format == "epoch_s":
            wrong = int(moment.timestamp())
        else:
            wrong = int(moment.timestamp() * 1000)
    _set(document, spec.path, wrong)
    return orjson.dumps(document)


def _malform(message: Message, profile: DeviceProfile, rng: random.Random) -> bytes:
    document = orjson.loads(message.payload)
    carried = [
        (spec, spec.path)
        for spec in profile.fields
        if spec.path is not None and _get(document, spec.path) not in (None, _MISSING)
    ]  # JSON fields only: a frame field has no path of its own
    if not carried or rng.random() < 0.5:
        # firmware that prints its dict instead of serialising it: single quotes are not JSON
        return message.payload.replace(b'"', b"'")
    spec, path = rng.choice(carried)
    value = _get(document, path)
    wrong: Any = {"bool": str(value).lower(), "str": 12345, "enum": [value]}.get(
        spec.type,
        str(value),  # a number sent as a string
    )
    _set(document, path, wrong)
    return orjson.dumps(document)


def _offset(value: Any) -> timezone:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    offset = parsed.utcoffset() if parsed is not None else None
    return timezone(offset) if offset is not None else UTC


_MISSING = object()


def _get(document: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(document, dict) or part not in document:
            return _MISSING
        document = document[part]
    return document


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = document
    for part in parents:
        node = node[part]
    node[leaf] = value
