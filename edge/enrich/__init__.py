"""Enrich: the device registry (where each device is, who to call), households (who lives there,
their family and care worker, visits), liveness, and the log of unregistered devices and unknown
topics.
"""

from edge.enrich.households import (
    DEFAULT_CALL_AFTER_MINUTES,
    CareLevel,
    CareWorker,
    FamilyContact,
    Household,
    HouseholdStore,
    Resident,
    household_id,
    split_household_id,
)
from edge.enrich.liveness import DeviceHealth, DeviceState, Status, offline_rule
from edge.enrich.registry import Contact, DeviceDetails, DeviceRegistry, RegistryFile
from edge.enrich.shard import Shard, ShardFilter, owned_registry, place_hash
from edge.enrich.unregistered import Unregistered, UnregisteredLog
from edge.enrich.visits import (
    Condition,
    HouseholdVisits,
    Visit,
    VisitSpec,
    VisitStatus,
    VisitStore,
    month_start,
)

__all__ = [
    "DEFAULT_CALL_AFTER_MINUTES",
    "CareLevel",
    "CareWorker",
    "Condition",
    "Contact",
    "DeviceDetails",
    "DeviceHealth",
    "DeviceRegistry",
    "DeviceState",
    "FamilyContact",
    "Household",
    "HouseholdStore",
    "HouseholdVisits",
    "RegistryFile",
    "Resident",
    "Shard",
    "ShardFilter",
    "Status",
    "Unregistered",
    "UnregisteredLog",
    "Visit",
    "VisitSpec",
    "VisitStatus",
    "VisitStore",
    "household_id",
    "month_start",
    "offline_rule",
    "owned_registry",
    "place_hash",
    "split_household_id",
]
