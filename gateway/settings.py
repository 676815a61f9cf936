"""Settings: the only code that reads the environment or a configuration file.

Precedence: command-line flags, then the YAML file given with --config, then COMMUNITY_EDGE_*
environment variables (nested with `__`: COMMUNITY_EDGE_MQTT__URL), then the defaults below.
A default that the edge also needs (intervals, caps, the receive maximum) is written once, in
`AgentConfig` or the stage that owns it, and read from there.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from edge.agent import AgentConfig
from edge.alerts import EscalationPolicy, EscalationStep
from edge.ingest import MqttProtocol, parse_mqtt_url
from edge.model import AlertEventKind, Severity
from edge.sinks import HTTP_TIMEOUT_S, Route, TimeWindow


class ConfigurationError(Exception):
    """Settings that cannot work; the message is one line naming the problem."""


class MqttTlsSettings(BaseModel):
    """TLS to the broker (with an `mqtts://` URL); the files are checked when the agent starts."""

    model_config = ConfigDict(extra="forbid")
    ca_file: Path | None = None  # None: the system's trusted CAs
    cert_file: Path | None = None  # client certificate (PEM), when the broker asks for one
    key_file: Path | None = None  # None: the key is in cert_file
    key_password: SecretStr | None = None  # for an encrypted key_file

    @model_validator(mode="after")
    def _key_needs_cert(self) -> MqttTlsSettings:
        if self.cert_file is None and (self.key_file is not None or self.key_password is not None):
            raise ValueError("key_file and key_password need a cert_file")
        return self

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.ca_file, self.cert_file, self.key_file))


class MqttSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = "mqtt://127.0.0.1:1883"
    client_id: str = Field(
        default_factory=lambda: f"community-edge-{socket.gethostname()}",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
    )
    receive_maximum: int = Field(default=AgentConfig.receive_maximum, ge=1, le=65535)
    # "5" (default: receive maximum, reason codes, session expiry) or "3.1.1" for brokers and
    # platforms that speak nothing newer; see the README's "MQTT 3.1.1"
    protocol: MqttProtocol = AgentConfig.mqtt_protocol
    keepalive_s: int = Field(default=AgentConfig.keepalive_s, ge=2, le=65535)
    # the broker's user for this gateway; no MQTT wildcards, '/' or spaces (ACL files split there)
    username: str | None = Field(default=None, pattern=r"^[^\s+#/]{1,256}$")
    password: SecretStr | None = None
    tls: MqttTlsSettings = Field(default_factory=MqttTlsSettings)

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        parse_mqtt_url(value)
        return value

    @model_validator(mode="after")
    def _credentials_and_tls(self) -> MqttSettings:
        address = parse_mqtt_url(self.url)
        if address.username is not None and self.username is not None:
            raise ValueError("give the user either in mqtt.url or as mqtt.username, not both")
        if address.password is not None and self.password is not None:
            raise ValueError("give the password either in mqtt.url or as mqtt.password, not both")
        if self.password is not None and (self.username or address.username) is None:
            raise ValueError("mqtt.password needs a user (mqtt.username)")
        if self.tls.given and address.tls is None:
            raise ValueError("mqtt.tls is set but mqtt.url is mqtt://; use mqtts://")
        return self


def _valid_http_url(value: str) -> str:
    """`value` if it is an http(s) URL with a host and a valid port."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} must be http://HOST:PORT or https://HOST:PORT")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    return value


class TsdbSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = None  # None: readings go to the embedded store under the data dir
    org: str = "community-edge"
    bucket: str = "community-edge"
    token: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else _valid_http_url(value).rstrip("/")


class WebhookSettings(BaseModel):
    """One receiver of signed alert-event POSTs (see edge/webhook.py for the scheme).

    `name` keys the receiver's delivery cursor in the outbox: give it explicitly when the list
    may change, since the default `webhook-<n>` follows the position in the list.
    """

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, pattern=r"^[a-z0-9-]+$", max_length=64)
    url: str
    secret: SecretStr | None = None  # None: requests are not signed

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _receiver_url(value)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        return _signing_secret(value)


def _receiver_url(value: str) -> str:
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"{value!r} holds a space or a control character")
    return _valid_http_url(value)  # kept as given: a receiver may route "/x/" apart from "/x"


def _signing_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not value.get_secret_value():
        raise ValueError("must not be empty (leave it out to send unsigned requests)")
    return value


# -- notification channels -----------------------------------------------------------------------

_SINK_NAME = r"^[a-z0-9-]+$"


def _not_empty(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not value.get_secret_value().strip():
        raise ValueError("must not be empty")
    if value is not None and any(c.isspace() for c in value.get_secret_value()):
        raise ValueError("must not hold spaces")
    return value


class RouteSettings(BaseModel):
    """Which alert events a channel sends; a criterion left out matches everything.

    `tiers` lists escalation tiers; `null` (or `default`) in it is the default audience.
    `hours` lists windows of local time ("22:00-07:00" wraps past midnight), in
    `notifications.time_zone`, matched against the time of the event.
    """

    model_config = ConfigDict(extra="forbid")
    communities: list[str] | None = None
    buildings: list[str] | None = None
    min_severity: Severity | None = None  # this one and every more urgent one
    severities: list[Severity] | None = None
    kinds: list[AlertEventKind] | None = None
    tiers: list[str | None] | None = None
    hours: list[str] | None = None

    @field_validator("communities", "buildings", "severities", "kinds", "tiers", "hours")
    @classmethod
    def _not_an_empty_list(cls, value: list[Any] | None) -> list[Any] | None:
        if value is not None and not value:
            raise ValueError("an empty list matches nothing: leave the key out to match all")
        return value

    @field_validator("hours")
    @classmethod
    def _windows(cls, value: list[str] | None) -> list[str] | None:
        for text in value or ():
            TimeWindow.parse(text)
        return value

    @field_validator("tiers")
    @classmethod
    def _default_tier(cls, value: list[str | None] | None) -> list[str | None] | None:
        return None if value is None else [None if t in (None, "default") else t for t in value]

    @model_validator(mode="after")
    def _one_severity_filter(self) -> RouteSettings:
        if self.min_severity is not None and self.severities is not None:
            raise ValueError("give min_severity or severities, not both")
        return self

    def route(self, zone: ZoneInfo) -> Route:
        severities = (
            Route.at_least(self.min_severity)
            if self.min_severity is not None
            else _set(self.severities)
        )
        return Route(
            communities=_set(self.communities),
            buildings=_set(self.buildings),
            severities=severities,
            kinds=_set(self.kinds),
            tiers=_set(self.tiers),
            hours=None if self.hours is None else tuple(TimeWindow.parse(h) for h in self.hours),
            zone=zone,
        )


def _set(values: list[Any] | None) -> frozenset[Any] | None:
    return None if values is None else frozenset(values)


class _ChannelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # keys the channel's delivery cursor in the outbox: renaming a channel starts it afresh
    name: str = Field(pattern=_SINK_NAME, max_length=64)
    route: RouteSettings = Field(default_factory=RouteSettings)
    timeout_s: float = Field(default=HTTP_TIMEOUT_S, gt=0, le=120)


class WebhookChannelSettings(_ChannelSettings):
    """The generic signed webhook (edge/webhook.py) as a routed channel."""

    type: Literal["webhook"]
    url: str
    secret: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _receiver_url(value)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        return _signing_secret(value)


class _RobotSettings(_ChannelSettings):
    # duty staff to @ in the group (their mobile numbers, from this file); never residents
    mention_mobiles: list[Annotated[str, Field(pattern=r"^\+?[0-9]{5,15}$")]] = []
    # both vendors allow 20 a minute per robot; lower it when another system shares the robot
    rate_per_minute: int = Field(default=20, ge=1, le=20)
    base_url: str  # the vendor's; a test or a proxy gives another

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _valid_http_url(value).rstrip("/")


class WecomChannelSettings(_RobotSettings):
    """A WeCom (企业微信) group robot: the `key` of its webhook URL."""

    type: Literal["wecom"]
    key: SecretStr
    base_url: str = "https://qyapi.weixin.qq.com"

    @field_validator("key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        _not_empty(value)
        return value


class DingtalkChannelSettings(_RobotSettings):
    """A DingTalk (钉钉) custom robot: the `access_token` of its URL, and its SEC... secret."""

    type: Literal["dingtalk"]
    token: SecretStr
    secret: SecretStr | None = None  # None: the robot is secured by keyword or IP instead
    base_url: str = "https://oapi.dingtalk.com"

    @field_validator("token", "secret")
    @classmethod
    def _credentials(cls, value: SecretStr | None) -> SecretStr | None:
        return _not_empty(value)


# -- phone channels: SMS and voice calls (edge/sinks/channels/phone.py) -------------------------


class PhoneRecipientSettings(BaseModel):
    """A person a phone channel always reaches (duty staff, never residents)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field(min_length=1, max_length=64)  # the name acknowledgements are recorded under
    phone: str = Field(pattern=r"^\+?[0-9][0-9 \-]{4,19}$")


def _one_secret(value: SecretStr | None, file: Path | None, name: str) -> None:
    if (value is None) == (file is None):
        raise ValueError(f"give {name} or {name}_file (a file holding it), exactly one")
    if value is not None:
        _not_empty(value)


def read_secret(value: SecretStr | None, file: Path | None, name: str) -> str:
    """A secret from settings, or the first line of its file; raises ConfigurationError."""
    if value is not None:
        return value.get_secret_value()
    assert file is not None
    try:
        text = file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(f"{name}_file {file}: cannot read: {exc.strerror or exc}") from exc
    if not text or any(c.isspace() for c in text):
        raise ConfigurationError(f"{name}_file {file}: empty, or holds spaces")
    return text


class _PhoneChannelSettings(_ChannelSettings):
    # who is reached: these people, and/or whoever is on duty in the roster for the alert's place
    recipients: list[PhoneRecipientSettings] = []
    roster_file: Path | None = None
    endpoint: str  # the provider's; a test or a proxy gives another

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return _valid_http_url(value).rstrip("/")

    @model_validator(mode="after")
    def _someone(self) -> _PhoneChannelSettings:
        if not self.recipients and self.roster_file is None:
            raise ValueError("give recipients or a roster_file: a phone channel must reach someone")
        return self


class _AliyunSettings(_PhoneChannelSettings):
    access_key_id: str = Field(min_length=1, max_length=128, pattern=r"^\S+$")
    access_key_secret: SecretStr | None = None
    access_key_secret_file: Path | None = None
    region_id: str = "cn-hangzhou"

    @model_validator(mode="after")
    def _secret_given(self) -> _AliyunSettings:
        _one_secret(self.access_key_secret, self.access_key_secret_file, "access_key_secret")
        return self

    def secret(self) -> str:
        return read_secret(self.access_key_secret, self.access_key_secret_file, "access_key_secret")


class AliyunSmsChannelSettings(_AliyunSettings):
    """Alibaba Cloud SMS (SendSms): an approved signature and template (level, summary, place,
    time, link)."""

    type: Literal["aliyun_sms"]
    sign_name: str = Field(min_length=1, max_length=64)
    template_code: str = Field(min_length=1, max_length=64)
    endpoint: str = "https://dysmsapi.aliyuncs.com"


class AliyunVoiceChannelSettings(_AliyunSettings):
    """Alibaba Cloud voice (SingleCallByTts): an approved TTS template (level, summary, place)
    that ends in "确认请按1"."""

    type: Literal["aliyun_voice"]
    tts_code: str = Field(min_length=1, max_length=64)
    called_show_number: str | None = Field(default=None, pattern=r"^[0-9]{5,20}$")
    play_times: int = Field(default=2, ge=1, le=3)
    endpoint: str = "https://dyvmsapi.aliyuncs.com"


class _TencentSettings(_PhoneChannelSettings):
    secret_id: str = Field(min_length=1, max_length=128, pattern=r"^\S+$")
    secret_key: SecretStr | None = None
    secret_key_file: Path | None = None
    region: str = "ap-guangzhou"

    @model_validator(mode="after")
    def _secret_given(self) -> _TencentSettings:
        _one_secret(self.secret_key, self.secret_key_file, "secret_key")
        return self

    def secret(self) -> str:
        return read_secret(self.secret_key, self.secret_key_file, "secret_key")


class TencentSmsChannelSettings(_TencentSettings):
    """Tencent Cloud SMS (SendSms): an approved signature and template ({1} level, {2} summary,
    {3} place, {4} time, {5} link)."""

    type: Literal["tencent_sms"]
    sdk_app_id: str = Field(pattern=r"^[0-9]{5,20}$")
    sign_name: str = Field(min_length=1, max_length=64)
    template_id: str = Field(pattern=r"^[0-9]{1,20}$")
    endpoint: str = "https://sms.tencentcloudapi.com"


class TencentVoiceChannelSettings(_TencentSettings):
    """Tencent Cloud voice notification (SendTtsVoice): a template ({1} level, {2} summary,
    {3} place) that ends in "确认请按1", with keypad callbacks on."""

    type: Literal["tencent_voice"]
    voice_sdk_app_id: str = Field(pattern=r"^[0-9]{5,20}$")
    template_id: str = Field(pattern=r"^[0-9]{1,20}$")
    play_times: int = Field(default=2, ge=1, le=3)
    endpoint: str = "https://vms.tencentcloudapi.com"


PhoneChannelSettings = (
    AliyunSmsChannelSettings
    | AliyunVoiceChannelSettings
    | TencentSmsChannelSettings
    | TencentVoiceChannelSettings
)


class PhoneSettings(BaseModel):
    """What the phone channels share: their callbacks and the links their SMS carry."""

    model_config = ConfigDict(extra="forbid")
    # the secret path segment of the callback URLs given to the providers
    # (/callbacks/<provider>/<token>/<sms|voice>): neither provider signs its callbacks
    callback_token: SecretStr | None = None
    callback_token_file: Path | None = None
    # how long an SMS's acknowledge link works (life-safety alarms: minutes, not days)
    link_valid_minutes: float = Field(default=30, gt=0, le=24 * 60)

    @field_validator("callback_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (it is all that guards the callbacks)")
        return _not_empty(value)

    @model_validator(mode="after")
    def _one_token(self) -> PhoneSettings:
        if self.callback_token is not None and self.callback_token_file is not None:
            raise ValueError("give callback_token or callback_token_file, not both")
        return self


ChannelSettings = Annotated[
    WebhookChannelSettings | WecomChannelSettings | DingtalkChannelSettings | PhoneChannelSettings,
    Field(discriminator="type"),
]


class NotificationSettings(BaseModel):
    """What every channel's messages share."""

    model_config = ConfigDict(extra="forbid")
    time_zone: str = "Asia/Shanghai"  # local time in messages and in routes' `hours`
    public_url: str | None = None  # the API as duty officers reach it: messages link to alerts
    # action links in messages (acknowledge, on my way, resolve; need public_url): how long each
    # is valid, in minutes, for a life-safety alarm (SOS, fall, smoke) and for any other alert
    link_minutes_life_safety: float = Field(default=15.0, gt=0, le=24 * 60)
    link_minutes: float = Field(default=240.0, gt=0, le=7 * 24 * 60)
    # rules of reach: per person and channel at most `per_person_limit` messages in any
    # `per_person_period_s`, then one summary instead of the rest of the period's
    per_person_limit: int = Field(default=5, ge=1)
    per_person_period_s: float = Field(default=600.0, gt=0)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone (e.g. Asia/Shanghai)") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _public(cls, value: str | None) -> str | None:
        return None if value is None else _valid_http_url(value).rstrip("/")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


class CentralSettings(BaseModel):
    """The central alert API (`community-edge api`) this gateway posts its alert events to."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = None  # None: no central API; alerts stay in the gateway's own store
    token: SecretStr | None = None  # an edge_agent token for this gateway's communities

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else _valid_http_url(value).rstrip("/")

    @model_validator(mode="after")
    def _token_with_url(self) -> CentralSettings:
        if self.url is not None and (self.token is None or not self.token.get_secret_value()):
            raise ValueError("url needs a token (community-edge tokens create --role edge_agent)")
        return self


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    token: SecretStr | None = None  # None: a random token kept in DATA_DIR/api-token
    # failed authentications from one address within 60 s before it gets 429 (token guessing)
    auth_failures_per_minute: int = Field(default=10, ge=1, le=100_000)
    # reverse proxies (addresses or networks) whose X-Forwarded-For / X-Forwarded-Proto are
    # believed; empty: none is, and the brake counts the connecting address
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry.strip() == "*":
                raise ValueError("'*' would believe any client's X-Forwarded-For; name the proxies")
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return [entry.strip() for entry in value]


class ReadinessSettings(BaseModel):
    """When /readyz answers 503."""

    model_config = ConfigDict(extra="forbid")
    # undelivered outbox entries per sink and lane
    max_backlog: int = Field(default=AgentConfig.ready_max_backlog, ge=1)
    # a sink failing this long
    max_sink_failure_s: float = Field(default=AgentConfig.ready_max_sink_failure_s, gt=0)


class LivenessSettings(BaseModel):
    """How silent devices and a lost broker are noticed."""

    model_config = ConfigDict(extra="forbid")
    # how often silent devices are looked for
    check_s: float = Field(default=AgentConfig.liveness_check_s, gt=0)
    # then one gateway alert, not one each
    broker_lost_after_s: float = Field(default=AgentConfig.broker_lost_after_s, gt=0)
    # the registry file is reloaded on change
    registry_check_s: float = Field(default=AgentConfig.registry_check_s, gt=0)


class RulesSettings(BaseModel):
    """How time-driven rules run (holds, two-stage confirmations, absence, windows)."""

    model_config = ConfigDict(extra="forbid")
    # how often they are decided and state saved
    tick_s: float = Field(default=AgentConfig.rules_tick_s, gt=0, le=60)


def _default_policies() -> list[EscalationPolicy]:
    return [
        EscalationPolicy(
            severity=Severity.CRITICAL,
            steps=(
                EscalationStep(after_s=0, tier="duty_officer"),
                EscalationStep(after_s=120, tier="property_manager"),
                EscalationStep(after_s=300, tier="emergency_contacts"),
            ),
            repeat_every_s=300,
        ),
        # a living-alone household without a sign of life: the SOS tiers, only slower
        EscalationPolicy(
            severity=Severity.MAJOR,
            category="household",
            steps=(
                EscalationStep(after_s=0, tier="duty_officer"),
                EscalationStep(after_s=1800, tier="property_manager"),
                EscalationStep(after_s=3600, tier="emergency_contacts"),
            ),
            repeat_every_s=3600,
        ),
    ]


class EscalationSettings(BaseModel):
    """Escalation policies per severity, optionally per community; steps `{after_s, tier}`."""

    model_config = ConfigDict(extra="forbid")
    check_s: float = Field(default=AgentConfig.escalation_check_s, gt=0)  # due steps looked for
    policies: list[EscalationPolicy] = Field(default_factory=_default_policies)
    # the duty roster (people, teams, shifts) that steps naming a person, `on_duty` or
    # `next_on_roster` resolve against; see deploy/roster.example.yaml
    roster_file: Path | None = None

    @field_validator("policies")
    @classmethod
    def _one_each(cls, value: list[EscalationPolicy]) -> list[EscalationPolicy]:
        seen = set()
        for policy in value:
            key = (policy.severity, policy.community, policy.category)
            if key in seen:
                where = (policy.community or "every community") + (
                    f" for {policy.category}" if policy.category else ""
                )
                raise ValueError(f"two policies for {policy.severity} in {where}")
            seen.add(key)
        return value


class FlappingSettings(BaseModel):
    """When a key raised and cleared again and again is flapping (notified once, then quiet)."""

    model_config = ConfigDict(extra="forbid")
    # raises + clears within the window
    transitions: int = Field(default=AgentConfig.flap_transitions, ge=2)
    # and a window without any: stable again
    window_s: float = Field(default=AgentConfig.flap_window_s, gt=0)


class IncidentSettings(BaseModel):
    """Related alerts (same community, building, category) opening this close are one incident."""

    model_config = ConfigDict(extra="forbid")
    window_s: float = Field(default=AgentConfig.incident_window_s, ge=0)


class RetentionSettings(BaseModel):
    """How long what is finished stays in the data dir (days); open alerts are never deleted."""

    model_config = ConfigDict(extra="forbid")
    resolved_alerts_days: float = Field(default=365, gt=0)  # with their event history
    deliveries_days: float = Field(default=90, gt=0)  # notification attempts per channel
    dead_letters_days: float = Field(default=30, gt=0)  # payloads that did not decode
    # who read personal data and acted on alerts: kept longest (PIPL art. 56: three years)
    audit_days: float = Field(default=3 * 365, gt=0)
    check_s: float = Field(default=3600, gt=0)  # how often old records are looked for

    @model_validator(mode="after")
    def _audit_longest(self) -> RetentionSettings:
        longest = max(self.resolved_alerts_days, self.deliveries_days, self.dead_letters_days)
        if self.audit_days < longest:
            raise ValueError(
                f"audit_days ({self.audit_days:g}) must be at least the longest other retention "
                f"({longest:g}): the record of who saw and did what outlives what they saw"
            )
        return self


class DiskSettings(BaseModel):
    """When /healthz warns that the data dir's filesystem is filling up (either threshold)."""

    model_config = ConfigDict(extra="forbid")
    warn_free_percent: float = Field(default=10.0, ge=0, le=100)
    warn_free_mb: int = Field(default=512, ge=0)


class ShardSettings(BaseModel):
    """The slice of the buildings this process owns (docs/scale.md, "Shards"): building
    `hash(community/building) % count == index`. Two gateways on one broker split a community
    with `count: 2` and `index: 0` / `1`; `community-edge run --shards N` sets these per process."""

    model_config = ConfigDict(extra="forbid")
    index: int = Field(default=0, ge=0)
    count: int = Field(default=1, ge=1, le=1024)
    # data dirs of the other shards of this gateway, whose alerts this process's API lists
    # (set by `run --shards N` on shard 0; empty: none)
    peers: list[Path] = []
    # shard 0's data dir, on the other shards of `run --shards N`: they read its household
    # register and visits, and follow its silences (gateway/shard_sync.py); None: not a sibling
    home: Path | None = None

    @model_validator(mode="after")
    def _index_below_count(self) -> ShardSettings:
        if self.index >= self.count:
            raise ValueError(f"shard.index {self.index} must be below shard.count {self.count}")
        return self


class TestingSettings(BaseModel):
    """Hooks for fault tests only; never set them on a gateway."""

    model_config = ConfigDict(extra="forbid")
    # pause between outbox commit and MQTT ack
    hold_acks_s: float = Field(default=AgentConfig.hold_acks_s, ge=0)
    # the group robots' rate window, `rate_per_minute` sends in any this many seconds (the
    # vendors' minute); shorter, a flood runs through the same pacing and digests in seconds
    robot_window_s: float = Field(default=60.0, gt=0, le=60.0)


class Settings(BaseSettings):
    """Everything `community-edge run` can be told."""

    model_config = SettingsConfigDict(
        env_prefix="COMMUNITY_EDGE_", env_nested_delimiter="__", extra="forbid"
    )
    data_dir: Path = Path("data")
    profiles_dir: Path | None = None  # None: the profiles shipped with the package
    devices_file: Path | None = None  # None: open enrollment (community and building from topics)
    # household and building rules, overrides, away households; None: the shipped default file
    rules_file: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    outbox_max_mb: int = Field(default=AgentConfig.outbox_max_bytes // 1024**2, ge=1)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    tsdb: TsdbSettings = Field(default_factory=TsdbSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    readiness: ReadinessSettings = Field(default_factory=ReadinessSettings)
    liveness: LivenessSettings = Field(default_factory=LivenessSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    flapping: FlappingSettings = Field(default_factory=FlappingSettings)
    incidents: IncidentSettings = Field(default_factory=IncidentSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    disk: DiskSettings = Field(default_factory=DiskSettings)
    testing: TestingSettings = Field(default_factory=TestingSettings)
    shard: ShardSettings = Field(default_factory=ShardSettings)
    webhooks: list[WebhookSettings] = []  # generic receivers of every alert event, unrouted
    channels: list[ChannelSettings] = []  # routed notification channels, each its own sink
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    phone: PhoneSettings = Field(default_factory=PhoneSettings)  # SMS and voice channels
    central: CentralSettings = Field(default_factory=CentralSettings)

    @field_validator("webhooks")
    @classmethod
    def _webhook_names(cls, value: list[WebhookSettings]) -> list[WebhookSettings]:
        """Fill in `webhook-<n>` (from 1) where no name is given; uniqueness across every sink
        is checked where the gateway registers its sinks (gateway/wiring.py)."""
        return [
            w if w.name else w.model_copy(update={"name": f"webhook-{n}"})
            for n, w in enumerate(value, start=1)
        ]


def load_settings(
    config_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Build the settings; raises ConfigurationError with one line naming the problem."""
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"{config_file}: cannot read: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigurationError(
                f"{config_file}: cannot read: not UTF-8 (byte {exc.start})"
            ) from exc
        except yaml.YAMLError as exc:
            raise ConfigurationError(
                f"{config_file}: not valid YAML: {_yaml_problem(exc)}"
            ) from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigurationError(f"{config_file}: expected a mapping of settings")
        data = loaded or {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigurationError(f"setting {key!r} must be a mapping")
            node = child
        node[leaf] = value
    try:
        return Settings(**data)
    except ValidationError as exc:
        source = f"{config_file}: " if config_file else ""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {_message(err)}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"{source}{problems}") from exc
    except SettingsError as exc:  # a COMMUNITY_EDGE_* variable that is not valid JSON
        raise ConfigurationError(f"environment: {' '.join(str(exc).split())}") from exc


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown setting"
    msg: str = err["msg"]
    return msg.removeprefix("Value error, ")
