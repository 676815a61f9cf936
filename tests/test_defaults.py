"""Each default is written once: the gateway's settings and the edge's constructors agree."""

from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path

import pytest

from edge.agent import AgentConfig
from edge.ingest import MqttSession
from edge.outbox import Outbox
from edge.sinks import AlertApiSink, DingtalkSink, InfluxSink, WebhookSink, WecomSink
from gateway.settings import Settings, WebhookChannelSettings, load_settings
from gateway.wiring import build_gateway

# what the settings carry that no edge default stands for
_NOT_DEFAULTS = {"broker", "client_id", "data_dir", "escalation_policies"}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("COMMUNITY_EDGE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_the_gateway_runs_the_agents_defaults(tmp_path: Path) -> None:
    built = build_gateway(load_settings(overrides={"data_dir": tmp_path / "data"})).agent.config
    for field in dataclasses.fields(AgentConfig):
        if field.name not in _NOT_DEFAULTS:
            assert getattr(built, field.name) == field.default, field.name


def _default(callable_: object, parameter: str) -> object:
    return inspect.signature(callable_).parameters[parameter].default  # type: ignore[arg-type]


def test_the_edge_constructors_default_to_the_same_values() -> None:
    settings = Settings()
    assert _default(MqttSession, "receive_maximum") == settings.mqtt.receive_maximum == 2000
    assert _default(Outbox, "max_bytes") == settings.outbox_max_mb * 1024**2 == 2 * 1024**3
    timeout = WebhookChannelSettings(name="a", type="webhook", url="http://h/x").timeout_s
    for sink in (AlertApiSink, InfluxSink, WebhookSink, WecomSink, DingtalkSink):
        assert _default(sink, "timeout_s") == timeout == 10.0, sink.__name__
