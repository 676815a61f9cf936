"""What a duty officer reads on a phone: one alert event, or a digest of several, in Chinese and English.

Messages carry severity, summary, community / building / unit, device, local time, what happened
(opened, escalated to a tier, acknowledged by, resolved), the alert id and, when the gateway has a
public address, a link to the alert's page in the duty console (sign-in first, then that alert).
Nothing else: no notes (free text that may name a resident), no resident reference, no contacts. Text that comes from devices or profiles is cleaned
of line breaks and markup so it cannot forge lines, links or mentions in a group chat.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from urllib.parse import quote

from edge.model import Alert, AlertEvent, AlertEventKind, Severity
from edge.sinks.channels.addressing import LINK_VERBS, Contact, Directory, LinkMaker, LinkVerb
from edge.sinks.channels.person_rate import ReachSummary

SEVERITY_LABEL: dict[Severity, str] = {
    Severity.CRITICAL: "紧急 CRITICAL",
    Severity.MAJOR: "重要 MAJOR",
    Severity.MINOR: "次要 MINOR",
    Severity.WARNING: "警告 WARNING",
    Severity.INFO: "提示 INFO",
}
# every title holds 告警 ("alert"): a DingTalk robot secured by keyword can be given that one
KIND_LABEL: dict[AlertEventKind, str] = {
    AlertEventKind.OPENED: "新告警 Opened",
    AlertEventKind.REPEATED: "告警再次触发 Repeated",
    AlertEventKind.ACKNOWLEDGED: "告警已确认 Acknowledged",
    AlertEventKind.RESOLVED: "告警已解除 Resolved",
    AlertEventKind.ASSIGNED: "告警已指派 Assigned",
    AlertEventKind.ESCALATED: "告警升级 Escalated",
}
# what the button or the line of a message says, Chinese first
LINK_LABEL: dict[LinkVerb, tuple[str, str]] = {
    "ack": ("确认接警", "Acknowledge"),
    "onway": ("我正在赶往", "On my way"),
    "resolve": ("已处理完毕", "Resolve"),
}
_log = logging.getLogger(__name__)

_FIELD_CHARS = 120  # a field from a device or profile is cut here: a message stays short
# look-alikes for what WeCom / DingTalk markdown acts on (tags, mentions, links, bold, headings)
_MARKUP = str.maketrans(
    {"<": "\u2039", ">": "\u203a", "[": "(", "]": ")", "*": "\uff0a", "`": "'", "#": "\uff03"}
)
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")


def clean(text: str, limit: int = _FIELD_CHARS) -> str:
    """One line, no markup that a group chat would act on, at most `limit` characters."""
    flat = _SPACE.sub(" ", text).strip().translate(_MARKUP)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def clip(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8, on a character boundary."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    return raw[: max_bytes - len("…".encode())].decode(errors="ignore") + "…"


def chinese_summary(chinese: Callable[[Alert], str] | None, alert: Alert) -> str:
    """The alert's summary as `chinese` says it (the rule's Chinese line); the stored words when
    there is none or the lookup fails (logged): a message is never lost to its wording."""
    if chinese is None:
        return alert.summary
    try:
        return chinese(alert) or alert.summary
    except Exception:
        _log.exception("no Chinese summary for alert %s", alert.id)
        return alert.summary


@dataclass(frozen=True, slots=True)
class ActionLink:
    """One button or line of a message: what it does, for whom, and its URL."""

    verb: LinkVerb
    person: str  # the person's name, as the alert history will show it
    url: str

    @property
    def label(self) -> str:
        zh, en = LINK_LABEL[self.verb]
        return f"{zh} {en}"


def action_links(
    maker: LinkMaker | None, alert: Alert, people: Sequence[Contact]
) -> tuple[ActionLink, ...]:
    """Acknowledge, on my way and resolve for each of `people`, in that order (none without a maker)."""
    if maker is None:
        return ()
    out: list[ActionLink] = []
    for person in people:
        for verb in LINK_VERBS:
            url = maker.link(alert, verb, person)
            if url is not None:
                out.append(ActionLink(verb, clean(person.name, 40), url))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Notice:
    """A message before a channel's markup: a title, its lines and an optional link."""

    title: str
    lines: tuple[str, ...]
    link: str | None = None
    actions: tuple[ActionLink, ...] = ()  # signed one-time links for the people addressed
    people: tuple[Contact, ...] = ()  # whom the message addresses (mentions, SMS, calls)

    def markdown(self, newline: str = "\n") -> str:
        """Bold title, quoted lines, the action links, the details link last (WeCom breaks on
        "\\n", DingTalk on "\\n\\n")."""
        parts = [f"**{self.title}**", *(f"> {line}" for line in self.lines)]
        parts.extend(f"[{a.label} · {a.person}]({a.url})" for a in self.actions)
        if self.link is not None:
            parts.append(f"[查看详情 Details]({self.link})")
        return newline.join(parts)

    def text(self) -> str:
        """Plain text, for message types without markup."""
        parts = [self.title, *self.lines]
        parts.extend(f"{a.label} · {a.person}: {a.url}" for a in self.actions)
        if self.link is not None:
            parts.append(f"查看详情 Details: {self.link}")
        return "\n".join(parts)


class NoticeFormat:
    """Turns alert events into notices in one time zone, with links under one public address."""

    def __init__(
        self,
        zone: tzinfo,
        public_url: str | None = None,
        *,
        links: LinkMaker | None = None,
        directory: Directory | None = None,
        chinese: Callable[[Alert], str] | None = None,
    ) -> None:
        """`chinese`: an alert's summary in Chinese (the rule's `summary_zh`), put first."""
        self._zone = zone
        self._public_url = public_url.rstrip("/") if public_url else None
        self.links = links
        self.directory = directory
        self._chinese = chinese

    def said(self, alert: Alert, limit: int = _FIELD_CHARS) -> str:
        """The summary, Chinese first where the rule has a Chinese line ("紧急按钮被按下
        Emergency button pressed"); cleaned and cut like any text from a profile."""
        chinese = chinese_summary(self._chinese, alert)
        if chinese == alert.summary:
            return clean(alert.summary, limit)
        return clean(f"{chinese} {alert.summary}", limit)

    def people(self, event: AlertEvent) -> tuple[Contact, ...]:
        """The people the event addresses whom the directory knows (an unknown id is left out)."""
        if self.directory is None:
            return ()
        found = (self.directory.contact(p) for p in event.people)
        return tuple(c for c in found if c is not None)

    def link(self, event: AlertEvent) -> str | None:
        if self._public_url is None:
            return None
        # the console's page, not the JSON route: a person on a phone opens it (signing in first)
        return f"{self._public_url}/console/alerts/{quote(event.alert.id, safe='')}"

    def board_link(self, events: Sequence[AlertEvent]) -> str | None:
        """A digest's link: the one alert's page when it is about one, else the console's board
        (narrowed to the community when all are of one)."""
        if self._public_url is None or not events:
            return None
        if len({e.alert.id for e in events}) == 1:
            return self.link(events[0])
        communities = {e.alert.community for e in events}
        if len(communities) == 1:
            return f"{self._public_url}/console/?community={quote(communities.pop(), safe='')}"
        return f"{self._public_url}/console/"

    def single(self, event: AlertEvent) -> Notice:
        """The full message for one event."""
        alert = event.alert
        local = event.at.astimezone(self._zone)
        lines = [
            self.said(alert),
            f"位置 Where: {self._where(event)}",
            f"设备 Device: {clean(alert.device_id)} ({clean(alert.model)})",
            f"时间 Time: {local:%Y-%m-%d %H:%M:%S} {_offset(local.strftime('%z'))}",
        ]
        what = self._what(event)
        if what:
            lines.append(what)
        lines.append(f"告警编号 Alert: {clean(alert.id)}")
        people = self.people(event)
        actions = action_links(self.links, alert, people) if _actionable(event) else ()
        return Notice(self._title(event), tuple(lines), self.link(event), actions, people)

    def summary(self, summary: ReachSummary) -> Notice:
        """One person's summary in place of the messages a flood would have sent them."""
        person = self.directory.contact(summary.person) if self.directory else None
        since = summary.since.astimezone(self._zone)
        until = summary.until.astimezone(self._zone)
        name = clean(person.name, 20) if person is not None else clean(summary.person, 40)
        lines = (
            f"{name}: 自 {since:%H:%M} 起 {summary.alerts} 条告警 alerts for you since {since:%H:%M}",
            f"单条通知暂停至 {until:%H:%M} Single messages paused until {until:%H:%M}",
            "全部告警见值班台 Every alert is on the duty console",
        )
        link = f"{self._public_url}/console/" if self._public_url else None
        people = (person,) if person is not None else ()
        return Notice(f"【告警汇总 Alert flood】{name}", lines, link, (), people)

    def line(self, event: AlertEvent) -> str:
        """One event as a single line of a digest."""
        alert = event.alert
        local = event.at.astimezone(self._zone)
        parts = [
            f"【{SEVERITY_LABEL[alert.severity]}】{KIND_LABEL[event.kind]}",
            self.said(alert, 60),
            self._where(event),
            clean(alert.device_id, 40),
            f"{local:%m-%d %H:%M:%S}",
        ]
        what = self._what(event)
        if what:
            parts.append(what)
        parts.append(clean(alert.id, 60))
        return " · ".join(parts)

    def digest(self, events: Sequence[AlertEvent]) -> Notice:
        """Several events in one message (a channel behind its rate limit)."""
        critical = sum(e.alert.severity is Severity.CRITICAL for e in events)
        title = f"告警汇总 Alert digest: {len(events)} 条 events"
        if critical:
            title += f", {critical} 紧急 critical"
        # the people its events address are mentioned once (action links are per alert; the link
        # is the console's: the one alert's page, or the board)
        people = {c.id: c for e in events for c in self.people(e)}
        return Notice(
            title,
            tuple(self.line(e) for e in events),
            self.board_link(events),
            people=tuple(people.values()),
        )

    def digests(
        self, events: Sequence[AlertEvent], fits: Callable[[Notice], bool]
    ) -> list[tuple[list[AlertEvent], Notice]]:
        """`events` in order, packed greedily into as few digests as `fits` allows.

        A single event that does not fit even alone goes as its own digest; the channel clips it.
        """
        packed: list[tuple[list[AlertEvent], Notice]] = []
        group: list[AlertEvent] = []
        for event in events:
            if group and not fits(self.digest([*group, event])):
                packed.append((group, self.digest(group)))
                group = []
            group.append(event)
        if group:
            packed.append((group, self.digest(group)))
        return packed

    def _title(self, event: AlertEvent) -> str:
        return f"【{SEVERITY_LABEL[event.alert.severity]}】{KIND_LABEL[event.kind]}"

    def _where(self, event: AlertEvent) -> str:
        alert = event.alert
        parts = [alert.community, alert.building, *([alert.unit] if alert.unit else [])]
        return " / ".join(clean(p, 40) for p in parts)

    def _what(self, event: AlertEvent) -> str | None:
        kind, alert = event.kind, event.alert
        names = ", ".join(clean(c.name, 20) for c in self.people(event)[:5])
        if kind is AlertEventKind.ESCALATED:
            tier = f"升级至 Tier: {clean(event.tier or 'default', 40)}"
            return f"{tier} · 通知 To: {names}" if names else tier
        if kind is AlertEventKind.OPENED and names:
            return f"通知 To: {names}"
        if kind is AlertEventKind.ACKNOWLEDGED:
            return f"确认人 By: {clean(alert.acknowledged_by or event.actor, 40)}"
        if kind is AlertEventKind.RESOLVED:
            return f"解除 By: {clean(alert.resolved_by or event.actor, 40)}"
        if kind is AlertEventKind.ASSIGNED:
            return f"指派 By: {clean(event.actor, 40)}"
        if kind is AlertEventKind.REPEATED:
            return f"次数 Count: {alert.count}"
        return None


def _actionable(event: AlertEvent) -> bool:
    """Only a message that asks someone to act carries links: not "acknowledged" or "resolved"."""
    return event.kind in (AlertEventKind.OPENED, AlertEventKind.ESCALATED) and (
        event.alert.status == "active"
    )


def _offset(z: str) -> str:
    """`+0800` as `UTC+08:00`."""
    return f"UTC{z[:3]}:{z[3:]}" if len(z) == 5 else "UTC"
