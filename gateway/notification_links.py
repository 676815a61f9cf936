"""The links a notification carries: `edge.sinks` asks for them through its `LinkMaker` protocol,
and this signs them with the gateway's `ActionLinks`, under its public address.

A link for a life-safety alarm (SOS, fall, smoke) expires in minutes (`life_safety_minutes`): it
is about one night's emergency, and a stale one must not act tomorrow; any other alert's link lives
`other_minutes`. Without a public address there is nowhere a phone could open, so no link at all.
Every channel gets its links here, the group robots as `/a/<token>`, SMS behind a short code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import quote

from edge.agent import parse_family_person_id
from edge.model import Alert, is_life_safety
from edge.sinks import Contact, LinkVerb
from gateway.action_links import ActionLinks, LinkAction
from gateway.short_links import ShortLinks

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
        self.now = now
        self._life_safety = timedelta(minutes=life_safety_minutes)
        self._other = timedelta(minutes=other_minutes)
        self.issued = 0

    @property
    def base(self) -> str | None:
        """The public address links are made under; None: no links."""
        return self._base

    def link(self, alert: Alert, verb: LinkVerb, person: Contact) -> str | None:
        issued = self.issue(alert, verb, person)
        return None if issued is None else f"{self._base}/a/{quote(issued[0], safe='.')}"

    def issue(
        self, alert: Alert, verb: LinkVerb, person: Contact, cap: timedelta | None = None
    ) -> tuple[str, datetime] | None:
        """A signed token and when it expires (at most `cap` from now); None without links."""
        if self._base is None:
            return None
        if verb == "resolve" and parse_family_person_id(person.id) is not None:
            return None  # a relative takes the alarm or comes; closing it is for the staff
        now = self.now()
        valid = self._life_safety if is_life_safety(alert) else self._other
        if cap is not None:
            valid = min(valid, cap)
        token = self._links.issue(
            alert.id, _ACTION[verb], person.id, person.name, now=now, valid_for=valid
        )
        self.issued += 1
        return token, now + valid


class ShortNotificationLinks:
    """`edge.sinks.LinkMaker` for SMS: the same signed links, each behind a short code
    (`<public_url>/s/<code>`, `gateway.short_links`), as an SMS template's link variable is short.

    Args:
        cap: an SMS link expires no later than this (`phone.link_valid_minutes`).
    """

    def __init__(self, links: NotificationLinks, short: ShortLinks, cap: timedelta) -> None:
        self._links = links
        self.short = short
        self._cap = cap

    def link(self, alert: Alert, verb: LinkVerb, person: Contact) -> str | None:
        issued = self._links.issue(alert, verb, person, self._cap)
        if issued is None:
            return None
        token, expires = issued
        code = self.short.shorten(token, expires, self._links.now())
        return f"{self._links.base}/s/{quote(code, safe='')}"
