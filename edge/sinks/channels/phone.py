"""Phone channels: SMS and voice calls to people, one interface over every provider.

A `PhoneSink` is a channel's sink (its own outbox cursor, behind a route, like the group robots).
For each alarm event (opened, escalated, repeated) it reaches the people the event names, found in
its `Directory` (or, for a tier step, its own `Audience`: a fixed list, who is on duty in the
roster at the event's time for its community and building; see `addressing`), and has its
`PhoneSender` send each of them an SMS that carries their own acknowledge link (from the same
`LinkMaker` every channel uses), or place a call
that reads the alarm in Chinese and asks them to press 1. Acknowledgements and resolutions are
not phoned: nobody is woken to hear that someone else took it, and once someone has taken an
alert (the alert store says so) nobody more is phoned about it, also on a retry.

Every send is a row of the phone book (on disk before the provider is asked), so a retried batch
reaches nobody twice for one event and a provider's callback finds its alert and person after a
restart. A provider that is down, slow or refuses with a retryable code fails the batch
(`SinkUnavailable`): the outbox retries it and the people already reached are skipped. A number
the provider will never reach is recorded as rejected for that person; an event that reaches
nobody at all (no recipient with a phone, every number refused) is `SinkRejected`: set aside and
on the delivery log, never silently dropped. Each person's attempt is on the delivery log as
`<channel> → <person id>`. Over the per-person rate (`Channel`, `PersonRate`) a person gets one
summary call or SMS instead of the rest of a flood (`write_summary`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from functools import partial
from typing import Literal, Protocol, TypeVar

from edge.clock import Clock, SystemClock
from edge.errors import SinkRejected, SinkUnavailable
from edge.model import Alert, AlertEvent, AlertEventKind, AlertStatus, Lane, Reading, Severity
from edge.sinks.channels.addressing import Audience, Contact, Directory, LinkMaker
from edge.sinks.channels.delivery_log import DeliveryLog, DeliveryResult
from edge.sinks.channels.message import chinese_summary, clean
from edge.sinks.channels.person_rate import ReachSummary
from edge.sinks.channels.phone_book import PhoneBook, SendStatus, mask

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_REMEMBERED = 10_000  # events that reached nobody, remembered to count each once

Medium = Literal["sms", "voice"]
ALARM_KINDS = frozenset({AlertEventKind.OPENED, AlertEventKind.ESCALATED, AlertEventKind.REPEATED})
_MEDIUM = {"sms": "短信 SMS", "voice": "电话 call"}
LEVEL: dict[Severity, str] = {
    Severity.CRITICAL: "紧急",
    Severity.MAJOR: "重要",
    Severity.MINOR: "次要",
    Severity.WARNING: "警告",
    Severity.INFO: "提示",
}


@dataclass(frozen=True, slots=True)
class PhoneMessage:
    """What a phone message says, as template fields (providers send approved templates only).

    SMS templates take `level`, `summary`, `place`, `time`, `link`; voice templates `level`,
    `summary`, `place` and end in "确认请按1" (press 1 to acknowledge).
    """

    level: str  # 紧急, or 紧急升级 for an escalation
    summary: str
    place: str
    time: str  # local, MM-DD HH:MM
    link: str | None

    def fields(self, medium: Medium) -> dict[str, str]:
        """The template's variables in their documented order (Tencent's {1}, {2}, ...)."""
        out = {"level": self.level, "summary": self.summary, "place": self.place}
        if medium == "sms":
            out["time"] = self.time
            out["link"] = self.link or "请登录值班台"
        return out

    def text(self, medium: Medium) -> str:
        """The message as the person gets it with the documented templates."""
        if medium == "voice":
            return f"{self.place}发生{self.level}告警:{self.summary}。确认请按1。"
        link = self.link or "请登录值班台"
        return f"【{self.level}告警】{self.summary},{self.place},{self.time}。确认:{link}"


class PhoneSender(Protocol):
    """One provider's SMS or voice API; raises SinkUnavailable (retry) or SinkRejected (never)."""

    @property
    def provider(self) -> str:
        """ "aliyun", "tencent"."""
        ...

    @property
    def medium(self) -> Medium: ...

    async def send(self, phone: str, message: PhoneMessage, ref: str) -> str:
        """Send; returns the provider's id of the message or call. `ref` comes back in callbacks."""
        ...

    async def close(self) -> None: ...


class PhoneSink:
    """Reaches people by SMS or voice call for the alarm events its channel's route takes.

    Args:
        directory: who an id is (the people an escalation step named, the channel's own).
        audience: whom to reach when an event's step named nobody (a tier step): the people in
            the channel's settings, whoever is on duty in its roster. The `Channel` in front of
            the sink fills the event's people from it before the per-person rate; the sink asks
            it only when used alone.
        links: signs the acknowledge link an SMS carries (calls are acknowledged by key 1).
        console_url: the duty console's board, which a flood's summary points to.
    """

    lanes: frozenset[Lane] = frozenset({"events"})
    personal = True  # reaches people only: an event left addressing nobody is not sent (Channel)

    def __init__(
        self,
        name: str,
        sender: PhoneSender,
        directory: Directory,
        book: PhoneBook,
        *,
        zone: tzinfo,
        audience: Audience | None = None,
        links: LinkMaker | None = None,
        console_url: str | None = None,
        log: DeliveryLog | None = None,
        clock: Clock | None = None,
        chinese: Callable[[Alert], str] | None = None,
    ) -> None:
        """`chinese`: an alert's summary in Chinese (the rule's `summary_zh`): an SMS or a
        call says it instead of the stored English one."""
        self.name = name
        self.sender = sender
        self._chinese = chinese
        self.directory = directory
        self.audience = audience
        self.book = book
        self._zone = zone
        self._links = links
        self._console_url = console_url
        self._log = log
        self._clock = clock or SystemClock()
        self.sent = 0  # messages or calls a provider took
        self.failed = 0  # attempts that failed and are retried
        self.rejected = 0  # numbers a provider refused for good
        self.unreached = 0  # alarms that reached nobody
        self.summaries = 0  # summary calls or messages a provider took (a flood, per person)
        self._unreached: OrderedDict[str, None] = OrderedDict()
        self._unreached_total = 0
        self.spared = 0  # people not phoned: someone had taken the alert by then
        # who has taken an alert (acknowledged or resolved it), from the alert store; set by the
        # wiring once the agent exists. None, or an answer of None: phone as the event says.
        self.settled: Callable[[str], str | None] | None = None

    def people(self, event: AlertEvent) -> list[Contact]:
        """The people to phone about `event`, with a phone, each once: those its step named, or
        the channel's audience for a step that named nobody."""
        ids = event.people or (self.audience.people(event) if self.audience is not None else ())
        found: dict[str, Contact] = {}
        for person_id in ids:
            contact = self.directory.contact(person_id)
            if contact is not None and contact.phone:
                found.setdefault(contact.id, contact)
        return list(found.values())

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        return None

    async def write_events(self, events: Sequence[AlertEvent]) -> None:
        done: list[str] = []
        failure: SinkUnavailable | None = None
        nobody: dict[str, str] = {}  # event id: why
        for event in events:
            if event.kind not in ALARM_KINDS:
                done.append(event.id)
                continue
            reached, failed, why = await self._reach(event)
            if failed is not None:
                failure = failure or failed
            elif reached:
                done.append(event.id)
            else:
                nobody[event.id] = f"alert {event.alert.id}: {why}"
        if failure is not None:
            raise SinkUnavailable(str(failure), delivered=tuple(done))
        if nobody:
            for event_id in nobody:  # once per event, not per retry or split of its batch
                self._unreached[event_id] = None
            while len(self._unreached) > _REMEMBERED:
                self._unreached.popitem(last=False)
                self._unreached_total += 1
            self.unreached = self._unreached_total + len(self._unreached)
            raise SinkRejected(
                f"{self.name}: reached nobody for {'; '.join(nobody.values())}",
                delivered=tuple(done),
            )

    async def write_summary(self, summary: ReachSummary) -> None:
        """One call or SMS to one person in place of the flood held back from them (`Channel`):
        "N条告警未处理,请查看值班台" with the console board's address. A retry after a failure
        rings nobody twice (the phone book); pressing 1 on it acknowledges nothing."""
        person = self.directory.contact(summary.person)
        if person is None or not person.phone:
            _log.warning("%s: a summary for %s, who has no phone here: not sent", self.name,
                         "a family contact" if summary.person.startswith("family:")
                         else summary.person)  # fmt: skip
            return
        key = f"summary:{summary.person}:{summary.until.isoformat()}"
        status = await self._book(partial(self.book.status, self.name, key, person.id))
        if status in (SendStatus.SENT, SendStatus.REJECTED):
            return
        try:
            await self._deliver(key, "summary", "", person, self.summary_message(summary), None)
        except SinkRejected as exc:  # a number never reached: nothing to retry
            _log.warning("%s: summary for %s refused for good: %s", self.name, person.id, exc)
            return
        self.summaries += 1

    def summary_message(self, summary: ReachSummary) -> PhoneMessage:
        """The alarm template's fields, saying how many alerts wait and where to see them."""
        local = self._clock.now().astimezone(self._zone)
        return PhoneMessage(
            "多条",
            f"{summary.alerts}条告警未处理,请查看值班台",
            "值班台",
            f"{local:%m-%d %H:%M}",
            self._console_url if self.sender.medium == "sms" else None,
        )

    async def close(self) -> None:
        await self.sender.close()

    async def _reach(self, event: AlertEvent) -> tuple[bool, SinkUnavailable | None, str]:
        """(someone was reached, the first retryable failure, why nobody was)."""
        if event.alert.status is not AlertStatus.ACTIVE:  # a repeat after someone took it
            return True, None, ""
        people = self.people(event)
        if not people:
            alert = event.alert
            return False, None, f"nobody with a phone for {alert.community}/{alert.building}"
        reached, failure, refused = False, None, []
        for person in people:
            status = await self._book(partial(self.book.status, self.name, event.id, person.id))
            if status is SendStatus.SENT:
                reached = True
                continue
            if status is SendStatus.REJECTED:
                refused.append(person.id)
                continue
            taken_by = self.settled(event.alert.id) if self.settled is not None else None
            if taken_by is not None:  # taken meanwhile (a retry, a key press): ring no further
                _log.info("%s: alert %s taken by %s: %s not phoned", self.name, event.alert.id,
                          taken_by, person.id)  # fmt: skip
                self.spared += 1
                reached = True
                continue
            try:
                await self._deliver(
                    event.id,
                    event.kind.value,
                    event.alert.id,
                    person,
                    self.message(event, person),
                    event,
                )
            except SinkRejected as exc:
                refused.append(person.id)
                _log.warning("%s: %s refused for good: %s", self.name, person.id, exc)
                continue
            except SinkUnavailable as exc:
                failure = failure or exc
                continue
            reached = True
        return reached, failure, f"every number refused ({', '.join(refused)})"

    async def _deliver(
        self,
        key: str,
        kind: str,
        alert_id: str,
        person: Contact,
        message: PhoneMessage,
        event: AlertEvent | None,
    ) -> None:
        """Book, send and record one call or SMS (`key`: the event id, or a summary's)."""
        sender = self.sender
        phone = person.phone or ""
        now = self._clock.now()
        ref = await self._book(
            lambda: self.book.begin(
                channel=self.name,
                provider=sender.provider,
                medium=sender.medium,
                event_id=key,
                event_kind=kind,
                alert_id=alert_id,
                person_id=person.id,
                person_name=person.name,
                phone=phone,
                now=now,
            )
        )
        where = f"{_MEDIUM[sender.medium]} → {person.name} {mask(phone)}"
        try:
            provider_id = await sender.send(phone, message, ref)
        except (SinkRejected, SinkUnavailable) as exc:
            rejected = isinstance(exc, SinkRejected)
            status = SendStatus.REJECTED if rejected else SendStatus.FAILED
            detail = str(exc)
            await self._book(
                lambda: self.book.finish(ref, status, now=self._clock.now(), detail=detail)
            )
            result = DeliveryResult.REJECTED if rejected else DeliveryResult.FAILED
            if rejected:
                self.rejected += 1
            else:
                self.failed += 1
            await self._record(event, person, result, f"{where}: {detail}")
            raise
        await self._book(
            lambda: self.book.finish(
                ref, SendStatus.SENT, now=self._clock.now(), provider_id=provider_id
            )
        )
        self.sent += 1
        await self._record(
            event,
            person,
            DeliveryResult.DELIVERED,
            f"{where}: 已提交 accepted, {sender.provider} id {provider_id}",
        )
        _log.info("%s: %s (%s) accepted", self.name, where,
                  f"alert {alert_id}" if alert_id else kind)  # fmt: skip

    async def _book(self, work: Callable[[], _T]) -> _T:
        """A phone book operation off the event loop; a file that fails is retried like a
        provider that is down (the book is what keeps a retry from ringing anyone twice)."""
        try:
            return await asyncio.to_thread(work)
        except sqlite3.Error as exc:
            raise SinkUnavailable(f"{self.name}: phone book {self.book.path}: {exc}") from exc

    def message(self, event: AlertEvent, person: Contact) -> PhoneMessage:
        """The template fields for one event and one person (the link is theirs alone)."""
        alert = event.alert
        level = LEVEL[alert.severity] + ("升级" if event.kind is AlertEventKind.ESCALATED else "")
        place = " ".join(
            clean(p, 20) for p in (alert.community, alert.building, alert.unit or "") if p
        )
        link = None
        if self._links is not None and self.sender.medium == "sms":
            try:
                link = self._links.link(alert, "ack", person)
            except Exception:  # a link is a convenience: the alarm goes out without one
                _log.exception("%s: no acknowledge link for alert %s", self.name, alert.id)
        local = event.at.astimezone(self._zone)
        said = clean(chinese_summary(self._chinese, alert), 30)
        return PhoneMessage(level, said, place, f"{local:%m-%d %H:%M}", link)

    async def _record(
        self, event: AlertEvent | None, person: Contact, result: DeliveryResult, reason: str
    ) -> None:
        if self._log is not None and event is not None:
            await self._log.record_one(
                f"{self.name} → {person.id}",
                event_id=event.id,
                alert_id=event.alert.id,
                kind=event.kind.value,
                result=result,
                reason=reason,
            )
