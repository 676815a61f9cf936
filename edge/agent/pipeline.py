"""The pipeline: decode -> enrich -> rules -> alerts for one message. No network, no disk."""

from __future__ import annotations

import logging
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from edge.alerts import AlertBook
from edge.decode import ProfileRegistry, decode
from edge.enrich import DeviceHealth, DeviceRegistry, UnregisteredLog
from edge.errors import DecodeError, UnknownDevice, UnknownTopic
from edge.model import (
    AlertEvent,
    DeadLetter,
    DeviceRef,
    RawMessage,
    Reading,
    ReadingFlag,
    epoch_ms,
)
from edge.rules import RuleEngine, Verdict

_log = logging.getLogger(__name__)
_MAX_LOGGED_CAUSES = 10_000  # bounded memory for "logged once per cause and topic"
# Fields that state what is true now (Zigbee2MQTT's retained availability), so a retained copy
# of them is current, not stale: handled as usual even when retained.
_STATE_FIELDS = frozenset({"availability"})
# In the per-slot arrays: nothing since start. Sequence numbers are >= 0; a marker is a device
# time in ms (sane: after 1970) or a hash, and CPython's hash() is never -1.
_NONE = -1
_SEQ_MAX = 2**63 - 1  # a counter beyond a signed 64-bit slot is not followed (none is that wide)
_FLAG_MEANING = {
    ReadingFlag.TIME_MISSING: "no device time: the receive time is used",
    ReadingFlag.TIME_ZERO: "device time 0 or negative, an unset clock: the receive time is used",
    ReadingFlag.TIME_UNREADABLE: "device time unreadable: the receive time is used",
    ReadingFlag.TIME_UNIT: "device time in another unit than the profile says (seconds for "
    "milliseconds?): the receive time is used",
    ReadingFlag.TIME_FUTURE: "device time far in the future: the receive time is used",
    ReadingFlag.TIME_PAST: "device time more than 7 days old: the receive time is used",
    ReadingFlag.DEVICE_MISMATCH: "the payload names another device than its topic: the topic's "
    "device is kept",
}


@dataclass(slots=True)
class Output:
    """What one message produced."""

    reading: Reading | None = None
    events: list[AlertEvent] = field(default_factory=list)
    dead_letter: DeadLetter | None = None


class Pipeline:
    """Turns raw messages into readings, alert events and dead letters."""

    def __init__(
        self,
        profiles: ProfileRegistry,
        registry: DeviceRegistry,
        rules: RuleEngine,
        alerts: AlertBook,
        health: DeviceHealth,
        last_sequences: Mapping[str, int] | None = None,
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        """`owns`: whether this shard owns a topic (None: one process owns every message)."""
        self.owns = owns
        self.profiles = profiles
        self.registry = registry
        self.rules = rules
        self.alerts = alerts
        self.health = health
        self.unregistered = UnregisteredLog()
        self.dead_letters_by_cause: Counter[str] = Counter()
        self.readings = 0
        self.sequence_gaps = 0  # messages a device numbered but we never received
        self.sequence_repeats = 0  # a sequence number seen again: device restart, out of order
        # an event a device sent again (same sequence number, same device time): handled once
        self.device_repeats = 0
        self.stale_retained = 0  # retained alarm-lane messages recorded, not raised
        # readings whose device time was replaced, or whose payload named another device
        self.flagged: Counter[ReadingFlag] = Counter()
        # By registry slot, as device liveness: two flat arrays, 16 bytes a device, not dicts of
        # tuples (160 bytes a device: 16 MB of a 100,000-device agent's memory). Each device's
        # last sequence number (for gaps; seeded from the outbox) and, with it, the marker of its
        # last handled event: (sequence number, marker) is the event, the marker its device time
        # in ms or, without one, a hash of its fields. Controllers resend an event until they
        # hear back, right after it.
        self._last_seq = array("q")  # _NONE: none yet
        self._last_marker = array("q")  # _NONE: no event since start (a seeded number only)
        # without a registry, seeds of devices not enrolled yet: taken at their first message
        self._seeded: dict[str, int] = {}
        self._new_seq: dict[str, int] = {}  # changed since the last take_sequences()
        if last_sequences:
            self._seed(last_sequences)
        self._logged: set[tuple[str, str]] = set()
        self._flags_logged: set[tuple[ReadingFlag, str]] = set()  # (flag, model): a few dozen

    def handle(self, raw: RawMessage, retained: bool = False) -> Output:
        """`retained`: the broker sent this from its retained store (alarm lane): a stale alarm,
        published at some unknown earlier time, is recorded as a dead letter, never raised."""
        if self.owns is not None and not self.owns(raw.topic):
            return Output()  # another shard owns it: acknowledged here, nothing made of it
        try:
            decoded = decode(raw, self.profiles)
        except DecodeError as exc:
            if isinstance(exc, UnknownTopic):
                self.unregistered.record(
                    raw.topic, exc.cause, raw.payload, raw.received_at, exc.detail
                )
            return Output(dead_letter=self._dead_letter(raw, exc.cause, exc.detail))
        try:
            device = self.registry.resolve(decoded.profile, decoded.device_id, decoded.topic_values)
        except UnknownDevice as exc:
            self.unregistered.record(
                raw.topic,
                exc.cause,
                raw.payload,
                raw.received_at,
                exc.detail,
                model=decoded.profile.name,
                device_id=decoded.device_id,
            )
            return Output(dead_letter=self._dead_letter(raw, exc.cause, exc.detail))
        if retained and not decoded.fields.keys() <= _STATE_FIELDS:
            self.stale_retained += 1
            detail = (
                "a retained message replayed by the broker on subscribe: published by device "
                f"{decoded.device_id} at an unknown earlier time; recorded, not raised as a new alarm"
            )
            return Output(dead_letter=self._dead_letter(raw, "stale_retained", detail))
        reading = Reading.trusted(  # every part was validated by decode and the registry
            device,
            decoded.fields,
            decoded.at,
            raw.received_at,
            decoded.time_source,
            decoded.seq,
            decoded.flags,
        )
        seq = decoded.seq
        slot = device.slot
        if seq is not None and slot >= 0 and seq <= _SEQ_MAX:  # the registry's refs have slots
            last_seq = self._last_seq
            try:
                last = last_seq[slot]
            except IndexError:  # the first message, or a device enrolled since
                self._grow(slot)
                last_seq = self._last_seq
                last = last_seq[slot]
            marker = (
                epoch_ms(decoded.at)
                if decoded.time_source == "device"
                else hash(tuple(sorted(decoded.fields.items())))
            )
            if last == seq and self._last_marker[slot] == marker:
                # the device sent this event again (it did not hear back): it was stored and
                # counted once, by every rule (windows, counts, confirmations, presses)
                self.device_repeats += 1
                return Output()
            last_seq[slot] = seq
            self._last_marker[slot] = marker
            self._track_sequence(device, last, seq)
        self.readings += 1
        if decoded.flags:
            self._flag(raw.topic, decoded.profile.name, decoded.flags)
        verdicts = self.rules.evaluate(reading)
        change = self.health.seen(device, decoded.fields)
        if change is not None:
            offline = self.health.rule_for(device.model)
            if offline is not None:
                verdicts.append(
                    Verdict(offline, "clear" if change == "online" else "raise", reading)
                )
        events = []
        for verdict in verdicts:
            events.extend(self.alerts.apply_all(verdict))
        return Output(reading=reading, events=events)

    def take_sequences(self) -> dict[str, int]:
        """Each device's last sequence number seen since the previous call (to commit with it)."""
        taken, self._new_seq = self._new_seq, {}
        return taken

    def _seed(self, last_sequences: Mapping[str, int]) -> None:
        """Each device's last sequence number as the outbox kept it, by identity: a gap that
        spans an agent restart is still a gap."""
        if self.registry.open_enrollment:
            self._seeded = dict(last_sequences)
            return
        self._grow(0)
        for device_id, seq in last_sequences.items():
            ref = self.registry.find(device_id)
            if ref is not None and 0 <= ref.slot < len(self._last_seq) and 0 <= seq <= _SEQ_MAX:
                self._last_seq[ref.slot] = seq

    def rebind(self, moves: Iterable[tuple[int, int]], slots: int) -> None:
        """Carry each kept device's repeats and gaps over to a reloaded registry: (old slot, new
        slot) for each, as `DeviceHealth.rebind`."""
        last_seq, last_marker = self._last_seq, self._last_marker
        self._last_seq = array("q", [_NONE]) * slots
        self._last_marker = array("q", [_NONE]) * slots
        for before, after in moves:
            if before >= len(last_seq) or after >= slots:
                continue
            self._last_seq[after] = last_seq[before]
            self._last_marker[after] = last_marker[before]

    def _grow(self, slot: int) -> None:
        missing = slot + 1 - len(self._last_seq)
        # a registry's size at once (the first message), then one enrolled device at a time
        missing = max(missing, self.registry.slots - len(self._last_seq))
        self._last_seq.extend(array("q", [_NONE]) * missing)
        self._last_marker.extend(array("q", [_NONE]) * missing)

    def _track_sequence(self, device: DeviceRef, last: int, seq: int) -> None:
        """`last`: the device's previous sequence number (_NONE: none since start)."""
        # registered ids are unique and their strings already held by the registry; without
        # a registry two communities may reuse an id
        identity = device.key if self.registry.open_enrollment else device.device_id
        self._new_seq[identity] = seq
        if last == _NONE:
            if not self._seeded:
                return
            seeded = self._seeded.pop(identity, None)
            if seeded is None:
                return
            last = seeded
        if seq > last + 1:
            missing = seq - last - 1
            self.sequence_gaps += missing
            _log.warning(
                "device %s skipped %d sequence numbers (%d -> %d): messages lost before the "
                "gateway",
                identity,
                missing,
                last,
                seq,
            )
        elif seq <= last:
            self.sequence_repeats += 1

    def _flag(self, topic: str, model: str, flags: tuple[ReadingFlag, ...]) -> None:
        for flag in flags:
            self.flagged[flag] += 1
            key = (flag, model)
            if key not in self._flags_logged:
                # once per flag and model (a Zigbee2MQTT model without `ts` flags every message);
                # the counter on /metrics and the readings say the rest
                self._flags_logged.add(key)
                # no time at all is the norm for Zigbee2MQTT (`last_seen` is off by default):
                # told, not warned of
                level = logging.INFO if flag is ReadingFlag.TIME_MISSING else logging.WARNING
                _log.log(
                    level,
                    "reading on %s flagged %s (%s); further %s readings of model %s are only "
                    "counted (community_edge_readings_flagged_total)",
                    topic,
                    flag.value,
                    _FLAG_MEANING[flag],
                    flag.value,
                    model,
                )

    def _dead_letter(self, raw: RawMessage, cause: str, detail: str) -> DeadLetter:
        self.dead_letters_by_cause[cause] += 1
        key = (cause, raw.topic)
        if key not in self._logged and len(self._logged) < _MAX_LOGGED_CAUSES:
            self._logged.add(key)
            # the detail names fields and values, never the whole payload (personal data)
            _log.warning("dead letter (%s) on %s: %s", cause, raw.topic, detail)
        return DeadLetter(
            topic=raw.topic,
            payload=raw.payload,
            cause=cause,
            detail=detail,
            received_at=raw.received_at,
        )
