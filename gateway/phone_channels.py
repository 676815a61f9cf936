"""Phone channels from settings: a provider's sender, the people it reaches, the links its SMS
carry, and the phone book that the senders and the providers' callbacks share.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI

from edge.agent import Agent
from edge.alerts import AlertStore, Roster
from edge.clock import Clock
from edge.errors import RosterError
from edge.model import AlertEvent, AlertStatus
from edge.sinks import (
    ALARM_KINDS,
    AliyunSms,
    AliyunVoice,
    DeliveryLog,
    FixedRecipients,
    OnDutyRecipients,
    PhoneBook,
    PhoneSender,
    PhoneSink,
    Recipient,
    Route,
    TencentSms,
    TencentVoice,
)
from gateway.action_links import ActionLinks, LinkAction
from gateway.api.provider_callbacks import PhoneCallbacks
from gateway.settings import (
    AliyunSmsChannelSettings,
    AliyunVoiceChannelSettings,
    ConfigurationError,
    PhoneChannelSettings,
    Settings,
    TencentSmsChannelSettings,
    TencentVoiceChannelSettings,
    read_secret,
)
from gateway.short_links import ShortLinks

_log = logging.getLogger(__name__)

PHONE_TYPES = (
    AliyunSmsChannelSettings,
    AliyunVoiceChannelSettings,
    TencentSmsChannelSettings,
    TencentVoiceChannelSettings,
)


class GatewayLinks:
    """Acknowledge links for SMS: an action link for (alert, person), behind a short code."""

    def __init__(self, data_dir: Path, public_url: str, valid_for: timedelta, clock: Clock) -> None:
        self.links = ActionLinks(data_dir)
        self.short = ShortLinks(data_dir)
        self._public_url = public_url.rstrip("/")
        self._valid_for = valid_for
        self._clock = clock

    def acknowledge_link(self, alert_id: str, person_id: str, person_name: str) -> str | None:
        now = self._clock.now()
        token = self.links.issue(
            alert_id,
            LinkAction.ACKNOWLEDGE,
            person_id,
            person_name,
            now=now,
            valid_for=self._valid_for,
        )
        code = self.short.shorten(token, now + self._valid_for, now)
        return f"{self._public_url}/s/{quote(code, safe='')}"

    def close(self) -> None:
        self.links.close()
        self.short.close()


@dataclass
class Phones:
    """The phone channels' shared parts, kept open while the gateway runs."""

    book: PhoneBook
    callback_token: str | None
    links: GatewayLinks | None = None
    sinks: list[PhoneSink] = field(default_factory=list)

    def watch(self, agent: Agent) -> None:
        """Let the sinks ask the agent's alert store who has taken an alert."""

        def settled(alert_id: str) -> str | None:
            store: AlertStore | None = getattr(agent, "alert_store", None)  # set on entering
            alert = store.get(alert_id) if store is not None else None
            if alert is None or alert.status is AlertStatus.ACTIVE:
                return None
            return alert.acknowledged_by or alert.resolved_by or alert.status.value

        for sink in self.sinks:
            sink.settled = settled

    def serve(self, app: FastAPI, deliveries: DeliveryLog | None) -> None:
        """Give the API its SMS short links and the providers' callbacks."""
        if self.links is not None:
            app.state.short_links = self.links.short
        if self.callback_token is None:
            _log.warning(
                "phone channels without phone.callback_token: key presses and delivery receipts "
                "from the providers cannot reach this gateway"
            )
            return
        callbacks = PhoneCallbacks(self.book, self.callback_token, deliveries)
        app.state.phone_callbacks = callbacks
        render: Callable[[], Awaitable[str]] = app.state.render_metrics

        async def with_callbacks() -> str:
            return await render() + callback_metrics(callbacks)

        app.state.render_metrics = with_callbacks

    def close(self) -> None:
        self.book.close()
        if self.links is not None:
            self.links.close()


def callback_metrics(callbacks: PhoneCallbacks) -> str:
    """The providers' callbacks on /metrics, after the agent's own families."""
    counts = {
        "acknowledged": callbacks.acknowledged,
        "receipt": callbacks.receipts,
        "unmatched": callbacks.unmatched,
        "refused": callbacks.refused,
    }
    name = "community_edge_phone_callbacks_total"
    lines = [
        f"# HELP {name} SMS and voice providers' callbacks: acknowledged (a key press took an "
        "alert), receipt (recorded on an alert), unmatched (named no send of ours), refused "
        "(a wrong callback URL)",
        f"# TYPE {name} counter",
        *(f'{name}{{outcome="{k}"}} {v}' for k, v in counts.items()),
    ]
    return "\n".join(lines) + "\n"


def open_phones(settings: Settings, clock: Clock) -> Phones | None:
    """The phone book and links when a phone channel is configured; raises ConfigurationError."""
    channels = [c for c in settings.channels if isinstance(c, PHONE_TYPES)]
    token: str | None = None
    if settings.phone.callback_token is not None or settings.phone.callback_token_file is not None:
        token = read_secret(
            settings.phone.callback_token, settings.phone.callback_token_file, "callback_token"
        )
        if len(token) < 16:
            raise ConfigurationError("phone.callback_token_file: shorter than 16 characters")
    if not channels:
        return None
    links = None
    if any(c.type.endswith("_sms") for c in channels):
        public = settings.notifications.public_url
        if public is None:
            raise ConfigurationError(
                "an SMS channel needs notifications.public_url: its messages carry links to it"
            )
        valid = timedelta(minutes=settings.phone.link_valid_minutes)
        links = GatewayLinks(settings.data_dir, public, valid, clock)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keep = timedelta(days=settings.retention.deliveries_days)
    return Phones(PhoneBook(settings.data_dir / "phone-sends.db", keep), token, links)


def phone_route(route: Route) -> Route:
    """A phone channel's route: alarm events only (not acknowledgements or resolutions), unless
    its settings name the kinds."""
    return route if route.kinds is not None else dataclasses.replace(route, kinds=ALARM_KINDS)


def phone_sink(
    channel: PhoneChannelSettings,
    phones: Phones,
    settings: Settings,
    log: DeliveryLog,
    clock: Clock,
) -> PhoneSink:
    """The sink for one phone channel; raises ConfigurationError (a secret file, the roster)."""
    people = [Recipient(p.id, p.name, p.phone) for p in channel.recipients]
    if channel.roster_file is not None:
        try:
            roster = Roster.load(channel.roster_file)
        except RosterError as exc:
            raise ConfigurationError(f"channel {channel.name}: {exc}") from exc
        duty = OnDutyRecipients(roster, channel.roster_file)  # read again when it changes
        recipients: FixedRecipients | OnDutyRecipients | _Both = duty
        if people:
            recipients = _Both(FixedRecipients(people), duty)
    else:
        recipients = FixedRecipients(people)
    sink = PhoneSink(
        channel.name,
        _sender(channel, clock),
        recipients,
        phones.book,
        zone=settings.notifications.zone,
        links=phones.links,
        log=log,
        clock=clock,
    )
    phones.sinks.append(sink)
    return sink


class _Both:
    """The fixed people and whoever is on duty, each once."""

    def __init__(self, fixed: FixedRecipients, duty: OnDutyRecipients) -> None:
        self._parts = (fixed, duty)

    def for_event(self, event: AlertEvent) -> list[Recipient]:
        seen: dict[str, Recipient] = {}
        for part in self._parts:
            for person in part.for_event(event):
                seen.setdefault(person.id, person)
        return list(seen.values())


def _sender(channel: PhoneChannelSettings, clock: Clock) -> PhoneSender:
    endpoint, timeout_s = channel.endpoint, channel.timeout_s
    if isinstance(channel, AliyunSmsChannelSettings):
        return AliyunSms(
            channel.name,
            channel.access_key_id,
            channel.secret(),
            sign_name=channel.sign_name,
            template_code=channel.template_code,
            region_id=channel.region_id,
            endpoint=endpoint,
            timeout_s=timeout_s,
            clock=clock,
        )
    if isinstance(channel, AliyunVoiceChannelSettings):
        return AliyunVoice(
            channel.name,
            channel.access_key_id,
            channel.secret(),
            tts_code=channel.tts_code,
            called_show_number=channel.called_show_number,
            play_times=channel.play_times,
            region_id=channel.region_id,
            endpoint=endpoint,
            timeout_s=timeout_s,
            clock=clock,
        )
    if isinstance(channel, TencentSmsChannelSettings):
        return TencentSms(
            channel.name,
            channel.secret_id,
            channel.secret(),
            sdk_app_id=channel.sdk_app_id,
            sign_name=channel.sign_name,
            template_id=channel.template_id,
            region=channel.region,
            endpoint=endpoint,
            timeout_s=timeout_s,
            clock=clock,
        )
    return TencentVoice(
        channel.name,
        channel.secret_id,
        channel.secret(),
        voice_sdk_app_id=channel.voice_sdk_app_id,
        template_id=channel.template_id,
        play_times=channel.play_times,
        region=channel.region,
        endpoint=endpoint,
        timeout_s=timeout_s,
        clock=clock,
    )
