"""Phone channels from settings: a provider's sender, the people it reaches, the links its SMS
carry, and the phone book that the senders and the providers' callbacks share.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import FastAPI

from edge.agent import Agent
from edge.alerts import AlertStore, Roster
from edge.clock import Clock
from edge.errors import RosterError
from edge.model import Alert, AlertStatus
from edge.sinks import (
    ALARM_KINDS,
    AliyunSms,
    AliyunVoice,
    Audience,
    Card,
    DeliveryLog,
    Directory,
    Everyone,
    Listed,
    OnDutyPeople,
    PhoneBook,
    PhoneSender,
    PhoneSink,
    Route,
    TencentSms,
    TencentVoice,
)
from gateway.api.provider_callbacks import PhoneCallbacks
from gateway.notification_links import NotificationLinks, ShortNotificationLinks
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


@dataclass
class Phones:
    """The phone channels' shared parts, kept open while the gateway runs."""

    book: PhoneBook
    callback_token: str | None
    short: ShortLinks | None = None  # an SMS channel's links go behind short codes
    link_cap: timedelta = timedelta(minutes=30)  # phone.link_valid_minutes
    sinks: list[PhoneSink] = field(default_factory=list)

    def sms_links(self, links: NotificationLinks) -> ShortNotificationLinks | None:
        """The links an SMS carries: every channel's signed links, behind a short code."""
        if self.short is None:
            return None
        return ShortNotificationLinks(links, self.short, self.link_cap)

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
        app.state.stores.append(self.book)
        if self.short is not None:
            app.state.short_links = self.short
            app.state.stores.append(self.short)
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
        if self.short is not None:
            self.short.close()


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
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    short = None
    if any(c.type.endswith("_sms") for c in channels):
        if settings.notifications.public_url is None:
            raise ConfigurationError(
                "an SMS channel needs notifications.public_url: its messages carry links to it"
            )
        short = ShortLinks(settings.data_dir)
    keep = timedelta(days=settings.retention.deliveries_days)
    cap = timedelta(minutes=settings.phone.link_valid_minutes)
    return Phones(PhoneBook(settings.data_dir / "phone-sends.db", keep), token, short, cap)


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
    *,
    links: NotificationLinks,
    directory: Directory | None = None,
    chinese: Callable[[Alert], str] | None = None,
) -> PhoneSink:
    """The sink for one phone channel; raises ConfigurationError (a secret file, the roster).

    It reaches the people an event names, found in its own `recipients`, its roster, then
    `directory` (the escalation roster's people, the households' family); for a step that names
    a tier only, its `recipients` and whoever is on duty in its roster.
    """
    listed = Listed([Card(p.id, p.name, p.phone) for p in channel.recipients])
    directories: list[Directory] = [listed]
    audiences: list[Audience] = [listed]
    if channel.roster_file is not None:
        try:
            roster = Roster.load(channel.roster_file)
        except RosterError as exc:
            raise ConfigurationError(f"channel {channel.name}: {exc}") from exc
        duty = OnDutyPeople(roster, channel.roster_file)  # read again when it changes
        directories.append(duty)
        audiences.append(duty)
    if directory is not None:
        directories.append(directory)
    people = Everyone(directories, audiences)
    public = settings.notifications.public_url
    sink = PhoneSink(
        channel.name,
        _sender(channel, clock),
        people,
        phones.book,
        zone=settings.notifications.zone,
        audience=people,
        links=phones.sms_links(links) if channel.type.endswith("_sms") else None,
        console_url=f"{public.rstrip('/')}/console/" if public else None,
        log=log,
        clock=clock,
        chinese=chinese,
    )
    phones.sinks.append(sink)
    return sink


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
