"""Errors raised by the edge agent core.

EdgeError
├── DecodeError            a message that cannot become a reading (kept as a dead letter)
│   ├── UnknownTopic       no device profile claims the topic
│   ├── UnknownDevice      the registry does not know the device
│   ├── InvalidId          the topic's device id or place name breaks the identifier rule
│   └── BadPayload         not JSON, missing or mistyped fields, unmapped codes
├── ProfileError           a device profile file is invalid (names file and key)
├── RegistryError          a device registry file is invalid
├── RuleError              a rule is invalid
├── RosterError            a duty roster file is invalid (names file and key)
├── HouseholdError         a household record that cannot be stored (conflict, device taken)
│   └── HouseholdNotFound  no household with that id
├── TlsConfigError         the broker TLS files cannot be used (names the file and the problem)
├── StoreVersionError      a store file written by a newer release (refused, left untouched)
├── AlertError
│   ├── AlertNotFound
│   ├── IncidentNotFound
│   ├── SilenceNotFound
│   └── AlertTransitionError  e.g. acknowledging a resolved alert (or silence already expired)
└── SinkError
    ├── SinkUnavailable    the sink could not be reached or answered 5xx: retry
    ├── SinkRejected       the sink refused the batch (4xx): dead-letter, never retry
    └── SinkNameTaken      two sinks given one name (their cursors would be shared): refused at start
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every error the edge core raises on purpose."""


class TlsConfigError(EdgeError):
    """A CA, certificate or key file for the broker connection that cannot be used."""


class StoreVersionError(EdgeError):
    """A SQLite store whose schema version is newer than this release knows."""


class DecodeError(EdgeError):
    """A message that cannot become a reading; `cause` is a short stable label for metrics."""

    cause: str = "decode_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UnknownTopic(DecodeError):
    cause = "unknown_topic"


class UnknownDevice(DecodeError):
    cause = "unknown_device"


class InvalidId(DecodeError):
    """A device id, community, building or unit in a topic that is not an identifier
    (edge.identifier): refused before it reaches a tag, a row, a URL or a log line."""

    cause = "invalid_id"


class BadPayload(DecodeError):
    cause = "bad_payload"

    def __init__(self, detail: str, cause: str = "bad_payload") -> None:
        super().__init__(detail)
        self.cause = cause


class ProfileError(EdgeError):
    """A device profile is invalid."""


class RegistryError(EdgeError):
    """A device registry file is invalid."""


class RuleError(EdgeError):
    """A rule definition is invalid."""


class RosterError(EdgeError):
    """A duty roster file is invalid (names the file and the key)."""


class HouseholdError(EdgeError):
    """A household record that cannot be stored as asked (a conflict, a device already taken)."""


class HouseholdNotFound(HouseholdError):
    """No household with that id."""


class AlertError(EdgeError):
    """Base of alert lifecycle errors."""


class AlertNotFound(AlertError):
    """No alert with that id (or not visible to the caller)."""


class IncidentNotFound(AlertError):
    """No incident with that id."""


class SilenceNotFound(AlertError):
    """No silence with that id."""


class AlertTransitionError(AlertError):
    """The requested transition is not allowed from the alert's current state."""


class SinkError(EdgeError):
    """Base of sink errors.

    Args:
        delivered: ids of the batch's alert events that did reach the sink before it failed (a
            channel that sends a batch as several messages); the rest did not.
    """

    def __init__(self, message: str, delivered: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.delivered = delivered


class SinkUnavailable(SinkError):
    """The sink cannot take the batch now; the outbox keeps it and retries."""


class SinkRejected(SinkError):
    """The sink refused the batch as invalid; retrying cannot help."""


class SinkNameTaken(SinkError):
    """Two sinks given one name; the message names both owners."""
