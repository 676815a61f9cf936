"""Enrich: the device registry (where each device is, who to call), liveness, and the log of
unregistered devices and unknown topics.
"""

from edge.enrich.liveness import DeviceHealth, DeviceState, Status, offline_rule
from edge.enrich.registry import Contact, DeviceDetails, DeviceRegistry, RegistryFile
from edge.enrich.unregistered import Unregistered, UnregisteredLog

__all__ = [
    "Contact",
    "DeviceDetails",
    "DeviceHealth",
    "DeviceRegistry",
    "DeviceState",
    "RegistryFile",
    "Status",
    "Unregistered",
    "UnregisteredLog",
    "offline_rule",
]
