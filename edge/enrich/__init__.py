"""Enrich: the device registry (where each device is, who to call), liveness, and the log of
unregistered devices and unknown topics.
"""

from edge.enrich.liveness import DeviceHealth, DeviceState, Status, offline_rule
from edge.enrich.registry import Contact, DeviceDetails, DeviceRegistry, RegistryFile
from edge.enrich.shard import Shard, ShardFilter, owned_registry, place_hash
from edge.enrich.unregistered import Unregistered, UnregisteredLog

__all__ = [
    "Contact",
    "DeviceDetails",
    "DeviceHealth",
    "DeviceRegistry",
    "DeviceState",
    "RegistryFile",
    "Shard",
    "ShardFilter",
    "Status",
    "Unregistered",
    "UnregisteredLog",
    "offline_rule",
    "owned_registry",
    "place_hash",
]
