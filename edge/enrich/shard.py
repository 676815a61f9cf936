"""Shards: which slice of the buildings one ingest process (or one gateway) owns.

A building belongs to shard `stable_hash(community/building) % count`, so every reading of a
device is handled, in order, by one process, and a building's correlation state (two smoke
detectors, a household's inactivity) lives in one place. The rule is the same on every gateway
and every run: two gateways on one broker split a community by it (`shard.index` / `shard.count`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from edge.decode import ProfileRegistry
from edge.enrich.registry import DeviceDetails, DeviceRegistry
from edge.errors import UnknownTopic
from edge.model import DeviceRef

# topics remembered with their answer: one per device and message kind, so a dict lookup decides
# nearly every message (about 150 bytes each: 200,000 topics are 30 MB; then it starts again)
_TOPIC_CACHE_MAX = 200_000


def place_hash(community: str, building: str) -> int:
    """A hash of a building that is the same in every process and Python version
    (the builtin `hash` of a string is salted per process)."""
    digest = hashlib.blake2b(f"{community}/{building}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`; `Shard(0, 1)` owns everything."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count}: need 0 <= index < count")

    @property
    def whole(self) -> bool:
        return self.count == 1

    def owner(self, community: str, building: str) -> int:
        """The shard index that owns this building."""
        return place_hash(community, building) % self.count

    def owns(self, community: str, building: str) -> bool:
        return self.whole or self.owner(community, building) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class ShardFilter:
    """Says, from the topic alone (before any payload is parsed), whether this shard owns a
    message. Every message has exactly one owner among the shards:

    - the topic names community and building (every shipped profile): that building's shard;
    - it names only the device: the registered device's building, else a hash of the device id;
    - no profile claims it: a hash of the topic (its dead letter is recorded once, by one shard).
    """

    def __init__(
        self, shard: Shard, profiles: ProfileRegistry, registry: Callable[[], DeviceRegistry]
    ) -> None:
        """`registry`: the gateway's whole current registry (it is swapped on reload)."""
        self.shard = shard
        self._profiles = profiles
        self._registry = registry
        self._topics: dict[str, bool] = {}
        self.dropped = 0  # messages another shard owns, acknowledged and left to it

    def owns_topic(self, topic: str) -> bool:
        owned = self._topics.get(topic)
        if owned is None:
            if len(self._topics) >= _TOPIC_CACHE_MAX:
                self._topics.clear()
            owned = self._topics[topic] = self._decide(topic)
        if not owned:
            self.dropped += 1
        return owned

    def forget(self) -> None:
        """Decide every topic again (the registry changed: a device may have moved building)."""
        self._topics.clear()

    def _decide(self, topic: str) -> bool:
        if self.shard.whole:
            return True
        try:
            _, values = self._profiles.match(topic)
        except UnknownTopic:
            return self._owns_key("topic", topic)
        community = values.get("community")
        building = values.get("building")
        if community is None or building is None:
            ref = self._registry().find(values["device_id"])
            if ref is None:
                return self._owns_key("device", values["device_id"])
            community, building = ref.community, ref.building
        return self.shard.owns(community, building)

    def _owns_key(self, kind: str, key: str) -> bool:
        return self.shard.owns(f"({kind})", key)


def owned_registry(registry: DeviceRegistry, shard: Shard) -> DeviceRegistry:
    """The devices of `shard`'s buildings, re-numbered from slot 0: liveness and absence rules
    watch only these, so a shard never reports silent a device another shard hears."""
    if shard.whole or registry.open_enrollment:
        return registry  # open enrollment: a shard enrolls only the devices its filter lets by
    devices: dict[str, DeviceRef] = {}
    details: dict[str, DeviceDetails] = {}
    for ref in registry.devices():
        if shard.owns(ref.community, ref.building):
            devices[ref.device_id] = dataclasses.replace(ref, slot=len(devices))
            found = registry.details(ref.device_id)
            if found is not None:
                details[ref.device_id] = found
    return DeviceRegistry(devices, details)
