"""Settings: the only code that reads the environment or a configuration file.

Precedence: command-line flags, then the YAML file given with --config, then COMMUNITY_EDGE_*
environment variables (nested with `__`: COMMUNITY_EDGE_MQTT__URL), then the defaults below.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

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

from edge.mqtt import parse_mqtt_url


class ConfigurationError(Exception):
    """Settings that cannot work; the message is one line naming the problem."""


class MqttSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = "mqtt://127.0.0.1:1883"
    client_id: str = Field(
        default_factory=lambda: f"community-edge-{socket.gethostname()}",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
    )
    receive_maximum: int = Field(default=2000, ge=1, le=65535)

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        parse_mqtt_url(value)
        return value


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
        if any(c.isspace() or not c.isprintable() for c in value):
            raise ValueError(f"{value!r} holds a space or a control character")
        return _valid_http_url(value)  # kept as given: a receiver may route "/x/" apart from "/x"

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise ValueError("must not be empty (leave it out to send unsigned requests)")
        return value


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


class ReadinessSettings(BaseModel):
    """When /readyz answers 503."""

    model_config = ConfigDict(extra="forbid")
    max_backlog: int = Field(default=100_000, ge=1)  # undelivered outbox entries per sink and lane
    max_sink_failure_s: float = Field(default=60.0, gt=0)  # a sink failing this long


class LivenessSettings(BaseModel):
    """How silent devices and a lost broker are noticed."""

    model_config = ConfigDict(extra="forbid")
    check_s: float = Field(default=30.0, gt=0)  # how often silent devices are looked for
    broker_lost_after_s: float = Field(default=60.0, gt=0)  # then one gateway alert, not one each
    registry_check_s: float = Field(default=5.0, gt=0)  # the registry file is reloaded on change


class TestingSettings(BaseModel):
    """Hooks for fault tests only; never set them on a gateway."""

    model_config = ConfigDict(extra="forbid")
    hold_acks_s: float = Field(default=0.0, ge=0)  # pause between outbox commit and MQTT ack


class Settings(BaseSettings):
    """Everything `community-edge run` can be told."""

    model_config = SettingsConfigDict(
        env_prefix="COMMUNITY_EDGE_", env_nested_delimiter="__", extra="forbid"
    )
    data_dir: Path = Path("data")
    profiles_dir: Path | None = None  # None: the profiles shipped with the package
    devices_file: Path | None = None  # None: open enrollment (community and building from topics)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    outbox_max_mb: int = Field(default=2048, ge=1)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    tsdb: TsdbSettings = Field(default_factory=TsdbSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    readiness: ReadinessSettings = Field(default_factory=ReadinessSettings)
    liveness: LivenessSettings = Field(default_factory=LivenessSettings)
    testing: TestingSettings = Field(default_factory=TestingSettings)
    webhooks: list[WebhookSettings] = []  # alert-event receivers, each an extra sink
    central: CentralSettings = Field(default_factory=CentralSettings)

    @field_validator("webhooks")
    @classmethod
    def _webhook_names(cls, value: list[WebhookSettings]) -> list[WebhookSettings]:
        """Fill in `webhook-<n>` (from 1) where no name is given; names must be unique."""
        named: list[WebhookSettings] = []
        for n, webhook in enumerate(value, start=1):
            name = webhook.name or f"webhook-{n}"
            if any(w.name == name for w in named):
                raise ValueError(f"two webhooks are named {name!r}; names must be unique")
            named.append(webhook.model_copy(update={"name": name}))
        return named


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
