"""Wiring: settings become an agent, its sinks and the alert API, served in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from edge.agent import Agent, AgentConfig
from edge.alerts import AlertStoreSink, Roster
from edge.clock import Clock, SystemClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry, RegistryFile, Shard
from edge.errors import EdgeError, RosterError, SinkNameTaken, TlsConfigError
from edge.ingest import BrokerAddress, TlsConfig, parse_mqtt_url
from edge.outbox import Sink, check_sink_names
from edge.rules import default_rules_file, load_rules_file
from edge.sinks import Channel, DeliveryLog, NoticeFormat, PersonRate, RateWindow, ReadingStore
from gateway.action_links import ActionLinks
from gateway.api import create_app
from gateway.audit import AuditLog
from gateway.console.sign_in_links import SignInLinks
from gateway.data_dir_lock import DataDirBusy, DataDirLock
from gateway.disk import DiskWatch
from gateway.notification_links import NotificationLinks
from gateway.people import PeopleDirectory, StaffDirectory
from gateway.phone_channels import PHONE_TYPES, Phones, open_phones, phone_route, phone_sink
from gateway.reach import ChannelReach
from gateway.retention import Retention, RetentionPolicy
from gateway.settings import (
    ChannelSettings,
    ConfigurationError,
    DingtalkChannelSettings,
    MqttSettings,
    Settings,
    WebhookChannelSettings,
    WebhookSettings,
    WecomChannelSettings,
)
from gateway.shard_desk import (
    ShardDesk,
    install_error_handler,
    serve_shard_metrics,
)
from gateway.shard_readings import ShardReadings
from gateway.shard_sync import HomeWatch, SiblingEvents
from gateway.systemd_notify import Notifier
from gateway.tokens import TokenStore
from gateway.tsdb_readings import tsdb_readings

_log = logging.getLogger(__name__)

CENTRAL_SINK = "central"  # the outbox cursor of the central alert API (settings `central`)


@dataclass
class Gateway:
    """Everything `serve` runs, built from settings before anything starts."""

    agent: Agent
    readings: ReadingStore | None
    token: str
    token_source: str
    deliveries: DeliveryLog | None = None  # None: no notification channel is configured
    # the console's one-time sign-in links (`community-edge demo` prints one)
    sign_in_links: SignInLinks = field(default_factory=SignInLinks)
    links: ActionLinks | None = None  # the action links messages carry (and /a/<token> checks)
    roster: Roster | None = None  # the duty roster escalation steps resolve against
    phones: Phones | None = None  # None: no SMS or voice channel is configured


def api_token(settings: Settings) -> tuple[str, str]:
    """The API token and where it came from; creates DATA_DIR/api-token (0600) when needed."""
    if settings.api.token is not None:
        return settings.api.token.get_secret_value(), "settings"
    path = settings.data_dir / "api-token"
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if not token:
            raise ConfigurationError(f"{path}: empty API token file; delete it to get a new one")
        return token, str(path)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # created 0600 in one step: no moment when another local user could open it
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fd:
        fd.write(token + "\n")
        fd.flush()
        os.fsync(fd.fileno())
    return token, f"{path} (new)"


def build_gateway(settings: Settings) -> Gateway:
    """Load profiles and registry and build the agent; raises ConfigurationError."""
    try:
        profiles = ProfileRegistry.load(settings.profiles_dir or default_profile_dir())
        registry_file = (
            RegistryFile(settings.devices_file, profiles)
            if settings.devices_file is not None
            else None
        )
        community_rules = load_rules_file(settings.rules_file or default_rules_file(), profiles)
    except EdgeError as exc:
        raise ConfigurationError(str(exc)) from exc
    hooks = _webhooks(settings)
    roster = load_roster(settings)
    broker = broker_address(settings.mqtt)  # TLS files checked before any file is opened
    owners = _sink_owners(settings, hooks)
    try:
        check_sink_names(owners)  # before any sink opens a file or a client
    except SinkNameTaken as exc:
        raise ConfigurationError(str(exc)) from exc
    owner_of = dict(owners)
    clock = SystemClock()
    sinks: list[Sink] = []
    readings: ReadingStore | None = None
    if settings.tsdb.url is not None:
        from edge.sinks import InfluxSink

        token = settings.tsdb.token.get_secret_value() if settings.tsdb.token else None
        sinks.append(InfluxSink(settings.tsdb.url, settings.tsdb.org, settings.tsdb.bucket, token))
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        readings = ReadingStore(settings.data_dir / "readings.db")
        sinks.append(readings)
    deliveries: DeliveryLog | None = None
    links = ActionLinks(settings.data_dir)
    reach = ChannelReach()  # told its channels once built, and the agent once that is
    phones = open_phones(settings, clock)
    if hooks or settings.channels:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        deliveries = DeliveryLog(settings.data_dir / "deliveries.db", now=clock.now)
        channels = _channels(settings, hooks, deliveries, clock, links, roster, reach, phones)
        reach.use(channels)
        sinks.extend(channels)
    if settings.central.url is not None and settings.central.token is not None:
        from edge.sinks import AlertApiSink

        sinks.append(
            AlertApiSink(
                CENTRAL_SINK, settings.central.url, settings.central.token.get_secret_value()
            )
        )
    config = AgentConfig(
        broker=broker,
        client_id=settings.mqtt.client_id,
        data_dir=settings.data_dir,
        receive_maximum=settings.mqtt.receive_maximum,
        mqtt_protocol=settings.mqtt.protocol,
        keepalive_s=settings.mqtt.keepalive_s,
        outbox_max_bytes=settings.outbox_max_mb * 1024 * 1024,
        hold_acks_s=settings.testing.hold_acks_s,
        ready_max_backlog=settings.readiness.max_backlog,
        ready_max_sink_failure_s=settings.readiness.max_sink_failure_s,
        liveness_check_s=settings.liveness.check_s,
        broker_lost_after_s=settings.liveness.broker_lost_after_s,
        registry_check_s=settings.liveness.registry_check_s,
        rules_tick_s=settings.rules.tick_s,
        escalation_policies=tuple(settings.escalation.policies),
        escalation_check_s=settings.escalation.check_s,
        flap_transitions=settings.flapping.transitions,
        flap_window_s=settings.flapping.window_s,
        incident_window_s=settings.incidents.window_s,
        register_dir=settings.shard.home,  # run --shards N: every shard reads shard 0's register
    )
    token, source = api_token(settings)
    registry = registry_file.registry if registry_file is not None else DeviceRegistry()
    agent = Agent(
        config,
        profiles,
        registry,
        sinks,
        clock,
        registry_file=registry_file,
        community_rules=community_rules,
        owners=[owner_of[sink.name] for sink in sinks],
        roster=roster,
        reach=reach,
        shard=Shard(settings.shard.index, settings.shard.count),
    )
    reach.agent = agent
    if phones is not None:
        phones.watch(agent)  # a taken alert is phoned no further
    return Gateway(
        agent=agent,
        readings=readings,
        token=token,
        token_source=source,
        deliveries=deliveries,
        links=links,
        roster=roster,
        phones=phones,
    )


def load_roster(settings: Settings) -> Roster | None:
    """The duty roster, and every escalation step's person and team found in it; raises
    ConfigurationError naming the step that names someone the roster does not have."""
    path = settings.escalation.roster_file
    roster: Roster | None = None
    if path is not None:
        try:
            roster = Roster.load(path)
        except RosterError as exc:
            raise ConfigurationError(str(exc)) from exc
    for policy in settings.escalation.policies:
        for n, step in enumerate(policy.steps):
            where = (
                f"escalation policy {policy.severity} ({policy.community or 'default'}) step {n}"
            )
            if step.names_people and roster is None:
                raise ConfigurationError(
                    f"{where} names {step.describe()}: set escalation.roster_file"
                )
            if roster is None:
                continue
            if step.person is not None and roster.contact(step.person) is None:
                raise ConfigurationError(f"{where}: no person {step.person!r} in {path}")
            for team in (step.on_duty, step.next_on_roster):
                if team is not None and team != "here" and not roster.has_team(team):
                    raise ConfigurationError(f"{where}: no team {team!r} in {path}")
    return roster


def _channels(
    settings: Settings,
    hooks: list[tuple[str, WebhookSettings]],
    log: DeliveryLog,
    clock: Clock,
    links: ActionLinks,
    roster: Roster | None,
    reach: ChannelReach,
    phones: Phones | None = None,
) -> list[Channel]:
    """One sink per channel: `webhooks` take every event, `channels` what their route takes."""
    from edge.sinks import WebhookSink

    out: list[Channel] = []
    notes = settings.notifications
    if (hooks or settings.channels) and notes.public_url is None:
        _log.warning(
            "notifications.public_url is not set: messages carry no link to the duty console "
            "(set it to the address duty officers open, e.g. https://gw.example.org)"
        )
    maker = NotificationLinks(
        links,
        notes.public_url,
        now=clock.now,
        life_safety_minutes=notes.link_minutes_life_safety,
        other_minutes=notes.link_minutes,
    )
    # SMS and voice reach the roster's people and the households' family (once the agent is up)
    everyone = PeopleDirectory(roster, lambda: getattr(reach.agent, "households", None))
    # group robots reach the duty staff: the roster alone (no family number in a staff group)
    notices = NoticeFormat(
        notes.zone,
        notes.public_url,
        links=maker,
        directory=StaffDirectory(roster),
        chinese=reach.chinese,  # late-bound: the rules' Chinese lines, once the agent is built
    )
    for name, webhook in hooks:
        secret = webhook.secret.get_secret_value() if webhook.secret else None
        hook = WebhookSink(name, webhook.url, secret, clock=clock, link=notices.link)
        out.append(Channel(hook, None, log))
    for channel in settings.channels:
        route = channel.route.route(notes.zone)
        if isinstance(channel, PHONE_TYPES):  # SMS, voice: gateway/phone_channels.py
            assert phones is not None  # open_phones opens them when such a channel is configured
            # the people an escalation step named (on duty, next on the roster, the family)
            sink = phone_sink(
                channel,
                phones,
                settings,
                log,
                clock,
                links=maker,
                directory=everyone,
                chinese=reach.chinese,
            )
            out.append(
                Channel(
                    sink,
                    phone_route(route),
                    log,
                    person_rate=PersonRate(
                        notes.per_person_limit, notes.per_person_period_s, clock.now
                    ),
                    handled=lambda event: reach.handled(event),
                )
            )
            continue
        out.append(
            Channel(
                _channel_sink(channel, notices, clock),
                route,
                log,
                person_rate=PersonRate(
                    notes.per_person_limit, notes.per_person_period_s, clock.now
                ),
                # late-bound: `reach.agent` is set once the agent is built
                handled=lambda event: reach.handled(event),
            )
        )
    return out


def _channel_sink(channel: ChannelSettings, notices: NoticeFormat, clock: Clock) -> Sink:
    if isinstance(channel, WebhookChannelSettings):
        from edge.sinks import WebhookSink

        secret = channel.secret.get_secret_value() if channel.secret else None
        return WebhookSink(
            channel.name, channel.url, secret, channel.timeout_s, clock=clock, link=notices.link
        )
    assert not isinstance(channel, PHONE_TYPES)  # built by phone_sink
    rate = RateWindow(channel.rate_per_minute, 60.0, clock)
    if isinstance(channel, WecomChannelSettings):
        from edge.sinks import WecomSink

        return WecomSink(
            channel.name,
            channel.key.get_secret_value(),
            notices=notices,
            rate=rate,
            base_url=channel.base_url,
            mention_mobiles=channel.mention_mobiles,
            timeout_s=channel.timeout_s,
            clock=clock,
        )
    assert isinstance(channel, DingtalkChannelSettings)
    from edge.sinks import DingtalkSink

    return DingtalkSink(
        channel.name,
        channel.token.get_secret_value(),
        notices=notices,
        rate=rate,
        secret=channel.secret.get_secret_value() if channel.secret else None,
        base_url=channel.base_url,
        mention_mobiles=channel.mention_mobiles,
        timeout_s=channel.timeout_s,
        clock=clock,
    )


def _sink_owners(
    settings: Settings, hooks: list[tuple[str, WebhookSettings]]
) -> list[tuple[str, str]]:
    """Every sink name the gateway registers, with the setting that owns it, in order.

    The built-in sinks keep their names even when they are not configured, so that configuring
    one later cannot hand it a channel's delivery cursor.
    """
    return [
        (AlertStoreSink.name, "the gateway's alert store"),
        (ReadingStore.name, "the embedded reading store (no tsdb.url)"),
        ("tsdb", "the time-series store (tsdb.url)"),  # InfluxSink.name, imported only when used
        (CENTRAL_SINK, "the central alert API (central.url)"),
        *((name, f"webhooks[{n}]") for n, (name, _) in enumerate(hooks)),
        *((c.name, f"channels[{n}] ({c.type})") for n, c in enumerate(settings.channels)),
    ]


def broker_address(mqtt: MqttSettings) -> BrokerAddress:
    """The broker, its credentials and TLS files; raises ConfigurationError for a TLS file that
    cannot be used now (a file that breaks later is reported and retried by the session)."""
    address = parse_mqtt_url(mqtt.url)
    tls = address.tls
    if tls is not None:
        key_password = mqtt.tls.key_password
        tls = TlsConfig(
            ca_file=mqtt.tls.ca_file,
            cert_file=mqtt.tls.cert_file,
            key_file=mqtt.tls.key_file,
            key_password=None if key_password is None else key_password.get_secret_value(),
        )
        try:
            tls.context()
        except TlsConfigError as exc:
            raise ConfigurationError(f"mqtt.tls: {exc}") from exc
    password = address.password
    if mqtt.password is not None:
        password = mqtt.password.get_secret_value()
    return BrokerAddress(
        host=address.host,
        port=address.port,
        username=mqtt.username if mqtt.username is not None else address.username,
        password=password,
        tls=tls,
    )


def _webhooks(settings: Settings) -> list[tuple[str, WebhookSettings]]:
    """Each webhook with its sink name (Settings fills in `webhook-<n>` where none is given)."""
    return [(w.name or f"webhook-{n}", w) for n, w in enumerate(settings.webhooks, start=1)]


def listen(host: str, port: int) -> socket.socket:
    """Bind the API socket up front, so a busy port is a clear configuration error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _not_ready(agent: Agent) -> str | None:
    """Why the agent cannot take messages yet: a broker session that is not connected."""
    for lane in agent.lanes:
        status = lane.session.status
        if not status.connected:
            return f"MQTT session {lane.session.client_id} not connected ({status.last_error})"
    return None


def proxy_config(trusted_proxies: list[str]) -> dict[str, Any]:
    """uvicorn's proxy-header settings: X-Forwarded-* believed from `trusted_proxies` only.

    uvicorn's own default believes them from loopback, so a client on the gateway itself (or one
    behind anything that connects from 127.0.0.1) could pick the address the brake counts.
    """
    if not trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(trusted_proxies)}


class _ApiServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the command line owns SIGINT/SIGTERM and stops everything through `stop`


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    on_ready: Callable[[Gateway, str], None] | None = None,
) -> None:
    """Run the agent and the API until `stop` is set; then shut down in order."""
    sock = listen(settings.api.host, settings.api.port)  # a busy port fails before anything opens
    # one agent per data dir, released by the kernel however this process ends
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except DataDirBusy as exc:
        sock.close()
        raise ConfigurationError(str(exc)) from exc
    try:
        gateway = build_gateway(settings)
    except BaseException:
        sock.close()
        lock.release()
        raise
    host, port = sock.getsockname()[:2]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    tokens = TokenStore(settings.data_dir / "tokens.db")  # `community-edge tokens` writes it
    audit = AuditLog(settings.data_dir / "audit.db")
    links = gateway.links or ActionLinks(settings.data_dir)
    notifier = Notifier()  # systemd's Type=notify and watchdog; does nothing when run by hand
    # run --shards N: shard 0's API lists and acts on every shard's alerts, and reads their dead
    # letters, readings and rhythms (gateway/shard_desk.py, gateway/shard_readings.py)
    desk = (
        ShardDesk(gateway.agent, settings.shard.peers, gateway.token)
        if settings.shard.peers
        else None
    )
    # ... its live stream carries their events; they follow its silences and its register
    siblings = SiblingEvents(gateway.agent, settings.shard.peers) if settings.shard.peers else None
    home = HomeWatch(gateway.agent, settings.shard.home) if settings.shard.home else None
    try:
        async with gateway.agent as agent:
            if home is not None:
                await home.check()  # shard 0's silences hold from the first message on
            retention = Retention(
                RetentionPolicy(
                    resolved_alerts_days=settings.retention.resolved_alerts_days,
                    deliveries_days=settings.retention.deliveries_days,
                    dead_letters_days=settings.retention.dead_letters_days,
                    audit_days=settings.retention.audit_days,
                ),
                now=agent.clock.now,
                alerts=agent.alert_store,
                outbox=agent.outbox,
                deliveries=gateway.deliveries,
                audit=audit,
                check_s=settings.retention.check_s,
            )
            disk = DiskWatch(
                settings.data_dir,
                warn_free_percent=settings.disk.warn_free_percent,
                warn_free_mb=settings.disk.warn_free_mb,
            )
            # run --shards N: a device's embedded readings from the shard that owns it
            readings = (
                ShardReadings(gateway.readings, desk)
                if desk is not None and gateway.readings is not None
                else gateway.readings
            )
            app = create_app(
                agent,
                gateway.token,
                readings,
                gateway.deliveries,
                tokens=tokens,
                audit=audit,
                auth_failures_per_minute=settings.api.auth_failures_per_minute,
                action_links=links,
                disk=disk,
                retention=retention,
                zone=settings.notifications.zone,
                sign_in_links=gateway.sign_in_links,
                tsdb=tsdb_readings(settings.tsdb),
                desk=desk,
            )
            install_error_handler(app)
            if gateway.phones is not None:  # SMS short links, the providers' callbacks
                gateway.phones.serve(app, gateway.deliveries)
            if desk is not None:  # run --shards N: every shard's metrics on shard 0's /metrics
                serve_shard_metrics(app, desk)
            server = _ApiServer(
                uvicorn.Config(
                    app,
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                    timeout_graceful_shutdown=3,  # open SSE streams must not hold up a stop
                    **proxy_config(settings.api.trusted_proxies),
                )
            )
            async with asyncio.TaskGroup() as tg:
                agent_task = tg.create_task(agent.run(), name="agent")
                tg.create_task(server.serve(sockets=[sock]), name="api")
                housekeeping = tg.create_task(retention.run(), name="retention")
                shared = [
                    tg.create_task(follower.run(), name=f"shards-{type(follower).__name__}")
                    for follower in (siblings, home)
                    if follower is not None
                ]
                # READY once the outbox is open (above) and every broker session is connected;
                # the watchdog pings come from this event loop, so a hung loop gets restarted
                supervisor = tg.create_task(
                    notifier.supervise(lambda: _not_ready(agent)), name="sd-notify"
                )
                if on_ready is not None:
                    on_ready(gateway, url)
                await stop.wait()
                _log.info("stopping")
                notifier.notify(STOPPING=1, STATUS="stopping: flushing the outbox")
                supervisor.cancel()
                housekeeping.cancel()
                for task in shared:
                    task.cancel()
                agent.stream.close()  # ends live streams so the API can stop at once
                server.should_exit = True
                agent_task.cancel()
    finally:
        notifier.close()
        if desk is not None:
            await desk.close()
        for follower in (siblings, home):
            if follower is not None:
                follower.close()
        sock.close()
        tokens.close()
        audit.close()
        links.close()
        if gateway.phones is not None:
            gateway.phones.close()
        if gateway.deliveries is not None:
            await gateway.deliveries.close()
        lock.release()
