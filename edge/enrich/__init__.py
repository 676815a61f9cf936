"""Enrich: the device registry (where each device is, who to call), liveness, and the log of
unregistered devices and unknown topics.
"""

from edge.enrich.liveness import DeviceHealth, Status
from edge.enrich.registry import Contact, DeviceRegistry, RegistryFile
from edge.enrich.unregistered import UnregisteredLog

__all__ = [
    "Contact",
    "DeviceHealth",
    "DeviceRegistry",
    "RegistryFile",
    "Status",
    "UnregisteredLog",
]
