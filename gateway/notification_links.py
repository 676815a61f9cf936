"""The links a notification carries: `edge.sinks` asks for them through its `LinkMaker` protocol,
and this signs them with the gateway's `ActionLinks`, under its public address.

A link for a life-safety alarm (SOS, fall, smoke) expires in minutes (`life_safety_minutes`): it
is about one night's emergency, and a stale one must not act tomorrow; any other alert's link lives
`other_minutes`. Without a public address there is nowhere a phone could open, so no link at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import quote

from edge.agent import parse_family_person_id
from edge.model import Alert, is_life_safety
from edge.sinks import Contact, LinkVerb
from gateway.action_links import ActionLinks, LinkAction

_ACTION: dict[str, LinkAction] = {a.value: a for a in LinkAction}


class NotificationLinks:
    """`edge.sinks.LinkMaker` over the gateway's action links."""

    def __init__(
        self,
        links: ActionLinks,
        public_url: str | None,
        *,
        now: Callable[[], datetime],
        life_safety_minutes: float,
        other_minutes: float,
    ) -> None:
        self._links = links
        self._base = public_url.rstrip("/") if public_url else None
        self._now = now
        self._life_safety = timedelta(minutes=life_safety_minutes)
        self._other = timedelta(minutes=other_minutes)
        self.issued = 0

    def link(self, alert: Alert, verb: LinkVerb, person: Contact) -> str | None:
        if self._base is None:
            return None
        if verb == "resolve" and parse_family_person_id(person.id) is not None:
            return None  # a relative takes the alarm or comes; closing it is for the staff
        token = self._links.issue(
            alert.id,
            _ACTION[verb],
            person.id,
            person.name,
            now=self._now(),
            valid_for=self._life_safety if is_life_safety(alert) else self._other,
        )
        self.issued += 1
        return f"{self._base}/a/{quote(token, safe='.')}"
