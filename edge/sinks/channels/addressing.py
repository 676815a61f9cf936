"""Whom a channel reaches and the links it gives them: one way for every channel.

An event names the people its escalation step addressed (`AlertEvent.people`: the person on duty,
the next on the roster, a household's family) by id. A channel resolves each id through its
`Directory` to a `Contact` (name, phone, chat ids) and asks its `LinkMaker` for a link signed for
one alert, one action and that person. A step that names a tier only leaves `people` empty: then a
channel that reaches people one by one (SMS, voice) addresses its own `Audience` (the people in
its settings, whoever is on duty in its roster file), again by id, so the per-person rate of the
rules of reach (`PersonRate`) counts every person a channel reaches, whichever way they were named.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from edge.alerts import Roster
from edge.errors import RosterError
from edge.model import Alert, AlertEvent

_log = logging.getLogger(__name__)

LinkVerb = Literal["ack", "onway", "resolve"]
LINK_VERBS: tuple[LinkVerb, ...] = ("ack", "onway", "resolve")


class Contact(Protocol):
    """A person a notification is for (a roster's `edge.alerts.Person`, a household's contact,
    a channel's own `Card`)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def wecom(self) -> str | None: ...
    @property
    def dingtalk(self) -> str | None: ...


class Directory(Protocol):
    """Finds the person behind an id of `AlertEvent.people`; None for an id it does not know."""

    def contact(self, person_id: str) -> Contact | None: ...


class Audience(Protocol):
    """The ids a channel addresses for an event whose step named nobody (a tier step)."""

    def people(self, event: AlertEvent) -> Sequence[str]: ...


class LinkMaker(Protocol):
    """How a channel obtains an action link: one alert, one verb, one person, signed and expiring.

    The gateway implements it (`gateway.notification_links.NotificationLinks`, over
    `gateway.action_links.ActionLinks`; `ShortNotificationLinks` for SMS) and hands it to the
    channels it builds; the edge never signs anything itself.
    """

    def link(self, alert: Alert, verb: LinkVerb, person: Contact) -> str | None:
        """The full URL; None when links are off (no public address)."""
        ...


@dataclass(frozen=True, slots=True)
class Card:
    """A person a channel's settings list (`recipients:`), as a `Contact`."""

    id: str
    name: str
    phone: str | None
    wecom: str | None = None
    dingtalk: str | None = None


class Listed:
    """The same people for every event (a channel's `recipients:`): an `Audience` and the
    `Directory` that knows them."""

    def __init__(self, people: Sequence[Card]) -> None:
        self.cards = {p.id: p for p in people}

    def people(self, event: AlertEvent) -> Sequence[str]:
        return tuple(self.cards)

    def contact(self, person_id: str) -> Contact | None:
        return self.cards.get(person_id)


class OnDutyPeople:
    """Whoever is on duty for the alert's building (its own teams first) at the event's time: an
    `Audience`, and the `Directory` of the roster's people.

    Given the roster's file, it is read again when it changes (its modification time, looked at
    for each event); a changed file that does not load is logged and the previous roster kept.
    """

    def __init__(self, roster: Roster, path: Path | None = None) -> None:
        self.roster = roster
        self.path = path
        self._stamp = _stamp(path)

    def people(self, event: AlertEvent) -> Sequence[str]:
        return tuple(p.id for p in self.on_duty(event.alert.community, event.alert.building,
                                                 event.at))  # fmt: skip

    def on_duty(self, community: str, building: str | None, at: datetime) -> list[Contact]:
        """The people on duty there and then who have a phone, each once."""
        self._reload()
        found: dict[str, Contact] = {}
        for duty in self.roster.on_duty(community, building, at):
            if duty.person.phone:
                found.setdefault(duty.person.id, duty.person)
        return list(found.values())

    def contact(self, person_id: str) -> Contact | None:
        self._reload()
        return self.roster.contact(person_id)

    def _reload(self) -> None:
        if self.path is None:
            return
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self.roster = Roster.load(self.path)
        except RosterError as exc:
            _log.error("roster %s changed but does not load (the previous one stays): %s",
                       self.path, exc)  # fmt: skip
            return
        _log.info("roster %s reloaded", self.path)


class Everyone:
    """Several directories and audiences as one: the first directory that knows an id answers;
    the audiences' people are joined, each once, in order."""

    def __init__(
        self,
        directories: Sequence[Directory],
        audiences: Sequence[Audience] = (),
    ) -> None:
        self.directories = tuple(directories)
        self.audiences = tuple(audiences)

    def contact(self, person_id: str) -> Contact | None:
        for directory in self.directories:
            found = directory.contact(person_id)
            if found is not None:
                return found
        return None

    def people(self, event: AlertEvent) -> Sequence[str]:
        seen: dict[str, None] = {}
        for audience in self.audiences:
            for person in audience.people(event):
                seen.setdefault(person, None)
        return tuple(seen)


def _stamp(path: Path | None) -> tuple[int, int] | None:
    try:
        info = path.stat() if path is not None else None
    except OSError:
        return None
    return None if info is None else (info.st_mtime_ns, info.st_size)
